//! Notification channels: one queue message per event **and** channel on `notifications`, and
//! the delivery of one such message (the `Notify` function) to a generic JSON webhook
//! (`NOTIFY_WEBHOOK_URL`) or a Microsoft Teams workflow / incoming webhook
//! (`NOTIFY_TEAMS_WEBHOOK_URL`, an Adaptive Card).
//!
//! Guarantees:
//! - A message names one channel (`"channel": "webhook" | "teams"`), so a retry of a failed
//!   delivery never re-sends to a channel that already has the event. With no channel
//!   configured an event is still queued once, without `channel` (a record; `Notify` logs and
//!   acknowledges it).
//! - [`deliver`] makes one POST per delivery and answers an error for anything but 2xx: the
//!   queue retries (host.json `maxDequeueCount`), then moves the message to
//!   `notifications-poison`. Nothing here blocks a run: producers only enqueue.
//! - An event queued more than [`MAX_EVENT_AGE`] before its first delivery is dropped with a
//!   log line (a backlog must not flood a channel); so is a message without `queuedAt` (queued
//!   before this module existed) or for a channel that is no longer configured.
//!
//! Secrets: webhook URLs carry signatures; [`WebhookUrl`] prints `***` and errors never carry
//! the URL. Message bodies carry no credentials (links name routes without function keys).
//!
//! Must not import: handlers, host, failover, readiness, reconcile (a shared service).

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{Config, KEY_NOTIFY_TEAMS_WEBHOOK_URL, KEY_NOTIFY_WEBHOOK_URL};

/// Events older than this when first delivered are dropped.
pub const MAX_EVENT_AGE: Duration = Duration::from_secs(3600);

/// A webhook URL; a secret (it usually embeds a signature). `Debug`/`Display` print `***`.
#[derive(Clone)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// Accepts an absolute `https://` URL, or `http://` to a loopback host (tests) —
    /// `NOTIFY_WEBHOOK_URL` in messages.
    pub fn parse(raw: &str) -> Result<WebhookUrl, String> {
        WebhookUrl::parse_setting(KEY_NOTIFY_WEBHOOK_URL, raw)
    }

    /// [`WebhookUrl::parse`], naming `key` in the error (which never carries the value).
    pub fn parse_setting(key: &str, raw: &str) -> Result<WebhookUrl, String> {
        let url =
            url::Url::parse(raw.trim()).map_err(|e| format!("{key} is not a valid URL ({e})"))?;
        match url.scheme() {
            "https" => Ok(WebhookUrl(url.to_string())),
            "http" if crate::config::url_is_loopback(&url) => Ok(WebhookUrl(url.to_string())),
            _ => Err(format!(
                "{key} must be an https:// URL (plain http only for a loopback host)"
            )),
        }
    }

    /// Reads `NOTIFY_WEBHOOK_URL`; unset or empty = `Ok(None)`.
    pub fn from_env() -> Result<Option<WebhookUrl>, String> {
        match std::env::var(KEY_NOTIFY_WEBHOOK_URL) {
            Ok(v) if !v.trim().is_empty() => WebhookUrl::parse(&v).map(Some),
            _ => Ok(None),
        }
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookUrl(***)")
    }
}

impl std::fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `NOTIFY_WEBHOOK_URL`: the event JSON as it is.
    Webhook,
    /// `NOTIFY_TEAMS_WEBHOOK_URL`: an Adaptive Card in the Teams message envelope.
    Teams,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Teams => "teams",
        }
    }
    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "webhook" => Some(Channel::Webhook),
            "teams" => Some(Channel::Teams),
            _ => None,
        }
    }
}

/// The configured channels.
#[derive(Debug, Clone, Default)]
pub struct Channels {
    pub webhook: Option<WebhookUrl>,
    pub teams: Option<WebhookUrl>,
}

impl Channels {
    /// From `NOTIFY_WEBHOOK_URL` and `NOTIFY_TEAMS_WEBHOOK_URL` (already validated by `Config`).
    pub fn from_config(cfg: &Config) -> Result<Channels, String> {
        let read = |key: &str, url: Option<&crate::config::SecretUrl>| {
            url.map(|u| WebhookUrl::parse_setting(key, u.expose().as_str()))
                .transpose()
        };
        Ok(Channels {
            webhook: read(KEY_NOTIFY_WEBHOOK_URL, cfg.notify_webhook_url.as_ref())?,
            teams: read(
                KEY_NOTIFY_TEAMS_WEBHOOK_URL,
                cfg.notify_teams_webhook_url.as_ref(),
            )?,
        })
    }

    /// The configured channels, webhook first.
    pub fn configured(&self) -> Vec<Channel> {
        let mut out = Vec::new();
        if self.webhook.is_some() {
            out.push(Channel::Webhook);
        }
        if self.teams.is_some() {
            out.push(Channel::Teams);
        }
        out
    }

    fn url(&self, c: Channel) -> Option<&WebhookUrl> {
        match c {
            Channel::Webhook => self.webhook.as_ref(),
            Channel::Teams => self.teams.as_ref(),
        }
    }
}

