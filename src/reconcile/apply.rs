//! APPLY: execute a plan against the secondary account, and `replicate` = observe → plan → apply.
//!
//! Guarantees:
//! - Order and dependencies come from [`schedule::run`](super::schedule::run): account, then
//!   shares, data sets, synchronization settings, invitations; children of a share that could not
//!   be created are skipped. Up to `concurrency` changes run at once inside a phase, and every
//!   call goes through the client's rate limiter and concurrency cap.
//! - Idempotent: PUTs are upserts; a 404 on DELETE counts as done; a replacement deletes (waiting
//!   for the long-running delete) before it creates; a 409 on a create means "observe again":
//!   the item is re-listed and the change counts as done when the secondary already holds what
//!   was wanted (for an invitation: a pending or accepted one for the same target — never a
//!   second e-mail).
//! - An invitation PUT is sent once per attempt and, after an answer that was lost (dropped
//!   connection, timeout, 5xx), only after listing the share's invitations shows it did not land
//!   ([`put_invitation_observed`]): every PUT e-mails the consumer.
//! - Every change gets its own `x-ms-correlation-request-id`, kept in its result.
//!
//! Must not import: `handlers`, `host`.

use time::OffsetDateTime;

use crate::arm::client::ArmClient;
use crate::arm::error::ArmError;
use crate::arm::fault::{Failure, ToolFault, classify};
use crate::arm::id::{AccountId, IdError, ShareId};
use crate::arm::models::Account;
use crate::config::dr::{DrConfig, Pair};

use super::convert::{
    dataset_body, dataset_spec, invitation_body, schedule_body, schedule_spec, share_body,
    target_of,
};
use super::diff::plan;
use super::invite::put_invitation_observed;
use super::model::{DataSetSpec, Name, Target};
use super::observe::{
    AccountObservation, ObserveError, ObserveOptions, PairObservation, observe_pair,
};
use super::pair::{ConfiguredPair, plan_options};
use super::plan::{Change, Plan};
use super::report::{ArmCalls, ChangeResult, Outcome, PairReport, ReplicateReport};
use super::schedule::{self, Progress};

/// Errors of applying one change.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{action} {address}")]
    Arm {
        action: &'static str,
        address: String,
        #[source]
        source: Box<ArmError>,
    },
    #[error("building the resource id of {address}")]
    BadId {
        address: String,
        #[source]
        source: IdError,
    },
    #[error("{address}: a data set of kind {kind} cannot be written")]
    Unwritable { address: String, kind: String },
    #[error("{address}: still in conflict after observing again ({detail})")]
    Conflict { address: String, detail: String },
    /// A data set PUT answered 403 (issue 15): the app identity lacks a right that Azure Data
    /// Share requires of whoever adds a data set. A tool fault, never a sign of an outage.
    #[error(
        "tool fault (authorization), not a region outage: {action} {address} was refused (403): \
         {right}; see docs/deploy.md \"Roles\""
    )]
    MissingRight {
        action: &'static str,
        address: String,
        right: String,
        #[source]
        source: Box<ArmError>,
    },
}

impl ApplyError {
    fn correlation_id(&self) -> Option<String> {
        match self {
            ApplyError::Arm { source, .. } | ApplyError::MissingRight { source, .. } => {
                source.correlation_id().map(str::to_string)
            }
            _ => None,
        }
    }
}

/// Full error text with its causes, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn arm(action: &'static str, c: &Change) -> impl FnOnce(ArmError) -> ApplyError {
    let address = c.address();
    move |source| ApplyError::Arm {
        action,
        address,
        source: Box::new(source),
    }
}

