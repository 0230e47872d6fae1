//! Who called an HTTP function, as the **host** established it: `Data.req.Identities`, the
//! serialised `ClaimsIdentity` list of the request's principal (reference §5.6, §10).
//!
//! What the host puts there (Azure/azure-functions-host, `AuthenticationLevelHandler`,
//! `SecurityConstants`):
//! - a call authenticated with a function / host key: an identity with `AuthenticationType`
//!   `"WebJobsAuthLevel"` and the claims `…/functions/claims/authlevel` (e.g. `Function`) and,
//!   when the key has a name, `…/functions/claims/keyid` = the key's **name** (never its value);
//! - with App Service Authentication (Easy Auth) on: first the signed-in principal's identity
//!   (`AuthenticationType` = the provider, e.g. `aad`, `IsAuthenticated: true`, `Name` and its
//!   claims);
//! - an anonymous call: one identity with `AuthenticationType: null`, `IsAuthenticated: false`.
//!
//! Invariant: the caller recorded in audit trails comes from here only — never from a request
//! header, which any client can set (`x-ms-client-principal-name` is forgeable unless Easy
//! Auth is on, and then the host already turned it into an identity).
//!
//! Decoding is lenient: an entry or claim of an unexpected shape is skipped (the claim JSON of a
//! real host is inferred, not captured — reference §13.6), which at worst makes the caller
//! [`Caller::Anonymous`]; it never fails the request.
//!
//! Must not import anything outside `host`.

use std::fmt;

use serde_json::Value;

use super::wire::meta_get;

/// `AuthenticationType` of the identity the host adds for a key-authenticated call.
pub const KEY_AUTHENTICATION_TYPE: &str = "WebJobsAuthLevel";
/// Claim type holding the authorization level of the key (`Function`, `Admin`).
pub const AUTH_LEVEL_CLAIM: &str =
    "http://schemas.microsoft.com/2017/07/functions/claims/authlevel";
/// Claim type holding the name of the key the caller presented.
pub const KEY_ID_CLAIM: &str = "http://schemas.microsoft.com/2017/07/functions/claims/keyid";

/// Claim types tried, in order, for an Easy Auth principal's name when `Name` is empty.
const PRINCIPAL_NAME_CLAIMS: &[&str] = &[
    "preferred_username",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "upn",
    "name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "oid",
];

/// One claim (`{"Type": …, "Value": …}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub claim_type: String,
    pub value: String,
}

/// One serialised `ClaimsIdentity`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    pub authentication_type: Option<String>,
    pub is_authenticated: bool,
    pub name: Option<String>,
    pub name_claim_type: Option<String>,
    pub claims: Vec<Claim>,
}

impl Identity {
    /// The first value of a claim type (case-insensitive).
    pub fn claim(&self, claim_type: &str) -> Option<&str> {
        self.claims
            .iter()
            .find(|c| c.claim_type.eq_ignore_ascii_case(claim_type))
            .map(|c| c.value.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    fn is_key(&self) -> bool {
        self.authentication_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(KEY_AUTHENTICATION_TYPE))
    }

    /// The display name of an authenticated (non-key) principal.
    fn principal_name(&self) -> Option<String> {
        if let Some(n) = self.name.as_deref().filter(|n| !n.trim().is_empty()) {
            return Some(n.trim().to_owned());
        }
        self.name_claim_type
            .as_deref()
            .and_then(|t| self.claim(t))
            .or_else(|| PRINCIPAL_NAME_CLAIMS.iter().find_map(|t| self.claim(t)))
            .map(|n| n.trim().to_owned())
    }
}

/// `Data.req.Identities`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identities(pub Vec<Identity>);

/// Who called, for audit trails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A principal signed in through App Service Authentication (Entra ID, …).
    Principal { provider: String, name: String },
    /// A caller holding a function or host key; `name` is the key's name when the host gave it
    /// (`None`: an unnamed key, e.g. the master key on some hosts).
    FunctionKey {
        name: Option<String>,
        level: Option<String>,
    },
    /// No identity (authorization disabled, e.g. Core Tools locally, or `authLevel: anonymous`).
    Anonymous,
}

impl Caller {
    /// The caller as recorded on runs, approvals and cancellations: `principal:<name>`,
    /// `key:<name>`, `function-key` (a key without a name, as older records said) or
    /// `anonymous`.
    pub fn audit_name(&self) -> String {
        match self {
            Caller::Principal { name, .. } => format!("principal:{name}"),
            Caller::FunctionKey { name: Some(n), .. } => format!("key:{n}"),
            Caller::FunctionKey { name: None, .. } => "function-key".to_owned(),
            Caller::Anonymous => "anonymous".to_owned(),
        }
    }

    /// Whether the host authenticated the call (a key or a principal).
    pub fn is_authenticated(&self) -> bool {
        !matches!(self, Caller::Anonymous)
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.audit_name())
    }
}

