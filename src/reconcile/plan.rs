//! The plan: an ordered list of changes to make the secondary match the primary, and findings.
//!
//! Job: the value `diff` produces and `apply` executes; also what `plan --json` prints.
//!
//! Invariants:
//! - `Plan::changes` is ordered account → shares → data sets → synchronization settings →
//!   invitations (then by share and item name), so executing phases in order respects every
//!   dependency (a share exists before anything under it).
//! - Data sets and synchronization settings are never updated in place: a change is a
//!   `Replace*` (delete, then create), and the plan says so.
//! - Deletions appear only when pruning was asked for; otherwise extra secondary items are
//!   findings.
//! - JSON field names are camelCase and stable (runbooks and the HTTP function return them).
//!
//! Must not import: `arm`, `config`, IO.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use super::model::{DataSetSpec, Name, ScheduleSpec, ShareProps, Target};

/// Settings for creating the secondary account when it is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSpec {
    pub location: String,
    pub tags: BTreeMap<String, String>,
}

/// An invitation to send on a secondary share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewInvitation {
    pub target: Target,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expiration: Option<OffsetDateTime>,
    /// Why this target is invited (which primary consumer it mirrors).
    pub reason: String,
}

/// One change to the secondary account.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Create the secondary account (configured via `create_secondary`).
    CreateAccount {
        spec: AccountSpec,
    },
    CreateShare {
        share: Name,
        props: ShareProps,
    },
    /// Description/terms differ: a PUT upsert of the share.
    UpdateShare {
        share: Name,
        before: ShareProps,
        after: ShareProps,
    },
    /// Prune only.
    DeleteShare {
        share: Name,
    },
    CreateDataSet {
        share: Name,
        dataset: Name,
        spec: DataSetSpec,
    },
    /// Data sets cannot be updated in place: delete, then create.
    ReplaceDataSet {
        share: Name,
        dataset: Name,
        before: DataSetSpec,
        after: DataSetSpec,
    },
    /// Prune only.
    DeleteDataSet {
        share: Name,
        dataset: Name,
    },
    CreateSyncSetting {
        share: Name,
        setting: Name,
        spec: ScheduleSpec,
    },
    /// The schedule changed: delete, then create.
    ReplaceSyncSetting {
        share: Name,
        setting: Name,
        before: ScheduleSpec,
        after: ScheduleSpec,
    },
    /// Prune only.
    DeleteSyncSetting {
        share: Name,
        setting: Name,
    },
    /// `invitation` is a deterministic name derived from target and expiry, so a retried PUT
    /// upserts the same invitation instead of sending a second one.
    CreateInvitation {
        share: Name,
        invitation: Name,
        spec: NewInvitation,
    },
}

/// What kind of change, as summarised and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
}

/// Order of execution: everything of a phase before anything of the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    Account,
    Share,
    DataSet,
    SyncSetting,
    Invitation,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Account,
        Phase::Share,
        Phase::DataSet,
        Phase::SyncSetting,
        Phase::Invitation,
    ];
}

impl Change {
    pub fn action(&self) -> Action {
        match self {
            Change::CreateAccount { .. }
            | Change::CreateShare { .. }
            | Change::CreateDataSet { .. }
            | Change::CreateSyncSetting { .. }
            | Change::CreateInvitation { .. } => Action::Create,
            Change::UpdateShare { .. } => Action::Update,
            Change::ReplaceDataSet { .. } | Change::ReplaceSyncSetting { .. } => Action::Replace,
            Change::DeleteShare { .. }
            | Change::DeleteDataSet { .. }
            | Change::DeleteSyncSetting { .. } => Action::Delete,
        }
    }

    pub fn phase(&self) -> Phase {
        match self {
            Change::CreateAccount { .. } => Phase::Account,
            Change::CreateShare { .. }
            | Change::UpdateShare { .. }
            | Change::DeleteShare { .. } => Phase::Share,
            Change::CreateDataSet { .. }
            | Change::ReplaceDataSet { .. }
            | Change::DeleteDataSet { .. } => Phase::DataSet,
            Change::CreateSyncSetting { .. }
            | Change::ReplaceSyncSetting { .. }
            | Change::DeleteSyncSetting { .. } => Phase::SyncSetting,
            Change::CreateInvitation { .. } => Phase::Invitation,
        }
    }

