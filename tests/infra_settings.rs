//! The Bicep in `infra/` against the code's own names (issue 7, "Done when"):
//! - the app settings of the Function App are exactly the keys `Config` reads
//!   (`config::ENV_KEYS`), minus the keys that are deliberately not app settings in Azure, plus
//!   the documented host-owned extras;
//! - the queue and container names the storage module creates are the ones the store module
//!   uses (`store::{STAGE_QUEUE, ...}`) and the ones docs/CONTRACTS.md fixes;
//! - the action group calls the function and route that CONTRACTS.md gives `AlertWebhook`.
//!
//! The Bicep is read as text with a tiny line scanner (no regex crate): the app settings sit
//! between `// app-settings:begin` and `// app-settings:end` in `infra/modules/functionapp.bicep`,
//! one `KEY: value` per line, and the `sites/config` resource unions exactly the variables
//! declared in that block.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use datashare_dr::config::{ENV_KEYS, HOST_PROVIDED_KEYS};
use datashare_dr::store::{
    CONTAINER, NOTIFICATIONS_QUEUE, REPLICATE_PAIRS_QUEUE, STAGE_POISON_QUEUE, STAGE_QUEUE,
};

/// Keys `Config` reads that are deliberately NOT Azure app settings (reasons in docs/deploy.md
/// "App settings"): the port is injected by the host per process (`HOST_PROVIDED_KEYS`), the
/// storage connection string is for Azurite only (shared keys are disabled in Azure), and the
/// client secret is never used (the app authenticates with its managed identity).
/// `RECORD_DIR` is for evidence-gathering runs on an operator's machine (docs/recording.md).
const NOT_SET_IN_AZURE: &[&str] = &["AzureWebJobsStorage", "AZURE_CLIENT_SECRET", "RECORD_DIR"];

/// App settings read by the Functions host / platform, not by `Config`.
const HOST_OWNED_EXTRAS: &[&str] = &[
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "WEBSITE_RUN_FROM_PACKAGE",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Lines strictly between two marker lines (trimmed markers must match exactly).
fn block<'a>(text: &'a str, begin: &str, end: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.trim() == begin);
    let stop = lines.iter().position(|l| l.trim() == end);
    match (start, stop) {
        (Some(a), Some(b)) if a < b => lines[a + 1..b].to_vec(),
        _ => panic!("markers `{begin}` .. `{end}` not found in order"),
    }
}

/// `KEY: value` keys of object literals in `lines` (comments and `var` lines skipped).
fn object_keys(lines: &[&str]) -> Vec<String> {
    let mut keys = Vec::new();
    for line in lines {
        let t = line.trim();
        if t.is_empty() || t.starts_with("//") || t.starts_with("var ") {
            continue;
        }
        if let Some((key, _)) = t.split_once(':') {
            let key = key.trim().trim_matches('\'');
            if is_ident(key) {
                keys.push(key.to_string());
            }
        }
    }
    keys
}

/// Names declared with `var NAME =` in `lines`.
fn declared_vars(lines: &[&str]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("var "))
        .filter_map(|rest| {
            rest.split_once('=')
                .map(|(name, _)| name.trim().to_string())
        })
        .collect()
}

/// Arguments of the `union(...)` on the `properties:` line that follows `name: 'appsettings'`.
fn appsettings_union_args(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == "name: 'appsettings'")
        .expect("a sites/config resource named 'appsettings'");
    let props = lines[at..]
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("properties:"))
        .expect("a properties: line after name: 'appsettings'");
    let inner = props
        .strip_prefix("properties:")
        .map(str::trim)
        .and_then(|r| r.strip_prefix("union("))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("appsettings properties must be union(<vars>): `{props}`"));
    inner.split(',').map(|a| a.trim().to_string()).collect()
}

/// Keys of the "Runtime settings" table of docs/CONTRACTS.md (first column, back-quoted).
fn contract_runtime_keys() -> BTreeSet<String> {
    let text = read("docs/CONTRACTS.md");
    let mut in_section = false;
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("## ") {
            in_section = line.contains("Runtime settings");
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some(rest) = line.strip_prefix("| `")
            && let Some((key, _)) = rest.split_once('`')
        {
            keys.insert(key.to_string());
        }
    }
    keys
}

