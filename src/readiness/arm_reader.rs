//! [`PairReader`] over the real ARM client: account observation through reconcile's
//! `observe_account` (shared with replication), plus readiness's own extra reads.
//!
//! Error texts given to observations are ARM's messages (status, code, operation), never tokens.
//!
//! Must not import: handlers, host.

use crate::arm::client::ArmClient;
use crate::arm::error::ArmError;
use crate::arm::fault::{Failure, classify};
use crate::arm::id::{AccountId, ResourceId, ShareId};
use crate::arm::models::{RoleAssignment, ShareSynchronization};
use crate::arm::ops::ListQuery;
use crate::reconcile::observe::{self, AccountObservation as ReconcileAccount, ObserveOptions};

use super::check::{AccountRead, PairReader};
use super::convert::StoreRead;

/// ARM api-versions used to GET a store, by resource type (lower-case).
pub fn store_api_version(id: &ResourceId) -> &'static str {
    let t = id.resource_type().to_ascii_lowercase();
    match t.as_str() {
        "microsoft.storage/storageaccounts" => "2023-05-01",
        "microsoft.sql/servers" => "2021-11-01",
        "microsoft.synapse/workspaces" => "2021-06-01",
        "microsoft.kusto/clusters" | "microsoft.kusto/clusters/databases" => "2023-08-15",
        "microsoft.datalakestore/accounts" => "2016-11-01",
        _ => "2021-04-01",
    }
}

/// A short, secret-free reason for an observation.
fn reason(e: &ArmError) -> String {
    match e.status() {
        Some(s) => format!("HTTP {s}: {e}"),
        None => e.to_string(),
    }
}

/// The ARM client as readiness's reader.
pub struct ArmReader<'a> {
    pub client: &'a ArmClient,
    /// Shares observed at once per account.
    pub concurrency: usize,
}

impl PairReader for ArmReader<'_> {
    async fn read_account(
        &self,
        id: &AccountId,
        selects: &(dyn Fn(&str) -> bool + Sync),
    ) -> AccountRead {
        // Reconcile's observe, plus the account GET (sent alongside the share listing).
        let opts = ObserveOptions {
            concurrency: self.concurrency.max(1),
            read_account: true,
        };
        match observe::observe_account(self.client, id, selects, &opts).await {
            Ok(ReconcileAccount::Missing) => AccountRead::Missing,
            Ok(ReconcileAccount::Present {
                account: Some(account),
                shares,
            }) => AccountRead::Present {
                account: Box::new(account),
                shares,
            },
            // `read_account` always reads it; kept total rather than panicking.
            Ok(ReconcileAccount::Present { account: None, .. }) => AccountRead::Faulted {
                fault: crate::arm::fault::ToolFault::Unexpected,
                reason: "the account was not read".into(),
            },
            Err(e) => match e.arm() {
                Some(a) => match classify(a) {
                    Failure::Unavailable => AccountRead::Unreachable(reason(a)),
                    // `observe_account` answers `Missing` for a 404 naming the account; a
                    // missing share or dataset under it is not the account's absence.
                    Failure::ResourceMissing => AccountRead::Faulted {
                        fault: crate::arm::fault::ToolFault::Unexpected,
                        reason: reason(a),
                    },
                    Failure::ToolFault(fault) => AccountRead::Faulted {
                        fault,
                        reason: reason(a),
                    },
                },
                // Not an ARM answer (an invalid share name listed by ARM).
                None => AccountRead::Faulted {
                    fault: crate::arm::fault::ToolFault::Unexpected,
                    reason: e.to_string(),
                },
            },
        }
    }

    async fn list_synchronizations(
        &self,
        share_id: &str,
    ) -> Result<Vec<ShareSynchronization>, String> {
        let id = ShareId::parse(share_id).map_err(|e| e.to_string())?;
        self.client
            .list_share_synchronizations(&id, &ListQuery::default())
            .await
            .map_err(|e| reason(&e))
    }

    async fn get_store(&self, id: &str) -> StoreRead {
        let rid = match ResourceId::parse(id) {
            Ok(r) => r,
            Err(e) => return StoreRead::Failed(e.to_string()),
        };
        match self
            .client
            .get_resource(&rid, store_api_version(&rid))
            .await
        {
            Ok(Some(r)) => StoreRead::Found(r),
            Ok(None) => StoreRead::NotFound,
            Err(e) => StoreRead::Failed(reason(&e)),
        }
    }

    async fn role_assignments(
        &self,
        subscription_id: &str,
        principal_id: &str,
    ) -> Result<Vec<RoleAssignment>, String> {
        let scope = ResourceId::subscription(subscription_id).map_err(|e| e.to_string())?;
        self.client
            .list_role_assignments(&scope, principal_id)
            .await
            .map_err(|e| reason(&e))
    }
}

/// The shared ARM client builder (moved to `config::arm`; re-exported for existing callers).
pub use crate::config::arm::arm_client_from_config;