    /// The share this change is under (`None` for the account).
    pub fn share(&self) -> Option<&Name> {
        match self {
            Change::CreateAccount { .. } => None,
            Change::CreateShare { share, .. }
            | Change::UpdateShare { share, .. }
            | Change::DeleteShare { share }
            | Change::CreateDataSet { share, .. }
            | Change::ReplaceDataSet { share, .. }
            | Change::DeleteDataSet { share, .. }
            | Change::CreateSyncSetting { share, .. }
            | Change::ReplaceSyncSetting { share, .. }
            | Change::DeleteSyncSetting { share, .. }
            | Change::CreateInvitation { share, .. } => Some(share),
        }
    }

    /// The item under the share (`None` for the account and share-level changes).
    pub fn item(&self) -> Option<&Name> {
        match self {
            Change::CreateDataSet { dataset, .. }
            | Change::ReplaceDataSet { dataset, .. }
            | Change::DeleteDataSet { dataset, .. } => Some(dataset),
            Change::CreateSyncSetting { setting, .. }
            | Change::ReplaceSyncSetting { setting, .. }
            | Change::DeleteSyncSetting { setting, .. } => Some(setting),
            Change::CreateInvitation { invitation, .. } => Some(invitation),
            _ => None,
        }
    }

    /// ARM-style resource type word used in output.
    pub fn resource_type(&self) -> &'static str {
        match self.phase() {
            Phase::Account => "account",
            Phase::Share => "share",
            Phase::DataSet => "dataSet",
            Phase::SyncSetting => "synchronizationSetting",
            Phase::Invitation => "invitation",
        }
    }

    /// Path below the account, e.g. `shares/sales/dataSets/orders`; `""` for the account.
    pub fn address(&self) -> String {
        let seg = match self.phase() {
            Phase::DataSet => "dataSets",
            Phase::SyncSetting => "synchronizationSettings",
            Phase::Invitation => "invitations",
            _ => "",
        };
        match (self.share(), self.item()) {
            (None, _) => String::new(),
            (Some(s), None) => format!("shares/{s}"),
            (Some(s), Some(i)) => format!("shares/{s}/{seg}/{i}"),
        }
    }

    fn sort_key(&self) -> (Phase, String, String) {
        (
            self.phase(),
            self.share()
                .map(|s| s.key().to_string())
                .unwrap_or_default(),
            self.item().map(|s| s.key().to_string()).unwrap_or_default(),
        )
    }
}

