//! Security checks (issue 8): known secrets are injected and must never appear in a log line or
//! an error body.
//!
//! Secrets injected (each a unique marker string):
//! - the ARM bearer token of a `static-token` DR config (`[arm] token`),
//! - a Functions key, sent the two ways callers send it (`x-functions-key` header and `code`
//!   query parameter, in `Query` and in `Url`),
//! - a storage `AccountKey` in `AzureWebJobsStorage`,
//! - `NOTIFY_WEBHOOK_URL` (its secret path and `sig=` signature),
//! - `AZURE_CLIENT_SECRET`.
//!
//! Captured output:
//! - the real binary `datashare-dr serve` as a child process (JSON telemetry on stdout, at
//!   `RUST_LOG=trace`, stderr too), driven through HTTP with a valid and several failing
//!   invocations of every function; every answer body is checked as well;
//! - `serve` refusing to start on a bad setting next to a secret (stderr and exit code 64);
//! - in process, a capturing tracing subscriber around the readiness webhook failing (closed
//!   port and HTTP 500), and the `Debug` output of the settings types.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use datashare_dr::config::Config;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::handlers::FUNCTIONS;
use datashare_dr::host::{HttpRequest, InvocationRequest, Trigger, TriggerKind};
use datashare_dr::readiness::notify::{NotifyTargets, WebhookUrl, post_webhook};
use datashare_dr::startup::AppState;
use serde_json::{Value, json};
use support::logs::Captured;

const ARM_TOKEN: &str = "armtoken-SECRET-3b9d7c1f0e2a4d6b";
const FUNCTION_KEY: &str = "fnkey-SECRET-8c2e5a7d9f1b3c4e";
/// base64 of `STORAGE-KEY-SECRET-6a4f2d8e1c9b`.
const ACCOUNT_KEY: &str = "U1RPUkFHRS1LRVktU0VDUkVULTZhNGYyZDhlMWM5Yg==";
const ACCOUNT_KEY_RAW: &str = "STORAGE-KEY-SECRET-6a4f2d8e1c9b";
const WEBHOOK_PATH: &str = "hookpath-SECRET-1d7e3f9a2b5c";
const WEBHOOK_SIG: &str = "hooksig-SECRET-4f8a1c6e3d2b";
const CLIENT_SECRET: &str = "clientsecret-SECRET-9e3c7a1f5d2b";

fn secrets() -> [&'static str; 7] {
    [
        ARM_TOKEN,
        FUNCTION_KEY,
        ACCOUNT_KEY,
        ACCOUNT_KEY_RAW,
        WEBHOOK_PATH,
        WEBHOOK_SIG,
        CLIENT_SECRET,
    ]
}

/// Fails naming the secret and the offending text when any secret (or its base64 form, or the
/// account key's JSON-escaped form) appears in `text`.
fn assert_no_secret(what: &str, text: &str) {
    use base64::Engine as _;
    for s in secrets() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(s);
        for form in [s.to_owned(), b64, s.replace('/', "\\/")] {
            assert!(
                !text.contains(&form),
                "{what} leaks secret {s:?} (as {form:?}):\n{text}"
            );
        }
    }
}

const SUB: &str = "11111111-2222-3333-4444-555555555555";

fn acct(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.DataShare/accounts/{name}"
    )
}

/// A closed loopback port (connection refused at once).
const CLOSED: &str = "http://127.0.0.1:9";

/// A valid DR config with a `static-token` ARM endpoint on a closed loopback port.
fn dr_toml(arm_extra: &str) -> String {
    dr_toml_at(CLOSED, arm_extra)
}

/// A valid DR config with a `static-token` ARM endpoint at `base`.
fn dr_toml_at(base: &str, arm_extra: &str) -> String {
    format!(
        r#"[arm]
endpoint = "{base}"
auth = "static-token"
token = "{ARM_TOKEN}"
{arm_extra}

[alerts]
allowed_sources = ["/subscriptions/{SUB}"]

[[pairs]]
name = "sales"
primary = "{p}"
secondary = "{s}"
primary_region = "westeurope"
secondary_region = "northeurope"
"#,
        p = acct("rg-weu", "sales-weu"),
        s = acct("rg-neu", "sales-neu"),
    )
}

