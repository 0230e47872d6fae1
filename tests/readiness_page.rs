//! The status page in a real browser: headless Chromium renders it, its DOM shows the pair, the
//! status and every finding, and a phone-sized screenshot is saved to
//! `tests/artifacts/readiness.png`. Layout facts are measured in the browser by a script the
//! test appends to a copy of the page (the page itself has no script): Info findings collapsed
//! (the next pair stays close), summary pills resolving to their pair's card, remedies' commands
//! as `<code>`, and configured pairs listed before their first check.
//!
//! Chromium is Debian's `chromium` (`apt-get install -y chromium`; scripts/test installs it).
//! Without it the test prints a skip notice, unless `DSDR_REQUIRE_CHROMIUM` is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use datashare_dr::pair_state::{Phase, PhaseView, Side};
use datashare_dr::readiness::api::respond;
use datashare_dr::readiness::page::{render_status_page_at, with_code};
use datashare_dr::readiness::{
    ActiveRun, DrillRecord, Finding, Report, Severity, SeverityCounts, ShareRpo, Status,
};
use serde_json::Value;
use time::macros::datetime;

const CHROMIUM: &str = "/usr/bin/chromium";

fn finding(severity: Severity, code: &str, resource: &str, message: &str, remedy: &str) -> Finding {
    Finding {
        severity,
        code: code.into(),
        resource_id: resource.into(),
        message: message.into(),
        remedy: remedy.into(),
    }
}

fn reports() -> Vec<Report> {
    let sub = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups";
    let findings = vec![
        finding(
            Severity::Critical,
            "dataset-missing",
            &format!(
                "{sub}/rg-weu/providers/Microsoft.DataShare/accounts/sales-weu/shares/sales/dataSets/raw"
            ),
            "dataset `raw` of share `sales` has no copy on the secondary",
            "run `datashare-dr replicate --config dr-config.toml --pair sales`",
        ),
        finding(
            Severity::Critical,
            "identity-role-missing",
            &format!("{sub}/rg-neu/providers/Microsoft.Storage/storageAccounts/rawneu"),
            "the secondary account's identity does not hold Storage Blob Data Reader on this store",
            "az role assignment create --assignee-object-id 1111 --role \"Storage Blob Data Reader\" --scope …/rawneu",
        ),
        finding(
            Severity::Warning,
            "invitation-expiring",
            &format!(
                "{sub}/rg-neu/providers/Microsoft.DataShare/accounts/sales-neu/shares/sales/invitations/alice"
            ),
            "the secondary invitation for alice@fabrikam.com on share `sales` expires on 2025-06-04 (in 3.0 days)",
            "re-issue the invitation with a later expiration date",
        ),
        finding(
            Severity::Info,
            "consumer-invite-at-failover",
            &format!(
                "{sub}/rg-neu/providers/Microsoft.DataShare/accounts/sales-neu/shares/sales#consumer=bob@contoso.com"
            ),
            "consumer bob@contoso.com of share `sales` will be invited to the secondary at failover",
            "nothing to do; set `invitations = \"now\"` to pre-stage the invitation",
        ),
    ];
    vec![
        Report {
            pair: "sales".into(),
            status: Status::NotReady,
            score: 30,
            checked_at: datetime!(2025-06-01 12:00 UTC),
            primary_region: "westeurope".into(),
            secondary_region: "northeurope".into(),
            counts: SeverityCounts {
                critical: 2,
                warning: 1,
                info: 1,
            },
            findings,
            rpo: vec![
                ShareRpo {
                    share: "sales".into(),
                    recurrence_interval: Some("Day".into()),
                    last_success: Some(datetime!(2025-06-01 03:00 UTC)),
                    age_secs: Some(9 * 3600),
                    limit_secs: Some(2 * 86_400),
                    exceeded: false,
                },
                ShareRpo {
                    share: "telemetry".into(),
                    recurrence_interval: Some("Hour".into()),
                    last_success: Some(datetime!(2025-06-01 08:00 UTC)),
                    age_secs: Some(4 * 3600),
                    limit_secs: Some(2 * 3600),
                    exceeded: true,
                },
            ],
            last_drill: Some(DrillRecord {
                completed_at: datetime!(2025-05-20 09:30 UTC),
                run_id: Some("run-42".into()),
                rto_secs: Some(48.0),
            }),
            pair_state: None,
            active_runs: Vec::new(),
            state_changed_since_check: false,
        },
        Report {
            pair: "finance".into(),
            status: Status::Ready,
            score: 100,
            checked_at: datetime!(2025-06-01 11:58 UTC),
            primary_region: "eastus".into(),
            secondary_region: "westus".into(),
            counts: SeverityCounts::default(),
            findings: vec![],
            rpo: vec![],
            last_drill: None,
            pair_state: None,
            active_runs: Vec::new(),
            state_changed_since_check: false,
        },
    ]
}

