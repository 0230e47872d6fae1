//! Who sent an alert: validation of the Azure Monitor "secure webhook" bearer token (issue 15).
//!
//! An action group with `useAadAuth = true` sends `Authorization: Bearer <JWT>`, an Entra
//! access token issued to Microsoft's action-group application ("AzNS AAD Webhook",
//! `appid`/`azp` = [`AZURE_MONITOR_APP_ID`]) for the receiver app registration (audience = its
//! Application ID URI). The handler checks, before the body is even parsed:
//!
//! * the JOSE header: `alg = RS256` (nothing else is accepted, in particular not `none`/HS*) and
//!   a `kid`;
//! * the RS256 signature against the tenant's signing keys (a JWKS, default
//!   `https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys`), cached for
//!   [`JWKS_TTL`] and fetched again when a token names an unknown `kid` (key rollover);
//! * `iss` = the tenant's v1 (`https://sts.windows.net/{tenant}/`) or v2
//!   (`https://login.microsoftonline.com/{tenant}/v2.0`) issuer;
//! * `aud` = the configured audience (the app registration's Application ID URI, which is the
//!   resource the action group requests its token for);
//! * `exp` / `nbf` with [`CLOCK_SKEW`];
//! * the caller `appid` (v1) or `azp` (v2) on `[alerts].allowed_app_ids`.
//!
//! Why in the handler and not App Service Authentication: it works the same on every hosting
//! plan and locally (Core Tools has no Easy Auth), leaves the runbook routes' function-key
//! calls untouched without an app-wide `AllowAnonymous` exception, and is tested offline with a
//! test key (tests/fixtures/auth/). The token itself is never logged; a rejection logs the
//! reason and the token's *unverified* `iss`/`aud`/`appid` only.
//!
//! Must not import: handlers, host.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

/// Application id of Azure Monitor's action-group service principal ("AzNS AAD Webhook"): the
/// client that requests secure-webhook tokens.
pub const AZURE_MONITOR_APP_ID: &str = "461e8683-5575-4561-ac7f-899cc907d62a";
/// How long fetched signing keys are trusted before they are fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(6 * 3600);
/// Tolerance for `exp` / `nbf` against our clock.
pub const CLOCK_SKEW: Duration = Duration::from_secs(300);
/// A JWKS refetch for an unknown `kid` happens at most this often (a flood of forged `kid`s
/// must not turn into a flood of requests to Entra).
const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(60);
/// Largest token accepted (Entra access tokens are a few KB).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Trust settings (`[alerts]` of the DR config, docs/config.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertAuth {
    /// Entra tenant (GUID) that issues the tokens.
    pub tenant_id: Option<String>,
    /// Expected `aud`: the receiver app registration's Application ID URI.
    pub audience: Option<String>,
    /// Accepted callers (`appid`/`azp`), lower-case. Default: Azure Monitor's action group app.
    pub allowed_app_ids: Vec<String>,
    /// Signing keys; `None` = the tenant's v2 discovery keys.
    pub jwks_url: Option<String>,
}

impl Default for AlertAuth {
    fn default() -> Self {
        AlertAuth {
            tenant_id: None,
            audience: None,
            allowed_app_ids: vec![AZURE_MONITOR_APP_ID.to_owned()],
            jwks_url: None,
        }
    }
}

impl AlertAuth {
    /// The JWKS URL in effect (`None` without a tenant or explicit URL).
    pub fn effective_jwks_url(&self) -> Option<String> {
        self.jwks_url.clone().or_else(|| {
            self.tenant_id
                .as_ref()
                .map(|t| format!("https://login.microsoftonline.com/{t}/discovery/v2.0/keys"))
        })
    }

    fn issuers(&self) -> Vec<String> {
        self.tenant_id
            .iter()
            .flat_map(|t| {
                [
                    format!("https://sts.windows.net/{t}/"),
                    format!("https://login.microsoftonline.com/{t}/v2.0"),
                ]
            })
            .collect()
    }
}

/// Why a request was not authenticated (stable `code()`s for logs and the 401 body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// `require_authenticated` is on but no tenant/audience is configured.
    NotConfigured,
    /// No `Authorization: Bearer` header.
    MissingToken,
    /// Not a compact JWS, bad base64/JSON, wrong `alg`, no `kid`…
    Malformed(String),
    /// No signing key with that `kid` (after a refetch).
    UnknownKey(String),
    /// The signature does not verify with the named key.
    BadSignature,
    WrongIssuer,
    WrongAudience,
    Expired,
    NotYetValid,
    /// `appid`/`azp` is not an allowed caller.
    WrongCaller,
    /// The signing keys could not be fetched (answered 401 too: nothing is trusted blindly).
    KeysUnavailable(String),
}

