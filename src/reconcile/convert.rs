//! Conversions between the ARM models (`arm::models`) and the normalised model.
//!
//! Job: `arm → model` strips ARM noise (envelope, `dataSetId`, provisioning state, creation
//! times, unknown extras of known kinds) and normalises (Kusto name lists sorted; statuses
//! parsed); `model → arm` builds request bodies with writable fields only.
//!
//! Invariants:
//! - Unknown data set kinds keep their properties (minus read-only fields) as canonical JSON, so
//!   they are compared and reported, never dropped.
//! - A provider share subscription's consumer is resolved to the *target of the invitation it
//!   was created from* (subscription `name` = the accepted `invitationId`), so a consumer invited
//!   by tenant+object id is re-invited in that same form; the consumer e-mail is the fallback.
//!
//! Must not import: `config`, `handlers`, IO.

use crate::arm::models::{self as arm};
use crate::arm::models::{
    DataSet, DataSetKind, Invitation, InvitationTarget, ProviderShareSubscription, Share,
    SynchronizationSetting, SynchronizationSettingKind,
};

use super::model::{
    AdlsGen1Ref, CiString, ConsumerSpec, DataSetSpec, InvitationSpec, InvitationStatus, Recurrence,
    ScheduleSpec, ShareKind, ShareModel, ShareProps, StorageAccountRef, SubscriptionStatus,
    TableLevelSharing, Target,
};
use super::plan::{Finding, FindingCode, NewInvitation};

fn storage(sub: &str, rg: &str, name: &str) -> StorageAccountRef {
    StorageAccountRef {
        subscription_id: sub.into(),
        resource_group: rg.into(),
        storage_account_name: name.into(),
    }
}

fn list(v: &Option<Vec<String>>) -> Vec<String> {
    v.clone().unwrap_or_default()
}