impl Identities {
    /// Decodes `Identities` leniently (see the module docs). `null` or absent → none.
    pub fn from_value(value: Option<&Value>) -> Identities {
        let Some(Value::Array(items)) = value else {
            return Identities::default();
        };
        Identities(items.iter().filter_map(identity_from).collect())
    }

    /// Who called: the signed-in principal when Easy Auth established one, else the key the
    /// host validated, else [`Caller::Anonymous`].
    pub fn caller(&self) -> Caller {
        if let Some((id, name)) = self
            .0
            .iter()
            .filter(|i| i.is_authenticated && !i.is_key())
            .find_map(|i| i.principal_name().map(|n| (i, n)))
        {
            return Caller::Principal {
                provider: id.authentication_type.clone().unwrap_or_default(),
                name,
            };
        }
        if let Some(key) = self.0.iter().find(|i| i.is_key()) {
            return Caller::FunctionKey {
                name: key.claim(KEY_ID_CLAIM).map(str::to_owned),
                level: key.claim(AUTH_LEVEL_CLAIM).map(str::to_owned),
            };
        }
        Caller::Anonymous
    }

    pub fn iter(&self) -> impl Iterator<Item = &Identity> {
        self.0.iter()
    }
}

fn string_field(obj: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    match meta_get(obj, name) {
        Some((_, Value::String(s))) => Some(s.clone()),
        _ => None,
    }
}

fn identity_from(value: &Value) -> Option<Identity> {
    let obj = value.as_object()?;
    let claims = match meta_get(obj, "Claims") {
        Some((_, Value::Array(items))) => items
            .iter()
            .filter_map(|c| {
                let c = c.as_object()?;
                Some(Claim {
                    claim_type: string_field(c, "Type")?,
                    value: string_field(c, "Value")?,
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let is_authenticated = match meta_get(obj, "IsAuthenticated") {
        Some((_, Value::Bool(b))) => *b,
        // Not given: a .NET ClaimsIdentity is authenticated exactly when it has a type.
        _ => string_field(obj, "AuthenticationType").is_some_and(|t| !t.is_empty()),
    };
    Some(Identity {
        authentication_type: string_field(obj, "AuthenticationType").filter(|t| !t.is_empty()),
        is_authenticated,
        name: string_field(obj, "Name"),
        name_claim_type: string_field(obj, "NameClaimType"),
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key_identity(name: Option<&str>) -> Value {
        let mut claims = vec![json!({"Type": AUTH_LEVEL_CLAIM, "Value": "Function",
            "ValueType": "http://www.w3.org/2001/XMLSchema#string", "Issuer": "LOCAL AUTHORITY"})];
        if let Some(n) = name {
            claims.push(json!({"Type": KEY_ID_CLAIM, "Value": n}));
        }
        json!({"AuthenticationType": "WebJobsAuthLevel", "IsAuthenticated": true, "Name": null,
            "NameClaimType": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
            "Claims": claims})
    }

    #[test]
    fn a_key_authenticated_call_is_recorded_with_the_key_name() {
        let ids = Identities::from_value(Some(&json!([key_identity(Some("ops-runbook"))])));
        assert_eq!(ids.caller().audit_name(), "key:ops-runbook");
        let unnamed = Identities::from_value(Some(&json!([key_identity(None)])));
        assert_eq!(unnamed.caller().audit_name(), "function-key");
    }

    #[test]
    fn an_easy_auth_principal_wins_over_the_key() {
        let principal = json!({"AuthenticationType": "aad", "IsAuthenticated": true,
            "Name": null,
            "NameClaimType": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
            "Claims": [{"Type": "preferred_username", "Value": "ann@contoso.com"}]});
        let ids = Identities::from_value(Some(&json!([principal, key_identity(Some("k"))])));
        assert_eq!(ids.caller().audit_name(), "principal:ann@contoso.com");
        assert!(matches!(ids.caller(), Caller::Principal { provider, .. } if provider == "aad"));
    }

    #[test]
    fn the_anonymous_identity_of_a_captured_payload_is_anonymous() {
        let text = include_str!(
            "../../tests/fixtures/functions-payloads/http-trigger.nonforwarded.json-body.captured.request.json"
        );
        let v: Value = serde_json::from_str(text).unwrap_or_default();
        let ids = Identities::from_value(v.pointer("/Data/httpPayload/Identities"));
        assert_eq!(ids.0.len(), 1);
        assert_eq!(ids.caller(), Caller::Anonymous);
    }

    #[test]
    fn odd_shapes_are_skipped_not_fatal() {
        let ids = Identities::from_value(Some(&json!([1, "x", {"Claims": "no"}, null])));
        assert_eq!(ids.caller(), Caller::Anonymous);
        assert_eq!(
            Identities::from_value(Some(&json!("[]"))).caller(),
            Caller::Anonymous
        );
        assert_eq!(Identities::from_value(None).caller(), Caller::Anonymous);
    }
}
