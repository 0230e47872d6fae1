//! `Notify` (queue `notifications`): deliver one run or readiness event to the one channel its
//! message names (`crate::notify::deliver`).
//!
//! Classification: a channel that fails (non-2xx, transport error) answers 500, so the host
//! retries after `visibilityTimeout` and, after `maxDequeueCount` deliveries, moves the message
//! to `notifications-poison`; the last failing delivery logs an ERROR line saying so. A message
//! that is dropped on purpose (older than an hour at its first delivery, no channel, a channel no
//! longer configured, not JSON) is logged and acknowledged. Nothing here touches a run.

use time::OffsetDateTime;

use crate::host::{InvocationResponse, MessageText, QueueTrigger};
use crate::notify::{Channels, Delivered, deliver};
use crate::startup::AppState;

use super::HandlerError;
use super::failover_stage::MAX_DEQUEUE_COUNT;

/// Function (folder) name.
pub const NAME: &str = "Notify";

/// How long one POST to a channel may take.
pub const POST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn handle(
    state: &AppState,
    trigger: QueueTrigger<MessageText>,
) -> Result<InvocationResponse, HandlerError> {
    let channels = Channels::from_config(&state.config).map_err(|reason| {
        HandlerError::permanent(
            "read the notification channels",
            std::io::Error::other(reason),
        )
    })?;
    let now = OffsetDateTime::now_utc();
    let first = trigger.dequeue_count <= 1;
    match deliver(
        state.http(),
        &channels,
        &trigger.body.0,
        first,
        now,
        POST_TIMEOUT,
    )
    .await
    {
        Ok(Delivered::Sent(c)) => {
            tracing::info!(
                event = "notify.sent",
                channel = c.as_str(),
                dequeue_count = trigger.dequeue_count,
                "notify.sent"
            );
            Ok(InvocationResponse::new().log(format!("delivered to {}", c.as_str())))
        }
        Ok(Delivered::Dropped(reason)) => {
            tracing::warn!(event = "notify.dropped", %reason, "notification dropped");
            Ok(InvocationResponse::new().log(format!("dropped: {reason}")))
        }
        Err(e) => {
            if trigger.dequeue_count >= MAX_DEQUEUE_COUNT {
                tracing::error!(
                    event = "notify.poisoned",
                    channel = e.channel,
                    error = %e,
                    dequeue_count = trigger.dequeue_count,
                    "notification to the {} channel failed {} times; the host moves it to notifications-poison",
                    e.channel,
                    trigger.dequeue_count
                );
            }
            Err(HandlerError::transient(
                format!("deliver to the {} channel", e.channel),
                e,
            ))
        }
    }
}