/// The normalised spec of an observed data set.
pub fn dataset_spec(ds: &DataSet) -> DataSetSpec {
    match &ds.kind {
        DataSetKind::Blob(p) => DataSetSpec::Blob {
            store: storage(
                &p.subscription_id,
                &p.resource_group,
                &p.storage_account_name,
            ),
            container_name: p.container_name.clone(),
            file_path: p.file_path.clone(),
        },
        DataSetKind::BlobFolder(p) => DataSetSpec::BlobFolder {
            store: storage(
                &p.subscription_id,
                &p.resource_group,
                &p.storage_account_name,
            ),
            container_name: p.container_name.clone(),
            prefix: p.prefix.clone(),
        },
        DataSetKind::Container(p) => DataSetSpec::Container {
            store: storage(
                &p.subscription_id,
                &p.resource_group,
                &p.storage_account_name,
            ),
            container_name: p.container_name.clone(),
        },
        DataSetKind::AdlsGen2File(p) => DataSetSpec::AdlsGen2File {
            store: storage(
                &p.subscription_id,
                &p.resource_group,
                &p.storage_account_name,
            ),
            file_system: p.file_system.clone(),
            file_path: p.file_path.clone(),
        },
        DataSetKind::AdlsGen2Folder(p) => DataSetSpec::AdlsGen2Folder {
            store: storage(
                &p.subscription_id,
                &p.resource_group,
                &p.storage_account_name,
            ),
            file_system: p.file_system.clone(),
            folder_path: p.folder_path.clone(),
        },
        DataSetKind::AdlsGen2FileSystem(p) => DataSetSpec::AdlsGen2FileSystem {
            store: storage(
                &p.subscription_id,
                &p.resource_group,
                &p.storage_account_name,
            ),
            file_system: p.file_system.clone(),
        },
        DataSetKind::AdlsGen1File(p) => DataSetSpec::AdlsGen1File {
            account: AdlsGen1Ref {
                subscription_id: p.subscription_id.as_str().into(),
                resource_group: p.resource_group.as_str().into(),
                account_name: p.account_name.as_str().into(),
            },
            folder_path: p.folder_path.clone(),
            file_name: p.file_name.clone(),
        },
        DataSetKind::AdlsGen1Folder(p) => DataSetSpec::AdlsGen1Folder {
            account: AdlsGen1Ref {
                subscription_id: p.subscription_id.as_str().into(),
                resource_group: p.resource_group.as_str().into(),
                account_name: p.account_name.as_str().into(),
            },
            folder_path: p.folder_path.clone(),
        },
        DataSetKind::KustoCluster(p) => DataSetSpec::KustoCluster {
            kusto_cluster_resource_id: p.kusto_cluster_resource_id.as_str().into(),
        },
        DataSetKind::KustoDatabase(p) => DataSetSpec::KustoDatabase {
            kusto_database_resource_id: p.kusto_database_resource_id.as_str().into(),
        },
        DataSetKind::KustoTable(p) => {
            let t = &p.table_level_sharing_properties;
            DataSetSpec::KustoTable {
                kusto_database_resource_id: p.kusto_database_resource_id.as_str().into(),
                table_level_sharing_properties: TableLevelSharing {
                    tables_to_include: list(&t.tables_to_include),
                    tables_to_exclude: list(&t.tables_to_exclude),
                    materialized_views_to_include: list(&t.materialized_views_to_include),
                    materialized_views_to_exclude: list(&t.materialized_views_to_exclude),
                    external_tables_to_include: list(&t.external_tables_to_include),
                    external_tables_to_exclude: list(&t.external_tables_to_exclude),
                }
                .normalised(),
            }
        }
        DataSetKind::SqlDbTable(p) => DataSetSpec::SqlDbTable {
            sql_server_resource_id: p.sql_server_resource_id.as_str().into(),
            database_name: p.database_name.as_str().into(),
            schema_name: p.schema_name.as_str().into(),
            table_name: p.table_name.as_str().into(),
        },
        DataSetKind::SqlDwTable(p) => DataSetSpec::SqlDwTable {
            sql_server_resource_id: p.sql_server_resource_id.as_str().into(),
            data_warehouse_name: p.data_warehouse_name.as_str().into(),
            schema_name: p.schema_name.as_str().into(),
            table_name: p.table_name.as_str().into(),
        },
        DataSetKind::SynapseWorkspaceSqlPoolTable(p) => DataSetSpec::SynapseWorkspaceSqlPoolTable {
            synapse_workspace_sql_pool_table_resource_id: p
                .synapse_workspace_sql_pool_table_resource_id
                .as_str()
                .into(),
        },
        DataSetKind::Unknown { kind, raw } => {
            let mut raw = raw.clone();
            if let serde_json::Value::Object(m) = &mut raw {
                for f in ["dataSetId", "location", "provisioningState"] {
                    m.remove(f);
                }
            }
            DataSetSpec::Unknown {
                original_kind: kind.clone(),
                // serde_json maps are sorted (no `preserve_order`), so this text is canonical.
                properties_json: serde_json::to_string(&raw).unwrap_or_default(),
            }
        }
    }
}

