//! Pure readiness evaluation: `Observations` + `Policy` + `now` → `Report`.
//!
//! No IO, no clock, no randomness: the same input gives the same report (findings sorted).
//! Every check is a small function pushing findings; see the `readiness` module docs for the
//! severity of each code and the status/score rules.
//!
//! A pair that cannot be assessed — a tool fault on either account, or neither account
//! answering — is `Unknown` with only the findings that say why (`tool-fault`,
//! `no-region-answers`) and their fixes; none of them suggests a failover. Only a primary that
//! does not answer while the secondary does is `primary-unreachable` (the one finding whose
//! remedy may be a failover). The judgement is `arm::fault::judge_accounts`.
//!
//! Must not import: handlers, host, store, sim, reconcile (it works on plain data only); of
//! `arm` only the pure `fault` judgement; of `config` only region normalising.

use std::collections::{BTreeMap, BTreeSet};

use time::{Duration, OffsetDateTime};

use super::model::{
    AccountObservation, AccountSnapshot, ConsumerTarget, DatasetObservation, Observations,
    ShareObservation, StoreExistence, StoreKind, same_id,
};
use super::report::{Finding, Report, Severity, SeverityCounts, ShareRpo, Status, codes};
use crate::arm::fault::{Failure, Verdict, judge_accounts};

/// Invitation policy for a consumer (`now` | `at-failover` in the DR config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InvitationPolicy {
    /// The consumer must already hold a pending or accepted invitation on the secondary.
    Now,
    /// The consumer is invited by the failover run; not being invited yet is expected.
    AtFailover,
}

/// The readiness knobs of one pair, resolved from the DR config (defaults + pair overrides).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Invitations / subscriptions expiring within this are findings.
    pub expiry_horizon: Duration,
    /// A last successful drill older than this is a finding.
    pub drill_max_age: Duration,
    /// A last snapshot older than `rpo_factor` × schedule interval is a finding.
    pub rpo_factor: f64,
    pub invitations: InvitationPolicy,
    /// Per-consumer invitation policy overrides.
    pub consumer_overrides: Vec<(ConsumerTarget, InvitationPolicy)>,
    /// The DR config file as the operator names it (`DrConfig::source`), written into every
    /// `datashare-dr` command a remedy suggests (`--config PATH`).
    pub config_path: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            expiry_horizon: Duration::days(14),
            drill_max_age: Duration::days(90),
            rpo_factor: 2.0,
            invitations: InvitationPolicy::Now,
            consumer_overrides: Vec::new(),
            config_path: "dr-config.toml".into(),
        }
    }
}

impl Policy {
    /// The invitation policy that applies to `target`.
    pub fn invitation_policy_for(&self, target: &ConsumerTarget) -> InvitationPolicy {
        let wanted = target.normalised();
        self.consumer_overrides
            .iter()
            .find(|(t, _)| t.normalised() == wanted)
            .map(|(_, p)| *p)
            .unwrap_or(self.invitations)
    }
}

/// Score deduction per finding of each severity (see module docs of `readiness`).
pub const DEDUCTION_CRITICAL: u32 = 25;
pub const DEDUCTION_WARNING: u32 = 10;
/// Highest score a NotReady / Degraded report can have, so the score orders like the status.
pub const MAX_SCORE_NOT_READY: u8 = 49;
pub const MAX_SCORE_DEGRADED: u8 = 89;

/// Role definition GUIDs that let the Data Share identity read a store of this kind through ARM
/// RBAC; the first is the least-privileged one to grant. Empty = access is not an ARM role (SQL and
/// Synapse use a contained database user), so it cannot be verified from ARM.
pub fn reader_roles(kind: StoreKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        StoreKind::Storage => &[
            (
                "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
                "Storage Blob Data Reader",
            ),
            (
                "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
                "Storage Blob Data Contributor",
            ),
            (
                "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
                "Storage Blob Data Owner",
            ),
        ],
        StoreKind::Kusto => &[
            ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"),
            ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner"),
        ],
        StoreKind::Sql | StoreKind::Synapse | StoreKind::AdlsGen1 => &[],
    }
}

pub(super) struct Findings {
    pub(super) list: Vec<Finding>,
    /// `--config` value for suggested commands.
    pub(super) config: String,
}

/// `path` as one shell word (single-quoted when it holds anything but `[A-Za-z0-9._/-]`).
fn shell_word(path: &str) -> String {
    let plain = !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'));
    if plain {
        path.to_string()
    } else {
        format!("'{}'", path.replace('\'', "'\\''"))
    }
}

