//! Security checks (issue 8): ARM is reached over https, except the loopback simulator.
//!
//! Plain `http://` to a non-loopback host is refused with every auth mode, and the
//! `static-token` / `none` auth modes are refused for any non-loopback endpoint — at both gates:
//! building an [`ArmClient`] (`arm::auth::check_endpoint`) and loading the DR config
//! (`[arm]`, `config::dr::check_arm_transport`). Loopback endpoints (`127.0.0.0/8`, `::1`,
//! `localhost`) and https endpoints with a real credential are accepted at both gates. The
//! refusals name the endpoint or the key and never echo the static token.
//! `NOTIFY_WEBHOOK_URL` follows the same rule (https, or http to loopback).

use datashare_dr::arm::auth::{AuthMode, Secret};
use datashare_dr::arm::client::{ArmClient, ArmSettings};
use datashare_dr::config::dr::DrConfig;
use datashare_dr::config::{Config, KEY_NOTIFY_WEBHOOK_URL};
use url::Url;

const TOKEN: &str = "armtoken-SECRET-0a1b2c3d4e5f";
const SUB: &str = "11111111-2222-3333-4444-555555555555";

/// Auth modes as (DR config word, client mode).
fn modes() -> Vec<(&'static str, AuthMode)> {
    vec![
        ("static-token", AuthMode::StaticToken(Secret::new(TOKEN))),
        ("none", AuthMode::None),
        (
            "managed-identity",
            AuthMode::ManagedIdentity { client_id: None },
        ),
        ("azure-cli", AuthMode::AzureCli { tenant_id: None }),
    ]
}

fn is_loopback_only(word: &str) -> bool {
    matches!(word, "static-token" | "none")
}

/// Non-loopback endpoints, including look-alikes of loopback names and addresses.
const REMOTE_HTTP: &[&str] = &[
    "http://management.azure.com",
    "http://10.0.0.5:8080",
    "http://0.0.0.0:8080",
    "http://192.168.1.10",
    "http://localhost.example.com:8080",
    "http://127.0.0.1.nip.io:8080",
    "http://[2001:db8::1]:8080",
    // `*.localhost` is left to the resolver; only the literal name counts as loopback.
    "http://arm.localhost:8080",
];
const REMOTE_HTTPS: &[&str] = &[
    "https://management.azure.com",
    "https://10.0.0.5:8443",
    "https://localhost.example.com",
];
const LOOPBACK: &[&str] = &[
    "http://127.0.0.1:8080",
    "http://127.10.0.1:8080",
    "http://localhost:1234",
    "http://[::1]:8080",
    "https://127.0.0.1:8443",
];

fn client(endpoint: &str, auth: AuthMode) -> Result<ArmClient, String> {
    let url = Url::parse(endpoint).map_err(|e| e.to_string())?;
    ArmClient::new(ArmSettings::new(url, auth)).map_err(|e| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    })
}

fn acct(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.DataShare/accounts/{name}"
    )
}

fn dr_config(endpoint: &str, auth: &str) -> Result<DrConfig, String> {
    let token = if auth == "static-token" {
        format!("token = \"{TOKEN}\"\n")
    } else {
        String::new()
    };
    let text = format!(
        r#"[arm]
endpoint = "{endpoint}"
auth = "{auth}"
{token}
[[pairs]]
name = "sales"
primary = "{p}"
secondary = "{s}"
primary_region = "westeurope"
secondary_region = "northeurope"
"#,
        p = acct("rg-weu", "sales-weu"),
        s = acct("rg-neu", "sales-neu"),
    );
    DrConfig::from_toml_str(&text, "dr.toml").map_err(|e| e.to_string())
}

#[test]
fn the_arm_client_refuses_plain_http_to_a_remote_host_with_every_auth_mode() {
    for endpoint in REMOTE_HTTP {
        for (word, auth) in modes() {
            let err = client(endpoint, auth)
                .err()
                .unwrap_or_else(|| panic!("{endpoint} with {word} was accepted"));
            assert!(err.contains("http"), "{endpoint} {word}: {err}");
            assert!(!err.contains(TOKEN), "the refusal echoes the token: {err}");
        }
    }
}

#[test]
fn the_arm_client_refuses_static_token_and_no_auth_for_a_remote_https_endpoint() {
    for endpoint in REMOTE_HTTPS {
        for (word, auth) in modes() {
            let result = client(endpoint, auth);
            if is_loopback_only(word) {
                let err = result
                    .err()
                    .unwrap_or_else(|| panic!("{endpoint} with {word} was accepted"));
                assert!(
                    err.contains(word),
                    "{endpoint}: the refusal does not name {word}: {err}"
                );
                assert!(!err.contains(TOKEN), "the refusal echoes the token: {err}");
            } else {
                assert!(result.is_ok(), "{endpoint} with {word}: {:?}", result.err());
            }
        }
    }
}

#[test]
fn the_arm_client_accepts_every_auth_mode_on_a_loopback_endpoint() {
    for endpoint in LOOPBACK {
        for (word, auth) in modes() {
            let result = client(endpoint, auth);
            assert!(result.is_ok(), "{endpoint} with {word}: {:?}", result.err());
        }
    }
}

