//! Normalised share configuration: what a Data Share account *means*, without ARM noise.
//!
//! Job: hold the comparable essence of an account — shares, their data sets, snapshot schedules,
//! invitations and consumers — so that `diff` can compare primary and secondary by value.
//!
//! Invariants:
//! - No ARM noise: no resource ids of the items themselves, etags, timestamps the service sets,
//!   provisioning states, `dataSetId`s, user names/emails of the creator.
//! - Names compare case-insensitively (ARM does), but keep their original spelling for display
//!   and for the writes that create them. Resource ids inside data sets (store ids, SQL server
//!   ids, ...) also compare case-insensitively; paths inside containers do not (Blob storage is
//!   case-sensitive).
//! - Times compare by instant (an offset difference is not a change).
//!
//! Must not import: `arm`, `config`, `handlers`, anything doing IO. Conversions from the ARM
//! models live in `reconcile::convert`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

/// A string compared case-insensitively (ARM names, resource ids, emails), printed as given.
#[derive(Clone)]
pub struct CiString {
    original: String,
    key: String,
}

impl CiString {
    pub fn new(s: impl Into<String>) -> Self {
        let original = s.into();
        let key = original.to_lowercase();
        Self { original, key }
    }
    /// The spelling as observed / configured.
    pub fn as_str(&self) -> &str {
        &self.original
    }
    /// The lower-cased comparison key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl From<&str> for CiString {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}
impl From<String> for CiString {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}
impl PartialEq for CiString {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for CiString {}
impl PartialOrd for CiString {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for CiString {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}
impl Hash for CiString {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state)
    }
}
impl fmt::Display for CiString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}
impl fmt::Debug for CiString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.original, f)
    }
}
impl Serialize for CiString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.original)
    }
}

/// Name of a share, data set, synchronization setting or invitation (case-insensitive).
pub type Name = CiString;

/// A whole provider account, as far as replication is concerned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountModel {
    pub shares: BTreeMap<Name, ShareModel>,
}

/// `shareKind` of a share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ShareKind {
    CopyBased,
    InPlace,
    /// A value the spec does not list; kept so it is written back unchanged.
    Other(String),
}

impl ShareKind {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            None => ShareKind::CopyBased,
            Some(v) if v.eq_ignore_ascii_case("CopyBased") => ShareKind::CopyBased,
            Some(v) if v.eq_ignore_ascii_case("InPlace") => ShareKind::InPlace,
            Some(v) => ShareKind::Other(v.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            ShareKind::CopyBased => "CopyBased",
            ShareKind::InPlace => "InPlace",
            ShareKind::Other(s) => s,
        }
    }
}

/// The writable properties of a share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareProps {
    pub description: Option<String>,
    pub terms: Option<String>,
    #[serde(serialize_with = "ser_as_str")]
    pub kind: ShareKind,
}

fn ser_as_str<S: Serializer>(k: &ShareKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// One share with everything under it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareModel {
    pub props: ShareProps,
    pub datasets: BTreeMap<Name, DataSetSpec>,
    pub sync_settings: BTreeMap<Name, ScheduleSpec>,
    pub invitations: Vec<InvitationSpec>,
    pub consumers: Vec<ConsumerSpec>,
}

impl ShareModel {
    pub fn new(props: ShareProps) -> Self {
        Self {
            props,
            datasets: BTreeMap::new(),
            sync_settings: BTreeMap::new(),
            invitations: Vec::new(),
            consumers: Vec::new(),
        }
    }
}

/// A storage account's coordinates as data sets carry them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageAccountRef {
    pub subscription_id: CiString,
    pub resource_group: CiString,
    pub storage_account_name: CiString,
}

impl StorageAccountRef {
    /// The storage account's ARM id (what store mapping rules are written against).
    pub fn resource_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/{}",
            self.subscription_id, self.resource_group, self.storage_account_name
        )
    }

    /// Parse a storage account ARM id back into coordinates.
    pub fn from_resource_id(id: &str) -> Option<Self> {
        let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            [subs, sub, rgs, rg, providers, ns, ty, name]
                if subs.eq_ignore_ascii_case("subscriptions")
                    && rgs.eq_ignore_ascii_case("resourceGroups")
                    && providers.eq_ignore_ascii_case("providers")
                    && ns.eq_ignore_ascii_case("Microsoft.Storage")
                    && ty.eq_ignore_ascii_case("storageAccounts")
                    && !sub.is_empty()
                    && !rg.is_empty()
                    && !name.is_empty() =>
            {
                Some(Self {
                    subscription_id: CiString::new(*sub),
                    resource_group: CiString::new(*rg),
                    storage_account_name: CiString::new(*name),
                })
            }
            _ => None,
        }
    }
}