/// The right a 403 on a data set PUT says is missing: ARM's own `AuthorizationFailed` names a
/// `Microsoft.DataShare/…` action when the operator role on the secondary account is missing;
/// otherwise Data Share refused the caller's rights on the data store the data set points at.
fn missing_right(spec: &DataSetSpec, err: &ArmError) -> String {
    if let ArmError::Api(a) = err
        && a.message
            .to_ascii_lowercase()
            .contains("microsoft.datashare/")
    {
        return "the app identity needs `Microsoft.DataShare/accounts/shares/dataSets/write` on \
                the secondary Data Share account (the `datashare-dr provider operator` role)"
            .to_string();
    }
    let store = |what: &str, id: String, action: &str, role: &str| {
        format!(
            "the app identity needs `{action}`{role} on {what} {id}: Azure Data Share requires \
             write permission on the data store from whoever adds a data set"
        )
    };
    match spec {
        DataSetSpec::Blob { store: s, .. }
        | DataSetSpec::BlobFolder { store: s, .. }
        | DataSetSpec::Container { store: s, .. }
        | DataSetSpec::AdlsGen2File { store: s, .. }
        | DataSetSpec::AdlsGen2Folder { store: s, .. }
        | DataSetSpec::AdlsGen2FileSystem { store: s, .. } => store(
            "store",
            s.resource_id(),
            "Microsoft.Storage/storageAccounts/write",
            " (the `datashare-dr store linker` role with infra parameter \
             `storeWriteForDataSetCreation = true`, or the Storage Blob Data Contributor / Owner \
             role)",
        ),
        DataSetSpec::AdlsGen1File { account: a, .. }
        | DataSetSpec::AdlsGen1Folder { account: a, .. } => store(
            "Data Lake Store",
            format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.DataLakeStore/accounts/{}",
                a.subscription_id, a.resource_group, a.account_name
            ),
            "Microsoft.DataLakeStore/accounts/write",
            "",
        ),
        DataSetSpec::KustoCluster {
            kusto_cluster_resource_id: id,
        } => store(
            "Kusto cluster",
            id.to_string(),
            "Microsoft.Kusto/clusters/write",
            "",
        ),
        DataSetSpec::KustoDatabase {
            kusto_database_resource_id: id,
        }
        | DataSetSpec::KustoTable {
            kusto_database_resource_id: id,
            ..
        } => store(
            "Kusto database",
            id.to_string(),
            "Microsoft.Kusto/clusters/write",
            "",
        ),
        DataSetSpec::SqlDbTable {
            sql_server_resource_id: id,
            ..
        }
        | DataSetSpec::SqlDwTable {
            sql_server_resource_id: id,
            ..
        } => store(
            "SQL server",
            id.to_string(),
            "Microsoft.Sql/servers/databases/write",
            "",
        ),
        DataSetSpec::SynapseWorkspaceSqlPoolTable {
            synapse_workspace_sql_pool_table_resource_id: id,
        } => store(
            "Synapse SQL pool table",
            id.to_string(),
            "Microsoft.Synapse/workspaces/sqlPools/write",
            "",
        ),
        DataSetSpec::Unknown { original_kind, .. } => format!(
            "the app identity lacks the write right on the data store of this {original_kind} \
             data set that Azure Data Share requires from whoever adds a data set"
        ),
    }
}

/// [`arm`] for a data set PUT: a 403 ([`classify`]: authorization tool fault) names the
/// missing right ([`ApplyError::MissingRight`]).
fn put_dataset_error(c: &Change, spec: &DataSetSpec) -> impl FnOnce(ArmError) -> ApplyError {
    let address = c.address();
    let spec = spec.clone();
    move |source| {
        if classify(&source) == Failure::ToolFault(ToolFault::Authorization) {
            ApplyError::MissingRight {
                action: "put",
                right: missing_right(&spec, &source),
                address,
                source: Box::new(source),
            }
        } else {
            ApplyError::Arm {
                action: "put",
                address,
                source: Box::new(source),
            }
        }
    }
}

fn ok_if_gone(r: Result<(), ArmError>) -> Result<(), ArmError> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

fn share_id(secondary: &AccountId, share: &Name, c: &Change) -> Result<ShareId, ApplyError> {
    secondary
        .share(share.as_str())
        .map_err(|source| ApplyError::BadId {
            address: c.address(),
            source,
        })
}

fn bad_id(c: &Change) -> impl FnOnce(IdError) -> ApplyError {
    let address = c.address();
    move |source| ApplyError::BadId { address, source }
}