fn opt_list(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// The PUT body of a data set; `None` for unknown kinds (never written).
pub fn dataset_body(spec: &DataSetSpec) -> Option<DataSet> {
    let k = match spec.clone() {
        DataSetSpec::Blob {
            store,
            container_name,
            file_path,
        } => DataSetKind::Blob(arm::BlobProperties {
            container_name,
            file_path,
            subscription_id: store.subscription_id.to_string(),
            resource_group: store.resource_group.to_string(),
            storage_account_name: store.storage_account_name.to_string(),
            ..Default::default()
        }),
        DataSetSpec::BlobFolder {
            store,
            container_name,
            prefix,
        } => DataSetKind::BlobFolder(arm::BlobFolderProperties {
            container_name,
            prefix,
            subscription_id: store.subscription_id.to_string(),
            resource_group: store.resource_group.to_string(),
            storage_account_name: store.storage_account_name.to_string(),
            ..Default::default()
        }),
        DataSetSpec::Container {
            store,
            container_name,
        } => DataSetKind::Container(arm::BlobContainerProperties {
            container_name,
            subscription_id: store.subscription_id.to_string(),
            resource_group: store.resource_group.to_string(),
            storage_account_name: store.storage_account_name.to_string(),
            ..Default::default()
        }),
        DataSetSpec::AdlsGen2File {
            store,
            file_system,
            file_path,
        } => DataSetKind::AdlsGen2File(arm::AdlsGen2FileProperties {
            file_system,
            file_path,
            subscription_id: store.subscription_id.to_string(),
            resource_group: store.resource_group.to_string(),
            storage_account_name: store.storage_account_name.to_string(),
            ..Default::default()
        }),
        DataSetSpec::AdlsGen2Folder {
            store,
            file_system,
            folder_path,
        } => DataSetKind::AdlsGen2Folder(arm::AdlsGen2FolderProperties {
            file_system,
            folder_path,
            subscription_id: store.subscription_id.to_string(),
            resource_group: store.resource_group.to_string(),
            storage_account_name: store.storage_account_name.to_string(),
            ..Default::default()
        }),
        DataSetSpec::AdlsGen2FileSystem { store, file_system } => {
            DataSetKind::AdlsGen2FileSystem(arm::AdlsGen2FileSystemProperties {
                file_system,
                subscription_id: store.subscription_id.to_string(),
                resource_group: store.resource_group.to_string(),
                storage_account_name: store.storage_account_name.to_string(),
                ..Default::default()
            })
        }
        DataSetSpec::AdlsGen1File {
            account,
            folder_path,
            file_name,
        } => DataSetKind::AdlsGen1File(arm::AdlsGen1FileProperties {
            account_name: account.account_name.to_string(),
            folder_path,
            file_name,
            subscription_id: account.subscription_id.to_string(),
            resource_group: account.resource_group.to_string(),
            ..Default::default()
        }),
        DataSetSpec::AdlsGen1Folder {
            account,
            folder_path,
        } => DataSetKind::AdlsGen1Folder(arm::AdlsGen1FolderProperties {
            account_name: account.account_name.to_string(),
            folder_path,
            subscription_id: account.subscription_id.to_string(),
            resource_group: account.resource_group.to_string(),
            ..Default::default()
        }),
        DataSetSpec::KustoCluster {
            kusto_cluster_resource_id,
        } => DataSetKind::KustoCluster(arm::KustoClusterDataSetProperties {
            kusto_cluster_resource_id: kusto_cluster_resource_id.to_string(),
            ..Default::default()
        }),
        DataSetSpec::KustoDatabase {
            kusto_database_resource_id,
        } => DataSetKind::KustoDatabase(arm::KustoDatabaseDataSetProperties {
            kusto_database_resource_id: kusto_database_resource_id.to_string(),
            ..Default::default()
        }),
        DataSetSpec::KustoTable {
            kusto_database_resource_id,
            table_level_sharing_properties: t,
        } => DataSetKind::KustoTable(arm::KustoTableDataSetProperties {
            kusto_database_resource_id: kusto_database_resource_id.to_string(),
            table_level_sharing_properties: arm::TableLevelSharingProperties {
                tables_to_include: opt_list(&t.tables_to_include),
                tables_to_exclude: opt_list(&t.tables_to_exclude),
                materialized_views_to_include: opt_list(&t.materialized_views_to_include),
                materialized_views_to_exclude: opt_list(&t.materialized_views_to_exclude),
                external_tables_to_include: opt_list(&t.external_tables_to_include),
                external_tables_to_exclude: opt_list(&t.external_tables_to_exclude),
                ..Default::default()
            },
            ..Default::default()
        }),
        DataSetSpec::SqlDbTable {
            sql_server_resource_id,
            database_name,
            schema_name,
            table_name,
        } => DataSetKind::SqlDbTable(arm::SqlDbTableProperties {
            database_name: database_name.to_string(),
            schema_name: schema_name.to_string(),
            table_name: table_name.to_string(),
            sql_server_resource_id: sql_server_resource_id.to_string(),
            ..Default::default()
        }),
        DataSetSpec::SqlDwTable {
            sql_server_resource_id,
            data_warehouse_name,
            schema_name,
            table_name,
        } => DataSetKind::SqlDwTable(arm::SqlDwTableProperties {
            data_warehouse_name: data_warehouse_name.to_string(),
            schema_name: schema_name.to_string(),
            table_name: table_name.to_string(),
            sql_server_resource_id: sql_server_resource_id.to_string(),
            ..Default::default()
        }),
        DataSetSpec::SynapseWorkspaceSqlPoolTable {
            synapse_workspace_sql_pool_table_resource_id,
        } => DataSetKind::SynapseWorkspaceSqlPoolTable(
            arm::SynapseWorkspaceSqlPoolTableDataSetProperties {
                synapse_workspace_sql_pool_table_resource_id:
                    synapse_workspace_sql_pool_table_resource_id.to_string(),
                ..Default::default()
            },
        ),
        DataSetSpec::Unknown { .. } => return None,
    };
    Some(DataSet::new(k))
}

/// The writable properties of an observed share.
pub fn share_props(share: &Share) -> ShareProps {
    ShareProps {
        description: share.properties.description.clone(),
        terms: share.properties.terms.clone(),
        kind: ShareKind::parse(share.properties.share_kind.as_ref().map(|k| k.as_str())),
    }
}

/// The PUT body of a share.
pub fn share_body(p: &ShareProps) -> Share {
    Share::new(
        p.description.clone(),
        p.terms.clone(),
        arm::ShareKind::parse(p.kind.as_str()),
    )
}

/// The schedule of an observed synchronization setting; `None` for unknown kinds.
pub fn schedule_spec(s: &SynchronizationSetting) -> Option<ScheduleSpec> {
    match &s.kind {
        SynchronizationSettingKind::ScheduleBased(p) => Some(ScheduleSpec {
            recurrence_interval: Recurrence::parse(p.recurrence_interval.as_str()),
            synchronization_time: p.synchronization_time,
        }),
        SynchronizationSettingKind::Unknown { .. } => None,
    }
}

/// The PUT body of a synchronization setting.
pub fn schedule_body(s: &ScheduleSpec) -> SynchronizationSetting {
    SynchronizationSetting::schedule(
        arm::RecurrenceInterval::parse(s.recurrence_interval.as_str()),
        s.synchronization_time,
    )
}

/// The model form of an ARM invitation target.
pub fn target_of(t: &InvitationTarget) -> Target {
    match t {
        InvitationTarget::Email(e) => Target::Email(e.as_str().into()),
        InvitationTarget::Principal {
            tenant_id,
            object_id,
        } => Target::Tenant {
            tenant_id: tenant_id.as_str().into(),
            object_id: object_id.as_str().into(),
        },
    }
}

/// The PUT body of an invitation.
pub fn invitation_body(i: &NewInvitation) -> Invitation {
    let t = match &i.target {
        Target::Email(e) => InvitationTarget::Email(e.to_string()),
        Target::Tenant {
            tenant_id,
            object_id,
        } => InvitationTarget::Principal {
            tenant_id: tenant_id.to_string(),
            object_id: object_id.to_string(),
        },
    };
    Invitation::new(&t, i.expiration)
}

/// Everything listed under one share, as ARM returned it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShareLists {
    pub share: Share,
    pub datasets: Vec<DataSet>,
    pub sync_settings: Vec<SynchronizationSetting>,
    pub invitations: Vec<Invitation>,
    pub subscriptions: Vec<ProviderShareSubscription>,
}

