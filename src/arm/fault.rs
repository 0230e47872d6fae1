//! What a failed ARM call says about the world: the one classification every observation path
//! (readiness, failover preflight, final-sync) uses before it reports or acts on a failure.
//!
//! - **Tool fault** ([`Failure::ToolFault`]): our side is broken — authentication (401,
//!   `InvalidAuthenticationToken`, token acquisition failing), authorization (403,
//!   `AuthorizationFailed`), bad configuration (DNS, TLS or connection refused on the ARM
//!   endpoint, a 404 that is not an ARM error naming the resource, an api-version or provider
//!   ARM does not know, client settings), throttling exhaustion (429 after the client's retries),
//!   or an answer we cannot understand. Never a reason to fail over: the fix is ours.
//! - **Unavailable** ([`Failure::Unavailable`]): a timeout, 408 or 5xx. On its own it does not
//!   prove a regional outage: [`judge_accounts`] calls a region unreachable only when the other
//!   region's account answers (a network or endpoint problem of the tool fails both).
//! - **Resource missing** ([`Failure::ResourceMissing`]): a 404 whose body is an ARM error
//!   (`…NotFound`) naming the resource (or its parent). Any other 404 is a tool fault.
//!
//! Guarantees: [`classify`] is pure and total; only [`Failure::Unavailable`] answered by the
//! other region ever becomes [`Verdict::RegionUnreachable`], the only verdict that may suggest
//! or start a failover. Unknown shapes of failure are tool faults (the safe side: a tool fault
//! stops and asks a person; a wrongly assumed outage fails over a healthy estate).
//!
//! Must not import reconcile, readiness, failover, handlers or host.

use serde::{Deserialize, Serialize};

use super::auth::AuthError;
use super::error::ArmError;

/// The kind of tool fault, each with its own fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToolFault {
    /// 401, `InvalidAuthenticationToken`, `AuthenticationFailed`, or no token could be had.
    Authentication,
    /// 403, `AuthorizationFailed`: the identity lacks a role.
    Authorization,
    /// The ARM endpoint is wrong or unreachable from here (DNS, TLS, connection refused, a 404
    /// of the endpoint itself), an unknown api-version/provider, or bad client settings.
    Configuration,
    /// 429 still answered after the client's retries (the subscription's ARM budget is spent).
    Throttling,
    /// An answer the tool does not understand, or a request ARM rejected (400, 409, …).
    Unexpected,
}

impl ToolFault {
    /// Short name used in findings (`authentication`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ToolFault::Authentication => "authentication",
            ToolFault::Authorization => "authorization",
            ToolFault::Configuration => "configuration",
            ToolFault::Throttling => "throttling",
            ToolFault::Unexpected => "unexpected answer",
        }
    }

    /// What the operator should do (never a failover).
    pub fn fix(self) -> &'static str {
        match self {
            ToolFault::Authentication => {
                "refresh the credential: check the tool's identity (`[arm].auth`, AZURE_CLIENT_ID, \
                 AZURE_TENANT_ID, AZURE_CLIENT_SECRET or the managed identity) and that its token \
                 has not expired"
            }
            ToolFault::Authorization => {
                "grant the tool's identity its role on both accounts' resource groups (see \
                 docs/deploy.md, least-privilege roles)"
            }
            ToolFault::Configuration => {
                "check `[arm].endpoint` (or ARM_ENDPOINT): it must be the ARM endpoint \
                 (https://management.azure.com) and reachable from here (DNS, TLS, firewall)"
            }
            ToolFault::Throttling => {
                "ARM throttled the tool past its retries: lower `[arm].max_concurrency`, space \
                 the schedules, or look for another caller using the subscription's budget"
            }
            ToolFault::Unexpected => {
                "the tool got an answer it does not understand: check the api-version and the \
                 ids in the DR config, and report the correlation id if it persists"
            }
        }
    }
}

impl std::fmt::Display for ToolFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of one failed ARM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "class", content = "fault", rename_all = "kebab-case")]
pub enum Failure {
    /// Our own fault; never a reason to fail over.
    ToolFault(ToolFault),
    /// No answer or a server error: the region may be down (see [`judge_accounts`]).
    Unavailable,
    /// ARM says the resource (or its parent) does not exist.
    ResourceMissing,
}