fn storage_connection_string(base: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName=secacct;AccountKey={ACCOUNT_KEY};\
         BlobEndpoint={base}/secacct;QueueEndpoint={base}/secacct"
    )
}

fn webhook_url(base: &str) -> String {
    format!("{base}/{WEBHOOK_PATH}/invoke?api-version=1&sig={WEBHOOK_SIG}")
}

/// The environment `serve` gets: every secret set, ARM, storage and the webhook at `base`.
fn serve_env(dir: &std::path::Path, base: &str) -> Vec<(String, String)> {
    let config = dir.join("dr.toml");
    std::fs::write(&config, dr_toml_at(base, "")).expect("write dr.toml");
    [
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "0".to_owned()),
        ("DR_CONFIG_PATH", config.display().to_string()),
        ("AzureWebJobsStorage", storage_connection_string(base)),
        ("NOTIFY_WEBHOOK_URL", webhook_url(base)),
        ("AZURE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("RUST_LOG", "trace".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn serve_command(env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_datashare-dr"));
    cmd.arg("serve")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Reads a child's stream line by line into `sink` on a thread; `on_line` sees each line.
fn collect(
    stream: impl std::io::Read + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
    on_line: impl Fn(&str) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            on_line(&line);
            sink.lock().expect("sink lock").push(line);
        }
    })
}