impl Findings {
    /// A `datashare-dr` command for a remedy, in backticks, with `--config`:
    /// `cmd("replicate", "--pair p")` → `` `datashare-dr replicate --config F --pair p` ``.
    pub(super) fn cmd(&self, subcommand: &str, args: &str) -> String {
        let config = shell_word(&self.config);
        if args.is_empty() {
            format!("`datashare-dr {subcommand} --config {config}`")
        } else {
            format!("`datashare-dr {subcommand} --config {config} {args}`")
        }
    }

    pub(super) fn push(
        &mut self,
        severity: Severity,
        code: &str,
        resource_id: impl Into<String>,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) {
        self.list.push(Finding {
            severity,
            code: code.to_string(),
            resource_id: resource_id.into(),
            message: message.into(),
            remedy: remedy.into(),
        });
    }
}

/// Evaluates one pair in the state it is in: `state` `None` (unknown) or `normal` gives
/// [`evaluate`] (would a failover work?) carrying the state; any other phase gives the failback
/// readiness of [`super::failback`]. `active` are the pair's runs not yet ended. Pure.
pub fn evaluate_in_state(
    obs: &Observations,
    policy: &Policy,
    now: OffsetDateTime,
    state: Option<&crate::pair_state::PhaseView>,
    active: &[super::report::ActiveRun],
) -> Report {
    match state {
        Some(s) if s.phase != crate::pair_state::Phase::Normal => {
            super::failback::evaluate_not_normal(obs, policy, s, active, now)
        }
        _ => {
            let mut r = evaluate(obs, policy, now);
            r.pair_state = state.cloned();
            r.active_runs = active.to_vec();
            r
        }
    }
}

/// Evaluates one pair. Pure.
pub fn evaluate(obs: &Observations, policy: &Policy, now: OffsetDateTime) -> Report {
    let mut f = Findings {
        list: Vec::new(),
        config: policy.config_path.clone(),
    };
    let replicate = format!(
        "run {}",
        f.cmd("replicate", &format!("--pair {}", obs.pair))
    );

    if check_assessable(obs, &mut f) {
        // Nothing else is known: the findings say why and what to fix.
        return finish(obs, f.list, Vec::new(), now);
    }
    check_primary(obs, &mut f);
    let secondary_ok = check_secondary_account(obs, &mut f, &replicate);

    let primary = obs.primary.snapshot();
    let secondary = obs.secondary.snapshot();
    match (primary, secondary) {
        (Some(p), Some(s)) => {
            check_drift(obs, p, s, &mut f, &replicate);
            check_consumer_coverage(obs, policy, p, s, now, &mut f);
        }
        (None, Some(_)) => f.push(
            Severity::Info,
            codes::DRIFT_UNVERIFIED,
            &obs.primary_id,
            "the primary account could not be read, so shares, datasets, schedules and consumer \
             coverage were not compared",
            "re-run the check once the primary answers",
        ),
        _ => {}
    }
    if secondary_ok && let Some(s) = secondary {
        check_stores(obs, s, &mut f);
    }
    check_expiry(obs, policy, now, &mut f);
    let rpo = check_rpo(obs, policy, now, &mut f);
    check_drill(obs, policy, now, &mut f);

    finish(obs, f.list, rpo, now)
}

pub(super) fn finish(
    obs: &Observations,
    mut findings: Vec<Finding>,
    rpo: Vec<ShareRpo>,
    now: OffsetDateTime,
) -> Report {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.resource_id.cmp(&b.resource_id))
            .then_with(|| a.message.cmp(&b.message))
    });
    findings.dedup();
    let mut counts = SeverityCounts::default();
    for finding in &findings {
        match finding.severity {
            Severity::Critical => counts.critical += 1,
            Severity::Warning => counts.warning += 1,
            Severity::Info => counts.info += 1,
        }
    }
    let (status, score) = if findings.iter().any(|f| codes::is_cannot_assess(&f.code)) {
        // Nothing was assessed: no score to give.
        (Status::Unknown, 0)
    } else {
        status_and_score(counts)
    };
    Report {
        pair: obs.pair.clone(),
        status,
        score,
        checked_at: now,
        primary_region: obs.primary_region.clone(),
        secondary_region: obs.secondary_region.clone(),
        counts,
        findings,
        rpo,
        last_drill: obs.last_drill.clone(),
        pair_state: None,
        active_runs: Vec::new(),
        state_changed_since_check: false,
    }
}

