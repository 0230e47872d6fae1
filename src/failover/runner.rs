//! The in-process runner: the same [`run_one_stage`] loop the `FailoverStage` function runs,
//! driven by an in-process queue, for the CLI without storage settings and for `drill`.
//!
//! [`InProcessQueue`] implements the store's [`Queue`] trait against a [`Clock`]: a message
//! sent with a delay becomes visible at `clock.now() + delay`. When nothing is visible the
//! runner either sleeps (real time) or advances the clock (virtual time) to the next visible
//! message — waits are honoured without wasting wall time, and bounded.
//!
//! Error handling mirrors the host: a transient error makes the message visible again with its
//! dequeue count increased; at `max_dequeue_count` the poison path runs ([`fail_run`]); a
//! permanent error fails the run at once.
//!
//! Must not import: handlers, host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::store::{self, Queue, ReceivedMessage, StoreError, StoreFuture};

use super::exec::{Clock, StageContext, StageMessage, enqueue_stage, fail_run, run_one_stage};
use super::run::{RunRecord, require_run};
use super::stages::{ErrorDecision, Outcome, Stage, error_policy};
use super::{FailoverError, error_text};

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    text: String,
    visible_at: OffsetDateTime,
    dequeue_count: u32,
    pop_receipt: String,
}

/// A stage context over an in-memory run store and an in-process queue that share one clock —
/// how runs execute without storage settings (the CLI, the drills, tests and benchmarks).
pub fn in_process(
    config: Arc<crate::config::dr::DrConfig>,
    arm: crate::arm::client::ArmClient,
) -> (StageContext, InProcessQueue) {
    let clock = Clock::default();
    let queue = InProcessQueue::new(clock.clone());
    let mut ctx = StageContext::new(
        config,
        arm,
        Arc::new(crate::store::MemoryBlobStore::new()),
        Arc::new(queue.clone()),
    );
    ctx.clock = clock;
    (ctx, queue)
}

/// An in-process queue service on a [`Clock`] (virtual-time aware). Clones share the queues.
#[derive(Debug, Clone, Default)]
pub struct InProcessQueue {
    clock: Clock,
    inner: Arc<Mutex<HashMap<String, Vec<Stored>>>>,
}

