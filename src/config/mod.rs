//! Runtime settings: the typed [`Config`] read once from the process environment (app settings).
//!
//! Job: turn the env keys listed in docs/CONTRACTS.md into domain types (port, URLs, storage
//! settings, ARM auth kind, schedules, secrets) with one cheap pass and no IO, so `serve` can bind
//! its port within milliseconds. Every invalid value fails with an error naming the key.
//!
//! Invariants:
//! - [`ENV_KEYS`] lists exactly the keys [`Config::from_lookup`] reads (a test holds
//!   `local.settings.json.sample` to it; the Bicep app settings are held to it too).
//! - An empty (or all-whitespace) value counts as unset: app settings cannot be "absent" in every
//!   tool, and `local.settings.json.sample` lists optional keys with `""`.
//! - Secrets ([`Secret`]) print `***` in `Debug` and `Display`; error messages never echo a value
//!   of a secret key.
//! - Nothing here builds a client or touches the network: storage and ARM settings are kept as
//!   typed values; the store/arm modules build clients from them lazily.
//!
//! The DR topology (TOML named by `DR_CONFIG_PATH`) is loaded by `config::dr`, not here.
//! Must not import anything of this crate outside `config`.

pub mod arm;
pub mod dr;

use std::fmt;
use std::path::PathBuf;

use url::Url;

/// Port the Functions host tells the custom handler to listen on (set by the host, not an app setting).
pub const KEY_PORT: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
/// Path of the DR topology TOML.
pub const KEY_DR_CONFIG_PATH: &str = "DR_CONFIG_PATH";
/// Storage connection string (local / dev, Azurite).
pub const KEY_STORAGE: &str = "AzureWebJobsStorage";
/// Identity-based storage: blob endpoint.
pub const KEY_STORAGE_BLOB_URI: &str = "AzureWebJobsStorage__blobServiceUri";
/// Identity-based storage: queue endpoint.
pub const KEY_STORAGE_QUEUE_URI: &str = "AzureWebJobsStorage__queueServiceUri";
/// Identity-based storage: credential kind (`managedidentity`).
pub const KEY_STORAGE_CREDENTIAL: &str = "AzureWebJobsStorage__credential";
/// Identity-based storage: client id of a user-assigned identity.
pub const KEY_STORAGE_CLIENT_ID: &str = "AzureWebJobsStorage__clientId";
/// Overrides `[arm].endpoint` of the DR config.
pub const KEY_ARM_ENDPOINT: &str = "ARM_ENDPOINT";
/// Overrides `[arm].auth` of the DR config.
pub const KEY_ARM_AUTH: &str = "ARM_AUTH";
/// Client id for ARM (user-assigned managed identity / app registration).
pub const KEY_AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// Tenant for workload identity / client secret.
pub const KEY_AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
/// Secret for `client-secret` auth.
pub const KEY_AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
/// NCRONTAB schedule of `ReplicateConfig`.
pub const KEY_REPLICATE_SCHEDULE: &str = "REPLICATE_SCHEDULE";
/// NCRONTAB schedule of `CheckReadiness`.
pub const KEY_READINESS_SCHEDULE: &str = "READINESS_SCHEDULE";
/// NCRONTAB schedule of `RunWatchdog` (every 5 minutes in the sample and the Bicep default).
pub const KEY_WATCHDOG_SCHEDULE: &str = "WATCHDOG_SCHEDULE";
/// Optional webhook for notifications (its URL usually carries a signature: a secret).
pub const KEY_NOTIFY_WEBHOOK_URL: &str = "NOTIFY_WEBHOOK_URL";
/// Optional Microsoft Teams workflow / incoming-webhook URL: run and readiness events are sent
/// there as an Adaptive Card (a secret, like the webhook URL).
pub const KEY_NOTIFY_TEAMS_WEBHOOK_URL: &str = "NOTIFY_TEAMS_WEBHOOK_URL";
/// The app's public host name (`<app>.azurewebsites.net`), set by Azure App Service / Functions
/// on every app: the base of the approve / cancel / status links in notifications
/// (`https://<host>/api/...`; plain `http` only for a loopback host).
pub const KEY_WEBSITE_HOSTNAME: &str = "WEBSITE_HOSTNAME";
/// Optional log filter.
pub const KEY_RUST_LOG: &str = "RUST_LOG";
/// Optional time budget of one replicate pass, in seconds (timer ticks and `ReplicatePair`
/// invocations; `ReplicateNow` uses at most 180 s of it). Default: 80% of host.json's
/// `functionTimeout`.
pub const KEY_REPLICATE_BUDGET_SECONDS: &str = "REPLICATE_BUDGET_SECONDS";
/// Optional: a directory; every ARM exchange is recorded there as sanitised SessionRecords JSON
/// (docs/recording.md). The CLIs' `--record DIR` sets the same thing.
pub const KEY_RECORD_DIR: &str = "RECORD_DIR";

