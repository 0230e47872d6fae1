//! Bearer tokens for ARM: credential selection, the loopback rule, and a token cache.
//!
//! Job: turn an [`AuthMode`] into bearer tokens for the ARM audience, fetching through
//! `azure_identity` 1.x credentials and caching each token (per scope) until shortly before
//! it expires — the Azure CLI credential runs `az` on every call otherwise.
//!
//! Invariants:
//! - `StaticToken`/`None` auth and plain `http://` endpoints are refused unless the endpoint
//!   host is loopback (127.0.0.0/8, ::1, `localhost`).
//! - Tokens and secrets live in [`Secret`], whose `Debug`/`Display` print `***`; nothing
//!   here logs a token.
//!
//! Must not import reconcile, readiness, failover, handlers or host.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use time::OffsetDateTime;
use url::{Host, Url};

/// A secret string (token, client secret). Debug and Display print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret text. Call only where it is sent, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// How the client authenticates to ARM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// Managed identity: system-assigned (`client_id: None`) or user-assigned by client id.
    ManagedIdentity { client_id: Option<String> },
    /// Workload identity federation (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
    /// `AZURE_FEDERATED_TOKEN_FILE` when the options are `None`).
    WorkloadIdentity {
        tenant_id: Option<String>,
        client_id: Option<String>,
        token_file: Option<PathBuf>,
    },
    /// The identity logged in to the Azure CLI (`az account get-access-token`).
    AzureCli { tenant_id: Option<String> },
    /// A service principal with a client secret.
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: Secret,
    },
    /// A fixed bearer token (loopback endpoints only: tests and the simulator).
    StaticToken(Secret),
    /// No `Authorization` header at all (loopback endpoints only).
    None,
}

impl AuthMode {
    /// Short name as used in config (`managed-identity`, `static-token`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::ManagedIdentity { .. } => "managed-identity",
            Self::WorkloadIdentity { .. } => "workload-identity",
            Self::AzureCli { .. } => "azure-cli",
            Self::ClientSecret { .. } => "client-secret",
            Self::StaticToken(_) => "static-token",
            Self::None => "none",
        }
    }
}

/// Errors of this layer.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The endpoint/auth combination is not allowed.
    #[error("ARM endpoint `{endpoint}` refused: {reason}")]
    RefuseEndpoint { endpoint: String, reason: String },
    /// Building the credential failed (missing tenant/client id, ...).
    #[error("cannot set up `{mode}` ARM authentication")]
    BuildCredential {
        mode: &'static str,
        #[source]
        source: Box<azure_core::Error>,
    },
    /// Fetching a token failed.
    #[error("cannot get an ARM token for scope `{scope}` with `{mode}` authentication")]
    GetToken {
        mode: &'static str,
        scope: String,
        #[source]
        source: Box<azure_core::Error>,
    },
}

/// Whether the URL's host is loopback (127.0.0.0/8, ::1, `localhost`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        // Only the literal name: `*.localhost` names are resolved by whatever resolver the
        // machine has, so they are not a promise that traffic stays on this host.
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Checks the loopback rule: `http://`, static-token and no-auth only on loopback.
pub fn check_endpoint(endpoint: &Url, auth: &AuthMode) -> Result<(), AuthError> {
    let refuse = |reason: String| AuthError::RefuseEndpoint {
        endpoint: endpoint.to_string(),
        reason,
    };
    let loopback = is_loopback(endpoint);
    match endpoint.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(refuse(
                "plain http:// is only allowed for a loopback host (127.0.0.0/8, ::1, localhost); use https://".into(),
            ));
        }
        other => return Err(refuse(format!("unsupported scheme `{other}`"))),
    }
    if endpoint.host().is_none() {
        return Err(refuse("no host".into()));
    }
    if !loopback && matches!(auth, AuthMode::StaticToken(_) | AuthMode::None) {
        return Err(refuse(format!(
            "`{}` authentication is only allowed for a loopback endpoint (127.0.0.0/8, ::1, localhost)",
            auth.name()
        )));
    }
    Ok(())
}