/// Status and score from the counts: any Critical → NotReady, else any Warning → Degraded, else
/// Ready. Score = 100 − 25·critical − 10·warning, clamped to 0..=100 and capped at 49 (NotReady)
/// or 89 (Degraded).
pub fn status_and_score(counts: SeverityCounts) -> (Status, u8) {
    let deduction = (counts.critical as u32).saturating_mul(DEDUCTION_CRITICAL)
        + (counts.warning as u32).saturating_mul(DEDUCTION_WARNING);
    let raw = 100u32.saturating_sub(deduction) as u8;
    if counts.critical > 0 {
        (Status::NotReady, raw.min(MAX_SCORE_NOT_READY))
    } else if counts.warning > 0 {
        (Status::Degraded, raw.min(MAX_SCORE_DEGRADED))
    } else {
        (Status::Ready, raw)
    }
}

/// How a failed account read enters the pair-level judgement.
fn failure_of(account: &AccountObservation) -> Option<Failure> {
    match account {
        AccountObservation::Present(_) | AccountObservation::Missing => None,
        AccountObservation::Unreachable { .. } => Some(Failure::Unavailable),
        AccountObservation::Faulted { fault, .. } => Some(Failure::ToolFault(*fault)),
    }
}

/// Pushes the findings of a pair that cannot be assessed and returns true then: a tool fault on
/// either account (one `tool-fault` per faulted account, naming the fault and its fix), or
/// neither account answering (`no-region-answers`). No remedy here suggests a failover.
fn check_assessable(obs: &Observations, f: &mut Findings) -> bool {
    let verdict = judge_accounts(failure_of(&obs.primary), failure_of(&obs.secondary));
    match verdict {
        Verdict::Answered | Verdict::RegionUnreachable { .. } => false,
        Verdict::ToolFault(_) => {
            for (side, id, region, account) in [
                (
                    "primary",
                    &obs.primary_id,
                    &obs.primary_region,
                    &obs.primary,
                ),
                (
                    "secondary",
                    &obs.secondary_id,
                    &obs.secondary_region,
                    &obs.secondary,
                ),
            ] {
                if let AccountObservation::Faulted { fault, reason } = account {
                    f.push(
                        Severity::Warning,
                        codes::TOOL_FAULT,
                        id,
                        format!(
                            "the {side} account in {region} could not be read because of a \
                             {fault} fault of this tool ({reason}); this says nothing about the \
                             region, and readiness cannot be assessed"
                        ),
                        fault.fix(),
                    );
                }
            }
            true
        }
        Verdict::NeitherAnswers => {
            f.push(
                Severity::Warning,
                codes::NO_REGION_ANSWERS,
                &obs.pair,
                format!(
                    "neither the primary account in {} nor the secondary account in {} answers \
                     ({}; {}): a network or endpoint problem of this tool is as likely as two \
                     regional outages, so readiness cannot be assessed",
                    obs.primary_region,
                    obs.secondary_region,
                    unreachable_reason(&obs.primary),
                    unreachable_reason(&obs.secondary),
                ),
                "check that this tool reaches `[arm].endpoint` (network, DNS, proxy) and Azure \
                 Service Health for both regions; re-run the check",
            );
            true
        }
    }
}

fn unreachable_reason(account: &AccountObservation) -> &str {
    match account {
        AccountObservation::Unreachable { reason } | AccountObservation::Faulted { reason, .. } => {
            reason
        }
        _ => "",
    }
}

fn check_primary(obs: &Observations, f: &mut Findings) {
    match &obs.primary {
        AccountObservation::Unreachable { reason } => f.push(
            Severity::Warning,
            codes::PRIMARY_UNREACHABLE,
            &obs.primary_id,
            format!(
                "the primary account in {} does not answer ({reason})",
                obs.primary_region
            ),
            format!(
                "check Azure Service Health for the primary region; if the outage persists, start \
                 a failover ({})",
                f.cmd(
                    "failover start",
                    &format!("--pair {} --mode failover", obs.pair)
                )
            ),
        ),
        AccountObservation::Missing => f.push(
            Severity::Warning,
            codes::PRIMARY_ACCOUNT_MISSING,
            &obs.primary_id,
            "the primary Data Share account does not exist",
            "check the pair's `primary` id in the DR config, or fail over if it was lost",
        ),
        AccountObservation::Present(_) | AccountObservation::Faulted { .. } => {}
    }
}

