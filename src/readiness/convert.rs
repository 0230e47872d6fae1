//! Pure conversions from what observe read (ARM models, reconcile's per-share lists, the DR
//! config) into readiness [`Observations`](super::model::Observations) and [`Policy`].
//!
//! Readiness shares the replication observe step: a share's lists arrive as
//! `reconcile::convert::ShareLists` (the same value reconcile normalises), and only the extra
//! reads readiness needs (share synchronizations, store GETs, role assignments) are added here.
//!
//! Must not import: handlers, host, store. No IO.

use std::collections::BTreeMap;

use crate::arm::id::ResourceId;
use crate::arm::models::{
    Account, DataSet, GenericResource, ProviderShareSubscription, RoleAssignment,
    ShareSynchronization, StoreKind as ArmStoreKind, SynchronizationSetting,
    SynchronizationSettingKind,
};
use crate::config::dr::{self, DrConfig, Pair};
use crate::reconcile::convert::{ShareLists, dataset_spec};

use super::evaluate::{InvitationPolicy, Policy};
use super::model::{
    AccountSnapshot, ConsumerTarget, DatasetObservation, InvitationObservation, ShareObservation,
    StoreExistence, StoreKind, StoreObservation, SubscriptionObservation, SyncSettingObservation,
    SynchronizationObservation, same_id,
};

/// The readiness policy of `pair` (readiness knobs live in `[defaults]`).
pub fn policy_for(cfg: &DrConfig, pair: &Pair) -> Policy {
    let d = &cfg.defaults;
    let dur = |s: std::time::Duration| time::Duration::try_from(s).unwrap_or(time::Duration::MAX);
    Policy {
        expiry_horizon: dur(d.expiry_horizon),
        drill_max_age: dur(d.drill_max_age),
        rpo_factor: d.rpo_factor,
        invitations: invitation_policy(pair.invitations),
        consumer_overrides: pair
            .consumers
            .iter()
            .map(|c| (consumer_target(&c.target), invitation_policy(c.invitations)))
            .collect(),
        config_path: cfg.source.clone(),
    }
}

fn invitation_policy(p: dr::InvitationPolicy) -> InvitationPolicy {
    match p {
        dr::InvitationPolicy::Now => InvitationPolicy::Now,
        dr::InvitationPolicy::AtFailover => InvitationPolicy::AtFailover,
    }
}

fn consumer_target(t: &dr::ConsumerTarget) -> ConsumerTarget {
    match t {
        dr::ConsumerTarget::Email(e) => ConsumerTarget::Email { email: e.clone() },
        dr::ConsumerTarget::Aad {
            tenant_id,
            object_id,
        } => ConsumerTarget::Principal {
            tenant_id: tenant_id.clone(),
            object_id: object_id.clone(),
        },
    }
}

/// Readiness store kind of an ARM store kind.
pub fn store_kind(kind: ArmStoreKind) -> StoreKind {
    match kind {
        ArmStoreKind::StorageAccount => StoreKind::Storage,
        ArmStoreKind::DataLakeStoreGen1 => StoreKind::AdlsGen1,
        ArmStoreKind::SqlServer => StoreKind::Sql,
        ArmStoreKind::SynapseWorkspace => StoreKind::Synapse,
        ArmStoreKind::KustoCluster | ArmStoreKind::KustoDatabase => StoreKind::Kusto,
    }
}

/// Fields that only say *which* store a dataset reads from (the mapped part).
const STORE_FIELDS: &[&str] = &[
    "subscriptionId",
    "resourceGroup",
    "storageAccountName",
    "accountName",
];

