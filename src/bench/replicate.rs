//! `datashare-dr bench replicate` (issue 4): bootstrap of an empty secondary and the
//! steady-state plan after it, against the simulator (latency 20 ms, throttling on), fleet
//! 200 shares × 10 data sets × 5 consumers.
//!
//! Bootstrap: `replicate` (observe → plan → apply, the same calls as
//! [`reconcile::apply::replicate`](crate::reconcile::apply::replicate), timed per step) through
//! the client the generated DR config gives (`arm_client_from_config`, concurrency 16). Checked:
//! - the writes the simulator counted (PUT/POST/PATCH + DELETE) equal the EXACT minimum, derived
//!   independently of the planner from a list-only observation of the primary: one per selected
//!   share, one per data set whose store the pair's rules map, one per synchronization setting,
//!   one per distinct active consumer (active unexpired subscription or pending unexpired
//!   invitation) whose invitation policy is `now`, plus one if the secondary account has to be
//!   created;
//! - elapsed versus `max(writes × latency / concurrency, max(0, writes − 200) / 10 s)`, target
//!   ≤ 1.5× (the observation reads before the first write are inside the elapsed time);
//! - no 429 provoked.
//!
//! Steady state: a plan right after the bootstrap (fresh client, simulator buckets reset = the
//! bucket given time to refill): no change planned, only list operations (the simulator's
//! per-operation breakdown must show no `*_Get`), elapsed versus
//! `max(reads × latency / concurrency, max(0, reads − 250) / 25 s)`, target ≤ 1.5×.
//!
//! Benchmark glue: `anyhow` allowed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use time::OffsetDateTime;

use super::Row;
use super::table::{
    self, READ_BUCKET, SEED_REPLICATE, WRITE_BUCKET, exact_count_row, fmt_dur, lower_bound, ratio,
};
use crate::cli::BenchArgs;
use crate::config::arm::arm_client_from_config;
use crate::config::dr::Pair;
use crate::reconcile::apply::{apply, plan_pair};
use crate::reconcile::diff::{InvitationPolicy, PairRules};
use crate::reconcile::mapping::{Mapped, map_dataset};
use crate::reconcile::model::{AccountModel, InvitationStatus, SubscriptionStatus, Target};
use crate::reconcile::observe::{AccountObservation, ObserveOptions, observe_account};
use crate::reconcile::pair::ConfiguredPair;
use crate::reconcile::report::Outcome;
use crate::sim::{SimHandle, SimStats};

/// The minimum number of writes that bootstraps an empty secondary, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Minimum {
    pub account: u64,
    pub shares: u64,
    pub datasets: u64,
    pub sync_settings: u64,
    pub invitations: u64,
    /// Primary data sets that cannot be replicated (no store mapping, retired/unknown kind).
    pub unmapped_datasets: u64,
}

impl Minimum {
    pub fn total(&self) -> u64 {
        self.account + self.shares + self.datasets + self.sync_settings + self.invitations
    }
}

fn live(exp: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    exp.is_none_or(|e| e > now)
}

/// The exact minimum of writes to bootstrap an EMPTY (or missing) secondary from `primary`.
pub fn bootstrap_minimum(
    primary: &AccountModel,
    rules: &dyn PairRules,
    create_account: bool,
    now: OffsetDateTime,
) -> Minimum {
    let mut m = Minimum {
        account: u64::from(create_account),
        ..Minimum::default()
    };
    for (name, share) in &primary.shares {
        if !rules.selects(name.as_str()) {
            continue;
        }
        m.shares += 1;
        for (ds_name, spec) in &share.datasets {
            match map_dataset(rules.stores(), name.as_str(), ds_name.as_str(), spec) {
                Mapped::Spec(_) => m.datasets += 1,
                Mapped::Skipped(_) => m.unmapped_datasets += 1,
            }
        }
        m.sync_settings += share.sync_settings.len() as u64;
        let mut targets: BTreeSet<&Target> = BTreeSet::new();
        for c in &share.consumers {
            if c.status == SubscriptionStatus::Active
                && live(c.expiration, now)
                && let Some(t) = &c.target
            {
                targets.insert(t);
            }
        }
        for i in &share.invitations {
            if i.status == InvitationStatus::Pending && live(i.expiration, now) {
                targets.insert(&i.target);
            }
        }
        m.invitations += targets
            .into_iter()
            .filter(|t| rules.invitation_policy(t) == InvitationPolicy::Now)
            .count() as u64;
    }
    m
}

/// Writes the simulator counted (PUT/POST/PATCH and DELETE).
fn writes(s: &SimStats) -> u64 {
    s.writes + s.deletes
}

/// `bench replicate` on its own simulator.
pub fn run(args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    table::run_alone(args, run_on)
}