/// Kills the child on drop so a failing assertion never leaves a process behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback server answering every ARM request with 403 and a JSON error (bounded: 2000
/// connections, 300 s), keeping the request heads it saw. Storage requests (path under the
/// connection string's account) get just enough of an answer for the handlers to go on to ARM:
/// every blob is missing (so a pair's state reads as `normal`) and every write is accepted —
/// replication refuses to run when it cannot read the pair state, so a storage fake that refuses
/// everything would keep the ARM token out of play.
struct Fake {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    /// Set on drop: the accept loop ends with the test instead of polling on for minutes.
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The fake's answer to a storage request (`/secacct/...`), or `None` for anything else.
fn storage_answer(request: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(request);
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    if !path.starts_with("/secacct/") {
        return None;
    }
    let (status, extra) = match method {
        "GET" | "HEAD" => (
            "404 The specified blob does not exist.",
            "x-ms-error-code: BlobNotFound\r\n",
        ),
        _ => ("201 Created", "etag: \"0x8DC0000000000001\"\r\n"),
    };
    Some(format!(
        "HTTP/1.1 {status}\r\n{extra}x-ms-request-id: fake\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ))
}

fn refusing_fake() -> Fake {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut served = 0;
        while served < 2000
            && Instant::now() < deadline
            && !stop2.load(std::sync::atomic::Ordering::Relaxed)
        {
            let mut stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            served += 1;
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // read the head and as much body as Content-Length says
            while let Ok(n) = stream.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            seen2
                .lock()
                .expect("lock")
                .push(String::from_utf8_lossy(&buf).into_owned());
            let resp = storage_answer(&buf).unwrap_or_else(|| {
                let body = r#"{"error":{"code":"AuthorizationFailed","message":"refused by the test fake"}}"#;
                format!(
                    "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            });
            let _ = stream.write_all(resp.as_bytes());
        }
    });
    Fake { port, seen, stop }
}

// ---------------------------------------------------------------------------------------------
// Envelopes, each carrying the function key the ways a caller can send it.

fn sys(function: &str) -> Value {
    json!({"MethodName": function, "UtcNow": "2026-01-01T10:00:00Z", "RandGuid": "6b0c3f1e-2f7a-4d8e-9a3b-1c2d3e4f5a6b"})
}

fn http_envelope(
    function: &str,
    method: &str,
    route: &str,
    body: Option<&str>,
    query: Value,
) -> Value {
    let mut headers = json!({
        "Host": ["app.example.invalid"],
        "x-functions-key": [FUNCTION_KEY],
        "Authorization": [format!("Bearer {FUNCTION_KEY}")],
    });
    let mut req = json!({
        "Url": format!("https://app.example.invalid/api/{route}?code={FUNCTION_KEY}"),
        "Method": method,
        "Query": query,
        "Params": {"pair": "sales", "runId": "run-1", "action": "approve"},
    });
    if let Some(b) = body {
        headers["Content-Type"] = json!(["application/json"]);
        req["Body"] = json!(b);
    }
    req["Headers"] = headers;
    json!({"Data": {"req": req}, "Metadata": {"sys": sys(function), "Query": {"code": FUNCTION_KEY}}})
}

fn queue_envelope(function: &str, message: &str, dequeue: Value) -> Value {
    json!({
        "Data": {"msg": serde_json::to_string(message).expect("a string encodes")},
        "Metadata": {"DequeueCount": dequeue, "Id": "\"m-1\"", "sys": sys(function)},
    })
}

fn timer_envelope(function: &str, past_due: Value) -> Value {
    json!({
        "Data": {"timer": {"Schedule": {"AdjustForDST": true}, "IsPastDue": past_due}},
        "Metadata": {"sys": sys(function)},
    })
}

/// For every function: a valid invocation and failing ones (bad field, bad JSON, wrong type,
/// body over the limit); then a body that is not JSON and an unknown function.
fn invocations() -> Vec<(String, String)> {
    let code = json!({"code": FUNCTION_KEY});
    let mut out = Vec::new();
    for f in FUNCTIONS {
        let name = f.name;
        let route = f.source.split('/').next().unwrap_or_default();
        let method = f
            .methods
            .first()
            .copied()
            .unwrap_or("post")
            .to_ascii_uppercase();
        let envelopes: Vec<Value> = match f.trigger {
            TriggerKind::Http => {
                let good_body = format!(
                    r#"{{"pair":"sales","mode":"drill","reason":"security test {FUNCTION_KEY}"}}"#
                );
                let oversized = format!(r#"{{"pair":"{}"}}"#, "p".repeat(300 * 1024));
                vec![
                    http_envelope(name, &method, route, Some(&good_body), code.clone()),
                    http_envelope(
                        name,
                        &method,
                        route,
                        None,
                        json!(format!("{{\"code\":\"{FUNCTION_KEY}\"}}")),
                    ),
                    http_envelope(name, "POST", route, Some("{not json"), code.clone()),
                    http_envelope(
                        name,
                        "POST",
                        route,
                        Some(r#"{"pair": 5, "mode": "sideways"}"#),
                        code.clone(),
                    ),
                    http_envelope(name, "POST", route, Some(&oversized), code.clone()),
                    http_envelope(name, "P0ST", route, None, code.clone()),
                    http_envelope(name, &method, route, None, json!({"code": [FUNCTION_KEY]})),
                ]
            }
            TriggerKind::Queue => vec![
                queue_envelope(
                    name,
                    r#"{"runId":"run-1","stage":"preflight","attempt":0}"#,
                    json!("1"),
                ),
                queue_envelope(
                    name,
                    r#"{"runId":"run-1","stage":"preflight"}"#,
                    json!("zero"),
                ),
                queue_envelope(name, "{not json", json!(2)),
            ],
            TriggerKind::Timer => vec![
                timer_envelope(name, json!(false)),
                timer_envelope(name, json!("maybe")),
            ],
        };
        out.extend(
            envelopes
                .into_iter()
                .map(|e| (name.to_owned(), e.to_string())),
        );
        out.push((name.to_owned(), format!("{{\"Data\": {FUNCTION_KEY}")));
    }
    out.push(("NoSuchFunction".to_owned(), "{}".to_owned()));
    out
}

#[tokio::test]
async fn serve_logs_and_answers_carry_no_secret_through_valid_and_failing_invocations() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // ARM, storage and the webhook all answer 403 at once (not retried), so every handler that
    // reaches them fails fast with the secrets in play
    let fake = refusing_fake();
    let env = serve_env(dir.path(), &format!("http://127.0.0.1:{}", fake.port));
    let mut child = serve_command(&env).spawn().expect("serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let child = ChildGuard(child);
    let out_lines = Arc::new(Mutex::new(Vec::new()));
    let err_lines = Arc::new(Mutex::new(Vec::new()));
    let (port_tx, port_rx) = mpsc::channel::<u16>();
    let port_tx = Mutex::new(Some(port_tx));
    let t_out = collect(stdout, out_lines.clone(), move |line| {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return;
        };
        let listening = v["message"]
            .as_str()
            .is_some_and(|m| m.contains("listening"));
        if let (true, Some(p)) = (listening, v["port"].as_u64())
            && let Some(tx) = port_tx.lock().expect("lock").take()
        {
            let _ = tx.send(u16::try_from(p).unwrap_or(0));
        }
    });
    let t_err = collect(stderr, err_lines.clone(), |_| {});
    let port = match port_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(p) => p,
        Err(_) => panic!(
            "serve did not report its port; stdout: {:?}; stderr: {:?}",
            out_lines.lock().expect("lock"),
            err_lines.lock().expect("lock")
        ),
    };
    assert_ne!(port, 0);

    datashare_dr::startup::install_crypto_provider();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a client");
    let mut statuses = Vec::new();
    let all = invocations();
    for (function, body) in &all {
        let resp = client
            .post(format!("http://127.0.0.1:{port}/{function}"))
            .header("content-type", "application/json")
            .header(
                "x-azure-functions-invocationid",
                uuid::Uuid::new_v4().to_string(),
            )
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{function}: no answer: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("a body");
        assert_no_secret(&format!("the answer of {function} ({status})"), &text);
        // HTTP functions answer 200 to the host and put the caller's status in `res`
        let caller = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
            v["Outputs"]["res"]["statusCode"]
                .as_str()
                .map(str::to_owned)
        });
        statuses.push((function.clone(), status, caller));
    }

    // stop gracefully (SIGTERM) so the last lines are written, then wait for the streams to end
    let pid = child.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !t_out.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(child);
    let _ = t_out.join();
    let _ = t_err.join();

    let out = out_lines.lock().expect("lock").clone();
    let err = err_lines.lock().expect("lock").clone();
    // DSDR_SHOW_CAPTURE=1: print what was captured (for debugging this test).
    if std::env::var_os("DSDR_SHOW_CAPTURE").is_some() {
        eprintln!(
            "{} invocations, {} stdout lines, {} stderr lines, {} requests to the fake",
            all.len(),
            out.len(),
            err.len(),
            fake.seen.lock().expect("lock").len()
        );
        for r in fake.seen.lock().expect("lock").iter() {
            eprintln!("FAKE {}", r.lines().next().unwrap_or_default());
        }
        for l in out.iter().take(400) {
            eprintln!("OUT {l}");
        }
        for l in &err {
            eprintln!("ERR {l}");
        }
        eprintln!("{statuses:?}");
    }
    // the capture works: failing invocations were logged, and every stdout line is JSON
    assert!(
        out.iter().any(|l| l.contains("invocation payload refused")),
        "no refusal was logged; statuses: {statuses:?}\n{out:#?}"
    );
    assert!(
        out.iter()
            .any(|l| l.contains("invocation failed") || l.contains("invocation succeeded")),
        "no handled invocation was logged; statuses: {statuses:?}\n{out:#?}"
    );
    let logged = out
        .iter()
        .filter(|l| l.contains("\"message\":\"invocation "))
        .count();
    assert!(
        logged + 1 >= all.len(),
        "{logged} invocation log lines for {} invocations",
        all.len()
    );
    let refused_4xx = statuses
        .iter()
        .filter(|(_, s, c)| {
            (400..500).contains(s) || c.as_deref().is_some_and(|c| c.starts_with('4'))
        })
        .count();
    assert!(
        refused_4xx >= FUNCTIONS.len(),
        "too few 4xx answers: {statuses:?}"
    );
    // the secrets were in play: storage and ARM were called (storage with an account SAS
    // signed by the AccountKey, ARM with the static token)
    let requests = fake.seen.lock().expect("lock").clone();
    assert!(!requests.is_empty(), "no handler reached storage or ARM");
    let sas_signatures = sas_signatures(&requests);
    assert!(
        !sas_signatures.is_empty(),
        "no storage call carried a SAS: {requests:?}"
    );
    let arm_calls: Vec<&String> = requests
        .iter()
        .filter(|r| {
            // by the request line: storage writes carry reports that name ARM ids in their body
            r.lines()
                .next()
                .is_some_and(|l| l.contains("/providers/Microsoft.DataShare/"))
        })
        .collect();
    assert!(!arm_calls.is_empty(), "no handler reached ARM");
    for r in arm_calls {
        assert!(
            r.contains(ARM_TOKEN),
            "an ARM call without the static token:\n{r}"
        );
    }
    for line in out.iter().chain(&err) {
        for sig in &sas_signatures {
            assert!(
                !line.contains(sig.as_str()),
                "a log line leaks a storage SAS signature:\n{line}"
            );
        }
    }
    for line in &out {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "a stdout line that is not JSON: {line}"
        );
        assert_no_secret("a stdout log line", line);
    }
    for line in &err {
        assert_no_secret("a stderr line", line);
    }
}

/// `serve` exits 64 naming the bad setting, without echoing any secret given next to it.
#[test]
fn serve_refuses_bad_settings_without_echoing_secrets() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let base = serve_env(dir.path(), CLOSED);
    let with = |key: &str, value: String| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> =
            base.iter().filter(|(k, _)| k != key).cloned().collect();
        env.push((key.to_owned(), value));
        env
    };
    let bad_config = dir.path().join("bad.toml");
    // static-token with a non-loopback endpoint: refused, token not echoed
    std::fs::write(
        &bad_config,
        dr_toml("").replace("http://127.0.0.1:9", "https://management.azure.com"),
    )
    .expect("write");
    let wrong_type = dir.path().join("wrong-type.toml");
    std::fs::write(
        &wrong_type,
        dr_toml("").replace(
            &format!("token = \"{ARM_TOKEN}\""),
            &format!("token = [\"{ARM_TOKEN}\"]"),
        ),
    )
    .expect("write");
    let cases = vec![
        (
            "AzureWebJobsStorage",
            with(
                "AzureWebJobsStorage",
                format!("DefaultEndpointsProtocol=ftp;AccountName=a;AccountKey={ACCOUNT_KEY}"),
            ),
        ),
        (
            "AzureWebJobsStorage",
            with(
                "AzureWebJobsStorage",
                format!("AccountName=a;AccountKey={ACCOUNT_KEY};{ACCOUNT_KEY_RAW}"),
            ),
        ),
        (
            "NOTIFY_WEBHOOK_URL",
            with(
                "NOTIFY_WEBHOOK_URL",
                format!("http://hooks.example.com/{WEBHOOK_PATH}?sig={WEBHOOK_SIG}"),
            ),
        ),
        (
            "NOTIFY_WEBHOOK_URL",
            with(
                "NOTIFY_WEBHOOK_URL",
                format!("{WEBHOOK_PATH} {WEBHOOK_SIG}"),
            ),
        ),
        (
            "DR_CONFIG_PATH",
            with("DR_CONFIG_PATH", bad_config.display().to_string()),
        ),
        (
            "DR_CONFIG_PATH",
            with("DR_CONFIG_PATH", wrong_type.display().to_string()),
        ),
    ];
    for (key, env) in cases {
        let out = serve_command(&env).output().expect("serve runs and exits");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{key}: {stderr}{stdout}");
        assert!(stderr.contains(key), "{key} not named: {stderr}");
        assert_no_secret(&format!("serve's refusal of {key}"), &stderr);
        assert_no_secret(&format!("serve's stdout on a bad {key}"), &stdout);
    }
}