async fn execute(client: &ArmClient, secondary: &AccountId, c: &Change) -> Result<(), ApplyError> {
    match c {
        Change::CreateAccount { spec } => {
            let body = Account::new(&spec.location, Some(spec.tags.clone()));
            client
                .create_account(secondary, &body)
                .await
                .map_err(arm("create", c))?;
        }
        Change::CreateShare { share, props }
        | Change::UpdateShare {
            share,
            after: props,
            ..
        } => {
            let id = share_id(secondary, share, c)?;
            client
                .put_share(&id, &share_body(props))
                .await
                .map_err(arm("put", c))?;
        }
        Change::DeleteShare { share } => {
            let id = share_id(secondary, share, c)?;
            ok_if_gone(client.delete_share(&id).await).map_err(arm("delete", c))?;
        }
        Change::CreateDataSet {
            share,
            dataset,
            spec,
        }
        | Change::ReplaceDataSet {
            share,
            dataset,
            after: spec,
            ..
        } => {
            let id = share_id(secondary, share, c)?
                .data_set(dataset.as_str())
                .map_err(bad_id(c))?;
            let body = dataset_body(spec).ok_or_else(|| ApplyError::Unwritable {
                address: c.address(),
                kind: spec.kind().to_string(),
            })?;
            if matches!(c, Change::ReplaceDataSet { .. }) {
                ok_if_gone(client.delete_dataset(&id).await).map_err(arm("delete", c))?;
            }
            match client.put_dataset(&id, &body).await {
                Ok(_) => {}
                Err(e) if e.is_conflict() => {
                    // Observe again: maybe it is there already (a retried create), maybe a
                    // different data set holds the name and must be replaced.
                    let sid = share_id(secondary, share, c)?;
                    let now = client.list_datasets(&sid).await.map_err(arm("list", c))?;
                    let existing = now
                        .iter()
                        .find(|d| d.name().is_some_and(|n| Name::from(n) == *dataset));
                    match existing {
                        Some(d) if dataset_spec(d) == *spec => {}
                        Some(_) => {
                            ok_if_gone(client.delete_dataset(&id).await)
                                .map_err(arm("delete", c))?;
                            client
                                .put_dataset(&id, &body)
                                .await
                                .map_err(put_dataset_error(c, spec))?;
                        }
                        None => {
                            return Err(ApplyError::Conflict {
                                address: c.address(),
                                detail: chain(&e),
                            });
                        }
                    }
                }
                Err(e) => return Err(put_dataset_error(c, spec)(e)),
            }
        }
        Change::DeleteDataSet { share, dataset } => {
            let id = share_id(secondary, share, c)?
                .data_set(dataset.as_str())
                .map_err(bad_id(c))?;
            ok_if_gone(client.delete_dataset(&id).await).map_err(arm("delete", c))?;
        }
        Change::CreateSyncSetting {
            share,
            setting,
            spec,
        }
        | Change::ReplaceSyncSetting {
            share,
            setting,
            after: spec,
            ..
        } => {
            let id = share_id(secondary, share, c)?
                .synchronization_setting(setting.as_str())
                .map_err(bad_id(c))?;
            let body = schedule_body(spec);
            if matches!(c, Change::ReplaceSyncSetting { .. }) {
                ok_if_gone(client.delete_synchronization_setting(&id).await)
                    .map_err(arm("delete", c))?;
            }
            match client.put_synchronization_setting(&id, &body).await {
                Ok(_) => {}
                Err(e) if e.is_conflict() => {
                    let sid = share_id(secondary, share, c)?;
                    let now = client
                        .list_synchronization_settings(&sid)
                        .await
                        .map_err(arm("list", c))?;
                    let existing = now
                        .iter()
                        .find(|s| s.name().is_some_and(|n| Name::from(n) == *setting));
                    match existing {
                        Some(s) if schedule_spec(s).as_ref() == Some(spec) => {}
                        Some(_) => {
                            ok_if_gone(client.delete_synchronization_setting(&id).await)
                                .map_err(arm("delete", c))?;
                            client
                                .put_synchronization_setting(&id, &body)
                                .await
                                .map_err(arm("put", c))?;
                        }
                        None => {
                            return Err(ApplyError::Conflict {
                                address: c.address(),
                                detail: chain(&e),
                            });
                        }
                    }
                }
                Err(e) => return Err(arm("put", c)(e)),
            }
        }
        Change::DeleteSyncSetting { share, setting } => {
            let id = share_id(secondary, share, c)?
                .synchronization_setting(setting.as_str())
                .map_err(bad_id(c))?;
            ok_if_gone(client.delete_synchronization_setting(&id).await)
                .map_err(arm("delete", c))?;
        }
        Change::CreateInvitation {
            share,
            invitation,
            spec,
        } => {
            let sid = share_id(secondary, share, c)?;
            let id = sid.invitation(invitation.as_str()).map_err(bad_id(c))?;
            // One PUT per attempt, listing before any repeat: a PUT whose answer was lost may
            // have been applied, and every PUT sends the consumer an e-mail.
            let sent = put_invitation_observed(
                client,
                &sid,
                &id,
                &invitation_body(spec),
                &spec.target,
                OffsetDateTime::now_utc(),
            )
            .await;
            match sent {
                Ok(()) => {}
                Err(e) if e.is_conflict() => {
                    let now = client
                        .list_invitations(&sid)
                        .await
                        .map_err(arm("list", c))?;
                    let covered = now.iter().any(|i| {
                        let same: Option<Target> = i.target().map(|t| target_of(&t));
                        same.as_ref() == Some(&spec.target)
                            && matches!(
                                i.properties.invitation_status.as_ref().map(|s| s.as_str()),
                                None | Some("Pending") | Some("Accepted")
                            )
                    });
                    if !covered {
                        return Err(ApplyError::Conflict {
                            address: c.address(),
                            detail: chain(&e),
                        });
                    }
                }
                Err(e) => return Err(arm("put", c)(e)),
            }
        }
    }
    Ok(())
}