impl AuthFailure {
    pub fn code(&self) -> &'static str {
        match self {
            AuthFailure::NotConfigured => "not_configured",
            AuthFailure::MissingToken => "missing_token",
            AuthFailure::Malformed(_) => "malformed_token",
            AuthFailure::UnknownKey(_) => "unknown_signing_key",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::WrongIssuer => "wrong_issuer",
            AuthFailure::WrongAudience => "wrong_audience",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::WrongCaller => "wrong_caller",
            AuthFailure::KeysUnavailable(_) => "signing_keys_unavailable",
        }
    }

    /// One sentence: what is wrong and what to do.
    pub fn message(&self) -> String {
        match self {
            AuthFailure::NotConfigured => "alert authentication is required but not configured: set [alerts].tenant_id and [alerts].audience (docs/deploy.md \"Secure webhook\"), or require_authenticated = false".into(),
            AuthFailure::MissingToken => "no bearer token: the action group must use the secure webhook (useAadAuth)".into(),
            AuthFailure::Malformed(why) => format!("the bearer token is not a valid RS256 JWT: {why}"),
            AuthFailure::UnknownKey(kid) => format!("the token's signing key {kid:?} is not among the tenant's signing keys"),
            AuthFailure::BadSignature => "the token's signature does not verify".into(),
            AuthFailure::WrongIssuer => "the token was not issued by the configured tenant".into(),
            AuthFailure::WrongAudience => "the token is not for this app ([alerts].audience)".into(),
            AuthFailure::Expired => "the token has expired".into(),
            AuthFailure::NotYetValid => "the token is not valid yet (nbf)".into(),
            AuthFailure::WrongCaller => "the token's caller (appid/azp) is not in [alerts].allowed_app_ids".into(),
            AuthFailure::KeysUnavailable(why) => format!("the signing keys could not be fetched: {why}"),
        }
    }
}

/// Claims read from a token WITHOUT verification, for the rejection log only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnverifiedClaims {
    pub iss: Option<String>,
    pub aud: Option<String>,
    pub appid: Option<String>,
}

/// The verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub app_id: String,
    pub issuer: String,
}

/// One RSA public key (big-endian modulus and exponent).
#[derive(Clone)]
struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

#[derive(Default)]
struct CacheState {
    url: String,
    keys: BTreeMap<String, RsaKey>,
    fetched: Option<Instant>,
}

/// Signing keys fetched from a JWKS URL, cached for [`JWKS_TTL`].
#[derive(Default)]
pub struct JwksCache {
    state: tokio::sync::Mutex<CacheState>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwksCache")
    }
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Value>,
}

fn b64url(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| e.to_string())
}

/// Parses a JWKS document into RSA keys by `kid` (other key types are skipped).
fn parse_jwks(body: &[u8]) -> Result<BTreeMap<String, RsaKey>, String> {
    let jwks: Jwks = serde_json::from_slice(body).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut out = BTreeMap::new();
    for k in jwks.keys {
        if k.get("kty").and_then(Value::as_str) != Some("RSA") {
            continue;
        }
        let (Some(kid), Some(n), Some(e)) = (
            k.get("kid").and_then(Value::as_str),
            k.get("n").and_then(Value::as_str),
            k.get("e").and_then(Value::as_str),
        ) else {
            continue;
        };
        let (Ok(n), Ok(e)) = (b64url(n), b64url(e)) else {
            continue;
        };
        out.insert(kid.to_owned(), RsaKey { n, e });
    }
    Ok(out)
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<BTreeMap<String, RsaKey>, String> {
    let resp = http
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", e.without_url()))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("GET {url}: {}", e.without_url()))?;
    parse_jwks(&body).map_err(|e| format!("{url}: {e}"))
}

impl JwksCache {
    /// The key `kid` from `url`: cached when fresh, else fetched; an unknown `kid` triggers
    /// one refetch (rate-limited).
    async fn key(
        &self,
        http: &reqwest::Client,
        url: &str,
        kid: &str,
    ) -> Result<RsaKey, AuthFailure> {
        let mut st = self.state.lock().await;
        if st.url != url {
            *st = CacheState {
                url: url.to_owned(),
                ..CacheState::default()
            };
        }
        let age = st.fetched.map(|t| t.elapsed());
        let stale = age.is_none_or(|a| a > JWKS_TTL);
        let may_refetch = age.is_none_or(|a| a > UNKNOWN_KID_REFETCH);
        if stale || (!st.keys.contains_key(kid) && may_refetch) {
            match fetch(http, url).await {
                Ok(keys) => {
                    st.keys = keys;
                    st.fetched = Some(Instant::now());
                }
                Err(e) if st.keys.is_empty() || stale => {
                    return Err(AuthFailure::KeysUnavailable(e));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not refresh the alert signing keys; using the cached ones");
                }
            }
        }
        st.keys
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthFailure::UnknownKey(kid.to_owned()))
    }
}

