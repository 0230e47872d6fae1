//! Sending one invitation without ever sending it twice: shared by replicate's apply and the
//! failover's `invite-consumers` stage.
//!
//! In Azure every invitation PUT sends the e-mail, even a repeat of an existing one (201 again),
//! and a PUT whose answer was lost (the connection dropped, a timeout, a 5xx) may have been
//! applied. So the PUT is sent once per attempt (no client-level re-send:
//! [`ArmClient::with_max_attempts`]`(1)`), and after a transient failure the share's invitations
//! are listed first: one for the target that is pending (and live) or accepted means the write
//! landed, and nothing is sent again. At most the retry policy's `max_attempts` PUTs, with its
//! backoff (or the answer's `Retry-After`) between them.
//!
//! Guarantees: at most one PUT per attempt, and no PUT after a listing shows the invitation.
//! Caveats: a non-transient error (400, 403, 409, …) is returned as it is — a 409 is the
//! caller's to judge (observe again).
//!
//! Must not import: `handlers`, `host`, `failover`.

use time::OffsetDateTime;

use crate::arm::client::ArmClient;
use crate::arm::error::ArmError;
use crate::arm::id::{InvitationId, ShareId};
use crate::arm::models::Invitation;

use super::convert::target_of;
use super::model::{InvitationStatus, Target};

/// Whether `listed` holds an invitation for `target` that is accepted, or pending and not
/// expired at `now`.
pub fn holds_invitation_for(listed: &[Invitation], target: &Target, now: OffsetDateTime) -> bool {
    listed.iter().any(|i| {
        i.target().is_some_and(|t| target_of(&t) == *target)
            && match InvitationStatus::parse(
                i.properties.invitation_status.as_ref().map(|s| s.as_str()),
            ) {
                InvitationStatus::Accepted => true,
                InvitationStatus::Pending => i.properties.expiration_date.is_none_or(|e| e > now),
                _ => false,
            }
    })
}

/// PUTs one invitation, observing before any repeat (see the module docs).
pub async fn put_invitation_observed(
    arm: &ArmClient,
    share: &ShareId,
    id: &InvitationId,
    body: &Invitation,
    target: &Target,
    now: OffsetDateTime,
) -> Result<(), ArmError> {
    let policy = arm.settings().retry;
    let once = arm.with_max_attempts(1);
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let err = match once.put_invitation(id, body).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() && attempt < policy.max_attempts.max(1) => e,
            Err(e) => return Err(e),
        };
        let delay = match &err {
            ArmError::Api(a) => a.retry_after.map(|d| d.min(policy.max_retry_after)),
            _ => None,
        }
        .unwrap_or_else(|| policy.backoff(attempt - 1));
        tracing::info!(
            invitation = id.as_str(),
            attempt,
            error = %err,
            "invitation PUT failed without a definite answer; listing the share's invitations before sending it again"
        );
        tokio::time::sleep(delay).await;
        let listed = arm.list_invitations(share).await?;
        if holds_invitation_for(&listed, target, now) {
            return Ok(());
        }
    }
}