impl Failure {
    pub fn tool_fault(self) -> Option<ToolFault> {
        match self {
            Failure::ToolFault(t) => Some(t),
            _ => None,
        }
    }
}

/// Classifies one failed call. Pure and total.
pub fn classify(err: &ArmError) -> Failure {
    match err {
        ArmError::Api(a) => classify_api(a.status, &a.code, &a.message, &a.resource),
        ArmError::Transport { source, .. } => {
            if source.is_timeout() {
                Failure::Unavailable
            } else if source.is_connect() || source.is_builder() || source.is_redirect() {
                // DNS failure, TLS failure, connection refused: the endpoint, not a region
                // (ARM's endpoint is global; a region's outage answers 5xx or times out).
                Failure::ToolFault(ToolFault::Configuration)
            } else {
                // Reset or cut off after sending: the service went away mid-answer.
                Failure::Unavailable
            }
        }
        ArmError::Deadline { last: Some(l), .. } => classify(l),
        ArmError::Deadline { last: None, .. } | ArmError::LroPending { .. } => Failure::Unavailable,
        ArmError::Auth { source, .. } => match **source {
            AuthError::RefuseEndpoint { .. } => Failure::ToolFault(ToolFault::Configuration),
            AuthError::BuildCredential { .. } | AuthError::GetToken { .. } => {
                Failure::ToolFault(ToolFault::Authentication)
            }
        },
        ArmError::Settings { .. } | ArmError::BadSettings { .. } | ArmError::BadId { .. } => {
            Failure::ToolFault(ToolFault::Configuration)
        }
        ArmError::OperationFailed(o) => {
            let code = o.code.to_ascii_lowercase();
            if code.contains("internalservererror")
                || code.contains("serviceunavailable")
                || code.contains("timeout")
            {
                Failure::Unavailable
            } else {
                Failure::ToolFault(ToolFault::Unexpected)
            }
        }
        ArmError::Decode { .. } | ArmError::Protocol { .. } | ArmError::Encode { .. } => {
            Failure::ToolFault(ToolFault::Unexpected)
        }
    }
}

/// The classification of an ARM error answer (status, ARM error code and message, and the
/// resource id or URL the call was about).
pub fn classify_api(status: u16, code: &str, message: &str, resource: &str) -> Failure {
    let code_lc = code.to_ascii_lowercase();
    if status == 401
        || code_lc.starts_with("invalidauthenticationtoken")
        || code_lc == "authenticationfailed"
        || code_lc == "expiredauthenticationtoken"
    {
        return Failure::ToolFault(ToolFault::Authentication);
    }
    if status == 403 || code_lc == "authorizationfailed" || code_lc == "linkedauthorizationfailed" {
        return Failure::ToolFault(ToolFault::Authorization);
    }
    match status {
        429 => Failure::ToolFault(ToolFault::Throttling),
        408 | 500..=599 => Failure::Unavailable,
        404 if names_the_resource(code, message, resource) => Failure::ResourceMissing,
        404 => Failure::ToolFault(ToolFault::Configuration),
        400 if code_lc == "noregisteredproviderfound"
            || code_lc == "missingapiversionparameter"
            || code_lc == "invalidapiversionparameter" =>
        {
            Failure::ToolFault(ToolFault::Configuration)
        }
        _ => Failure::ToolFault(ToolFault::Unexpected),
    }
}

/// A 404 is an ARM "not found" about this resource when its code is an ARM `…NotFound` code
/// (not the bare `NotFound` the client substitutes for a body that is not an ARM error) and its
/// message names one of the names in the resource id (the resource, its parent, its resource
/// group or subscription).
fn names_the_resource(code: &str, message: &str, resource: &str) -> bool {
    if code.len() <= "NotFound".len() || !code.to_ascii_lowercase().ends_with("notfound") {
        return false;
    }
    let message = message.to_ascii_lowercase();
    id_names(resource)
        .iter()
        .any(|n| message.contains(&n.to_ascii_lowercase()))
}

