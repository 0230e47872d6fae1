//! Consumer-role stages (`role = "consumer"`, docs/consumer.md): on a failover, do the
//! consumer's side of the seed runbook against the consumer's SECONDARY Data Share account —
//! accept the provider's invitation on the provider's secondary share (a share subscription),
//! map every data set to the consumer's secondary-region sink by the subscription's `stores`
//! rules, create triggers with the provider's schedule, optionally start a first
//! synchronization.
//!
//! Stages (dispatched here by `exec` for consumer-role runs):
//! - `preflight`: the secondary account must answer (missing → abort). The consumer's primary
//!   share subscription is read with the probe deadline: its share name, provider tenant, data
//!   set mappings and trigger mode become the run's [`PrimarySnapshot`] (also stored as
//!   `consumer-snapshots/{subscription}.json`, see [`capture_primary`]). When the primary does
//!   not answer (its region is down), the last stored snapshot is used, with a finding.
//! - `accept-invitations`: an existing share subscription on the secondary account for the
//!   provider share in the provider's secondary region is reused (nothing written); otherwise
//!   the matching pending invitation (share name, provider tenant, region) is accepted with
//!   `sourceShareLocation` = the secondary region. No invitation yet → wait (re-enqueue) up to
//!   [`INVITATION_PATIENCE`], then abort.
//! - `map-datasets`: each source data set of the secondary share subscription without a mapping
//!   gets the mapping of the same data set on the primary share subscription, its sink mapped
//!   through the rules. A sink without a rule (or one mapping to itself) is a finding and the
//!   data set stays unmapped — never mapped into a primary-region sink.
//! - `create-triggers`: one trigger per provider schedule not yet mirrored (`schedule =
//!   "provider"`; `"none"` skips), then the first synchronization when `start_first_sync` is
//!   set and this run created the share subscription.
//!
//! Invariants:
//! - Observe before writing; names are deterministic (the subscription takes the primary share
//!   subscription's name, mappings the primary mapping names, triggers `dr-schedule[-n]`), so a
//!   re-delivered stage writes nothing it already wrote.
//! - Long-running operations (trigger creation, synchronization) are started with the ARM
//!   client's `start_*` form; the [`LroHandle`] is stored in the run record (`consumer`) BEFORE
//!   the stage returns [`Wait`](ResultKind::Wait), and the next delivery polls it.
//!   Nothing sleeps. A synchronization is recorded as requested before the POST, so a crash
//!   between the POST and the record is detected by counting synchronizations, not by sending
//!   a second one.
//! - Drill mode writes nothing: every stage reports what a failover would do.
//!
//! Must not import: handlers, host.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::arm::ListQuery;
use crate::arm::client::{
    ArmClient, CallLog, LroHandle, LroStart, LroStatus, may_have_been_applied,
};
use crate::arm::error::ArmError;
use crate::arm::id::{ResourceId, ShareSubscriptionId};
use crate::arm::models::{
    DataSetMapping, DataSetMappingKind, RecurrenceInterval, ShareSubscription,
    ShareSubscriptionStatus, SourceShareSynchronizationSettingKind, SynchronizationMode, Trigger,
    TriggerKind, storage_account_id,
};
use crate::config::dr::{ConsumerSchedule, ConsumerSubscription, StoreKind, normalize_region};
use crate::store::{self, BlobStore, Precondition};

use super::FailoverError;
use super::exec::{ResultKind, StageContext, StageResult, arm_err, stage_err};
use super::run::{RunRecord, update_run};
use super::stages::{Mode, Stage};

/// How often `accept-invitations` looks again for the provider's invitation.
pub const INVITATION_POLL: Duration = Duration::from_secs(60);
/// How long `accept-invitations` waits for the provider's invitation before giving up.
pub const INVITATION_PATIENCE: Duration = Duration::from_secs(2 * 3600);
/// Bounds of the re-enqueue delay while a long-running operation runs.
pub const LRO_POLL_MIN: Duration = Duration::from_secs(1);
pub const LRO_POLL_MAX: Duration = Duration::from_secs(60);
/// Name of the first trigger this tool creates (further ones get `-1`, `-2`, …).
pub const TRIGGER_NAME: &str = "dr-schedule";

/// `consumer-snapshots/{subscription}.json`: the primary share subscription as last seen.
pub fn snapshot_path(subscription: &str) -> String {
    format!("consumer-snapshots/{subscription}.json")
}

/// One data set mapping of the primary share subscription, with the source data set it maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingSnapshot {
    /// Mapping resource name on the primary (reused on the secondary).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set_type: Option<String>,
    pub mapping: DataSetMapping,
}

/// The consumer's primary share subscription, as the failover needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrimarySnapshot {
    pub share_subscription: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_tenant_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_share_location: Option<String>,
    pub mappings: Vec<MappingSnapshot>,
    /// `synchronizationMode` of the primary's first trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_mode: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub captured_at: OffsetDateTime,
}

/// The first synchronization of the secondary share subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirstSync {
    /// Synchronizations the subscription had before the request.
    pub count_before: u64,
    /// Set (and saved) before the POST.
    pub requested: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<LroHandle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default)]
    pub done: bool,
}

/// The consumer part of a run record (`RunRecord::consumer`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<PrimarySnapshot>,
    /// Whether preflight read the primary itself (else the snapshot came from the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_reachable: Option<bool>,
    /// The invitation this run accepts (saved before the share subscription is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<String>,
    /// The share subscription on the secondary account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_subscription: Option<String>,
    /// This run created the share subscription (a first synchronization makes sense).
    #[serde(default)]
    pub created_subscription: bool,
    /// A trigger creation still running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_operation: Option<LroHandle>,
    /// Triggers this run created (lower-cased names), saved with each PUT, so a stage that waits
    /// for a creation and runs again counts them as created — not as "already present".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers_created: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sync: Option<FirstSync>,
}