fn part_json(part: &str, what: &str) -> Result<Value, AuthFailure> {
    let bytes = b64url(part).map_err(|e| AuthFailure::Malformed(format!("{what}: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| AuthFailure::Malformed(format!("{what}: {e}")))
}

fn text_claim(v: &Value, name: &str) -> Option<String> {
    match v.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

/// The bearer token of an `Authorization` header value (`Bearer <token>`, case-insensitive).
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Verifies `authorization` (the raw header value) against `auth`. On failure, also returns the
/// token's unverified claims for the log (empty when it has none).
pub async fn verify(
    auth: &AlertAuth,
    cache: &JwksCache,
    http: &reqwest::Client,
    authorization: Option<&str>,
    now: OffsetDateTime,
) -> Result<Caller, (AuthFailure, UnverifiedClaims)> {
    let none = UnverifiedClaims::default();
    let Some(token) = bearer(authorization) else {
        return Err((AuthFailure::MissingToken, none));
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err((AuthFailure::Malformed("longer than 16 KiB".into()), none));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err((
            AuthFailure::Malformed("expected three dot-separated parts".into()),
            none,
        ));
    };
    let claims = match part_json(p, "payload") {
        Ok(c) => c,
        Err(f) => return Err((f, none)),
    };
    let seen = UnverifiedClaims {
        iss: text_claim(&claims, "iss"),
        aud: text_claim(&claims, "aud"),
        appid: text_claim(&claims, "appid").or_else(|| text_claim(&claims, "azp")),
    };
    let fail = |f: AuthFailure| Err((f, seen.clone()));
    let (Some(audience), Some(url)) = (auth.audience.as_deref(), auth.effective_jwks_url()) else {
        return fail(AuthFailure::NotConfigured);
    };
    if auth.tenant_id.is_none() {
        return fail(AuthFailure::NotConfigured);
    }
    let header = match part_json(h, "header") {
        Ok(v) => v,
        Err(f) => return fail(f),
    };
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return fail(AuthFailure::Malformed(format!(
            "alg must be RS256, got {}",
            header.get("alg").unwrap_or(&Value::Null)
        )));
    }
    let Some(kid) = header.get("kid").and_then(Value::as_str) else {
        return fail(AuthFailure::Malformed("no kid in the header".into()));
    };
    let sig = match b64url(s) {
        Ok(b) => b,
        Err(e) => return fail(AuthFailure::Malformed(format!("signature: {e}"))),
    };
    let key = match cache.key(http, &url, kid).await {
        Ok(k) => k,
        Err(f) => return fail(f),
    };
    let message = &token[..h.len() + 1 + p.len()];
    let public = ring::signature::RsaPublicKeyComponents {
        n: &key.n,
        e: &key.e,
    };
    if public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            message.as_bytes(),
            &sig,
        )
        .is_err()
    {
        return fail(AuthFailure::BadSignature);
    }
    // Signed by the tenant: now the claims mean something.
    let iss = seen.iss.clone().unwrap_or_default();
    if !auth.issuers().contains(&iss) {
        return fail(AuthFailure::WrongIssuer);
    }
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let want = audience.trim_end_matches('/');
    if !auds.iter().any(|a| a.trim_end_matches('/') == want) {
        return fail(AuthFailure::WrongAudience);
    }
    let skew = CLOCK_SKEW.as_secs() as i64;
    let t = now.unix_timestamp();
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if t <= exp + skew => {}
        _ => return fail(AuthFailure::Expired),
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
        && t + skew < nbf
    {
        return fail(AuthFailure::NotYetValid);
    }
    let caller = seen.appid.clone().unwrap_or_default().to_ascii_lowercase();
    if caller.is_empty() || !auth.allowed_app_ids.contains(&caller) {
        return fail(AuthFailure::WrongCaller);
    }
    Ok(Caller {
        app_id: caller,
        issuer: iss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn jwks_parse_skips_non_rsa_keys() {
        let keys = parse_jwks(
            br#"{"keys":[{"kty":"EC","kid":"a"},{"kty":"RSA","kid":"b","n":"AQAB","e":"AQAB"}]}"#,
        )
        .unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["b"]);
    }
}
