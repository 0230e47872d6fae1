//! The one place that turns configuration into an ARM client: the DR config's `[arm]` section,
//! the `ARM_ENDPOINT` / `ARM_AUTH` overrides and the `AZURE_*` identity settings of the runtime
//! [`Config`] → [`crate::arm::ArmSettings`] → [`ArmClient`].
//!
//! Every caller (the `check`, `plan` and `replicate` CLIs, the Functions handlers through
//! `AppState`, benchmarks and tests) builds its client here, so the override order and the
//! transport rule are the same everywhere:
//! 1. `[arm]` from the DR config (endpoint, auth, static token, concurrency, deadline);
//! 2. `ARM_ENDPOINT` replaces the endpoint, `ARM_AUTH` the auth kind (CONTRACTS.md);
//! 3. the result must pass [`check_arm_transport`] (plain `http://`, static tokens and no auth
//!    only for a loopback endpoint);
//! 4. credentials take their ids/secrets from `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`,
//!    `AZURE_CLIENT_SECRET` (missing ones are named in the error).
//!
//! Building a client does no IO (tokens are fetched on the first call), so this is cheap enough
//! for lazy initialisation in `AppState`.
//!
//! Lives in `config` (not `arm`) because it is configuration glue; it may import `arm`'s client
//! types and `config::dr`, nothing else of the crate. Secrets stay wrapped; errors name keys,
//! never values.

use std::time::Duration;

use crate::arm::auth::{AuthMode, Secret as ArmSecret};
use crate::arm::client::{ArmClient, ArmSettings as ClientSettings};
use crate::arm::error::ArmError;

use super::dr::{ArmAuth, ArmSettings, DrConfig, check_arm_transport};
use super::{Config, KEY_AZURE_CLIENT_ID, KEY_AZURE_CLIENT_SECRET, KEY_AZURE_TENANT_ID};

/// Why no ARM client could be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ArmSetupError {
    /// The endpoint/auth combination breaks the transport rule (names where it came from).
    #[error("{source_name}: {reason}")]
    CheckTransport {
        /// `[arm].endpoint / ARM_ENDPOINT / ARM_AUTH`.
        source_name: &'static str,
        reason: String,
    },
    /// `static-token` auth without a token in `[arm].token`.
    #[error("auth \"static-token\" needs [arm].token in the DR config")]
    MissingStaticToken,
    /// A credential setting the chosen auth needs is not set.
    #[error("{key} is not set but ARM auth \"{auth}\" needs it")]
    MissingIdentitySetting {
        key: &'static str,
        auth: &'static str,
    },
    /// `RECORD_DIR` / `--record DIR` names a directory that cannot be written.
    #[error("RECORD_DIR / --record: {0}")]
    Record(#[from] crate::arm::record::RecordError),
    /// The client itself refused the settings.
    #[error("cannot build the ARM client for {endpoint}")]
    BuildClient {
        endpoint: String,
        #[source]
        source: ArmError,
    },
}

/// `[arm]` with the `ARM_ENDPOINT` / `ARM_AUTH` overrides of `env` applied, checked against the
/// transport rule.
pub fn effective_arm(arm: &ArmSettings, env: &Config) -> Result<ArmSettings, ArmSetupError> {
    let mut out = arm.clone();
    if let Some(endpoint) = &env.arm_endpoint {
        out.endpoint = endpoint.clone();
    }
    if let Some(auth) = env.arm_auth {
        out.auth = auth;
    }
    check_arm_transport(&out.endpoint, out.auth).map_err(|reason| {
        ArmSetupError::CheckTransport {
            source_name: "[arm].endpoint / ARM_ENDPOINT / ARM_AUTH",
            reason,
        }
    })?;
    Ok(out)
}

/// The client settings for an (already effective) `[arm]` section and the `AZURE_*` identity
/// settings of `env`.
pub fn client_settings(arm: &ArmSettings, env: &Config) -> Result<ClientSettings, ArmSetupError> {
    let need = |key: &'static str, value: &Option<String>| {
        value.clone().ok_or(ArmSetupError::MissingIdentitySetting {
            key,
            auth: "client-secret",
        })
    };
    let auth = match arm.auth {
        ArmAuth::ManagedIdentity => AuthMode::ManagedIdentity {
            client_id: env.azure_client_id.clone(),
        },
        ArmAuth::WorkloadIdentity => AuthMode::WorkloadIdentity {
            tenant_id: env.azure_tenant_id.clone(),
            client_id: env.azure_client_id.clone(),
            token_file: None,
        },
        ArmAuth::AzureCli => AuthMode::AzureCli {
            tenant_id: env.azure_tenant_id.clone(),
        },
        ArmAuth::ClientSecret => AuthMode::ClientSecret {
            tenant_id: need(KEY_AZURE_TENANT_ID, &env.azure_tenant_id)?,
            client_id: need(KEY_AZURE_CLIENT_ID, &env.azure_client_id)?,
            secret: ArmSecret::new(
                env.azure_client_secret
                    .as_ref()
                    .ok_or(ArmSetupError::MissingIdentitySetting {
                        key: KEY_AZURE_CLIENT_SECRET,
                        auth: "client-secret",
                    })?
                    .expose()
                    .to_owned(),
            ),
        },
        ArmAuth::StaticToken => AuthMode::StaticToken(ArmSecret::new(
            arm.token
                .as_ref()
                .ok_or(ArmSetupError::MissingStaticToken)?
                .expose()
                .to_owned(),
        )),
        ArmAuth::None => AuthMode::None,
    };
    let mut settings = ClientSettings::new(arm.endpoint.clone(), auth);
    settings.max_concurrency = arm.max_concurrency.max(1);
    settings.deadline = arm.deadline.max(Duration::from_secs(1));
    Ok(settings)
}

