//! Execution order of a plan: dependencies and bounded concurrency.
//!
//! Job: run the changes of a [`Plan`](super::plan::Plan) through an executor (the ARM calls live
//! in `apply`) as fast as the real dependencies allow: the account change first; then every
//! share's own change (create / update / delete); each change under a share (data sets,
//! synchronization settings, invitations) starts as soon as *its* share's change has finished —
//! no global barrier between phases, so a slow share does not hold up the others. At most
//! `concurrency` changes are in flight at any time (a fair semaphore: earlier-queued changes go
//! first, so shares are created before the bulk of their children is queued).
//!
//! Guarantees:
//! - Nothing under a share starts before that share's own change has finished; if creating the
//!   account failed everything is skipped, if creating a share failed everything under it is
//!   skipped (never attempted against a share that does not exist).
//! - Results come back in plan order, one per change.
//!
//! Assumptions: the executor is idempotent per change (PUT upserts, 404 on delete is done) and
//! does its own delete-before-create for replacements.
//!
//! Must not import: `arm`, `config` (the executor is a closure).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use super::plan::{Change, Phase};
use super::report::{ChangeResult, Outcome};

/// One share's changes: its own (index, change), then the (index, change)s under it.
type ShareGroup = (Option<(usize, Change)>, Vec<(usize, Change)>);

/// Called after each finished change with (done, total).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

fn skipped(c: Change, reason: String) -> ChangeResult {
    ChangeResult {
        change: c,
        outcome: Outcome::Skipped,
        error: Some(reason),
        correlation_id: None,
        pending: None,
    }
}

