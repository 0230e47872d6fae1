//! DR config (`config::dr`): the example loads, broken configs name key and line, store mapping,
//! share selection, invitation overrides, consumer role, and no input panics the loader.

use datashare_dr::arm::id::ResourceId;
use datashare_dr::config::dr::{
    AlertEscalation, ArmAuth, ConsumerSchedule, ConsumerTarget, DrConfig, DrConfigError,
    FailoverPolicy, InvitationPolicy, PrunePolicy, Role, StoreKind, UnmappedStore,
};
use proptest::prelude::*;

const SUB: &str = "11111111-1111-1111-1111-111111111111";

fn acct(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.DataShare/accounts/{name}"
    )
}

/// A small valid provider config; `{PAIR_EXTRA}` is replaced by extra lines inside the pair.
fn base(pair_extra: &str) -> String {
    format!(
        r#"[arm]
endpoint = "http://127.0.0.1:8080"
auth = "static-token"
token = "sim-token"

[alerts]
allowed_sources = ["/subscriptions/{SUB}"]

[[pairs]]
name = "sales"
primary = "{p}"
secondary = "{s}"
primary_region = "westeurope"
secondary_region = "northeurope"
{pair_extra}
"#,
        p = acct("rg-weu", "sales-weu"),
        s = acct("rg-neu", "sales-neu"),
    )
}

fn load(text: &str) -> Result<DrConfig, DrConfigError> {
    DrConfig::from_toml_str(text, "dr.toml")
}

fn ok(text: &str) -> DrConfig {
    match load(text) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}\n--- text ---\n{text}"),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("needle {needle:?} not in text"));
    text[..at].matches('\n').count() + 1
}

#[test]
fn the_shipped_example_loads_with_every_policy_resolved() {
    let c = DrConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/dr.toml")).unwrap();
    assert_eq!(c.role, Role::Provider);
    assert!(c.source.ends_with("examples/dr.toml"));
    assert_eq!(c.arm.auth, ArmAuth::ManagedIdentity);
    assert_eq!(c.arm.max_concurrency, 16);
    assert_eq!(c.pairs.len(), 2);
    let sales = c.pair("sales").unwrap();
    assert_eq!(sales.failover, FailoverPolicy::Auto);
    assert_eq!(sales.invitations, InvitationPolicy::Now);
    assert_eq!(sales.prune, PrunePolicy::Report);
    assert_eq!(sales.drill_recipients.len(), 2);
    assert_eq!(
        sales.create_secondary.as_ref().unwrap().tags["owner"],
        "data-platform"
    );
    let finance = c.pair("finance").unwrap();
    assert_eq!(finance.failover, FailoverPolicy::Approve, "from [defaults]");
    assert!(finance.selects("FX-eur"));
    assert!(finance.selects("report-weekly"));
    assert!(!finance.selects("report-monthly"));
    assert!(c.pair("nope").is_none());
    assert_eq!(c.alerts.max_event_age.unwrap().as_secs(), 24 * 3600);
    assert!(c.alerts.allows("11111111-2222-3333-4444-555555555555"));
    assert!(
        c.alerts
            .allows("/SUBSCRIPTIONS/11111111-2222-3333-4444-555555555555/")
    );
}