// ---------------------------------------------------------------------------------------------
// In process

/// A loopback server answering every request with `status` (bounded: `max` connections).
async fn answering(status: u16, max: usize) -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        for _ in 0..max {
            let Ok(Ok((mut s, _))) =
                tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
            else {
                return;
            };
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).await.unwrap_or(0);
            seen2
                .lock()
                .expect("lock")
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let resp =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    (port, seen)
}

#[tokio::test]
async fn a_failing_readiness_webhook_logs_and_returns_no_part_of_its_url() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    datashare_dr::startup::install_crypto_provider();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    let (port, seen) = answering(500, 4).await;
    let mut errors = Vec::new();
    for base in [
        format!("http://127.0.0.1:{port}"),
        "http://127.0.0.1:9".to_owned(),
    ] {
        let url = WebhookUrl::parse(&format!("{base}/{WEBHOOK_PATH}?sig={WEBHOOK_SIG}"))
            .expect("a loopback webhook URL");
        assert_no_secret("WebhookUrl Debug", &format!("{url:?} {url}"));
        let mut targets = NotifyTargets::new(Some(url.clone()), None);
        targets.webhook_attempts = 2;
        targets.webhook_first_backoff = Duration::from_millis(5);
        targets.webhook_timeout = Duration::from_secs(2);
        let err = post_webhook(&http, &url, &targets, "sales", "{}")
            .await
            .expect_err("the webhook fails");
        errors.push(format!(
            "{err} | {err:?} | {}",
            datashare_dr::handlers::error_chain(&err)
        ));
    }
    // the 500 server really was called with the secret URL (the test reaches the code path)
    assert!(
        seen.lock()
            .expect("lock")
            .iter()
            .any(|r| r.contains(WEBHOOK_SIG)),
        "the webhook was not called"
    );
    for e in &errors {
        assert_no_secret("the webhook error", e);
    }
    assert_no_secret("the captured log", &captured.text());
}

