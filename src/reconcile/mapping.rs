//! Store mapping: rewrite a primary data set so it points at the secondary region's store.
//!
//! Job: for each primary data set, find the store it reads from (storage account, SQL server,
//! Synapse workspace, Kusto cluster), ask the pair's mapping rules for the secondary store and
//! produce the secondary data set — or a [`Finding`] saying why it cannot be replicated.
//!
//! Invariants:
//! - A data set is never pointed at a primary-region store: no mapping, or a mapping onto the
//!   same store id, is a finding and the data set is skipped.
//! - Retired kinds (ADLS Gen1) and unknown kinds are findings, never guessed.
//! - The rules are a trait ([`StoreRules`]) so this module does not depend on the config type;
//!   closures `Fn(StoreKind, &str) -> Option<String>` implement it.
//!
//! Must not import: `arm`, `config`, IO.

use serde::Serialize;

use super::model::{CiString, DataSetSpec, StorageAccountRef};
use super::plan::{Finding, FindingCode};

/// The family of store a mapping rule applies to (the config's `stores.defaults.<kind>` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StoreKind {
    /// Storage accounts (Blob, container, folder, ADLS Gen2 file system/folder/file).
    Storage,
    /// SQL logical servers (SQL DB table, SQL DW table).
    Sql,
    /// Synapse workspaces (dedicated SQL pool table).
    Synapse,
    /// Kusto (Azure Data Explorer) clusters (cluster, database, table).
    Kusto,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Storage => "storage",
            StoreKind::Sql => "sql",
            StoreKind::Synapse => "synapse",
            StoreKind::Kusto => "kusto",
        }
    }
}

/// Primary store id → secondary store id, as the pair's configuration says.
pub trait StoreRules {
    /// `None` when no rule maps this store.
    fn map_store(&self, kind: StoreKind, primary_store_id: &str) -> Option<String>;
}

impl<F> StoreRules for F
where
    F: Fn(StoreKind, &str) -> Option<String>,
{
    fn map_store(&self, kind: StoreKind, primary_store_id: &str) -> Option<String> {
        self(kind, primary_store_id)
    }
}

/// Which store a data set reads from, and the part of its resource id below the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRef {
    pub kind: StoreKind,
    /// ARM id of the store (storage account, SQL server, Synapse workspace, Kusto cluster).
    pub id: String,
}

/// Where the store segment ends in a resource id: `.../{ns}/{type}/{name}` (case-insensitive).
fn split_store_prefix<'a>(id: &'a str, ns: &str, ty: &str) -> Option<(&'a str, &'a str)> {
    let lower = id.to_ascii_lowercase();
    let needle = format!(
        "/providers/{}/{}/",
        ns.to_ascii_lowercase(),
        ty.to_ascii_lowercase()
    );
    let start = lower.find(&needle)? + needle.len();
    let rest = &id[start..];
    let name_len = rest.find('/').unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    Some(id.split_at(start + name_len))
}

impl DataSetSpec {
    /// The store this data set reads from; `None` for retired (ADLS Gen1) and unknown kinds.
    pub fn store(&self) -> Option<StoreRef> {
        let storage = |s: &StorageAccountRef| {
            Some(StoreRef {
                kind: StoreKind::Storage,
                id: s.resource_id(),
            })
        };
        match self {
            DataSetSpec::Blob { store, .. }
            | DataSetSpec::BlobFolder { store, .. }
            | DataSetSpec::Container { store, .. }
            | DataSetSpec::AdlsGen2File { store, .. }
            | DataSetSpec::AdlsGen2Folder { store, .. }
            | DataSetSpec::AdlsGen2FileSystem { store, .. } => storage(store),
            DataSetSpec::SqlDbTable {
                sql_server_resource_id,
                ..
            }
            | DataSetSpec::SqlDwTable {
                sql_server_resource_id,
                ..
            } => Some(StoreRef {
                kind: StoreKind::Sql,
                id: sql_server_resource_id.to_string(),
            }),
            DataSetSpec::SynapseWorkspaceSqlPoolTable {
                synapse_workspace_sql_pool_table_resource_id: id,
            } => {
                split_store_prefix(id.as_str(), "Microsoft.Synapse", "workspaces").map(|(p, _)| {
                    StoreRef {
                        kind: StoreKind::Synapse,
                        id: p.to_string(),
                    }
                })
            }
            DataSetSpec::KustoCluster {
                kusto_cluster_resource_id: id,
            }
            | DataSetSpec::KustoDatabase {
                kusto_database_resource_id: id,
            }
            | DataSetSpec::KustoTable {
                kusto_database_resource_id: id,
                ..
            } => split_store_prefix(id.as_str(), "Microsoft.Kusto", "clusters").map(|(p, _)| {
                StoreRef {
                    kind: StoreKind::Kusto,
                    id: p.to_string(),
                }
            }),
            DataSetSpec::AdlsGen1File { .. }
            | DataSetSpec::AdlsGen1Folder { .. }
            | DataSetSpec::Unknown { .. } => None,
        }
    }