/// The queue messages of one event: the event's JSON object plus `queuedAt` and, per
/// configured channel, `channel` (one message without `channel` when none is configured).
pub fn messages_for(
    event: &impl Serialize,
    channels: &Channels,
    now: OffsetDateTime,
) -> Result<Vec<String>, serde_json::Error> {
    let mut base = match serde_json::to_value(event)? {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("event".into(), other);
            m
        }
    };
    base.insert(
        "queuedAt".into(),
        Value::String(now.format(&Rfc3339).unwrap_or_default()),
    );
    let configured = channels.configured();
    if configured.is_empty() {
        return Ok(vec![serde_json::to_string(&base)?]);
    }
    configured
        .into_iter()
        .map(|c| {
            let mut m = base.clone();
            m.insert("channel".into(), Value::String(c.as_str().into()));
            serde_json::to_string(&m)
        })
        .collect()
}

/// What [`deliver`] did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// POSTed; the channel answered 2xx.
    Sent(Channel),
    /// Not sent, on purpose (the reason is logged): too old, no channel, channel not configured,
    /// not a notification.
    Dropped(String),
}

/// A delivery that failed (the queue retries it).
#[derive(Debug, thiserror::Error)]
#[error("{channel} notification not delivered: {reason}")]
pub struct DeliveryError {
    pub channel: &'static str,
    /// HTTP status or transport error, without the URL.
    pub reason: String,
}

/// Delivers one `notifications` message (see the module docs). `first_delivery`: the host's
/// dequeue count is 1 (the age limit applies only then).
pub async fn deliver(
    http: &reqwest::Client,
    channels: &Channels,
    text: &str,
    first_delivery: bool,
    now: OffsetDateTime,
    timeout: Duration,
) -> Result<Delivered, DeliveryError> {
    let Ok(Value::Object(mut event)) = serde_json::from_str::<Value>(text) else {
        return Ok(Delivered::Dropped(
            "not a JSON object; nothing to deliver".into(),
        ));
    };
    let Some(channel_name) = event.remove("channel") else {
        return Ok(Delivered::Dropped(
            "no channel named (none configured when it was queued)".into(),
        ));
    };
    let Some(channel) = channel_name.as_str().and_then(Channel::parse) else {
        return Ok(Delivered::Dropped(format!(
            "unknown channel {channel_name}"
        )));
    };
    let queued_at = event
        .get("queuedAt")
        .and_then(Value::as_str)
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
    let Some(queued_at) = queued_at else {
        return Ok(Delivered::Dropped(
            "no queuedAt: queued by an older version".into(),
        ));
    };
    let age = now - queued_at;
    if first_delivery && age > time::Duration::try_from(MAX_EVENT_AGE).unwrap_or_default() {
        return Ok(Delivered::Dropped(format!(
            "queued {} min ago, more than {} min before its first delivery",
            age.whole_minutes(),
            MAX_EVENT_AGE.as_secs() / 60
        )));
    }
    let Some(url) = channels.url(channel) else {
        return Ok(Delivered::Dropped(format!(
            "channel {} is no longer configured",
            channel.as_str()
        )));
    };
    let body = match channel {
        Channel::Webhook => Value::Object(event),
        Channel::Teams => teams_message(&event),
    };
    let result = http
        .post(url.expose())
        .header(http::header::CONTENT_TYPE, "application/json")
        .timeout(timeout)
        .body(body.to_string())
        .send()
        .await;
    match result {
        Ok(resp) if resp.status().is_success() => Ok(Delivered::Sent(channel)),
        Ok(resp) => Err(DeliveryError {
            channel: channel.as_str(),
            reason: format!("http {}", resp.status().as_u16()),
        }),
        // `without_url`: the URL is a secret.
        Err(e) => Err(DeliveryError {
            channel: channel.as_str(),
            reason: format!("transport error: {}", e.without_url()),
        }),
    }
}

