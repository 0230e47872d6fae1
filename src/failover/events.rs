//! Run events (`started`, `awaiting-approval`, `approval-reminder`, `expired`, `stage-failed`,
//! `completed`, `cancelled`, `failed`) and the approval deadline.
//!
//! Events go to the `notifications` queue, one message per configured channel
//! (`crate::notify::messages_for`); the `Notify` function delivers them. Sending is best effort:
//! a queue that refuses a message is logged (WARN, with the run id) and never stops the run.
//! Events that a redelivered stage could send twice are recorded on the run (`notified`) once
//! queued.
//!
//! Links carry no function key (a secret): they name the URL (from `WEBSITE_HOSTNAME`) and the
//! CLI command to run.
//!
//! [`approval_deadline_decision`] is pure: the `await-approval` stage and the watchdog both
//! call it.
//!
//! Must not import: handlers, host.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::config::dr::{ApprovalDeadline, ApprovalTimeoutAction};
use crate::notify::Channels;
use crate::store::{NOTIFICATIONS_QUEUE, Queue};

use super::error_text;
use super::run::{RunFinding, RunRecord, RunStatus, approval_route, update_run};
use super::stages::{Mode, Stage};

/// Where events go and how their links are written.
#[derive(Debug, Clone, Default)]
pub struct EventSettings {
    pub channels: Channels,
    /// `https://<WEBSITE_HOSTNAME>` (`http://` for a loopback host); `None`: links are paths.
    pub public_base_url: Option<String>,
    /// The DR config file name shown in CLI commands (`--config <name>`).
    pub config_name: Option<String>,
}

impl EventSettings {
    /// The public base URL for a `WEBSITE_HOSTNAME` value (host[:port]).
    pub fn base_url_for_host(host: &str) -> String {
        let h = host.split(':').next().unwrap_or(host);
        let loopback = h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        format!("{}://{host}", if loopback { "http" } else { "https" })
    }
}

/// Why the run waits for approval and what decided it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDecision {
    /// `approval.route`: `policy`, `alert-rule`, `plausibility`, `tool-fault` (or `unknown`).
    pub route: String,
    /// The trigger's reason (the alert decision's text, or the runbook reason).
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// URLs (no function key) and CLI commands for a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventLinks {
    pub status_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
    pub status_command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve_command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_command: Option<String>,
}

/// One run event (a `notifications` message before the channel envelope). Keeps the fields of
/// the older `failover.run` summary (`type`, `runId`, `pair`, `mode`, `status`, `summary`,
/// `findings`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    /// Always `failover.run`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `started`, `awaiting-approval`, `approval-reminder`, `expired`, `stage-failed`,
    /// `completed`, `cancelled`, `failed`.
    pub event: &'static str,
    pub run_id: String,
    pub pair: String,
    pub mode: Mode,
    pub status: RunStatus,
    pub summary: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<RunFinding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<EventDecision>,
    pub links: EventLinks,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// `stage-failed`: the error or abort reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto_secs: Option<f64>,
    /// `completed`: the stages' counts, summed.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub deadline: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn links(settings: &EventSettings, run: &RunRecord, decide: bool) -> EventLinks {
    let base = settings
        .public_base_url
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/');
    let url = |suffix: &str| format!("{base}/api/failover/{}{suffix}", run.run_id);
    let config = settings.config_name.as_deref().unwrap_or("dr-config.toml");
    let cmd = |verb: &str| {
        format!(
            "datashare-dr failover {verb} --config {config} {}",
            run.run_id
        )
    };
    EventLinks {
        status_url: url(""),
        approve_url: decide.then(|| url("/approve")),
        cancel_url: (!run.status.is_terminal()).then(|| url("/cancel")),
        status_command: cmd("status"),
        approve_command: decide.then(|| cmd("approve")),
        cancel_command: (!run.status.is_terminal()).then(|| cmd("cancel")),
    }
}

