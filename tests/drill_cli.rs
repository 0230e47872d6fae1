//! `datashare-dr drill` as an operator runs it: the real binary, no arguments (the README's first
//! command), `--json`, another estate size, simulated latency and a bad `--populate`. Checks the
//! exit code, the report's key facts (run completed, final-sync skipped because the primary
//! region is down, invitations sent, RTO, ARM calls by operation) and that it ends in time.
//!
//! Each drill is a child process with its stdout/stderr in files (no pipe can fill up), polled
//! against a deadline and killed (by its own handle) when it overruns.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous bound for one drill (the target for the default estate is < 10 s on an idle
/// machine; tests share two cores with the rest of the suite).
const BOUND: Duration = Duration::from_secs(60);

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn drill(args: &[&str]) -> Ran {
    run(&[&["drill"], args].concat())
}

/// The binary with `args`, bounded by [`BOUND`] (killed when it overruns).
fn run(args: &[&str]) -> Ran {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_datashare-dr"))
        .args(args)
        // The drill needs nothing from the environment; make sure nothing leaks in.
        .env_remove("AzureWebJobsStorage")
        .env_remove("DR_CONFIG_PATH")
        .env_remove("ARM_ENDPOINT")
        .env_remove("ARM_AUTH")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("start datashare-dr drill");
    let status = loop {
        if let Some(s) = child.try_wait().expect("poll the drill") {
            break s;
        }
        if started.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{args:?} did not finish within {BOUND:?}; stdout so far:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        code: status.code(),
        stdout: std::fs::read_to_string(&out_path).expect("read stdout"),
        stderr: std::fs::read_to_string(&err_path).expect("read stderr"),
        elapsed: started.elapsed(),
    }
}

/// The number in `text` right after `prefix` (e.g. `"RTO: "` → 1.57).
fn number_after(text: &str, prefix: &str) -> Option<f64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let num: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse().ok()
}

fn line_starting<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?} in:\n{text}"))
}

