//! Report storage, edge-triggered notification and the webhook, against the in-memory store
//! twins and a loopback HTTP server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use datashare_dr::readiness::history::{self, PairState};
use datashare_dr::readiness::{
    DrillRecord, Finding, NotifyTargets, Report, Severity, SeverityCounts, Status, WebhookUrl,
    record_and_notify, record_drill, store_report,
};
use datashare_dr::store::{BlobStore, MemoryBlobStore, MemoryQueue, NOTIFICATIONS_QUEUE, Queue};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn report(status: Status, at: OffsetDateTime) -> Report {
    let findings = match status {
        Status::Ready => vec![],
        _ => vec![Finding {
            severity: if status == Status::NotReady {
                Severity::Critical
            } else {
                Severity::Warning
            },
            code: "dataset-missing".into(),
            resource_id: "/subscriptions/s/x".into(),
            message: "dataset `raw` has no copy".into(),
            remedy: "run replicate".into(),
        }],
    };
    Report {
        pair: "sales".into(),
        status,
        score: match status {
            Status::Ready => 100,
            Status::Degraded => 89,
            Status::NotReady => 49,
            Status::Unknown => 0,
        },
        checked_at: at,
        primary_region: "westeurope".into(),
        secondary_region: "northeurope".into(),
        counts: SeverityCounts::default(),
        findings,
        rpo: vec![],
        last_drill: None,
        pair_state: None,
        active_runs: Vec::new(),
        state_changed_since_check: false,
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn drain(queue: &MemoryQueue) -> Vec<serde_json::Value> {
    queue
        .ensure_queue(NOTIFICATIONS_QUEUE)
        .await
        .expect("ensure queue");
    let msgs = queue
        .receive(NOTIFICATIONS_QUEUE, 32, Duration::from_secs(60))
        .await
        .expect("receive");
    msgs.iter()
        .map(|m| serde_json::from_str(&m.text).expect("notification is JSON"))
        .collect()
}

#[tokio::test]
async fn stores_latest_and_history_and_reads_them_back() {
    let blobs = MemoryBlobStore::new();
    let first = report(Status::Ready, datetime!(2025-06-01 12:00 UTC));
    let second = report(Status::Degraded, datetime!(2025-06-01 13:00 UTC));
    store_report(&blobs, &first).await.expect("store 1");
    store_report(&blobs, &second).await.expect("store 2");
    let latest = history::load_latest(&blobs, "sales").await.expect("load");
    assert_eq!(latest, Some(second.clone()));
    let hist = history::list_history(&blobs, "sales").await.expect("list");
    assert_eq!(
        hist,
        vec![
            "reports/sales/history/20250601T120000000Z.json".to_string(),
            "reports/sales/history/20250601T130000000Z.json".to_string()
        ]
    );
    assert!(
        blobs
            .get("reports/sales/latest.json")
            .await
            .expect("get")
            .is_some()
    );
    let none = history::load_latest(&blobs, "other")
        .await
        .expect("load other");
    assert_eq!(none, None);
    let all = history::load_all_latest(&blobs, &["other".into(), "sales".into()])
        .await
        .expect("all");
    assert_eq!(all, vec![second]);
}

#[tokio::test]
async fn notifies_once_per_status_change_and_never_when_unchanged() {
    let blobs = MemoryBlobStore::new();
    let queue = MemoryQueue::new();
    let http = client();
    let targets = NotifyTargets::new(None, Some("https://app.example/api/readiness".into()));
    let t0 = datetime!(2025-06-01 12:00 UTC);
    let sequence = [
        (Status::Ready, None), // first check, Ready: quiet
        (Status::Ready, None), // unchanged
        (Status::NotReady, Some(("Ready", "NotReady", "worsened"))),
        (Status::NotReady, None), // unchanged
        (Status::Degraded, Some(("NotReady", "Degraded", "improved"))),
        (Status::Ready, Some(("Degraded", "Ready", "recovered"))),
        (Status::Ready, None),
    ];
    for (i, (status, expected)) in sequence.iter().enumerate() {
        let r = report(*status, t0 + time::Duration::minutes(i as i64));
        let outcome = record_and_notify(&blobs, &queue, &http, &targets, &r)
            .await
            .expect("notify");
        let sent = drain(&queue).await;
        match expected {
            None => {
                assert!(sent.is_empty(), "step {i}: unexpected {sent:?}");
                assert!(outcome.transition.is_none());
            }
            Some((old, new, direction)) => {
                assert_eq!(sent.len(), 1, "step {i}");
                let n = &sent[0];
                assert_eq!(n["type"], "readiness.status-changed");
                assert_eq!(n["pair"], "sales");
                assert_eq!(n["oldStatus"], *old);
                assert_eq!(n["newStatus"], *new);
                assert_eq!(n["direction"], *direction);
                assert_eq!(n["link"], "https://app.example/api/readiness/sales");
                assert!(n["score"].is_u64());
                assert!(n["topFindings"].is_array());
                assert!(outcome.queued);
            }
        }
    }
    let state: PairState = history::load_state(&blobs, "sales")
        .await
        .expect("state")
        .expect("present");
    assert_eq!(state.status, Some(Status::Ready));
}

#[tokio::test]
async fn a_first_check_that_is_not_ready_notifies() {
    let blobs = MemoryBlobStore::new();
    let queue = MemoryQueue::new();
    let r = report(Status::Degraded, datetime!(2025-06-01 12:00 UTC));
    record_and_notify(&blobs, &queue, &client(), &NotifyTargets::default(), &r)
        .await
        .expect("notify");
    let sent = drain(&queue).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["oldStatus"], serde_json::Value::Null);
}

#[tokio::test]
async fn concurrent_checks_with_the_same_change_send_one_notification() {
    let blobs = Arc::new(MemoryBlobStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let http = client();
    let at = datetime!(2025-06-01 12:00 UTC);
    let ready = report(Status::Ready, at);
    record_and_notify(&*blobs, &*queue, &http, &NotifyTargets::default(), &ready)
        .await
        .expect("baseline");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (blobs, queue, http) = (blobs.clone(), queue.clone(), http.clone());
        tasks.push(tokio::spawn(async move {
            let r = report(Status::NotReady, at + time::Duration::seconds(i));
            record_and_notify(&*blobs, &*queue, &http, &NotifyTargets::default(), &r)
                .await
                .expect("notify")
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    assert_eq!(drain(&queue).await.len(), 1);
}

#[tokio::test]
async fn drill_records_land_in_the_state_and_keep_the_newest() {
    let blobs = MemoryBlobStore::new();
    let newer = DrillRecord {
        completed_at: datetime!(2025-05-01 00:00 UTC),
        run_id: Some("r2".into()),
        rto_secs: Some(30.0),
    };
    let older = DrillRecord {
        completed_at: datetime!(2025-04-01 00:00 UTC),
        run_id: Some("r1".into()),
        rto_secs: Some(60.0),
    };
    record_drill(&blobs, "sales", newer.clone())
        .await
        .expect("drill");
    record_drill(&blobs, "sales", older).await.expect("drill");
    assert_eq!(
        history::last_drill(&blobs, "sales").await.expect("read"),
        Some(newer)
    );
    // A status update keeps the drill record.
    let r = report(Status::Ready, datetime!(2025-06-01 12:00 UTC));
    history::record_status(&blobs, &r).await.expect("status");
    assert!(
        history::last_drill(&blobs, "sales")
            .await
            .expect("read")
            .is_some()
    );
}

/// A loopback HTTP server answering the given statuses in turn; returns its URL, the request
/// counter and the last body.
async fn webhook_server(
    statuses: Vec<u16>,
) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<String>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/hook?sig=SECRETSIG",
        listener.local_addr().expect("addr")
    );
    let count = Arc::new(AtomicUsize::new(0));
    let body = Arc::new(std::sync::Mutex::new(String::new()));
    let (c, b) = (count.clone(), body.clone());
    tokio::spawn(async move {
        for status in statuses {
            let Ok(Ok((mut sock, _))) =
                tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
            else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(split) = text.find("\r\n\r\n") {
                    let len = text[..split]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= split + 4 + len {
                        *b.lock().expect("lock") = text[split + 4..].to_string();
                        break;
                    }
                }
            }
            c.fetch_add(1, Ordering::SeqCst);
            let resp =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = sock.write_all(resp.as_bytes()).await;
        }
    });
    (url, count, body)
}

fn fast_targets(url: &str) -> NotifyTargets {
    NotifyTargets {
        webhook_first_backoff: Duration::from_millis(10),
        ..NotifyTargets::new(Some(WebhookUrl::parse(url).expect("url")), None)
    }
}

/// The notification is queued for the webhook channel (nothing is POSTed by the check); the
/// `Notify` delivery of that message fails on a 5xx (the queue retries it) and then POSTs the
/// notification body.
#[tokio::test]
async fn the_webhook_gets_the_notification_body_through_its_queue_message() {
    let (url, count, body) = webhook_server(vec![503, 200]).await;
    let blobs = MemoryBlobStore::new();
    let queue = MemoryQueue::new();
    let r = report(Status::NotReady, datetime!(2025-06-01 12:00 UTC));
    let targets = fast_targets(&url);
    let outcome = record_and_notify(&blobs, &queue, &client(), &targets, &r)
        .await
        .expect("notify");
    assert_eq!(outcome.messages, 1);
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "the check itself POSTs nothing"
    );
    let texts: Vec<String> = queue
        .receive(NOTIFICATIONS_QUEUE, 32, Duration::from_secs(60))
        .await
        .expect("receive")
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts.len(), 1);
    let channels = targets.channels();
    let now = time::OffsetDateTime::now_utc();
    let first = datashare_dr::notify::deliver(
        &client(),
        &channels,
        &texts[0],
        true,
        now,
        Duration::from_secs(5),
    )
    .await;
    assert!(
        first.is_err(),
        "a 503 is a failed delivery (the queue retries): {first:?}"
    );
    let second = datashare_dr::notify::deliver(
        &client(),
        &channels,
        &texts[0],
        false,
        now,
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(second, Ok(datashare_dr::notify::Delivered::Sent(_))),
        "{second:?}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
    let sent: serde_json::Value =
        serde_json::from_str(&body.lock().expect("lock")).expect("json body");
    assert_eq!(sent["newStatus"], "NotReady");
    assert_eq!(sent["topFindings"][0]["code"], "dataset-missing");
    assert!(!body.lock().expect("lock").contains("SECRETSIG"));
}

#[tokio::test]
async fn the_webhook_gives_up_after_bounded_attempts_without_leaking_the_url() {
    let (url, count, _) = webhook_server(vec![500, 500, 500, 500, 500, 500]).await;
    let targets = fast_targets(&url);
    let err = datashare_dr::readiness::notify::post_webhook(
        &client(),
        targets.webhook.as_ref().expect("webhook"),
        &targets,
        "sales",
        "{}",
    )
    .await
    .expect_err("must fail");
    assert_eq!(count.load(Ordering::SeqCst), 4);
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("SECRETSIG") && !text.contains("127.0.0.1"),
        "{text}"
    );
    assert!(format!("{targets:?}").contains("***"));
    assert!(!format!("{targets:?}").contains("SECRETSIG"));
}

#[tokio::test]
async fn a_4xx_from_the_webhook_is_not_retried() {
    let (url, count, _) = webhook_server(vec![400, 200]).await;
    let targets = fast_targets(&url);
    let r = datashare_dr::readiness::notify::post_webhook(
        &client(),
        targets.webhook.as_ref().expect("webhook"),
        &targets,
        "sales",
        "{}",
    )
    .await;
    assert!(r.is_err());
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn webhook_urls_must_be_https_unless_loopback() {
    assert!(WebhookUrl::parse("https://prod-1.westeurope.logic.azure.com/x?sig=a").is_ok());
    assert!(WebhookUrl::parse("http://127.0.0.1:8080/x").is_ok());
    let e = WebhookUrl::parse("http://example.com/x?sig=SECRET").expect_err("plain http");
    assert!(!e.contains("SECRET"));
    assert!(WebhookUrl::parse("not a url").is_err());
}