/// The default token scope for an endpoint: `{scheme}://{host}/.default`.
pub fn default_scope(endpoint: &Url) -> String {
    let origin = endpoint.origin().ascii_serialization();
    format!("{origin}/.default")
}

type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(Secret, OffsetDateTime), azure_core::Error>> + Send + 'a>>;

/// Something that fetches fresh tokens (an `azure_identity` credential, or a test fake).
pub trait TokenFetcher: Send + Sync {
    /// Fetches a new token for `scope`.
    fn fetch<'a>(&'a self, scope: &'a str) -> TokenFuture<'a>;
}

struct CredentialFetcher(Arc<dyn azure_core::credentials::TokenCredential>);

impl TokenFetcher for CredentialFetcher {
    fn fetch<'a>(&'a self, scope: &'a str) -> TokenFuture<'a> {
        Box::pin(async move {
            let t = self.0.get_token(&[scope], None).await?;
            Ok((Secret::new(t.token.secret().to_owned()), t.expires_on))
        })
    }
}

/// Refresh this long before expiry.
const REFRESH_MARGIN: time::Duration = time::Duration::minutes(5);

/// Caches tokens per scope until `REFRESH_MARGIN` before they expire; one fetch at a time.
pub struct TokenCache {
    mode: &'static str,
    fetcher: Box<dyn TokenFetcher>,
    cached: tokio::sync::Mutex<HashMap<String, (Secret, OffsetDateTime)>>,
}

impl TokenCache {
    /// Wraps a fetcher.
    pub fn new(mode: &'static str, fetcher: Box<dyn TokenFetcher>) -> Self {
        Self {
            mode,
            fetcher,
            cached: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// A token for `scope`, from the cache when still fresh.
    pub async fn token(&self, scope: &str) -> Result<Secret, AuthError> {
        let mut cache = self.cached.lock().await;
        if let Some((tok, exp)) = cache.get(scope)
            && *exp - REFRESH_MARGIN > OffsetDateTime::now_utc()
        {
            return Ok(tok.clone());
        }
        let (tok, exp) = self
            .fetcher
            .fetch(scope)
            .await
            .map_err(|source| AuthError::GetToken {
                mode: self.mode,
                scope: scope.to_owned(),
                source: Box::new(source),
            })?;
        cache.insert(scope.to_owned(), (tok.clone(), exp));
        Ok(tok)
    }
}

/// The token source the client uses.
pub enum TokenSource {
    /// No header.
    None,
    /// A fixed token.
    Static(Secret),
    /// A cached credential.
    Cached(TokenCache),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("TokenSource::None"),
            Self::Static(_) => f.write_str("TokenSource::Static(***)"),
            Self::Cached(c) => write!(f, "TokenSource::Cached({})", c.mode),
        }
    }
}