/// An ADLS Gen1 account's coordinates (retired service; modelled to report it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdlsGen1Ref {
    pub subscription_id: CiString,
    pub resource_group: CiString,
    pub account_name: CiString,
}

/// Kusto table-level sharing lists (each list sorted and de-duplicated when built).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableLevelSharing {
    pub tables_to_include: Vec<String>,
    pub tables_to_exclude: Vec<String>,
    pub materialized_views_to_include: Vec<String>,
    pub materialized_views_to_exclude: Vec<String>,
    pub external_tables_to_include: Vec<String>,
    pub external_tables_to_exclude: Vec<String>,
}

impl TableLevelSharing {
    /// Sort and de-duplicate every list (the spec declares them `uniqueItems`, order is noise).
    pub fn normalised(mut self) -> Self {
        for v in [
            &mut self.tables_to_include,
            &mut self.tables_to_exclude,
            &mut self.materialized_views_to_include,
            &mut self.materialized_views_to_exclude,
            &mut self.external_tables_to_include,
            &mut self.external_tables_to_exclude,
        ] {
            v.sort();
            v.dedup();
        }
        self
    }
}

/// A data set, by kind, holding only the writable properties (the spec's required fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind")]
pub enum DataSetSpec {
    #[serde(rename_all = "camelCase")]
    Blob {
        #[serde(flatten)]
        store: StorageAccountRef,
        container_name: String,
        file_path: String,
    },
    #[serde(rename_all = "camelCase")]
    BlobFolder {
        #[serde(flatten)]
        store: StorageAccountRef,
        container_name: String,
        prefix: String,
    },
    #[serde(rename_all = "camelCase")]
    Container {
        #[serde(flatten)]
        store: StorageAccountRef,
        container_name: String,
    },
    #[serde(rename_all = "camelCase")]
    AdlsGen2File {
        #[serde(flatten)]
        store: StorageAccountRef,
        file_system: String,
        file_path: String,
    },
    #[serde(rename_all = "camelCase")]
    AdlsGen2Folder {
        #[serde(flatten)]
        store: StorageAccountRef,
        file_system: String,
        folder_path: String,
    },
    #[serde(rename_all = "camelCase")]
    AdlsGen2FileSystem {
        #[serde(flatten)]
        store: StorageAccountRef,
        file_system: String,
    },
    #[serde(rename_all = "camelCase")]
    AdlsGen1File {
        #[serde(flatten)]
        account: AdlsGen1Ref,
        folder_path: String,
        file_name: String,
    },
    #[serde(rename_all = "camelCase")]
    AdlsGen1Folder {
        #[serde(flatten)]
        account: AdlsGen1Ref,
        folder_path: String,
    },
    #[serde(rename_all = "camelCase")]
    KustoCluster { kusto_cluster_resource_id: CiString },
    #[serde(rename_all = "camelCase")]
    KustoDatabase {
        kusto_database_resource_id: CiString,
    },
    #[serde(rename_all = "camelCase")]
    KustoTable {
        kusto_database_resource_id: CiString,
        table_level_sharing_properties: TableLevelSharing,
    },
    #[serde(rename = "SqlDBTable", rename_all = "camelCase")]
    SqlDbTable {
        sql_server_resource_id: CiString,
        database_name: CiString,
        schema_name: CiString,
        table_name: CiString,
    },
    #[serde(rename = "SqlDWTable", rename_all = "camelCase")]
    SqlDwTable {
        sql_server_resource_id: CiString,
        data_warehouse_name: CiString,
        schema_name: CiString,
        table_name: CiString,
    },
    #[serde(rename_all = "camelCase")]
    SynapseWorkspaceSqlPoolTable {
        synapse_workspace_sql_pool_table_resource_id: CiString,
    },
    /// A kind this build does not know. Kept (never dropped) so it is reported, not lost.
    #[serde(rename = "Unknown", rename_all = "camelCase")]
    Unknown {
        /// The `kind` value ARM returned.
        original_kind: String,
        /// The `properties` object as canonical JSON text (compared verbatim).
        properties_json: String,
    },
}

impl DataSetSpec {
    /// The ARM `kind` discriminator.
    pub fn kind(&self) -> &str {
        match self {
            DataSetSpec::Blob { .. } => "Blob",
            DataSetSpec::BlobFolder { .. } => "BlobFolder",
            DataSetSpec::Container { .. } => "Container",
            DataSetSpec::AdlsGen2File { .. } => "AdlsGen2File",
            DataSetSpec::AdlsGen2Folder { .. } => "AdlsGen2Folder",
            DataSetSpec::AdlsGen2FileSystem { .. } => "AdlsGen2FileSystem",
            DataSetSpec::AdlsGen1File { .. } => "AdlsGen1File",
            DataSetSpec::AdlsGen1Folder { .. } => "AdlsGen1Folder",
            DataSetSpec::KustoCluster { .. } => "KustoCluster",
            DataSetSpec::KustoDatabase { .. } => "KustoDatabase",
            DataSetSpec::KustoTable { .. } => "KustoTable",
            DataSetSpec::SqlDbTable { .. } => "SqlDBTable",
            DataSetSpec::SqlDwTable { .. } => "SqlDWTable",
            DataSetSpec::SynapseWorkspaceSqlPoolTable { .. } => "SynapseWorkspaceSqlPoolTable",
            DataSetSpec::Unknown { original_kind, .. } => original_kind,
        }
    }

