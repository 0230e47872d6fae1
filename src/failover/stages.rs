//! The stage graph of a run, as pure functions: which stage follows which, for every mode,
//! approval policy and role; what a stage returns ([`Outcome`]); and the one error policy that
//! maps (error, dequeue count) to what the queue handler answers.
//!
//! Invariants (table tests below):
//! - Every plan starts with `preflight` and ends with `complete`; `await-approval` appears only
//!   when approval is required; drills clean up before `complete`.
//! - Provider runs: preflight → [await-approval] → final-sync → invite-consumers →
//!   enable-schedules → notify → [cleanup, drills only] → complete.
//! - Consumer-role runs: preflight → [await-approval] → accept-invitations → map-datasets →
//!   create-triggers → notify → complete.
//! - `next` never goes backwards and never loops: following it from `preflight` visits every
//!   stage of [`plan`] once.
//!
//! Must not import: store, arm, handlers, host (pure).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Move sharing to the secondary (the primary is down or going down).
    Failover,
    /// Rehearse a failover against the secondary only; real consumers and the primary untouched.
    Drill,
    /// After the primary recovered: replicate back and restore the normal direction.
    Failback,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Failover => "failover",
            Mode::Drill => "drill",
            Mode::Failback => "failback",
        }
    }

    /// Parses `failover` / `drill` / `failback` (case-insensitive).
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "failover" => Some(Mode::Failover),
            "drill" => Some(Mode::Drill),
            "failback" => Some(Mode::Failback),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side of Data Share the deployment automates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Provider,
    Consumer,
}

/// The knobs that shape the stage graph of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub role: Role,
    /// The run waits in `await-approval` until someone approves it.
    pub approval_required: bool,
}

/// One stage (queue message `stage` field, kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Preflight,
    AwaitApproval,
    FinalSync,
    InviteConsumers,
    EnableSchedules,
    AcceptInvitations,
    MapDatasets,
    CreateTriggers,
    Notify,
    Cleanup,
    Complete,
}

impl Stage {
    pub const ALL: [Stage; 11] = [
        Stage::Preflight,
        Stage::AwaitApproval,
        Stage::FinalSync,
        Stage::InviteConsumers,
        Stage::EnableSchedules,
        Stage::AcceptInvitations,
        Stage::MapDatasets,
        Stage::CreateTriggers,
        Stage::Notify,
        Stage::Cleanup,
        Stage::Complete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Preflight => "preflight",
            Stage::AwaitApproval => "await-approval",
            Stage::FinalSync => "final-sync",
            Stage::InviteConsumers => "invite-consumers",
            Stage::EnableSchedules => "enable-schedules",
            Stage::AcceptInvitations => "accept-invitations",
            Stage::MapDatasets => "map-datasets",
            Stage::CreateTriggers => "create-triggers",
            Stage::Notify => "notify",
            Stage::Cleanup => "cleanup",
            Stage::Complete => "complete",
        }
    }

    /// Parses the kebab-case name.
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// One line for the dry-run plan and the report.
    pub fn describe(self, mode: Mode) -> &'static str {
        match (self, mode) {
            (Stage::Preflight, _) => {
                "evaluate readiness of the target side; NotReady aborts unless forced"
            }
            (Stage::AwaitApproval, _) => "wait until someone approves the run (policy `approve`)",
            (Stage::FinalSync, Mode::Failback) => {
                "replicate changes made on the secondary back to the primary"
            }
            (Stage::FinalSync, _) => {
                "one replicate pass primary → secondary when the primary answers (skipped when it is down)"
            }
            (Stage::InviteConsumers, Mode::Drill) => {
                "invite the drill recipients on the secondary shares (real consumers untouched)"
            }
            (Stage::InviteConsumers, Mode::Failback) => {
                "re-invite on the primary shares the consumers not invited or subscribed there"
            }
            (Stage::InviteConsumers, Mode::Failover) => {
                "invite every consumer not yet invited or subscribed on the secondary shares"
            }
            (Stage::EnableSchedules, Mode::Failback) => {
                "ensure the snapshot schedules on every primary share"
            }
            (Stage::EnableSchedules, _) => "ensure the snapshot schedules on every secondary share",
            (Stage::AcceptInvitations, _) => {
                "accept the provider's invitation on the consumer's secondary account"
            }
            (Stage::MapDatasets, _) => "map every data set to its secondary-region sink",
            (Stage::CreateTriggers, _) => {
                "create triggers with the provider's schedule (and a first synchronization)"
            }
            (Stage::Notify, _) => "send the run summary to the notifications queue",
            (Stage::Cleanup, _) => "remove the drill's artefacts (drill invitations)",
            (Stage::Complete, _) => "record the result, the RTO and release the pair's lock",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stage after `stage` for a run of `mode` under `policy`; `None` after `complete` (or
/// for a stage that is not part of this run's graph).
pub fn next(mode: Mode, policy: Policy, stage: Stage) -> Option<Stage> {
    let p = plan(mode, policy);
    let i = p.iter().position(|s| *s == stage)?;
    p.get(i + 1).copied()
}

/// Every stage of a run, in order.
pub fn plan(mode: Mode, policy: Policy) -> Vec<Stage> {
    let mut out = vec![Stage::Preflight];
    if policy.approval_required {
        out.push(Stage::AwaitApproval);
    }
    match policy.role {
        Role::Provider => {
            out.extend([
                Stage::FinalSync,
                Stage::InviteConsumers,
                Stage::EnableSchedules,
                Stage::Notify,
            ]);
            if mode == Mode::Drill {
                out.push(Stage::Cleanup);
            }
        }
        Role::Consumer => {
            out.extend([
                Stage::AcceptInvitations,
                Stage::MapDatasets,
                Stage::CreateTriggers,
                Stage::Notify,
            ]);
            if mode == Mode::Drill {
                out.push(Stage::Cleanup);
            }
        }
    }
    out.push(Stage::Complete);
    out
}

/// Position of `stage` in the run's plan (for "already passed" checks).
pub fn position(mode: Mode, policy: Policy, stage: Stage) -> Option<usize> {
    plan(mode, policy).iter().position(|s| *s == stage)
}

/// What one stage execution decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; enqueue this stage next.
    Advance(Stage),
    /// Not done yet (approval, a long-running operation, another delivery holds the stage):
    /// enqueue the same stage again, invisible for this long.
    Wait(Duration),
    /// Nothing more to enqueue: the run finished (or the message was stale and dropped).
    Done,
    /// The run stopped (preflight NotReady, cancelled, a permanent failure); recorded.
    Abort(String),
}

/// What the queue handler does with a stage error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDecision {
    /// Answer non-2xx: the host makes the message visible again and retries.
    Retry,
    /// Answer non-2xx one last time: the host moves the message to the poison queue, whose
    /// handler marks the run failed (the in-process runner calls that path directly).
    GiveUp,
    /// Mark the run failed now, notify, answer 200 (retrying cannot help).
    Fail,
}