impl InProcessQueue {
    pub fn new(clock: Clock) -> InProcessQueue {
        InProcessQueue {
            clock,
            inner: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Stored>>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Messages on `queue` (visible or not).
    pub fn len(&self, queue: &str) -> usize {
        self.lock().get(queue).map_or(0, Vec::len)
    }

    pub fn is_empty(&self, queue: &str) -> bool {
        self.len(queue) == 0
    }

    /// Texts of every message on `queue` (e.g. notifications, for reports).
    pub fn texts(&self, queue: &str) -> Vec<String> {
        self.lock()
            .get(queue)
            .map(|q| q.iter().map(|m| m.text.clone()).collect())
            .unwrap_or_default()
    }

    /// When the next message on `queue` becomes visible.
    pub fn next_visible(&self, queue: &str) -> Option<OffsetDateTime> {
        self.lock()
            .get(queue)
            .and_then(|q| q.iter().map(|m| m.visible_at).min())
    }

    fn d(d: Duration) -> time::Duration {
        time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
    }
}

impl Queue for InProcessQueue {
    fn ensure_queue<'a>(&'a self, queue: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.lock().entry(queue.to_owned()).or_default();
            Ok(())
        })
    }

    fn send<'a>(
        &'a self,
        queue: &'a str,
        text: &'a str,
        visibility_delay: Option<Duration>,
    ) -> StoreFuture<'a, String> {
        Box::pin(async move {
            let id = uuid::Uuid::new_v4().to_string();
            let visible_at = self.clock.now() + Self::d(visibility_delay.unwrap_or_default());
            self.lock()
                .entry(queue.to_owned())
                .or_default()
                .push(Stored {
                    id: id.clone(),
                    text: text.to_owned(),
                    visible_at,
                    dequeue_count: 0,
                    pop_receipt: String::new(),
                });
            Ok(id)
        })
    }

    fn receive<'a>(
        &'a self,
        queue: &'a str,
        max: u32,
        visibility_timeout: Duration,
    ) -> StoreFuture<'a, Vec<ReceivedMessage>> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut q = self.lock();
            let Some(msgs) = q.get_mut(queue) else {
                return Err(StoreError::NotFound {
                    resource: format!("queue {queue}"),
                });
            };
            let mut out = Vec::new();
            let mut order: Vec<usize> = (0..msgs.len())
                .filter(|i| msgs[*i].visible_at <= now)
                .collect();
            order.sort_by_key(|i| msgs[*i].visible_at);
            for i in order.into_iter().take(max.clamp(1, 32) as usize) {
                let m = &mut msgs[i];
                m.dequeue_count += 1;
                m.visible_at = now + Self::d(visibility_timeout);
                m.pop_receipt = uuid::Uuid::new_v4().to_string();
                out.push(ReceivedMessage {
                    id: m.id.clone(),
                    pop_receipt: m.pop_receipt.clone(),
                    dequeue_count: m.dequeue_count,
                    insertion_time: now,
                    expiration_time: now + time::Duration::days(7),
                    next_visible_time: m.visible_at,
                    text: m.text.clone(),
                    decoding_failed: false,
                });
            }
            Ok(out)
        })
    }

    fn delete<'a>(
        &'a self,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut q = self.lock();
            let msgs = q.get_mut(queue);
            let Some(msgs) = msgs else {
                return Err(StoreError::NotFound {
                    resource: format!("queue {queue}"),
                });
            };
            let before = msgs.len();
            msgs.retain(|m| !(m.id == id && m.pop_receipt == pop_receipt));
            if msgs.len() == before {
                return Err(StoreError::NotFound {
                    resource: format!("message {id} in queue {queue}"),
                });
            }
            Ok(())
        })
    }

    fn update_visibility<'a>(
        &'a self,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
        visibility_timeout: Duration,
    ) -> StoreFuture<'a, String> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut q = self.lock();
            let m = q
                .get_mut(queue)
                .and_then(|msgs| {
                    msgs.iter_mut()
                        .find(|m| m.id == id && m.pop_receipt == pop_receipt)
                })
                .ok_or_else(|| StoreError::NotFound {
                    resource: format!("message {id} in queue {queue}"),
                })?;
            m.visible_at = now + Self::d(visibility_timeout);
            m.pop_receipt = uuid::Uuid::new_v4().to_string();
            Ok(m.pop_receipt.clone())
        })
    }
}

/// How the runner treats time and limits.
#[derive(Debug, Clone, Copy)]
pub struct RunnerOptions {
    /// Advance the clock instead of sleeping when only delayed messages are left.
    pub virtual_time: bool,
    /// Wall-time bound of the whole loop.
    pub max_wall: Duration,
    /// Virtual-time bound (waits beyond it stop the loop, e.g. a run awaiting approval).
    pub max_virtual: Duration,
    /// The host's `maxDequeueCount` (host.json).
    pub max_dequeue_count: u32,
    /// Delay before a failed message is retried (host.json `visibilityTimeout`).
    pub retry_delay: Duration,
}

impl Default for RunnerOptions {
    fn default() -> RunnerOptions {
        RunnerOptions {
            virtual_time: true,
            max_wall: Duration::from_secs(600),
            max_virtual: Duration::from_secs(6 * 3600),
            max_dequeue_count: 5,
            retry_delay: Duration::from_secs(10),
        }
    }
}

/// Why the loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The run ended (any terminal status).
    Ended,
    /// Only waits are left beyond the virtual-time bound (e.g. awaiting approval).
    Waiting,
    /// The queue ran dry while the run had not ended.
    Idle,
    /// The wall-time bound was hit.
    TimedOut,
}

