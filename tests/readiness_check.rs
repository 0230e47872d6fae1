//! observe_pair / check_pair against a counting fake `PairReader`: the fewest reads, and the
//! reads' results land in the right findings.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use datashare_dr::arm::id::AccountId;
use datashare_dr::arm::models::{
    Account, DataSet, GenericResource, Invitation, ProviderShareSubscription, RoleAssignment,
    Share, ShareSynchronization, SynchronizationSetting,
};
use datashare_dr::config::dr::DrConfig;
use datashare_dr::readiness::check::{AccountRead, PairReader, check_pair};
use datashare_dr::readiness::convert::StoreRead;
use datashare_dr::readiness::{Status, codes};
use datashare_dr::reconcile::convert::ShareLists;
use serde_json::json;
use time::macros::datetime;

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const PRINCIPAL: &str = "11111111-2222-3333-4444-555555555555";

fn acct(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.DataShare/accounts/{name}"
    )
}

fn config() -> DrConfig {
    let toml = format!(
        r#"
[arm]
endpoint = "http://127.0.0.1:1"
auth = "none"

[[pairs]]
name = "sales"
primary = "{p}"
secondary = "{s}"
primary_region = "westeurope"
secondary_region = "northeurope"

[pairs.stores.defaults.storage]
replace = [["rg-weu", "rg-neu"], ["weu", "neu"]]
"#,
        p = acct("rg-weu", "sales-weu"),
        s = acct("rg-neu", "sales-neu")
    );
    DrConfig::from_toml_str(&toml, "dr.toml").expect("config parses")
}

fn share_lists(account: &str, share: &str, storage_rg: &str, storage: &str) -> ShareLists {
    let share_id = format!("{account}/shares/{share}");
    let from = |v: serde_json::Value| v;
    ShareLists {
        share: serde_json::from_value::<Share>(from(json!({
            "id": share_id, "name": share, "type": "Microsoft.DataShare/accounts/shares",
            "properties": {"shareKind": "CopyBased", "description": "d"}
        })))
        .expect("share"),
        datasets: vec![serde_json::from_value::<DataSet>(json!({
            "id": format!("{share_id}/dataSets/raw"), "name": "raw", "kind": "Container",
            "properties": {"containerName": "raw", "subscriptionId": SUB,
                "resourceGroup": storage_rg, "storageAccountName": storage}
        }))
        .expect("dataset")],
        sync_settings: vec![serde_json::from_value::<SynchronizationSetting>(json!({
            "id": format!("{share_id}/synchronizationSettings/daily"), "name": "daily",
            "kind": "ScheduleBased",
            "properties": {"recurrenceInterval": "Day", "synchronizationTime": "2025-01-01T02:00:00Z"}
        }))
        .expect("setting")],
        invitations: Vec::<Invitation>::new(),
        subscriptions: Vec::<ProviderShareSubscription>::new(),
    }
}

struct Fake {
    secondary_present: bool,
    store_present: bool,
    role: &'static str,
    accounts: AtomicUsize,
    syncs: AtomicUsize,
    stores: AtomicUsize,
    roles: AtomicUsize,
    store_ids: Mutex<Vec<String>>,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            secondary_present: true,
            store_present: true,
            role: "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
            accounts: AtomicUsize::new(0),
            syncs: AtomicUsize::new(0),
            stores: AtomicUsize::new(0),
            roles: AtomicUsize::new(0),
            store_ids: Mutex::new(Vec::new()),
        }
    }
}

impl PairReader for Fake {
    async fn read_account(
        &self,
        id: &AccountId,
        selects: &(dyn Fn(&str) -> bool + Sync),
    ) -> AccountRead {
        self.accounts.fetch_add(1, Ordering::SeqCst);
        let primary = id.as_str().contains("weu");
        if !primary && !self.secondary_present {
            return AccountRead::Missing;
        }
        let (rg, loc, st_rg, st) = if primary {
            ("rg-weu", "westeurope", "rg-weu", "rawweu")
        } else {
            ("rg-neu", "northeurope", "rg-neu", "rawneu")
        };
        let account: Account = serde_json::from_value(json!({
            "id": id.as_str(), "name": id.name(), "location": loc,
            "identity": {"type": "SystemAssigned", "principalId": if primary { "p-primary" } else { PRINCIPAL }},
            "properties": {"provisioningState": "Succeeded"}
        }))
        .expect("account");
        let base = acct(rg, id.name());
        let shares = ["sales", "hr"]
            .into_iter()
            .filter(|s| selects(s))
            .map(|s| share_lists(&base, s, st_rg, st))
            .collect();
        AccountRead::Present {
            account: Box::new(account),
            shares,
        }
    }