    /// The same data set reading from `new_store` (an id of the same store kind).
    /// `None` when `new_store` is not a valid id for this kind (e.g. a storage rule producing
    /// something that is not a storage account id).
    pub fn with_store(&self, new_store: &str) -> Option<DataSetSpec> {
        let mut out = self.clone();
        let new_store = new_store.trim_end_matches('/');
        match &mut out {
            DataSetSpec::Blob { store, .. }
            | DataSetSpec::BlobFolder { store, .. }
            | DataSetSpec::Container { store, .. }
            | DataSetSpec::AdlsGen2File { store, .. }
            | DataSetSpec::AdlsGen2Folder { store, .. }
            | DataSetSpec::AdlsGen2FileSystem { store, .. } => {
                *store = StorageAccountRef::from_resource_id(new_store)?;
            }
            DataSetSpec::SqlDbTable {
                sql_server_resource_id,
                ..
            }
            | DataSetSpec::SqlDwTable {
                sql_server_resource_id,
                ..
            } => {
                let (prefix, rest) = split_store_prefix(new_store, "Microsoft.Sql", "servers")?;
                if !rest.is_empty() {
                    return None;
                }
                *sql_server_resource_id = CiString::new(prefix);
            }
            DataSetSpec::SynapseWorkspaceSqlPoolTable {
                synapse_workspace_sql_pool_table_resource_id: id,
            } => {
                *id = CiString::new(replace_store(
                    id.as_str(),
                    new_store,
                    "Microsoft.Synapse",
                    "workspaces",
                )?);
            }
            DataSetSpec::KustoCluster {
                kusto_cluster_resource_id: id,
            }
            | DataSetSpec::KustoDatabase {
                kusto_database_resource_id: id,
            }
            | DataSetSpec::KustoTable {
                kusto_database_resource_id: id,
                ..
            } => {
                *id = CiString::new(replace_store(
                    id.as_str(),
                    new_store,
                    "Microsoft.Kusto",
                    "clusters",
                )?);
            }
            DataSetSpec::AdlsGen1File { .. }
            | DataSetSpec::AdlsGen1Folder { .. }
            | DataSetSpec::Unknown { .. } => return None,
        }
        Some(out)
    }
}

/// Replace the store prefix of `id` by `new_store` (which must itself be a bare store id).
fn replace_store(id: &str, new_store: &str, ns: &str, ty: &str) -> Option<String> {
    let (_, suffix) = split_store_prefix(id, ns, ty)?;
    let (new_prefix, new_rest) = split_store_prefix(new_store, ns, ty)?;
    if !new_rest.is_empty() {
        return None;
    }
    Some(format!("{new_prefix}{suffix}"))
}

/// Outcome of mapping one primary data set.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// The secondary data set to have.
    Spec(DataSetSpec),
    /// It cannot be replicated; the finding says why.
    Skipped(Finding),
}