/// Apply one change; never fails: the outcome is in the result.
pub async fn apply_change(
    client: &ArmClient,
    secondary: &AccountId,
    change: Change,
) -> ChangeResult {
    let correlation = uuid::Uuid::new_v4().to_string();
    let c = client.with_correlation_id(correlation.clone());
    match execute(&c, secondary, &change).await {
        Ok(()) => ChangeResult {
            change,
            outcome: Outcome::Ok,
            error: None,
            correlation_id: Some(correlation),
            pending: None,
        },
        Err(e) => {
            let pending = match &e {
                ApplyError::Arm { source, .. } => source.pending_operation().cloned(),
                _ => None,
            };
            if pending.is_some() {
                tracing::info!(change = %change.address(), "change still running; handed over");
            } else {
                tracing::warn!(change = %change.address(), error = %chain(&e), "change failed");
            }
            ChangeResult {
                correlation_id: e.correlation_id().or(Some(correlation)),
                error: Some(chain(&e)),
                outcome: Outcome::Failed,
                change,
                pending,
            }
        }
    }
}

/// Execute `plan` against `secondary`, `concurrency` changes at a time per phase.
pub async fn apply(
    client: &ArmClient,
    secondary: &AccountId,
    plan: &Plan,
    concurrency: usize,
    progress: Progress<'_>,
) -> Vec<ChangeResult> {
    apply_gated(client, secondary, plan, concurrency, progress, None).await
}

/// [`apply`] that asks `gate` before each level of writes (account, shares, data sets,
/// synchronization settings, invitations) whether the pair is still `normal`; once it is not,
/// every change of that level and after is skipped with the gate's reason.
pub async fn apply_gated(
    client: &ArmClient,
    secondary: &AccountId,
    plan: &Plan,
    concurrency: usize,
    progress: Progress<'_>,
    gate: Option<&crate::pair_state::PhaseGate<'_>>,
) -> Vec<ChangeResult> {
    schedule::run(
        plan.changes.clone(),
        concurrency,
        |c| async move {
            if let Some(g) = gate
                && let Some(why) = g.check(&format!("{:?}", c.phase())).await
            {
                return ChangeResult {
                    change: c,
                    outcome: Outcome::Skipped,
                    error: Some(why),
                    correlation_id: None,
                    pending: None,
                };
            }
            apply_change(client, secondary, c).await
        },
        progress,
    )
    .await
}