/// Returns true when the secondary is present and usable enough to check its stores.
fn check_secondary_account(obs: &Observations, f: &mut Findings, replicate: &str) -> bool {
    match &obs.secondary {
        AccountObservation::Missing => {
            f.push(
                Severity::Critical,
                codes::SECONDARY_ACCOUNT_MISSING,
                &obs.secondary_id,
                format!(
                    "the secondary Data Share account does not exist in {}",
                    obs.secondary_region
                ),
                format!(
                    "create it (set `[pairs.create_secondary]` in the DR config and {replicate})"
                ),
            );
            false
        }
        AccountObservation::Unreachable { reason } => {
            f.push(
                Severity::Critical,
                codes::SECONDARY_UNREACHABLE,
                &obs.secondary_id,
                format!(
                    "the secondary account in {} does not answer ({reason})",
                    obs.secondary_region
                ),
                "check Azure Service Health for the secondary region; a failover cannot land \
                 there while it is down",
            );
            false
        }
        // Reported by `check_assessable` (the report is Unknown before this runs).
        AccountObservation::Faulted { .. } => false,
        AccountObservation::Present(s) => {
            if !s.provisioning_state.eq_ignore_ascii_case("Succeeded") {
                f.push(
                    Severity::Critical,
                    codes::SECONDARY_ACCOUNT_NOT_SUCCEEDED,
                    &s.id,
                    format!(
                        "the secondary account's provisioning state is {}, not Succeeded",
                        s.provisioning_state
                    ),
                    "wait for the operation to finish; if it stays Failed, delete and re-create \
                     the account",
                );
            }
            if !s.location.is_empty() && !same_region(&s.location, &obs.secondary_region) {
                f.push(
                    Severity::Critical,
                    codes::SECONDARY_ACCOUNT_WRONG_REGION,
                    &s.id,
                    format!(
                        "the secondary account is in {}, not in the secondary region {}",
                        s.location, obs.secondary_region
                    ),
                    "point the pair's `secondary` at an account in the secondary region",
                );
            }
            if s.principal_id.as_deref().is_none_or(str::is_empty) {
                f.push(
                    Severity::Critical,
                    codes::IDENTITY_MISSING,
                    &s.id,
                    "the secondary account has no system-assigned managed identity",
                    "re-create the account with `identity.type = SystemAssigned`",
                );
            }
            true
        }
    }
}

/// Region names compare ignoring case and spaces ("West Europe" = "westeurope").
pub(super) fn same_region(a: &str, b: &str) -> bool {
    crate::config::dr::normalize_region(a) == crate::config::dr::normalize_region(b)
}