    /// `(field, value)` pairs for display and field-level diffs, in a stable order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = Vec::new();
        let storage = |out: &mut Vec<(&'static str, String)>, s: &StorageAccountRef| {
            out.push(("subscriptionId", s.subscription_id.to_string()));
            out.push(("resourceGroup", s.resource_group.to_string()));
            out.push(("storageAccountName", s.storage_account_name.to_string()));
        };
        match self {
            DataSetSpec::Blob {
                store,
                container_name,
                file_path,
            } => {
                storage(&mut out, store);
                out.push(("containerName", container_name.clone()));
                out.push(("filePath", file_path.clone()));
            }
            DataSetSpec::BlobFolder {
                store,
                container_name,
                prefix,
            } => {
                storage(&mut out, store);
                out.push(("containerName", container_name.clone()));
                out.push(("prefix", prefix.clone()));
            }
            DataSetSpec::Container {
                store,
                container_name,
            } => {
                storage(&mut out, store);
                out.push(("containerName", container_name.clone()));
            }
            DataSetSpec::AdlsGen2File {
                store,
                file_system,
                file_path,
            } => {
                storage(&mut out, store);
                out.push(("fileSystem", file_system.clone()));
                out.push(("filePath", file_path.clone()));
            }
            DataSetSpec::AdlsGen2Folder {
                store,
                file_system,
                folder_path,
            } => {
                storage(&mut out, store);
                out.push(("fileSystem", file_system.clone()));
                out.push(("folderPath", folder_path.clone()));
            }
            DataSetSpec::AdlsGen2FileSystem { store, file_system } => {
                storage(&mut out, store);
                out.push(("fileSystem", file_system.clone()));
            }
            DataSetSpec::AdlsGen1File {
                account,
                folder_path,
                file_name,
            } => {
                out.push(("subscriptionId", account.subscription_id.to_string()));
                out.push(("resourceGroup", account.resource_group.to_string()));
                out.push(("accountName", account.account_name.to_string()));
                out.push(("folderPath", folder_path.clone()));
                out.push(("fileName", file_name.clone()));
            }
            DataSetSpec::AdlsGen1Folder {
                account,
                folder_path,
            } => {
                out.push(("subscriptionId", account.subscription_id.to_string()));
                out.push(("resourceGroup", account.resource_group.to_string()));
                out.push(("accountName", account.account_name.to_string()));
                out.push(("folderPath", folder_path.clone()));
            }
            DataSetSpec::KustoCluster {
                kusto_cluster_resource_id,
            } => out.push((
                "kustoClusterResourceId",
                kusto_cluster_resource_id.to_string(),
            )),
            DataSetSpec::KustoDatabase {
                kusto_database_resource_id,
            } => out.push((
                "kustoDatabaseResourceId",
                kusto_database_resource_id.to_string(),
            )),
            DataSetSpec::KustoTable {
                kusto_database_resource_id,
                table_level_sharing_properties: t,
            } => {
                out.push((
                    "kustoDatabaseResourceId",
                    kusto_database_resource_id.to_string(),
                ));
                for (k, v) in [
                    ("tablesToInclude", &t.tables_to_include),
                    ("tablesToExclude", &t.tables_to_exclude),
                    (
                        "materializedViewsToInclude",
                        &t.materialized_views_to_include,
                    ),
                    (
                        "materializedViewsToExclude",
                        &t.materialized_views_to_exclude,
                    ),
                    ("externalTablesToInclude", &t.external_tables_to_include),
                    ("externalTablesToExclude", &t.external_tables_to_exclude),
                ] {
                    if !v.is_empty() {
                        out.push((k, v.join(",")));
                    }
                }
            }
            DataSetSpec::SqlDbTable {
                sql_server_resource_id,
                database_name,
                schema_name,
                table_name,
            } => {
                out.push(("sqlServerResourceId", sql_server_resource_id.to_string()));
                out.push(("databaseName", database_name.to_string()));
                out.push(("schemaName", schema_name.to_string()));
                out.push(("tableName", table_name.to_string()));
            }
            DataSetSpec::SqlDwTable {
                sql_server_resource_id,
                data_warehouse_name,
                schema_name,
                table_name,
            } => {
                out.push(("sqlServerResourceId", sql_server_resource_id.to_string()));
                out.push(("dataWarehouseName", data_warehouse_name.to_string()));
                out.push(("schemaName", schema_name.to_string()));
                out.push(("tableName", table_name.to_string()));
            }
            DataSetSpec::SynapseWorkspaceSqlPoolTable {
                synapse_workspace_sql_pool_table_resource_id,
            } => out.push((
                "synapseWorkspaceSqlPoolTableResourceId",
                synapse_workspace_sql_pool_table_resource_id.to_string(),
            )),
            DataSetSpec::Unknown {
                properties_json, ..
            } => out.push(("properties", properties_json.clone())),
        }
        out
    }
}

