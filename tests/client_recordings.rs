//! Client replay (issue 16): every recording in `tests/fixtures/recordings/` — the real Azure
//! sessions and any operator recording dropped in — is served verbatim, by position, to the ARM
//! client's operations (concurrency 1) by the fake in `support::replay` (its module docs hold
//! the rules: method + path compared, not api-version; the mapping table; synthetic polls of
//! Location-only 202s no recording polled). A recording made with `--record` against the
//! simulator replays too, and contains no token, SAS signature or unsanitised e-mail.

mod support;

use std::path::{Path, PathBuf};

use support::replay::{self, Entry};

fn recordings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recordings")
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| f.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

async fn replay_file(path: &Path) -> Result<Vec<String>, String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let entries = replay::load(path)?;
    if entries.is_empty() {
        return Err(format!("{name}: no requests to replay"));
    }
    replay::replay(&name, entries).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recording_replays_through_the_client_operations() {
    let files = json_files(&recordings_dir());
    assert!(
        files.len() >= 2,
        "the two reference recordings are missing from tests/fixtures/recordings"
    );
    let mut errors = Vec::new();
    for f in &files {
        match replay_file(f).await {
            Ok(ops) => eprintln!(
                "{}: {} operations: {}",
                f.display(),
                ops.len(),
                ops.join(", ")
            ),
            Err(e) => errors.push(e),
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}

/// The flows the issue names, in the real recordings: account create polled to Succeeded,
/// Location-only 202 deletes polled to completion, 202 with body, 200 deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_lro_flows_are_followed() {
    let cli = recordings_dir().join("cli.test_datashare.2019-11-01.extract.json");
    let ops = replay_file(&cli).await.unwrap_or_else(|e| panic!("{e}"));
    let polls = ops
        .iter()
        .filter(|o| *o == "poll(start_create_account)")
        .count();
    assert_eq!(
        polls, 10,
        "both accounts polled until Succeeded (5 + 5 recorded GETs): {ops:?}"
    );
    for op in [
        "delete_synchronization_setting",
        "delete_share",
        "delete_account",
        "delete_trigger",
        "delete_share_subscription",
        "delete_dataset",
        "delete_dataset_mapping",
        "start_synchronize",
        "start_revoke_provider_share_subscription",
        "reinstate_provider_share_subscription",
    ] {
        assert!(ops.iter().any(|o| o == op), "{op} missing: {ops:?}");
    }
    let net = recordings_dir().join("net.InvitationApiTests.2021-08-01.json");
    let ops = replay_file(&net).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ops.iter()
            .filter(|o| *o == "poll(start_create_account)")
            .count(),
        11,
        "{ops:?}"
    );
    assert_eq!(
        ops.iter().filter(|o| *o == "put_invitation").count(),
        2,
        "{ops:?}"
    );
}