pub fn dataset_observation(ds: &DataSet) -> DatasetObservation {
    let store = ds.store();
    let store_id = store.as_ref().map(|s| s.id.as_str().to_string());
    let mut locator = BTreeMap::new();
    for (field, value) in dataset_spec(ds).fields() {
        if STORE_FIELDS.contains(&field) {
            continue;
        }
        // Ids inside the store (a Synapse table id, a Kusto database id) keep only the part
        // below the store, so a mapped copy compares equal.
        let relative = match &store_id {
            Some(sid)
                if value.len() >= sid.len() && value[..sid.len()].eq_ignore_ascii_case(sid) =>
            {
                value[sid.len()..].to_ascii_lowercase()
            }
            _ => value,
        };
        locator.insert(field.to_string(), relative);
    }
    DatasetObservation {
        id: ds.meta.id.clone().unwrap_or_default(),
        name: ds.name().unwrap_or_default().to_string(),
        kind: ds.kind_name().to_string(),
        store: store_id,
        store_kind: store
            .map(|s| store_kind(s.kind))
            .or_else(|| ds.is_retired().then_some(StoreKind::AdlsGen1)),
        locator,
    }
}

fn sync_setting_observation(s: &SynchronizationSetting) -> SyncSettingObservation {
    let (interval, at) = match &s.kind {
        SynchronizationSettingKind::ScheduleBased(p) => (
            Some(p.recurrence_interval.as_str().to_string()),
            Some(p.synchronization_time),
        ),
        _ => (None, None),
    };
    SyncSettingObservation {
        id: s.meta.id.clone().unwrap_or_default(),
        name: s.name().unwrap_or_default().to_string(),
        kind: s.kind_name().to_string(),
        recurrence_interval: interval,
        synchronization_time: at,
    }
}

fn subscription_observation(p: &ProviderShareSubscription) -> SubscriptionObservation {
    let props = &p.properties;
    SubscriptionObservation {
        id: p.meta.id.clone().unwrap_or_default(),
        name: p.meta.name.clone().unwrap_or_default(),
        consumer_email: props.consumer_email.clone(),
        consumer_name: props.consumer_name.clone(),
        consumer_tenant_name: props.consumer_tenant_name.clone(),
        status: props
            .share_subscription_status
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        expiration: props.expiration_date,
    }
}

pub fn synchronization_observation(s: &ShareSynchronization) -> SynchronizationObservation {
    SynchronizationObservation {
        synchronization_id: s.synchronization_id.clone(),
        status: s.status.clone().unwrap_or_default(),
        start_time: s.start_time,
        end_time: s.end_time,
    }
}

/// One share as readiness sees it; `synchronizations` = `Shares_ListSynchronizations` (primary
/// only; `None` when not read).
pub fn share_observation(
    lists: &ShareLists,
    synchronizations: Option<&[ShareSynchronization]>,
) -> ShareObservation {
    let share = &lists.share;
    ShareObservation {
        id: share.meta.id.clone().unwrap_or_default(),
        name: share.meta.name.clone().unwrap_or_default(),
        share_kind: share
            .properties
            .share_kind
            .as_ref()
            .map(|k| k.as_str().to_string()),
        description: share.properties.description.clone(),
        terms: share.properties.terms.clone(),
        datasets: lists
            .datasets
            .iter()
            .map(dataset_observation)
            .map(|d| (d.name.to_lowercase(), d))
            .collect(),
        sync_settings: lists
            .sync_settings
            .iter()
            .map(sync_setting_observation)
            .map(|s| (s.name.to_lowercase(), s))
            .collect(),
        invitations: lists
            .invitations
            .iter()
            .map(|i| InvitationObservation {
                id: i.meta.id.clone().unwrap_or_default(),
                name: i.meta.name.clone().unwrap_or_default(),
                invitation_id: i.properties.invitation_id.clone(),
                target: i.target().map(|t| match t {
                    crate::arm::models::InvitationTarget::Email(email) => {
                        ConsumerTarget::Email { email }
                    }
                    crate::arm::models::InvitationTarget::Principal {
                        tenant_id,
                        object_id,
                    } => ConsumerTarget::Principal {
                        tenant_id,
                        object_id,
                    },
                }),
                status: i
                    .properties
                    .invitation_status
                    .as_ref()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "Pending".to_string()),
                expiration: i.properties.expiration_date,
            })
            .collect(),
        subscriptions: lists
            .subscriptions
            .iter()
            .map(subscription_observation)
            .collect(),
        synchronizations: synchronizations
            .map(|runs| runs.iter().map(synchronization_observation).collect()),
    }
}