/// Single-quoted string literals in `text`.
fn quoted(text: &str) -> Vec<String> {
    text.split('\'')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

fn app_setting_keys() -> (BTreeSet<String>, Vec<String>) {
    let text = read("infra/modules/functionapp.bicep");
    let lines = block(&text, "// app-settings:begin", "// app-settings:end");
    let keys = object_keys(&lines);
    let vars = declared_vars(&lines);
    for arg in appsettings_union_args(&text) {
        assert!(
            vars.contains(&arg),
            "appsettings unions `{arg}`, which is not declared between the app-settings markers"
        );
    }
    (keys.iter().cloned().collect(), keys)
}

#[test]
fn holds_bicep_app_settings_equal_to_the_keys_config_reads() {
    let (bicep, listed) = app_setting_keys();
    let mut seen = BTreeSet::new();
    for key in &listed {
        assert!(
            seen.insert(key.clone()),
            "app setting {key} is listed twice"
        );
    }

    let env_keys = set(ENV_KEYS);
    let mut not_in_azure = set(NOT_SET_IN_AZURE);
    not_in_azure.extend(set(HOST_PROVIDED_KEYS));
    let extras = set(HOST_OWNED_EXTRAS);

    for key in &not_in_azure {
        assert!(
            env_keys.contains(key),
            "{key} is excluded from Azure but Config does not read it (stale exclusion)"
        );
        assert!(
            !bicep.contains(key),
            "{key} must not be an Azure app setting (see docs/deploy.md)"
        );
    }
    for key in &extras {
        assert!(
            !env_keys.contains(key),
            "{key} is read by Config, so it is not a host-owned extra"
        );
    }

    let expected: BTreeSet<String> = env_keys.difference(&not_in_azure).cloned().collect();
    let actual: BTreeSet<String> = bicep.difference(&extras).cloned().collect();
    let missing: Vec<_> = expected.difference(&actual).collect();
    let unknown: Vec<_> = actual.difference(&expected).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "Bicep app settings differ from the keys Config reads: missing {missing:?}, not read by Config {unknown:?}"
    );
}

#[test]
fn keeps_config_keys_equal_to_the_contract_table() {
    let contract = contract_runtime_keys();
    assert!(
        !contract.is_empty(),
        "no keys found in docs/CONTRACTS.md Runtime settings"
    );
    assert_eq!(
        set(ENV_KEYS),
        contract,
        "config::ENV_KEYS vs docs/CONTRACTS.md Runtime settings"
    );
}

#[test]
fn documents_every_key_left_out_of_azure_and_every_extra() {
    let deploy = read("docs/deploy.md");
    let mut documented: Vec<&str> = NOT_SET_IN_AZURE.to_vec();
    documented.extend_from_slice(HOST_PROVIDED_KEYS);
    documented.extend_from_slice(HOST_OWNED_EXTRAS);
    for key in documented {
        assert!(
            deploy.contains(&format!("`{key}`")),
            "docs/deploy.md does not explain `{key}`"
        );
    }
    let (bicep, _) = app_setting_keys();
    for key in &bicep {
        assert!(
            deploy.contains(&format!("`{key}`")),
            "docs/deploy.md does not list app setting `{key}`"
        );
    }
}

#[test]
fn creates_exactly_the_queues_and_container_the_code_uses() {
    let text = read("infra/modules/storage.bicep");
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "var queueNames = [")
        .expect("`var queueNames = [` in storage.bicep");
    let end = lines[start..]
        .iter()
        .position(|l| l.trim() == "]")
        .map(|i| start + i)
        .expect("end of queueNames");
    let queues: BTreeSet<String> = lines[start + 1..end]
        .iter()
        .flat_map(|l| quoted(l))
        .collect();
    assert_eq!(
        queues,
        set(&[
            STAGE_QUEUE,
            STAGE_POISON_QUEUE,
            NOTIFICATIONS_QUEUE,
            REPLICATE_PAIRS_QUEUE,
        ])
    );
    assert!(
        text.contains("[for q in queueNames: {"),
        "the queue resource must loop over queueNames"
    );

    let container_line = lines
        .iter()
        .find(|l| l.trim().starts_with("var dataContainerName ="))
        .expect("var dataContainerName in storage.bicep");
    assert_eq!(quoted(container_line), vec![CONTAINER.to_string()]);
    assert!(
        text.contains("name: dataContainerName"),
        "the container resource must use dataContainerName"
    );
}

#[test]
fn matches_storage_names_of_the_contract() {
    let text = read("docs/CONTRACTS.md");
    let queues_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("- Queues:"))
        .expect("CONTRACTS.md Queues line");
    let queues: BTreeSet<String> = queues_line
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert_eq!(
        queues,
        set(&[
            STAGE_QUEUE,
            STAGE_POISON_QUEUE,
            NOTIFICATIONS_QUEUE,
            REPLICATE_PAIRS_QUEUE,
        ])
    );
    let container_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("- Blob container:"))
        .expect("CONTRACTS.md Blob container line");
    assert_eq!(container_line.split('`').nth(1), Some(CONTAINER));
}

