//! Edge-triggered notifications: when a pair's status worsens or recovers, one message per
//! configured channel on the `notifications` queue (see `crate::notify`); the `Notify` function
//! delivers them to `NOTIFY_WEBHOOK_URL` and `NOTIFY_TEAMS_WEBHOOK_URL`. Nothing here POSTs.
//!
//! Guarantees: the state blob decides (ETag-guarded, see `history::record_status`) which check
//! saw the change, so concurrent checks send one notification, and an unchanged status sends
//! none. If the queue message cannot be sent, the recorded status is put back so the next check
//! tries again. Delivery (and its retries) belongs to the queue and the `Notify` function.
//!
//! Secrets: the webhook URL (it carries the Logic App's SAS signature) is held in [`WebhookUrl`],
//! whose `Debug` prints `***`; it is never logged nor put in an error. The body carries the pair,
//! statuses, score, top findings and a link — no credentials.
//!
//! Must not import: handlers, host, arm.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::error::ReadinessError;
use super::history::{self, Transition};
use super::report::{Finding, Report, SeverityCounts, Status};
use crate::store::{BlobStore, NOTIFICATIONS_QUEUE, Queue};

pub use crate::notify::WebhookUrl;

/// How many findings a notification carries.
pub const TOP_FINDINGS: usize = 5;

/// The notification body (queue message text and webhook JSON). camelCase; an operator interface.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Always `readiness.status-changed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub pair: String,
    pub old_status: Option<Status>,
    pub new_status: Status,
    /// `worsened`, `improved`, `recovered` or `unassessable` (now `Unknown`).
    pub direction: &'static str,
    pub score: u8,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    pub counts: SeverityCounts,
    pub top_findings: Vec<Finding>,
    /// Status page of the pair, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// A one-line summary for chat cards.
    pub summary: String,
}

impl Notification {
    pub fn new(report: &Report, transition: Transition, link: Option<String>) -> Notification {
        let old = transition
            .old
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "unknown".to_string());
        Notification {
            kind: "readiness.status-changed",
            pair: report.pair.clone(),
            old_status: transition.old,
            new_status: transition.new,
            direction: transition.direction(),
            score: report.score,
            checked_at: report.checked_at,
            counts: report.counts,
            top_findings: report.top_findings(TOP_FINDINGS).to_vec(),
            link,
            summary: format!(
                "DR readiness of pair {} {}: {} → {} (score {})",
                report.pair,
                transition.direction(),
                old,
                transition.new,
                report.score
            ),
        }
    }
}

/// Where notifications go besides the queue.
#[derive(Debug, Clone, Default)]
pub struct NotifyTargets {
    pub webhook: Option<WebhookUrl>,
    /// `NOTIFY_TEAMS_WEBHOOK_URL` (an Adaptive Card per notification).
    pub teams: Option<WebhookUrl>,
    /// Base URL of the status page (e.g. `https://app.azurewebsites.net/api/readiness`); the
    /// pair name is appended.
    pub status_page_base: Option<String>,
    /// Webhook retry policy.
    pub webhook_attempts: u32,
    pub webhook_first_backoff: Duration,
    pub webhook_timeout: Duration,
}

impl NotifyTargets {
    pub fn new(webhook: Option<WebhookUrl>, status_page_base: Option<String>) -> NotifyTargets {
        NotifyTargets {
            webhook,
            teams: None,
            status_page_base,
            webhook_attempts: 4,
            webhook_first_backoff: Duration::from_millis(250),
            webhook_timeout: Duration::from_secs(5),
        }
    }
}

/// What [`record_and_notify`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyOutcome {
    pub transition: Option<Transition>,
    pub queued: bool,
    /// Messages queued (one per configured channel; one without a channel when none is).
    pub messages: usize,
}

/// Records the report's status in the state blob (ETag-guarded) and, when the status changed in
/// a way that deserves a notification, returns it. Use this when the notification leaves through
/// a Functions queue output binding (`notify` → `notifications`); [`record_and_notify`] sends it
/// itself.
pub async fn detect_change(
    blobs: &dyn BlobStore,
    targets: &NotifyTargets,
    report: &Report,
) -> Result<Option<Notification>, ReadinessError> {
    let Some(transition) = history::record_status(blobs, report).await? else {
        return Ok(None);
    };
    let link = targets
        .status_page_base
        .as_ref()
        .map(|base| format!("{}/{}", base.trim_end_matches('/'), report.pair));
    Ok(Some(Notification::new(report, transition, link)))
}