    async fn list_synchronizations(
        &self,
        _share_id: &str,
    ) -> Result<Vec<ShareSynchronization>, String> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(vec![
            serde_json::from_value(json!({
                "status": "Succeeded", "startTime": "2025-06-01T02:00:00Z",
                "endTime": "2025-06-01T02:10:00Z", "synchronizationId": "s1"
            }))
            .expect("sync"),
        ])
    }

    async fn get_store(&self, id: &str) -> StoreRead {
        self.stores.fetch_add(1, Ordering::SeqCst);
        self.store_ids.lock().expect("lock").push(id.to_string());
        if !self.store_present {
            return StoreRead::NotFound;
        }
        StoreRead::Found(
            serde_json::from_value::<GenericResource>(
                json!({"id": id, "name": "rawneu", "location": "northeurope"}),
            )
            .expect("resource"),
        )
    }

    async fn role_assignments(
        &self,
        subscription_id: &str,
        principal_id: &str,
    ) -> Result<Vec<RoleAssignment>, String> {
        self.roles.fetch_add(1, Ordering::SeqCst);
        assert_eq!(principal_id, PRINCIPAL);
        Ok(vec![
            serde_json::from_value(json!({
                "id": "/x", "name": "ra1",
                "properties": {
                    "roleDefinitionId": format!("/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{}", self.role),
                    "principalId": principal_id,
                    "scope": format!("/subscriptions/{subscription_id}/resourceGroups/rg-neu")
                }
            }))
            .expect("role"),
        ])
    }
}

const NOW: time::OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

#[tokio::test]
async fn a_replicated_pair_is_ready_after_the_fewest_reads() {
    let cfg = config();
    let fake = Fake::new();
    let report = check_pair(&fake, &cfg, &cfg.pairs[0], NOW, None).await;
    assert_eq!(report.status, Status::Ready, "{:#?}", report.findings);
    assert_eq!(
        fake.accounts.load(Ordering::SeqCst),
        2,
        "one observation per account"
    );
    assert_eq!(
        fake.syncs.load(Ordering::SeqCst),
        2,
        "one history read per primary share"
    );
    assert_eq!(
        fake.stores.load(Ordering::SeqCst),
        1,
        "the shared store is read once"
    );
    assert_eq!(
        fake.roles.load(Ordering::SeqCst),
        1,
        "role assignments once per subscription"
    );
    assert_eq!(
        fake.store_ids.lock().expect("lock").as_slice(),
        [format!(
            "/subscriptions/{SUB}/resourceGroups/rg-neu/providers/Microsoft.Storage/storageAccounts/rawneu"
        )]
    );
    assert_eq!(report.rpo.len(), 2);
    assert_eq!(report.rpo[0].age_secs, Some(9 * 3600 + 50 * 60));
}

#[tokio::test]
async fn a_missing_store_and_a_missing_role_turn_up_as_findings() {
    let cfg = config();
    let fake = Fake {
        store_present: false,
        ..Fake::new()
    };
    let report = check_pair(&fake, &cfg, &cfg.pairs[0], NOW, None).await;
    assert!(report.has(codes::STORE_MISSING));
    assert_eq!(report.status, Status::NotReady);

    let fake = Fake {
        role: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        ..Fake::new()
    };
    let report = check_pair(&fake, &cfg, &cfg.pairs[0], NOW, None).await;
    assert!(
        report.has(codes::IDENTITY_ROLE_MISSING),
        "{:#?}",
        report.findings
    );
}

#[tokio::test]
async fn a_missing_secondary_skips_store_and_role_reads() {
    let cfg = config();
    let fake = Fake {
        secondary_present: false,
        ..Fake::new()
    };
    let report = check_pair(&fake, &cfg, &cfg.pairs[0], NOW, None).await;
    assert!(report.has(codes::SECONDARY_ACCOUNT_MISSING));
    assert_eq!(fake.roles.load(Ordering::SeqCst), 0);
    assert_eq!(report.status, Status::NotReady);
}