/// Runs chromium with a deadline; returns stdout.
fn run_chromium(args: &[String], deadline: Duration) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start chromium");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let start = Instant::now();
    loop {
        match child.try_wait().expect("wait chromium") {
            Some(_) => break,
            None if start.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within {deadline:?}");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    reader.join().expect("reader")
}

fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

#[test]
fn chromium_renders_the_pair_its_status_and_every_finding_on_a_phone() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var_os("DSDR_REQUIRE_CHROMIUM").is_some() {
            panic!("DSDR_REQUIRE_CHROMIUM is set but {CHROMIUM} is missing");
        }
        eprintln!("SKIP: {CHROMIUM} not installed (apt-get install -y chromium)");
        return;
    }
    let reports = reports();
    let html = render_status_page_at(&reports, datetime!(2025-06-01 12:05 UTC));
    let dir = tempfile::tempdir().expect("tmp");
    let page = dir.path().join("readiness.html");
    std::fs::write(&page, &html).expect("write page");
    let url = format!("file://{}", page.display());

    let dom = run_chromium(&["--dump-dom".into(), url.clone()], Duration::from_secs(90));
    assert!(
        dom.contains("data-pair=\"sales\""),
        "pair missing from DOM:\n{dom}"
    );
    assert!(dom.contains("data-pair=\"finance\""));
    assert!(dom.contains("data-status=\"NotReady\""));
    assert!(dom.contains("data-status=\"Ready\""));
    for f in &reports[0].findings {
        assert!(
            dom.contains(&format!("data-code=\"{}\"", f.code)),
            "finding {} missing from DOM",
            f.code
        );
        // As rendered: escaped, `backticked` names as <code>.
        let start_of_message: String = with_code(&f.message)
            .replace("&#39;", "'")
            .chars()
            .take(25)
            .collect();
        assert!(
            dom.contains(&start_of_message),
            "message of {} missing",
            f.code
        );
    }
    assert!(dom.contains("30<small>/100</small>"));

    let shot = artifacts_dir().join("readiness.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=412,915".into(),
            url,
        ],
        Duration::from_secs(90),
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // IHDR width/height: a phone-sized viewport.
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    assert_eq!(width, 412, "screenshot width");
    assert!(png.len() > 10_000, "screenshot suspiciously small");
}

fn chromium_or_skip() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os("DSDR_REQUIRE_CHROMIUM").is_some() {
        panic!("DSDR_REQUIRE_CHROMIUM is set but {CHROMIUM} is missing");
    }
    eprintln!("SKIP: {CHROMIUM} not installed (apt-get install -y chromium)");
    false
}

/// Renders `html` in Chromium at `width`×900 with `script` appended (it must evaluate to a
/// JSON-serialisable value, computed after layout), and returns that value and the DOM.
fn measure(html: &str, script: &str, width: u32) -> (Value, String) {
    assert!(
        !html.contains("<script"),
        "the page itself must stay script-free"
    );
    let probe = format!(
        "<pre id=\"measure\"></pre><script>document.getElementById('measure').textContent = \
         JSON.stringify((function(){{ {script} }})());</script></body>"
    );
    let page_with_probe = html.replacen("</body>", &probe, 1);
    let dir = tempfile::tempdir().expect("tmp");
    let page = dir.path().join("page.html");
    std::fs::write(&page, page_with_probe).expect("write page");
    let dom = run_chromium(
        &[
            format!("--window-size={width},900"),
            "--dump-dom".into(),
            format!("file://{}", page.display()),
        ],
        Duration::from_secs(90),
    );
    let start =
        dom.find("<pre id=\"measure\">").expect("probe in DOM") + "<pre id=\"measure\">".len();
    let end = start + dom[start..].find("</pre>").expect("probe end");
    let text = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("probe JSON {text:?}: {e}"));
    (v, dom)
}