fn first_toml_block(doc_path: &str) -> String {
    let doc =
        std::fs::read_to_string(format!("{}/{doc_path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_owned()
}

#[test]
fn the_documented_examples_load() {
    // docs/config.md and docs/consumer.md each open with a ```toml example; they must stay valid.
    let provider = ok(&first_toml_block("docs/config.md"));
    assert_eq!(provider.role, Role::Provider);
    let consumer = ok(&first_toml_block("docs/consumer.md"));
    assert_eq!(consumer.role, Role::Consumer);
    assert_eq!(consumer.subscriptions.len(), 1);
}

#[test]
fn defaults_apply_when_sections_are_absent() {
    let c = ok(&base(""));
    let p = c.pair("sales").unwrap();
    assert_eq!(p.invitations, InvitationPolicy::Now);
    assert_eq!(p.failover, FailoverPolicy::Approve);
    assert_eq!(p.prune, PrunePolicy::Report);
    assert!(p.selects("anything"));
    assert_eq!(c.defaults.expiry_horizon.as_secs(), 14 * 86_400);
    assert_eq!(c.defaults.drill_max_age.as_secs(), 90 * 86_400);
    assert!((c.defaults.rpo_factor - 2.0).abs() < f64::EPSILON);
    assert_eq!(c.alerts.on_degraded, AlertEscalation::Approve);
    assert_eq!(c.alerts.on_user_initiated, AlertEscalation::Ignore);
    assert_eq!(c.alerts.service_name, "Azure Data Share");
    assert_eq!(c.arm.token.as_ref().unwrap().expose(), "sim-token");
}

#[test]
fn the_token_never_shows_in_debug_output() {
    let c = ok(&base(""));
    let dump = format!("{c:?}");
    assert!(!dump.contains("sim-token"), "{dump}");
}

#[test]
fn regions_accept_display_names() {
    let text = base("").replace("\"westeurope\"", "\"West Europe\"");
    assert_eq!(
        ok(&text).pair("sales").unwrap().primary_region,
        "westeurope"
    );
}

/// (case, text, expected key path, needle whose line the error must point at, message part)
fn broken_cases() -> Vec<(
    &'static str,
    String,
    &'static str,
    &'static str,
    &'static str,
)> {
    let other_pair = format!(
        r#"
[[pairs]]
name = "sales"
primary = "{}"
secondary = "{}"
primary_region = "eastus"
secondary_region = "westus"
"#,
        acct("rg-eus", "x-eus"),
        acct("rg-wus", "x-wus")
    );
    vec![
        (
            "unknown top-level key",
            format!("rol = \"provider\"\n{}", base("")),
            "rol",
            "rol =",
            "unknown key `rol`; did you mean `role`?",
        ),
        (
            "unknown key in a pair",
            base("primry = \"x\""),
            "pairs[0].primry",
            "primry =",
            "did you mean `primary`?",
        ),
        (
            "bad pair name",
            base("").replace("name = \"sales\"", "name = \"Sales_1\""),
            "pairs[0].name",
            "name = \"Sales_1\"",
            "1-40 characters",
        ),
        (
            "secondary is a storage account",
            base("").replace(
                &acct("rg-neu", "sales-neu"),
                &format!("/subscriptions/{SUB}/resourceGroups/rg-neu/providers/Microsoft.Storage/storageAccounts/neu"),
            ),
            "pairs[0].secondary",
            "secondary = ",
            "expected an ARM id of a Microsoft.DataShare account",
        ),
        (
            "primary equals secondary (other casing)",
            base("").replace(
                &acct("rg-neu", "sales-neu"),
                &acct("rg-weu", "sales-weu").to_uppercase().replace("/SUBSCRIPTIONS/", "/subscriptions/"),
            ),
            "pairs[0].secondary",
            "secondary = ",
            "different account",
        ),
        (
            "regions equal",
            base("").replace("\"northeurope\"", "\"West Europe\""),
            "pairs[0].secondary_region",
            "secondary_region",
            "must differ",
        ),
        (
            "duplicate pair names",
            format!("{}{other_pair}", base("")),
            "pairs[1].name",
            "name = \"sales\"\nprimary = \"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-eus",
            "duplicate name \"sales\"",
        ),
        (
            "static token off loopback",
            base("").replace("http://127.0.0.1:8080", "https://management.azure.com"),
            "arm.endpoint",
            "endpoint =",
            "only allowed with a loopback ARM endpoint",
        ),
        (
            "plain http off loopback",
            base("")
                .replace("http://127.0.0.1:8080", "http://arm.example.com")
                .replace("auth = \"static-token\"\ntoken = \"sim-token\"", "auth = \"managed-identity\""),
            "arm.endpoint",
            "endpoint =",
            "plain http",
        ),
        (
            "token without static-token auth",
            base("").replace("auth = \"static-token\"", "auth = \"azure-cli\""),
            "arm.token",
            "token =",
            "only used with auth = \"static-token\"",
        ),
        (
            "unknown auth",
            base("").replace("auth = \"static-token\"", "auth = \"password\""),
            "arm.auth",
            "auth =",
            "\"managed-identity\"",
        ),
        (
            "share glob does not compile",
            base("shares = [\"ok-*\", \"[abc\"]"),
            "pairs[0].shares[1]",
            "shares =",
            "invalid share glob",
        ),
        (
            "empty share list",
            base("shares = []"),
            "pairs[0].shares",
            "shares =",
            "selects no share",
        ),
        (
            "drill recipient is not an e-mail",
            base("drill_recipients = [\"drill-at-contoso\"]"),
            "pairs[0].drill_recipients[0]",
            "drill_recipients",
            "expected an e-mail address",
        ),
        (
            "unknown invitation policy",
            base("invitations = \"later\""),
            "pairs[0].invitations",
            "invitations = \"later\"",
            "expected one of \"now\", \"at-failover\"",
        ),
        (
            "consumer override with a malformed AAD target",
            base("\n[[pairs.consumers]]\ntarget = \"tenant:abc/object:def\"\ninvitations = \"now\""),
            "pairs[0].consumers[0].target",
            "target =",
            "is not a GUID",
        ),
        (
            "override secondary is not an ARM id",
            base(&format!(
                "\n[[pairs.stores.overrides]]\nprimary = \"/subscriptions/{SUB}/resourceGroups/a/providers/Microsoft.Storage/storageAccounts/p\"\nsecondary = \"storage-dr\""
            )),
            "pairs[0].stores.overrides[0].secondary",
            "secondary = \"storage-dr\"",
            "expected an ARM id of a resource",
        ),
        (
            "override maps a store to itself",
            base(&format!(
                "\n[[pairs.stores.overrides]]\nprimary = \"/subscriptions/{SUB}/resourceGroups/a/providers/Microsoft.Storage/storageAccounts/p\"\nsecondary = \"/subscriptions/{SUB}/resourceGroups/A/providers/Microsoft.Storage/storageAccounts/P\""
            )),
            "pairs[0].stores.overrides[0].secondary",
            "storageAccounts/P\"",
            "must not point at a primary-region store",
        ),
        (
            "unknown store kind",
            base("\n[pairs.stores.defaults.blob]\nreplace = [[\"a\", \"b\"]]"),
            "pairs[0].stores.defaults.blob",
            "[pairs.stores.defaults.blob]",
            "unknown key `blob`",
        ),
        (
            "replace rule that changes nothing",
            base("\n[pairs.stores.defaults.storage]\nreplace = [[\"weu\", \"WEU\"]]"),
            "pairs[0].stores.defaults.storage.replace[0]",
            "replace =",
            "changes nothing",
        ),
        (
            "replace rule that is not a pair",
            base("\n[pairs.stores.defaults.sql]\nreplace = [[\"weu\"]]"),
            "pairs[0].stores.defaults.sql.replace[0]",
            "replace =",
            "expected a pair",
        ),
        (
            "max_concurrency out of range",
            base("").replace("token = \"sim-token\"", "token = \"sim-token\"\nmax_concurrency = 0"),
            "arm.max_concurrency",
            "max_concurrency",
            "between 1 and 1024",
        ),
        (
            "rpo_factor of the wrong type",
            format!("[defaults]\nrpo_factor = \"2\"\n{}", base("")),
            "defaults.rpo_factor",
            "rpo_factor",
            "expected a number, got a string",
        ),
        (
            "missing primary",
            base("").replace(&format!("primary = \"{}\"\n", acct("rg-weu", "sales-weu")), ""),
            "pairs[0].primary",
            "[[pairs]]",
            "missing required key",
        ),
        (
            "create_secondary in another region",
            base("\n[pairs.create_secondary]\nlocation = \"eastus\""),
            "pairs[0].create_secondary.location",
            "location =",
            "must equal the pair's secondary_region",
        ),
        (
            "allowed source that is not an id",
            base("").replace(&format!("[\"/subscriptions/{SUB}\"]"), "[\"contoso\"]"),
            "alerts.allowed_sources[0]",
            "allowed_sources",
            "expected a subscription id",
        ),
        (
            "consumer role given pairs",
            format!("role = \"consumer\"\n{}", base("")),
            "pairs",
            "[[pairs]]",
            "is for role = \"provider\"",
        ),
        (
            "a consumer listed twice",
            base("\n[[pairs.consumers]]\ntarget = \"a@b.com\"\ninvitations = \"now\"\n[[pairs.consumers]]\ntarget = \"A@B.com\"\ninvitations = \"at-failover\""),
            "pairs[0].consumers[1].target",
            "target = \"A@B.com\"",
            "listed twice",
        ),
        (
            "toml syntax error",
            base("shares = [\"a\""),
            "",
            "shares =",
            "invalid TOML",
        ),
    ]
}

#[test]
fn every_broken_config_names_its_key_and_line() {
    let cases = broken_cases();
    assert!(cases.len() >= 15);
    for (case, text, path, needle, message) in cases {
        let err = match load(&text) {
            Ok(_) => panic!("{case}: loaded, expected an error\n{text}"),
            Err(e) => e,
        };
        let issue = err
            .issues()
            .iter()
            .find(|i| i.path == path)
            .unwrap_or_else(|| panic!("{case}: no issue at {path:?}; got:\n{err}"));
        let want_line = line_of(&text, needle);
        assert!(
            issue.line == want_line || (path.is_empty() && issue.line >= want_line),
            "{case}: line {} but expected {want_line}: {issue}",
            issue.line
        );
        assert!(
            issue.message.contains(message),
            "{case}: message {:?} lacks {message:?}",
            issue.message
        );
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("dr.toml:{}:", issue.line)),
            "{case}: {shown}"
        );
        if !path.is_empty() {
            assert!(shown.contains(&format!("({path})")), "{case}: {shown}");
        }
    }
}