#[test]
fn the_dr_config_refuses_the_same_endpoints_and_names_the_arm_section() {
    for endpoint in REMOTE_HTTP.iter().chain(REMOTE_HTTPS) {
        for (word, _) in modes() {
            let remote_https = endpoint.starts_with("https://");
            let result = dr_config(endpoint, word);
            if remote_https && !is_loopback_only(word) {
                assert!(result.is_ok(), "{endpoint} with {word}: {:?}", result.err());
                continue;
            }
            let err = result
                .err()
                .unwrap_or_else(|| panic!("dr.toml with {endpoint} and {word} was accepted"));
            assert!(
                err.contains("arm."),
                "{endpoint} {word}: the key is not named: {err}"
            );
            assert!(
                err.contains("dr.toml:"),
                "{endpoint} {word}: no position: {err}"
            );
            assert!(!err.contains(TOKEN), "the refusal echoes the token: {err}");
        }
    }
    for endpoint in LOOPBACK {
        for (word, _) in modes() {
            let result = dr_config(endpoint, word);
            assert!(result.is_ok(), "{endpoint} with {word}: {:?}", result.err());
        }
    }
}

#[test]
fn a_static_token_in_the_wrong_place_is_refused_without_echoing_it() {
    // a token next to an auth mode that does not use it, and a token of the wrong type
    let base = dr_config("http://127.0.0.1:8080", "static-token").map(|_| ());
    assert!(base.is_ok(), "{base:?}");
    for (auth, token_line) in [
        ("managed-identity", format!("token = \"{TOKEN}\"")),
        ("static-token", format!("token = [\"{TOKEN}\"]")),
        ("static-token", format!("token = {{ value = \"{TOKEN}\" }}")),
    ] {
        let text = format!(
            "[arm]\nendpoint = \"https://management.azure.com\"\nauth = \"{auth}\"\n{token_line}\n"
        );
        let err = DrConfig::from_toml_str(&text, "dr.toml")
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"));
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("arm"), "{shown}");
        assert!(
            !shown.contains(TOKEN),
            "the refusal echoes the token:\n{shown}"
        );
    }
}

#[test]
fn the_notification_webhook_must_be_https_or_loopback() {
    let parse = |url: &str| {
        Config::from_lookup(|k| (k == KEY_NOTIFY_WEBHOOK_URL).then(|| url.to_owned()))
            .map(|c| c.notify_webhook_url.is_some())
            .map_err(|e| e.to_string())
    };
    for bad in REMOTE_HTTP
        .iter()
        .map(|u| format!("{u}/hook?sig=SECRETSIG"))
        .chain([
            "ftp://127.0.0.1/hook".to_owned(),
            "not a url SECRETSIG".to_owned(),
        ])
    {
        let err = parse(&bad)
            .err()
            .unwrap_or_else(|| panic!("{bad} was accepted"));
        assert!(err.contains(KEY_NOTIFY_WEBHOOK_URL), "{err}");
        assert!(
            !err.contains("SECRETSIG"),
            "the refusal echoes the URL: {err}"
        );
    }
    for good in [
        "https://prod-00.westeurope.logic.azure.com/workflows/x/triggers/manual/paths/invoke?sig=s",
        "http://127.0.0.1:7000/hook",
        "http://localhost:7000/hook",
    ] {
        assert_eq!(parse(good), Ok(true), "{good}");
    }
}

#[test]
fn env_overrides_cannot_send_a_static_token_or_plain_http_off_the_machine() {
    use datashare_dr::config::arm::arm_client;
    use datashare_dr::config::{KEY_ARM_AUTH, KEY_ARM_ENDPOINT};

    let env = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .expect("the settings parse")
    };
    let loopback_static = dr_config("http://127.0.0.1:8080", "static-token").expect("loads");
    let remote_mi = dr_config("https://management.azure.com", "managed-identity").expect("loads");
    let refused = [
        // the static token of a simulator config pointed at real ARM
        (
            &loopback_static,
            env(&[(KEY_ARM_ENDPOINT, "https://management.azure.com")]),
        ),
        (
            &loopback_static,
            env(&[(KEY_ARM_ENDPOINT, "http://10.0.0.5:8080")]),
        ),
        // plain http to a remote host, with a real credential
        (
            &remote_mi,
            env(&[(KEY_ARM_ENDPOINT, "http://management.azure.com")]),
        ),
        // no auth, or a static token, against the remote endpoint of the config
        (&remote_mi, env(&[(KEY_ARM_AUTH, "none")])),
        (&remote_mi, env(&[(KEY_ARM_AUTH, "static-token")])),
    ];
    for (dr, config) in refused {
        let err = arm_client(dr, &config)
            .err()
            .unwrap_or_else(|| panic!("accepted: {:?} with {:?}", dr.arm, config));
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("ARM_"), "the override is not named: {shown}");
        assert!(
            !shown.contains(TOKEN),
            "the refusal echoes the token: {shown}"
        );
    }
    let accepted = [
        (&loopback_static, env(&[])),
        (
            &loopback_static,
            env(&[(KEY_ARM_ENDPOINT, "http://localhost:9000")]),
        ),
        (&remote_mi, env(&[])),
    ];
    for (dr, config) in accepted {
        let result = arm_client(dr, &config).map(|_| ());
        assert!(result.is_ok(), "{:?} with {:?}: {result:?}", dr.arm, config);
    }
}
