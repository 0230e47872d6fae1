//! Dry runs that show what a run would do, read-only: a failback's ARM change plan for the
//! reverse direction (secondary → primary, in the `plan --json` form, the same planner and prune
//! ceiling its `final-sync` stage uses, so the list is what the stage writes) with the preflight
//! findings; a failover's preflight readiness and whom `invite-consumers` would invite.
//!
//! Must not import: handlers, host.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::arm::client::ArmClient;
use crate::config::dr::DrConfig;
use crate::pair_state;
use crate::readiness::arm_reader::ArmReader;
use crate::readiness::{self, codes};
use crate::reconcile::guard::plan_limited;
use crate::reconcile::render::{PairPlan, PlanOutput};
use crate::store::BlobStore;

use super::FailoverError;
use super::exec::{load_roster, roster_of, swapped};
use super::run::RosterEntry;
use super::stages::Mode;

/// One preflight finding of a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewFinding {
    pub severity: String,
    pub code: String,
    pub message: String,
}

/// What a dry run found, beyond the stage list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// Failback: the reverse-direction ARM change plan (`plan --json` document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<serde_json::Value>,
    /// Failback: the same plan as `plan` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes_text: Option<String>,
    /// Failover: readiness status and score of the preflight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    pub preflight: Vec<PreviewFinding>,
    /// Failover: the consumers `invite-consumers` would invite (not yet invited or subscribed on
    /// the secondary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would_invite: Option<Vec<RosterEntry>>,
    /// The pair state (`null`: unknown, no run store).
    pub state: Option<pair_state::PhaseView>,
}

fn finding(severity: &str, code: &str, message: impl Into<String>) -> PreviewFinding {
    PreviewFinding {
        severity: severity.into(),
        code: code.into(),
        message: message.into(),
    }
}

/// The read-only preview of a `mode` run of `pair`.
pub async fn preview(
    arm: &ArmClient,
    store: Option<&dyn BlobStore>,
    cfg: &DrConfig,
    pair_name: &str,
    mode: Mode,
    now: OffsetDateTime,
) -> Result<Preview, FailoverError> {
    let Some(pair) = cfg.pair(pair_name) else {
        return Ok(Preview::default());
    };
    let mut out = Preview::default();
    let state = match store {
        Some(st) => match pair_state::load(st, &pair.name).await {
            Ok((s, _)) => Some(s),
            Err(e) => {
                out.preflight.push(finding(
                    "Warning",
                    "pair-state-unknown",
                    super::error_text(&e),
                ));
                None
            }
        },
        None => {
            out.preflight.push(finding(
                "Info",
                "pair-state-unknown",
                "pair state unknown (no storage settings)",
            ));
            None
        }
    };
    out.state = state.as_ref().map(pair_state::PairPhase::view);
    let concurrency = cfg.arm.max_concurrency.max(1);
    match mode {
        Mode::Failback => {
            let probe = arm.with_deadline(std::time::Duration::from_secs(20));
            match probe.get_account(&pair.primary).await {
                Ok(_) => out.preflight.push(finding(
                    "Info",
                    "primary-reachable",
                    format!("primary {} answers", pair.primary.name()),
                )),
                Err(e) => out.preflight.push(finding(
                    "Critical",
                    codes::PRIMARY_UNREACHABLE,
                    format!(
                        "the primary account {} does not answer ({}); the failback would abort",
                        pair.primary.name(),
                        super::error_text(&e)
                    ),
                )),
            }
            if let Some(s) = &state
                && s.phase == pair_state::Phase::Normal
            {
                out.preflight.push(finding(
                    "Warning",
                    "pair-normal",
                    format!(
                        "pair {} is normal (the primary serves): nothing to fail back",
                        pair.name
                    ),
                ));
            }
            let target = swapped(pair);
            match plan_limited(arm, &target, state.as_ref(), now, concurrency).await {
                Ok((obs, plan)) => {
                    let plans = vec![PairPlan {
                        pair: pair.name.clone(),
                        primary: target.primary.to_string(),
                        secondary: target.secondary.to_string(),
                        secondary_exists: obs.secondary
                            != crate::reconcile::observe::AccountObservation::Missing,
                        plan,
                        paused: false,
                        state: out.state.clone(),
                        reason: None,
                    }];
                    out.changes = serde_json::to_value(PlanOutput { pairs: &plans }).ok();
                    out.changes_text = Some(crate::reconcile::render::render_human(&plans));
                }
                Err(e) => out.preflight.push(finding(
                    "Critical",
                    "plan-failed",
                    format!(
                        "the reverse plan could not be made: {}",
                        super::error_text(&e)
                    ),
                )),
            }
        }
        Mode::Failover | Mode::Drill => {
            let last_drill = match store {
                Some(st) => readiness::last_drill(st, &pair.name).await.unwrap_or(None),
                None => None,
            };
            let probe = arm.with_deadline(std::time::Duration::from_secs(20));
            let reader = ArmReader {
                client: &probe,
                concurrency,
            };
            let report = readiness::check::check_pair(&reader, cfg, pair, now, last_drill).await;
            out.readiness = Some(report.status.as_str().to_owned());
            out.score = Some(report.score);
            for f in report
                .findings
                .iter()
                .filter(|f| !matches!(f.severity, readiness::Severity::Info))
            {
                out.preflight
                    .push(finding(f.severity.as_str(), &f.code, f.message.clone()));
            }
            if mode == Mode::Failover {
                out.would_invite = Some(would_invite(arm, store, pair, now).await);
            }
        }
    }
    Ok(out)
}

/// The primary's consumers (observed, else the stored roster) not yet covered on the secondary.
async fn would_invite(
    arm: &ArmClient,
    store: Option<&dyn BlobStore>,
    pair: &crate::config::dr::Pair,
    now: OffsetDateTime,
) -> Vec<RosterEntry> {
    let roster = match super::exec::observe_account_model(arm, pair, &pair.primary).await {
        Ok(Some(m)) => roster_of(&m),
        _ => match store {
            Some(st) => load_roster(st, &pair.name)
                .await
                .ok()
                .flatten()
                .map(|r| r.entries)
                .unwrap_or_default(),
            None => Vec::new(),
        },
    };
    let secondary = super::exec::observe_account_model(arm, pair, &pair.secondary)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    roster
        .into_iter()
        .filter(|e| !super::exec::is_covered(&secondary, &e.share, &e.target, now))
        .collect()
}