fn check_drift(
    obs: &Observations,
    p: &AccountSnapshot,
    s: &AccountSnapshot,
    f: &mut Findings,
    replicate: &str,
) {
    let mut unmapped: BTreeSet<String> = BTreeSet::new();
    for (key, pshare) in &p.shares {
        let Some(sshare) = s.shares.get(key) else {
            f.push(
                Severity::Critical,
                codes::SHARE_MISSING,
                &pshare.id,
                format!("share `{}` has no copy on the secondary", pshare.name),
                replicate.to_string(),
            );
            continue;
        };
        compare_share(pshare, sshare, f, replicate);
        for (dkey, pds) in &pshare.datasets {
            let expected_store = expected_store(obs, pds);
            if let (Some(store), None) = (&pds.store, &expected_store)
                && pds.store_kind != Some(StoreKind::AdlsGen1)
            {
                unmapped.insert(store.clone());
            }
            if pds.store_kind == Some(StoreKind::AdlsGen1) {
                f.push(
                    Severity::Warning,
                    codes::DATASET_KIND_RETIRED,
                    &pds.id,
                    format!(
                        "dataset `{}` is of kind {}; ADLS Gen1 is retired and cannot be \
                         replicated",
                        pds.name, pds.kind
                    ),
                    "move the data to ADLS Gen2 and share it from there",
                );
                continue;
            }
            match sshare.datasets.get(dkey) {
                None => f.push(
                    Severity::Critical,
                    codes::DATASET_MISSING,
                    &pds.id,
                    format!(
                        "dataset `{}` of share `{}` has no copy on the secondary",
                        pds.name, pshare.name
                    ),
                    replicate.to_string(),
                ),
                Some(sds) => {
                    let mut diffs = Vec::new();
                    if !pds.kind.eq_ignore_ascii_case(&sds.kind) {
                        diffs.push(format!("kind {} ≠ {}", pds.kind, sds.kind));
                    }
                    if pds.locator != sds.locator {
                        diffs.push("location inside the store differs".to_string());
                    }
                    if let Some(expected) = &expected_store {
                        match &sds.store {
                            Some(actual) if same_id(actual, expected) => {}
                            actual => diffs.push(format!(
                                "reads from {} instead of the mapped store {expected}",
                                actual.as_deref().unwrap_or("nothing")
                            )),
                        }
                    }
                    if !diffs.is_empty() {
                        f.push(
                            Severity::Warning,
                            codes::DATASET_MISMATCH,
                            &sds.id,
                            format!(
                                "secondary dataset `{}` of share `{}` differs: {}",
                                sds.name,
                                pshare.name,
                                diffs.join("; ")
                            ),
                            replicate.to_string(),
                        );
                    }
                }
            }
        }
        for (dkey, sds) in &sshare.datasets {
            if !pshare.datasets.contains_key(dkey) {
                f.push(
                    Severity::Info,
                    codes::DRIFT_EXTRA,
                    &sds.id,
                    format!(
                        "secondary dataset `{}` of share `{}` is not on the primary",
                        sds.name, sshare.name
                    ),
                    format!(
                        "remove it ({}) unless it is intended",
                        f.cmd("replicate", &format!("--pair {} --prune", obs.pair))
                    ),
                );
            }
        }
        for (key, pset) in &pshare.sync_settings {
            match sshare.sync_settings.get(key) {
                None => f.push(
                    Severity::Warning,
                    codes::SYNC_SETTING_MISSING,
                    &pset.id,
                    format!(
                        "snapshot schedule `{}` of share `{}` has no copy on the secondary",
                        pset.name, pshare.name
                    ),
                    replicate.to_string(),
                ),
                Some(sset) => {
                    let same = pset.kind.eq_ignore_ascii_case(&sset.kind)
                        && eq_opt_ci(&pset.recurrence_interval, &sset.recurrence_interval)
                        && pset.synchronization_time == sset.synchronization_time;
                    if !same {
                        f.push(
                            Severity::Warning,
                            codes::SYNC_SETTING_MISMATCH,
                            &sset.id,
                            format!(
                                "snapshot schedule `{}` of share `{}` differs on the secondary",
                                sset.name, sshare.name
                            ),
                            replicate.to_string(),
                        );
                    }
                }
            }
        }
        for (key, sset) in &sshare.sync_settings {
            if !pshare.sync_settings.contains_key(key) {
                f.push(
                    Severity::Info,
                    codes::DRIFT_EXTRA,
                    &sset.id,
                    format!(
                        "secondary snapshot schedule `{}` of share `{}` is not on the primary",
                        sset.name, sshare.name
                    ),
                    format!(
                        "remove it ({}) unless it is intended",
                        f.cmd("replicate", &format!("--pair {} --prune", obs.pair))
                    ),
                );
            }
        }
    }
    for (key, sshare) in &s.shares {
        if !p.shares.contains_key(key) {
            f.push(
                Severity::Info,
                codes::DRIFT_EXTRA,
                &sshare.id,
                format!("secondary share `{}` is not on the primary", sshare.name),
                format!(
                    "remove it ({}) unless it is intended",
                    f.cmd("replicate", &format!("--pair {} --prune", obs.pair))
                ),
            );
        }
    }
    for store in unmapped {
        f.push(
            Severity::Critical,
            codes::STORE_UNMAPPED,
            &store,
            "no store mapping rule gives a secondary store for this primary store",
            "add a `[pairs.stores.defaults.<kind>]` rule or a `[[pairs.stores.overrides]]` entry",
        );
    }
}

fn expected_store(obs: &Observations, ds: &DatasetObservation) -> Option<String> {
    let store = ds.store.as_ref()?;
    obs.store_mapping
        .iter()
        .find(|(k, _)| same_id(k, store))
        .and_then(|(_, v)| v.clone())
}

fn eq_opt_ci(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, None) => true,
        _ => false,
    }
}

fn compare_share(p: &ShareObservation, s: &ShareObservation, f: &mut Findings, replicate: &str) {
    if !eq_opt_ci(&p.share_kind, &s.share_kind) {
        f.push(
            Severity::Warning,
            codes::SHARE_MISMATCH,
            &s.id,
            format!(
                "share `{}` is {} on the secondary but {} on the primary",
                s.name,
                s.share_kind.as_deref().unwrap_or("unset"),
                p.share_kind.as_deref().unwrap_or("unset")
            ),
            replicate.to_string(),
        );
    } else if p.description != s.description || p.terms != s.terms {
        f.push(
            Severity::Info,
            codes::SHARE_MISMATCH,
            &s.id,
            format!(
                "share `{}` has a different description or terms on the secondary",
                s.name
            ),
            replicate.to_string(),
        );
    }
}