/// The JSON form of one change.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeView<'a> {
    action: Action,
    resource_type: &'static str,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    share: Option<&'a Name>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a Name>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<SpecView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<SpecView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SpecView<'a> {
    Account(&'a AccountSpec),
    Share(&'a ShareProps),
    DataSet(&'a DataSetSpec),
    Schedule(&'a ScheduleSpec),
    Invitation(&'a NewInvitation),
}

impl Serialize for Change {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (before, after, note) = match self {
            Change::CreateAccount { spec } => (None, Some(SpecView::Account(spec)), None),
            Change::CreateShare { props, .. } => (None, Some(SpecView::Share(props)), None),
            Change::UpdateShare { before, after, .. } => (
                Some(SpecView::Share(before)),
                Some(SpecView::Share(after)),
                None,
            ),
            Change::DeleteShare { .. }
            | Change::DeleteDataSet { .. }
            | Change::DeleteSyncSetting { .. } => (None, None, Some("prune")),
            Change::CreateDataSet { spec, .. } => (None, Some(SpecView::DataSet(spec)), None),
            Change::ReplaceDataSet { before, after, .. } => (
                Some(SpecView::DataSet(before)),
                Some(SpecView::DataSet(after)),
                Some("data sets cannot be updated in place: delete, then create"),
            ),
            Change::CreateSyncSetting { spec, .. } => (None, Some(SpecView::Schedule(spec)), None),
            Change::ReplaceSyncSetting { before, after, .. } => (
                Some(SpecView::Schedule(before)),
                Some(SpecView::Schedule(after)),
                Some("schedule changed: delete, then create"),
            ),
            Change::CreateInvitation { spec, .. } => (None, Some(SpecView::Invitation(spec)), None),
        };
        ChangeView {
            action: self.action(),
            resource_type: self.resource_type(),
            address: self.address(),
            share: self.share(),
            name: self.item(),
            before,
            after,
            note,
        }
        .serialize(s)
    }
}

/// Stable codes of findings (kebab-case in JSON); readiness and runbooks match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    /// A data set's store has no mapping (or maps onto itself): skipped.
    UnmappedStore,
    /// A mapping rule produced an id that is not a store of the right kind.
    BadMapping,
    /// ADLS Gen1 data set (service retired).
    RetiredKind,
    /// A data set or synchronization setting kind this build does not know.
    UnknownKind,
    /// The secondary account does not exist and creating it is not configured.
    SecondaryAccountMissing,
    /// Primary and secondary share have different `shareKind` (cannot be changed in place).
    ShareKindDiffers,
    /// A share on the secondary that the primary does not have (reported unless pruning).
    ExtraShare,
    ExtraDataSet,
    ExtraSyncSetting,
    /// A primary consumer whose target (email or tenant+object) cannot be determined.
    ConsumerUnresolved,
    /// A primary consumer that matches more than one invitation (same `sharedAt`, or several
    /// accepted tenant + object id invitations): reported, neither invited again nor dropped.
    ConsumerAmbiguous,
    /// The consumer rejected the secondary invitation; not re-invited automatically.
    InvitationRejected,
    /// The consumer's subscription to the secondary share is revoked; not re-invited.
    ConsumerRevokedOnSecondary,
    /// A delete the prune policy does not allow (`prune = "report"`, or a resource made by
    /// hand under `prune = "delete"`): reported, never deleted.
    DeleteRefused,
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl FindingCode {
    pub fn severity(self) -> Severity {
        match self {
            FindingCode::ExtraShare
            | FindingCode::ExtraDataSet
            | FindingCode::ExtraSyncSetting
            | FindingCode::DeleteRefused => Severity::Info,
            FindingCode::UnmappedStore
            | FindingCode::RetiredKind
            | FindingCode::UnknownKind
            | FindingCode::ConsumerUnresolved
            | FindingCode::ConsumerAmbiguous
            | FindingCode::InvitationRejected
            | FindingCode::ConsumerRevokedOnSecondary => Severity::Warning,
            FindingCode::BadMapping
            | FindingCode::SecondaryAccountMissing
            | FindingCode::ShareKindDiffers => Severity::Error,
        }
    }
}

/// Something replication will not (or cannot) fix by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    /// `share/item` when the finding is about an item under a share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    pub message: String,
}

impl Finding {
    pub fn new(
        code: FindingCode,
        share: Option<&str>,
        item: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            severity: code.severity(),
            share: share.map(str::to_string),
            item: item.map(str::to_string),
            message: message.into(),
        }
    }
}

/// Counts for the summary line / JSON `summary`. A replace counts as one create and one delete
/// (as `terraform plan` does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub findings: usize,
}

/// Ordered changes plus findings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub findings: Vec<Finding>,
}

impl Plan {
    /// Put changes in execution order and findings in a stable order.
    pub fn sorted(mut self) -> Self {
        self.changes.sort_by_key(Change::sort_key);
        self.findings.sort_by(|a, b| {
            (&a.share, a.code as u8, &a.item).cmp(&(&b.share, b.code as u8, &b.item))
        });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            findings: self.findings.len(),
            ..Summary::default()
        };
        for c in &self.changes {
            match c.action() {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Delete => s.delete += 1,
                Action::Replace => {
                    s.create += 1;
                    s.delete += 1;
                }
            }
        }
        s
    }
}
