//! Diff: compare the primary and secondary models and produce the [`Plan`].
//!
//! Job: the whole decision of what replication does, as a pure function
//! [`plan`]`(primary, secondary, rules, options) -> Plan`.
//!
//! Invariants (each has a test below):
//! - Only shares the pair selects are considered; secondary shares outside the selection are
//!   left alone entirely.
//! - Every primary data set goes through store mapping; unmapped/retired/unknown ones are
//!   findings and their secondary namesake (if any) is left untouched, even when pruning.
//! - A changed data set or schedule is a replace (delete + create), a changed description or
//!   terms an update; a changed `shareKind` is a finding (no in-place change exists).
//! - Extra secondary shares / data sets / settings: findings, or deletions when pruning.
//! - Invitations (policy `now` for that consumer): one per active primary consumer — an `Active`,
//!   unexpired provider share subscription, or a `Pending`, unexpired invitation — whose target
//!   (same form: email vs tenant+object) has no pending (unexpired) or accepted invitation and no
//!   active subscription on the secondary share. Email targets compare case-insensitively.
//!   Rejected invitations and revoked secondary subscriptions are findings, never re-invited
//!   automatically (an invitation sends e-mail). The expiry copied is the primary's.
//!
//! Must not import: `arm`, `config`, IO.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::mapping::{Mapped, StoreRules, map_dataset};
use super::model::{
    AccountModel, CiString, InvitationStatus, Name, ShareModel, SubscriptionStatus, Target,
};
use super::plan::{AccountSpec, Change, Finding, FindingCode, NewInvitation, Plan};

/// Invitation policy for a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationPolicy {
    /// Invite on the secondary now (consumers hold an idle subscription there).
    Now,
    /// Invite only when failing over.
    AtFailover,
}

/// The pair's rules, as the pure planner needs them (implemented over the DR config by the
/// caller; tests implement it directly).
pub trait PairRules {
    /// Does the pair replicate this share?
    fn selects(&self, share: &str) -> bool;
    /// Store mapping rules.
    fn stores(&self) -> &dyn StoreRules;
    /// Invitation policy for this consumer (pair default with per-consumer overrides).
    fn invitation_policy(&self, target: &Target) -> InvitationPolicy;
}

/// Knobs of one planning run.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Delete extra secondary shares / data sets / settings (else: findings).
    pub prune: bool,
    /// Create the secondary account when it is missing (from `create_secondary`).
    pub create_account: Option<AccountSpec>,
    /// "Now", to tell expired invitations/subscriptions from live ones.
    pub now: OffsetDateTime,
}

/// Plan the changes that make `secondary` (or a missing secondary, `None`) match `primary`.
pub fn plan(
    primary: &AccountModel,
    secondary: Option<&AccountModel>,
    rules: &dyn PairRules,
    opts: &PlanOptions,
) -> Plan {
    let mut out = Plan::default();
    let empty = AccountModel::default();
    let secondary = match secondary {
        Some(s) => s,
        None => match &opts.create_account {
            Some(spec) => {
                out.changes
                    .push(Change::CreateAccount { spec: spec.clone() });
                &empty
            }
            None => {
                out.findings.push(Finding::new(
                    FindingCode::SecondaryAccountMissing,
                    None,
                    None,
                    "the secondary Data Share account does not exist and `create_secondary` is \
                     not configured for this pair; nothing can be replicated",
                ));
                return out.sorted();
            }
        },
    };

    for (name, p_share) in &primary.shares {
        if !rules.selects(name.as_str()) {
            continue;
        }
        match secondary.shares.get(name) {
            None => {
                out.changes.push(Change::CreateShare {
                    share: name.clone(),
                    props: p_share.props.clone(),
                });
                let blank = ShareModel::new(p_share.props.clone());
                diff_children(name, p_share, &blank, rules, opts, &mut out);
            }
            Some(s_share) => {
                if s_share.props.kind != p_share.props.kind {
                    out.findings.push(Finding::new(
                        FindingCode::ShareKindDiffers,
                        Some(name.as_str()),
                        None,
                        format!(
                            "share {name} is {} on the primary but {} on the secondary; a share's \
                             kind cannot be changed — delete the secondary share (replicate \
                             --prune does not) and replicate again",
                            p_share.props.kind.as_str(),
                            s_share.props.kind.as_str()
                        ),
                    ));
                    continue;
                }
                if s_share.props != p_share.props {
                    out.changes.push(Change::UpdateShare {
                        share: name.clone(),
                        before: s_share.props.clone(),
                        after: p_share.props.clone(),
                    });
                }
                diff_children(name, p_share, s_share, rules, opts, &mut out);
            }
        }
    }

    for name in secondary.shares.keys() {
        if !rules.selects(name.as_str()) || primary.shares.contains_key(name) {
            continue;
        }
        if opts.prune {
            out.changes.push(Change::DeleteShare {
                share: name.clone(),
            });
        } else {
            out.findings.push(Finding::new(
                FindingCode::ExtraShare,
                Some(name.as_str()),
                None,
                format!(
                    "share {name} exists on the secondary but not on the primary (left alone; \
                     --prune deletes it)"
                ),
            ));
        }
    }
    out.sorted()
}