/// Every env key [`Config`] reads, in the order of docs/CONTRACTS.md.
pub const ENV_KEYS: &[&str] = &[
    KEY_PORT,
    KEY_DR_CONFIG_PATH,
    KEY_STORAGE,
    KEY_STORAGE_BLOB_URI,
    KEY_STORAGE_QUEUE_URI,
    KEY_STORAGE_CREDENTIAL,
    KEY_STORAGE_CLIENT_ID,
    KEY_ARM_ENDPOINT,
    KEY_ARM_AUTH,
    KEY_AZURE_CLIENT_ID,
    KEY_AZURE_TENANT_ID,
    KEY_AZURE_CLIENT_SECRET,
    KEY_REPLICATE_SCHEDULE,
    KEY_READINESS_SCHEDULE,
    KEY_WATCHDOG_SCHEDULE,
    KEY_NOTIFY_WEBHOOK_URL,
    KEY_NOTIFY_TEAMS_WEBHOOK_URL,
    KEY_WEBSITE_HOSTNAME,
    KEY_RUST_LOG,
    KEY_REPLICATE_BUDGET_SECONDS,
    KEY_RECORD_DIR,
];

/// Keys [`Config`] reads that the Functions host itself sets on the handler process; they must
/// not appear in `local.settings.json.sample` or in the Bicep app settings.
pub const HOST_PROVIDED_KEYS: &[&str] = &[KEY_PORT, KEY_WEBSITE_HOSTNAME];

/// Azurite's well-known development account (public, documented by Microsoft; not a secret).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development account key (public, documented by Microsoft).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Errors from reading runtime settings. Every variant names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required key is unset or empty.
    #[error("{key} is not set: {hint}")]
    Missing {
        key: &'static str,
        hint: &'static str,
    },
    /// A key holds a value that does not parse; `reason` never contains a secret value.
    #[error("{key} is invalid: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl ConfigError {
    /// The env key this error is about.
    pub fn key(&self) -> &'static str {
        match self {
            ConfigError::Missing { key, .. } | ConfigError::Invalid { key, .. } => key,
        }
    }
}

/// A secret string (keys, client secrets, tokens) that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret value. Call only where it is handed to a credential or an HTTP client.
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

/// A URL that carries a secret (a signature or key in its query); prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(Url);

impl SecretUrl {
    pub fn new(url: Url) -> Self {
        SecretUrl(url)
    }
    /// The URL. Call only where it is handed to an HTTP client.
    pub fn expose(&self) -> &Url {
        &self.0
    }
    /// Scheme, host and port only: safe to log.
    pub fn origin_for_logs(&self) -> String {
        self.0.origin().ascii_serialization()
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the app reaches its own storage account (queues and blobs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageSettings {
    /// `AzureWebJobsStorage` connection string (local/dev; Azurite).
    ConnectionString(StorageConnection),
    /// Identity-based (`AzureWebJobsStorage__*`), production: Entra token credential.
    Identity(StorageIdentity),
}

/// A parsed storage connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConnection {
    pub account_name: String,
    /// Shared key (Azurite's well-known key for `UseDevelopmentStorage=true`).
    pub account_key: Option<Secret>,
    /// `SharedAccessSignature=` value, without a leading `?`.
    pub sas: Option<Secret>,
    pub blob_endpoint: Url,
    pub queue_endpoint: Url,
    /// True for `UseDevelopmentStorage=true` or endpoints on a loopback host.
    pub is_development: bool,
}

/// Identity-based storage settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageIdentity {
    pub blob_service_uri: Url,
    pub queue_service_uri: Url,
    /// `AzureWebJobsStorage__credential`; only `managedidentity` is accepted (or unset).
    pub managed_identity: bool,
    /// Client id of a user-assigned identity; `None` = system-assigned.
    pub client_id: Option<String>,
}

/// ARM authentication kind (`ARM_AUTH`, same words as `[arm].auth` in the DR config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmAuthKind {
    ManagedIdentity,
    WorkloadIdentity,
    AzureCli,
    ClientSecret,
    /// Loopback endpoints only (enforced by the ARM client).
    StaticToken,
    /// Loopback endpoints only (enforced by the ARM client).
    None,
}