/// Runs the benchmark on a running simulator (generates its own estate, seed
/// [`SEED_REPLICATE`]).
pub async fn run_on(sim: &SimHandle, quick: bool) -> anyhow::Result<Vec<Row>> {
    let spec = table::fleet(quick, SEED_REPLICATE);
    let label = format!("{}x{}x{}", spec.shares, spec.datasets, spec.consumers);
    let estate = sim.populate(&spec).context("generating the estate")?;
    let cfg = table::estate_config(sim, &estate)?;
    let pair: &Pair = cfg
        .pairs
        .first()
        .context("the generated config has no pair")?;
    let latency = Duration::from_millis(sim.faults().latency_ms);
    let concurrency = cfg.arm.max_concurrency.max(1);
    let now = OffsetDateTime::now_utc();

    // The exact minimum, from a list-only observation (not measured).
    let setup = table::setup_client(sim, &estate)?;
    let selects = |n: &str| pair.selects(n);
    let opts = ObserveOptions {
        concurrency,
        read_account: false,
    };
    let latency_ms = table::begin_setup(sim);
    let primary = observe_account(&setup, &pair.primary, &selects, &opts).await;
    let secondary = observe_account(&setup, &pair.secondary, &selects, &opts).await;
    table::end_setup(sim, latency_ms);
    let primary = primary.context("observing the primary")?;
    let secondary = secondary.context("observing the secondary")?;
    let (primary_model, _) = primary.model();
    let primary_model = primary_model.context("the primary account does not exist")?;
    let secondary_missing = secondary == AccountObservation::Missing;
    if let (Some(s), _) = secondary.model() {
        anyhow::ensure!(
            s.shares.is_empty(),
            "the secondary is not empty ({} shares): not a bootstrap",
            s.shares.len()
        );
    }
    let rules = ConfiguredPair(pair);
    let minimum = bootstrap_minimum(
        &primary_model,
        &rules,
        secondary_missing && pair.create_secondary.is_some(),
        now,
    );

    // Bootstrap, measured: observe + plan, then apply.
    sim.reset_counters();
    let client = arm_client_from_config(&cfg).context("building the ARM client")?;
    let t0 = Instant::now();
    let (_, plan) = plan_pair(&client, pair, false, now, concurrency)
        .await
        .context("bootstrap: observe + plan")?;
    let planned = t0.elapsed();
    let results = apply(&client, &pair.secondary, &plan, concurrency, &|_, _| {}).await;
    let boot = t0.elapsed();
    let boot_stats = sim.stats();
    let failed: Vec<_> = results
        .iter()
        .filter(|r| r.outcome != Outcome::Ok)
        .collect();
    if let Some(f) = failed.first() {
        eprintln!(
            "replicate: {} change(s) not applied; first: {} {:?}",
            failed.len(),
            f.change.address(),
            f.error
        );
    }
    let w = writes(&boot_stats);
    let boot_bound = lower_bound(w, latency, concurrency, WRITE_BUCKET);
    let mut boot_row = Row {
        name: format!("replicate: bootstrap {label} (observe+plan+apply)"),
        measured: fmt_dur(boot),
        detail: format!(
            "{w} writes, {} reads; observe+plan {}, apply {}; {} failed",
            boot_stats.reads,
            fmt_dur(planned),
            fmt_dur(boot - planned),
            failed.len()
        ),
        reference: format!(
            "bound {} = max({w} x {} ms / {concurrency}, ({w} - 200) / 10 s)",
            fmt_dur(boot_bound),
            latency.as_millis()
        ),
        ratio: ratio(boot, boot_bound),
        target_ratio: 1.5,
    };
    if !failed.is_empty() {
        boot_row.ratio = f64::INFINITY;
    }
    let mut min_row = exact_count_row(
        format!("replicate: bootstrap writes {label}"),
        w,
        minimum.total(),
        "minimum",
    );
    min_row.detail = format!(
        "minimum = {} account + {} shares + {} data sets + {} sync settings + {} invitations \
         ({} data sets unmappable); planned {}",
        minimum.account,
        minimum.shares,
        minimum.datasets,
        minimum.sync_settings,
        minimum.invitations,
        minimum.unmapped_datasets,
        plan.changes.len()
    );

    // Steady state: a fresh client and refilled buckets (reset = waiting for the refill).
    sim.reset_counters();
    let client = arm_client_from_config(&cfg).context("building the ARM client")?;
    let t0 = Instant::now();
    let (_, plan) = plan_pair(&client, pair, false, OffsetDateTime::now_utc(), concurrency)
        .await
        .context("steady-state plan")?;
    let steady = t0.elapsed();
    let s = sim.stats();
    let gets: Vec<(&String, u64)> = s
        .operations
        .iter()
        .filter(|(op, o)| o.calls > 0 && !op.contains("_List"))
        .map(|(op, o)| (op, o.calls))
        .collect();
    let lists: Vec<String> = s
        .operations
        .iter()
        .filter(|(op, o)| o.calls > 0 && op.contains("_List"))
        .map(|(op, o)| format!("{op} {}", o.calls))
        .collect();
    let steady_bound = lower_bound(s.reads, latency, concurrency, READ_BUCKET);
    let mut steady_row = Row {
        name: format!("replicate: steady-state plan {label}"),
        measured: fmt_dur(steady),
        detail: format!(
            "{} reads ({}), {} writes, {} changes planned",
            s.reads,
            lists.join(", "),
            writes(&s),
            plan.changes.len()
        ),
        reference: format!(
            "bound {} = max({} x {} ms / {concurrency}, ({} - 250) / 25 s)",
            fmt_dur(steady_bound),
            s.reads,
            latency.as_millis(),
            s.reads
        ),
        ratio: ratio(steady, steady_bound),
        target_ratio: 1.5,
    };
    if !plan.changes.is_empty() || writes(&s) > 0 {
        steady_row.ratio = f64::INFINITY;
    }
    let mut get_row = exact_count_row(
        "replicate: steady-state non-list reads (GET by id)",
        gets.iter().map(|(_, n)| n).sum(),
        0,
        "target",
    );
    if !gets.is_empty() {
        get_row.detail = format!("{gets:?}");
    }
    let mut throttled = exact_count_row(
        "replicate: 429s provoked (bootstrap + steady)",
        boot_stats.throttled + s.throttled,
        0,
        "target",
    );
    throttled.detail = format!(
        "bootstrap {}, steady state {}",
        boot_stats.throttled, s.throttled
    );
    Ok(vec![boot_row, min_row, throttled, steady_row, get_row])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::mapping::{StoreKind, StoreRules};
    use crate::reconcile::model::{
        ConsumerSpec, DataSetSpec, InvitationSpec, ScheduleSpec, ShareModel, StorageAccountRef,
    };

    struct Rules;
    impl StoreRules for Rules {
        fn map_store(&self, _: StoreKind, primary: &str) -> Option<String> {
            primary
                .contains("weu")
                .then(|| primary.replace("weu", "neu"))
        }
    }
    impl PairRules for Rules {
        fn selects(&self, share: &str) -> bool {
            share != "skipped"
        }
        fn stores(&self) -> &dyn StoreRules {
            self
        }
        fn invitation_policy(&self, t: &Target) -> InvitationPolicy {
            match t {
                Target::Email(e) if e.as_str().starts_with("later") => InvitationPolicy::AtFailover,
                _ => InvitationPolicy::Now,
            }
        }
    }

    fn email(s: &str) -> Target {
        Target::Email(s.into())
    }

    #[test]
    fn the_minimum_counts_each_needed_write_once() {
        let now = OffsetDateTime::now_utc();
        let past = now - time::Duration::days(1);
        let mut share = ShareModel::new(crate::reconcile::model::ShareProps {
            description: None,
            terms: None,
            kind: crate::reconcile::model::ShareKind::CopyBased,
        });
        share.sync_settings.insert(
            "schedule".into(),
            ScheduleSpec {
                recurrence_interval: crate::reconcile::model::Recurrence::Day,
                synchronization_time: now,
            },
        );
        let container = |account: &str| DataSetSpec::Container {
            store: StorageAccountRef {
                subscription_id: "00000000-0000-0000-0000-000000000001".into(),
                resource_group: "rg".into(),
                storage_account_name: account.into(),
            },
            container_name: "c".into(),
        };
        share.datasets.insert("mapped".into(), container("stweu"));
        share
            .datasets
            .insert("unmapped".into(), container("stelsewhere"));
        share
            .datasets
            .insert("mapped-too".into(), container("st2weu"));
        let sub = |t: &str, status: SubscriptionStatus, exp| ConsumerSpec {
            target: Some(email(t)),
            candidates: Vec::new(),
            display: t.into(),
            status,
            expiration: exp,
        };
        share.consumers = vec![
            sub("a@x.example", SubscriptionStatus::Active, None),
            sub("b@x.example", SubscriptionStatus::Revoked, None),
            sub("c@x.example", SubscriptionStatus::Active, Some(past)),
            sub("later@x.example", SubscriptionStatus::Active, None),
        ];
        let inv = |t: &str, status: InvitationStatus| InvitationSpec {
            target: email(t),
            expiration: None,
            status,
        };
        share.invitations = vec![
            // Same consumer as the active subscription: one invitation, not two.
            inv("A@x.example", InvitationStatus::Accepted),
            inv("a@x.example", InvitationStatus::Pending),
            inv("d@x.example", InvitationStatus::Pending),
            inv("e@x.example", InvitationStatus::Rejected),
        ];
        let mut primary = AccountModel::default();
        primary.shares.insert("s1".into(), share.clone());
        primary.shares.insert("skipped".into(), share);
        let m = bootstrap_minimum(&primary, &Rules, false, now);
        assert_eq!(
            m,
            Minimum {
                account: 0,
                shares: 1,
                datasets: 2,
                sync_settings: 1,
                invitations: 2,
                unmapped_datasets: 1,
            }
        );
        assert_eq!(m.total(), 6);
        assert_eq!(bootstrap_minimum(&primary, &Rules, true, now).total(), 7);
    }
}