/// Builds the ARM client for `dr` with the overrides and identity settings of `env`.
pub fn arm_client(dr: &DrConfig, env: &Config) -> Result<ArmClient, ArmSetupError> {
    let arm = effective_arm(&dr.arm, env)?;
    let settings = client_settings(&arm, env)?;
    let client = ArmClient::new(settings).map_err(|source| ArmSetupError::BuildClient {
        endpoint: arm.endpoint.to_string(),
        source,
    })?;
    with_recording(client, env.record_dir.as_deref(), env.record_keep_ids)
}

/// `client`, recording every exchange into `dir` when one is given (`RECORD_DIR`, `--record
/// DIR`; ids sanitised unless `keep_ids`). Tells the operator where the file goes (stderr).
pub fn with_recording(
    client: ArmClient,
    dir: Option<&std::path::Path>,
    keep_ids: bool,
) -> Result<ArmClient, ArmSetupError> {
    let Some(dir) = dir else {
        return Ok(client);
    };
    let recorder = crate::arm::record::Recorder::create(dir, keep_ids)?;
    eprintln!(
        "recording ARM exchanges to {} (sanitised{})",
        recorder.path().display(),
        if keep_ids { "; ids kept" } else { "" }
    );
    Ok(client.with_recorder(&recorder))
}

/// The identity settings (`AZURE_*`) of the process environment, without the endpoint/auth
/// overrides: for callers that hand over a fully prepared DR config (tests, benchmarks, the
/// simulator-generated configs).
pub fn identity_env() -> Config {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let mut env = Config::for_port(0);
    env.port = None;
    env.azure_client_id = var(KEY_AZURE_CLIENT_ID);
    env.azure_tenant_id = var(KEY_AZURE_TENANT_ID);
    env.azure_client_secret = var(KEY_AZURE_CLIENT_SECRET).map(super::Secret::new);
    env
}

/// Builds the ARM client from the DR config's `[arm]` exactly as given (no `ARM_ENDPOINT` /
/// `ARM_AUTH` overrides) with the `AZURE_*` identity settings of the process environment.
pub fn arm_client_from_config(dr: &DrConfig) -> Result<ArmClient, ArmSetupError> {
    let env = identity_env();
    check_arm_transport(&dr.arm.endpoint, dr.arm.auth).map_err(|reason| {
        ArmSetupError::CheckTransport {
            source_name: "[arm].endpoint",
            reason,
        }
    })?;
    let settings = client_settings(&dr.arm, &env)?;
    ArmClient::new(settings).map_err(|source| ArmSetupError::BuildClient {
        endpoint: dr.arm.endpoint.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback_arm() -> ArmSettings {
        ArmSettings {
            endpoint: url::Url::parse("http://127.0.0.1:9/").unwrap(),
            auth: ArmAuth::StaticToken,
            token: Some(super::super::Secret::new("sim")),
            max_concurrency: 4,
            deadline: Duration::from_secs(30),
        }
    }

    #[test]
    fn env_overrides_replace_endpoint_and_auth() {
        let mut env = Config::for_port(0);
        env.arm_endpoint = Some(url::Url::parse("http://127.0.0.1:4242/").unwrap());
        env.arm_auth = Some(ArmAuth::None);
        let arm = effective_arm(&loopback_arm(), &env).unwrap();
        assert_eq!(arm.endpoint.port(), Some(4242));
        assert_eq!(arm.auth, ArmAuth::None);
        assert_eq!(arm.max_concurrency, 4);
    }

    #[test]
    fn an_override_to_a_remote_http_endpoint_is_refused() {
        let mut env = Config::for_port(0);
        env.arm_endpoint = Some(url::Url::parse("http://management.example.com/").unwrap());
        let err = effective_arm(&loopback_arm(), &env).unwrap_err();
        assert!(err.to_string().contains("ARM_ENDPOINT"), "{err}");
    }

    #[test]
    fn client_secret_auth_names_the_missing_setting() {
        let mut arm = loopback_arm();
        arm.endpoint = url::Url::parse("https://management.azure.com/").unwrap();
        arm.auth = ArmAuth::ClientSecret;
        let mut env = Config::for_port(0);
        env.azure_tenant_id = Some("t".into());
        let err = client_settings(&arm, &env).unwrap_err();
        assert!(err.to_string().contains(KEY_AZURE_CLIENT_ID), "{err}");
    }

    #[test]
    fn static_token_without_a_token_is_an_error_not_an_empty_bearer() {
        let mut arm = loopback_arm();
        arm.token = None;
        let err = client_settings(&arm, &Config::for_port(0)).unwrap_err();
        assert!(matches!(err, ArmSetupError::MissingStaticToken));
    }

    #[test]
    fn settings_carry_concurrency_and_deadline() {
        let s = client_settings(&loopback_arm(), &Config::for_port(0)).unwrap();
        assert_eq!(s.max_concurrency, 4);
        assert_eq!(s.deadline, Duration::from_secs(30));
        assert_eq!(s.auth.name(), "static-token");
    }
}