/// The one error policy: a transient error is retried until the host's `maxDequeueCount`
/// (then it is poisoned); a permanent error fails the run at once.
pub fn error_policy(transient: bool, dequeue_count: u32, max_dequeue_count: u32) -> ErrorDecision {
    if !transient {
        ErrorDecision::Fail
    } else if dequeue_count >= max_dequeue_count.max(1) {
        ErrorDecision::GiveUp
    } else {
        ErrorDecision::Retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER_AUTO: Policy = Policy {
        role: Role::Provider,
        approval_required: false,
    };
    const PROVIDER_APPROVE: Policy = Policy {
        role: Role::Provider,
        approval_required: true,
    };
    const CONSUMER_AUTO: Policy = Policy {
        role: Role::Consumer,
        approval_required: false,
    };

    #[test]
    fn the_transition_table_matches_the_documented_graphs() {
        use Stage::*;
        let table: &[(Mode, Policy, &[Stage])] = &[
            (
                Mode::Failover,
                PROVIDER_AUTO,
                &[
                    Preflight,
                    FinalSync,
                    InviteConsumers,
                    EnableSchedules,
                    Notify,
                    Complete,
                ],
            ),
            (
                Mode::Failover,
                PROVIDER_APPROVE,
                &[
                    Preflight,
                    AwaitApproval,
                    FinalSync,
                    InviteConsumers,
                    EnableSchedules,
                    Notify,
                    Complete,
                ],
            ),
            (
                Mode::Drill,
                PROVIDER_AUTO,
                &[
                    Preflight,
                    FinalSync,
                    InviteConsumers,
                    EnableSchedules,
                    Notify,
                    Cleanup,
                    Complete,
                ],
            ),
            (
                Mode::Failback,
                PROVIDER_AUTO,
                &[
                    Preflight,
                    FinalSync,
                    InviteConsumers,
                    EnableSchedules,
                    Notify,
                    Complete,
                ],
            ),
            (
                Mode::Failover,
                CONSUMER_AUTO,
                &[
                    Preflight,
                    AcceptInvitations,
                    MapDatasets,
                    CreateTriggers,
                    Notify,
                    Complete,
                ],
            ),
        ];
        for (mode, policy, want) in table {
            assert_eq!(plan(*mode, *policy), want.to_vec(), "{mode} {policy:?}");
            // Following `next` from preflight visits exactly the plan.
            let mut seen = vec![Preflight];
            let mut at = Preflight;
            while let Some(n) = next(*mode, *policy, at) {
                seen.push(n);
                at = n;
            }
            assert_eq!(seen, want.to_vec(), "{mode} {policy:?}");
        }
    }

    #[test]
    fn there_is_nothing_after_complete_and_nothing_for_a_foreign_stage() {
        assert_eq!(next(Mode::Failover, PROVIDER_AUTO, Stage::Complete), None);
        assert_eq!(next(Mode::Failover, PROVIDER_AUTO, Stage::Cleanup), None);
        assert_eq!(
            next(Mode::Failover, PROVIDER_AUTO, Stage::AwaitApproval),
            None
        );
        assert_eq!(next(Mode::Failover, CONSUMER_AUTO, Stage::FinalSync), None);
    }

    #[test]
    fn stage_names_round_trip_in_kebab_case() {
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!(Stage::parse("FINAL-SYNC"), Some(Stage::FinalSync));
        assert_eq!(Stage::parse("final_sync"), None);
    }

    #[test]
    fn the_error_policy_retries_transient_errors_until_the_host_gives_up() {
        let table = [
            (true, 1, 5, ErrorDecision::Retry),
            (true, 4, 5, ErrorDecision::Retry),
            (true, 5, 5, ErrorDecision::GiveUp),
            (true, 9, 5, ErrorDecision::GiveUp),
            (false, 1, 5, ErrorDecision::Fail),
            (false, 5, 5, ErrorDecision::Fail),
            (true, 1, 0, ErrorDecision::GiveUp),
        ];
        for (transient, count, max, want) in table {
            assert_eq!(
                error_policy(transient, count, max),
                want,
                "{transient} {count}/{max}"
            );
        }
    }

    #[test]
    fn modes_parse_case_insensitively_and_refuse_others() {
        assert_eq!(Mode::parse("Drill"), Some(Mode::Drill));
        assert_eq!(Mode::parse("failback"), Some(Mode::Failback));
        assert_eq!(Mode::parse("switch"), None);
    }
}