/// The bare event `event` of `run` (callers fill in the event's own fields).
pub fn event(
    settings: &EventSettings,
    run: &RunRecord,
    event: &'static str,
    now: OffsetDateTime,
) -> RunEvent {
    let waiting = !run.approval.is_approved() && !run.status.is_terminal();
    RunEvent {
        kind: "failover.run",
        event,
        run_id: run.run_id.clone(),
        pair: run.pair.clone(),
        mode: run.mode,
        status: run.status,
        summary: format!("{} of pair {}: {event}", run.mode, run.pair),
        at: now,
        findings: Vec::new(),
        decision: None,
        links: links(settings, run, waiting),
        stage: None,
        finding: None,
        attempt: None,
        rto_secs: None,
        counts: BTreeMap::new(),
        deadline: None,
        reason: None,
    }
}

/// The decision that sent the run to approval.
pub fn decision_of(run: &RunRecord) -> EventDecision {
    EventDecision {
        route: run
            .approval
            .route
            .clone()
            .unwrap_or_else(|| "unknown".into()),
        reason: run.trigger.reason.clone(),
        alert_id: run.trigger.alert_id.clone(),
        rule: run.trigger.rule.clone(),
    }
}

/// Queues `ev` on `notifications` (one message per channel). Best effort: a failure is logged
/// with the run id and returned as `false`.
pub async fn send(
    queue: &dyn Queue,
    settings: &EventSettings,
    ev: &RunEvent,
    now: OffsetDateTime,
) -> bool {
    let texts = match crate::notify::messages_for(ev, &settings.channels, now) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(run_id = %ev.run_id, event = ev.event, error = %e, "could not encode the run's notification; nobody was told");
            return false;
        }
    };
    for text in &texts {
        if let Err(e) = queue.send(NOTIFICATIONS_QUEUE, text, None).await {
            tracing::warn!(run_id = %ev.run_id, event = ev.event, error = %error_text(&e), "could not queue the run's notification; nobody was told");
            return false;
        }
    }
    tracing::info!(event = "failover.event", run_id = %ev.run_id, kind = ev.event, messages = texts.len(), "failover.event");
    true
}

/// [`send`] once per `key` per run: skipped when the run records `key` in `notified`; recorded
/// there after queueing (a crash in between may send it twice, never lose it).
pub async fn send_once(
    store: &dyn crate::store::BlobStore,
    queue: &dyn Queue,
    settings: &EventSettings,
    run: &RunRecord,
    key: &str,
    ev: &RunEvent,
    now: OffsetDateTime,
) {
    if run.notified.iter().any(|k| k == key) {
        return;
    }
    if !send(queue, settings, ev, now).await {
        return;
    }
    let recorded = update_run(store, &run.run_id, |r| {
        if !r.notified.iter().any(|k| k == key) {
            r.notified.push(key.to_owned());
        }
        Ok(())
    })
    .await;
    if let Err(e) = recorded {
        tracing::warn!(run_id = %run.run_id, key, error = %error_text(&e), "could not record that the event was queued");
    }
}

/// The event of a run's end (`completed`, `cancelled`, `failed`), `None` while it runs.
pub fn end_event(
    settings: &EventSettings,
    run: &RunRecord,
    now: OffsetDateTime,
) -> Option<RunEvent> {
    let kind = match run.status {
        RunStatus::Succeeded => "completed",
        RunStatus::Cancelled => "cancelled",
        RunStatus::Failed => "failed",
        _ => return None,
    };
    let mut ev = event(settings, run, kind, now);
    ev.findings = run.findings.clone();
    ev.reason = run.error.clone();
    let done: Vec<String> = run.done_stages().iter().map(|s| s.to_string()).collect();
    ev.summary = format!(
        "{} of pair {}: {}{}; stages done: {}",
        run.mode,
        run.pair,
        run.status.as_str(),
        run.rto_secs
            .map(|r| format!(" (RTO {r:.1} s)"))
            .unwrap_or_default(),
        if done.is_empty() {
            "none".into()
        } else {
            done.join(", ")
        }
    );
    if run.status == RunStatus::Succeeded {
        ev.rto_secs = run.rto_secs;
        for s in &run.stages {
            for (k, v) in &s.counts {
                *ev.counts.entry(k.clone()).or_default() += v;
            }
        }
    }
    Some(ev)
}