/// Run `changes` (already in plan order) through `exec`.
pub async fn run<F, Fut>(
    changes: Vec<Change>,
    concurrency: usize,
    exec: F,
    progress: Progress<'_>,
) -> Vec<ChangeResult>
where
    F: Fn(Change) -> Fut,
    Fut: Future<Output = ChangeResult>,
{
    let total = changes.len();
    let done = AtomicUsize::new(0);
    let tick = || progress(done.fetch_add(1, Ordering::SeqCst) + 1, total);
    let permits = Semaphore::new(concurrency.max(1));
    let exec = &exec;
    let run_one = |i: usize, c: Change| {
        let permits = &permits;
        let tick = &tick;
        async move {
            let r = match permits.acquire().await {
                Ok(_permit) => exec(c).await,
                Err(_) => skipped(c, "scheduler closed".into()),
            };
            tick();
            (i, r)
        }
    };

    let mut results: Vec<Option<ChangeResult>> = vec![None; total];
    let mut account_failed = false;
    // The account first, alone.
    for (i, c) in changes.iter().enumerate() {
        if c.phase() == Phase::Account {
            let (i, r) = run_one(i, c.clone()).await;
            account_failed |= r.outcome != Outcome::Ok;
            results[i] = Some(r);
        }
    }

    // Then one pipeline per share: its own change, then its children.
    let mut groups: BTreeMap<String, ShareGroup> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate() {
        if c.phase() == Phase::Account {
            continue;
        }
        if account_failed {
            results[i] = Some(skipped(
                c.clone(),
                "the secondary account could not be created".into(),
            ));
            tick();
            continue;
        }
        let key = c.share().map(|s| s.key().to_string()).unwrap_or_default();
        let g = groups.entry(key).or_default();
        if c.phase() == Phase::Share {
            g.0 = Some((i, c.clone()));
        } else {
            g.1.push((i, c.clone()));
        }
    }
    let pipelines = groups.into_values().map(|(head, children)| {
        let run_one = &run_one;
        let tick = &tick;
        async move {
            let mut out = Vec::with_capacity(children.len() + 1);
            let mut blocked = None;
            if let Some((i, c)) = head {
                let creates = matches!(c, Change::CreateShare { .. });
                let share = c.share().map(|s| s.to_string()).unwrap_or_default();
                let (i, r) = run_one(i, c).await;
                if creates && r.outcome != Outcome::Ok {
                    blocked = Some(format!("share {share} could not be created"));
                }
                out.push((i, r));
            }
            match blocked {
                Some(reason) => {
                    for (i, c) in children {
                        out.push((i, skipped(c, reason.clone())));
                        tick();
                    }
                }
                None => {
                    out.extend(
                        futures::future::join_all(children.into_iter().map(|(i, c)| run_one(i, c)))
                            .await,
                    );
                }
            }
            out
        }
    });
    for group in futures::future::join_all(pipelines).await {
        for (i, r) in group {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .zip(changes)
        .map(|(r, c)| r.unwrap_or_else(|| skipped(c, "not scheduled".into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::reconcile::model::{Recurrence, ScheduleSpec, ShareKind, ShareProps};
    use crate::reconcile::plan::AccountSpec;

    fn share(n: &str) -> Change {
        Change::CreateShare {
            share: n.into(),
            props: ShareProps {
                description: None,
                terms: None,
                kind: ShareKind::CopyBased,
            },
        }
    }
    fn setting(share: &str, n: &str) -> Change {
        Change::CreateSyncSetting {
            share: share.into(),
            setting: n.into(),
            spec: ScheduleSpec {
                recurrence_interval: Recurrence::Day,
                synchronization_time: time::macros::datetime!(2026-01-01 00:00 UTC),
            },
        }
    }
    fn ok(c: Change) -> ChangeResult {
        ChangeResult {
            change: c,
            outcome: Outcome::Ok,
            error: None,
            correlation_id: None,
            pending: None,
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt.block_on(f),
            Err(e) => panic!("runtime: {e}"),
        }
    }

    #[test]
    fn children_of_a_share_that_failed_to_create_are_skipped() {
        let changes = vec![share("a"), share("b"), setting("a", "x"), setting("b", "y")];
        let results = block_on(run(
            changes,
            4,
            |c: Change| async move {
                if matches!(&c, Change::CreateShare { share, .. } if share.as_str() == "a") {
                    ChangeResult {
                        change: c,
                        outcome: Outcome::Failed,
                        error: Some("boom".into()),
                        correlation_id: Some("corr".into()),
                        pending: None,
                    }
                } else {
                    ok(c)
                }
            },
            &|_, _| {},
        ));
        let outcomes: Vec<Outcome> = results.iter().map(|r| r.outcome).collect();
        assert_eq!(
            outcomes,
            vec![Outcome::Failed, Outcome::Ok, Outcome::Skipped, Outcome::Ok]
        );
    }

    #[test]
    fn a_failed_account_skips_everything_else() {
        let changes = vec![
            Change::CreateAccount {
                spec: AccountSpec {
                    location: "northeurope".into(),
                    tags: BTreeMap::new(),
                },
            },
            share("a"),
            setting("a", "x"),
        ];
        let calls = AtomicUsize::new(0);
        let results = block_on(run(
            changes,
            2,
            |c: Change| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    ChangeResult {
                        change: c,
                        outcome: Outcome::Failed,
                        error: Some("no".into()),
                        correlation_id: None,
                        pending: None,
                    }
                }
            },
            &|_, _| {},
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(results[1].outcome, Outcome::Skipped);
        assert_eq!(results[2].outcome, Outcome::Skipped);
    }

    #[test]
    fn children_start_only_after_their_share_and_concurrency_is_bounded() {
        let mut changes = Vec::new();
        for i in 0..6 {
            changes.push(share(&format!("s{i}")));
        }
        for i in 0..6 {
            changes.push(setting(&format!("s{i}"), "x"));
            changes.push(setting(&format!("s{i}"), "y"));
        }
        // (share key, is the share's own change, started) in time order.
        let log: Mutex<Vec<(String, bool, bool)>> = Mutex::new(Vec::new());
        let in_flight = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let progress_calls = AtomicUsize::new(0);
        let results = block_on(run(
            changes,
            3,
            |c: Change| {
                let log = &log;
                let in_flight = &in_flight;
                let peak = &peak;
                async move {
                    let key = c.share().map(|s| s.key().to_string()).unwrap_or_default();
                    let own = c.phase() == Phase::Share;
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    if let Ok(mut l) = log.lock() {
                        l.push((key.clone(), own, true));
                    }
                    // Share s0 is slow: its children must still wait for it.
                    let ms = if own && key == "s0" { 30 } else { 5 };
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    if let Ok(mut l) = log.lock() {
                        l.push((key, own, false));
                    }
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    ok(c)
                }
            },
            &|_, _| {
                progress_calls.fetch_add(1, Ordering::SeqCst);
            },
        ));
        assert!(results.iter().all(|r| r.outcome == Outcome::Ok));
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert!(peak.load(Ordering::SeqCst) >= 2, "should run concurrently");
        assert_eq!(progress_calls.load(Ordering::SeqCst), 18);
        let l = log.lock().map(|l| l.clone()).unwrap_or_default();
        for i in 0..6 {
            let key = format!("s{i}");
            let share_end = l
                .iter()
                .position(|(k, own, start)| *k == key && *own && !*start)
                .unwrap_or(usize::MAX);
            let first_child = l
                .iter()
                .position(|(k, own, start)| *k == key && !*own && *start)
                .unwrap_or(0);
            assert!(share_end < first_child, "{key}: {l:?}");
        }
        // No global barrier: some child of a fast share started before slow s0 finished.
        let s0_end = l
            .iter()
            .position(|(k, own, start)| k == "s0" && *own && !*start)
            .unwrap_or(0);
        assert!(
            l[..s0_end].iter().any(|(_, own, start)| !*own && *start),
            "{l:?}"
        );
    }
}