fn check_stores(obs: &Observations, s: &AccountSnapshot, f: &mut Findings) {
    let principal = s.principal_id.clone().unwrap_or_default();
    for store in obs.stores.values() {
        match &store.existence {
            StoreExistence::Missing => {
                f.push(
                    Severity::Critical,
                    codes::STORE_MISSING,
                    &store.id,
                    format!(
                        "the mapped secondary {} store does not exist",
                        store.kind.as_str()
                    ),
                    format!(
                        "create it in {} (or fix the store mapping in the DR config)",
                        obs.secondary_region
                    ),
                );
                continue;
            }
            StoreExistence::Unreachable { reason } => {
                f.push(
                    Severity::Warning,
                    codes::STORE_UNREACHABLE,
                    &store.id,
                    format!("the mapped secondary store could not be read ({reason})"),
                    "re-run the check; grant the tool Reader on the store if access was denied",
                );
                continue;
            }
            StoreExistence::Present { location } => {
                if !same_region(location, &obs.secondary_region) {
                    f.push(
                        Severity::Critical,
                        codes::STORE_WRONG_REGION,
                        &store.id,
                        format!(
                            "the mapped secondary store is in {location}, not in the secondary \
                             region {}",
                            obs.secondary_region
                        ),
                        format!(
                            "map the dataset to a store in {} (`[[pairs.stores.overrides]]`)",
                            obs.secondary_region
                        ),
                    );
                }
            }
        }
        let roles = reader_roles(store.kind);
        if roles.is_empty() {
            if matches!(store.kind, StoreKind::Sql | StoreKind::Synapse) {
                f.push(
                    Severity::Info,
                    codes::IDENTITY_ROLE_UNVERIFIABLE,
                    &store.id,
                    "SQL access is a contained database user, which ARM cannot see",
                    format!(
                        "make sure the secondary account's identity ({principal}) is a database \
                         user with db_datareader"
                    ),
                );
            }
            continue;
        }
        if principal.is_empty() {
            continue; // identity-missing already reported
        }
        let Some(held) = &store.identity_roles else {
            continue;
        };
        let ok = roles
            .iter()
            .any(|(id, _)| held.iter().any(|h| role_guid(h).eq_ignore_ascii_case(id)));
        if !ok {
            let (_, role_name) = roles[0];
            f.push(
                Severity::Critical,
                codes::IDENTITY_ROLE_MISSING,
                &store.id,
                format!(
                    "the secondary account's identity does not hold {role_name} (or a broader \
                     data role) on this store"
                ),
                format!(
                    "az role assignment create --assignee-object-id {principal} \
                     --assignee-principal-type ServicePrincipal --role \"{role_name}\" --scope {}",
                    store.id
                ),
            );
        }
    }
}

