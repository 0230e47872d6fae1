//! Rendering plans for people (`terraform plan` style) and machines (stable camelCase JSON).
//!
//! Human form, one line per change, then indented attributes:
//! `+ create`, `~ update`, `-/+ replace`, `- delete`, `! finding`, and a closing line
//! `Plan: N to create, N to update, N to delete, N findings.`
//!
//! JSON form ([`PlanOutput`]): `{summary: {create, update, delete, findings}, changes: [...],
//! findings: [...], pairs: [...]}`; every change and finding carries its `pair`.
//!
//! Must not import: `arm`, `config`, IO (callers print the returned strings).

use std::fmt::Write as _;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::model::{ScheduleSpec, ShareProps};
use super::plan::{Action, Change, Finding, Plan, Summary};

/// One pair's plan with the context to print it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairPlan {
    pub pair: String,
    pub primary: String,
    pub secondary: String,
    pub secondary_exists: bool,
    #[serde(skip)]
    pub plan: Plan,
    /// Replication is paused (the pair is not `normal`): no plan was made.
    pub paused: bool,
    /// The pair state, when it was read (`null` without storage settings: unknown).
    pub state: Option<crate::pair_state::PhaseView>,
    /// Why the pair is paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Adds `pair` to a serialised change or finding.
struct WithPair<'a, T> {
    pair: &'a str,
    inner: &'a T,
}

impl<T: Serialize> Serialize for WithPair<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Serialise the inner value to a map first, then prepend `pair`.
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

/// JSON document of `plan --json` (and `dryRun` of the HTTP function).
pub struct PlanOutput<'a> {
    pub pairs: &'a [PairPlan],
}

impl PlanOutput<'_> {
    pub fn summary(&self) -> Summary {
        total(self.pairs.iter().map(|p| p.plan.summary()))
    }
}

pub(crate) fn total(it: impl Iterator<Item = Summary>) -> Summary {
    it.fold(Summary::default(), |mut a, s| {
        a.create += s.create;
        a.update += s.update;
        a.delete += s.delete;
        a.findings += s.findings;
        a
    })
}

impl Serialize for PlanOutput<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
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
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("summary", &self.summary())?;
        m.serialize_entry("changes", &changes)?;
        m.serialize_entry("findings", &findings)?;
        m.serialize_entry("pairs", self.pairs)?;
        m.end()
    }
}

/// Symbol at the start of a change line.
pub fn symbol(a: Action) -> &'static str {
    match a {
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::Delete => "-",
    }
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
    }
}

fn q(s: &Option<String>) -> String {
    match s {
        Some(v) => format!("{v:?}"),
        None => "(none)".into(),
    }
}

fn share_fields(p: &ShareProps) -> Vec<(&'static str, String)> {
    vec![
        ("shareKind", p.kind.as_str().to_string()),
        ("description", q(&p.description)),
        ("terms", q(&p.terms)),
    ]
}