#[test]
fn the_drill_with_no_arguments_fails_over_the_simulated_pair_and_reports_it() {
    let r = drill(&[]);
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    let out = &r.stdout;
    assert!(
        out.starts_with("datashare-dr drill — pair "),
        "a readable report:\n{out}"
    );
    assert!(
        out.contains("(5 shares × 3 data sets, 2 consumers)"),
        "{out}"
    );
    // The story in order: replicate, readiness, roster, outage, alert, run.
    let order = [
        "replicate ",
        "readiness ",
        "roster ",
        "outage ",
        "alert ",
        "run ",
        "RTO: ",
        "ARM calls during the failover: ",
    ];
    let mut at = 0;
    for step in order {
        let found = out[at..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing or out of order:\n{out}"));
        at += found + step.len();
    }
    assert!(
        line_starting(out, "outage").contains("region westeurope taken down"),
        "{out}"
    );
    assert!(
        line_starting(out, "alert").contains("start failover"),
        "{out}"
    );
    assert!(
        line_starting(out, "run ").ends_with(": succeeded"),
        "run completed:\n{out}"
    );
    let fs = line_starting(out, "final-sync");
    assert!(fs.contains("skipped"), "{fs}");
    assert!(fs.contains("the primary does not answer"), "{fs}");
    assert!(out.contains("final-sync-skipped"), "the finding:\n{out}");
    let invite = line_starting(out, "invite-consumers");
    assert!(invite.contains("succeeded"), "{invite}");
    let sent = number_after(invite, "succeeded").expect("invitations sent") as u64;
    assert!(sent > 0, "{invite}");
    assert!(invite.contains("invitation(s) sent"), "{invite}");
    for stage in ["preflight", "enable-schedules", "notify", "complete"] {
        assert!(
            line_starting(out, stage).contains("succeeded"),
            "{stage}:\n{out}"
        );
    }
    let rto = number_after(out, "RTO: ").expect("an RTO");
    assert!(rto > 0.0 && rto < BOUND.as_secs_f64(), "RTO {rto}");
    assert!(
        line_starting(out, "RTO: ").contains("measured from the alert's event time 20"),
        "what the RTO is measured from:\n{out}"
    );
    // Per-stage durations: every stage line carries how long it took.
    for stage in [
        "preflight",
        "final-sync",
        "invite-consumers",
        "enable-schedules",
        "notify",
        "complete",
    ] {
        let line = line_starting(out, stage);
        let took = number_after(line, stage).unwrap_or_else(|| panic!("no duration: {line}"));
        assert!(took < BOUND.as_secs_f64(), "{line}");
        assert!(line.contains(" s  "), "{line}");
    }
    // What a person must do now: the invited consumers and the changes final-sync left behind.
    let todo = &out[out
        .find("What a person must do now:")
        .expect("the actions section")..];
    assert!(todo.contains("final-sync was skipped"), "{todo}");
    assert!(todo.contains("datashare-dr plan --config"), "{todo}");
    assert!(
        todo.contains("pending invitation(s) on the secondary"),
        "{todo}"
    );
    assert!(todo.contains("consumer00@"), "{todo}");
    let total = number_after(out, "ARM calls during the failover: ").expect("ARM call total");
    assert!(total > 0.0);
    // One line per operation; the invitations PUT matches what the stage reported.
    let creates = line_starting(out, &format!("{sent}  Invitations_Create"));
    assert!(creates.ends_with("Invitations_Create"), "{creates}");
    assert!(out.contains("Shares_ListByAccount"), "{out}");
    let wall = number_after(out, "wall time: ").expect("wall time");
    assert!(wall < BOUND.as_secs_f64());
    eprintln!(
        "drill: wall {wall:.2} s as reported, {:.2} s for the process",
        r.elapsed.as_secs_f64()
    );
}

#[test]
fn the_drill_json_report_carries_the_run_and_the_arm_calls() {
    let r = drill(&["--json"]);
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).expect("--json prints one JSON document");
    assert_eq!(v["estate"], "5 shares × 3 data sets, 2 consumers");
    assert_eq!(v["primaryRegionDown"], "westeurope");
    assert!(
        v["readinessBefore"]
            .as_str()
            .unwrap_or("")
            .starts_with("Ready"),
        "{v}"
    );
    assert!(v["replicatedChanges"].as_u64().unwrap_or(0) > 0);
    let roster = v["rosterConsumers"].as_u64().expect("rosterConsumers");
    assert_eq!(roster, 5 * 2, "every consumer of every share");

    let run = &v["run"];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["mode"], "failover");
    assert_eq!(run["trigger"]["kind"], "alert");
    assert_eq!(run["primaryReachable"], false);
    assert!(run["rtoSecs"].as_f64().is_some_and(|s| s > 0.0), "{run}");
    let stages = run["stages"].as_array().expect("stages");
    let status_of = |name: &str| -> &Value {
        &stages
            .iter()
            .find(|s| s["stage"] == name)
            .unwrap_or_else(|| panic!("no stage {name}"))["status"]
    };
    assert_eq!(status_of("final-sync"), "skipped");
    for s in [
        "preflight",
        "invite-consumers",
        "enable-schedules",
        "notify",
        "complete",
    ] {
        assert_eq!(status_of(s), "succeeded", "{s}");
    }
    let findings: Vec<&str> = run["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(findings.contains(&"final-sync-skipped"), "{findings:?}");
    assert!(findings.contains(&"roster-from-store"), "{findings:?}");

    let invite = stages
        .iter()
        .find(|s| s["stage"] == "invite-consumers")
        .expect("invite stage");
    let invited = invite["counts"]["invited"].as_u64().expect("invited");
    let covered = invite["counts"]["alreadyCovered"].as_u64().unwrap_or(0);
    assert!(invited > 0);
    assert_eq!(invited + covered, roster, "every roster consumer covered");

    let calls = v["armCalls"].as_object().expect("armCalls by operation");
    assert_eq!(
        calls["Invitations_Create"], invited,
        "one PUT per invitation"
    );
    assert!(calls.values().all(|n| n.as_u64().is_some_and(|n| n > 0)));
    // A failover writes invitations and (missing) schedules on the secondary, nothing else.
    let writes: Vec<&String> = calls
        .keys()
        .filter(|k| k.ends_with("_Create") || k.ends_with("_Delete") || k.ends_with("_Update"))
        .collect();
    assert!(
        writes
            .iter()
            .all(|k| *k == "Invitations_Create" || *k == "SynchronizationSettings_Create"),
        "{calls:?}"
    );
    assert!(v["notifications"].as_u64().unwrap_or(0) >= 1);

    // Per-stage durations agree with the run's own stage times and fit inside the RTO.
    let durations = v["stageDurations"].as_array().expect("stageDurations");
    assert_eq!(durations.len(), stages.len(), "{durations:?}");
    let rfc = |x: &Value| {
        time::OffsetDateTime::parse(
            x.as_str().unwrap_or_else(|| panic!("time: {x}")),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339")
    };
    let mut total = 0.0;
    for (d, st) in durations.iter().zip(stages) {
        assert_eq!(d["stage"], st["stage"]);
        let want = (rfc(&st["endedAt"]) - rfc(&st["startedAt"])).as_seconds_f64();
        let got = d["secs"].as_f64().expect("secs");
        assert!((got - want).abs() < 1e-6, "{d} vs {st}");
        total += got;
    }
    let rto = run["rtoSecs"].as_f64().expect("rto");
    assert!(total <= rto + 1e-6, "stages {total} s within RTO {rto} s");
    // RTO origin: the alert's event time, which is where the run's clock starts.
    let from = &v["rtoMeasuredFrom"];
    assert_eq!(from["source"], "event-time", "{from}");
    assert_eq!(rfc(&from["at"]), rfc(&run["trigger"]["at"]), "{from}");
    // Actions: every roster consumer's invitation is pending on the secondary, and the window of
    // changes final-sync could not carry starts before the outage run.
    let actions = &v["actions"];
    let pending = actions["pendingInvitations"]
        .as_array()
        .expect("pendingInvitations");
    assert_eq!(pending.len() as u64, roster, "{actions:#}");
    assert!(
        pending
            .iter()
            .all(|p| p["consumer"].as_str().is_some_and(|c| c.contains('@')))
    );
    let since = rfc(&actions["uncarriedChangesSince"]);
    assert!(since <= rfc(&run["createdAt"]), "{actions:#}");
    assert!(
        actions["steps"].as_array().is_some_and(|s| s.len() >= 2),
        "{actions:#}"
    );
    assert!(
        v["wallSecs"]
            .as_f64()
            .is_some_and(|s| s < BOUND.as_secs_f64())
    );
}

#[test]
fn the_drill_follows_the_estate_size_and_latency_it_is_given() {
    let r = drill(&[
        "--populate",
        "shares=2,datasets=1,consumers=3",
        "--latency-ms",
        "20",
        "--json",
    ]);
    assert_eq!(
        r.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["estate"], "2 shares × 1 data sets, 3 consumers");
    assert_eq!(v["rosterConsumers"], 2 * 3);
    assert_eq!(v["run"]["status"], "succeeded");
    let total: u64 = v["armCalls"]
        .as_object()
        .expect("armCalls")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert!(total > 0, "{total} calls");
    // The latency took effect: invite-consumers and enable-schedules each list the shares and
    // then list per share — two calls one after the other, so at least 2 × 20 ms each (on
    // loopback without latency they take a few ms).
    let at = |s: &Value, k: &str| {
        time::OffsetDateTime::parse(
            s[k].as_str().unwrap_or_else(|| panic!("{k}: {s}")),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339")
    };
    for name in ["invite-consumers", "enable-schedules"] {
        let stage = v["run"]["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .find(|s| s["stage"] == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let took = at(stage, "endedAt") - at(stage, "startedAt");
        assert!(
            took >= time::Duration::milliseconds(40),
            "{name} took {took} with 20 ms per ARM call"
        );
    }
}

#[test]
fn a_bad_populate_value_is_a_usage_error_naming_the_flag() {
    let r = drill(&["--populate", "bogus"]);
    assert_eq!(r.code, Some(64), "stderr:\n{}", r.stderr);
    assert!(r.stderr.contains("--populate"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

/// A mistyped flag is a usage error (64), never clap's 2 — `check` uses 2 for NotReady — and
/// names the flag; `--help` still succeeds.
#[test]
fn an_unknown_flag_exits_64_naming_it_and_help_exits_0() {
    let r = drill(&["--no-such-flag"]);
    assert_eq!(r.code, Some(64), "stderr:\n{}", r.stderr);
    assert!(r.stderr.contains("--no-such-flag"), "{}", r.stderr);
    let check = run(&["check", "--config", "x.toml", "--bogus"]);
    assert_eq!(check.code, Some(64), "{}", check.stderr);
    let help = drill(&["--help"]);
    assert_eq!(help.code, Some(0), "stderr:\n{}", help.stderr);
    assert!(help.stdout.contains("Usage"), "{}", help.stdout);
}

/// `drill --role consumer`: the consumer's side of a failover, offline. Every subscription's
/// run succeeds: the invitation accepted on the consumer's secondary account, data sets mapped
/// to secondary sinks, triggers in place. A bad `--role` is a usage error naming the flag.
#[test]
fn the_consumer_drill_accepts_maps_and_schedules_every_subscription() {
    let r = drill(&["--role", "consumer", "--json"]);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON report");
    assert_eq!(v["consumer"], "consumer00", "{v:#}");
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(
        runs.len() as u64,
        v["snapshots"].as_u64().expect("snapshots"),
        "one run per recorded subscription"
    );
    assert!(runs.len() > 1, "{}", runs.len());
    for run in runs {
        assert_eq!(run["status"], "succeeded", "{run:#}");
        assert_eq!(run["role"], "consumer", "{run:#}");
        for stage in ["accept-invitations", "map-datasets", "create-triggers"] {
            let st = run["stages"]
                .as_array()
                .expect("stages")
                .iter()
                .find(|s| s["stage"] == stage)
                .unwrap_or_else(|| panic!("{stage} missing: {run:#}"));
            assert_eq!(st["status"], "succeeded", "{stage}: {st:#}");
        }
    }
    assert!(
        v["armCalls"]["ShareSubscriptions_Create"].as_u64() == Some(runs.len() as u64),
        "one share subscription per run: {:#}",
        v["armCalls"]
    );
    // One summary at the end, not one report per run: a table line per subscription, no run
    // blocks, the totals agreeing with the JSON, then what a person must do.
    let text = drill(&["--role", "consumer"]);
    assert_eq!(text.code, Some(0), "stderr:\n{}", text.stderr);
    let out = &text.stdout;
    assert!(
        out.starts_with("datashare-dr drill --role consumer"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("run ")).count(),
        0,
        "no per-run blocks:\n{out}"
    );
    assert_eq!(out.matches("Summary:").count(), 1, "{out}");
    assert_eq!(
        out.matches("RTO: ").count(),
        0,
        "one RTO statement, in the summary:\n{out}"
    );
    for run in runs {
        let sub = run["pair"].as_str().expect("subscription");
        let row = line_starting(out, sub);
        assert!(row.contains("succeeded"), "{row}");
    }
    let summary_at = out.find("Summary:").expect("summary");
    let todo_at = out.find("What a person must do now:").expect("actions");
    assert!(
        summary_at
            > out
                .find("ARM calls during the failover")
                .expect("arm calls")
    );
    assert!(todo_at > summary_at, "{out}");
    let summary = line_starting(out, "Summary:");
    assert!(
        summary.contains(&format!(
            "{} of {} run(s) succeeded",
            runs.len(),
            runs.len()
        )),
        "{summary}"
    );
    let created = v["summary"]["triggersCreated"]
        .as_u64()
        .expect("triggersCreated total");
    assert!(
        summary.contains(&format!("{created} trigger(s) created")),
        "{summary}"
    );
    assert!(
        summary.contains("measured from the alert's event time"),
        "{summary}"
    );
    assert_eq!(
        v["stageDurations"].as_array().map(Vec::len),
        Some(runs[0]["stages"].as_array().expect("stages").len()),
        "{:#}",
        v["stageDurations"]
    );
    let bad = drill(&["--role", "tenant"]);
    assert_eq!(bad.code, Some(64), "{}", bad.stderr);
    assert!(bad.stderr.contains("--role"), "{}", bad.stderr);
}

/// `triggersCreated` is what the runs did: per run and in total it equals the `Triggers_Create`
/// PUTs the simulator served for that run's share subscription (its request log), even when a
/// creation is a long-running operation the stage waits for and runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_drill_counts_the_triggers_it_created() {
    let spec =
        datashare_dr::sim::PopulateSpec::parse("shares=5,datasets=3,consumers=2").expect("spec");
    let mut log = Vec::new();
    let report = tokio::time::timeout(
        BOUND,
        datashare_dr::failover::drill::consumer_drill_with(spec, 0, &mut |sim| {
            log = sim.requests()
        }),
    )
    .await
    .expect("the consumer drill ends in time")
    .expect("consumer drill");
    let puts: Vec<_> = log
        .iter()
        .filter(|e| e.operation == "Triggers_Create" && e.method == "PUT" && e.status < 300)
        .collect();
    assert!(!puts.is_empty(), "the drill created no trigger at all");
    let mut total = 0;
    for sub in &report.subscriptions {
        let name = sub
            .share_subscription
            .as_deref()
            .and_then(|id| id.rsplit('/').next())
            .expect("share subscription");
        let marker = format!("/shareSubscriptions/{name}/triggers/");
        let sent = puts
            .iter()
            .filter(|e| {
                e.path
                    .to_ascii_lowercase()
                    .contains(&marker.to_ascii_lowercase())
            })
            .count() as u64;
        assert_eq!(
            sub.triggers_created, sent,
            "{}: report says {} created, the simulator served {sent} Triggers_Create",
            sub.subscription, sub.triggers_created
        );
        total += sent;
    }
    assert_eq!(total, puts.len() as u64, "every PUT belongs to a run");
    assert_eq!(report.summary.triggers_created, total);
    assert_eq!(
        report.arm_calls.get("Triggers_Create").copied(),
        Some(total)
    );
}