fn info(n: usize) -> Vec<Finding> {
    (0..n)
        .map(|_| {
            finding(
                Severity::Info,
                "identity-role-unverifiable",
                "/subscriptions/1/resourceGroups/rg/providers/Microsoft.Sql/servers/sqlneu",
                "access to SQL store sqlneu is a database user; it cannot be verified from ARM",
                "grant the secondary account's identity `db_datareader` on the database",
            )
        })
        .collect()
}

/// Twenty identical Info rows (the case that pushed the next pair 4,000 px down) stay inside a
/// closed `<details>`: the next pair's card starts within one screen of the first, the Info rows
/// take no height while the Warning row shows, and opening the details is what would move it.
#[test]
fn info_findings_are_collapsed_so_the_next_pair_stays_close() {
    if !chromium_or_skip() {
        return;
    }
    let mut many = reports();
    let alpha = &mut many[0];
    alpha.pair = "alpha".into();
    alpha.findings = vec![finding(
        Severity::Warning,
        "invitation-expiring",
        "/x/invitations/alice",
        "the secondary invitation for alice expires in 3 days",
        "re-issue the invitation",
    )];
    alpha.findings.extend(info(20));
    alpha.status = Status::Degraded;
    alpha.rpo.clear();
    let html = render_status_page_at(&many, datetime!(2025-06-01 12:05 UTC));
    let script = r#"
      const top = (sel) => document.querySelector(sel).getBoundingClientRect().top + scrollY;
      const gap = () => top('section[data-pair="finance"]') - top('section[data-pair="alpha"]');
      const infoRows = [...document.querySelectorAll('section[data-pair="alpha"] tr.finding.Info')];
      const warn = document.querySelector('section[data-pair="alpha"] tr.finding.Warning');
      const details = document.querySelector('section[data-pair="alpha"] details');
      const closed = {
        gap: gap(),
        open: details ? details.open : null,
        summary: details ? details.querySelector('summary').textContent : null,
        infoRows: infoRows.length,
        infoShown: infoRows.filter(r => r.checkVisibility()).length,
        warnShown: warn.checkVisibility(),
      };
      if (details) details.open = true;
      return { closed, openedGap: gap() };
    "#;
    let (v, _) = measure(&html, script, 1280);
    let closed = &v["closed"];
    assert_eq!(closed["infoRows"], 20, "{v}");
    assert_eq!(
        closed["open"], false,
        "Info findings must start collapsed: {v}"
    );
    assert!(
        closed["summary"]
            .as_str()
            .is_some_and(|s| s.contains("20 info findings")),
        "{v}"
    );
    assert_eq!(
        closed["infoShown"], 0,
        "collapsed Info rows are not rendered: {v}"
    );
    assert_eq!(closed["warnShown"], true, "the warning shows: {v}");
    let gap = closed["gap"].as_f64().expect("gap");
    assert!(
        gap < 900.0,
        "the next pair starts {gap} px below the first: {v}"
    );
    let opened = v["openedGap"].as_f64().expect("opened gap");
    assert!(
        opened > gap + 500.0,
        "opening the details shows the rows ({gap} → {opened}): {v}"
    );
}