#[test]
fn an_error_reads_like_file_line_column_key_and_message() {
    let text = base("").replace(&acct("rg-neu", "sales-neu"), "sales-neu");
    let err = load(&text).unwrap_err();
    let line = line_of(&text, "secondary = ");
    assert_eq!(
        err.to_string(),
        format!(
            "config error at dr.toml:{line}:13 (pairs[0].secondary): expected an ARM id of a Microsoft.DataShare account, got \"sales-neu\" (resource id `sales-neu` must start with `/`)"
        )
    );
}

#[test]
fn reports_every_problem_not_just_the_first() {
    let text = base("invitations = \"x\"\nfailover = \"y\"\nprune = \"z\"");
    let err = load(&text).unwrap_err();
    let paths: Vec<&str> = err.issues().iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "pairs[0].invitations",
            "pairs[0].failover",
            "pairs[0].prune"
        ]
    );
}

#[test]
fn a_missing_file_is_a_read_error_naming_the_path() {
    let err = DrConfig::load("/nonexistent/dr.toml").unwrap_err();
    assert!(matches!(err, DrConfigError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/dr.toml"));
}

fn rid(s: &str) -> ResourceId {
    ResourceId::parse(s).unwrap()
}

fn storage(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}"
    )
}

#[test]
fn store_mapping_follows_overrides_then_replace_rules_and_never_maps_to_the_primary() {
    let extra = format!(
        r#"
[pairs.stores.defaults.storage]
replace = [["rg-weu", "rg-neu"], ["weu", "neu"]]
[pairs.stores.defaults.sql]
replace = [["rg-weu", "rg-neu"]]

[[pairs.stores.overrides]]
primary = "{raw}"
secondary = "{rawdr}"
"#,
        raw = storage("rg-weu", "rawweu"),
        rawdr = storage("rg-dr", "rawdr"),
    );
    let c = ok(&base(&extra));
    let p = c.pair("sales").unwrap();
    let sql_server = |rg: &str, name: &str| {
        format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Sql/servers/{name}")
    };
    // (case, kind, primary id, expected secondary)
    let cases: Vec<(&str, StoreKind, String, Option<String>)> = vec![
        (
            "override wins over replace",
            StoreKind::Storage,
            storage("rg-weu", "rawweu"),
            Some(storage("rg-dr", "rawdr")),
        ),
        (
            "override compares case-insensitively",
            StoreKind::Storage,
            storage("RG-WEU", "RAWWEU"),
            Some(storage("rg-dr", "rawdr")),
        ),
        (
            "replace default rewrites the id",
            StoreKind::Storage,
            storage("rg-weu", "salesweu"),
            Some(storage("rg-neu", "salesneu")),
        ),
        (
            "replace matches case-insensitively",
            StoreKind::Storage,
            storage("RG-WEU", "SalesWEU"),
            Some(storage("rg-neu", "Salesneu")),
        ),
        (
            "a kind without rules is unmapped",
            StoreKind::Kusto,
            format!(
                "/subscriptions/{SUB}/resourceGroups/rg-weu/providers/Microsoft.Kusto/clusters/kweu"
            ),
            None,
        ),
        (
            "rules that do not apply leave it unmapped",
            StoreKind::Storage,
            storage("rg-other", "plain"),
            None,
        ),
        (
            "identity mapping is refused",
            StoreKind::Sql,
            sql_server("rg-x", "server"),
            None,
        ),
        (
            "sql rule applies to a database under the server",
            StoreKind::Sql,
            format!("{}/databases/db1", sql_server("rg-weu", "srv")),
            Some(format!("{}/databases/db1", sql_server("rg-neu", "srv"))),
        ),
    ];
    for (case, kind, primary, want) in cases {
        let got = p.map_store(kind, &rid(&primary));
        assert_eq!(
            got.as_ref().map(|r| r.as_str().to_owned()),
            want,
            "{case}: {primary}"
        );
        if let Some(g) = got {
            assert_ne!(g, rid(&primary), "{case}: mapped to itself");
        }
    }
    assert!(matches!(
        p.stores
            .resolve(StoreKind::Sql, &rid(&sql_server("rg-x", "server"))),
        Err(UnmappedStore::MapsToItself { .. })
    ));
    assert!(matches!(
        p.stores
            .resolve(StoreKind::Kusto, &rid(&storage("rg-weu", "x"))),
        Err(UnmappedStore::NoRule { .. })
    ));
}

