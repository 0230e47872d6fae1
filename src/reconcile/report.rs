//! The result of `replicate`: per change ok / failed / skipped, with ARM correlation ids.
//!
//! Job: the value `apply` returns, what `replicate --json` and the HTTP function print, and the
//! exit-code decision (`is_complete`).
//! Must not import: `config`, IO.

use std::fmt::Write as _;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::plan::{Change, Finding, Plan, Summary};
use super::render::{change_title, render_finding, total};

/// What happened to one planned change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Applied (or found already done: PUT upsert, 404 on delete).
    Ok,
    /// ARM refused or the call gave up; `error` says why.
    Failed,
    /// Not attempted because something it depends on failed (or a dry run).
    Skipped,
}

/// One change and its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeResult {
    pub change: Change,
    pub outcome: Outcome,
    /// Error text (secret-free) for `Failed`, the reason for `Skipped`.
    pub error: Option<String>,
    /// `x-ms-correlation-request-id` of the last ARM call made for this change.
    pub correlation_id: Option<String>,
    /// A long-running operation of this change still running when the client handed it over
    /// (only with [`ArmClient::with_lro_handoff`](crate::arm::client::ArmClient::with_lro_handoff);
    /// the outcome is then `Failed` and the caller polls the handle).
    pub pending: Option<crate::arm::client::LroHandle>,
}

impl Serialize for ChangeResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = serde_json::to_value(&self.change).map_err(serde::ser::Error::custom)?;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("outcome", &self.outcome)?;
        if let Some(e) = &self.error {
            m.serialize_entry("error", e)?;
        }
        if let Some(c) = &self.correlation_id {
            m.serialize_entry("correlationId", c)?;
        }
        if let Some(h) = &self.pending {
            m.serialize_entry("pendingOperation", &h.operation)?;
        }
        if let serde_json::Value::Object(obj) = v {
            for (k, v) in obj {
                m.serialize_entry(&k, &v)?;
            }
        }
        m.end()
    }
}

/// One pair's replication.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairReport {
    pub pair: String,
    pub primary: String,
    pub secondary: String,
    /// The plan was computed but nothing written.
    pub dry_run: bool,
    /// Whether the secondary account existed when observed (`false` also when not observed).
    pub secondary_exists: bool,
    /// Observation failed (e.g. primary unreachable): no plan, nothing applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub plan: Plan,
    #[serde(skip)]
    pub results: Vec<ChangeResult>,
    /// ARM reads and writes this pair cost (from the client's counters), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm_calls: Option<ArmCalls>,
    /// Replication is paused: the pair is not `normal` (failed over, or a run is moving it);
    /// nothing was observed or written. `reason` says why, `state` is the pair state.
    #[serde(default)]
    pub paused: bool,
    /// The pair state (`pairs/{pair}.json`) when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<crate::pair_state::PhaseView>,
    /// Why nothing (or not everything) was written: the paused message, another pass holding
    /// the pair, deletes waiting for consent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Deletes the policy allows but the caller has not consented to (CLI without
    /// `--prune --yes`): nothing was written.
    #[serde(skip_serializing_if = "is_zero")]
    pub deletes_held: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl PairReport {
    /// An empty report for `pair` (nothing observed yet).
    pub fn new(pair: &str, primary: &str, secondary: &str, dry_run: bool) -> PairReport {
        PairReport {
            pair: pair.to_owned(),
            primary: primary.to_owned(),
            secondary: secondary.to_owned(),
            dry_run,
            secondary_exists: false,
            error: None,
            plan: Plan::default(),
            results: Vec::new(),
            arm_calls: None,
            paused: false,
            state: None,
            reason: None,
            deletes_held: 0,
        }
    }
}

/// ARM calls made for one pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ArmCalls {
    pub reads: u64,
    pub writes: u64,
    pub deletes: u64,
}

/// Counts over all pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicateSummary {
    /// Planned changes (a replace counts as one create and one delete).
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub findings: usize,
    /// Outcomes.
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Pairs that could not be observed.
    pub pairs_failed: usize,
}