/// `recurrenceInterval` of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recurrence {
    Hour,
    Day,
    Other(String),
}

impl Recurrence {
    pub fn parse(s: &str) -> Self {
        if s.eq_ignore_ascii_case("Hour") {
            Recurrence::Hour
        } else if s.eq_ignore_ascii_case("Day") {
            Recurrence::Day
        } else {
            Recurrence::Other(s.to_string())
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Recurrence::Hour => "Hour",
            Recurrence::Day => "Day",
            Recurrence::Other(s) => s,
        }
    }
}

impl Serialize for Recurrence {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A `ScheduleBased` synchronization setting (the only kind the spec has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    pub recurrence_interval: Recurrence,
    #[serde(with = "time::serde::rfc3339")]
    pub synchronization_time: OffsetDateTime,
}

/// Whom an invitation addresses (or who holds a subscription).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// `targetEmail` (compared case-insensitively).
    Email(CiString),
    /// `targetActiveDirectoryId` + `targetObjectId`.
    Tenant {
        tenant_id: CiString,
        object_id: CiString,
    },
}

impl Target {
    /// Parse the config form: an email, or `tenant:<tid>/object:<oid>`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("tenant:") {
            let (tid, oid) = rest.split_once("/object:")?;
            if tid.is_empty() || oid.is_empty() {
                return None;
            }
            return Some(Target::Tenant {
                tenant_id: tid.into(),
                object_id: oid.into(),
            });
        }
        if s.contains('@') && !s.contains(char::is_whitespace) {
            Some(Target::Email(s.into()))
        } else {
            None
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Email(e) => write!(f, "{e}"),
            Target::Tenant {
                tenant_id,
                object_id,
            } => write!(f, "tenant:{tenant_id}/object:{object_id}"),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `invitationStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Rejected,
    Withdrawn,
    Other(String),
}

impl InvitationStatus {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            // A freshly created invitation without a status is pending.
            None => InvitationStatus::Pending,
            Some(v) if v.eq_ignore_ascii_case("Pending") => InvitationStatus::Pending,
            Some(v) if v.eq_ignore_ascii_case("Accepted") => InvitationStatus::Accepted,
            Some(v) if v.eq_ignore_ascii_case("Rejected") => InvitationStatus::Rejected,
            Some(v) if v.eq_ignore_ascii_case("Withdrawn") => InvitationStatus::Withdrawn,
            Some(v) => InvitationStatus::Other(v.to_string()),
        }
    }
}

/// An invitation as observed (status included: it decides whether a target is covered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationSpec {
    pub target: Target,
    pub expiration: Option<OffsetDateTime>,
    pub status: InvitationStatus,
}

/// `shareSubscriptionStatus` of a provider share subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Active,
    Revoked,
    SourceDeleted,
    Revoking,
    Other(String),
}

impl SubscriptionStatus {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some(v) if v.eq_ignore_ascii_case("Active") => SubscriptionStatus::Active,
            Some(v) if v.eq_ignore_ascii_case("Revoked") => SubscriptionStatus::Revoked,
            Some(v) if v.eq_ignore_ascii_case("SourceDeleted") => SubscriptionStatus::SourceDeleted,
            Some(v) if v.eq_ignore_ascii_case("Revoking") => SubscriptionStatus::Revoking,
            Some(v) => SubscriptionStatus::Other(v.to_string()),
            None => SubscriptionStatus::Other(String::new()),
        }
    }
}

/// A consumer of a share, from its provider share subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// Resolved target (see `convert::consumer_target`): the invitation Azure's provider share
    /// subscription points at (`sharedAt` = the invitation's `sentAt`, `consumerEmail`), else
    /// the consumer's email. `None` when unknown or ambiguous (reported).
    pub target: Option<Target>,
    /// When the match is ambiguous: every invitation target it could be (a finding, never a
    /// re-invitation or a skip).
    pub candidates: Vec<Target>,
    /// Who it is, for messages (consumer name / email / tenant as ARM gives them).
    pub display: String,
    pub status: SubscriptionStatus,
    pub expiration: Option<OffsetDateTime>,
}