fn schedule_fields(s: &ScheduleSpec) -> Vec<(&'static str, String)> {
    vec![
        (
            "recurrenceInterval",
            s.recurrence_interval.as_str().to_string(),
        ),
        ("synchronizationTime", rfc3339(s.synchronization_time)),
    ]
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn push_fields(out: &mut String, fields: &[(&'static str, String)]) {
    for (k, v) in fields {
        let _ = writeln!(out, "        {k}: {v}");
    }
}

fn push_diff(
    out: &mut String,
    before: &[(&'static str, String)],
    after: &[(&'static str, String)],
) {
    for (k, new) in after {
        match before.iter().find(|(bk, _)| bk == k) {
            Some((_, old)) if old == new => {}
            Some((_, old)) => {
                let _ = writeln!(out, "      ~ {k}: {old} -> {new}");
            }
            None => {
                let _ = writeln!(out, "      + {k}: {new}");
            }
        }
    }
    for (k, old) in before {
        if !after.iter().any(|(ak, _)| ak == k) {
            let _ = writeln!(out, "      - {k}: {old}");
        }
    }
}

/// The title of one change, e.g. `+ create dataSet sales/orders (Blob)`.
pub fn change_title(c: &Change) -> String {
    let what = match c {
        Change::CreateAccount { spec } => format!("account in {}", spec.location),
        _ => {
            let mut w = format!(
                "{} {}",
                c.resource_type(),
                c.share().map(|s| s.as_str()).unwrap_or("")
            );
            if let Some(i) = c.item() {
                w.push('/');
                w.push_str(i.as_str());
            }
            w
        }
    };
    let extra = match c {
        Change::CreateDataSet { spec, .. } => format!(" ({})", spec.kind()),
        Change::ReplaceDataSet { after, .. } => {
            format!(" ({}; data sets cannot be updated in place)", after.kind())
        }
        Change::ReplaceSyncSetting { .. } => " (schedule changed; delete, then create)".into(),
        Change::CreateInvitation { spec, .. } => format!(" for {}", spec.target),
        _ => String::new(),
    };
    format!("{} {} {what}{extra}", symbol(c.action()), verb(c.action()))
}

/// One change with its attributes, as printed by `plan`.
pub fn render_change(out: &mut String, c: &Change) {
    let _ = writeln!(out, "  {}", change_title(c));
    match c {
        Change::CreateAccount { spec } => {
            let mut f = vec![("location", spec.location.clone())];
            f.push(("identity", "SystemAssigned".into()));
            for (k, v) in &spec.tags {
                f.push(("tag", format!("{k}={v}")));
            }
            push_fields(out, &f);
        }
        Change::CreateShare { props, .. } => push_fields(out, &share_fields(props)),
        Change::UpdateShare { before, after, .. } => {
            push_diff(out, &share_fields(before), &share_fields(after))
        }
        Change::CreateDataSet { spec, .. } => push_fields(out, &spec.fields()),
        Change::ReplaceDataSet { before, after, .. } => {
            if before.kind() != after.kind() {
                let _ = writeln!(out, "      ~ kind: {} -> {}", before.kind(), after.kind());
            }
            push_diff(out, &before.fields(), &after.fields())
        }
        Change::CreateSyncSetting { spec, .. } => push_fields(out, &schedule_fields(spec)),
        Change::ReplaceSyncSetting { before, after, .. } => {
            push_diff(out, &schedule_fields(before), &schedule_fields(after))
        }
        Change::CreateInvitation { spec, .. } => {
            let f = vec![
                (
                    "expirationDate",
                    spec.expiration
                        .map(rfc3339)
                        .unwrap_or_else(|| "(none)".into()),
                ),
                ("reason", spec.reason.clone()),
            ];
            push_fields(out, &f);
        }
        Change::DeleteShare { .. }
        | Change::DeleteDataSet { .. }
        | Change::DeleteSyncSetting { .. } => {}
    }
}

pub fn render_finding(out: &mut String, f: &Finding) {
    let sev = match f.severity {
        super::plan::Severity::Info => "info",
        super::plan::Severity::Warning => "warning",
        super::plan::Severity::Error => "error",
    };
    let code = serde_json::to_value(f.code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let _ = writeln!(out, "  ! finding [{sev} {code}] {}", f.message);
}

/// The summary line.
pub fn summary_line(s: &Summary) -> String {
    format!(
        "Plan: {} to create, {} to update, {} to delete, {} findings.",
        s.create, s.update, s.delete, s.findings
    )
}

/// The whole human plan for one or more pairs.
pub fn render_human(pairs: &[PairPlan]) -> String {
    let mut out = String::new();
    for p in pairs {
        if p.paused {
            let _ = writeln!(
                out,
                "{}\n",
                p.reason
                    .as_deref()
                    .unwrap_or("replication paused for this pair")
            );
            continue;
        }
        let _ = writeln!(out, "Pair {}:", p.pair);
        let _ = writeln!(out, "  primary:   {}", p.primary);
        let _ = writeln!(
            out,
            "  secondary: {}{}",
            p.secondary,
            if p.secondary_exists {
                ""
            } else {
                " (does not exist)"
            }
        );
        out.push('\n');
        if p.plan.changes.is_empty() && p.plan.findings.is_empty() {
            let _ = writeln!(out, "  No changes. The secondary matches the primary.");
        }
        for c in &p.plan.changes {
            render_change(&mut out, c);
        }
        if !p.plan.findings.is_empty() && !p.plan.changes.is_empty() {
            out.push('\n');
        }
        for f in &p.plan.findings {
            render_finding(&mut out, f);
        }
        out.push('\n');
    }
    let s = total(pairs.iter().map(|p| p.plan.summary()));
    out.push_str(&summary_line(&s));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::model::{
        DataSetSpec, Name, Recurrence, ShareKind, StorageAccountRef, Target,
    };
    use crate::reconcile::plan::{FindingCode, NewInvitation};
    use time::macros::datetime;

    fn blob(path: &str) -> DataSetSpec {
        DataSetSpec::Blob {
            store: StorageAccountRef {
                subscription_id: "S".into(),
                resource_group: "rg".into(),
                storage_account_name: "acct".into(),
            },
            container_name: "c".into(),
            file_path: path.into(),
        }
    }

    fn sample() -> Vec<PairPlan> {
        let share: Name = "sales".into();
        let plan = Plan {
            changes: vec![
                Change::CreateShare {
                    share: share.clone(),
                    props: ShareProps {
                        description: Some("d".into()),
                        terms: None,
                        kind: ShareKind::CopyBased,
                    },
                },
                Change::ReplaceDataSet {
                    share: share.clone(),
                    dataset: "orders".into(),
                    before: blob("a.csv"),
                    after: blob("b.csv"),
                },
                Change::ReplaceSyncSetting {
                    share: share.clone(),
                    setting: "daily".into(),
                    before: ScheduleSpec {
                        recurrence_interval: Recurrence::Day,
                        synchronization_time: datetime!(2026-01-01 02:00 UTC),
                    },
                    after: ScheduleSpec {
                        recurrence_interval: Recurrence::Day,
                        synchronization_time: datetime!(2026-01-01 05:00 UTC),
                    },
                },
                Change::DeleteDataSet {
                    share: share.clone(),
                    dataset: "old".into(),
                },
                Change::CreateInvitation {
                    share: share.clone(),
                    invitation: "dr-1".into(),
                    spec: NewInvitation {
                        target: Target::Email("a@b.c".into()),
                        expiration: None,
                        reason: "r".into(),
                    },
                },
            ],
            findings: vec![Finding::new(
                FindingCode::UnmappedStore,
                Some("sales"),
                Some("sales/x"),
                "no mapping",
            )],
        };
        vec![PairPlan {
            pair: "p1".into(),
            primary: "/a".into(),
            secondary: "/b".into(),
            secondary_exists: true,
            plan,
            paused: false,
            state: None,
            reason: None,
        }]
    }

    #[test]
    fn human_output_reads_like_terraform_plan() {
        let out = render_human(&sample());
        assert!(out.contains("  + create share sales\n"), "{out}");
        assert!(
            out.contains(
                "-/+ replace dataSet sales/orders (Blob; data sets cannot be updated in place)"
            ),
            "{out}"
        );
        assert!(out.contains("      ~ filePath: a.csv -> b.csv\n"), "{out}");
        assert!(
            out.contains("~ synchronizationTime: 2026-01-01T02:00:00Z -> 2026-01-01T05:00:00Z"),
            "{out}"
        );
        assert!(out.contains("  - delete dataSet sales/old\n"), "{out}");
        assert!(
            out.contains("  + create invitation sales/dr-1 for a@b.c\n"),
            "{out}"
        );
        assert!(
            out.contains("  ! finding [warning unmapped-store] no mapping\n"),
            "{out}"
        );
        assert!(
            out.ends_with("Plan: 4 to create, 0 to update, 3 to delete, 1 findings.\n"),
            "{out}"
        );
    }

    #[test]
    fn json_output_has_summary_changes_and_findings_with_camel_case_fields() {
        let pairs = sample();
        let v = serde_json::to_value(PlanOutput { pairs: &pairs }).unwrap_or_default();
        assert_eq!(
            v["summary"],
            serde_json::json!({"create": 4, "update": 0, "delete": 3, "findings": 1})
        );
        let c = &v["changes"][1];
        assert_eq!(c["pair"], "p1");
        assert_eq!(c["action"], "replace");
        assert_eq!(c["resourceType"], "dataSet");
        assert_eq!(c["address"], "shares/sales/dataSets/orders");
        assert_eq!(c["after"]["kind"], "Blob");
        assert_eq!(c["after"]["filePath"], "b.csv");
        assert_eq!(c["after"]["storageAccountName"], "acct");
        assert_eq!(
            v["changes"][2]["after"]["synchronizationTime"],
            "2026-01-01T05:00:00Z"
        );
        assert_eq!(v["changes"][4]["after"]["target"], "a@b.c");
        assert_eq!(v["findings"][0]["code"], "unmapped-store");
        assert_eq!(v["findings"][0]["pair"], "p1");
        assert_eq!(v["pairs"][0]["secondaryExists"], true);
    }
}