/// Map one primary data set (`share`/`dataset` only name the finding).
pub fn map_dataset(
    rules: &dyn StoreRules,
    share: &str,
    dataset: &str,
    spec: &DataSetSpec,
) -> Mapped {
    let item = format!("{share}/{dataset}");
    match spec {
        DataSetSpec::AdlsGen1File { .. } | DataSetSpec::AdlsGen1Folder { .. } => {
            return Mapped::Skipped(Finding::new(
                FindingCode::RetiredKind,
                Some(share),
                Some(&item),
                format!(
                    "data set {item} is of kind {} — Azure Data Lake Storage Gen1 was retired on \
                     2024-02-29; move it to ADLS Gen2 on the primary, then replicate",
                    spec.kind()
                ),
            ));
        }
        DataSetSpec::Unknown { original_kind, .. } => {
            return Mapped::Skipped(Finding::new(
                FindingCode::UnknownKind,
                Some(share),
                Some(&item),
                format!(
                    "data set {item} has kind {original_kind:?}, which this tool does not know; \
                     it is not replicated"
                ),
            ));
        }
        _ => {}
    }
    let Some(store) = spec.store() else {
        return Mapped::Skipped(Finding::new(
            FindingCode::UnmappedStore,
            Some(share),
            Some(&item),
            format!(
                "data set {item} ({}) names no recognisable store id; skipped",
                spec.kind()
            ),
        ));
    };
    let Some(target) = rules.map_store(store.kind, &store.id) else {
        return Mapped::Skipped(Finding::new(
            FindingCode::UnmappedStore,
            Some(share),
            Some(&item),
            format!(
                "no {} mapping for store {} (data set {item}); add a rule under \
                 stores.defaults.{} or stores.overrides — skipped",
                store.kind.as_str(),
                store.id,
                store.kind.as_str()
            ),
        ));
    };
    if target.trim_end_matches('/').eq_ignore_ascii_case(&store.id) {
        return Mapped::Skipped(Finding::new(
            FindingCode::UnmappedStore,
            Some(share),
            Some(&item),
            format!(
                "the {} mapping leaves store {} unchanged (data set {item}); a secondary data \
                 set must not read from the primary region's store — skipped",
                store.kind.as_str(),
                store.id
            ),
        ));
    }
    match spec.with_store(&target) {
        Some(mapped) => Mapped::Spec(mapped),
        None => Mapped::Skipped(Finding::new(
            FindingCode::BadMapping,
            Some(share),
            Some(&item),
            format!(
                "the {} mapping of store {} gives {target:?}, which is not a {} store id \
                 (data set {item}); skipped",
                store.kind.as_str(),
                store.id,
                store.kind.as_str()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::model::TableLevelSharing;

    fn blob() -> DataSetSpec {
        DataSetSpec::Blob {
            store: StorageAccountRef {
                subscription_id: "S".into(),
                resource_group: "rg-weu".into(),
                storage_account_name: "rawweu".into(),
            },
            container_name: "c".into(),
            file_path: "a/b.csv".into(),
        }
    }

    fn weu_to_neu(_: StoreKind, id: &str) -> Option<String> {
        id.contains("weu").then(|| id.replace("weu", "neu"))
    }

    #[test]
    fn maps_a_blob_dataset_to_the_secondary_storage_account() {
        let m = map_dataset(&weu_to_neu, "s", "d", &blob());
        let Mapped::Spec(DataSetSpec::Blob {
            store, file_path, ..
        }) = m
        else {
            panic!("expected a mapped blob, got {m:?}");
        };
        assert_eq!(store.resource_group.as_str(), "rg-neu");
        assert_eq!(store.storage_account_name.as_str(), "rawneu");
        assert_eq!(file_path, "a/b.csv");
    }

    #[test]
    fn an_unmapped_store_is_a_finding_not_the_primary_store() {
        let none = |_: StoreKind, _: &str| None;
        let m = map_dataset(&none, "s", "d", &blob());
        assert!(matches!(m, Mapped::Skipped(ref f) if f.code == FindingCode::UnmappedStore));
    }

    #[test]
    fn a_mapping_onto_the_same_store_is_refused() {
        let same = |_: StoreKind, id: &str| Some(id.to_uppercase());
        let m = map_dataset(&same, "s", "d", &blob());
        assert!(matches!(m, Mapped::Skipped(ref f) if f.code == FindingCode::UnmappedStore));
    }

    #[test]
    fn a_storage_rule_giving_a_non_storage_id_is_a_bad_mapping() {
        let bad = |_: StoreKind, _: &str| Some("/subscriptions/S/resourceGroups/r".to_string());
        let m = map_dataset(&bad, "s", "d", &blob());
        assert!(matches!(m, Mapped::Skipped(ref f) if f.code == FindingCode::BadMapping));
    }

    #[test]
    fn kusto_table_keeps_its_database_below_the_mapped_cluster() {
        let spec = DataSetSpec::KustoTable {
            kusto_database_resource_id: "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Kusto/clusters/kweu/databases/db1".into(),
            table_level_sharing_properties: TableLevelSharing::default(),
        };
        assert_eq!(
            spec.store().map(|s| s.id),
            Some(
                "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Kusto/clusters/kweu".into()
            )
        );
        let Mapped::Spec(DataSetSpec::KustoTable {
            kusto_database_resource_id,
            ..
        }) = map_dataset(&weu_to_neu, "s", "d", &spec)
        else {
            panic!("expected a mapped kusto table");
        };
        assert_eq!(
            kusto_database_resource_id.as_str(),
            "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Kusto/clusters/kneu/databases/db1"
        );
    }

    #[test]
    fn synapse_table_id_is_rewritten_at_the_workspace() {
        let spec = DataSetSpec::SynapseWorkspaceSqlPoolTable {
            synapse_workspace_sql_pool_table_resource_id: "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Synapse/workspaces/wsweu/sqlPools/p/schemas/dbo/tables/t".into(),
        };
        let rules = |k: StoreKind, id: &str| {
            assert_eq!(k, StoreKind::Synapse);
            assert!(id.ends_with("/workspaces/wsweu"));
            Some(id.replace("wsweu", "wsneu"))
        };
        let Mapped::Spec(DataSetSpec::SynapseWorkspaceSqlPoolTable {
            synapse_workspace_sql_pool_table_resource_id: id,
        }) = map_dataset(&rules, "s", "d", &spec)
        else {
            panic!("expected a mapped synapse table");
        };
        assert!(
            id.as_str()
                .ends_with("/workspaces/wsneu/sqlPools/p/schemas/dbo/tables/t")
        );
    }

    #[test]
    fn sql_table_maps_its_server() {
        let spec = DataSetSpec::SqlDbTable {
            sql_server_resource_id:
                "/subscriptions/S/resourceGroups/rg-weu/providers/Microsoft.Sql/servers/sql-weu"
                    .into(),
            database_name: "db".into(),
            schema_name: "dbo".into(),
            table_name: "t".into(),
        };
        let Mapped::Spec(DataSetSpec::SqlDbTable {
            sql_server_resource_id,
            ..
        }) = map_dataset(&weu_to_neu, "s", "d", &spec)
        else {
            panic!("expected a mapped sql table");
        };
        assert_eq!(
            sql_server_resource_id.as_str(),
            "/subscriptions/S/resourceGroups/rg-neu/providers/Microsoft.Sql/servers/sql-neu"
        );
    }

    #[test]
    fn adls_gen1_is_reported_as_retired() {
        let spec = DataSetSpec::AdlsGen1Folder {
            account: crate::reconcile::model::AdlsGen1Ref {
                subscription_id: "S".into(),
                resource_group: "rg".into(),
                account_name: "a".into(),
            },
            folder_path: "f".into(),
        };
        let m = map_dataset(&weu_to_neu, "s", "d", &spec);
        assert!(matches!(m, Mapped::Skipped(ref f) if f.code == FindingCode::RetiredKind));
    }

    #[test]
    fn unknown_kinds_are_reported_not_dropped() {
        let spec = DataSetSpec::Unknown {
            original_kind: "CosmosDbContainer".into(),
            properties_json: "{}".into(),
        };
        let m = map_dataset(&weu_to_neu, "s", "d", &spec);
        assert!(matches!(m, Mapped::Skipped(ref f) if f.code == FindingCode::UnknownKind));
    }
}