impl TokenSource {
    /// Builds the token source for `auth` (after [`check_endpoint`]). Builds no network
    /// connection: credentials fetch lazily on first use.
    pub fn build(auth: &AuthMode) -> Result<Self, AuthError> {
        use azure_identity::*;
        let mode = auth.name();
        let wrap = |source| AuthError::BuildCredential {
            mode,
            source: Box::new(source),
        };
        let cred: Arc<dyn azure_core::credentials::TokenCredential> = match auth {
            AuthMode::None => return Ok(Self::None),
            AuthMode::StaticToken(s) => return Ok(Self::Static(s.clone())),
            AuthMode::ManagedIdentity { client_id } => {
                let options = ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    ..Default::default()
                };
                ManagedIdentityCredential::new(Some(options)).map_err(wrap)?
            }
            AuthMode::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => {
                let options = WorkloadIdentityCredentialOptions {
                    tenant_id: tenant_id.clone(),
                    client_id: client_id.clone(),
                    token_file_path: token_file.clone(),
                    ..Default::default()
                };
                WorkloadIdentityCredential::new(Some(options)).map_err(wrap)?
            }
            AuthMode::AzureCli { tenant_id } => {
                let options = AzureCliCredentialOptions {
                    tenant_id: tenant_id.clone(),
                    ..Default::default()
                };
                AzureCliCredential::new(Some(options)).map_err(wrap)?
            }
            AuthMode::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => ClientSecretCredential::new(
                tenant_id,
                client_id.clone(),
                azure_core::credentials::Secret::new(secret.expose().to_owned()),
                None,
            )
            .map_err(wrap)?,
        };
        Ok(Self::Cached(TokenCache::new(
            mode,
            Box::new(CredentialFetcher(cred)),
        )))
    }

    /// The bearer token to send, if any.
    pub async fn token(&self, scope: &str) -> Result<Option<Secret>, AuthError> {
        match self {
            Self::None => Ok(None),
            Self::Static(s) => Ok(Some(s.clone())),
            Self::Cached(c) => c.token(scope).await.map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn refuses_plain_http_to_a_remote_host() {
        let e = check_endpoint(
            &url("http://management.azure.com"),
            &AuthMode::AzureCli { tenant_id: None },
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("only allowed for a loopback host"),
            "{e}"
        );
    }

    #[test]
    fn refuses_static_tokens_and_no_auth_for_a_remote_host() {
        for auth in [AuthMode::StaticToken(Secret::new("t")), AuthMode::None] {
            let e = check_endpoint(&url("https://management.azure.com"), &auth).unwrap_err();
            assert!(
                e.to_string()
                    .contains("only allowed for a loopback endpoint"),
                "{e}"
            );
        }
        let e = check_endpoint(&url("https://127.0.0.1.nip.io"), &AuthMode::None).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }

    #[test]
    fn accepts_loopback_hosts_for_every_mode() {
        for u in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:99",
            "http://localhost:1",
            "http://LOCALHOST",
        ] {
            for auth in [AuthMode::StaticToken(Secret::new("t")), AuthMode::None] {
                assert!(check_endpoint(&url(u), &auth).is_ok(), "{u}");
            }
        }
        assert!(
            check_endpoint(
                &url("https://management.azure.com"),
                &AuthMode::ManagedIdentity { client_id: None }
            )
            .is_ok()
        );
        assert!(check_endpoint(&url("ftp://localhost"), &AuthMode::None).is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("super-secret-token");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        let a = AuthMode::ClientSecret {
            tenant_id: "t".into(),
            client_id: "c".into(),
            secret: s,
        };
        assert!(!format!("{a:?}").contains("super-secret-token"));
        assert!(
            !format!(
                "{:?}",
                TokenSource::Static(Secret::new("super-secret-token"))
            )
            .contains("super")
        );
    }

    #[test]
    fn default_scope_is_the_endpoint_origin() {
        assert_eq!(
            default_scope(&url("https://management.azure.com/")),
            "https://management.azure.com/.default"
        );
        assert_eq!(
            default_scope(&url("http://127.0.0.1:4000/x")),
            "http://127.0.0.1:4000/.default"
        );
    }

    struct Counting {
        calls: Arc<AtomicUsize>,
        lifetime: time::Duration,
    }
    impl TokenFetcher for Counting {
        fn fetch<'a>(&'a self, scope: &'a str) -> TokenFuture<'a> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let life = self.lifetime;
            Box::pin(async move {
                Ok((
                    Secret::new(format!("{scope}-{n}")),
                    OffsetDateTime::now_utc() + life,
                ))
            })
        }
    }

    #[tokio::test]
    async fn caches_tokens_per_scope_until_near_expiry() {
        let calls = Arc::new(AtomicUsize::new(0));
        let cache = TokenCache::new(
            "test",
            Box::new(Counting {
                calls: calls.clone(),
                lifetime: time::Duration::hours(1),
            }),
        );
        let a = cache.token("a").await.unwrap();
        let a2 = cache.token("a").await.unwrap();
        assert_eq!(a.expose(), a2.expose());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        cache.token("b").await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let calls = Arc::new(AtomicUsize::new(0));
        let short = TokenCache::new(
            "test",
            Box::new(Counting {
                calls: calls.clone(),
                lifetime: time::Duration::minutes(2),
            }),
        );
        short.token("a").await.unwrap();
        short.token("a").await.unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "a token within the refresh margin is fetched again"
        );
    }
}