impl Notification {
    /// The JSON text sent to the queue and the webhook.
    pub fn to_json(&self) -> Result<String, ReadinessError> {
        serde_json::to_string(self).map_err(|source| ReadinessError::EncodeNotification {
            pair: self.pair.clone(),
            source,
        })
    }

    fn transition(&self) -> Transition {
        Transition {
            old: self.old_status,
            new: self.new_status,
        }
    }
}

impl NotifyTargets {
    /// The channels a notification is queued for.
    pub fn channels(&self) -> crate::notify::Channels {
        crate::notify::Channels {
            webhook: self.webhook.clone(),
            teams: self.teams.clone(),
        }
    }
}

/// The `notifications` queue messages of `note`: one per configured channel.
pub fn queue_messages(
    note: &Notification,
    targets: &NotifyTargets,
    now: OffsetDateTime,
) -> Result<Vec<String>, ReadinessError> {
    crate::notify::messages_for(note, &targets.channels(), now).map_err(|source| {
        ReadinessError::EncodeNotification {
            pair: note.pair.clone(),
            source,
        }
    })
}

/// Records the report's status in the state blob and, on an edge, queues the notification on
/// `notifications` (one message per configured channel). If a queue send fails, the recorded
/// status is put back (so the next check notifies) and the error is returned. `_http` is no
/// longer used (delivery is the `Notify` function's); kept so callers compile unchanged.
pub async fn record_and_notify(
    blobs: &dyn BlobStore,
    queue: &dyn Queue,
    _http: &reqwest::Client,
    targets: &NotifyTargets,
    report: &Report,
) -> Result<NotifyOutcome, ReadinessError> {
    let Some(note) = detect_change(blobs, targets, report).await? else {
        return Ok(NotifyOutcome {
            transition: None,
            queued: false,
            messages: 0,
        });
    };
    let transition = note.transition();
    let texts = queue_messages(&note, targets, OffsetDateTime::now_utc())?;
    let mut failed = None;
    for text in &texts {
        if let Err(e) = queue.send(NOTIFICATIONS_QUEUE, text, None).await {
            failed = Some(e);
            break;
        }
    }
    if let Some(source) = failed {
        // Let the next check see the change again rather than losing the notification.
        if let Err(e) =
            history::revert_status(blobs, &report.pair, transition.new, transition.old).await
        {
            tracing::error!(pair = %report.pair, error = %e, "could not revert readiness state");
        }
        return Err(ReadinessError::SendNotification {
            pair: report.pair.clone(),
            queue: NOTIFICATIONS_QUEUE.to_string(),
            source: Box::new(source),
        });
    }
    tracing::info!(
        event = "readiness.notified",
        pair = %report.pair,
        old = transition.old.map(Status::as_str).unwrap_or("unknown"),
        new = transition.new.as_str(),
        direction = transition.direction(),
        "readiness.notified"
    );
    Ok(NotifyOutcome {
        transition: Some(transition),
        queued: true,
        messages: texts.len(),
    })
}

/// POSTs `body` (JSON text) to the webhook with bounded retries and exponential backoff with
/// jitter. Retries transport errors, 408, 429 and 5xx; other statuses fail at once.
pub async fn post_webhook(
    http: &reqwest::Client,
    url: &WebhookUrl,
    targets: &NotifyTargets,
    pair: &str,
    body: &str,
) -> Result<(), ReadinessError> {
    let attempts = targets.webhook_attempts.max(1);
    let mut last_reason = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            let base = targets.webhook_first_backoff * 2u32.saturating_pow(attempt - 1);
            let jitter = {
                use rand::RngExt as _;
                let max = u64::try_from(base.as_millis()).unwrap_or(u64::MAX) / 2;
                let mut rng = rand::make_rng::<rand::rngs::SmallRng>();
                Duration::from_millis(rng.random_range(0..=max))
            };
            tokio::time::sleep(base + jitter).await;
        }
        let result = http
            .post(url.expose())
            .header(http::header::CONTENT_TYPE, "application/json")
            .timeout(targets.webhook_timeout)
            .body(body.to_string())
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => {
                let status = resp.status();
                last_reason = format!("http {}", status.as_u16());
                let retry =
                    status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error();
                if !retry {
                    break;
                }
            }
            // `without_url`: the URL is a secret and must not reach a log line.
            Err(e) => last_reason = format!("transport error: {}", e.without_url()),
        }
        if attempt + 1 == attempts {
            return Err(ReadinessError::Webhook {
                pair: pair.to_string(),
                attempts,
                reason: last_reason,
            });
        }
    }
    Err(ReadinessError::Webhook {
        pair: pair.to_string(),
        attempts,
        reason: last_reason,
    })
}