/// What a provider share subscription tells of its consumer's invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerMatch {
    One(Target),
    Ambiguous(Vec<Target>),
    Unknown,
}

fn email_target(s: &ProviderShareSubscription) -> Option<Target> {
    s.properties
        .consumer_email
        .as_deref()
        .filter(|e| e.contains('@'))
        .map(|e| Target::Email(CiString::new(e)))
}

/// The invitation behind a provider share subscription, by what Azure provides: its key is
/// `shareSubscriptionObjectId` and its `name` is the consumer's own share subscription name, so
/// neither names an invitation. In order:
/// 1. `sharedAt` = an invitation's `sentAt`, compared as instants (an e-mail invitation must
///    also agree with `consumerEmail`);
/// 2. `consumerEmail` = an e-mail invitation's target;
/// 3. an accepted tenant + object id invitation that no provider share subscription of the
///    share matched by 1 or 2 (a repeated invitation PUT moves `sentAt`, so 1 can miss);
/// 4. the consumer's e-mail as the target; else unknown.
///
/// More than one distinct target at a step is ambiguous. (Older simulators named provider share
/// subscriptions by the invitation id; that name still matches first.)
pub fn consumer_target(
    s: &ProviderShareSubscription,
    invitations: &[Invitation],
    all: &[ProviderShareSubscription],
) -> ConsumerMatch {
    fn one_of(mut t: Vec<Target>) -> Option<ConsumerMatch> {
        t.sort();
        t.dedup();
        match t.len() {
            0 => None,
            1 => t.pop().map(ConsumerMatch::One),
            _ => Some(ConsumerMatch::Ambiguous(t)),
        }
    }
    let targets = |f: &dyn Fn(&Invitation) -> bool| -> Vec<Target> {
        invitations
            .iter()
            .filter(|i| f(i))
            .filter_map(|i| i.target().map(|t| target_of(&t)))
            .collect()
    };
    // Legacy: named after the invitation id.
    let legacy = |s: &ProviderShareSubscription| -> Option<ConsumerMatch> {
        let name = s.meta.name.as_deref()?;
        one_of(targets(&|i| {
            i.properties
                .invitation_id
                .as_deref()
                .is_some_and(|id| id.eq_ignore_ascii_case(name))
        }))
    };
    if let Some(m) = legacy(s) {
        return m;
    }
    let email = email_target(s);
    let direct = |s: &ProviderShareSubscription| -> Option<ConsumerMatch> {
        let email = email_target(s);
        let shared_at = s.properties.shared_at;
        let by_time = targets(&|i| {
            shared_at.is_some()
                && i.properties.sent_at == shared_at
                && i.target().is_some_and(|t| match target_of(&t) {
                    t @ Target::Email(_) => email.as_ref().is_none_or(|e| *e == t),
                    _ => true,
                })
        });
        one_of(by_time).or_else(|| {
            let e = email.clone()?;
            one_of(targets(&|i| i.target().is_some_and(|t| target_of(&t) == e)))
        })
    };
    if let Some(m) = direct(s) {
        return m;
    }
    // Accepted tenant + object id invitations no other subscription of the share accounts for.
    let claimed: Vec<Target> = all
        .iter()
        .filter(|o| !std::ptr::eq(*o, s))
        .filter_map(|o| match legacy(o).or_else(|| direct(o)) {
            Some(ConsumerMatch::One(t)) => Some(t),
            _ => None,
        })
        .collect();
    let open = targets(&|i| {
        matches!(
            InvitationStatus::parse(i.properties.invitation_status.as_ref().map(|x| x.as_str())),
            InvitationStatus::Accepted
        ) && i.properties.target_email.is_none()
            && i.target()
                .is_some_and(|t| !claimed.contains(&target_of(&t)))
    });
    if let Some(m) = one_of(open) {
        return m;
    }
    email.map_or(ConsumerMatch::Unknown, ConsumerMatch::One)
}