/// Queues the end event of an ended run (skipped: `failed` after `expired`, which said it).
pub async fn send_end(
    queue: &dyn Queue,
    settings: &EventSettings,
    run: &RunRecord,
    now: OffsetDateTime,
) {
    if run.status == RunStatus::Failed && run.notified.iter().any(|k| k == "expired") {
        return;
    }
    if let Some(ev) = end_event(settings, run, now) {
        send(queue, settings, &ev, now).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Approval deadline

/// What the approval deadline asks for now ([`approval_deadline_decision`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadlineDecision {
    /// The run does not wait for approval (approved, not required, ended, or another stage).
    NotWaiting,
    /// Keep waiting; check again after this long at the latest (the next milestone).
    Wait(Duration),
    /// Half the time has passed and no reminder was sent: send `approval-reminder`, then wait.
    Remind(Duration),
    /// The deadline passed: notify `expired`, end the run `failed` (`approval-expired`).
    Expire,
    /// The deadline passed under `on_approval_timeout = "proceed"` and the run waits because of
    /// the pair's own policy: continue as approved by timeout.
    Proceed,
}

/// When the run started waiting for approval (the `await-approval` stage's first claim; the
/// run's creation when it never got there).
pub fn waiting_since(run: &RunRecord) -> OffsetDateTime {
    run.stage(Stage::AwaitApproval)
        .and_then(|s| s.started_at)
        .unwrap_or(run.created_at)
}

/// The approval deadline of `run` under `policy`.
pub fn approval_deadline(run: &RunRecord, policy: &ApprovalDeadline) -> OffsetDateTime {
    waiting_since(run) + time::Duration::try_from(policy.timeout).unwrap_or(time::Duration::HOUR)
}

/// The pure decision on a run waiting for approval at `now`: wait, remind (half-time), expire or
/// proceed. Only a run whose `approval.route` is `policy` proceeds on timeout; one routed to
/// approval by an `[alerts]` rule, a plausibility check or a tool fault (or of unknown route)
/// expires instead.
pub fn approval_deadline_decision(
    run: &RunRecord,
    policy: &ApprovalDeadline,
    now: OffsetDateTime,
) -> DeadlineDecision {
    if run.status.is_terminal()
        || run.approval.is_approved()
        || run.current_stage != Some(Stage::AwaitApproval)
    {
        return DeadlineDecision::NotWaiting;
    }
    let since = waiting_since(run);
    let deadline = approval_deadline(run, policy);
    if now >= deadline {
        let by_policy = run.approval.route.as_deref() == Some(approval_route::POLICY);
        return if policy.on_timeout == ApprovalTimeoutAction::Proceed && by_policy {
            DeadlineDecision::Proceed
        } else {
            DeadlineDecision::Expire
        };
    }
    let half = since + (deadline - since) / 2;
    let to_std = |d: time::Duration| Duration::try_from(d).unwrap_or(Duration::ZERO);
    if now >= half {
        let left = to_std(deadline - now);
        return if run.notified.iter().any(|k| k == "approval-reminder") {
            DeadlineDecision::Wait(left)
        } else {
            DeadlineDecision::Remind(left)
        };
    }
    DeadlineDecision::Wait(to_std(half - now))
}

/// `approval-expired: …`, the run's error when its approval deadline passed.
pub fn expired_reason(policy: &ApprovalDeadline, deadline: OffsetDateTime) -> String {
    format!(
        "approval-expired: nobody approved within approval_timeout_minutes ({:.1} min; deadline {})",
        policy.timeout.as_secs_f64() / 60.0,
        deadline
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    )
}

/// The run after an approval by timeout (pure; see [`approval_deadline_decision`]).
pub fn approve_by_timeout(run: &mut RunRecord, policy: &ApprovalDeadline, now: OffsetDateTime) {
    run.approval.state = "approved".into();
    run.approval.by = Some("approval-timeout".into());
    run.approval.at = Some(now);
    run.approval.by_timeout = true;
    run.approval.reason = Some(format!(
        "approved by timeout: approval_timeout_minutes ({:.1} min) passed with on_approval_timeout = \"proceed\"",
        policy.timeout.as_secs_f64() / 60.0
    ));
    run.updated_at = now;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::run::{StageStatus, Trigger};
    use crate::failover::stages::{Policy, Role};
    use time::macros::datetime;

    fn waiting(route: Option<&str>) -> RunRecord {
        let t0 = datetime!(2026-03-01 10:00 UTC);
        let mut r = RunRecord::new(
            "r1".into(),
            "p".into(),
            Mode::Failover,
            Policy {
                role: Role::Provider,
                approval_required: true,
            },
            false,
            Trigger {
                kind: "alert".into(),
                reason: "primary down".into(),
                at: t0,
                ..Trigger::default()
            },
            t0,
        );
        r.approval.route = route.map(str::to_owned);
        r.current_stage = Some(Stage::AwaitApproval);
        r.status = RunStatus::AwaitingApproval;
        if let Some(s) = r.stage_mut(Stage::AwaitApproval) {
            s.started_at = Some(t0);
            s.status = StageStatus::Waiting;
        }
        r
    }

    const MIN: time::Duration = time::Duration::MINUTE;

    #[test]
    fn the_deadline_waits_reminds_at_half_time_then_expires_or_proceeds_by_route() {
        let t0 = datetime!(2026-03-01 10:00 UTC);
        let fail = ApprovalDeadline {
            timeout: Duration::from_secs(60 * 60),
            on_timeout: ApprovalTimeoutAction::Fail,
        };
        let proceed = ApprovalDeadline {
            on_timeout: ApprovalTimeoutAction::Proceed,
            ..fail
        };
        let policy_run = waiting(Some(approval_route::POLICY));
        let table: Vec<(
            &RunRecord,
            ApprovalDeadline,
            time::Duration,
            DeadlineDecision,
        )> = vec![
            (
                &policy_run,
                fail,
                10 * MIN,
                DeadlineDecision::Wait(Duration::from_secs(20 * 60)),
            ),
            (
                &policy_run,
                fail,
                30 * MIN,
                DeadlineDecision::Remind(Duration::from_secs(30 * 60)),
            ),
            (&policy_run, fail, 60 * MIN, DeadlineDecision::Expire),
            (&policy_run, proceed, 60 * MIN, DeadlineDecision::Proceed),
        ];
        for (run, policy, after, want) in table {
            assert_eq!(
                approval_deadline_decision(run, &policy, t0 + after),
                want,
                "{after}"
            );
        }
        // Routed by an [alerts] rule, a plausibility check, a tool fault, or unknown: never
        // proceeds on timeout.
        for route in [
            Some(approval_route::ALERT_RULE),
            Some(approval_route::PLAUSIBILITY),
            Some(approval_route::TOOL_FAULT),
            Some(approval_route::PRIMARY_ACCOUNT_MISSING),
            None,
        ] {
            let r = waiting(route);
            assert_eq!(
                approval_deadline_decision(&r, &proceed, t0 + 61 * MIN),
                DeadlineDecision::Expire,
                "{route:?}"
            );
        }
        // Reminded already: wait for the deadline.
        let mut reminded = waiting(Some(approval_route::POLICY));
        reminded.notified.push("approval-reminder".into());
        assert_eq!(
            approval_deadline_decision(&reminded, &fail, t0 + 45 * MIN),
            DeadlineDecision::Wait(Duration::from_secs(15 * 60))
        );
        // Approved or ended: nothing to decide.
        let mut approved = waiting(Some(approval_route::POLICY));
        approved.approval.state = "approved".into();
        assert_eq!(
            approval_deadline_decision(&approved, &fail, t0 + 90 * MIN),
            DeadlineDecision::NotWaiting
        );
    }

    #[test]
    fn links_name_the_url_and_the_command_without_a_key() {
        let r = waiting(Some(approval_route::POLICY));
        let s = EventSettings {
            public_base_url: Some(EventSettings::base_url_for_host("app.azurewebsites.net")),
            config_name: Some("dr-config.toml".into()),
            ..EventSettings::default()
        };
        let ev = event(&s, &r, "awaiting-approval", r.created_at);
        assert_eq!(
            ev.links.approve_url.as_deref(),
            Some("https://app.azurewebsites.net/api/failover/r1/approve")
        );
        assert_eq!(
            ev.links.approve_command.as_deref(),
            Some("datashare-dr failover approve --config dr-config.toml r1")
        );
        assert!(
            !serde_json::to_string(&ev)
                .unwrap_or_default()
                .contains("code=")
        );
        assert_eq!(
            EventSettings::base_url_for_host("127.0.0.1:7071"),
            "http://127.0.0.1:7071"
        );
    }
}