fn net_entries() -> Vec<Entry> {
    replay::load(&recordings_dir().join("net.InvitationApiTests.2021-08-01.json")).expect("load")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_out_of_order_fails_naming_expected_and_actual() {
    // the recording starts with `GET /subscriptions/{id}`; the client asks for shares instead
    let fake = replay::Fake::start(net_entries()).await;
    let acct =
        datashare_dr::arm::id::AccountId::new("db1ab6f0-4769-4b27-930e-01e2ef9c123c", "rg", "a")
            .unwrap();
    let r = fake.client().list_shares(&acct).await;
    assert!(
        r.is_err(),
        "a mismatched request must not be answered as recorded"
    );
    let failures = fake.failures().join("\n");
    assert!(
        failures.contains("expected `GET /subscriptions/db1ab6f0-4769-4b27-930e-01e2ef9c123c`")
            && failures.contains("the client sent `GET /subscriptions/db1ab6f0-4769-4b27-930e-01e2ef9c123c/resourceGroups/rg/providers/Microsoft.DataShare/accounts/a/shares`"),
        "{failures}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_no_operation_issues_fails_saying_what_to_add() {
    let mut entries = net_entries();
    let last = entries.len() - 1;
    let u = entries[last]
        .uri
        .to_string()
        .replace("/invitations/", "/unknownThings/");
    entries[last].uri = url::Url::parse(&u).unwrap();
    let err = replay::replay("unmapped", entries)
        .await
        .expect_err("must fail");
    assert!(
        err.contains("add a row to the table in tests/support/replay.rs"),
        "{err}"
    );
}

async fn cli(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_datashare-dr"))
        .args(args)
        .env_remove("ARM_ENDPOINT")
        .env_remove("ARM_AUTH")
        .env_remove("DR_CONFIG_PATH")
        .env_remove("RECORD_DIR")
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the binary")
}

/// Everything in `text` that looks like an e-mail address.
fn emails(text: &str) -> Vec<String> {
    let is_local = |c: char| c.is_ascii_alphanumeric() || "._%+-".contains(c);
    let is_dom = |c: char| c.is_ascii_alphanumeric() || ".-".contains(c);
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        if *c == '@' {
            let mut a = i;
            while a > 0 && is_local(chars[a - 1]) {
                a -= 1;
            }
            let mut b = i + 1;
            while b < chars.len() && is_dom(chars[b]) {
                b += 1;
            }
            if a < i && chars[i + 1..b].contains(&'.') {
                out.push(chars[a..b].iter().collect());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_made_with_record_against_the_simulator_is_sanitised_and_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, estate) = support::estate::populated(2, 2, 2, 7).await;
    let cfg = dir.path().join("dr.toml");
    let text = datashare_dr::sim::write_config(&estate, &sim.base_url);
    std::fs::write(&cfg, &text).expect("write config");
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("token = "))
        .expect("static token")
        .trim_matches('"')
        .to_owned();
    let rec = dir.path().join("rec");
    let cfg = cfg.to_str().unwrap();
    let recd = rec.to_str().unwrap();
    let o = cli(&["replicate", "--config", cfg, "--record", recd]).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("recording ARM exchanges to "));
    let o = cli(&["plan", "--config", cfg, "--record", recd]).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let files = json_files(&rec);
    assert_eq!(files.len(), 2, "one file per command: {files:?}");
    // what must not leak: the token, e-mails, subscription ids
    let subs: Vec<String> = text
        .split("/subscriptions/")
        .skip(1)
        .filter_map(|s| s.get(..36).map(str::to_owned))
        .filter(|s| s.chars().any(|c| c != '0' && c != '-'))
        .collect();
    for f in &files {
        let body = std::fs::read_to_string(f).expect("read recording");
        let v: serde_json::Value = serde_json::from_str(&body).expect("recording is JSON");
        assert!(
            v["Entries"].as_array().is_some_and(|a| !a.is_empty()),
            "{}",
            f.display()
        );
        // the simulator's token (`sim`) is too short to grep for: no header may carry it
        for e in v["Entries"].as_array().unwrap() {
            for (k, h) in e["RequestHeaders"].as_object().unwrap() {
                assert!(
                    !h.as_str().unwrap_or_default().contains(&token)
                        || k == "x-ms-client-request-id",
                    "{}: header {k} carries the token",
                    f.display()
                );
            }
        }
        assert!(
            !body.to_ascii_lowercase().contains("bearer "),
            "{}: a bearer token",
            f.display()
        );
        assert!(!body.contains("eyJ"), "{}: a JWT", f.display());
        for (i, _) in body.match_indices("sig=") {
            assert!(
                body[i..].starts_with("sig=Sanitized"),
                "{}: an unsanitised SAS signature",
                f.display()
            );
        }
        for e in emails(&body) {
            let ok = e
                .strip_prefix("user")
                .and_then(|r| r.strip_suffix("@example.com"))
                .is_some_and(|n| n.parse::<u32>().is_ok());
            assert!(ok, "{}: unsanitised e-mail {e}", f.display());
        }
        for s in &subs {
            assert!(
                !body.to_ascii_lowercase().contains(&s.to_ascii_lowercase()),
                "{}: subscription id {s} kept without --record-keep-ids",
                f.display()
            );
        }
        assert!(
            body.contains("\"Authorization\": \"Sanitized\""),
            "{}",
            f.display()
        );
        let ops = replay_file(f).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(!ops.is_empty());
    }
    // the estate's invitations carry e-mails, so the recordings did see (and sanitise) some
    let all: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(
        all.contains("user1@example.com"),
        "no sanitised e-mail in the recordings"
    );
    assert!(
        !subs.is_empty(),
        "the simulated estate has subscription ids to sanitise"
    );
}

/// What every recording must hold: entries, no token in any header, no bearer token or JWT, SAS
/// signatures and e-mail addresses sanitised, the authorization header replaced.
fn assert_secrets_sanitised(f: &Path, token: &str) -> String {
    let body = std::fs::read_to_string(f).expect("read recording");
    let v: serde_json::Value = serde_json::from_str(&body).expect("recording is JSON");
    let entries = v["Entries"].as_array().cloned().unwrap_or_default();
    assert!(!entries.is_empty(), "{}: no entries", f.display());
    for e in &entries {
        for (k, h) in e["RequestHeaders"].as_object().expect("headers") {
            assert!(
                !h.as_str().unwrap_or_default().contains(token) || k == "x-ms-client-request-id",
                "{}: header {k} carries the token",
                f.display()
            );
        }
    }
    assert!(
        !body.to_ascii_lowercase().contains("bearer "),
        "{}",
        f.display()
    );
    assert!(!body.contains("eyJ"), "{}: a JWT", f.display());
    for (i, _) in body.match_indices("sig=") {
        assert!(body[i..].starts_with("sig=Sanitized"), "{}", f.display());
    }
    for e in emails(&body) {
        let ok = e
            .strip_prefix("user")
            .and_then(|r| r.strip_suffix("@example.com"))
            .is_some_and(|n| n.parse::<u32>().is_ok());
        assert!(ok, "{}: unsanitised e-mail {e}", f.display());
    }
    assert!(
        body.contains("\"Authorization\": \"Sanitized\""),
        "{}",
        f.display()
    );
    body
}

/// `check --record --record-keep-ids` keeps the subscription id (and still masks tokens and
/// e-mails); `failover start --local --record` writes a sanitised recording; both replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_failover_start_local_record_and_keep_ids_keeps_only_the_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, estate) = support::estate::populated(2, 2, 2, 7).await;
    let cfg = dir.path().join("dr.toml");
    // The replay fake answers by position: `check` reads with concurrent tasks, so one ARM
    // call at a time and no paged lists (a later page would land between another task's
    // calls) make the recorded order the order a single client replays.
    sim.set_faults(&datashare_dr::sim::FaultSettings {
        page_size: Some(1000),
        ..Default::default()
    });
    let text: String = datashare_dr::sim::write_config(&estate, &sim.base_url)
        .lines()
        .map(|l| {
            if l.starts_with("max_concurrency") {
                "max_concurrency = 1".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("max_concurrency = 1"), "{text}");
    std::fs::write(&cfg, &text).expect("write config");
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("token = "))
        .expect("static token")
        .trim_matches('"')
        .to_owned();
    let sub = estate.subscription_id.to_ascii_lowercase();
    assert!(sub.chars().any(|c| c != '0' && c != '-'), "{sub}");
    let cfg = cfg.to_str().unwrap();
    // replicate first so the secondary has what check and the drill read
    let o = cli(&["replicate", "--config", cfg]).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // check --record DIR --record-keep-ids
    let kept = dir.path().join("kept");
    let o = cli(&[
        "check",
        "--config",
        cfg,
        "--record",
        kept.to_str().unwrap(),
        "--record-keep-ids",
    ])
    .await;
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(stderr.contains("recording ARM exchanges to "), "{stderr}");
    let files = json_files(&kept);
    assert_eq!(files.len(), 1, "one file for check: {files:?} ({stderr})");
    let body = assert_secrets_sanitised(&files[0], &token);
    assert!(
        body.to_ascii_lowercase()
            .contains(&format!("/subscriptions/{sub}/")),
        "{}: --record-keep-ids did not keep the subscription id {sub}",
        files[0].display()
    );
    assert!(
        body.contains("user1@example.com"),
        "check read e-mail addresses (the estate's principals) and masked them"
    );
    let ops = replay_file(&files[0])
        .await
        .unwrap_or_else(|e| panic!("check: {e}"));
    assert!(ops.iter().any(|o| o.starts_with("list_")), "{ops:?}");

    // failover start --local --record DIR (a drill: reads only), ids sanitised by default
    let fo = dir.path().join("failover");
    let o = cli(&[
        "failover",
        "start",
        "--config",
        cfg,
        "--pair",
        &estate.pair_name,
        "--mode",
        "drill",
        "--local",
        "--record",
        fo.to_str().unwrap(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let files = json_files(&fo);
    assert!(
        !files.is_empty(),
        "no recording from failover start --local: {stderr}"
    );
    for f in &files {
        let body = assert_secrets_sanitised(f, &token);
        assert!(
            !body.to_ascii_lowercase().contains(&sub),
            "{}: subscription id kept without --record-keep-ids",
            f.display()
        );
        let ops = replay_file(f)
            .await
            .unwrap_or_else(|e| panic!("failover: {e}"));
        assert!(!ops.is_empty());
    }
    sim.shutdown().await;
}