/// An account and its selected shares.
pub fn account_snapshot(
    account: &Account,
    shares: impl IntoIterator<Item = ShareObservation>,
) -> AccountSnapshot {
    AccountSnapshot {
        id: account.meta.id.clone().unwrap_or_default(),
        location: account.location.clone().unwrap_or_default(),
        provisioning_state: account
            .properties
            .provisioning_state
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        principal_id: account.principal_id().map(str::to_string),
        shares: shares
            .into_iter()
            .map(|s| (s.name.to_lowercase(), s))
            .collect(),
    }
}

/// Applies the pair's store mapping to every store the primary datasets read from.
pub fn store_mapping(pair: &Pair, primary: &AccountSnapshot) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for ds in primary.shares.values().flat_map(|s| s.datasets.values()) {
        let Some(store) = &ds.store else { continue };
        if out.keys().any(|k: &String| same_id(k, store)) {
            continue;
        }
        let mapped = dr::StoreKind::for_dataset_kind(&ds.kind).and_then(|kind| {
            let id = ResourceId::parse(store).ok()?;
            pair.map_store(kind, &id).map(|m| m.as_str().to_string())
        });
        out.insert(store.clone(), mapped);
    }
    out
}

/// The secondary stores readiness must look at: every mapped store, plus every store the
/// secondary's own datasets read from (so a primary outage still checks them). Deduplicated
/// case-insensitively; value = the store kind.
pub fn stores_to_check(
    mapping: &BTreeMap<String, Option<String>>,
    primary: Option<&AccountSnapshot>,
    secondary: Option<&AccountSnapshot>,
) -> BTreeMap<String, StoreKind> {
    let mut out: BTreeMap<String, StoreKind> = BTreeMap::new();
    let mut add = |id: &str, kind: StoreKind| {
        if !out.keys().any(|k| same_id(k, id)) {
            out.insert(id.to_string(), kind);
        }
    };
    if let Some(p) = primary {
        for ds in p.shares.values().flat_map(|s| s.datasets.values()) {
            let (Some(store), Some(kind)) = (&ds.store, ds.store_kind) else {
                continue;
            };
            if kind == StoreKind::AdlsGen1 {
                continue;
            }
            if let Some((_, Some(mapped))) = mapping.iter().find(|(k, _)| same_id(k, store)) {
                add(mapped, kind);
            }
        }
    }
    if let Some(s) = secondary {
        for ds in s.shares.values().flat_map(|s| s.datasets.values()) {
            if let (Some(store), Some(kind)) = (&ds.store, ds.store_kind)
                && kind != StoreKind::AdlsGen1
            {
                add(store, kind);
            }
        }
    }
    out
}

/// What a store GET gave: the resource, 404, or a failure reason (secret-free text).
pub enum StoreRead {
    Found(GenericResource),
    NotFound,
    Failed(String),
}

/// A store observation from its GET and the role assignments of the secondary identity that
/// apply at its scope (`None` when they were not read).
pub fn store_observation(
    id: &str,
    kind: StoreKind,
    read: StoreRead,
    assignments: Option<&[RoleAssignment]>,
) -> StoreObservation {
    let existence = match read {
        StoreRead::Found(r) => StoreExistence::Present {
            location: r.location.unwrap_or_default(),
        },
        StoreRead::NotFound => StoreExistence::Missing,
        StoreRead::Failed(reason) => StoreExistence::Unreachable { reason },
    };
    let scope = ResourceId::parse(id).ok();
    let identity_roles = assignments.map(|list| {
        list.iter()
            .filter(|a| {
                let s = a.properties.scope.as_str();
                s == "/"
                    || match (&scope, ResourceId::parse(s)) {
                        (Some(store), Ok(at)) => store.is_within(&at),
                        _ => false,
                    }
            })
            .map(|a| a.role_definition_guid().to_ascii_lowercase())
            .collect()
    });
    StoreObservation {
        id: id.to_string(),
        kind,
        existence,
        identity_roles,
    }
}