#[test]
fn settings_types_print_no_secret_in_debug() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = serve_env(dir.path(), CLOSED);
    let config = Config::from_lookup(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        .expect("the settings parse");
    let dr = DrConfig::from_toml_str(&dr_toml(""), "dr.toml").expect("the DR config loads");
    let state = AppState::new(config.clone(), Some(dr.clone()));
    assert_no_secret("Config Debug", &format!("{config:?} {config:#?}"));
    assert_no_secret("DrConfig Debug", &format!("{dr:?} {dr:#?}"));
    assert_no_secret("AppState Debug", &format!("{state:?}"));

    let envelope = http_envelope(
        "StartFailover",
        "POST",
        "failover",
        Some("{}"),
        json!({"code": FUNCTION_KEY, "sig": FUNCTION_KEY}),
    );
    let req =
        InvocationRequest::from_slice(envelope.to_string().as_bytes(), None).expect("an envelope");
    assert_no_secret("InvocationRequest Debug", &format!("{req:?} {req:#?}"));
    let http = HttpRequest::decode(&req, "req").expect("an HTTP request");
    assert_eq!(
        http.query_param("code"),
        Some(FUNCTION_KEY),
        "the key reaches the handler"
    );
    assert_no_secret("HttpRequest Debug", &format!("{http:?} {http:#?}"));
}