/// The whole replicate run.
#[derive(Debug, Clone, Default)]
pub struct ReplicateReport {
    pub pairs: Vec<PairReport>,
}

impl ReplicateReport {
    pub fn summary(&self) -> ReplicateSummary {
        let plan: Summary = total(self.pairs.iter().map(|p| p.plan.summary()));
        let mut s = ReplicateSummary {
            create: plan.create,
            update: plan.update,
            delete: plan.delete,
            findings: plan.findings,
            ..ReplicateSummary::default()
        };
        for p in &self.pairs {
            if p.error.is_some() {
                s.pairs_failed += 1;
            }
            for r in &p.results {
                match r.outcome {
                    Outcome::Ok => s.succeeded += 1,
                    Outcome::Failed => s.failed += 1,
                    Outcome::Skipped => s.skipped += 1,
                }
            }
        }
        s
    }

    /// Everything planned was applied and every pair observed (dry runs count as complete).
    pub fn is_complete(&self) -> bool {
        self.pairs.iter().all(|p| {
            p.error.is_none() && (p.dry_run || p.results.iter().all(|r| r.outcome == Outcome::Ok))
        })
    }
}

struct WithPair<'a, T> {
    pair: &'a str,
    inner: &'a T,
}

impl<T: Serialize> Serialize for WithPair<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = serde_json::to_value(self.inner).map_err(serde::ser::Error::custom)?;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("pair", self.pair)?;
        if let serde_json::Value::Object(obj) = v {
            for (k, v) in obj {
                m.serialize_entry(&k, &v)?;
            }
        }
        m.end()
    }
}

/// JSON: `{summary, results: [...], changes: [...] (dry run), findings: [...], pairs: [...]}`.
impl Serialize for ReplicateReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let results: Vec<WithPair<'_, ChangeResult>> = self
            .pairs
            .iter()
            .flat_map(|p| {
                p.results.iter().map(|r| WithPair {
                    pair: &p.pair,
                    inner: r,
                })
            })
            .collect();
        let changes: Vec<WithPair<'_, Change>> = self
            .pairs
            .iter()
            .flat_map(|p| {
                p.plan.changes.iter().map(|c| WithPair {
                    pair: &p.pair,
                    inner: c,
                })
            })
            .collect();
        let findings: Vec<WithPair<'_, Finding>> = self
            .pairs
            .iter()
            .flat_map(|p| {
                p.plan.findings.iter().map(|f| WithPair {
                    pair: &p.pair,
                    inner: f,
                })
            })
            .collect();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("summary", &self.summary())?;
        m.serialize_entry("complete", &self.is_complete())?;
        m.serialize_entry("results", &results)?;
        m.serialize_entry("changes", &changes)?;
        m.serialize_entry("findings", &findings)?;
        m.serialize_entry("pairs", &self.pairs)?;
        m.end()
    }
}

fn outcome_word(r: &ChangeResult) -> String {
    match r.outcome {
        Outcome::Ok => "done".into(),
        Outcome::Failed => {
            let mut s = format!("FAILED: {}", r.error.as_deref().unwrap_or("unknown error"));
            if let Some(c) = &r.correlation_id {
                let _ = write!(s, " (correlation id {c})");
            }
            s
        }
        Outcome::Skipped => format!(
            "skipped: {}",
            r.error
                .as_deref()
                .unwrap_or("a change it depends on failed")
        ),
    }
}

