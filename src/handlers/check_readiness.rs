//! `CheckReadiness` (timer, `%READINESS_SCHEDULE%`): evaluate readiness of every pair, store the
//! report, notify on a status change.
//!
//! Per pair: the pair state (`pairs/{pair}.json`) and its active run ([`readiness_context`]) →
//! `readiness::check::check_pair_in` over the shared ARM client (last drill from the pair's
//! readiness state blob; a pair that is not `normal` gets its failback readiness) → `history::store_report` (history, then latest) →
//! `notify::detect_change` (ETag-guarded state blob; `Some` only on an edge).
//!
//! One notification path: the notification leaves through the function's queue output binding
//! `notify` (→ `notifications`), one message per configured channel (`NOTIFY_WEBHOOK_URL`,
//! `NOTIFY_TEAMS_WEBHOOK_URL`; one message without a channel when none is), and the `Notify`
//! function delivers it — the same path as run events. The handler neither POSTs nor sends to
//! the queue itself.
//!
//! All-or-nothing per invocation: the host drops output bindings of a failed invocation, so when
//! any pair fails (storage unreachable, …) the status changes recorded for the other pairs are
//! put back (`history::revert_status`) before the error is returned — the next tick sees those
//! changes again and notifies then.
//! A pair whose ARM reads fail is not a failure: that is an observation (a finding).

use time::OffsetDateTime;

use crate::host::{InvocationResponse, QueueMessage, TimerTrigger};
use crate::pair_state::{self, PhaseView};
use crate::readiness::arm_reader::ArmReader;
use crate::readiness::check::check_pair_in;
use crate::readiness::notify::{self, Notification, NotifyTargets};
use crate::readiness::{ActiveRun, ReadinessError, Report, history};
use crate::startup::AppState;
use crate::store::BlobStore;

use super::{HandlerError, NOTIFY_OUT};

/// Function (folder) name.
pub const NAME: &str = "CheckReadiness";

/// Maps a readiness storage error to the handler's classification.
pub fn readiness_error(operation: String, err: ReadinessError) -> HandlerError {
    if err.is_transient() {
        HandlerError::transient(operation, err)
    } else {
        HandlerError::permanent(operation, err)
    }
}

/// The channels notifications are queued for: `NOTIFY_WEBHOOK_URL`, `NOTIFY_TEAMS_WEBHOOK_URL`.
pub fn notify_targets(state: &AppState) -> Result<NotifyTargets, HandlerError> {
    let channels = crate::notify::Channels::from_config(&state.config).map_err(|reason| {
        HandlerError::permanent(
            "read the notification channels",
            std::io::Error::other(reason),
        )
    })?;
    let mut targets = NotifyTargets::new(channels.webhook, None);
    targets.teams = channels.teams;
    Ok(targets)
}

/// The pair's state (`pairs/{pair}.json`) and its runs not yet ended, which readiness answers
/// for (a failed-over pair gets its failback readiness) and shows.
pub async fn readiness_context(
    blobs: &dyn BlobStore,
    pair: &str,
) -> Result<(PhaseView, Vec<ActiveRun>), HandlerError> {
    let (state, _) = pair_state::load(blobs, pair).await.map_err(|e| {
        let op = format!("read the state of pair {pair}");
        if e.is_transient() {
            HandlerError::transient(op, e)
        } else {
            HandlerError::permanent(op, e)
        }
    })?;
    let runs = crate::failover::run::active_runs(blobs, pair)
        .await
        .map_err(|e| {
            let op = format!("read the active run of pair {pair}");
            if e.is_transient() {
                HandlerError::transient(op, e)
            } else {
                HandlerError::permanent(op, e)
            }
        })?;
    Ok((state.view(), runs))
}

/// One checked pair: its report and the notification its status change deserves.
struct Checked {
    report: Report,
    note: Option<Notification>,
}

async fn check_one(
    state: &AppState,
    blobs: &dyn BlobStore,
    targets: &NotifyTargets,
    reader: &ArmReader<'_>,
    pair: &crate::config::dr::Pair,
    now: OffsetDateTime,
) -> Result<Checked, HandlerError> {
    let dr = state.dr()?;
    let last_drill = history::last_drill(blobs, &pair.name)
        .await
        .map_err(|e| readiness_error(format!("read the last drill of pair {}", pair.name), e))?;
    let (pair_state, runs) = readiness_context(blobs, &pair.name).await?;
    let report = check_pair_in(reader, dr, pair, now, last_drill, Some(&pair_state), &runs).await;
    history::store_report(blobs, &report)
        .await
        .map_err(|e| readiness_error(format!("store the report of pair {}", pair.name), e))?;
    let note = notify::detect_change(blobs, targets, &report)
        .await
        .map_err(|e| readiness_error(format!("record the status of pair {}", pair.name), e))?;
    Ok(Checked { report, note })
}

pub async fn handle(
    state: &AppState,
    trigger: TimerTrigger,
) -> Result<InvocationResponse, HandlerError> {
    let dr = state.dr()?;
    let targets = notify_targets(state)?;
    let client = state.arm().await?;
    let storage = state.storage().await?;
    let blobs = storage.blobs.as_ref();
    let reader = ArmReader {
        client,
        concurrency: dr.arm.max_concurrency.max(1),
    };
    let now = OffsetDateTime::now_utc();
    if trigger.is_past_due {
        tracing::info!(
            event = "readiness.past-due",
            "CheckReadiness runs late (past due)"
        );
    }

    // Pairs one after another: the ARM client bounds concurrency within each check, and a
    // sequential walk keeps one pair's reads from starving another's read bucket.
    let mut checked = Vec::with_capacity(dr.pairs.len());
    let mut failure = None;
    for pair in &dr.pairs {
        match check_one(state, blobs, &targets, &reader, pair, now).await {
            Ok(c) => checked.push(c),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if let Some(err) = failure {
        // The host drops our outputs on failure: put back the changes we would have announced.
        for c in &checked {
            if let Some(note) = &c.note
                && let Err(e) =
                    history::revert_status(blobs, &note.pair, note.new_status, note.old_status)
                        .await
            {
                tracing::error!(pair = %note.pair, error = %e, "could not revert readiness state");
            }
        }
        return Err(err);
    }

    let mut response = InvocationResponse::new();
    for c in &checked {
        response = response.log(format!(
            "pair {}: {} (score {}, {} critical, {} warning, {} info)",
            c.report.pair,
            c.report.status,
            c.report.score,
            c.report.counts.critical,
            c.report.counts.warning,
            c.report.counts.info
        ));
        if let Some(note) = &c.note {
            let texts = notify::queue_messages(note, &targets, now).map_err(|e| {
                readiness_error(format!("encode the notification of pair {}", note.pair), e)
            })?;
            for text in texts {
                // A JSON object (never base64-sniffed by the host, §6.3).
                let object: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&text)
                        .map_err(|e| HandlerError::permanent("encode the notification", e))?;
                response.push_message(NOTIFY_OUT, QueueMessage::json(&object)?);
            }
            tracing::info!(
                event = "readiness.notified",
                pair = %note.pair,
                old = note.old_status.map(|s| s.as_str()).unwrap_or("unknown"),
                new = note.new_status.as_str(),
                direction = note.direction,
                "readiness.notified"
            );
        }
    }
    Ok(response)
}