fn diff_children(
    share: &Name,
    p: &ShareModel,
    s: &ShareModel,
    rules: &dyn PairRules,
    opts: &PlanOptions,
    out: &mut Plan,
) {
    // Data sets.
    for (ds, p_spec) in &p.datasets {
        match map_dataset(rules.stores(), share.as_str(), ds.as_str(), p_spec) {
            Mapped::Skipped(f) => out.findings.push(f),
            Mapped::Spec(want) => match s.datasets.get(ds) {
                None => out.changes.push(Change::CreateDataSet {
                    share: share.clone(),
                    dataset: ds.clone(),
                    spec: want,
                }),
                Some(have) if *have == want => {}
                Some(have) => out.changes.push(Change::ReplaceDataSet {
                    share: share.clone(),
                    dataset: ds.clone(),
                    before: have.clone(),
                    after: want,
                }),
            },
        }
    }
    for ds in s.datasets.keys() {
        if p.datasets.contains_key(ds) {
            continue;
        }
        if opts.prune {
            out.changes.push(Change::DeleteDataSet {
                share: share.clone(),
                dataset: ds.clone(),
            });
        } else {
            out.findings.push(Finding::new(
                FindingCode::ExtraDataSet,
                Some(share.as_str()),
                Some(&format!("{share}/{ds}")),
                format!(
                    "data set {share}/{ds} exists on the secondary but not on the primary (left \
                     alone; --prune deletes it)"
                ),
            ));
        }
    }

    // Synchronization settings.
    for (name, want) in &p.sync_settings {
        match s.sync_settings.get(name) {
            None => out.changes.push(Change::CreateSyncSetting {
                share: share.clone(),
                setting: name.clone(),
                spec: want.clone(),
            }),
            Some(have) if have == want => {}
            Some(have) => out.changes.push(Change::ReplaceSyncSetting {
                share: share.clone(),
                setting: name.clone(),
                before: have.clone(),
                after: want.clone(),
            }),
        }
    }
    for name in s.sync_settings.keys() {
        if p.sync_settings.contains_key(name) {
            continue;
        }
        if opts.prune {
            out.changes.push(Change::DeleteSyncSetting {
                share: share.clone(),
                setting: name.clone(),
            });
        } else {
            out.findings.push(Finding::new(
                FindingCode::ExtraSyncSetting,
                Some(share.as_str()),
                Some(&format!("{share}/{name}")),
                format!(
                    "synchronization setting {share}/{name} exists on the secondary but not on \
                     the primary (left alone; --prune deletes it)"
                ),
            ));
        }
    }

    plan_invitations(share, p, s, rules, opts, out);
}

fn live(expiration: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    expiration.is_none_or(|e| e > now)
}