/// Keys shown as facts on the card, with their labels, when present.
const FACTS: &[(&str, &str)] = &[
    ("event", "Event"),
    ("pair", "Pair"),
    ("mode", "Mode"),
    ("status", "Status"),
    ("runId", "Run"),
    ("stage", "Stage"),
    ("attempt", "Attempt"),
    ("rtoSecs", "RTO (s)"),
    ("deadline", "Approval deadline"),
    ("reason", "Reason"),
    ("oldStatus", "Was"),
    ("newStatus", "Now"),
    ("score", "Score"),
];

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.1}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// The Teams message: `{"type":"message","attachments":[{"contentType":
/// "application/vnd.microsoft.card.adaptive","content":{AdaptiveCard 1.4}}]}` — what a Teams
/// workflow ("Post to a channel when a webhook request is received") and an incoming webhook
/// accept. Links are shown as text (URL and CLI command); they need a function key, which a
/// message never carries.
pub fn teams_message(event: &Map<String, Value>) -> Value {
    let title = event
        .get("summary")
        .map(text_of)
        .unwrap_or_else(|| "datashare-dr notification".into());
    let facts: Vec<Value> = FACTS
        .iter()
        .filter_map(|(k, label)| {
            event
                .get(*k)
                .filter(|v| !v.is_null())
                .map(|v| json!({"title": label, "value": text_of(v)}))
        })
        .collect();
    let mut body = vec![
        json!({"type": "TextBlock", "text": title, "wrap": true, "weight": "Bolder", "size": "Medium"}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if let Some(Value::Object(d)) = event.get("decision")
        && let Some(r) = d.get("reason")
    {
        body.push(
            json!({"type": "TextBlock", "wrap": true, "text": format!("Decision: {}", text_of(r))}),
        );
    }
    if let Some(Value::Object(links)) = event.get("links") {
        for (k, v) in links {
            body.push(
                json!({"type": "TextBlock", "wrap": true, "fontType": "Monospace",
                "text": format!("{k}: {}", text_of(v))}),
            );
        }
    }
    if let Some(Value::Array(findings)) = event.get("findings").or_else(|| event.get("topFindings"))
    {
        for f in findings.iter().take(5) {
            let sev = f.get("severity").map(text_of).unwrap_or_default();
            let msg = f.get("message").map(text_of).unwrap_or_default();
            body.push(json!({"type": "TextBlock", "wrap": true, "isSubtle": true,
                "text": format!("{sev}: {msg}")}));
        }
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn channels(webhook: bool, teams: bool) -> Channels {
        let u = || WebhookUrl::parse("https://example.invalid/hook?sig=SECRET").ok();
        Channels {
            webhook: if webhook { u() } else { None },
            teams: if teams { u() } else { None },
        }
    }

    #[test]
    fn one_message_per_event_and_channel_and_one_record_without_channels() {
        let now = datetime!(2026-03-01 10:00 UTC);
        let ev = json!({"type": "failover.run", "event": "started"});
        let both = messages_for(&ev, &channels(true, true), now).expect("encode");
        let named: Vec<Value> = both
            .iter()
            .map(|t| serde_json::from_str::<Value>(t).expect("json")["channel"].clone())
            .collect();
        assert_eq!(named, vec![json!("webhook"), json!("teams")]);
        let none = messages_for(&ev, &channels(false, false), now).expect("encode");
        assert_eq!(none.len(), 1);
        let v: Value = serde_json::from_str(&none[0]).expect("json");
        assert!(v.get("channel").is_none());
        assert_eq!(v["queuedAt"], "2026-03-01T10:00:00Z");
    }

    #[tokio::test]
    async fn old_events_and_messages_without_a_channel_are_dropped_unsent() {
        crate::startup::install_crypto_provider();
        let http = reqwest::Client::new();
        let ch = channels(true, false);
        let queued = datetime!(2026-03-01 10:00 UTC);
        let text = messages_for(&json!({"event": "started"}), &ch, queued).expect("encode");
        let late = queued + time::Duration::minutes(61);
        let got = deliver(&http, &ch, &text[0], true, late, Duration::from_secs(1)).await;
        assert!(
            matches!(got, Ok(Delivered::Dropped(ref r)) if r.contains("61 min")),
            "{got:?}"
        );
        let legacy = r#"{"type":"failover.run","runId":"r1"}"#;
        let got = deliver(&http, &ch, legacy, true, queued, Duration::from_secs(1)).await;
        assert!(matches!(got, Ok(Delivered::Dropped(_))), "{got:?}");
    }

    #[test]
    fn the_teams_message_is_an_adaptive_card_in_the_message_envelope() {
        let ev = json!({"summary": "failover of pair p awaits approval", "event": "awaiting-approval",
            "pair": "p", "links": {"approveUrl": "https://app/api/failover/r1/approve"}});
        let Value::Object(m) = ev else { unreachable!() };
        let card = teams_message(&m);
        assert_eq!(card["type"], "message");
        let a = &card["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        assert_eq!(a["content"]["version"], "1.4");
        let text = card.to_string();
        assert!(text.contains("awaits approval") && text.contains("/api/failover/r1/approve"));
    }

    #[test]
    fn webhook_urls_must_be_https_off_loopback_and_never_print() {
        assert!(
            WebhookUrl::parse_setting("NOTIFY_TEAMS_WEBHOOK_URL", "http://127.0.0.1:9/x").is_ok()
        );
        let e = WebhookUrl::parse_setting(
            "NOTIFY_TEAMS_WEBHOOK_URL",
            "http://example.com/x?sig=S3CR3T",
        )
        .expect_err("plain http off loopback");
        assert!(
            e.contains("NOTIFY_TEAMS_WEBHOOK_URL") && !e.contains("S3CR3T"),
            "{e}"
        );
        let u = WebhookUrl::parse("https://h/x?sig=S3CR3T").expect("https");
        assert_eq!(format!("{u} {u:?}"), "*** WebhookUrl(***)");
    }
}