#[tokio::test]
async fn a_failing_arm_call_logs_and_returns_no_static_token() {
    use datashare_dr::arm::auth::{AuthMode, Secret};
    use datashare_dr::arm::client::{ArmClient, ArmSettings};
    use datashare_dr::arm::id::AccountId;

    datashare_dr::startup::install_crypto_provider();
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let account = AccountId::new(SUB, "rg-weu", "sales-weu").expect("an account id");
    let mut errors = Vec::new();
    let mut servers = Vec::new();
    for status in [401u16, 403, 500, 429] {
        let (port, seen) = answering(status, 3).await;
        servers.push((status, seen));
        let endpoint = url::Url::parse(&format!("http://127.0.0.1:{port}")).expect("a url");
        let mut settings =
            ArmSettings::new(endpoint, AuthMode::StaticToken(Secret::new(ARM_TOKEN)));
        settings.retry.max_attempts = 2;
        settings.retry.base_delay = Duration::from_millis(5);
        settings.retry.max_delay = Duration::from_millis(20);
        settings.retry.max_retry_after = Duration::from_millis(20);
        settings.deadline = Duration::from_secs(5);
        let client = ArmClient::new(settings).expect("a loopback client");
        assert_no_secret("ArmClient Debug", &format!("{:?}", client.settings()));
        let err = client
            .get_account(&account)
            .await
            .expect_err("the fake ARM fails");
        errors.push(format!(
            "{status}: {err} | {err:?} | {}",
            datashare_dr::handlers::error_chain(&err)
        ));
    }
    // a closed port (transport error)
    let endpoint = url::Url::parse("http://127.0.0.1:9").expect("a url");
    let mut settings = ArmSettings::new(endpoint, AuthMode::StaticToken(Secret::new(ARM_TOKEN)));
    settings.retry.max_attempts = 1;
    settings.deadline = Duration::from_secs(5);
    let client = ArmClient::new(settings).expect("a loopback client");
    let err = client
        .get_account(&account)
        .await
        .expect_err("nobody listens");
    errors.push(format!("closed: {err} | {err:?}"));

    // the calls really carried the token (the test reaches the code path)
    for (status, seen) in &servers {
        assert!(
            seen.lock()
                .expect("lock")
                .iter()
                .any(|r| r.contains(ARM_TOKEN)),
            "the {status} fake never saw the bearer token"
        );
    }
    for e in &errors {
        assert_no_secret("an ARM error", e);
    }
    let log = captured.text();
    assert!(
        log.lines().count() >= 4,
        "the ARM calls were not logged:\n{log}"
    );
    assert_no_secret("the captured ARM client log", &log);
}