/// The name segments of an ARM id or URL: `/subscriptions/{s}/resourceGroups/{rg}/providers/
/// {ns}/{type}/{name}/…` → `[s, rg, name, …]`.
fn id_names(resource: &str) -> Vec<&str> {
    let path = match resource.find("://") {
        Some(i) => {
            let rest = &resource[i + 3..];
            rest.find('/').map_or("", |j| &rest[j..])
        }
        None => resource,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < segs.len() {
        let s = segs[i];
        if s.eq_ignore_ascii_case("providers") {
            // Namespace, then type/name pairs.
            i += 2;
            while i + 1 < segs.len() {
                names.push(segs[i + 1]);
                i += 2;
            }
            break;
        }
        if let Some(n) = segs.get(i + 1) {
            names.push(*n);
        }
        i += 2;
    }
    names.retain(|n| n.len() >= 2);
    names
}

/// What the failures of reading a pair's two accounts mean together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Both accounts answered (present or missing): nothing to judge.
    Answered,
    /// A tool fault on either side: the pair cannot be assessed; never a failover.
    ToolFault(ToolFault),
    /// Neither account answers (timeouts / 5xx on both): the tool's own network or endpoint is
    /// as likely as two regional outages, so the pair cannot be assessed.
    NeitherAnswers,
    /// One account is unavailable while the other answers: that region is unreachable. The
    /// only verdict that may suggest or start a failover (when it is the primary).
    RegionUnreachable { primary: bool, secondary: bool },
}