/// Observe both accounts of `pair` and plan (no writes). Returns the observation too, so a
/// caller (readiness, failover) can reuse it.
pub async fn plan_pair(
    client: &ArmClient,
    pair: &Pair,
    prune: bool,
    now: OffsetDateTime,
    concurrency: usize,
) -> Result<(PairObservation, Plan), ObserveError> {
    let selects = |n: &str| pair.selects(n);
    let obs = observe_pair(
        client,
        &pair.primary,
        &pair.secondary,
        &selects,
        &ObserveOptions {
            concurrency,
            read_account: false,
        },
    )
    .await?;
    let (primary, mut findings) = obs.primary.model();
    let primary = primary.unwrap_or_default();
    let (secondary, _) = obs.secondary.model();
    let rules = ConfiguredPair(pair);
    let mut p = plan(
        &primary,
        secondary.as_ref(),
        &rules,
        &plan_options(pair, prune, now),
    );
    findings.append(&mut p.findings);
    p.findings = findings;
    Ok((obs, p.sorted()))
}

/// Options of [`replicate`].
#[derive(Debug, Clone, Copy)]
pub struct ReplicateOptions {
    /// Plan only; write nothing.
    pub dry_run: bool,
    /// Delete extra secondary items (also when the pair says `prune = "delete"`).
    pub prune: bool,
    /// Shares observed / changes applied at once.
    pub concurrency: usize,
    pub now: OffsetDateTime,
}

/// Replicate one pair: observe → plan → apply (unless a dry run). Never fails: an observation
/// error is reported in [`PairReport::error`].
pub async fn replicate(
    client: &ArmClient,
    pair: &Pair,
    opts: &ReplicateOptions,
    progress: Progress<'_>,
) -> PairReport {
    let before = client.stats();
    let mut report = PairReport::new(
        &pair.name,
        pair.primary.as_str(),
        pair.secondary.as_str(),
        opts.dry_run,
    );
    match plan_pair(client, pair, opts.prune, opts.now, opts.concurrency).await {
        Err(e) => {
            tracing::warn!(pair = %pair.name, error = %chain(&e), "observation failed");
            report.error = Some(chain(&e));
        }
        Ok((obs, plan)) => {
            report.secondary_exists = obs.secondary != AccountObservation::Missing;
            if !opts.dry_run {
                report.results =
                    apply(client, &pair.secondary, &plan, opts.concurrency, progress).await;
            }
            report.plan = plan;
        }
    }
    let after = client.stats();
    report.arm_calls = Some(ArmCalls {
        reads: after.reads.saturating_sub(before.reads),
        writes: after.writes.saturating_sub(before.writes),
        deletes: after.deletes.saturating_sub(before.deletes),
    });
    report
}

/// `--pair` / `{pair}` names no configured pair.
#[derive(Debug, thiserror::Error)]
#[error("pair {name:?} is not configured (pairs: {known})")]
pub struct UnknownPair {
    pub name: String,
    pub known: String,
}

/// Replicate every pair of `cfg` (or only `only`), one pair after the other — the one domain
/// call of the `ReplicateConfig` timer and the `ReplicateNow` HTTP function (`dryRun` = plan
/// only). Serialise the report for the JSON answer.
pub async fn replicate_config(
    client: &ArmClient,
    cfg: &DrConfig,
    only: Option<&str>,
    opts: &ReplicateOptions,
    progress: Progress<'_>,
) -> Result<ReplicateReport, UnknownPair> {
    let pairs: Vec<&Pair> = match only {
        Some(name) => match cfg.pair(name) {
            Some(p) => vec![p],
            None => {
                return Err(UnknownPair {
                    name: name.to_string(),
                    known: cfg
                        .pairs
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        },
        None => cfg.pairs.iter().collect(),
    };
    let mut report = ReplicateReport::default();
    for pair in pairs {
        report
            .pairs
            .push(replicate(client, pair, opts, progress).await);
    }
    Ok(report)
}
