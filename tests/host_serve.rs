//! The real binary: `serve` fails fast naming the missing/bad setting, answers `GET /`, stops on
//! SIGTERM with exit code 0; and the in-process `spawn_app` serves invocations on port 0.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use datashare_dr::config::{Config, ENV_KEYS};
use serde_json::json;

mod support;
use support::app::{payload, spawn_app};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_datashare-dr"));
    for k in ENV_KEYS {
        c.env_remove(k);
    }
    c.stdin(Stdio::null());
    c
}

fn dr_config() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dr.toml");
    std::fs::write(&path, datashare_dr::bench::cold_start::BENCH_DR_CONFIG).unwrap();
    (dir, path)
}

#[test]
fn serve_without_the_port_fails_naming_the_variable() {
    let out = bin().arg("serve").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("FUNCTIONS_CUSTOMHANDLER_PORT is not set"),
        "{err}"
    );
}

#[test]
fn serve_with_a_bad_port_fails_naming_the_variable() {
    let out = bin()
        .arg("serve")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "http")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("FUNCTIONS_CUSTOMHANDLER_PORT is invalid"),
        "{err}"
    );
}

#[test]
fn serve_with_a_broken_dr_config_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dr.toml");
    std::fs::write(&path, "[[pairs]]\nname = 5\n").unwrap();
    let out = bin()
        .arg("serve")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "0")
        .env("DR_CONFIG_PATH", &path)
        .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DR_CONFIG_PATH"), "{err}");
}

fn get_root(port: u16) -> Option<String> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

#[test]
fn serve_answers_the_readiness_probe_and_stops_cleanly_on_sigterm() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_dir, dr) = dr_config();
    let mut child = bin()
        .arg("serve")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("DR_CONFIG_PATH", &dr)
        .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let answer = loop {
        if let Some(a) = get_root(port) {
            break a;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve never answered GET /"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.is_empty(),
        "nothing on stderr (the host logs it as errors): {stderr}"
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "custom handler listening on 127.0.0.1" && l["port"] == port)
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "custom handler stopped")
    );
}

#[tokio::test]
async fn spawn_app_serves_invocations_on_a_free_port() {
    let app = spawn_app(Config::for_port(0)).await;
    assert_ne!(app.port, 0);
    let resp = app.client.get(&app.base_url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (status, body) = app
        .invoke(
            "FailoverStage",
            &payload::queue("FailoverStage", r#"{"runId":"r9","stage":"notify"}"#, 3),
        )
        .await;
    // Decoded and routed to the real handler, which needs the DR config: without one the
    // message is retried (500, never acknowledged and lost), and the answer names the setting.
    assert_eq!(status, 500, "{body}");
    assert!(
        body.to_string().contains("DR_CONFIG_PATH"),
        "the answer names the missing setting: {body}"
    );
    let (status, body) = app.invoke("FailoverStage", &json!({"Data": {}})).await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], json!("Data.msg"));
}