/// Every summary pill is a link whose fragment is the id of the card of the same pair, in the
/// browser's own resolution (names with spaces, slashes and non-ASCII included).
#[test]
fn summary_pills_link_to_their_pair_cards() {
    if !chromium_or_skip() {
        return;
    }
    let mut rs = reports();
    rs[1].pair = "finance eu/1 ü".into();
    let mut third = rs[1].clone();
    third.pair = "finance-eu-1".into();
    rs.push(third);
    let configured: Vec<String> = ["sales", "finance eu/1 ü", "finance-eu-1", "hr"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let page = respond(
        &configured,
        &rs,
        None,
        Some("text/html"),
        datetime!(2025-06-01 12:05 UTC),
    );
    let script = r#"
      return [...document.querySelectorAll('#summary a.pill')].map(a => {
        const id = decodeURIComponent(new URL(a.href).hash.slice(1));
        const card = document.getElementById(id);
        return { pill: a.dataset.pair, text: a.textContent,
                 card: card && card.tagName === 'SECTION' ? card.dataset.pair : null };
      });
    "#;
    let (v, _) = measure(&page.body, script, 1280);
    let pills = v.as_array().expect("pills");
    assert_eq!(pills.len(), 4, "one pill per configured pair: {v}");
    for p in pills {
        assert_eq!(p["pill"], p["card"], "pill links to its own card: {p}");
    }
    let named: Vec<&str> = pills.iter().filter_map(|p| p["pill"].as_str()).collect();
    for want in &configured {
        assert!(named.contains(&want.as_str()), "{want} has no pill: {v}");
    }
    assert!(
        pills.iter().any(|p| p["text"] == "sales: NotReady"),
        "pills say the status: {v}"
    );
}

/// Text in backticks is shown as code (escaped inside), and the suggested commands carry
/// `--config`.
#[test]
fn remedies_show_commands_as_code() {
    if !chromium_or_skip() {
        return;
    }
    let mut rs = reports();
    rs[0].findings.push(finding(
        Severity::Warning,
        "drill-stale",
        "pair:sales",
        "the last drill of `sales` was <b>long</b> ago",
        "run a drill: `datashare-dr failover start --config 'ops/dr <1>.toml' --pair sales --mode drill`",
    ));
    let html = render_status_page_at(&rs, datetime!(2025-06-01 12:05 UTC));
    let script = r#"
      const cell = (code, col) => document.querySelector(`tr[data-code="${code}"] td[data-label="${col}"]`);
      const codes = (el) => [...el.querySelectorAll('code')].map(c => c.textContent);
      return {
        stale: codes(cell('drill-stale', 'Remedy')),
        staleText: cell('drill-stale', 'Remedy').textContent,
        staleMessage: codes(cell('drill-stale', 'Finding')),
        bold: document.querySelectorAll('td b').length,
        replicate: codes(cell('dataset-missing', 'Remedy')),
      };
    "#;
    let (v, _) = measure(&html, script, 1280);
    assert_eq!(
        v["stale"],
        serde_json::json!([
            "datashare-dr failover start --config 'ops/dr <1>.toml' --pair sales --mode drill"
        ]),
        "{v}"
    );
    assert!(
        !v["staleText"].as_str().unwrap_or("`").contains('`'),
        "backticks are markup, not text: {v}"
    );
    assert_eq!(v["staleMessage"], serde_json::json!(["sales"]), "{v}");
    assert_eq!(v["bold"], 0, "report text never becomes markup: {v}");
    assert_eq!(
        v["replicate"],
        serde_json::json!(["datashare-dr replicate --config dr-config.toml --pair sales"]),
        "{v}"
    );
}

/// Before the first check (no report stored) the page served to a browser lists every
/// configured pair as "not checked yet" — not "0 pairs" — and links to each; a checked pair
/// next to unchecked ones is shown with its report.
#[test]
fn before_the_first_check_the_page_lists_the_configured_pairs() {
    if !chromium_or_skip() {
        return;
    }
    let configured = vec!["sales".to_string(), "finance".to_string()];
    let now = datetime!(2025-06-01 12:05 UTC);
    let script = r#"
      return {
        tally: document.querySelector('[data-role="tally"]').textContent,
        cards: [...document.querySelectorAll('section.pair')].map(s => [s.dataset.pair, s.dataset.status,
               s.querySelector('[data-role="status"]').textContent]),
        visible: [...document.querySelectorAll('section.pair')].every(s => s.getBoundingClientRect().height > 20),
      };
    "#;
    let empty = respond(&configured, &[], None, Some("text/html"), now);
    assert_eq!(empty.content_type, "text/html; charset=utf-8");
    let (v, _) = measure(&empty.body, script, 1280);
    assert_eq!(v["tally"], "2 pairs — 2 not checked yet:", "{v}");
    assert_eq!(
        v["cards"],
        serde_json::json!([
            ["sales", "Unchecked", "not checked yet"],
            ["finance", "Unchecked", "not checked yet"]
        ]),
        "{v}"
    );
    assert_eq!(v["visible"], true, "{v}");

    let one = vec![reports().remove(0)];
    let mixed = respond(&configured, &one, None, Some("text/html"), now);
    let (v, _) = measure(&mixed.body, script, 1280);
    assert_eq!(
        v["tally"], "2 pairs — 1 NotReady, 1 not checked yet:",
        "{v}"
    );
    assert_eq!(
        v["cards"],
        serde_json::json!([
            ["sales", "NotReady", "NotReady"],
            ["finance", "Unchecked", "not checked yet"]
        ]),
        "{v}"
    );
}

/// A failed-over pair's card says so under its header — phase, serving side, since, a link to
/// the run that moved it — and its pill says it too; an active run shows with its status and
/// stage. Measured in the browser: the state line is visible and inside the pair's card, above
/// its facts, and the run link resolves to `api/failover/{runId}`.
#[test]
fn a_failed_over_pair_shows_its_state_and_active_run_in_its_card() {
    if !chromium_or_skip() {
        return;
    }
    let mut rs = reports();
    rs[1].pair_state = Some(PhaseView {
        serving: Side::Secondary,
        phase: Phase::FailedOver,
        since: Some(datetime!(2025-06-01 10:15 UTC)),
        run_id: Some("run-fo-7".into()),
    });
    rs[1].active_runs = vec![ActiveRun {
        run_id: "run-fb-8".into(),
        mode: "failback".into(),
        status: "awaiting-approval".into(),
        stage: Some("preflight".into()),
        created_at: datetime!(2025-06-01 11:50 UTC),
    }];
    // The other pair is normal: no state line there.
    rs[0].pair_state = Some(PhaseView {
        serving: Side::Primary,
        phase: Phase::Normal,
        since: None,
        run_id: None,
    });
    let page = respond(
        &["sales".to_string(), "finance".to_string()],
        &rs,
        None,
        Some("text/html"),
        datetime!(2025-06-01 12:05 UTC),
    );
    let script = r#"
      const card = document.querySelector('section[data-pair="finance"]');
      const state = card.querySelector('[data-role="pair-state"]');
      const facts = card.querySelector('dl.facts');
      const runs = [...card.querySelectorAll('[data-role="active-runs"] li')];
      const link = state ? state.querySelector('a[data-role="run-link"]') : null;
      return {
        state: state ? state.textContent : null,
        phase: state ? state.dataset.phase : null,
        serving: state ? state.dataset.serving : null,
        visible: state ? state.checkVisibility() : false,
        aboveFacts: state && facts ? state.getBoundingClientRect().bottom <= facts.getBoundingClientRect().top : false,
        link: link ? new URL(link.href).pathname : null,
        runs: runs.map(li => ({ text: li.textContent, run: li.dataset.run, visible: li.checkVisibility() })),
        otherState: document.querySelectorAll('section[data-pair="sales"] [data-role="pair-state"]').length,
        pill: document.querySelector('#summary a.pill[data-pair="finance"]').textContent,
      };
    "#;
    let (v, _) = measure(&page.body, script, 412);
    let state = v["state"]
        .as_str()
        .unwrap_or_else(|| panic!("no state line: {v}"));
    assert!(state.starts_with("Failed over"), "{v}");
    assert!(
        state.contains("secondary serving since 2025-06-01 10:15 UTC"),
        "{v}"
    );
    assert!(state.contains("run-fo-7"), "{v}");
    assert_eq!(v["phase"], "failed-over", "{v}");
    assert_eq!(v["serving"], "secondary", "{v}");
    assert_eq!(v["visible"], true, "{v}");
    assert_eq!(
        v["aboveFacts"], true,
        "the state is in the header, above the facts: {v}"
    );
    assert_eq!(v["link"], "/api/failover/run-fo-7", "{v}");
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{v}");
    assert_eq!(runs[0]["run"], "run-fb-8", "{v}");
    assert_eq!(runs[0]["visible"], true, "{v}");
    let text = runs[0]["text"].as_str().expect("run text");
    for want in ["failback", "awaiting-approval", "preflight"] {
        assert!(text.contains(want), "{want} in {text:?}");
    }
    assert_eq!(v["otherState"], 0, "a normal pair has no state line: {v}");
    assert_eq!(v["pill"], "finance: Ready · failed over", "{v}");
}
