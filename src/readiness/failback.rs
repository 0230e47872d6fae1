//! Readiness of a pair that is not `normal` (failed over, or a run moving it): the question then
//! is not "would a failover work" but "does the serving side work, and is the original primary
//! ready to take back?" — failback readiness, reported as findings.
//!
//! Pure: `Observations + state + active runs + now → Report`. The status describes the serving
//! side: a serving account that is missing, down or not provisioned is Critical (NotReady);
//! what keeps a failback from working (the primary down, missing, not provisioned, a share the
//! secondary serves that the primary lacks, a state no run will finish) is a Warning
//! (Degraded); what a failback would carry from the secondary to the primary — changes made on
//! the secondary during the outage — and the state itself are Info.
//!
//! Must not import: handlers, host, store, arm, sim, reconcile (plain data only).

use time::OffsetDateTime;

use crate::pair_state::{Phase, PhaseView, Side};

use super::evaluate::{Findings, Policy, finish};
use super::model::{AccountObservation, AccountSnapshot, Observations, ShareObservation};
use super::report::{ActiveRun, Report, Severity, codes};

fn when(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "an unknown time".into())
}

/// Evaluates a pair whose state is not `normal`. Pure.
pub fn evaluate_not_normal(
    obs: &Observations,
    policy: &Policy,
    state: &PhaseView,
    active: &[ActiveRun],
    now: OffsetDateTime,
) -> Report {
    let mut f = Findings {
        list: Vec::new(),
        config: policy.config_path.clone(),
    };
    check_state(obs, state, active, &mut f);
    let serving_ok = check_serving(obs, state.serving, &mut f);
    let primary = check_failback_target(obs, &mut f);
    if let (Some(p), Some(s)) = (
        primary,
        serving_ok.then(|| obs.secondary.snapshot()).flatten(),
    ) && state.serving == Side::Secondary
    {
        check_carried(obs, p, s, &mut f);
    }
    let mut report = finish(obs, f.list, Vec::new(), now);
    report.pair_state = Some(state.clone());
    report.active_runs = active.to_vec();
    report
}

/// The state itself: failed over (Info), a run moving the pair (Info), or a phase that no
/// active run will finish (Warning: only an operator clears it).
fn check_state(obs: &Observations, state: &PhaseView, active: &[ActiveRun], f: &mut Findings) {
    let run = state.run_id.as_deref().unwrap_or("unknown");
    let since = when(state.since);
    let pair = &obs.pair;
    match state.phase {
        Phase::Normal => {}
        Phase::FailedOver => {
            let dry = f.cmd(
                "failover start",
                &format!("--pair {pair} --mode failback --dry-run"),
            );
            f.push(
                Severity::Info,
                codes::PAIR_FAILED_OVER,
                pair,
                format!(
                    "pair {pair} is failed over: the {} serves consumers since {since} (run \
                     {run}); replication is paused, and these checks ask whether the primary is \
                     ready to take back",
                    state.serving.as_str()
                ),
                format!(
                    "when no Warning is left, see what a failback changes with {dry}, then run it \
                     without `--dry-run`"
                ),
            );
        }
        Phase::FailingOver | Phase::FailingBack => {
            let moving = active
                .iter()
                .find(|r| state.run_id.as_deref() == Some(r.run_id.as_str()));
            match moving {
                Some(r) => f.push(
                    Severity::Info,
                    codes::PAIR_RUN_ACTIVE,
                    pair,
                    format!(
                        "pair {pair} is {} since {since}: run {run} is {}{}",
                        state.phase.words(),
                        r.status,
                        r.stage
                            .as_deref()
                            .map(|s| format!(" (stage {s})"))
                            .unwrap_or_default()
                    ),
                    format!(
                        "follow it with `datashare-dr failover status --config {} {run}`",
                        f.config
                    ),
                ),
                None => {
                    let reset = f.cmd(
                        "failover reset-state",
                        &format!("--pair {pair} --reason \"…\""),
                    );
                    f.push(
                        Severity::Warning,
                        codes::PAIR_STATE_STUCK,
                        pair,
                        format!(
                            "pair {pair} is {} since {since}, but run {run} is no longer active: \
                             it ended without finishing, and replication stays paused",
                            state.phase.words()
                        ),
                        format!(
                            "see what the run did (`datashare-dr failover status --config {} \
                             {run}`), finish by hand what it left, then clear the state with \
                             {reset}",
                            f.config
                        ),
                    );
                }
            }
        }
    }
}