/// Normalise one share's lists; `findings` receives what cannot be modelled (unknown
/// synchronization setting kinds, nameless items).
pub fn normalise_share(name: &str, raw: &ShareLists, findings: &mut Vec<Finding>) -> ShareModel {
    let mut m = ShareModel::new(share_props(&raw.share));
    for ds in &raw.datasets {
        let Some(n) = ds.name() else { continue };
        m.datasets.insert(n.into(), dataset_spec(ds));
    }
    for s in &raw.sync_settings {
        let Some(n) = s.name() else { continue };
        match schedule_spec(s) {
            Some(spec) => {
                m.sync_settings.insert(n.into(), spec);
            }
            None => findings.push(Finding::new(
                FindingCode::UnknownKind,
                Some(name),
                Some(&format!("{name}/{n}")),
                format!(
                    "synchronization setting {name}/{n} has kind {:?}, which this tool does not \
                     know; it is not replicated",
                    s.kind_name()
                ),
            )),
        }
    }
    for i in &raw.invitations {
        // An invitation without a target cannot be compared; it covers nobody.
        let Some(t) = i.target() else { continue };
        m.invitations.push(InvitationSpec {
            target: target_of(&t),
            expiration: i.properties.expiration_date,
            status: InvitationStatus::parse(
                i.properties.invitation_status.as_ref().map(|s| s.as_str()),
            ),
        });
    }
    let matches: Vec<ConsumerMatch> = raw
        .subscriptions
        .iter()
        .map(|s| consumer_target(s, &raw.invitations, &raw.subscriptions))
        .collect();
    for (s, found) in raw.subscriptions.iter().zip(matches) {
        let p = &s.properties;
        let (target, candidates) = match found {
            ConsumerMatch::One(t) => (Some(t), Vec::new()),
            ConsumerMatch::Ambiguous(c) => (None, c),
            ConsumerMatch::Unknown => (None, Vec::new()),
        };
        let display = [&p.consumer_name, &p.consumer_email, &p.consumer_tenant_name]
            .iter()
            .filter_map(|x| x.as_deref())
            .collect::<Vec<_>>()
            .join(" / ");
        m.consumers.push(ConsumerSpec {
            target,
            candidates,
            display: if display.is_empty() {
                s.meta.name.clone().unwrap_or_default()
            } else {
                display
            },
            status: SubscriptionStatus::parse(
                p.share_subscription_status.as_ref().map(|s| s.as_str()),
            ),
            expiration: p.expiration_date,
        });
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        match serde_json::from_value(v) {
            Ok(t) => t,
            Err(e) => panic!("fixture does not decode: {e}"),
        }
    }

    #[test]
    fn a_data_set_round_trips_through_the_model_without_read_only_fields() {
        let ds: DataSet = parse(serde_json::json!({
            "id": "/subscriptions/S/resourceGroups/rg/providers/Microsoft.DataShare/accounts/a/shares/s/dataSets/d",
            "name": "d", "type": "Microsoft.DataShare/accounts/shares/dataSets",
            "kind": "Blob",
            "properties": {"containerName": "c", "filePath": "f.csv", "subscriptionId": "S",
                           "resourceGroup": "rg", "storageAccountName": "sa",
                           "dataSetId": "0000-1111"}
        }));
        let spec = dataset_spec(&ds);
        let body = dataset_body(&spec).map(|b| serde_json::to_value(b).unwrap_or_default());
        assert_eq!(
            body,
            Some(
                serde_json::json!({"kind": "Blob", "properties": {"containerName": "c",
                "filePath": "f.csv", "subscriptionId": "S", "resourceGroup": "rg",
                "storageAccountName": "sa"}})
            )
        );
    }

    #[test]
    fn kusto_table_lists_are_order_insensitive() {
        let mk = |tables: serde_json::Value| -> DataSet {
            parse(serde_json::json!({"kind": "KustoTable", "properties": {
                "kustoDatabaseResourceId": "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Kusto/clusters/k/databases/d",
                "tableLevelSharingProperties": {"tablesToInclude": tables},
                "location": "westeurope", "provisioningState": "Succeeded"}}))
        };
        assert_eq!(
            dataset_spec(&mk(serde_json::json!(["b", "a"]))),
            dataset_spec(&mk(serde_json::json!(["a", "b"])))
        );
    }

    #[test]
    fn a_subscription_is_resolved_to_the_target_of_the_invitation_it_came_from() {
        let raw = ShareLists {
            share: parse(
                serde_json::json!({"name": "s", "properties": {"shareKind": "CopyBased"}}),
            ),
            invitations: vec![parse(serde_json::json!({"name": "i1", "properties": {
                "targetActiveDirectoryId": "T", "targetObjectId": "O",
                "invitationId": "4E1C7E3B-0000-0000-0000-000000000001",
                "invitationStatus": "Accepted"}}))],
            subscriptions: vec![
                parse(
                    serde_json::json!({"name": "4e1c7e3b-0000-0000-0000-000000000001",
                    "properties": {"consumerEmail": "svc@fabrikam.com",
                                   "shareSubscriptionStatus": "Active"}}),
                ),
                parse(serde_json::json!({"name": "other",
                    "properties": {"consumerEmail": "Bob@fabrikam.com", "consumerName": "Bob",
                                   "shareSubscriptionStatus": "Revoked"}})),
            ],
            ..ShareLists::default()
        };
        let mut f = vec![];
        let m = normalise_share("s", &raw, &mut f);
        assert_eq!(
            m.consumers[0].target,
            Some(Target::Tenant {
                tenant_id: "t".into(),
                object_id: "o".into()
            })
        );
        assert_eq!(m.consumers[0].status, SubscriptionStatus::Active);
        assert_eq!(
            m.consumers[1].target,
            Some(Target::Email("bob@fabrikam.com".into()))
        );
        assert_eq!(m.consumers[1].status, SubscriptionStatus::Revoked);
        assert_eq!(m.invitations[0].status, InvitationStatus::Accepted);
        assert!(f.is_empty());
    }

    #[test]
    fn an_unknown_synchronization_setting_kind_is_a_finding() {
        let raw = ShareLists {
            share: parse(serde_json::json!({"name": "s", "properties": {}})),
            sync_settings: vec![parse(serde_json::json!({"name": "x", "kind": "EventBased",
                "properties": {}}))],
            ..ShareLists::default()
        };
        let mut f = vec![];
        let m = normalise_share("s", &raw, &mut f);
        assert!(m.sync_settings.is_empty());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, FindingCode::UnknownKind);
    }

    // Real shapes (recordings): the provider share subscription is keyed by its own object id,
    // named after the consumer's share subscription; `sharedAt` = the invitation's `sentAt`.
    const T: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const O: &str = "9c1d7b62-8746-48cf-b7d8-f1bda6d9efd0";

    fn principal_invitation(name: &str, object: &str, sent: &str, status: &str) -> Invitation {
        parse(
            serde_json::json!({"name": name, "properties": {"targetActiveDirectoryId": T,
            "targetObjectId": object, "invitationId": format!("e3926b8b-0000-4000-8000-{:012}", name.len()),
            "invitationStatus": status, "sentAt": sent}}),
        )
    }

    fn real_psub(shared_at: &str) -> ProviderShareSubscription {
        parse(serde_json::json!({
            "id": "/subscriptions/S/resourceGroups/rg/providers/Microsoft.DataShare/accounts/a/shares/s/shareSubscriptions/2b45c0ed-244f-4ba5-b452-afefd4327995",
            "name": "consumer_dr_subscription", "type": "Microsoft.DataShare/ShareSubscriptions",
            "properties": {"shareSubscriptionObjectId": "2b45c0ed-244f-4ba5-b452-afefd4327995",
                "consumerName": "consumer-dr", "consumerEmail": "", "consumerTenantName": "Fabrikam",
                "createdAt": "2026-04-07T11:03:14.8382416Z", "sharedAt": shared_at,
                "shareSubscriptionStatus": "Active"}}))
    }

    fn share_with(inv: Vec<Invitation>, subs: Vec<ProviderShareSubscription>) -> ShareModel {
        let raw = ShareLists {
            share: parse(
                serde_json::json!({"name": "s", "properties": {"shareKind": "CopyBased"}}),
            ),
            invitations: inv,
            subscriptions: subs,
            ..ShareLists::default()
        };
        let mut f = Vec::new();
        normalise_share("s", &raw, &mut f)
    }

    #[test]
    fn a_tenant_object_consumer_is_found_from_a_real_shaped_provider_share_subscription() {
        let tenant = Target::Tenant {
            tenant_id: T.into(),
            object_id: O.into(),
        };
        // Same instant, written differently (`Z` vs `+00:00`): compared as instants.
        let m = share_with(
            vec![principal_invitation(
                "inv1",
                O,
                "2026-04-07T11:00:40.2808409+00:00",
                "Accepted",
            )],
            vec![real_psub("2026-04-07T11:00:40.2808409Z")],
        );
        assert_eq!(m.consumers[0].target.as_ref(), Some(&tenant), "{m:?}");
        // In the roster once, and covered on a secondary holding the same consumer: not invited
        // a second time at failover.
        let mut acc = crate::reconcile::model::AccountModel::default();
        acc.shares.insert("s".into(), m.clone());
        let roster = crate::failover::exec::roster_of(&acc);
        assert_eq!(roster.len(), 1, "{roster:?}");
        assert_eq!(roster[0].target, tenant.to_string());
        let now = time::OffsetDateTime::now_utc();
        assert!(crate::failover::exec::is_covered(
            &acc,
            "s",
            &roster[0].target,
            now
        ));
        // A repeated invitation PUT moved `sentAt`: the only accepted tenant + object
        // invitation still accounts for the consumer.
        let m = share_with(
            vec![principal_invitation(
                "inv1",
                O,
                "2026-04-08T09:00:00Z",
                "Accepted",
            )],
            vec![real_psub("2026-04-07T11:00:40.2808409Z")],
        );
        assert_eq!(m.consumers[0].target.as_ref(), Some(&tenant), "{m:?}");
    }

    #[test]
    fn an_ambiguous_consumer_match_is_reported_not_guessed() {
        let other = "11111111-2222-4333-8444-555555555555";
        let m = share_with(
            vec![
                principal_invitation("inv1", O, "2026-04-08T09:00:00Z", "Accepted"),
                principal_invitation("inv22", other, "2026-04-08T09:30:00Z", "Accepted"),
            ],
            vec![real_psub("2026-04-07T11:00:40Z")],
        );
        let c = &m.consumers[0];
        assert_eq!(c.target, None, "{c:?}");
        assert_eq!(c.candidates.len(), 2, "{c:?}");
    }
}