/// Accepts a bare GUID or a full role definition id and returns the GUID.
fn role_guid(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// Identifies the consumer behind a provider share subscription: the target of the invitation it
/// was created from (same GUID), else the consumer's email.
fn subscription_target(
    share: &ShareObservation,
    sub: &super::model::SubscriptionObservation,
) -> Option<ConsumerTarget> {
    share
        .invitations
        .iter()
        .find(|i| {
            i.invitation_id
                .as_deref()
                .is_some_and(|g| g.eq_ignore_ascii_case(&sub.name))
        })
        .and_then(|i| i.target.clone())
        .or_else(|| {
            sub.consumer_email
                .as_ref()
                .filter(|e| !e.is_empty())
                .map(|email| ConsumerTarget::Email {
                    email: email.clone(),
                })
        })
}

fn check_consumer_coverage(
    obs: &Observations,
    policy: &Policy,
    p: &AccountSnapshot,
    s: &AccountSnapshot,
    now: OffsetDateTime,
    f: &mut Findings,
) {
    for (key, pshare) in &p.shares {
        let Some(sshare) = s.shares.get(key) else {
            continue; // share-missing already reported
        };
        let mut seen: BTreeSet<ConsumerTarget> = BTreeSet::new();
        for sub in &pshare.subscriptions {
            if !sub.status.eq_ignore_ascii_case("Active") {
                continue;
            }
            let target = subscription_target(pshare, sub);
            let who = target
                .as_ref()
                .map(ConsumerTarget::display)
                .or_else(|| sub.consumer_name.clone())
                .unwrap_or_else(|| sub.name.clone());
            if let Some(t) = &target
                && !seen.insert(t.normalised())
            {
                continue;
            }
            let covered = target.as_ref().is_some_and(|t| covered_on(sshare, t, now));
            if covered {
                continue;
            }
            let policy_for = target
                .as_ref()
                .map(|t| policy.invitation_policy_for(t))
                .unwrap_or(policy.invitations);
            let resource = format!("{}#consumer={who}", sshare.id);
            match policy_for {
                InvitationPolicy::AtFailover => f.push(
                    Severity::Info,
                    codes::CONSUMER_INVITE_AT_FAILOVER,
                    resource,
                    format!(
                        "consumer {who} of share `{}` will be invited to the secondary at \
                         failover",
                        pshare.name
                    ),
                    "nothing to do; set `invitations = \"now\"` to pre-stage the invitation",
                ),
                InvitationPolicy::Now => f.push(
                    Severity::Warning,
                    codes::CONSUMER_NOT_COVERED,
                    resource,
                    format!(
                        "active consumer {who} of share `{}` has no pending or accepted \
                         invitation on the secondary share",
                        pshare.name
                    ),
                    format!(
                        "run {} to invite them, or list them with `invitations = \"at-failover\"`",
                        f.cmd("replicate", &format!("--pair {}", obs.pair))
                    ),
                ),
            }
        }
    }
}

/// True when `share` (a secondary share) holds a live invitation or an active subscription for
/// `target`.
fn covered_on(share: &ShareObservation, target: &ConsumerTarget, now: OffsetDateTime) -> bool {
    let wanted = target.normalised();
    let invited = share.invitations.iter().any(|i| {
        i.target.as_ref().is_some_and(|t| t.normalised() == wanted)
            && (i.status.eq_ignore_ascii_case("Accepted")
                || (i.status.eq_ignore_ascii_case("Pending")
                    && i.expiration.is_none_or(|e| e > now)))
    });
    if invited {
        return true;
    }
    share.subscriptions.iter().any(|sub| {
        sub.status.eq_ignore_ascii_case("Active")
            && subscription_target(share, sub).is_some_and(|t| t.normalised() == wanted)
    })
}

fn check_expiry(obs: &Observations, policy: &Policy, now: OffsetDateTime, f: &mut Findings) {
    let horizon = now + policy.expiry_horizon;
    let days = |at: OffsetDateTime| (at - now).whole_hours() as f64 / 24.0;
    if let Some(s) = obs.secondary.snapshot() {
        for share in s.shares.values() {
            for inv in &share.invitations {
                if !inv.status.eq_ignore_ascii_case("Pending") {
                    continue;
                }
                let Some(exp) = inv.expiration else { continue };
                let who = inv
                    .target
                    .as_ref()
                    .map(ConsumerTarget::display)
                    .unwrap_or_else(|| inv.name.clone());
                if exp <= now {
                    f.push(
                        Severity::Warning,
                        codes::INVITATION_EXPIRED,
                        &inv.id,
                        format!(
                            "the secondary invitation for {who} on share `{}` expired on {}",
                            share.name,
                            fmt_date(exp)
                        ),
                        format!(
                            "delete it and send a new one ({})",
                            f.cmd("replicate", &format!("--pair {}", obs.pair))
                        ),
                    );
                } else if exp <= horizon {
                    f.push(
                        Severity::Warning,
                        codes::INVITATION_EXPIRING,
                        &inv.id,
                        format!(
                            "the secondary invitation for {who} on share `{}` expires on {} (in \
                             {:.1} days)",
                            share.name,
                            fmt_date(exp),
                            days(exp)
                        ),
                        "re-issue the invitation with a later expiration date",
                    );
                }
            }
        }
    }
    for (side, account) in [("primary", &obs.primary), ("secondary", &obs.secondary)] {
        let Some(snapshot) = account.snapshot() else {
            continue;
        };
        for share in snapshot.shares.values() {
            for sub in &share.subscriptions {
                if !sub.status.eq_ignore_ascii_case("Active") {
                    continue;
                }
                let Some(exp) = sub.expiration else { continue };
                if exp <= horizon {
                    let who = subscription_target(share, sub)
                        .map(|t| t.display())
                        .or_else(|| sub.consumer_name.clone())
                        .unwrap_or_else(|| sub.name.clone());
                    f.push(
                        Severity::Warning,
                        codes::SUBSCRIPTION_EXPIRING,
                        &sub.id,
                        format!(
                            "the {side} share subscription of {who} on share `{}` expires on {}",
                            share.name,
                            fmt_date(exp)
                        ),
                        "extend it (ProviderShareSubscriptions_Adjust with a later \
                         expirationDate)",
                    );
                }
            }
        }
    }
}

fn interval_secs(interval: &str) -> Option<i64> {
    if interval.eq_ignore_ascii_case("Hour") {
        Some(3600)
    } else if interval.eq_ignore_ascii_case("Day") {
        Some(86_400)
    } else {
        None
    }
}

fn check_rpo(
    obs: &Observations,
    policy: &Policy,
    now: OffsetDateTime,
    f: &mut Findings,
) -> Vec<ShareRpo> {
    let Some(p) = obs.primary.snapshot() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for share in p.shares.values() {
        let shortest: Option<(&str, i64)> = share
            .sync_settings
            .values()
            .filter_map(|s| {
                let name = s.recurrence_interval.as_deref()?;
                Some((name, interval_secs(name)?))
            })
            .min_by_key(|(_, secs)| *secs);
        let last_success = share.synchronizations.as_ref().and_then(|runs| {
            runs.iter()
                .filter(|r| r.status.eq_ignore_ascii_case("Succeeded"))
                .filter_map(|r| r.end_time.or(r.start_time))
                .max()
        });
        let limit_secs =
            shortest.map(|(_, secs)| (secs as f64 * policy.rpo_factor.max(0.0)).round() as i64);
        let age_secs = last_success.map(|t| (now - t).whole_seconds().max(0));
        let exceeded = matches!((age_secs, limit_secs), (Some(a), Some(l)) if a > l);
        if let (Some((interval, _)), Some(limit)) = (shortest, limit_secs) {
            match (share.synchronizations.as_ref(), age_secs) {
                (Some(_), Some(age)) if exceeded => f.push(
                    Severity::Warning,
                    codes::RPO_EXCEEDED,
                    &share.id,
                    format!(
                        "the last successful snapshot of share `{}` is {} old; the {} schedule \
                         allows {}",
                        share.name,
                        fmt_secs(age),
                        interval.to_ascii_lowercase(),
                        fmt_secs(limit)
                    ),
                    "look at the share's snapshot history for failures (consumer triggers, store \
                     access) and fix them",
                ),
                (Some(_), None) => f.push(
                    Severity::Info,
                    codes::RPO_UNKNOWN,
                    &share.id,
                    format!(
                        "share `{}` has a schedule but no successful snapshot yet",
                        share.name
                    ),
                    "nothing to do if consumers subscribed recently; otherwise check their \
                     triggers",
                ),
                _ => {}
            }
        }
        out.push(ShareRpo {
            share: share.name.clone(),
            recurrence_interval: shortest.map(|(n, _)| n.to_string()),
            last_success,
            age_secs,
            limit_secs,
            exceeded,
        });
    }
    out
}

fn check_drill(obs: &Observations, policy: &Policy, now: OffsetDateTime, f: &mut Findings) {
    let resource = format!("pair:{}", obs.pair);
    match &obs.last_drill {
        None => f.push(
            Severity::Info,
            codes::DRILL_NEVER,
            resource,
            "no successful drill has been recorded for this pair",
            format!(
                "run a drill: {}",
                f.cmd(
                    "failover start",
                    &format!("--pair {} --mode drill", obs.pair)
                )
            ),
        ),
        Some(d) => {
            let age = now - d.completed_at;
            if age > policy.drill_max_age {
                f.push(
                    Severity::Warning,
                    codes::DRILL_STALE,
                    resource,
                    format!(
                        "the last successful drill was {} days ago (allowed: {} days)",
                        age.whole_days(),
                        policy.drill_max_age.whole_days()
                    ),
                    format!(
                        "run a drill: {}",
                        f.cmd(
                            "failover start",
                            &format!("--pair {} --mode drill", obs.pair)
                        )
                    ),
                );
            }
        }
    }
}

fn fmt_date(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Human duration: "3 h 20 min", "2 d 4 h", "45 min".
pub fn fmt_secs(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min")
    }
}

/// Groups findings by code (used by tests and the CLI summary).
pub fn codes_of(report: &Report) -> BTreeMap<String, Severity> {
    report
        .findings
        .iter()
        .map(|f| (f.code.clone(), f.severity))
        .collect()
}