impl ArmAuthKind {
    pub const ALL: &'static [(&'static str, ArmAuthKind)] = &[
        ("managed-identity", ArmAuthKind::ManagedIdentity),
        ("workload-identity", ArmAuthKind::WorkloadIdentity),
        ("azure-cli", ArmAuthKind::AzureCli),
        ("client-secret", ArmAuthKind::ClientSecret),
        ("static-token", ArmAuthKind::StaticToken),
        ("none", ArmAuthKind::None),
    ];

    /// Parses the setting's word (case-insensitive).
    pub fn parse(word: &str) -> Option<ArmAuthKind> {
        Self::ALL
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word.trim()))
            .map(|(_, kind)| *kind)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, kind)| *kind == self)
            .map_or("none", |(name, _)| name)
    }
}

/// A timer schedule as the Functions host accepts it: six-field NCRONTAB (`{sec} {min} {hour}
/// {day} {month} {day-of-week}`) or an `hh:mm:ss` interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(String);

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() == 6 {
            let allowed = |c: char| c.is_ascii_alphanumeric() || "*/,-?".contains(c);
            if let Some(bad) = fields.iter().find(|f| !f.chars().all(allowed)) {
                return Err(format!(
                    "NCRONTAB field `{bad}` has an unexpected character"
                ));
            }
            return Ok(Schedule(text.to_owned()));
        }
        if fields.len() == 1 && is_timespan(text) {
            return Ok(Schedule(text.to_owned()));
        }
        Err(format!(
            "expected a six-field NCRONTAB expression such as `0 */15 * * * *` (seconds first) or an \
             hh:mm:ss interval, got {} field(s)",
            fields.len()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_timespan(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit()))
}