#[test]
fn share_selection_by_names_and_globs() {
    let c = ok(&base(
        r#"shares = ["ledger", "fx-*", "daily-?", "rep-{a,b}"]"#,
    ));
    let p = c.pair("sales").unwrap();
    let cases = [
        ("ledger", true),
        ("LEDGER", true),
        ("ledger2", false),
        ("fx-eur", true),
        ("fx", false),
        ("daily-1", true),
        ("daily-12", false),
        ("rep-a", true),
        ("rep-c", false),
        ("other", false),
    ];
    for (name, want) in cases {
        assert_eq!(p.selects(name), want, "{name}");
    }
}

#[test]
fn invitation_policy_per_consumer_overrides_the_pair() {
    let c = ok(&base(
        r#"invitations = "at-failover"

[[pairs.consumers]]
target = "Alice@Fabrikam.com"
invitations = "now"

[[pairs.consumers]]
target = "tenant:aaaaaaaa-0000-0000-0000-000000000001/object:bbbbbbbb-0000-0000-0000-000000000002"
invitations = "now"
"#,
    ));
    let p = c.pair("sales").unwrap();
    let t = |s: &str| s.parse::<ConsumerTarget>().unwrap();
    assert_eq!(
        p.invitation_policy_for(&t("alice@fabrikam.com")),
        InvitationPolicy::Now
    );
    assert_eq!(
        p.invitation_policy_for(&t("bob@fabrikam.com")),
        InvitationPolicy::AtFailover
    );
    assert_eq!(
        p.invitation_policy_for(&ConsumerTarget::Aad {
            tenant_id: "AAAAAAAA-0000-0000-0000-000000000001".into(),
            object_id: "bbbbbbbb-0000-0000-0000-000000000002".into(),
        }),
        InvitationPolicy::Now
    );
    assert_eq!(
        p.invitation_policy_for(&t(
            "tenant:aaaaaaaa-0000-0000-0000-000000000001/object:cccccccc-0000-0000-0000-000000000002"
        )),
        InvitationPolicy::AtFailover
    );
}