/// Judges a pair's two account reads: `None` = the account answered (present or a genuine
/// 404), `Some(failure)` = the read failed so. A [`Failure::ResourceMissing`] counts as an
/// answer. Pure.
pub fn judge_accounts(primary: Option<Failure>, secondary: Option<Failure>) -> Verdict {
    let fault = |f: Option<Failure>| f.and_then(Failure::tool_fault);
    if let Some(t) = fault(primary).or(fault(secondary)) {
        return Verdict::ToolFault(t);
    }
    let down = |f: Option<Failure>| f == Some(Failure::Unavailable);
    match (down(primary), down(secondary)) {
        (false, false) => Verdict::Answered,
        (true, true) => Verdict::NeitherAnswers,
        (p, s) => Verdict::RegionUnreachable {
            primary: p,
            secondary: s,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm::error::ApiError;

    const ACCOUNT: &str =
        "/subscriptions/0000/resourceGroups/rg-weu/providers/Microsoft.DataShare/accounts/acct-weu";

    fn api(status: u16, code: &str, message: &str) -> ArmError {
        ArmError::Api(Box::new(ApiError {
            operation: "Accounts_Get".into(),
            resource: ACCOUNT.into(),
            status,
            code: code.into(),
            message: message.into(),
            details: vec![],
            correlation_id: None,
            request_id: None,
            retry_after: None,
        }))
    }

    use Failure::{ResourceMissing as Missing, ToolFault as Tool, Unavailable};
    use ToolFault::*;

    #[test]
    fn every_api_answer_is_classified_as_the_issue_lists() {
        let table: &[(u16, &str, &str, Failure)] = &[
            (
                401,
                "InvalidAuthenticationToken",
                "The access token is invalid.",
                Tool(Authentication),
            ),
            (
                401,
                "ExpiredAuthenticationToken",
                "The access token expiry …",
                Tool(Authentication),
            ),
            (
                401,
                "AuthenticationFailed",
                "missing header",
                Tool(Authentication),
            ),
            (
                403,
                "AuthorizationFailed",
                "does not have authorization",
                Tool(Authorization),
            ),
            (403, "Forbidden", "", Tool(Authorization)),
            (429, "TooManyRequests", "retry later", Tool(Throttling)),
            (408, "RequestTimeout", "", Unavailable),
            (500, "InternalServerError", "", Unavailable),
            (503, "ServiceUnavailable", "regional outage", Unavailable),
            (504, "GatewayTimeout", "", Unavailable),
            (
                404,
                "ResourceNotFound",
                "The Resource 'Microsoft.DataShare/accounts/acct-weu' under resource group 'rg-weu' was not found.",
                Missing,
            ),
            (
                404,
                "ResourceGroupNotFound",
                "Resource group 'rg-weu' could not be found.",
                Missing,
            ),
            (
                404,
                "ParentResourceNotFound",
                "The account 'acct-weu' was not found.",
                Missing,
            ),
            // A 404 that is not an ARM error naming the resource: the endpoint is wrong.
            (
                404,
                "NotFound",
                "404 page not found acct-weu",
                Tool(Configuration),
            ),
            (
                404,
                "ResourceNotFound",
                "The Resource 'other' was not found.",
                Tool(Configuration),
            ),
            (
                404,
                "InvalidResourceType",
                "The resource type could not be found",
                Tool(Configuration),
            ),
            (
                400,
                "NoRegisteredProviderFound",
                "api-version",
                Tool(Configuration),
            ),
            (400, "InvalidRequestContent", "bad body", Tool(Unexpected)),
            (409, "Conflict", "", Tool(Unexpected)),
        ];
        for (status, code, message, want) in table {
            assert_eq!(
                classify(&api(*status, code, message)),
                *want,
                "{status} {code} {message:?}"
            );
        }
    }

    #[test]
    fn a_deadline_is_classified_by_its_last_answer() {
        let wrap = |last: Option<ArmError>| ArmError::Deadline {
            operation: "Accounts_Get".into(),
            resource: ACCOUNT.into(),
            deadline: std::time::Duration::from_secs(1),
            attempts: 3,
            last: last.map(Box::new),
        };
        assert_eq!(
            classify(&wrap(Some(api(429, "TooManyRequests", "")))),
            Tool(Throttling)
        );
        assert_eq!(
            classify(&wrap(Some(api(503, "ServiceUnavailable", "")))),
            Unavailable
        );
        assert_eq!(classify(&wrap(None)), Unavailable);
    }

    #[test]
    fn settings_ids_and_undecodable_answers_are_tool_faults() {
        assert_eq!(
            classify(&ArmError::BadSettings { reason: "x".into() }),
            Tool(Configuration)
        );
        assert_eq!(
            classify(&ArmError::Protocol {
                operation: "o".into(),
                resource: "r".into(),
                reason: "loop".into()
            }),
            Tool(Unexpected)
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_configuration_and_a_timeout_is_unavailable() {
        // A port that was free a moment ago: nothing listens there.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let refused = client
            .get(format!("http://127.0.0.1:{port}/x"))
            .send()
            .await
            .expect_err("nothing listens");
        let e = ArmError::Transport {
            operation: "Accounts_Get".into(),
            resource: ACCOUNT.into(),
            source: refused,
        };
        assert_eq!(classify(&e), Tool(Configuration));

        // A listener that accepts and never answers: the request times out.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hold = tokio::spawn(async move {
            let conn = listener.accept().await;
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            drop(conn);
        });
        let timed_out = client
            .get(format!("http://{addr}/x"))
            .timeout(std::time::Duration::from_millis(200))
            .send()
            .await
            .expect_err("no answer");
        hold.abort();
        let e = ArmError::Transport {
            operation: "Accounts_Get".into(),
            resource: ACCOUNT.into(),
            source: timed_out,
        };
        assert_eq!(classify(&e), Unavailable);
    }

    #[test]
    fn only_one_unavailable_region_beside_an_answering_one_is_unreachable() {
        let table: &[(Option<Failure>, Option<Failure>, Verdict)] = &[
            (None, None, Verdict::Answered),
            (Some(Missing), None, Verdict::Answered),
            (
                Some(Unavailable),
                None,
                Verdict::RegionUnreachable {
                    primary: true,
                    secondary: false,
                },
            ),
            (
                Some(Unavailable),
                Some(Missing),
                Verdict::RegionUnreachable {
                    primary: true,
                    secondary: false,
                },
            ),
            (
                None,
                Some(Unavailable),
                Verdict::RegionUnreachable {
                    primary: false,
                    secondary: true,
                },
            ),
            (
                Some(Unavailable),
                Some(Unavailable),
                Verdict::NeitherAnswers,
            ),
            (
                Some(Tool(Authentication)),
                Some(Tool(Authentication)),
                Verdict::ToolFault(Authentication),
            ),
            (
                Some(Unavailable),
                Some(Tool(Configuration)),
                Verdict::ToolFault(Configuration),
            ),
            (
                Some(Tool(Authorization)),
                None,
                Verdict::ToolFault(Authorization),
            ),
        ];
        for (p, s, want) in table {
            assert_eq!(judge_accounts(*p, *s), *want, "{p:?} {s:?}");
        }
    }
}
