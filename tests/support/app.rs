//! The custom handler running in-process on a free loopback port, plus builders for payloads in
//! the host's wire encoding (reference §5) for router-level tests.
//!
//! `spawn_app(config)` binds port 0 (whatever `config.port` says), serves on the test's tokio
//! runtime, and stops when the [`TestApp`] is dropped.

use std::sync::Arc;

use datashare_dr::config::Config;
use datashare_dr::startup::{App, AppState};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A running handler.
pub struct TestApp {
    pub port: u16,
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    pub state: Arc<AppState>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl TestApp {
    /// `POST /<function>` with a payload-mode envelope, as the host does.
    pub async fn invoke(&self, function: &str, envelope: &Value) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}/{function}", self.base_url))
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "x-azure-functions-invocationid",
                uuid::Uuid::new_v4().to_string(),
            )
            .body(envelope.to_string())
            .send()
            .await
            .expect("the handler answers");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("a body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }

    /// Stops the server (also done on drop).
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the handler with `config` on a free port (port forced to 0).
pub async fn spawn_app(mut config: Config) -> TestApp {
    config.port = Some(0);
    let app = App::build(config).await.expect("the app builds");
    start(app)
}

/// Starts the handler with a prepared state (e.g. a DR config built in memory) on a free port.
pub async fn spawn_app_with_state(state: AppState) -> TestApp {
    let app = App::build_with_state(state, 0)
        .await
        .expect("the app builds");
    start(app)
}

fn start(app: App) -> TestApp {
    let port = app.port();
    let state = app.state();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        port,
        base_url: format!("http://127.0.0.1:{port}"),
        state,
        client: reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("a reqwest client"),
        stop: Some(tx),
    }
}

/// Payload builders in the host's encoding (strings and numbers double-encoded, §5.3).
pub mod payload {
    use super::*;

    /// The host's `sys` metadata.
    pub fn sys(function: &str) -> Value {
        json!({
            "MethodName": function,
            "UtcNow": "2024-05-01T10:00:00.1234567Z",
            "RandGuid": "6b0c3f1e-2f7a-4d8e-9a3b-1c2d3e4f5a6b",
        })
    }

    /// A queue-trigger envelope for binding `msg` carrying `message_text`.
    pub fn queue(function: &str, message_text: &str, dequeue_count: u32) -> Value {
        json!({
            "Data": { "msg": serde_json::to_string(message_text).unwrap() },
            "Metadata": {
                "DequeueCount": dequeue_count.to_string(),
                "ExpirationTime": "2024-05-08T10:00:00+00:00",
                "Id": serde_json::to_string("0f8fad5b-d9cb-469f-a165-70867728950e").unwrap(),
                "InsertionTime": "2024-05-01T10:00:00+00:00",
                "NextVisibleTime": "2024-05-01T10:00:10+00:00",
                "PopReceipt": serde_json::to_string("AgAAAAMAAAAAAAAA8d5gQex+2AE=").unwrap(),
                "sys": sys(function),
            }
        })
    }

    /// A timer-trigger envelope for binding `timer`.
    pub fn timer(function: &str, past_due: bool) -> Value {
        json!({
            "Data": { "timer": {
                "Schedule": { "AdjustForDST": true },
                "ScheduleStatus": {
                    "Last": "2024-05-01T09:45:00+00:00",
                    "Next": "2024-05-01T10:15:00+00:00",
                    "LastUpdated": "2024-05-01T09:45:00.1234567+00:00"
                },
                "IsPastDue": past_due
            }},
            "Metadata": { "sys": sys(function) }
        })
    }

    /// An HTTP-trigger envelope for binding `req` (payload mode); `body` is raw text.
    pub fn http(
        function: &str,
        method: &str,
        route: &str,
        params: Value,
        body: Option<&str>,
    ) -> Value {
        let mut headers = json!({
            "Host": ["localhost:7071"],
            "User-Agent": ["test"],
        });
        let mut req = json!({
            "Url": format!("http://localhost:7071/api/{route}"),
            "Method": method,
            "Query": {},
            "Params": params,
            "Identities": [{"AuthenticationType": null, "IsAuthenticated": false, "Claims": []}],
        });
        if let Some(b) = body {
            headers["Content-Type"] = json!(["application/json"]);
            headers["Content-Length"] = json!([b.len().to_string()]);
            req["Body"] = json!(b);
        }
        req["Headers"] = headers;
        json!({ "Data": { "req": req }, "Metadata": { "sys": sys(function) } })
    }
}