#[test]
fn the_consumer_role_reads_subscriptions() {
    let text = format!(
        r#"role = "consumer"

[[subscriptions]]
name = "sales-feed"
primary_share_subscription = "{p}/shareSubscriptions/sales"
secondary_account = "{s}"
primary_region = "westeurope"
secondary_region = "northeurope"
start_first_sync = true
schedule = "none"

[subscriptions.stores.defaults.storage]
replace = [["weu", "neu"]]
"#,
        p = acct("rg-c-weu", "consumer-weu"),
        s = acct("rg-c-neu", "consumer-neu"),
    );
    let c = ok(&text);
    assert_eq!(c.role, Role::Consumer);
    assert!(c.pairs.is_empty());
    let s = c.subscription("sales-feed").unwrap();
    assert!(s.start_first_sync);
    assert_eq!(s.schedule, ConsumerSchedule::None);
    assert_eq!(
        s.primary_account().as_str(),
        acct("rg-c-weu", "consumer-weu")
    );
    assert_eq!(
        s.map_store(StoreKind::Storage, &rid(&storage("rg-c-weu", "sinkweu")))
            .unwrap()
            .as_str(),
        storage("rg-c-neu", "sinkneu")
    );

    let bad = text.replace("secondary_account = ", "secondary_acount = ");
    let err = load(&bad).unwrap_err();
    assert!(
        err.issues()
            .iter()
            .any(|i| i.path == "subscriptions[0].secondary_acount"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics_the_loader(text in "\\PC*") {
        let _ = load(&text);
    }

    #[test]
    fn arbitrary_edits_of_a_valid_config_never_panic(
        cut in 0usize..2000, insert in "[\\[\\]=\"a-z0-9_. \n{},#*-]{0,12}"
    ) {
        let text = base("shares = [\"a*\"]\n[pairs.stores.defaults.storage]\nreplace = [[\"weu\", \"neu\"]]");
        let mut at = cut.min(text.len());
        while !text.is_char_boundary(at) { at -= 1; }
        let edited = format!("{}{}{}", &text[..at], insert, &text[at..]);
        if let Err(e) = load(&edited) {
            prop_assert!(!e.issues().is_empty());
            for i in e.issues() {
                prop_assert!(i.line >= 1 && i.column >= 1);
            }
        }
    }
}