/// Runtime settings, read once at startup. Optional keys are `None` when unset or empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `FUNCTIONS_CUSTOMHANDLER_PORT`; required by `serve` (0 = any free port, for tests).
    pub port: Option<u16>,
    /// `DR_CONFIG_PATH`; required by `serve`.
    pub dr_config_path: Option<PathBuf>,
    /// `AzureWebJobsStorage` (connection string) or the identity-based `AzureWebJobsStorage__*`
    /// keys; the connection string wins when both are set (as in the Functions host).
    pub storage: Option<StorageSettings>,
    /// `ARM_ENDPOINT`: overrides `[arm].endpoint`.
    pub arm_endpoint: Option<Url>,
    /// `ARM_AUTH`: overrides `[arm].auth`.
    pub arm_auth: Option<ArmAuthKind>,
    /// `AZURE_CLIENT_ID`.
    pub azure_client_id: Option<String>,
    /// `AZURE_TENANT_ID`.
    pub azure_tenant_id: Option<String>,
    /// `AZURE_CLIENT_SECRET`.
    pub azure_client_secret: Option<Secret>,
    /// `REPLICATE_SCHEDULE` (read by the host via `%REPLICATE_SCHEDULE%`; validated here).
    pub replicate_schedule: Option<Schedule>,
    /// `READINESS_SCHEDULE`.
    pub readiness_schedule: Option<Schedule>,
    /// `WATCHDOG_SCHEDULE` (read by the host via `%WATCHDOG_SCHEDULE%`; validated here).
    pub watchdog_schedule: Option<Schedule>,
    /// `NOTIFY_WEBHOOK_URL`.
    pub notify_webhook_url: Option<SecretUrl>,
    /// `NOTIFY_TEAMS_WEBHOOK_URL`.
    pub notify_teams_webhook_url: Option<SecretUrl>,
    /// `WEBSITE_HOSTNAME` (set by Azure): host[:port] of the app's public URL.
    pub website_hostname: Option<String>,
    /// `RUST_LOG`; telemetry defaults to `info`.
    pub log_filter: Option<String>,
    /// `REPLICATE_BUDGET_SECONDS`: the replicate pass budget (`None` = derived from host.json's
    /// `functionTimeout` at start-up, see `startup::ReplicateBudgets`).
    pub replicate_budget: Option<std::time::Duration>,
    /// `RECORD_DIR` (or a CLI's `--record DIR`): record every ARM exchange there.
    pub record_dir: Option<PathBuf>,
    /// A CLI's `--record-keep-ids` (no app setting): keep tenant/subscription ids in recordings.
    pub record_keep_ids: bool,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup` (tests pass a map). Reads only the keys in [`ENV_KEYS`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |key: &'static str| -> Option<String> {
            debug_assert!(ENV_KEYS.contains(&key), "{key} missing from ENV_KEYS");
            lookup(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let port = get(KEY_PORT)
            .map(|raw| {
                raw.parse::<u16>().map_err(|_| ConfigError::Invalid {
                    key: KEY_PORT,
                    reason: format!("expected a TCP port number 0-65535, got `{raw}`"),
                })
            })
            .transpose()?;

        let dr_config_path = get(KEY_DR_CONFIG_PATH).map(PathBuf::from);
        let storage = read_storage(&get)?;

        let arm_endpoint = get(KEY_ARM_ENDPOINT)
            .map(|raw| parse_url(KEY_ARM_ENDPOINT, &raw, true))
            .transpose()?;
        let arm_auth = get(KEY_ARM_AUTH)
            .map(|raw| {
                ArmAuthKind::parse(&raw).ok_or_else(|| ConfigError::Invalid {
                    key: KEY_ARM_AUTH,
                    reason: format!(
                        "`{raw}` is not one of {}",
                        ArmAuthKind::ALL
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            })
            .transpose()?;
        let azure_client_id = get(KEY_AZURE_CLIENT_ID);
        let azure_tenant_id = get(KEY_AZURE_TENANT_ID);
        let azure_client_secret = get(KEY_AZURE_CLIENT_SECRET).map(Secret::new);
        if arm_auth == Some(ArmAuthKind::ClientSecret) {
            for (key, present) in [
                (KEY_AZURE_CLIENT_ID, azure_client_id.is_some()),
                (KEY_AZURE_TENANT_ID, azure_tenant_id.is_some()),
                (KEY_AZURE_CLIENT_SECRET, azure_client_secret.is_some()),
            ] {
                if !present {
                    return Err(ConfigError::Missing {
                        key,
                        hint: "required when ARM_AUTH is client-secret",
                    });
                }
            }
        }

        let schedule = |key: &'static str| -> Result<Option<Schedule>, ConfigError> {
            get(key)
                .map(|raw| {
                    Schedule::parse(&raw).map_err(|reason| ConfigError::Invalid { key, reason })
                })
                .transpose()
        };
        let replicate_schedule = schedule(KEY_REPLICATE_SCHEDULE)?;
        let readiness_schedule = schedule(KEY_READINESS_SCHEDULE)?;
        let watchdog_schedule = schedule(KEY_WATCHDOG_SCHEDULE)?;

        let notify_webhook_url = get(KEY_NOTIFY_WEBHOOK_URL)
            .map(|raw| parse_secret_url(KEY_NOTIFY_WEBHOOK_URL, &raw))
            .transpose()?;
        let notify_teams_webhook_url = get(KEY_NOTIFY_TEAMS_WEBHOOK_URL)
            .map(|raw| parse_secret_url(KEY_NOTIFY_TEAMS_WEBHOOK_URL, &raw))
            .transpose()?;
        let website_hostname = get(KEY_WEBSITE_HOSTNAME)
            .map(|raw| {
                let host = raw.trim_end_matches('/');
                let ok = !host.is_empty()
                    && !host.contains("://")
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
                if ok {
                    Ok(host.to_ascii_lowercase())
                } else {
                    Err(ConfigError::Invalid {
                        key: KEY_WEBSITE_HOSTNAME,
                        reason: format!(
                            "expected a host name such as `myapp.azurewebsites.net` (no scheme, no path), got `{raw}`"
                        ),
                    })
                }
            })
            .transpose()?;
        let log_filter = get(KEY_RUST_LOG);
        let replicate_budget = get(KEY_REPLICATE_BUDGET_SECONDS)
            .map(|raw| match raw.parse::<u64>() {
                Ok(n) if (1..=86_400).contains(&n) => Ok(std::time::Duration::from_secs(n)),
                _ => Err(ConfigError::Invalid {
                    key: KEY_REPLICATE_BUDGET_SECONDS,
                    reason: format!(
                        "{raw:?} is not a whole number of seconds between 1 and 86400 (leave it \
                         empty to derive the budget from host.json's functionTimeout)"
                    ),
                }),
            })
            .transpose()?;
        let record_dir = get(KEY_RECORD_DIR).map(PathBuf::from);

        Ok(Config {
            port,
            dr_config_path,
            storage,
            arm_endpoint,
            arm_auth,
            azure_client_id,
            azure_tenant_id,
            azure_client_secret,
            replicate_schedule,
            readiness_schedule,
            watchdog_schedule,
            notify_webhook_url,
            notify_teams_webhook_url,
            website_hostname,
            log_filter,
            replicate_budget,
            record_dir,
            record_keep_ids: false,
        })
    }

    /// Checks what `serve` needs and returns the port: `FUNCTIONS_CUSTOMHANDLER_PORT` and
    /// `DR_CONFIG_PATH` must be set, and storage must be configured.
    pub fn require_serve(&self) -> Result<u16, ConfigError> {
        let port = self.port.ok_or(ConfigError::Missing {
            key: KEY_PORT,
            hint: "the Functions host sets it when it starts the custom handler; set it yourself \
                   (e.g. FUNCTIONS_CUSTOMHANDLER_PORT=7071) to run `serve` by hand",
        })?;
        if self.dr_config_path.is_none() {
            return Err(ConfigError::Missing {
                key: KEY_DR_CONFIG_PATH,
                hint: "path of the DR topology TOML (see docs/config.md)",
            });
        }
        if self.storage.is_none() {
            return Err(ConfigError::Missing {
                key: KEY_STORAGE,
                hint: "a storage connection string (UseDevelopmentStorage=true for Azurite) or the \
                       identity-based AzureWebJobsStorage__blobServiceUri / __queueServiceUri settings",
            });
        }
        Ok(port)
    }

    /// A config for tests and in-process runs: every optional key unset, the given port.
    pub fn for_port(port: u16) -> Config {
        Config {
            port: Some(port),
            dr_config_path: None,
            storage: None,
            arm_endpoint: None,
            arm_auth: None,
            azure_client_id: None,
            azure_tenant_id: None,
            azure_client_secret: None,
            replicate_schedule: None,
            readiness_schedule: None,
            watchdog_schedule: None,
            notify_webhook_url: None,
            notify_teams_webhook_url: None,
            website_hostname: None,
            log_filter: None,
            replicate_budget: None,
            record_dir: None,
            record_keep_ids: false,
        }
    }
}

fn parse_url(key: &'static str, raw: &str, http_ok: bool) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::Invalid {
        key,
        reason: format!("not an absolute URL ({e})"),
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if http_ok => Ok(url),
        other => Err(ConfigError::Invalid {
            key,
            reason: format!("scheme `{other}` is not supported (use https)"),
        }),
    }
}

/// Parses a URL whose text must not appear in errors (it may carry a signature).
fn parse_secret_url(key: &'static str, raw: &str) -> Result<SecretUrl, ConfigError> {
    let url = Url::parse(raw).map_err(|_| ConfigError::Invalid {
        key,
        reason: "not an absolute URL (value not shown: it may carry a secret)".into(),
    })?;
    let loopback = url_is_loopback(&url);
    match url.scheme() {
        "https" => Ok(SecretUrl::new(url)),
        "http" if loopback => Ok(SecretUrl::new(url)),
        _ => Err(ConfigError::Invalid {
            key,
            reason: "must be an https URL (plain http only for a loopback host)".into(),
        }),
    }
}

/// True when the URL's host is `localhost` or a loopback IP address: the one rule for every
/// endpoint the app talks to (ARM, storage, webhooks).
pub use crate::arm::auth::is_loopback as url_is_loopback;

fn read_storage(
    get: &impl Fn(&'static str) -> Option<String>,
) -> Result<Option<StorageSettings>, ConfigError> {
    if let Some(raw) = get(KEY_STORAGE) {
        return parse_connection_string(&raw).map(|c| Some(StorageSettings::ConnectionString(c)));
    }
    let blob = get(KEY_STORAGE_BLOB_URI);
    let queue = get(KEY_STORAGE_QUEUE_URI);
    let credential = get(KEY_STORAGE_CREDENTIAL);
    let client_id = get(KEY_STORAGE_CLIENT_ID);
    if blob.is_none() && queue.is_none() && credential.is_none() && client_id.is_none() {
        return Ok(None);
    }
    let blob = blob.ok_or(ConfigError::Missing {
        key: KEY_STORAGE_BLOB_URI,
        hint: "identity-based storage needs both the blob and the queue service URI",
    })?;
    let queue = queue.ok_or(ConfigError::Missing {
        key: KEY_STORAGE_QUEUE_URI,
        hint: "identity-based storage needs both the blob and the queue service URI",
    })?;
    let managed_identity = match credential.as_deref() {
        None => false,
        Some(c) if c.eq_ignore_ascii_case("managedidentity") => true,
        Some(other) => {
            return Err(ConfigError::Invalid {
                key: KEY_STORAGE_CREDENTIAL,
                reason: format!("`{other}` is not supported (use `managedidentity`)"),
            });
        }
    };
    Ok(Some(StorageSettings::Identity(StorageIdentity {
        blob_service_uri: parse_url(KEY_STORAGE_BLOB_URI, &blob, false)?,
        queue_service_uri: parse_url(KEY_STORAGE_QUEUE_URI, &queue, false)?,
        managed_identity,
        client_id,
    })))
}

/// Parses an Azure Storage connection string (`Key=Value;…`, keys case-insensitive). Error
/// messages name keys of the string but never echo values (they hold account keys / SAS).
pub fn parse_connection_string(raw: &str) -> Result<StorageConnection, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        key: KEY_STORAGE,
        reason,
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in raw.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            invalid("every `;`-separated part must be `Name=Value` (value not shown)".into())
        })?;
        pairs.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let find = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };

    if let Some(dev) = find("usedevelopmentstorage") {
        if !dev.eq_ignore_ascii_case("true") {
            return Err(invalid(
                "UseDevelopmentStorage must be `true` when present".into(),
            ));
        }
        let proxy = find("developmentstorageproxyuri");
        let base = proxy.unwrap_or_else(|| "http://127.0.0.1".to_owned());
        let base = base.trim_end_matches('/');
        let endpoint = |port: u16| {
            Url::parse(&format!("{base}:{port}/{AZURITE_ACCOUNT}"))
                .map_err(|e| invalid(format!("DevelopmentStorageProxyUri is not a URL ({e})")))
        };
        return Ok(StorageConnection {
            account_name: AZURITE_ACCOUNT.to_owned(),
            account_key: Some(Secret::new(AZURITE_KEY)),
            sas: None,
            blob_endpoint: endpoint(10000)?,
            queue_endpoint: endpoint(10001)?,
            is_development: true,
        });
    }

    let account_name = find("accountname");
    let protocol = find("defaultendpointsprotocol").unwrap_or_else(|| "https".to_owned());
    if !matches!(protocol.as_str(), "http" | "https") {
        return Err(invalid(
            "DefaultEndpointsProtocol must be `http` or `https`".into(),
        ));
    }
    let suffix = find("endpointsuffix").unwrap_or_else(|| "core.windows.net".to_owned());
    let endpoint = |explicit: &str, service: &str| -> Result<Url, ConfigError> {
        if let Some(e) = find(explicit) {
            return Url::parse(&e)
                .map_err(|err| invalid(format!("{explicit} is not a URL ({err})")));
        }
        let account = account_name.as_deref().ok_or_else(|| {
            invalid(format!(
                "needs AccountName (or an explicit {}Endpoint)",
                capitalize(service)
            ))
        })?;
        Url::parse(&format!("{protocol}://{account}.{service}.{suffix}"))
            .map_err(|err| invalid(format!("cannot build the {service} endpoint ({err})")))
    };
    let blob_endpoint = endpoint("blobendpoint", "blob")?;
    let queue_endpoint = endpoint("queueendpoint", "queue")?;
    let account_key = find("accountkey").map(Secret::new);
    let sas = find("sharedaccesssignature").map(|s| Secret::new(s.trim_start_matches('?')));
    if account_key.is_none() && sas.is_none() {
        return Err(invalid(
            "needs AccountKey or SharedAccessSignature (or use the identity-based \
             AzureWebJobsStorage__* settings)"
                .into(),
        ));
    }
    let account_name = match account_name {
        Some(a) => a,
        None => account_from_endpoint(&blob_endpoint)
            .ok_or_else(|| invalid("needs AccountName".into()))?,
    };
    let is_development = url_is_loopback(&blob_endpoint) && url_is_loopback(&queue_endpoint);
    Ok(StorageConnection {
        account_name,
        account_key,
        sas,
        blob_endpoint,
        queue_endpoint,
        is_development,
    })
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn account_from_endpoint(url: &Url) -> Option<String> {
    if url_is_loopback(url) {
        url.path_segments()?
            .find(|s| !s.is_empty())
            .map(str::to_owned)
    } else {
        url.host_str()?.split('.').next().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn reads_nothing_but_the_listed_keys() {
        let seen = std::cell::RefCell::new(Vec::new());
        let _ = Config::from_lookup(|k| {
            seen.borrow_mut().push(k.to_owned());
            None
        });
        let mut seen = seen.into_inner();
        seen.sort();
        seen.dedup();
        let mut expected: Vec<String> = ENV_KEYS.iter().map(|k| (*k).to_owned()).collect();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn an_empty_environment_is_a_valid_config_without_anything_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c, Config::for_port(0).with_port(None));
    }

    impl Config {
        fn with_port(mut self, port: Option<u16>) -> Config {
            self.port = port;
            self
        }
    }

    #[test]
    fn a_port_that_is_not_a_number_is_refused_naming_the_key() {
        let err = config(&[(KEY_PORT, "80a")]).unwrap_err();
        assert_eq!(err.key(), KEY_PORT);
        assert!(
            err.to_string().contains("FUNCTIONS_CUSTOMHANDLER_PORT"),
            "{err}"
        );
        assert_eq!(config(&[(KEY_PORT, "70000")]).unwrap_err().key(), KEY_PORT);
    }

    #[test]
    fn serve_requires_the_port_naming_the_key() {
        let c = config(&[
            (KEY_DR_CONFIG_PATH, "dr.toml"),
            (KEY_STORAGE, "UseDevelopmentStorage=true"),
        ])
        .unwrap();
        let err = c.require_serve().unwrap_err();
        assert_eq!(err.key(), KEY_PORT);
        assert!(
            err.to_string()
                .starts_with("FUNCTIONS_CUSTOMHANDLER_PORT is not set")
        );
    }

    #[test]
    fn serve_requires_the_dr_config_path_and_storage() {
        let c = config(&[
            (KEY_PORT, "7071"),
            (KEY_STORAGE, "UseDevelopmentStorage=true"),
        ])
        .unwrap();
        assert_eq!(c.require_serve().unwrap_err().key(), KEY_DR_CONFIG_PATH);
        let c = config(&[(KEY_PORT, "7071"), (KEY_DR_CONFIG_PATH, "dr.toml")]).unwrap();
        assert_eq!(c.require_serve().unwrap_err().key(), KEY_STORAGE);
        let c = config(&[
            (KEY_PORT, " 7071 "),
            (KEY_DR_CONFIG_PATH, "dr.toml"),
            (KEY_STORAGE, "UseDevelopmentStorage=true"),
        ])
        .unwrap();
        assert_eq!(c.require_serve().unwrap(), 7071);
    }

    #[test]
    fn development_storage_points_at_azurite_on_loopback() {
        let c = config(&[(KEY_STORAGE, "UseDevelopmentStorage=true")]).unwrap();
        let Some(StorageSettings::ConnectionString(s)) = c.storage else {
            panic!("expected a connection string")
        };
        assert_eq!(s.account_name, "devstoreaccount1");
        assert_eq!(
            s.blob_endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(
            s.queue_endpoint.as_str(),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert!(s.is_development);
        assert_eq!(s.account_key.unwrap().expose(), AZURITE_KEY);
    }

    #[test]
    fn an_explicit_connection_string_keeps_its_endpoints_and_hides_its_key() {
        let cs = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=c2VjcmV0;\
                  BlobEndpoint=http://127.0.0.1:41000/devstoreaccount1;\
                  QueueEndpoint=http://127.0.0.1:41001/devstoreaccount1;";
        let c = config(&[(KEY_STORAGE, cs)]).unwrap();
        let rendered = format!("{c:?}");
        assert!(!rendered.contains("c2VjcmV0"), "{rendered}");
        let Some(StorageSettings::ConnectionString(s)) = c.storage else {
            panic!("expected a connection string")
        };
        assert_eq!(s.queue_endpoint.port(), Some(41001));
        assert!(s.is_development);
    }

    #[test]
    fn a_cloud_connection_string_derives_endpoints_from_the_account() {
        let cs = "DefaultEndpointsProtocol=https;AccountName=drapp;AccountKey=a2V5;EndpointSuffix=core.windows.net";
        let s = parse_connection_string(cs).unwrap();
        assert_eq!(
            s.blob_endpoint.as_str(),
            "https://drapp.blob.core.windows.net/"
        );
        assert_eq!(
            s.queue_endpoint.as_str(),
            "https://drapp.queue.core.windows.net/"
        );
        assert!(!s.is_development);
    }

    #[test]
    fn a_connection_string_without_credentials_is_refused_without_echoing_it() {
        let err = parse_connection_string("AccountName=drapp;Foo").unwrap_err();
        assert_eq!(err.key(), KEY_STORAGE);
        assert!(!err.to_string().contains("drapp"), "{err}");
        let err = parse_connection_string("AccountName=drapp").unwrap_err();
        assert!(err.to_string().contains("AccountKey"), "{err}");
    }

    #[test]
    fn identity_based_storage_needs_both_service_uris() {
        let err = config(&[(KEY_STORAGE_BLOB_URI, "https://a.blob.core.windows.net")]).unwrap_err();
        assert_eq!(err.key(), KEY_STORAGE_QUEUE_URI);
        let c = config(&[
            (KEY_STORAGE_BLOB_URI, "https://a.blob.core.windows.net"),
            (KEY_STORAGE_QUEUE_URI, "https://a.queue.core.windows.net"),
            (KEY_STORAGE_CREDENTIAL, "managedidentity"),
            (KEY_STORAGE_CLIENT_ID, "1111"),
        ])
        .unwrap();
        let Some(StorageSettings::Identity(id)) = c.storage else {
            panic!("expected identity storage")
        };
        assert!(id.managed_identity);
        assert_eq!(id.client_id.as_deref(), Some("1111"));
        let err = config(&[
            (KEY_STORAGE_BLOB_URI, "http://a.blob.core.windows.net"),
            (KEY_STORAGE_QUEUE_URI, "https://a.queue.core.windows.net"),
        ])
        .unwrap_err();
        assert_eq!(err.key(), KEY_STORAGE_BLOB_URI);
    }

    #[test]
    fn an_unknown_arm_auth_is_refused_listing_the_choices() {
        let err = config(&[(KEY_ARM_AUTH, "password")]).unwrap_err();
        assert_eq!(err.key(), KEY_ARM_AUTH);
        assert!(err.to_string().contains("managed-identity"), "{err}");
        assert_eq!(
            config(&[(KEY_ARM_AUTH, "Azure-CLI")]).unwrap().arm_auth,
            Some(ArmAuthKind::AzureCli)
        );
    }

    #[test]
    fn client_secret_auth_requires_its_three_settings() {
        let err =
            config(&[(KEY_ARM_AUTH, "client-secret"), (KEY_AZURE_CLIENT_ID, "c")]).unwrap_err();
        assert_eq!(err.key(), KEY_AZURE_TENANT_ID);
    }

    #[test]
    fn secrets_print_as_stars() {
        let c = config(&[
            (KEY_AZURE_CLIENT_SECRET, "s3cr3t-value"),
            (
                KEY_NOTIFY_WEBHOOK_URL,
                "https://hooks.example/x?sig=s3cr3t-sig",
            ),
        ])
        .unwrap();
        let rendered = format!("{c:?}");
        assert!(!rendered.contains("s3cr3t"), "{rendered}");
        assert_eq!(c.azure_client_secret.unwrap().to_string(), "***");
    }

    #[test]
    fn a_plain_http_webhook_is_refused_without_echoing_it() {
        let err =
            config(&[(KEY_NOTIFY_WEBHOOK_URL, "http://hooks.example/x?sig=abc")]).unwrap_err();
        assert_eq!(err.key(), KEY_NOTIFY_WEBHOOK_URL);
        assert!(!err.to_string().contains("sig=abc"));
        assert!(config(&[(KEY_NOTIFY_WEBHOOK_URL, "http://127.0.0.1:9/x")]).is_ok());
    }

    #[test]
    fn schedules_must_be_six_field_ncrontab_or_an_interval() {
        assert!(config(&[(KEY_REPLICATE_SCHEDULE, "0 */15 * * * *")]).is_ok());
        assert!(config(&[(KEY_READINESS_SCHEDULE, "00:05:00")]).is_ok());
        let err = config(&[(KEY_READINESS_SCHEDULE, "*/5 * * * *")]).unwrap_err();
        assert_eq!(err.key(), KEY_READINESS_SCHEDULE);
        assert!(err.to_string().contains("six-field"), "{err}");
    }

    #[test]
    fn an_arm_endpoint_must_be_a_url() {
        assert_eq!(
            config(&[(KEY_ARM_ENDPOINT, "management")])
                .unwrap_err()
                .key(),
            KEY_ARM_ENDPOINT
        );
        assert!(config(&[(KEY_ARM_ENDPOINT, "http://127.0.0.1:8080")]).is_ok());
    }
}
