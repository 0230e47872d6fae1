//! The status page in a real browser: headless Chromium renders it, its DOM shows the pair, the
//! status and every finding, and a phone-sized screenshot is saved to
//! `tests/artifacts/readiness.png`.
//!
//! Chromium is Debian's `chromium` (`apt-get install -y chromium`; scripts/test installs it).
//! Without it the test prints a skip notice, unless `DSDR_REQUIRE_CHROMIUM` is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use datashare_dr::readiness::page::render_status_page_at;
use datashare_dr::readiness::{
    DrillRecord, Finding, Report, Severity, SeverityCounts, ShareRpo, Status,
};
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
            "run `datashare-dr replicate --pair sales`",
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
        let start_of_message: String = f.message.chars().take(25).collect();
        let escaped = start_of_message.replace('&', "&amp;");
        assert!(dom.contains(&escaped), "message of {} missing", f.code);
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
