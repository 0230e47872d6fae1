//! Observations: everything `evaluate` needs to know about one pair, as plain owned data.
//!
//! Built by the observe step (`readiness::observe`) from ARM reads, or by hand in tests. Holds no
//! ARM noise that readiness does not use (etags, systemData). Resource ids are kept as the ARM
//! strings they came from; comparisons are case-insensitive (see [`same_id`]), as in ARM.
//!
//! Must not import: handlers, host, store, sim. Depends on nothing but serde/time and the plain
//! [`ToolFault`] value of `arm::fault`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use crate::arm::fault::ToolFault;

/// Case-insensitive ARM id (or name) comparison.
pub fn same_id(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// Everything readiness knows about one pair at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Observations {
    /// Pair name from the DR config.
    pub pair: String,
    pub primary_id: String,
    pub secondary_id: String,
    pub primary_region: String,
    pub secondary_region: String,
    /// The primary account as seen (or why it could not be seen).
    pub primary: AccountObservation,
    /// The secondary account as seen.
    pub secondary: AccountObservation,
    /// Store mapping applied at observation time: primary store id → secondary store id
    /// (`None` = no mapping rule matched). Keys as they appear on the primary datasets.
    pub store_mapping: BTreeMap<String, Option<String>>,
    /// Mapped secondary stores (keyed by secondary store id, as written in `store_mapping`).
    pub stores: BTreeMap<String, StoreObservation>,
    /// Last successful drill of this pair, if any (from `state/{pair}.json`).
    pub last_drill: Option<DrillRecord>,
}

/// One Data Share account: present with its content, absent, or unreachable.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum AccountObservation {
    /// GET answered 404.
    #[default]
    Missing,
    /// The account did not answer (timeout, 408, 5xx); `reason` is a short, secret-free text.
    /// Whether that is a regional outage is judged beside the other account
    /// (`arm::fault::judge_accounts`).
    Unreachable { reason: String },
    /// The account could not be read because of the tool's own fault (credential, endpoint,
    /// throttling, an answer the tool does not understand): nothing is known about it.
    Faulted { fault: ToolFault, reason: String },
    /// Observed.
    Present(AccountSnapshot),
}

impl AccountObservation {
    pub fn snapshot(&self) -> Option<&AccountSnapshot> {
        match self {
            AccountObservation::Present(s) => Some(s),
            _ => None,
        }
    }
}

/// A Data Share account and the shares selected by the pair's `shares` globs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AccountSnapshot {
    pub id: String,
    pub location: String,
    /// `Succeeded | Creating | Deleting | Moving | Failed` (kept as text; unknown values kept).
    pub provisioning_state: String,
    /// `identity.principalId` of the account's system-assigned managed identity.
    pub principal_id: Option<String>,
    /// Selected shares, keyed by lower-cased share name.
    pub shares: BTreeMap<String, ShareObservation>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ShareObservation {
    pub id: String,
    pub name: String,
    pub share_kind: Option<String>,
    pub description: Option<String>,
    pub terms: Option<String>,
    /// Keyed by lower-cased dataset name.
    pub datasets: BTreeMap<String, DatasetObservation>,
    /// Keyed by lower-cased setting name.
    pub sync_settings: BTreeMap<String, SyncSettingObservation>,
    pub invitations: Vec<InvitationObservation>,
    pub subscriptions: Vec<SubscriptionObservation>,
    /// Snapshot runs of this share (`Shares_ListSynchronizations`); only read on the primary.
    /// `None` = not read (e.g. account unreachable).
    pub synchronizations: Option<Vec<SynchronizationObservation>>,
}

/// Which kind of store a dataset lives in (decides mapping defaults and the reader role).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// Storage account (Blob, container, folder, ADLS Gen2).
    Storage,
    /// SQL server (SQL DB table, SQL DW table).
    Sql,
    /// Synapse workspace (SQL pool table).
    Synapse,
    /// Kusto cluster (cluster, database, table).
    Kusto,
    /// ADLS Gen1 account (retired service).
    AdlsGen1,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Storage => "storage",
            StoreKind::Sql => "sql",
            StoreKind::Synapse => "synapse",
            StoreKind::Kusto => "kusto",
            StoreKind::AdlsGen1 => "adls-gen1",
        }
    }
}