#[test]
fn points_the_action_group_at_the_alert_webhook_route() {
    let route = read("docs/CONTRACTS.md")
        .lines()
        .find(|l| l.starts_with("| AlertWebhook |"))
        .and_then(|l| l.split('`').nth(1).map(str::to_string))
        .expect("AlertWebhook row with a route in CONTRACTS.md");
    let bicep = read("infra/modules/action-group.bicep");
    assert!(
        bicep.contains("/functions/AlertWebhook'"),
        "listKeys must target the AlertWebhook function"
    );
    assert!(
        bicep.contains(&format!("/api/{route}?code=")),
        "the webhook must call /api/{route} with the function key"
    );
    assert!(
        bicep.contains("useCommonAlertSchema: true"),
        "the receiver must use the common alert schema"
    );

    // When the function definition exists, its route must be the same.
    let function_json: &Path = Path::new("functions/AlertWebhook/function.json");
    let path = repo().join(function_json);
    if path.is_file() {
        let value: serde_json::Value =
            serde_json::from_str(&read("functions/AlertWebhook/function.json"))
                .expect("function.json is JSON");
        let routes: Vec<&str> = value["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["route"].as_str())
            .collect();
        assert_eq!(
            routes,
            vec![route.as_str()],
            "functions/AlertWebhook/function.json route"
        );
    }
}

#[test]
fn gives_both_alert_rules_to_the_action_group_with_the_pair() {
    let text = read("infra/modules/alert-rules.bicep");
    for needle in [
        "equals: 'ResourceHealth'",
        "equals: 'ServiceHealth'",
        "equals: 'Incident'",
        "'properties.impactedServices[*].ServiceName'",
        "'properties.impactedServices[*].ImpactedRegions[*].RegionName'",
        "pair: pairName",
    ] {
        assert!(text.contains(needle), "alert-rules.bicep lacks `{needle}`");
    }
    assert_eq!(text.matches("actionGroupId: actionGroupId").count(), 2);
}

#[test]
fn scanner_reads_keys_and_skips_comments() {
    let lines = [
        "// Note: not a key",
        "var x = {",
        "  A_KEY: 'v'",
        "  AzureWebJobsStorage__clientId: id",
        "  // B_KEY: commented out",
        "  'quoted-no': 1",
        "}",
    ];
    assert_eq!(
        object_keys(&lines),
        vec!["A_KEY", "AzureWebJobsStorage__clientId"]
    );
    assert_eq!(declared_vars(&lines), set(&["x"]));
    assert_eq!(quoted("  'a'\n  'b-c'"), vec!["a", "b-c"]);
}

/// `/api/...:` path keys of docs/openapi.yaml (two-space indented keys under `paths:`).
fn openapi_paths() -> BTreeSet<String> {
    read("docs/openapi.yaml")
        .lines()
        .filter(|l| l.starts_with("  /api/"))
        .filter_map(|l| l.trim().strip_suffix(':'))
        .map(str::to_string)
        .collect()
}

#[test]
fn documents_every_http_route_of_the_contract_in_openapi() {
    // HTTP rows of the CONTRACTS.md function table: | Name | http ... | `route` |
    let contracts = read("docs/CONTRACTS.md");
    let mut expected = BTreeSet::new();
    for line in contracts.lines().filter(|l| l.contains("| http ")) {
        let route = line.split('`').nth(1).expect("route in back-quotes");
        // `readiness/{pair?}` -> /api/readiness and /api/readiness/{pair};
        // `failover/{runId}/{action?}` -> /api/failover/{runId}, .../approve, .../cancel.
        let mut fixed = String::from("/api");
        let mut optional = Vec::new();
        for seg in route.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("?}")) {
                optional.push(name.to_string());
            } else {
                fixed.push('/');
                fixed.push_str(seg);
            }
        }
        match optional.as_slice() {
            [] => {
                expected.insert(fixed);
            }
            [name] if name == "action" => {
                expected.insert(fixed.clone());
                expected.insert(format!("{fixed}/approve"));
                expected.insert(format!("{fixed}/cancel"));
            }
            [name] => {
                expected.insert(fixed.clone());
                expected.insert(format!("{fixed}/{{{name}}}"));
            }
            more => panic!("unexpected optional route segments {more:?} in `{route}`"),
        }
    }
    assert!(
        expected.len() >= 5,
        "too few HTTP routes parsed from CONTRACTS.md: {expected:?}"
    );
    assert_eq!(
        openapi_paths(),
        expected,
        "docs/openapi.yaml paths vs CONTRACTS.md HTTP routes"
    );
}