/// The serving account must answer and be provisioned; returns whether it is usable.
fn check_serving(obs: &Observations, serving: Side, f: &mut Findings) -> bool {
    let (account, id, region, missing, down, not_ok) = match serving {
        Side::Secondary => (
            &obs.secondary,
            &obs.secondary_id,
            &obs.secondary_region,
            codes::SECONDARY_ACCOUNT_MISSING,
            codes::SECONDARY_UNREACHABLE,
            codes::SECONDARY_ACCOUNT_NOT_SUCCEEDED,
        ),
        Side::Primary => (
            &obs.primary,
            &obs.primary_id,
            &obs.primary_region,
            codes::PRIMARY_ACCOUNT_MISSING,
            codes::PRIMARY_UNREACHABLE,
            codes::FAILBACK_PRIMARY_NOT_SUCCEEDED,
        ),
    };
    let side = serving.as_str();
    match account {
        AccountObservation::Missing => {
            f.push(
                Severity::Critical,
                missing,
                id,
                format!("the {side} account, which serves consumers, does not exist in {region}"),
                "consumers are not served: restore the account, or fail over to the other side",
            );
            false
        }
        AccountObservation::Unreachable { reason } => {
            f.push(
                Severity::Critical,
                down,
                id,
                format!(
                    "the {side} account, which serves consumers, does not answer in {region} \
                     ({reason})"
                ),
                "check Azure Service Health for that region; consumers are not served while it \
                 is down",
            );
            false
        }
        AccountObservation::Faulted { fault, reason } => {
            // The tool's own fault (credential, endpoint, throttling): nothing is known about the
            // serving side, and nothing here is a reason to move the pair (report `Unknown`).
            f.push(
                Severity::Warning,
                codes::TOOL_FAULT,
                id,
                format!(
                    "the {side} account, which serves consumers, could not be read because of a \
                     {fault} fault of this tool ({reason}); this says nothing about the region"
                ),
                fault.fix(),
            );
            false
        }
        AccountObservation::Present(s) => {
            if !s.provisioning_state.eq_ignore_ascii_case("Succeeded") {
                f.push(
                    Severity::Critical,
                    not_ok,
                    &s.id,
                    format!(
                        "the {side} account, which serves consumers, is {}, not Succeeded",
                        s.provisioning_state
                    ),
                    "wait for the operation to finish; if it stays Failed, open a support case",
                );
                return false;
            }
            true
        }
    }
}

/// Is the original primary there to take back? Returns its snapshot when it is usable.
fn check_failback_target<'a>(
    obs: &'a Observations,
    f: &mut Findings,
) -> Option<&'a AccountSnapshot> {
    let region = &obs.primary_region;
    match &obs.primary {
        AccountObservation::Unreachable { reason } => {
            f.push(
                Severity::Warning,
                codes::FAILBACK_PRIMARY_UNREACHABLE,
                &obs.primary_id,
                format!(
                    "the primary account in {region} does not answer ({reason}): a failback \
                     would abort in preflight"
                ),
                "wait for the primary region to recover (Azure Service Health); the secondary \
                 keeps serving meanwhile",
            );
            None
        }
        AccountObservation::Faulted { fault, reason } => {
            f.push(
                Severity::Warning,
                codes::TOOL_FAULT,
                &obs.primary_id,
                format!(
                    "the primary account in {region} could not be read because of a {fault} \
                     fault of this tool ({reason}): failback readiness cannot be assessed"
                ),
                fault.fix(),
            );
            None
        }
        AccountObservation::Missing => {
            f.push(
                Severity::Warning,
                codes::FAILBACK_PRIMARY_MISSING,
                &obs.primary_id,
                format!(
                    "the primary account does not exist in {region}: there is nothing to fail \
                     back to"
                ),
                "re-create the primary account (a failback then copies the configuration from \
                 the secondary), or make the secondary the pair's primary in the DR config",
            );
            None
        }
        AccountObservation::Present(p) => {
            if !p.provisioning_state.eq_ignore_ascii_case("Succeeded") {
                f.push(
                    Severity::Warning,
                    codes::FAILBACK_PRIMARY_NOT_SUCCEEDED,
                    &p.id,
                    format!(
                        "the primary account's provisioning state is {}, not Succeeded: a \
                         failback would fail",
                        p.provisioning_state
                    ),
                    "wait for the operation on the primary account to finish",
                );
                return None;
            }
            f.push(
                Severity::Info,
                codes::FAILBACK_PRIMARY_READY,
                &p.id,
                format!(
                    "the primary account in {region} answers and is provisioned ({} of its \
                     shares selected)",
                    p.shares.len()
                ),
                "nothing to do",
            );
            Some(p)
        }
    }
}

