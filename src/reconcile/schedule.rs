//! Execution order of a plan: phases, dependencies and bounded concurrency.
//!
//! Job: run the changes of a [`Plan`](super::plan::Plan) through an executor (the ARM calls live
//! in `apply`), phase by phase — account, shares, data sets, synchronization settings,
//! invitations — with up to `concurrency` changes in flight inside a phase.
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

use std::collections::HashSet;
use std::future::Future;

use futures::StreamExt;
use futures::stream;

use super::plan::{Change, Phase};
use super::report::{ChangeResult, Outcome};

/// Called after each finished change with (done, total).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

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
    let mut results: Vec<Option<ChangeResult>> = vec![None; total];
    let mut done = 0usize;
    let mut account_failed = false;
    let mut failed_shares: HashSet<String> = HashSet::new();
    let concurrency = concurrency.max(1);

    for phase in Phase::ALL {
        let mut runnable: Vec<(usize, Change)> = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            if c.phase() != phase {
                continue;
            }
            let blocked = if account_failed {
                Some("the secondary account could not be created".to_string())
            } else if phase > Phase::Share {
                c.share()
                    .filter(|s| failed_shares.contains(s.key()))
                    .map(|s| format!("share {s} could not be created"))
            } else {
                None
            };
            match blocked {
                Some(reason) => {
                    results[i] = Some(ChangeResult {
                        change: c.clone(),
                        outcome: Outcome::Skipped,
                        error: Some(reason),
                        correlation_id: None,
                    });
                    done += 1;
                    progress(done, total);
                }
                None => runnable.push((i, c.clone())),
            }
        }
        let exec = &exec;
        let mut finished = stream::iter(runnable)
            .map(|(i, c)| async move { (i, exec(c).await) })
            .buffer_unordered(concurrency);
        while let Some((i, r)) = finished.next().await {
            if r.outcome != Outcome::Ok {
                match &r.change {
                    Change::CreateAccount { .. } => account_failed = true,
                    Change::CreateShare { share, .. } => {
                        failed_shares.insert(share.key().to_string());
                    }
                    _ => {}
                }
            }
            results[i] = Some(r);
            done += 1;
            progress(done, total);
        }
    }
    results
        .into_iter()
        .zip(changes)
        .map(|(r, c)| {
            r.unwrap_or(ChangeResult {
                change: c,
                outcome: Outcome::Skipped,
                error: Some("not scheduled".into()),
                correlation_id: None,
            })
        })
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
    fn phases_never_overlap_and_concurrency_is_bounded() {
        let mut changes = Vec::new();
        for i in 0..6 {
            changes.push(share(&format!("s{i}")));
        }
        for i in 0..6 {
            changes.push(setting(&format!("s{i}"), "x"));
        }
        let log: Mutex<Vec<(Phase, bool)>> = Mutex::new(Vec::new());
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
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    if let Ok(mut l) = log.lock() {
                        l.push((c.phase(), true));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    if let Ok(mut l) = log.lock() {
                        l.push((c.phase(), false));
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
        assert_eq!(progress_calls.load(Ordering::SeqCst), 12);
        let l = log.lock().map(|l| l.clone()).unwrap_or_default();
        let last_share_end = l
            .iter()
            .rposition(|(p, start)| *p == Phase::Share && !*start)
            .unwrap_or(usize::MAX);
        let first_setting_start = l
            .iter()
            .position(|(p, start)| *p == Phase::SyncSetting && *start)
            .unwrap_or(0);
        assert!(last_share_end < first_setting_start, "{l:?}");
    }
}