#[tokio::test]
async fn failing_storage_calls_log_and_return_no_account_key() {
    use datashare_dr::store::{AzureBlobStore, AzureQueue, BlobStore as _, Queue as _};
    use datashare_dr::store::{MessageEncoding, StorageSettings};

    datashare_dr::startup::install_crypto_provider();
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut errors = Vec::new();
    // a malformed connection string next to the key
    for bad in [
        format!("AccountName=a;AccountKey={ACCOUNT_KEY};BlobEndpoint=::nope::"),
        format!("AccountName=a;AccountKey=!{ACCOUNT_KEY_RAW}!"),
        format!("{ACCOUNT_KEY_RAW};AccountKey={ACCOUNT_KEY}"),
    ] {
        if let Err(e) = StorageSettings::from_connection_string(&bad) {
            errors.push(format!("{e} | {e:?}"));
        }
    }
    let (port, seen) = answering(403, 12).await;
    for base in [
        format!("http://127.0.0.1:{port}"),
        "http://127.0.0.1:9".to_owned(),
    ] {
        let conn = format!(
            "DefaultEndpointsProtocol=http;AccountName=secacct;AccountKey={ACCOUNT_KEY};\
             BlobEndpoint={base}/secacct;QueueEndpoint={base}/secacct"
        );
        let settings = StorageSettings::from_connection_string(&conn).expect("valid settings");
        assert_no_secret("StorageSettings Debug", &format!("{settings:?}"));
        let blobs = AzureBlobStore::new(&settings, "runs").expect("a blob store");
        let queue = AzureQueue::new(&settings, MessageEncoding::None).expect("a queue");
        let calls = async {
            let a = blobs
                .get("run-1.json")
                .await
                .err()
                .map(|e| format!("{e} | {e:?}"));
            let b = queue
                .send("failover-stages", "{}", None)
                .await
                .err()
                .map(|e| format!("{e} | {e:?}"));
            [a, b]
        };
        let outcome = tokio::time::timeout(Duration::from_secs(60), calls)
            .await
            .expect("storage calls end");
        let failed: Vec<String> = outcome.into_iter().flatten().collect();
        assert_eq!(failed.len(), 2, "both calls fail against {base}");
        errors.extend(failed);
    }
    let requests = seen.lock().expect("lock").clone();
    assert!(!requests.is_empty(), "the fake storage was not called");
    let log = captured.text();
    for e in &errors {
        assert_no_secret("a storage error", e);
    }
    assert_no_secret("the captured storage log", &log);
    // nor the account SAS signed with the key
    let sigs = sas_signatures(&requests);
    assert!(!sigs.is_empty(), "no storage call carried a SAS");
    for sig in &sigs {
        let sig = sig.as_str();
        assert!(!log.contains(sig), "the storage log leaks a SAS signature");
        assert!(
            errors.iter().all(|e| !e.contains(sig)),
            "a storage error leaks a SAS signature"
        );
    }
}

/// The `sig=` values of the requests' first lines, as sent (percent-encoded) and decoded: a
/// log could print either form.
fn sas_signatures(requests: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for sig in requests
        .iter()
        .filter_map(|r| r.lines().next())
        .flat_map(|l| l.split(['?', '&', ' ']))
        .filter_map(|kv| kv.strip_prefix("sig="))
    {
        out.push(sig.to_owned());
        if let Some((_, decoded)) =
            url::form_urlencoded::parse(format!("s={sig}").as_bytes()).next()
            && decoded != sig
        {
            out.push(decoded.into_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}