/// What a failback would carry from the serving secondary to the primary: shares the primary
/// lacks (Warning: its consumers must accept new invitations), and changes made on the
/// secondary during the outage (Info).
fn check_carried(obs: &Observations, p: &AccountSnapshot, s: &AccountSnapshot, f: &mut Findings) {
    let carries = |f: &mut Findings, id: &str, what: String| {
        f.push(
            Severity::Info,
            codes::FAILBACK_CARRIES,
            id,
            format!("{what}; a failback writes this to the primary"),
            "nothing to do now; a failback dry run lists every change",
        )
    };
    for (key, ss) in &s.shares {
        let Some(ps) = p.shares.get(key) else {
            f.push(
                Severity::Warning,
                codes::FAILBACK_SHARE_MISSING,
                &ss.id,
                format!(
                    "share `{}` serves on the secondary but does not exist on the primary",
                    ss.name
                ),
                format!(
                    "a failback creates it on the primary; the consumers then need new \
                     invitations there (see {})",
                    f.cmd(
                        "failover start",
                        &format!("--pair {} --mode failback --dry-run", obs.pair)
                    )
                ),
            );
            continue;
        };
        share_changes(ps, ss, f, &carries);
    }
}

fn share_changes(
    p: &ShareObservation,
    s: &ShareObservation,
    f: &mut Findings,
    carries: &dyn Fn(&mut Findings, &str, String),
) {
    let name = &s.name;
    if p.description != s.description {
        carries(
            f,
            &s.id,
            format!(
                "the description of share `{name}` changed on the secondary ({:?} → {:?})",
                p.description.as_deref().unwrap_or(""),
                s.description.as_deref().unwrap_or("")
            ),
        );
    }
    if p.terms != s.terms {
        carries(
            f,
            &s.id,
            format!("the terms of share `{name}` changed on the secondary"),
        );
    }
    for (k, d) in &s.datasets {
        match p.datasets.get(k) {
            None => carries(
                f,
                &d.id,
                format!("data set `{name}/{}` was added on the secondary", d.name),
            ),
            Some(pd) if !pd.kind.eq_ignore_ascii_case(&d.kind) || pd.locator != d.locator => {
                carries(
                    f,
                    &d.id,
                    format!(
                        "data set `{name}/{}` differs on the secondary (it is replaced)",
                        d.name
                    ),
                )
            }
            Some(_) => {}
        }
    }
    for (k, st) in &s.sync_settings {
        match p.sync_settings.get(k) {
            None => carries(
                f,
                &st.id,
                format!(
                    "snapshot schedule `{name}/{}` was added on the secondary",
                    st.name
                ),
            ),
            Some(ps)
                if ps.recurrence_interval != st.recurrence_interval
                    || ps.synchronization_time != st.synchronization_time =>
            {
                carries(
                    f,
                    &st.id,
                    format!(
                        "snapshot schedule `{name}/{}` changed on the secondary (it is replaced)",
                        st.name
                    ),
                )
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readiness::Status;
    use crate::readiness::evaluate::evaluate_in_state;

    fn t(s: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000) + time::Duration::seconds(s)
    }

    fn account(id: &str, shares: &[(&str, &str)]) -> AccountObservation {
        AccountObservation::Present(AccountSnapshot {
            id: id.into(),
            location: "r".into(),
            provisioning_state: "Succeeded".into(),
            principal_id: Some("p".into()),
            shares: shares
                .iter()
                .map(|(n, d)| {
                    (
                        n.to_string(),
                        ShareObservation {
                            id: format!("{id}/shares/{n}"),
                            name: n.to_string(),
                            description: Some(d.to_string()),
                            ..ShareObservation::default()
                        },
                    )
                })
                .collect(),
        })
    }

    fn failed_over() -> PhaseView {
        PhaseView {
            serving: Side::Secondary,
            phase: Phase::FailedOver,
            since: Some(t(0)),
            run_id: Some("r1".into()),
        }
    }

    fn obs(primary: AccountObservation, secondary: AccountObservation) -> Observations {
        Observations {
            pair: "p".into(),
            primary_id: "/acc/pri".into(),
            secondary_id: "/acc/sec".into(),
            primary_region: "westeurope".into(),
            secondary_region: "northeurope".into(),
            primary,
            secondary,
            ..Observations::default()
        }
    }

    fn codes(r: &Report) -> Vec<(&str, Severity)> {
        r.findings
            .iter()
            .map(|f| (f.code.as_str(), f.severity))
            .collect()
    }

    #[test]
    fn the_status_of_a_failed_over_pair_describes_the_serving_side_and_lists_what_a_failback_carries()
     {
        let policy = Policy::default();
        let state = failed_over();
        type Case = (
            &'static str,
            Observations,
            Status,
            Vec<(&'static str, Severity)>,
        );
        let cases: Vec<Case> = vec![
            (
                "both up, a change on the secondary",
                obs(
                    account("/acc/pri", &[("s", "old")]),
                    account("/acc/sec", &[("s", "new"), ("t", "made in the outage")]),
                ),
                Status::Degraded,
                vec![
                    (codes::FAILBACK_SHARE_MISSING, Severity::Warning),
                    (codes::FAILBACK_CARRIES, Severity::Info),
                    (codes::FAILBACK_PRIMARY_READY, Severity::Info),
                    (codes::PAIR_FAILED_OVER, Severity::Info),
                ],
            ),
            (
                "the primary still down: failback not possible, serving fine",
                obs(
                    AccountObservation::Unreachable {
                        reason: "region down".into(),
                    },
                    account("/acc/sec", &[("s", "x")]),
                ),
                Status::Degraded,
                vec![
                    (codes::FAILBACK_PRIMARY_UNREACHABLE, Severity::Warning),
                    (codes::PAIR_FAILED_OVER, Severity::Info),
                ],
            ),
            (
                "the serving secondary down: not ready",
                obs(
                    account("/acc/pri", &[("s", "x")]),
                    AccountObservation::Unreachable {
                        reason: "region down".into(),
                    },
                ),
                Status::NotReady,
                vec![
                    (codes::SECONDARY_UNREACHABLE, Severity::Critical),
                    (codes::FAILBACK_PRIMARY_READY, Severity::Info),
                    (codes::PAIR_FAILED_OVER, Severity::Info),
                ],
            ),
            (
                "the serving secondary unreadable by a tool fault: cannot assess, no outage",
                obs(
                    account("/acc/pri", &[("s", "x")]),
                    AccountObservation::Faulted {
                        fault: crate::arm::fault::ToolFault::Authentication,
                        reason: "401 InvalidAuthenticationToken".into(),
                    },
                ),
                Status::Unknown,
                vec![
                    (codes::TOOL_FAULT, Severity::Warning),
                    (codes::FAILBACK_PRIMARY_READY, Severity::Info),
                    (codes::PAIR_FAILED_OVER, Severity::Info),
                ],
            ),
        ];
        for (what, o, status, want) in cases {
            let r = evaluate_in_state(&o, &policy, t(10), Some(&state), &[]);
            assert_eq!(r.status, status, "{what}: {:#?}", r.findings);
            assert_eq!(codes(&r), want, "{what}");
            assert_eq!(r.pair_state.as_ref(), Some(&state), "{what}");
        }
    }

    #[test]
    fn a_phase_no_active_run_will_finish_is_a_warning_and_an_active_run_is_not() {
        let policy = Policy::default();
        let state = PhaseView {
            serving: Side::Primary,
            phase: Phase::FailingBack,
            since: Some(t(0)),
            run_id: Some("r2".into()),
        };
        let o = obs(
            account("/acc/pri", &[("s", "x")]),
            account("/acc/sec", &[("s", "x")]),
        );
        let stuck = evaluate_in_state(&o, &policy, t(10), Some(&state), &[]);
        assert!(
            stuck
                .findings
                .iter()
                .any(|f| f.code == codes::PAIR_STATE_STUCK && f.severity == Severity::Warning),
            "{:#?}",
            stuck.findings
        );
        let run = ActiveRun {
            run_id: "r2".into(),
            mode: "failback".into(),
            status: "running".into(),
            stage: Some("final-sync".into()),
            created_at: t(0),
        };
        let moving =
            evaluate_in_state(&o, &policy, t(10), Some(&state), std::slice::from_ref(&run));
        assert_eq!(moving.status, Status::Ready, "{:#?}", moving.findings);
        let f = moving
            .findings
            .iter()
            .find(|f| f.code == codes::PAIR_RUN_ACTIVE)
            .expect("the run is named");
        assert!(f.message.contains("stage final-sync"), "{}", f.message);
        assert_eq!(moving.active_runs, vec![run]);
        // Normal (or unknown): the failover question, carrying the state.
        let normal = PhaseView {
            phase: Phase::Normal,
            ..state
        };
        let r = evaluate_in_state(&o, &policy, t(10), Some(&normal), &[]);
        assert!(!r.findings.iter().any(|f| f.code.starts_with("failback-")));
        assert_eq!(r.pair_state, Some(normal));
    }
}