/// Active consumers of the primary share, one entry per target, in a stable order.
fn primary_consumers(
    share: &Name,
    p: &ShareModel,
    now: OffsetDateTime,
    out: &mut Plan,
) -> BTreeMap<Target, NewInvitation> {
    let mut want: BTreeMap<Target, NewInvitation> = BTreeMap::new();
    for c in &p.consumers {
        if c.status != SubscriptionStatus::Active || !live(c.expiration, now) {
            continue;
        }
        match &c.target {
            Some(t) => {
                want.entry(t.clone()).or_insert_with(|| NewInvitation {
                    target: t.clone(),
                    expiration: c.expiration,
                    reason: "active subscription on the primary share".into(),
                });
            }
            None if !c.candidates.is_empty() => out.findings.push(Finding::new(
                FindingCode::ConsumerAmbiguous,
                Some(share.as_str()),
                None,
                format!(
                    "active consumer {} of share {share} matches {} invitations ({}); it is \
                     neither invited again nor dropped: make sure the secondary share invites the \
                     right one by hand",
                    c.display,
                    c.candidates.len(),
                    c.candidates
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            None => out.findings.push(Finding::new(
                FindingCode::ConsumerUnresolved,
                Some(share.as_str()),
                None,
                format!(
                    "active consumer {} of share {share} has no known email or tenant+object id \
                     (its invitation is gone from the primary); invite it on the secondary by hand",
                    c.display
                ),
            )),
        }
    }
    for i in &p.invitations {
        if i.status != InvitationStatus::Pending || !live(i.expiration, now) {
            continue;
        }
        want.entry(i.target.clone())
            .or_insert_with(|| NewInvitation {
                target: i.target.clone(),
                expiration: i.expiration,
                reason: "pending invitation on the primary share".into(),
            });
    }
    want
}

fn plan_invitations(
    share: &Name,
    p: &ShareModel,
    s: &ShareModel,
    rules: &dyn PairRules,
    opts: &PlanOptions,
    out: &mut Plan,
) {
    let want = primary_consumers(share, p, opts.now, out);
    for (target, inv) in want {
        if rules.invitation_policy(&target) != InvitationPolicy::Now {
            continue;
        }
        let covered_by_invitation = s.invitations.iter().any(|i| {
            i.target == target
                && match i.status {
                    InvitationStatus::Accepted => true,
                    InvitationStatus::Pending => live(i.expiration, opts.now),
                    _ => false,
                }
        });
        let covered_by_subscription = s.consumers.iter().any(|c| {
            c.target.as_ref() == Some(&target)
                && c.status == SubscriptionStatus::Active
                && live(c.expiration, opts.now)
        });
        if covered_by_invitation || covered_by_subscription {
            continue;
        }
        if s.invitations
            .iter()
            .any(|i| i.target == target && i.status == InvitationStatus::Rejected)
        {
            out.findings.push(Finding::new(
                FindingCode::InvitationRejected,
                Some(share.as_str()),
                None,
                format!(
                    "{target} rejected the invitation to secondary share {share}; not re-invited \
                     automatically — delete the rejected invitation to have it sent again"
                ),
            ));
            continue;
        }
        if s.consumers.iter().any(|c| {
            c.target.as_ref() == Some(&target)
                && matches!(
                    c.status,
                    SubscriptionStatus::Revoked | SubscriptionStatus::Revoking
                )
        }) {
            out.findings.push(Finding::new(
                FindingCode::ConsumerRevokedOnSecondary,
                Some(share.as_str()),
                None,
                format!(
                    "{target}'s subscription to secondary share {share} is revoked; not \
                     re-invited — reinstate it if that was a mistake"
                ),
            ));
            continue;
        }
        out.changes.push(Change::CreateInvitation {
            share: share.clone(),
            invitation: invitation_name(&target, inv.expiration),
            spec: inv,
        });
    }
}

/// Deterministic invitation name for a target and expiry: a retried or repeated PUT upserts the
/// same invitation instead of mailing a second one; a new expiry (the old invitation expired)
/// gives a new name.
pub fn invitation_name(target: &Target, expiration: Option<OffsetDateTime>) -> Name {
    let mut h = Sha256::new();
    match target {
        Target::Email(e) => {
            h.update(b"email:");
            h.update(e.key().as_bytes());
        }
        Target::Tenant {
            tenant_id,
            object_id,
        } => {
            h.update(b"tenant:");
            h.update(tenant_id.key().as_bytes());
            h.update(b"/object:");
            h.update(object_id.key().as_bytes());
        }
    }
    h.update(b"|");
    match expiration {
        Some(e) => h.update(e.unix_timestamp().to_string().as_bytes()),
        None => h.update(b"none"),
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    CiString::new(format!("dr-{hex}"))
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