/// Runs one consumer-role stage.
pub(super) async fn execute(
    ctx: &StageContext,
    arm: &ArmClient,
    run: &RunRecord,
    stage: Stage,
) -> Result<StageResult, FailoverError> {
    let sub = ctx
        .config
        .subscription(&run.pair)
        .ok_or_else(|| FailoverError::UnknownPair {
            pair: run.pair.clone(),
            known: ctx
                .config
                .subscriptions
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let log = CallLog::new();
    let arm = arm.recording(&log);
    let mut out = match stage {
        Stage::Preflight => preflight(ctx, &arm, run, sub).await?,
        Stage::AcceptInvitations => accept_invitation(ctx, &arm, run, sub).await?,
        Stage::MapDatasets => map_datasets(&arm, run, sub).await?,
        Stage::CreateTriggers => create_triggers(ctx, &arm, run, sub).await?,
        other => return Err(stage_err(run, other, "not a consumer-role stage", false)),
    };
    let records = log.records();
    let writes = records
        .iter()
        .filter(|r| r.method != "GET" && !r.operation.contains("List"))
        .count() as u64;
    out.count("armCalls", records.len() as u64);
    out.count("armWrites", writes);
    out.correlation_ids = log.correlation_ids();
    Ok(out)
}

/// Read-modify-write of the run's consumer state (ETag-guarded, like every run change).
async fn save_state(
    ctx: &StageContext,
    run: &RunRecord,
    change: impl Fn(&mut ConsumerState),
) -> Result<ConsumerState, FailoverError> {
    let r = update_run(ctx.store.as_ref(), &run.run_id, |r| {
        change(r.consumer.get_or_insert_with(ConsumerState::default));
        Ok(())
    })
    .await?;
    Ok(r.consumer.unwrap_or_default())
}

/// The run's consumer state as of now (re-read: an earlier delivery may have saved some).
async fn load_state(ctx: &StageContext, run: &RunRecord) -> Result<ConsumerState, FailoverError> {
    let (r, _) = super::run::require_run(ctx.store.as_ref(), &run.run_id).await?;
    Ok(r.consumer.unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// The primary snapshot

/// Reads the consumer's primary share subscription (share, provider, mappings, trigger mode).
pub async fn read_primary(
    arm: &ArmClient,
    sub: &ConsumerSubscription,
    now: OffsetDateTime,
) -> Result<PrimarySnapshot, ArmError> {
    let id = &sub.primary_share_subscription;
    let ss = arm.get_share_subscription(id).await?;
    let mappings = arm.list_dataset_mappings(id).await?;
    let sources = arm.list_consumer_source_datasets(id).await?;
    let triggers = arm.list_triggers(id).await?;
    let mut out = Vec::new();
    for m in mappings {
        let Some(name) = m.name().map(str::to_owned) else {
            continue;
        };
        let src = m.data_set_id().and_then(|d| {
            sources.iter().find(|s| {
                s.properties
                    .data_set_id
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(d))
            })
        });
        out.push(MappingSnapshot {
            name,
            data_set_name: src.and_then(|s| s.properties.data_set_name.clone()),
            data_set_path: src.and_then(|s| s.properties.data_set_path.clone()),
            data_set_type: src.and_then(|s| s.properties.data_set_type.clone()),
            mapping: m,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    let trigger_mode = triggers.iter().find_map(|t| match &t.kind {
        TriggerKind::ScheduleBased(p) => p
            .synchronization_mode
            .as_ref()
            .map(|m| m.as_str().to_owned()),
        TriggerKind::Unknown { .. } => None,
    });
    Ok(PrimarySnapshot {
        share_subscription: id.to_string(),
        share_name: ss.properties.share_name.clone(),
        provider_tenant_name: ss.properties.provider_tenant_name.clone(),
        provider_name: ss.properties.provider_name.clone(),
        source_share_location: Some(ss.properties.source_share_location.clone())
            .filter(|s| !s.is_empty()),
        mappings: out,
        trigger_mode,
        captured_at: now,
    })
}

/// Reads the primary share subscription and stores it as `consumer-snapshots/{name}.json`, so a
/// later failover with the primary region down still knows the sinks (call it on a timer or
/// after changing mappings, like `exec::capture_roster` for providers).
pub async fn capture_primary(
    arm: &ArmClient,
    store: &dyn BlobStore,
    sub: &ConsumerSubscription,
    now: OffsetDateTime,
) -> Result<PrimarySnapshot, FailoverError> {
    let snap = read_primary(arm, sub, now)
        .await
        .map_err(|e| FailoverError::Arm {
            run_id: String::new(),
            stage: "snapshot".into(),
            operation: "read the primary share subscription".into(),
            resource: sub.primary_share_subscription.to_string(),
            source: Box::new(e),
        })?;
    save_snapshot(store, &sub.name, &snap).await?;
    Ok(snap)
}

/// The secondary share subscription `accept-invitations` recorded: `None` in a drill (which
/// accepts nothing), an error in a failover (the stage order guarantees one).
fn accepted_subscription(
    run: &RunRecord,
    stage: Stage,
    state: &ConsumerState,
) -> Result<Option<ShareSubscriptionId>, FailoverError> {
    match &state.share_subscription {
        Some(text) => ShareSubscriptionId::parse(text)
            .map(Some)
            .map_err(|e| stage_err(run, stage, e.to_string(), false)),
        None if run.mode == Mode::Drill => Ok(None),
        None => Err(stage_err(
            run,
            stage,
            "no share subscription on the secondary account was recorded by accept-invitations",
            false,
        )),
    }
}

async fn save_snapshot(
    store: &dyn BlobStore,
    name: &str,
    snap: &PrimarySnapshot,
) -> Result<(), FailoverError> {
    store::put_json(store, &snapshot_path(name), snap, Precondition::None)
        .await
        .map(|_| ())
        .map_err(|source| FailoverError::RecordAlert {
            key: snapshot_path(name),
            source: Box::new(source),
        })
}

/// The stored snapshot of subscription `name`, if any.
pub async fn load_snapshot(
    store: &dyn BlobStore,
    name: &str,
) -> Result<Option<PrimarySnapshot>, FailoverError> {
    store::get_json::<PrimarySnapshot>(store, &snapshot_path(name))
        .await
        .map(|o| o.map(|(s, _)| s))
        .map_err(|source| FailoverError::RecordAlert {
            key: snapshot_path(name),
            source: Box::new(source),
        })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn preflight(
    ctx: &StageContext,
    arm: &ArmClient,
    run: &RunRecord,
    sub: &ConsumerSubscription,
) -> Result<StageResult, FailoverError> {
    let stage = Stage::Preflight;
    let now = ctx.clock.now();
    let mut out = StageResult::default();
    match arm.get_account(&sub.secondary_account).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {
            out.summary = "the secondary account does not exist".into();
            out.kind = ResultKind::Abort(format!(
                "preflight: the consumer's secondary account {} does not exist; create it (region {}) and start again",
                sub.secondary_account, sub.secondary_region
            ));
            return Ok(out);
        }
        Err(e) => {
            return Err(arm_err(
                run,
                stage,
                "read the secondary account",
                sub.secondary_account.as_str(),
                e,
            ));
        }
    }
    let probe = arm.with_deadline(ctx.probe_deadline);
    let (snapshot, reachable) = match read_primary(&probe, sub, now).await {
        Ok(snap) => {
            if let Err(e) = save_snapshot(ctx.store.as_ref(), &sub.name, &snap).await {
                tracing::warn!(subscription = %sub.name, error = %super::error_text(&e), "could not store the primary snapshot");
            }
            (Some(snap), true)
        }
        Err(e) => {
            tracing::info!(subscription = %sub.name, error = %super::error_text(&e), "primary share subscription not readable; using the stored snapshot");
            let stored = load_snapshot(ctx.store.as_ref(), &sub.name).await?;
            match &stored {
                Some(s) => out.finding(
                    "Info",
                    "snapshot-from-store",
                    format!(
                        "the primary share subscription {} does not answer ({}): sinks come from the snapshot recorded at {}",
                        sub.primary_share_subscription.name(),
                        e,
                        rfc3339(s.captured_at)
                    ),
                ),
                None => out.finding(
                    "Critical",
                    "primary-unknown",
                    format!(
                        "the primary share subscription {} does not answer ({}) and no snapshot was recorded: data sets cannot be mapped by their primary sinks",
                        sub.primary_share_subscription.name(),
                        e
                    ),
                ),
            }
            (stored, false)
        }
    };
    out.count(
        "primaryMappings",
        snapshot.as_ref().map_or(0, |s| s.mappings.len() as u64),
    );
    if let Some(abort) = invitation_check(arm, run, sub, snapshot.as_ref(), &mut out).await? {
        out.kind = ResultKind::Abort(abort);
        return Ok(out);
    }
    out.summary = format!(
        "secondary account {} answers; primary share subscription {} {}",
        sub.secondary_account.name(),
        sub.primary_share_subscription.name(),
        match (reachable, &snapshot) {
            (true, _) => "read".to_owned(),
            (false, Some(s)) => format!("unreachable (snapshot of {})", rfc3339(s.captured_at)),
            (false, None) => "unreachable, no snapshot".to_owned(),
        }
    );
    save_state(ctx, run, |st| {
        st.primary = snapshot.clone();
        st.primary_reachable = Some(reachable);
    })
    .await?;
    Ok(out)
}

/// Preflight: the provider must have invited this app's identity (tenant + object id — a
/// managed identity sees no e-mail invitations) on the share in the secondary region, unless a
/// share subscription there already subscribes it. With `invitations = "at-failover"` a missing
/// invitation is expected (`accept-invitations` waits); else it fails the run.
async fn invitation_check(
    arm: &ArmClient,
    run: &RunRecord,
    sub: &ConsumerSubscription,
    snap: Option<&PrimarySnapshot>,
    out: &mut StageResult,
) -> Result<Option<String>, FailoverError> {
    let stage = Stage::Preflight;
    let share = wanted_share(sub, snap);
    let region = normalize_region(&sub.secondary_region);
    let tenant = snap.and_then(|s| s.provider_tenant_name.clone());
    let existing = arm
        .list_share_subscriptions(&sub.secondary_account)
        .await
        .map_err(|e| {
            arm_err(
                run,
                stage,
                "list share subscriptions",
                sub.secondary_account.as_str(),
                e,
            )
        })?;
    if existing
        .iter()
        .any(|ss| subscribes(ss, &share, &region, tenant.as_deref(), None))
    {
        out.count("invitationsFound", 0);
        return Ok(None);
    }
    let invitations = arm.list_consumer_invitations().await.map_err(|e| {
        arm_err(
            run,
            stage,
            "list consumer invitations",
            "/providers/Microsoft.DataShare/listInvitations",
            e,
        )
    })?;
    let found = invitations
        .iter()
        .filter(|i| {
            let p = &i.properties;
            p.share_name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&share))
                && p.location
                    .as_deref()
                    .is_none_or(|l| normalize_region(l) == region)
                && p.invitation_status
                    .as_ref()
                    .is_none_or(|s| s.as_str().eq_ignore_ascii_case("Pending"))
        })
        .count();
    out.count("invitationsFound", found as u64);
    if found > 0 {
        return Ok(None);
    }
    if sub.invitations == crate::config::dr::InvitationPolicy::AtFailover {
        out.finding(
            "Info",
            "invitation-at-failover",
            format!(
                "no invitation for share {share} in {region} yet; the provider invites at failover (`invitations = \"at-failover\"`), so accept-invitations waits for it"
            ),
        );
        return Ok(None);
    }
    Ok(Some(format!(
        "preflight: no pending invitation for share {share} in {region} is visible to this app and no share subscription on {} subscribes it; the provider must invite this app's identity by tenant + object id (targetActiveDirectoryId + targetObjectId) on its secondary share, or set `invitations = \"at-failover\"` on this subscription if it invites only at failover",
        sub.secondary_account.name()
    )))
}

// ---------------------------------------------------------------------------------------------
// accept-invitations

/// The provider share whose invitation is accepted: configured, else the primary
/// subscription's share name, else the primary share subscription's own name.
fn wanted_share(sub: &ConsumerSubscription, snap: Option<&PrimarySnapshot>) -> String {
    sub.provider_share
        .clone()
        .or_else(|| snap.and_then(|s| s.share_name.clone()))
        .unwrap_or_else(|| sub.primary_share_subscription.name().to_owned())
}

fn eq_opt(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => true,
    }
}

/// Whether `ss` (on the secondary account) subscribes the wanted share in the secondary region.
fn subscribes(
    ss: &ShareSubscription,
    share: &str,
    region: &str,
    tenant: Option<&str>,
    invitation: Option<&str>,
) -> bool {
    let p = &ss.properties;
    if invitation.is_some_and(|i| p.invitation_id.eq_ignore_ascii_case(i)) {
        return true;
    }
    p.share_name
        .as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case(share))
        && normalize_region(&p.source_share_location) == region
        && eq_opt(p.provider_tenant_name.as_deref(), tenant)
        && !matches!(
            p.share_subscription_status,
            Some(ShareSubscriptionStatus::Revoked | ShareSubscriptionStatus::SourceDeleted)
        )
}

async fn accept_invitation(
    ctx: &StageContext,
    arm: &ArmClient,
    run: &RunRecord,
    sub: &ConsumerSubscription,
) -> Result<StageResult, FailoverError> {
    let stage = Stage::AcceptInvitations;
    let now = ctx.clock.now();
    let mut out = StageResult::default();
    let state = load_state(ctx, run).await?;
    let snap = state.primary.as_ref();
    let share = wanted_share(sub, snap);
    if sub.provider_share.is_none() && snap.and_then(|s| s.share_name.as_ref()).is_none() {
        out.finding(
            "Info",
            "share-name-assumed",
            format!(
                "the provider share name is unknown (primary not read, no `provider_share`): assuming {share:?}"
            ),
        );
    }
    let region = normalize_region(&sub.secondary_region);
    let tenant = snap.and_then(|s| s.provider_tenant_name.clone());
    let account = &sub.secondary_account;

    // Observe: an existing share subscription wins (re-delivery, or accepted by hand).
    let existing = arm
        .list_share_subscriptions(account)
        .await
        .map_err(|e| arm_err(run, stage, "list share subscriptions", account.as_str(), e))?;
    if let Some(ss) = existing.iter().find(|ss| {
        subscribes(
            ss,
            &share,
            &region,
            tenant.as_deref(),
            state.invitation_id.as_deref(),
        )
    }) {
        let id = ss.meta.id.clone().unwrap_or_default();
        let ours = state
            .invitation_id
            .as_deref()
            .is_some_and(|i| ss.properties.invitation_id.eq_ignore_ascii_case(i));
        out.count("accepted", 0);
        out.count("existing", 1);
        out.summary = format!(
            "share subscription {} on {} already subscribes share {share} in {region}",
            ss.meta.name.as_deref().unwrap_or("?"),
            account.name()
        );
        save_state(ctx, run, |st| {
            st.share_subscription = Some(id.clone());
            st.created_subscription = st.created_subscription || ours;
        })
        .await?;
        return Ok(out);
    }

    // The provider's pending invitation for that share, in the secondary region.
    let invitations = arm.list_consumer_invitations().await.map_err(|e| {
        arm_err(
            run,
            stage,
            "list consumer invitations",
            "/providers/Microsoft.DataShare/listInvitations",
            e,
        )
    })?;
    let mut candidates: Vec<_> = invitations
        .iter()
        .filter(|i| {
            let p = &i.properties;
            !p.invitation_id.is_empty()
                && p.share_name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&share))
                && p.location
                    .as_deref()
                    .is_none_or(|l| normalize_region(l) == region)
                && eq_opt(p.provider_tenant_name.as_deref(), tenant.as_deref())
                && p.invitation_status
                    .as_ref()
                    .is_none_or(|s| s.as_str().eq_ignore_ascii_case("Pending"))
                && p.expiration_date
                    .is_none_or(|e| e > OffsetDateTime::now_utc())
        })
        .collect();
    candidates.sort_by_key(|i| std::cmp::Reverse(i.properties.sent_at));
    out.count("invitationsSeen", invitations.len() as u64);
    let Some(inv) = candidates.first() else {
        let waited = run
            .stage(stage)
            .and_then(|s| s.started_at)
            .map_or(time::Duration::ZERO, |t| now - t);
        if waited >= time::Duration::try_from(INVITATION_PATIENCE).unwrap_or(time::Duration::MAX) {
            out.summary = "no invitation arrived".into();
            out.kind = ResultKind::Abort(format!(
                "accept-invitations: no pending invitation for share {share} in {region} arrived within {} minutes; ask the provider to invite {} on its secondary share",
                INVITATION_PATIENCE.as_secs() / 60,
                account.name()
            ));
            return Ok(out);
        }
        out.summary =
            format!("waiting for the provider's invitation for share {share} in {region}");
        out.kind = ResultKind::Wait(INVITATION_POLL);
        return Ok(out);
    };
    if candidates.len() > 1 {
        out.finding(
            "Info",
            "several-invitations",
            format!(
                "{} pending invitations match share {share} in {region}; the most recent is accepted",
                candidates.len()
            ),
        );
    }
    let invitation_id = inv.properties.invitation_id.clone();
    let location = inv
        .properties
        .location
        .clone()
        .unwrap_or_else(|| sub.secondary_region.clone());

    // A deterministic name: the primary subscription's, unless an unrelated one holds it.
    let taken: BTreeSet<String> = existing
        .iter()
        .filter_map(|s| s.meta.name.as_deref().map(str::to_ascii_lowercase))
        .collect();
    let base = sub.primary_share_subscription.name().to_owned();
    let Some(name) = [base.clone(), format!("{base}-dr")]
        .into_iter()
        .find(|n| !taken.contains(&n.to_ascii_lowercase()))
    else {
        out.summary = "no free share subscription name".into();
        out.kind = ResultKind::Abort(format!(
            "accept-invitations: {base} and {base}-dr are taken on {} by other share subscriptions",
            account.name()
        ));
        return Ok(out);
    };
    if run.mode == Mode::Drill {
        out.count("wouldAccept", 1);
        out.summary = format!(
            "drill: would accept invitation {invitation_id} for share {share} as {}/{name} (nothing written)",
            account.name()
        );
        return Ok(out);
    }
    let id = account
        .share_subscription(&name)
        .map_err(|e| stage_err(run, stage, e.to_string(), false))?;
    // Saved before the write: a re-delivery recognises the subscription by this invitation.
    save_state(ctx, run, |st| {
        st.invitation_id = Some(invitation_id.clone())
    })
    .await?;
    let created = match arm
        .create_share_subscription(&id, &invitation_id, &location, None)
        .await
    {
        Ok(ss) => ss,
        Err(e) if e.is_conflict() => {
            // Accepted meanwhile (a delivery that died before recording it): observe again.
            let again = arm.list_share_subscriptions(account).await.map_err(|e| {
                arm_err(run, stage, "list share subscriptions", account.as_str(), e)
            })?;
            match again
                .into_iter()
                .find(|ss| subscribes(ss, &share, &region, tenant.as_deref(), Some(&invitation_id)))
            {
                Some(ss) => ss,
                None => {
                    return Err(arm_err(
                        run,
                        stage,
                        "accept invitation (create share subscription)",
                        id.as_str(),
                        e,
                    ));
                }
            }
        }
        Err(e) => {
            return Err(arm_err(
                run,
                stage,
                "accept invitation (create share subscription)",
                id.as_str(),
                e,
            ));
        }
    };
    let status = created
        .properties
        .share_subscription_status
        .as_ref()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    if !status.eq_ignore_ascii_case("Active") {
        out.finding(
            "Warning",
            "subscription-not-active",
            format!("share subscription {name} is {status:?}, not Active"),
        );
    }
    let ss_id = created.meta.id.clone().unwrap_or_else(|| id.to_string());
    save_state(ctx, run, |st| {
        st.share_subscription = Some(ss_id.clone());
        st.created_subscription = true;
    })
    .await?;
    out.count("accepted", 1);
    out.count("existing", 0);
    out.summary = format!(
        "accepted invitation {invitation_id} for share {share}: share subscription {name} on {} (source {location})",
        account.name()
    );
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// map-datasets

/// The sink of a mapping: its store family and the id the `stores` rules rewrite.
pub fn mapping_sink(m: &DataSetMapping) -> Option<(StoreKind, ResourceId)> {
    macro_rules! storage {
        ($p:expr) => {
            storage_account_id(
                &$p.subscription_id,
                &$p.resource_group,
                &$p.storage_account_name,
            )
            .ok()
            .map(|id| (StoreKind::Storage, id))
        };
    }
    let parsed = |id: &str, kind| ResourceId::parse(id).ok().map(|id| (kind, id));
    match &m.kind {
        DataSetMappingKind::Blob(p) => storage!(p),
        DataSetMappingKind::BlobFolder(p) => storage!(p),
        DataSetMappingKind::Container(p) => storage!(p),
        DataSetMappingKind::AdlsGen2File(p) => storage!(p),
        DataSetMappingKind::AdlsGen2Folder(p) => storage!(p),
        DataSetMappingKind::AdlsGen2FileSystem(p) => storage!(p),
        DataSetMappingKind::KustoCluster(p)
        | DataSetMappingKind::KustoDatabase(p)
        | DataSetMappingKind::KustoTable(p) => {
            parsed(&p.kusto_cluster_resource_id, StoreKind::Kusto)
        }
        DataSetMappingKind::SqlDbTable(p) => parsed(&p.sql_server_resource_id, StoreKind::Sql),
        DataSetMappingKind::SqlDwTable(p) => parsed(&p.sql_server_resource_id, StoreKind::Sql),
        DataSetMappingKind::SynapseWorkspaceSqlPoolTable(p) => parsed(
            &p.synapse_workspace_sql_pool_table_resource_id,
            StoreKind::Synapse,
        ),
        DataSetMappingKind::Unknown { .. } => None,
    }
}

/// `m` re-pointed at `sink` (same family as [`mapping_sink`] returns) for data set
/// `data_set_id`; read-only fields cleared. `None` when the sink does not fit the kind.
pub fn retarget_mapping(
    m: &DataSetMapping,
    sink: &ResourceId,
    data_set_id: &str,
) -> Option<DataSetMapping> {
    let (s, r, a) = (
        sink.subscription_id().unwrap_or_default(),
        sink.resource_group().unwrap_or_default(),
        sink.name(),
    );
    let mut kind = m.kind.clone();
    // Every kind: the sink must be of `$ty`; then the data set and the read-only fields.
    macro_rules! point {
        ($p:expr, $ty:literal) => {{
            if !sink.is_type($ty) {
                return None;
            }
            $p.data_set_id = data_set_id.to_owned();
            $p.data_set_mapping_status = None;
            $p.provisioning_state = None;
        }};
    }
    macro_rules! storage {
        ($p:expr) => {{
            point!($p, "Microsoft.Storage/storageAccounts");
            $p.subscription_id = s.to_owned();
            $p.resource_group = r.to_owned();
            $p.storage_account_name = a.to_owned();
        }};
    }
    match &mut kind {
        DataSetMappingKind::Blob(p) => storage!(p),
        DataSetMappingKind::BlobFolder(p) => storage!(p),
        DataSetMappingKind::Container(p) => storage!(p),
        DataSetMappingKind::AdlsGen2File(p) => storage!(p),
        DataSetMappingKind::AdlsGen2Folder(p) => storage!(p),
        DataSetMappingKind::AdlsGen2FileSystem(p) => storage!(p),
        DataSetMappingKind::KustoCluster(p)
        | DataSetMappingKind::KustoDatabase(p)
        | DataSetMappingKind::KustoTable(p) => {
            point!(p, "Microsoft.Kusto/clusters");
            p.kusto_cluster_resource_id = sink.to_string();
            p.location = None;
        }
        DataSetMappingKind::SqlDbTable(p) => {
            point!(p, "Microsoft.Sql/servers");
            p.sql_server_resource_id = sink.to_string();
        }
        DataSetMappingKind::SqlDwTable(p) => {
            point!(p, "Microsoft.Sql/servers");
            p.sql_server_resource_id = sink.to_string();
        }
        DataSetMappingKind::SynapseWorkspaceSqlPoolTable(p) => {
            point!(p, "Microsoft.Synapse/workspaces/sqlPools/schemas/tables");
            p.synapse_workspace_sql_pool_table_resource_id = sink.to_string();
        }
        DataSetMappingKind::Unknown { .. } => return None,
    }
    Some(DataSetMapping::new(kind))
}

async fn map_datasets(
    arm: &ArmClient,
    run: &RunRecord,
    sub: &ConsumerSubscription,
) -> Result<StageResult, FailoverError> {
    let stage = Stage::MapDatasets;
    let mut out = StageResult::default();
    let state = run.consumer.clone().unwrap_or_default();
    let snap = state.primary.as_ref();
    let primary_sinks: BTreeSet<ResourceId> = snap
        .map(|s| {
            s.mappings
                .iter()
                .filter_map(|m| mapping_sink(&m.mapping).map(|(_, id)| id))
                .collect()
        })
        .unwrap_or_default();

    let Some(ss) = accepted_subscription(run, stage, &state)? else {
        // Nothing accepted in a drill: check that every primary sink has a secondary one.
        let (mut would, mut unmapped) = (0u64, 0u64);
        for m in snap.map(|s| s.mappings.as_slice()).unwrap_or_default() {
            match mapping_sink(&m.mapping).map(|(k, id)| sub.stores.resolve(k, &id)) {
                Some(Ok(_)) => would += 1,
                Some(Err(e)) => {
                    unmapped += 1;
                    out.finding(
                        "Warning",
                        "sink-unmapped",
                        format!("mapping {}: {e}", m.name),
                    );
                }
                None => {
                    unmapped += 1;
                    out.finding(
                        "Warning",
                        "sink-unknown",
                        format!("mapping {} has no recognisable sink", m.name),
                    );
                }
            }
        }
        out.count("wouldMap", would);
        out.count("unmapped", unmapped);
        out.summary = format!(
            "drill: {would} data set(s) would be mapped, {unmapped} have no secondary sink (nothing written)"
        );
        return Ok(out);
    };
    let sources = arm
        .list_consumer_source_datasets(&ss)
        .await
        .map_err(|e| arm_err(run, stage, "list source data sets", ss.as_str(), e))?;
    let existing = arm
        .list_dataset_mappings(&ss)
        .await
        .map_err(|e| arm_err(run, stage, "list data set mappings", ss.as_str(), e))?;
    let mut names: BTreeSet<String> = existing
        .iter()
        .filter_map(|m| m.name().map(str::to_ascii_lowercase))
        .collect();
    let (mut created, mut present, mut unmapped, mut not_on_primary) = (0u64, 0u64, 0u64, 0u64);
    let mut sources = sources;
    sources.sort_by(|a, b| a.properties.data_set_name.cmp(&b.properties.data_set_name));
    for src in &sources {
        let p = &src.properties;
        let label = p
            .data_set_name
            .clone()
            .or_else(|| src.meta.name.clone())
            .unwrap_or_else(|| "?".into());
        let Some(ds_id) = p.data_set_id.as_deref().filter(|d| !d.is_empty()) else {
            out.finding(
                "Warning",
                "source-without-id",
                format!("source data set {label} has no dataSetId and cannot be mapped"),
            );
            unmapped += 1;
            continue;
        };
        if let Some(m) = existing.iter().find(|m| {
            m.data_set_id()
                .is_some_and(|d| d.eq_ignore_ascii_case(ds_id))
        }) {
            present += 1;
            if let Some((_, sink)) = mapping_sink(m)
                && primary_sinks.contains(&sink)
            {
                out.finding(
                    "Critical",
                    "mapped-into-primary-sink",
                    format!(
                        "data set {label} is mapped on {} into the primary-region sink {sink}",
                        ss.name()
                    ),
                );
            }
            continue;
        }
        let Some(snap) = snap else {
            unmapped += 1;
            out.finding(
                "Warning",
                "sink-unknown",
                format!("data set {label}: the primary mappings are unknown, so its sink is unknown; map it by hand"),
            );
            continue;
        };
        let found = snap
            .mappings
            .iter()
            .find(|m| {
                m.data_set_name.is_some()
                    && m.data_set_name.as_deref().map(str::to_ascii_lowercase)
                        == p.data_set_name.as_deref().map(str::to_ascii_lowercase)
            })
            .or_else(|| {
                snap.mappings.iter().find(|m| {
                    m.data_set_path.is_some()
                        && m.data_set_path == p.data_set_path
                        && m.data_set_type == p.data_set_type
                })
            });
        let Some(primary) = found else {
            not_on_primary += 1;
            out.finding(
                "Info",
                "not-mapped-on-primary",
                format!("data set {label} has no mapping on the primary share subscription; left unmapped"),
            );
            continue;
        };
        let Some((kind, sink)) = mapping_sink(&primary.mapping) else {
            unmapped += 1;
            out.finding(
                "Warning",
                "sink-unknown",
                format!(
                    "mapping {} of data set {label} has no recognisable sink",
                    primary.name
                ),
            );
            continue;
        };
        let target = match sub.stores.resolve(kind, &sink) {
            Ok(t) => t,
            Err(e) => {
                unmapped += 1;
                out.finding(
                    "Warning",
                    "sink-unmapped",
                    format!("data set {label} left unmapped: {e}"),
                );
                continue;
            }
        };
        let Some(body) = retarget_mapping(&primary.mapping, &target, ds_id) else {
            unmapped += 1;
            out.finding(
                "Warning",
                "sink-unmapped",
                format!(
                    "data set {label} left unmapped: {target} is not a {} sink for a {} mapping",
                    kind,
                    primary.mapping.kind_name()
                ),
            );
            continue;
        };
        let mut name = primary.name.clone();
        if names.contains(&name.to_ascii_lowercase()) {
            name = format!("{name}-dr");
        }
        if run.mode == Mode::Drill {
            created += 1;
            continue;
        }
        let mid = ss
            .data_set_mapping(&name)
            .map_err(|e| stage_err(run, stage, e.to_string(), false))?;
        arm.put_dataset_mapping(&mid, &body)
            .await
            .map_err(|e| arm_err(run, stage, "create data set mapping", mid.as_str(), e))?;
        names.insert(name.to_ascii_lowercase());
        created += 1;
    }
    out.count("sourceDataSets", sources.len() as u64);
    out.count(
        if run.mode == Mode::Drill {
            "wouldMap"
        } else {
            "mapped"
        },
        created,
    );
    out.count("present", present);
    out.count("unmapped", unmapped);
    out.count("notMappedOnPrimary", not_on_primary);
    out.summary = format!(
        "{} source data set(s) on {}: {created} mapped to secondary sinks, {present} already mapped, {unmapped} without a secondary sink",
        sources.len(),
        ss.name()
    );
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// create-triggers (+ first synchronization)

/// How long to wait before polling an operation again: its `Retry-After`, within 1–60 s.
pub(super) fn poll_delay(d: Option<Duration>) -> Duration {
    d.unwrap_or(LRO_POLL_MIN).clamp(LRO_POLL_MIN, LRO_POLL_MAX)
}

/// Whether a share subscription is in-place (`shareKind: InPlace`, Azure Data Explorer).
fn is_in_place(ss: &ShareSubscription) -> bool {
    matches!(
        ss.properties.share_kind,
        Some(crate::arm::models::ShareKind::InPlace)
    )
}

async fn create_triggers(
    ctx: &StageContext,
    arm: &ArmClient,
    run: &RunRecord,
    sub: &ConsumerSubscription,
) -> Result<StageResult, FailoverError> {
    let stage = Stage::CreateTriggers;
    let mut out = StageResult::default();
    let state = load_state(ctx, run).await?;
    let Some(ss) = accepted_subscription(run, stage, &state)? else {
        // A drill accepted nothing: report what a failover would do.
        out.summary = match sub.schedule {
            ConsumerSchedule::Provider => "drill: triggers with the provider's schedule would be created once the invitation is accepted (nothing written)".into(),
            ConsumerSchedule::None => "drill: no trigger (schedule = \"none\")".into(),
        };
        out.kind = ResultKind::Skipped;
        return Ok(out);
    };

    // 0. In-place (Azure Data Explorer) shares have no snapshots: no trigger, no synchronize.
    let current = arm
        .get_share_subscription(&ss)
        .await
        .map_err(|e| arm_err(run, stage, "get share subscription", ss.as_str(), e))?;
    if is_in_place(&current) {
        out.summary = format!(
            "share subscription {} is in-place (Azure Data Explorer): no snapshots, so no trigger and no synchronization",
            ss.name()
        );
        out.finding(
            "Info",
            "in-place-no-snapshots",
            format!(
                "{} is an in-place share subscription: it has no snapshots, so no trigger is created and no synchronization started",
                ss.name()
            ),
        );
        out.count("triggersCreated", 0);
        return Ok(out);
    }

    // 1. A trigger creation still running: poll it.
    if let Some(h) = &state.trigger_operation {
        match arm.poll(h).await {
            Ok(LroStatus::Running { retry_after, .. }) => {
                out.summary = format!("trigger {} is still being created", h.resource);
                out.kind = ResultKind::Wait(poll_delay(Some(retry_after)));
                return Ok(out);
            }
            Ok(LroStatus::Done(_)) => {}
            Err(ArmError::OperationFailed(f)) => out.finding(
                "Critical",
                "trigger-failed",
                format!(
                    "creating trigger {} failed: {} {}",
                    h.resource, f.code, f.message
                ),
            ),
            Err(e) => return Err(arm_err(run, stage, "poll trigger creation", &h.resource, e)),
        }
        save_state(ctx, run, |st| st.trigger_operation = None).await?;
    }

    // 2. Triggers mirroring the provider's schedules.
    let (mut created, mut present) = (0u64, 0u64);
    match sub.schedule {
        ConsumerSchedule::None => out.finding(
            "Info",
            "schedule-none",
            "schedule = \"none\": no trigger created; synchronize by hand or with your own trigger",
        ),
        ConsumerSchedule::Provider => {
            let settings = arm
                .list_source_share_synchronization_settings(&ss)
                .await
                .map_err(|e| {
                    arm_err(run, stage, "list the provider's schedules", ss.as_str(), e)
                })?;
            let triggers = arm
                .list_triggers(&ss)
                .await
                .map_err(|e| arm_err(run, stage, "list triggers", ss.as_str(), e))?;
            let have: Vec<(RecurrenceInterval, OffsetDateTime, String)> = triggers
                .iter()
                .filter_map(|t| match &t.kind {
                    TriggerKind::ScheduleBased(p) => Some((
                        p.recurrence_interval.clone(),
                        p.synchronization_time,
                        t.name().unwrap_or_default().to_ascii_lowercase(),
                    )),
                    TriggerKind::Unknown { .. } => None,
                })
                .collect();
            let names: BTreeSet<String> = triggers
                .iter()
                .filter_map(|t| t.name().map(str::to_ascii_lowercase))
                .collect();
            let mode = state
                .primary
                .as_ref()
                .and_then(|s| s.trigger_mode.as_deref())
                .map(SynchronizationMode::parse);
            let wanted: Vec<(RecurrenceInterval, OffsetDateTime)> = settings
                .iter()
                .filter_map(|s| match &s.kind {
                    SourceShareSynchronizationSettingKind::ScheduleBased(p) => {
                        Some((p.recurrence_interval.clone()?, p.synchronization_time?))
                    }
                    SourceShareSynchronizationSettingKind::Unknown { .. } => None,
                })
                .collect();
            if wanted.is_empty() {
                out.finding(
                    "Warning",
                    "provider-schedule-missing",
                    format!(
                        "the provider's share behind {} has no snapshot schedule: no trigger created",
                        ss.name()
                    ),
                );
            }
            let mut free = (0..).map(|i: u32| {
                if i == 0 {
                    TRIGGER_NAME.to_owned()
                } else {
                    format!("{TRIGGER_NAME}-{i}")
                }
            });
            // Created by an earlier execution of this stage (it waited for the creation).
            let mut ours = state.triggers_created.clone();
            for (interval, at) in wanted {
                if let Some((.., name)) = have.iter().find(|(i, t, _)| *i == interval && *t == at) {
                    if ours.contains(name) {
                        created += 1;
                    } else {
                        present += 1;
                    }
                    continue;
                }
                let name = free
                    .by_ref()
                    .find(|n| !names.contains(&n.to_ascii_lowercase()))
                    .unwrap_or_else(|| TRIGGER_NAME.to_owned());
                if run.mode == Mode::Drill {
                    created += 1;
                    continue;
                }
                let tid = ss
                    .trigger(&name)
                    .map_err(|e| stage_err(run, stage, e.to_string(), false))?;
                let body = Trigger::schedule(interval.clone(), at, mode.clone());
                let started = arm
                    .start_put_trigger(&tid, &body)
                    .await
                    .map_err(|e| arm_err(run, stage, "create trigger", tid.as_str(), e))?;
                let lower = name.to_ascii_lowercase();
                if !ours.contains(&lower) {
                    ours.push(lower);
                }
                let pending = match started {
                    LroStart::Done(_) => None,
                    LroStart::Pending(h) => Some(h),
                };
                save_state(ctx, run, |st| {
                    st.triggers_created.clone_from(&ours);
                    if let Some(h) = &pending {
                        st.trigger_operation = Some(h.clone());
                    }
                })
                .await?;
                created += 1;
                match pending {
                    None => {}
                    Some(h) => {
                        let wait = poll_delay(h.retry_after());
                        out.count("triggersCreated", created);
                        out.count("triggersPresent", present);
                        out.summary = format!(
                            "trigger {name} ({} from {}) is being created",
                            interval,
                            rfc3339(at)
                        );
                        out.kind = ResultKind::Wait(wait);
                        return Ok(out);
                    }
                }
            }
        }
    }
    out.count(
        if run.mode == Mode::Drill {
            "wouldCreateTriggers"
        } else {
            "triggersCreated"
        },
        created,
    );
    out.count("triggersPresent", present);

    // 3. First synchronization.
    let mut sync_note = String::new();
    if sub.start_first_sync && run.mode != Mode::Drill {
        if !state.created_subscription {
            out.finding(
                "Info",
                "first-sync-not-needed",
                format!(
                    "{} existed before this run: no first synchronization started",
                    ss.name()
                ),
            );
        } else {
            match first_sync(ctx, arm, run, &ss, &mut out).await? {
                Some(wait) => {
                    out.summary = format!(
                        "{created} trigger(s) created, {present} present; first synchronization running"
                    );
                    out.kind = ResultKind::Wait(wait);
                    return Ok(out);
                }
                None => {
                    let st = load_state(ctx, run).await?;
                    let fs = st.first_sync.unwrap_or_default();
                    sync_note = format!(
                        "; first synchronization {} {}",
                        fs.synchronization_id.as_deref().unwrap_or("?"),
                        fs.status.as_deref().unwrap_or("started")
                    );
                }
            }
        }
    }
    out.summary = format!(
        "{} on {}: {created} trigger(s) {}, {present} already present{sync_note}",
        match sub.schedule {
            ConsumerSchedule::Provider => "provider schedule",
            ConsumerSchedule::None => "no schedule",
        },
        ss.name(),
        if run.mode == Mode::Drill {
            "would be created"
        } else {
            "created"
        }
    );
    Ok(out)
}

/// Drives the first synchronization one step; `Some(delay)` = still running, come back then.
async fn first_sync(
    ctx: &StageContext,
    arm: &ArmClient,
    run: &RunRecord,
    ss: &ShareSubscriptionId,
    out: &mut StageResult,
) -> Result<Option<Duration>, FailoverError> {
    let stage = Stage::CreateTriggers;
    let state = load_state(ctx, run).await?;
    let fs = state.first_sync.clone().unwrap_or_default();
    if fs.done {
        out.count("firstSyncs", 0);
        return Ok(None);
    }
    if let Some(h) = &fs.handle {
        let (status, id, failed) = match arm.poll(h).await {
            Ok(LroStatus::Running { retry_after, .. }) => {
                return Ok(Some(poll_delay(Some(retry_after))));
            }
            Ok(LroStatus::Done(v)) => {
                let sync = v.and_then(|v| {
                    serde_json::from_value::<crate::arm::models::ShareSubscriptionSynchronization>(
                        v,
                    )
                    .ok()
                });
                (
                    sync.as_ref()
                        .and_then(|s| s.status.clone())
                        .unwrap_or_else(|| "Succeeded".into()),
                    sync.map(|s| s.synchronization_id).filter(|s| !s.is_empty()),
                    None,
                )
            }
            Err(ArmError::OperationFailed(f)) => (
                "Failed".to_owned(),
                None,
                Some(format!("{} {}", f.code, f.message)),
            ),
            Err(e) => return Err(arm_err(run, stage, "poll synchronization", ss.as_str(), e)),
        };
        if let Some(msg) = failed {
            out.finding(
                "Warning",
                "first-sync-failed",
                format!("the first synchronization of {} failed: {msg}", ss.name()),
            );
        }
        save_state(ctx, run, |st| {
            let f = st.first_sync.get_or_insert_with(FirstSync::default);
            f.handle = None;
            f.done = true;
            f.status = Some(status.clone());
            if id.is_some() {
                f.synchronization_id = id.clone();
            }
        })
        .await?;
        return Ok(None);
    }
    let syncs = arm
        .list_share_subscription_synchronizations(ss, &ListQuery::default())
        .await
        .map_err(|e| arm_err(run, stage, "list synchronizations", ss.as_str(), e))?;
    if fs.requested && syncs.len() as u64 > fs.count_before {
        // Requested by a delivery that died before recording the answer: it was sent.
        let newest = syncs.iter().max_by_key(|s| s.start_time);
        let (id, status) = (
            newest.map(|s| s.synchronization_id.clone()),
            newest.and_then(|s| s.status.clone()),
        );
        save_state(ctx, run, |st| {
            let f = st.first_sync.get_or_insert_with(FirstSync::default);
            f.done = true;
            f.synchronization_id = id.clone();
            f.status = status.clone();
        })
        .await?;
        out.count("firstSyncs", 0);
        return Ok(None);
    }
    let count_before = syncs.len() as u64;
    save_state(ctx, run, |st| {
        st.first_sync = Some(FirstSync {
            count_before,
            requested: true,
            ..FirstSync::default()
        });
    })
    .await?;
    // A first copy into empty sinks is a full one (SQL sources only support full snapshots).
    // The POST is not idempotent (each one starts a snapshot): the client retries it only when
    // it was certainly not applied; after an ambiguous failure (sent, no answer) this observes
    // before anything posts again.
    let started = match arm
        .start_synchronize(ss, SynchronizationMode::FullSync)
        .await
    {
        Ok(s) => s,
        Err(e) if may_have_been_applied(&e) => {
            let syncs = arm
                .list_share_subscription_synchronizations(ss, &ListQuery::default())
                .await
                .map_err(|le| arm_err(run, stage, "list synchronizations", ss.as_str(), le))?;
            if syncs.len() as u64 <= count_before {
                // Not applied: the error goes to the queue's retry; the next delivery observes
                // again (`requested`) and only then posts again.
                return Err(arm_err(run, stage, "start synchronization", ss.as_str(), e));
            }
            tracing::info!(
                event = "consumer.first-sync-observed",
                share_subscription = %ss,
                error = %e,
                "the synchronization's answer was lost, but it was started; not posted again"
            );
            let newest = syncs.iter().max_by_key(|s| s.start_time);
            let (id, status) = (
                newest.map(|s| s.synchronization_id.clone()),
                newest.and_then(|s| s.status.clone()),
            );
            save_state(ctx, run, |st| {
                let f = st.first_sync.get_or_insert_with(FirstSync::default);
                f.done = true;
                f.synchronization_id = id.clone();
                f.status = status.clone();
            })
            .await?;
            out.count("firstSyncs", 1);
            return Ok(None);
        }
        Err(e) => return Err(arm_err(run, stage, "start synchronization", ss.as_str(), e)),
    };
    out.count("firstSyncs", 1);
    match started {
        LroStart::Done(v) => {
            let sync = v.and_then(|v| {
                serde_json::from_value::<crate::arm::models::ShareSubscriptionSynchronization>(v)
                    .ok()
            });
            save_state(ctx, run, |st| {
                let f = st.first_sync.get_or_insert_with(FirstSync::default);
                f.done = true;
                f.synchronization_id = sync.as_ref().map(|s| s.synchronization_id.clone());
                f.status = sync.as_ref().and_then(|s| s.status.clone());
            })
            .await?;
            Ok(None)
        }
        LroStart::Pending(h) => {
            let wait = poll_delay(h.retry_after());
            save_state(ctx, run, |st| {
                let f = st.first_sync.get_or_insert_with(FirstSync::default);
                f.handle = Some(h.clone());
            })
            .await?;
            Ok(Some(wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm::models::{AdlsGen2FileMappingProperties, KustoMappingProperties};

    fn adls(account: &str) -> DataSetMapping {
        DataSetMapping::new(DataSetMappingKind::AdlsGen2File(
            AdlsGen2FileMappingProperties {
                data_set_id: "old".into(),
                file_system: "fs".into(),
                file_path: "in/00.parquet".into(),
                subscription_id: "11111111-0000-0000-0000-000000000000".into(),
                resource_group: "rg-c-weu".into(),
                storage_account_name: account.into(),
                data_set_mapping_status: Some(crate::arm::models::DataSetMappingStatus::Ok),
                ..Default::default()
            },
        ))
    }

    #[test]
    fn a_storage_mapping_is_retargeted_with_path_kept_and_read_only_fields_cleared() {
        let m = adls("sinkweu");
        let (kind, sink) = mapping_sink(&m).expect("sink");
        assert_eq!(kind, StoreKind::Storage);
        assert!(sink.as_str().ends_with("/storageAccounts/sinkweu"));
        let target = ResourceId::parse(
            "/subscriptions/11111111-0000-0000-0000-000000000000/resourceGroups/rg-c-neu/providers/Microsoft.Storage/storageAccounts/sinkneu",
        )
        .expect("id");
        let out = retarget_mapping(&m, &target, "new-ds").expect("retargeted");
        match out.kind {
            DataSetMappingKind::AdlsGen2File(p) => {
                assert_eq!(p.storage_account_name, "sinkneu");
                assert_eq!(p.resource_group, "rg-c-neu");
                assert_eq!(p.file_path, "in/00.parquet");
                assert_eq!(p.data_set_id, "new-ds");
                assert_eq!(p.data_set_mapping_status, None);
            }
            other => panic!("kind changed: {other:?}"),
        }
    }

    #[test]
    fn a_sink_of_the_wrong_type_is_refused() {
        let m = DataSetMapping::new(DataSetMappingKind::KustoTable(KustoMappingProperties {
            data_set_id: "x".into(),
            kusto_cluster_resource_id:
                "/subscriptions/s/resourceGroups/r/providers/Microsoft.Kusto/clusters/kweu".into(),
            ..Default::default()
        }));
        assert_eq!(mapping_sink(&m).map(|(k, _)| k), Some(StoreKind::Kusto));
        let storage = ResourceId::parse(
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/a",
        )
        .expect("id");
        assert!(retarget_mapping(&m, &storage, "d").is_none());
        assert!(
            retarget_mapping(
                &adls("a"),
                &ResourceId::parse(
                    "/subscriptions/s/resourceGroups/r/providers/Microsoft.Kusto/clusters/k"
                )
                .expect("id"),
                "d"
            )
            .is_none()
        );
    }

    #[test]
    fn the_consumer_state_round_trips_through_the_run_record_json() {
        let st = ConsumerState {
            share_subscription: Some("/subscriptions/s/resourceGroups/r/providers/Microsoft.DataShare/accounts/a/shareSubscriptions/x".into()),
            created_subscription: true,
            first_sync: Some(FirstSync {
                count_before: 2,
                requested: true,
                ..FirstSync::default()
            }),
            ..ConsumerState::default()
        };
        let j = serde_json::to_string(&st).unwrap_or_default();
        assert!(j.contains("\"createdSubscription\":true"), "{j}");
        let back: ConsumerState = serde_json::from_str(&j).unwrap_or_default();
        assert_eq!(back, st);
    }

    #[test]
    fn invitation_matching_ignores_unknown_tenants_and_compares_known_ones() {
        assert!(eq_opt(None, Some("x")));
        assert!(eq_opt(Some("Contoso"), Some("contoso")));
        assert!(!eq_opt(Some("Contoso"), Some("Fabrikam")));
    }
}
