//! Access to the Azurite instance that `scripts/test` starts for the test run.
//!
//! `scripts/test` exports `DSDR_TEST_STORAGE` (an explicit connection string for Azurite on free
//! loopback ports) and `DSDR_REQUIRE_AZURITE=1`. Without `DSDR_TEST_STORAGE` (plain
//! `cargo test`), Azurite-backed tests print why and skip — unless `DSDR_REQUIRE_AZURITE=1`, in
//! which case a missing Azurite is a test failure.
//!
//! Every test gets its own uniquely named queues/containers, so tests run in parallel against
//! the one Azurite without seeing each other's data.

use std::sync::Arc;

use datashare_dr::store::{
    AzureBlobStore, AzureQueue, BlobStore, MessageEncoding, Queue, StorageSettings,
};

/// Name of the variable holding the Azurite connection string.
pub const STORAGE_ENV: &str = "DSDR_TEST_STORAGE";
/// When `1`, a missing Azurite fails the test instead of skipping it.
pub const REQUIRE_ENV: &str = "DSDR_REQUIRE_AZURITE";

/// The Azurite of this test run.
#[derive(Clone, Debug)]
pub struct TestAzurite {
    /// The connection string from `DSDR_TEST_STORAGE` (Azurite's public dev key only).
    pub connection_string: String,
    pub settings: StorageSettings,
}

/// The Azurite of this run, or `None` (after printing a skip notice) when `DSDR_TEST_STORAGE` is
/// not set. Panics — failing the test — when it is required (`DSDR_REQUIRE_AZURITE=1`) but
/// missing, or when the connection string is invalid.
pub fn azurite(test_name: &str) -> Option<TestAzurite> {
    let conn = std::env::var(STORAGE_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let Some(connection_string) = conn else {
        let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| v.trim() == "1");
        assert!(
            !required,
            "{test_name}: {REQUIRE_ENV}=1 but {STORAGE_ENV} is not set; run the suite through scripts/test"
        );
        eprintln!(
            "SKIPPED {test_name}: {STORAGE_ENV} is not set (run scripts/test to test against Azurite)"
        );
        return None;
    };
    let settings = match StorageSettings::from_connection_string(&connection_string) {
        Ok(s) => s,
        Err(e) => panic!("{test_name}: {STORAGE_ENV} is not a valid connection string: {e}"),
    };
    Some(TestAzurite {
        connection_string,
        settings,
    })
}

/// A name unique to this process and call, valid as an Azure queue/container name:
/// `<prefix>-<12 hex>` (prefix lowercased, non `[a-z0-9-]` characters dropped, trimmed to fit).
pub fn unique_name(prefix: &str) -> String {
    let mut clean: String = prefix
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .collect();
    while clean.contains("--") {
        clean = clean.replace("--", "-");
    }
    let clean = clean.trim_matches('-');
    let clean = if clean.is_empty() { "t" } else { clean };
    let clean: String = clean.chars().take(36).collect();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", clean.trim_end_matches('-'), &id[..12])
}

impl TestAzurite {
    /// A blob store on a new, empty, uniquely named container (created).
    pub async fn fresh_container(&self, prefix: &str) -> Arc<AzureBlobStore> {
        let name = unique_name(prefix);
        let store = match AzureBlobStore::new(&self.settings, &name) {
            Ok(s) => s,
            Err(e) => panic!("container {name}: {e}"),
        };
        if let Err(e) = store.ensure_container().await {
            panic!("creating container {name} in Azurite: {e:?}");
        }
        Arc::new(store)
    }

    /// A queue client with the given encoding, plus a new, uniquely named queue (created).
    pub async fn fresh_queue(
        &self,
        prefix: &str,
        encoding: MessageEncoding,
    ) -> (Arc<AzureQueue>, String) {
        let name = unique_name(prefix);
        let queue = match AzureQueue::new(&self.settings, encoding) {
            Ok(q) => q,
            Err(e) => panic!("queue client: {e}"),
        };
        if let Err(e) = queue.ensure_queue(&name).await {
            panic!("creating queue {name} in Azurite: {e:?}");
        }
        (Arc::new(queue), name)
    }

    /// Removes the messages of `run_ids` from the contract-named `failover-stages` queue (shared
    /// by the tests that start runs through the real names and leave them unpumped); other
    /// tests' messages are left alone and are visible again within seconds. Bounded (20 s).
    pub async fn remove_stage_messages(&self, run_ids: &std::collections::BTreeSet<String>) {
        use datashare_dr::store::{Queue as _, STAGE_QUEUE};
        let queue = self.queue_client(MessageEncoding::None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let got = match queue
                .receive(STAGE_QUEUE, 32, std::time::Duration::from_secs(2))
                .await
            {
                Ok(m) => m,
                Err(_) => return,
            };
            if got.is_empty() {
                return;
            }
            let mut mine = 0;
            for m in got {
                if run_ids.iter().any(|id| m.text.contains(id.as_str())) {
                    let _ = queue.delete(STAGE_QUEUE, &m.id, &m.pop_receipt).await;
                    mine += 1;
                }
            }
            if mine == 0 {
                return;
            }
        }
    }

    /// A queue client with the given encoding (no queue created).
    pub fn queue_client(&self, encoding: MessageEncoding) -> Arc<AzureQueue> {
        match AzureQueue::new(&self.settings, encoding) {
            Ok(q) => Arc::new(q),
            Err(e) => panic!("queue client: {e}"),
        }
    }
}