/// A dataset reduced to what must match across regions.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DatasetObservation {
    pub id: String,
    pub name: String,
    /// The ARM `kind` (`Blob`, `SqlDBTable`, … or an unknown kind kept verbatim).
    pub kind: String,
    /// ARM id of the store the dataset reads from (storage account, SQL server, Synapse
    /// workspace, Kusto cluster); `None` for unknown kinds.
    pub store: Option<String>,
    pub store_kind: Option<StoreKind>,
    /// Store-relative coordinates (container, path, schema, table, database name, …), so that a
    /// mapped copy compares equal: `{"containerName": "raw", "filePath": "a.csv"}`.
    pub locator: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SyncSettingObservation {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// `Hour` or `Day`.
    pub recurrence_interval: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub synchronization_time: Option<OffsetDateTime>,
}

/// Who an invitation or subscription is for. Emails compare case-insensitively.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ConsumerTarget {
    Email {
        email: String,
    },
    Principal {
        tenant_id: String,
        object_id: String,
    },
}

impl ConsumerTarget {
    /// Normalised form (lower-case) used for matching.
    pub fn normalised(&self) -> ConsumerTarget {
        match self {
            ConsumerTarget::Email { email } => ConsumerTarget::Email {
                email: email.trim().to_ascii_lowercase(),
            },
            ConsumerTarget::Principal {
                tenant_id,
                object_id,
            } => ConsumerTarget::Principal {
                tenant_id: tenant_id.trim().to_ascii_lowercase(),
                object_id: object_id.trim().to_ascii_lowercase(),
            },
        }
    }

    /// The form used in the DR config (`email` or `tenant:<tid>/object:<oid>`).
    pub fn display(&self) -> String {
        match self {
            ConsumerTarget::Email { email } => email.clone(),
            ConsumerTarget::Principal {
                tenant_id,
                object_id,
            } => {
                format!("tenant:{tenant_id}/object:{object_id}")
            }
        }
    }

    /// Parses the DR config form.
    pub fn parse(text: &str) -> Option<ConsumerTarget> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("tenant:") {
            let (tenant, object) = rest.split_once("/object:")?;
            if tenant.is_empty() || object.is_empty() {
                return None;
            }
            return Some(ConsumerTarget::Principal {
                tenant_id: tenant.to_string(),
                object_id: object.to_string(),
            });
        }
        if text.contains('@') {
            return Some(ConsumerTarget::Email {
                email: text.to_string(),
            });
        }
        None
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InvitationObservation {
    pub id: String,
    pub name: String,
    /// The GUID a consumer accepts; equals the provider share subscription's `name`.
    pub invitation_id: Option<String>,
    pub target: Option<ConsumerTarget>,
    /// `Pending | Accepted | Rejected | Withdrawn`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expiration: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubscriptionObservation {
    pub id: String,
    /// The provider share subscription's name (the accepted invitation id).
    pub name: String,
    pub consumer_email: Option<String>,
    pub consumer_name: Option<String>,
    pub consumer_tenant_name: Option<String>,
    /// `Active | Revoked | SourceDeleted | Revoking`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expiration: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SynchronizationObservation {
    pub synchronization_id: Option<String>,
    /// `Succeeded`, `Failed`, `Queued`, `InProgress`, … (free text in the spec).
    pub status: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub start_time: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub end_time: Option<OffsetDateTime>,
}

/// A mapped secondary store: does it exist, where, and may the secondary identity read it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoreObservation {
    pub id: String,
    pub kind: StoreKind,
    pub existence: StoreExistence,
    /// Role definition GUIDs (lower-case) assigned to the secondary account's identity at this
    /// store's scope or above. `None` = not read (no identity, store missing, or unverifiable kind).
    pub identity_roles: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum StoreExistence {
    Present { location: String },
    Missing,
    Unreachable { reason: String },
}

/// The last successful drill (written by failover's drill mode into `state/{pair}.json`, and
/// carried in every report as `lastDrill`).
///
/// Written camelCase (`completedAt`, `runId`, `rtoSecs`) like the rest of the report; records
/// stored before used snake_case (`completed_at`, `run_id`, `rto_secs`) and still load (aliases).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DrillRecord {
    #[serde(with = "time::serde::rfc3339", alias = "completed_at")]
    pub completed_at: OffsetDateTime,
    #[serde(default, alias = "run_id")]
    pub run_id: Option<String>,
    /// Measured recovery time of the drill, seconds.
    #[serde(default, alias = "rto_secs")]
    pub rto_secs: Option<f64>,
}