/// Human output of `replicate`.
pub fn render_human(report: &ReplicateReport) -> String {
    let mut out = String::new();
    for p in &report.pairs {
        if p.paused && p.results.is_empty() {
            let _ = writeln!(
                out,
                "{}\n",
                p.reason.as_deref().unwrap_or("replication paused")
            );
            continue;
        }
        let _ = writeln!(out, "Pair {}: {} -> {}", p.pair, p.primary, p.secondary);
        if p.deletes_held > 0 {
            for c in p
                .plan
                .changes
                .iter()
                .filter(|c| c.action() == super::plan::Action::Delete)
            {
                let _ = writeln!(out, "  {}", change_title(c));
            }
            let _ = writeln!(
                out,
                "  ! {}",
                p.reason.as_deref().unwrap_or("deletes need --prune --yes")
            );
            out.push('\n');
            continue;
        }
        if let Some(e) = &p.error {
            let _ = writeln!(out, "  ! not replicated: {e}");
            out.push('\n');
            continue;
        }
        if p.results.is_empty() {
            let _ = writeln!(out, "  No changes. The secondary matches the primary.");
        }
        for r in &p.results {
            let _ = writeln!(out, "  {} ... {}", change_title(&r.change), outcome_word(r));
        }
        for f in &p.plan.findings {
            render_finding(&mut out, f);
        }
        out.push('\n');
    }
    let s = report.summary();
    let _ = writeln!(
        out,
        "Replicate: {} applied, {} failed, {} skipped, {} findings{}.",
        s.succeeded,
        s.failed,
        s.skipped,
        s.findings,
        if s.pairs_failed > 0 {
            format!(", {} pairs not observed", s.pairs_failed)
        } else {
            String::new()
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::model::{ShareKind, ShareProps};

    fn change(n: &str) -> Change {
        Change::CreateShare {
            share: n.into(),
            props: ShareProps {
                description: None,
                terms: None,
                kind: ShareKind::CopyBased,
            },
        }
    }

    fn pair(results: Vec<ChangeResult>, error: Option<&str>) -> PairReport {
        PairReport {
            pair: "p".into(),
            primary: "/a".into(),
            secondary: "/b".into(),
            dry_run: false,
            secondary_exists: true,
            error: error.map(str::to_string),
            plan: Plan {
                changes: results.iter().map(|r| r.change.clone()).collect(),
                findings: vec![],
            },
            results,
            arm_calls: None,
            paused: false,
            state: None,
            reason: None,
            deletes_held: 0,
        }
    }

    fn result(n: &str, outcome: Outcome) -> ChangeResult {
        ChangeResult {
            change: change(n),
            outcome,
            error: (outcome != Outcome::Ok).then(|| "HTTP 400 BadRequest".to_string()),
            correlation_id: Some(format!("corr-{n}")),
            pending: None,
        }
    }

    #[test]
    fn a_run_is_complete_only_when_every_change_succeeded_and_every_pair_was_observed() {
        let ok = ReplicateReport {
            pairs: vec![pair(vec![result("a", Outcome::Ok)], None)],
        };
        assert!(ok.is_complete());
        for bad in [
            pair(vec![result("a", Outcome::Failed)], None),
            pair(vec![result("a", Outcome::Skipped)], None),
            pair(vec![], Some("primary unreachable")),
        ] {
            assert!(!ReplicateReport { pairs: vec![bad] }.is_complete());
        }
    }

    #[test]
    fn json_results_carry_outcome_error_and_correlation_id() {
        let r = ReplicateReport {
            pairs: vec![pair(
                vec![result("a", Outcome::Ok), result("b", Outcome::Failed)],
                None,
            )],
        };
        let v = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(
            v["summary"],
            serde_json::json!({"create": 2, "update": 0, "delete": 0, "findings": 0,
                "succeeded": 1, "failed": 1, "skipped": 0, "pairsFailed": 0})
        );
        assert_eq!(v["complete"], false);
        assert_eq!(v["results"][1]["pair"], "p");
        assert_eq!(v["results"][1]["outcome"], "failed");
        assert_eq!(v["results"][1]["error"], "HTTP 400 BadRequest");
        assert_eq!(v["results"][1]["correlationId"], "corr-b");
        assert_eq!(v["results"][1]["address"], "shares/b");
        assert_eq!(v["pairs"][0]["secondaryExists"], true);
        let text = render_human(&r);
        assert!(
            text.contains(
                "+ create share b ... FAILED: HTTP 400 BadRequest (correlation id corr-b)"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("Replicate: 1 applied, 1 failed, 0 skipped, 0 findings.\n"),
            "{text}"
        );
    }
}