/// Processes one received stage message the way the `FailoverStage` function does: run the
/// stage, enqueue what the outcome asks for, and apply the error policy. Returns the outcome, or
/// `None` when the run was marked failed. `Err` means "retry" (the host answers 500).
///
/// With `poison_inline` (the in-process runner, which has no poison queue) a message out of
/// retries fails the run here; without it (the queue function) the error is returned so the
/// host moves the message to the poison queue and `FailoverPoison` records the failure.
pub async fn process_message(
    ctx: &StageContext,
    msg: &StageMessage,
    dequeue_count: u32,
    max_dequeue_count: u32,
    poison_inline: bool,
) -> Result<Option<Outcome>, FailoverError> {
    let now = ctx.clock.now();
    match run_one_stage(ctx, msg).await {
        Ok(outcome) => {
            follow(ctx, msg, &outcome, now).await?;
            Ok(Some(outcome))
        }
        Err(e) => {
            let text = error_text(&e);
            match error_policy(e.is_transient(), dequeue_count, max_dequeue_count) {
                ErrorDecision::Retry => Err(e),
                ErrorDecision::GiveUp if !poison_inline => Err(e),
                ErrorDecision::GiveUp => {
                    fail_run(
                        ctx,
                        &msg.run_id,
                        Stage::parse(&msg.stage),
                        &format!("stage {} exhausted its retries: {text}", msg.stage),
                    )
                    .await?;
                    Ok(None)
                }
                ErrorDecision::Fail => {
                    fail_run(ctx, &msg.run_id, Stage::parse(&msg.stage), &text).await?;
                    Ok(None)
                }
            }
        }
    }
}

/// Enqueues what an outcome asks for.
pub async fn follow(
    ctx: &StageContext,
    msg: &StageMessage,
    outcome: &Outcome,
    now: OffsetDateTime,
) -> Result<(), FailoverError> {
    match outcome {
        Outcome::Advance(next) => {
            enqueue_stage(ctx.queue.as_ref(), &msg.run_id, *next, 0, None, now).await
        }
        Outcome::Wait(d) => {
            let stage = Stage::parse(&msg.stage).unwrap_or(Stage::Preflight);
            enqueue_stage(
                ctx.queue.as_ref(),
                &msg.run_id,
                stage,
                msg.attempt.saturating_add(1),
                Some(*d),
                now,
            )
            .await
        }
        Outcome::Done | Outcome::Abort(_) => Ok(()),
    }
}

/// Drives `run_id` to its end through `queue` (which must be `ctx.queue`).
pub async fn drive(
    ctx: &StageContext,
    queue: &InProcessQueue,
    run_id: &str,
    opts: RunnerOptions,
) -> Result<(RunRecord, Stopped), FailoverError> {
    let started = Instant::now();
    let virtual_start = ctx.clock.now();
    let stopped = loop {
        if started.elapsed() > opts.max_wall {
            break Stopped::TimedOut;
        }
        let (run, _) = require_run(ctx.store.as_ref(), run_id).await?;
        if run.status.is_terminal() {
            break Stopped::Ended;
        }
        let received = queue
            .receive(store::STAGE_QUEUE, 1, opts.retry_delay)
            .await
            .unwrap_or_default();
        let Some(m) = received.into_iter().next() else {
            let Some(next) = queue.next_visible(store::STAGE_QUEUE) else {
                break Stopped::Idle;
            };
            let now = ctx.clock.now();
            let gap = (next - now).max(time::Duration::ZERO);
            if next - virtual_start > time::Duration::try_from(opts.max_virtual).unwrap_or_default()
            {
                break Stopped::Waiting;
            }
            let gap = Duration::try_from(gap).unwrap_or_default();
            if opts.virtual_time {
                ctx.clock.advance(gap + Duration::from_millis(1));
            } else {
                tokio::time::sleep(gap.min(Duration::from_millis(500))).await;
            }
            continue;
        };
        let msg: StageMessage = match serde_json::from_str(&m.text) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable stage message dropped");
                let _ = queue
                    .delete(store::STAGE_QUEUE, &m.id, &m.pop_receipt)
                    .await;
                continue;
            }
        };
        match process_message(ctx, &msg, m.dequeue_count, opts.max_dequeue_count, true).await {
            Ok(_) => {
                let _ = queue
                    .delete(store::STAGE_QUEUE, &m.id, &m.pop_receipt)
                    .await;
            }
            Err(e) => {
                tracing::warn!(run_id = %msg.run_id, stage = %msg.stage, dequeue_count = m.dequeue_count, error = %error_text(&e), "stage failed; will retry");
                // The message stays; it becomes visible again after `retry_delay`.
            }
        }
    };
    let (run, _) = require_run(ctx.store.as_ref(), run_id).await?;
    Ok((run, stopped))
}