#[test]
fn declares_both_function_key_schemes_in_openapi() {
    let text = read("docs/openapi.yaml");
    for needle in [
        "in: query\n      name: code",
        "in: header\n      name: x-functions-key",
    ] {
        assert!(
            text.contains(needle),
            "openapi.yaml lacks security scheme `{needle}`"
        );
    }
}

/// Issue 15: the notification webhook URLs reach the app only as Key Vault references, from
/// secrets the template puts in a vault on which the app identity is Key Vault Secrets User.
#[test]
fn takes_notification_webhook_urls_from_key_vault_references() {
    let text = read("infra/modules/functionapp.bicep");
    let lines = block(&text, "// app-settings:begin", "// app-settings:end");
    for key in ["NOTIFY_WEBHOOK_URL", "NOTIFY_TEAMS_WEBHOOK_URL"] {
        let line = lines
            .iter()
            .map(|l| l.trim())
            .find(|l| l.starts_with(&format!("{key}:")))
            .unwrap_or_else(|| panic!("{key} is not an app setting"));
        let value = line.split_once(':').map(|(_, v)| v.trim()).unwrap_or("");
        assert!(
            value.starts_with("'@Microsoft.KeyVault(SecretUri=${") && value.ends_with("})'"),
            "{key} must be a Key Vault reference `@Microsoft.KeyVault(SecretUri=...)`, got `{value}`"
        );
    }
    assert!(
        !text.contains("param notifyWebhookUrl") && !text.contains("param notifyTeamsWebhookUrl"),
        "functionapp.bicep must not take the plain webhook URLs"
    );
    let kv = read("infra/modules/keyvault.bicep");
    for needle in [
        "Microsoft.KeyVault/vaults/secrets@",
        "value: notifyWebhookUrl",
        "value: notifyTeamsWebhookUrl",
        // Key Vault Secrets User, assigned to the app identity on the vault.
        "'4633458b-17de-408a-b874-0445c86b69e6'",
        "principalId: appPrincipalId",
        "enableRbacAuthorization: true",
    ] {
        assert!(kv.contains(needle), "keyvault.bicep lacks `{needle}`");
    }
    let main = read("infra/main.bicep");
    for needle in [
        "module keyVault 'modules/keyvault.bicep'",
        "param keyVaultId string = ''",
        "notifyWebhookSecretUri: notifyWebhookSecretUri",
        "notifyTeamsWebhookSecretUri: notifyTeamsWebhookSecretUri",
    ] {
        assert!(main.contains(needle), "main.bicep lacks `{needle}`");
    }
}

/// Issue 15: private networking is optional (default off) and, when on, puts storage behind
/// private endpoints for blob and queue and the app behind access restrictions; docs/deploy.md
/// documents every parameter with its default.
#[test]
fn offers_private_networking_off_by_default_and_documents_it() {
    let main = read("infra/main.bicep");
    let storage = read("infra/modules/storage.bicep");
    let app = read("infra/modules/functionapp.bicep");
    let docs = read("docs/deploy.md");
    assert!(main.contains("param enablePrivateNetworking bool = false"));
    for needle in [
        "publicNetworkAccess: enablePrivateNetworking ? 'Disabled' : 'Enabled'",
        "defaultAction: enablePrivateNetworking ? 'Deny' : 'Allow'",
        "'blob'",
        "'queue'",
        "Microsoft.Network/privateEndpoints@",
    ] {
        assert!(storage.contains(needle), "storage.bicep lacks `{needle}`");
    }
    for needle in [
        "virtualNetworkSubnetId: enablePrivateNetworking ? appSubnetId : null",
        "ipSecurityRestrictionsDefaultAction: enablePrivateNetworking ? 'Deny' : 'Allow'",
        "ipAddress: 'ActionGroup'",
    ] {
        assert!(app.contains(needle), "functionapp.bicep lacks `{needle}`");
    }
    for (param, default) in [
        ("enablePrivateNetworking", "false"),
        ("appSubnetId", "''"),
        ("privateEndpointSubnetId", "''"),
        ("privateDnsZoneIds", "{}"),
        ("allowedIpRanges", "[]"),
        ("keyVaultId", "''"),
    ] {
        assert!(
            main.lines()
                .any(|l| l.starts_with(&format!("param {param} "))
                    && l.ends_with(&format!("= {default}"))),
            "main.bicep: `param {param} ... = {default}` not found"
        );
        assert!(
            docs.contains(&format!("| `{param}` | `{default}` |")),
            "docs/deploy.md must document `{param}` with its default `{default}` (row `| `{param}` | `{default}` | ...`)"
        );
    }
}
