//! Estate generator and DR-config writer for the simulator.
//!
//! `generate` builds a realistic provider estate through the same operation code the HTTP side
//! uses (so every generated body passed spec validation): a primary Data Share account in
//! westeurope with shares of mixed data set kinds, synchronization settings, consumers in their
//! own tenants with accepted share subscriptions, mappings, triggers and recent successful
//! snapshots; matching stores in both regions (`...weu` in `rg-...-weu`, `...neu` in
//! `rg-...-neu`, plus one store that needs an explicit override); an EMPTY secondary account in
//! northeurope whose identity already holds the data-reader roles on the secondary stores.
//! Deterministic for a given seed. `write_config` renders the docs/config.md TOML for it.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::SimError;
use super::spec::{Mode, Spec};
use super::state::{Ctx, Principal, State, det_uuid, roles, ts};

/// Size of a generated estate (`shares=S,datasets=D,consumers=C[,seed=N]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PopulateSpec {
    pub shares: usize,
    /// Data sets per share.
    pub datasets: usize,
    /// Consumers per share (the same consumer tenants subscribe to every share).
    pub consumers: usize,
    pub seed: u64,
}

impl Default for PopulateSpec {
    fn default() -> PopulateSpec {
        PopulateSpec {
            shares: 5,
            datasets: 3,
            consumers: 2,
            seed: 1,
        }
    }
}

impl PopulateSpec {
    /// Parse `shares=S,datasets=D,consumers=C[,seed=N]` (any order; missing keys keep defaults).
    pub fn parse(text: &str) -> Result<PopulateSpec, SimError> {
        let mut s = PopulateSpec::default();
        let err = |reason: String| SimError::ParsePopulateSpec {
            spec: text.to_string(),
            reason,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| err(format!("'{part}' is not key=value")))?;
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| err(format!("'{v}' is not a non-negative integer for '{k}'")))?;
            match k.trim() {
                "shares" => s.shares = n as usize,
                "datasets" => s.datasets = n as usize,
                "consumers" => s.consumers = n as usize,
                "seed" => s.seed = n,
                other => {
                    return Err(err(format!(
                        "unknown key '{other}' (expected shares, datasets, consumers, seed)"
                    )));
                }
            }
        }
        if s.shares > 10_000 || s.datasets > 1_000 || s.consumers > 1_000 {
            return Err(err(
                "too large (limits: shares 10000, datasets 1000, consumers 1000)".into(),
            ));
        }
        Ok(s)
    }
}

/// A Data Share account of the estate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    pub id: String,
    pub name: String,
    pub resource_group: String,
    pub location: String,
    /// Object id of the account's system-assigned identity.
    pub principal_id: String,
}

/// Store families, as in the `[pairs.stores.defaults.<kind>]` tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Storage,
    Sql,
    Synapse,
    Kusto,
}

/// A primary store and its secondary counterpart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorePair {
    pub kind: StoreKind,
    pub primary: String,
    pub secondary: String,
    /// False when the `replace` defaults do not map it (an explicit override is written).
    pub by_rule: bool,
}

/// A generated consumer (its own tenant and subscription).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerInfo {
    pub name: String,
    /// Bearer token for the simulator (`sim:<email>`).
    pub token: String,
    pub email: String,
    pub tenant_id: String,
    pub object_id: String,
    pub subscription_id: String,
    /// Consumer account in westeurope holding the share subscriptions.
    pub account_id: String,
    /// Empty consumer account in northeurope (consumer-role failover target).
    pub secondary_account_id: String,
    /// Share subscription ids on `account_id`, one per share.
    pub share_subscriptions: Vec<String>,
    /// Sink storage account (ADLS Gen2) in each region.
    pub sink_primary: String,
    pub sink_secondary: String,
}

/// What `generate` built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estate {
    pub seed: u64,
    pub pair_name: String,
    pub subscription_id: String,
    pub tenant_id: String,
    pub admin_token: String,
    pub primary_region: String,
    pub secondary_region: String,
    pub primary: AccountInfo,
    pub secondary: AccountInfo,
    pub shares: Vec<String>,
    /// Data set count per share, in `shares` order.
    pub datasets_per_share: Vec<usize>,
    pub stores: Vec<StorePair>,
    pub consumers: Vec<ConsumerInfo>,
    pub drill_recipients: Vec<String>,
}

const COPY_KINDS: [&str; 9] = [
    "Blob",
    "Container",
    "BlobFolder",
    "AdlsGen2FileSystem",
    "AdlsGen2Folder",
    "AdlsGen2File",
    "SqlDBTable",
    "SqlDWTable",
    "SynapseWorkspaceSqlPoolTable",
];
const INPLACE_KINDS: [&str; 3] = ["KustoDatabase", "KustoTable", "KustoCluster"];

struct Gen<'a> {
    st: &'a mut State,
    sp: &'a Spec,
    base: &'a str,
    now: OffsetDateTime,
}

impl Gen<'_> {
    fn call(
        &mut self,
        p: &Principal,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, SimError> {
        let fail = |status: u16, code: &str, message: String| SimError::Populate {
            id: format!("{method} {path}"),
            status,
            code: code.to_string(),
            message,
        };
        self.st
            .authorize(p, path, method)
            .map_err(|e| fail(e.status, &e.code, e.message))?;
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let ctx = Ctx {
            principal: p,
            base_url: self.base,
            api_version: "2021-08-01",
            now: self.now,
            instant: Instant::now(),
            page_size: 1000,
            lro_delay: Duration::ZERO,
            long_running_settings: false,
            checks: super::state::StoreChecks::default(),
            query: &[],
            path,
        };
        let r = match self.sp.find(method, &segs) {
            Some(m) => {
                let cleaned = match (&m.route.body, body) {
                    (Some((_, schema, _)), Some(b)) => {
                        let mut v = Vec::new();
                        let c = self.sp.validate(schema, &b, "", Mode::Request, &mut v);
                        if let Some(x) = v.first() {
                            return Err(fail(
                                400,
                                "InvalidRequestContent",
                                format!("'{}' {}", x.path, x.message),
                            ));
                        }
                        Some(c)
                    }
                    (_, b) => b,
                };
                self.st.datashare(&ctx, &m, cleaned)
            }
            None => match self.st.arm(&ctx, method, body.as_ref()) {
                Some((_, r)) => r,
                None => return Err(fail(404, "InvalidResourceType", "no such route".into())),
            },
        };
        r.map(|x| x.body.unwrap_or(Value::Null))
            .map_err(|e| fail(e.status, &e.code, e.message))
    }
}

struct Stores {
    blob: String,
    adls: String,
    archive: String,
    sql: String,
    synapse_pool: String,
    kusto: String,
    kusto_db: String,
}

fn rg(sub: &str, rg: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}")
}

/// Build the estate into `st` (see the module docs).
pub(crate) fn generate(
    st: &mut State,
    sp: &Spec,
    spec: &PopulateSpec,
    base: &str,
) -> Result<Estate, SimError> {
    let now = OffsetDateTime::now_utc();
    let mut g = Gen { st, sp, base, now };
    let admin =
        Principal::from_token("sim").unwrap_or_else(|| Principal::named(super::ADMIN_EMAIL));
    let seed = spec.seed;
    let sub = det_uuid(&format!("sim:provider-subscription:{seed}"));
    let regions = [("weu", "westeurope"), ("neu", "northeurope")];

    // Stores in both regions.
    let mut per_region: Vec<Stores> = Vec::new();
    for (short, region) in regions {
        let data_rg = rg(&sub, &format!("rg-data-{short}"));
        let blob = format!("{data_rg}/providers/Microsoft.Storage/storageAccounts/stdata{short}");
        let adls = format!("{data_rg}/providers/Microsoft.Storage/storageAccounts/adlsdata{short}");
        let sql = format!("{data_rg}/providers/Microsoft.Sql/servers/sql-data-{short}");
        let syn = format!("{data_rg}/providers/Microsoft.Synapse/workspaces/syn-data-{short}");
        let kusto = format!("{data_rg}/providers/Microsoft.Kusto/clusters/kustodata{short}");
        let archive = if short == "weu" {
            format!("{data_rg}/providers/Microsoft.Storage/storageAccounts/archiveweu")
        } else {
            format!(
                "{}/providers/Microsoft.Storage/storageAccounts/archivedr",
                rg(&sub, "rg-data-dr")
            )
        };
        g.call(&admin, "PUT", &blob, Some(json!({"location": region, "kind": "StorageV2", "properties": {"isHnsEnabled": false}})))?;
        g.call(&admin, "PUT", &adls, Some(json!({"location": region, "kind": "StorageV2", "properties": {"isHnsEnabled": true}})))?;
        g.call(&admin, "PUT", &archive, Some(json!({"location": region, "kind": "StorageV2", "properties": {"isHnsEnabled": false}})))?;
        g.call(&admin, "PUT", &sql, Some(json!({"location": region})))?;
        for db in ["salesdb", "salesdw"] {
            g.call(
                &admin,
                "PUT",
                &format!("{sql}/databases/{db}"),
                Some(json!({"location": region})),
            )?;
        }
        g.call(&admin, "PUT", &syn, Some(json!({"location": region})))?;
        g.call(
            &admin,
            "PUT",
            &format!("{syn}/sqlPools/pool1"),
            Some(json!({"location": region})),
        )?;
        g.call(&admin, "PUT", &kusto, Some(json!({"location": region})))?;
        g.call(
            &admin,
            "PUT",
            &format!("{kusto}/databases/telemetry"),
            Some(json!({"location": region})),
        )?;
        per_region.push(Stores {
            blob,
            adls,
            archive,
            sql,
            synapse_pool: format!("{syn}/sqlPools/pool1"),
            kusto_db: format!("{kusto}/databases/telemetry"),
            kusto,
        });
    }

    // Accounts.
    let mut accounts = Vec::new();
    for (short, region) in regions {
        let rgn = format!("rg-datashare-{short}");
        let name = format!("dsacct-{short}");
        let id = format!(
            "{}/providers/Microsoft.DataShare/accounts/{name}",
            rg(&sub, &rgn)
        );
        let v = g.call(
            &admin,
            "PUT",
            &id,
            Some(
                json!({"location": region, "identity": {"type": "SystemAssigned"},
            "tags": {"purpose": if short == "weu" { "primary" } else { "dr-secondary" }}}),
            ),
        )?;
        let pid = v["identity"]["principalId"]
            .as_str()
            .unwrap_or("")
            .to_string();
        accounts.push(AccountInfo {
            id,
            name,
            resource_group: rgn,
            location: region.to_string(),
            principal_id: pid,
        });
    }

    // Data-reader roles of each account's identity on its region's stores.
    for (acct, s) in accounts.iter().zip(&per_region) {
        let grants = [
            (&s.blob, roles::STORAGE_BLOB_DATA_READER),
            (&s.adls, roles::STORAGE_BLOB_DATA_READER),
            (&s.archive, roles::STORAGE_BLOB_DATA_READER),
            (&s.sql, roles::READER),
            (
                &s.synapse_pool
                    .rsplit_once("/sqlPools/")
                    .map(|x| x.0.to_string())
                    .unwrap_or_default(),
                roles::READER,
            ),
            (&s.kusto, roles::CONTRIBUTOR),
        ];
        for (scope, role) in grants {
            let name = det_uuid(
                &format!("role:{scope}:{}:{role}", acct.principal_id).to_ascii_lowercase(),
            );
            let path = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
            g.call(&admin, "PUT", &path, Some(json!({"properties": {
                "roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                "principalId": acct.principal_id, "principalType": "ServicePrincipal"}})))?;
        }
    }

    // Shares, data sets, schedules on the primary.
    let primary = accounts[0].clone();
    let p = &per_region[0];
    let mut shares = Vec::new();
    let mut ds_counts = Vec::new();
    let mut share_kinds = Vec::new();
    for i in 0..spec.shares {
        let name = format!("share-{i:03}");
        let in_place = spec.shares > 1 && i % 5 == 4;
        let share_id = format!("{}/shares/{name}", primary.id);
        g.call(
            &admin,
            "PUT",
            &share_id,
            Some(json!({"properties": {
            "description": format!("Generated share {i}"), "terms": "Internal use only",
            "shareKind": if in_place { "InPlace" } else { "CopyBased" }}})),
        )?;
        for j in 0..spec.datasets {
            let kind = if in_place {
                INPLACE_KINDS[j % INPLACE_KINDS.len()]
            } else {
                COPY_KINDS[(i + j) % COPY_KINDS.len()]
            };
            let body = dataset_body(kind, p, &sub, i, j);
            g.call(
                &admin,
                "PUT",
                &format!(
                    "{share_id}/dataSets/ds-{j:02}-{}",
                    kind.to_ascii_lowercase()
                ),
                Some(body),
            )?;
        }
        if !in_place {
            let interval = if i % 2 == 0 { "Day" } else { "Hour" };
            let anchor = ts(OffsetDateTime::UNIX_EPOCH
                + time::Duration::days(19_723)
                + time::Duration::minutes(120 + i as i64));
            g.call(&admin, "PUT", &format!("{share_id}/synchronizationSettings/schedule"), Some(json!({
                "kind": "ScheduleBased", "properties": {"recurrenceInterval": interval, "synchronizationTime": anchor}})))?;
        }
        shares.push(name);
        ds_counts.push(spec.datasets);
        share_kinds.push(in_place);
    }

    // Consumers: own tenant, subscription, accounts and sinks; accept every share.
    let mut consumers = Vec::new();
    for c in 0..spec.consumers {
        let email = format!("consumer{c:02}@fabrikam{c:02}.example");
        let cp = Principal::named(&email);
        let csub = det_uuid(&format!("sim:consumer-subscription:{seed}:{c}"));
        let mut acct_ids = Vec::new();
        let mut sinks = Vec::new();
        let mut kusto_sinks = Vec::new();
        for (short, region) in regions {
            let crg = rg(&csub, &format!("rg-consumer{c:02}-{short}"));
            let sink =
                format!("{crg}/providers/Microsoft.Storage/storageAccounts/c{c:02}sink{short}");
            g.call(&cp, "PUT", &sink, Some(json!({"location": region, "kind": "StorageV2", "properties": {"isHnsEnabled": true}})))?;
            let kc = format!("{crg}/providers/Microsoft.Kusto/clusters/c{c:02}kusto{short}");
            g.call(&cp, "PUT", &kc, Some(json!({"location": region})))?;
            let aid =
                format!("{crg}/providers/Microsoft.DataShare/accounts/consumer{c:02}-{short}");
            g.call(
                &cp,
                "PUT",
                &aid,
                Some(json!({"location": region, "identity": {"type": "SystemAssigned"}})),
            )?;
            acct_ids.push(aid);
            sinks.push(sink);
            kusto_sinks.push(kc);
        }
        let mut subs = Vec::new();
        for (i, share) in shares.iter().enumerate() {
            let inv_path = format!(
                "{}/shares/{share}/invitations/inv-consumer{c:02}",
                primary.id
            );
            let exp = ts(now + time::Duration::days(365));
            let inv = g.call(
                &admin,
                "PUT",
                &inv_path,
                Some(json!({"properties": {"targetEmail": email, "expirationDate": exp}})),
            )?;
            let inv_id = inv["properties"]["invitationId"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let sub_path = format!("{}/shareSubscriptions/{share}", acct_ids[0]);
            g.call(&cp, "PUT", &sub_path, Some(json!({"properties": {"invitationId": inv_id, "sourceShareLocation": "westeurope"}})))?;
            // Map every source data set into the consumer's sinks.
            let sources = g.call(
                &cp,
                "GET",
                &format!("{sub_path}/consumerSourceDataSets"),
                None,
            )?;
            let items = sources["value"].as_array().cloned().unwrap_or_default();
            for (j, ds) in items.iter().enumerate() {
                let kind = ds["properties"]["dataSetType"].as_str().unwrap_or("");
                let ds_id = ds["properties"]["dataSetId"].as_str().unwrap_or("");
                let body = mapping_body(kind, ds_id, &sinks[0], &kusto_sinks[0], share, j);
                g.call(
                    &cp,
                    "PUT",
                    &format!("{sub_path}/dataSetMappings/map-{j:02}"),
                    Some(body),
                )?;
            }
            if !share_kinds[i] {
                let interval = if i % 2 == 0 { "Day" } else { "Hour" };
                let anchor = ts(OffsetDateTime::UNIX_EPOCH
                    + time::Duration::days(19_723)
                    + time::Duration::minutes(120 + i as i64));
                g.call(&cp, "PUT", &format!("{sub_path}/triggers/schedule"), Some(json!({"kind": "ScheduleBased",
                    "properties": {"recurrenceInterval": interval, "synchronizationTime": anchor, "synchronizationMode": "Incremental"}})))?;
                let step = if interval == "Day" {
                    time::Duration::hours(24)
                } else {
                    time::Duration::hours(1)
                };
                for k in 1..=3i32 {
                    let start = now - step * k - time::Duration::minutes(5 + c as i64);
                    g.st.add_sync(
                        &sub_path,
                        "Incremental",
                        start,
                        Duration::from_secs(40 + (c as u64 * 7 + i as u64) % 50),
                        "Succeeded",
                    );
                }
            }
            subs.push(sub_path);
        }
        consumers.push(ConsumerInfo {
            name: format!("consumer{c:02}"),
            token: format!("sim:{email}"),
            email: email.clone(),
            tenant_id: cp.tenant_id.clone(),
            object_id: cp.object_id.clone(),
            subscription_id: csub,
            account_id: acct_ids[0].clone(),
            secondary_account_id: acct_ids[1].clone(),
            share_subscriptions: subs,
            sink_primary: sinks[0].clone(),
            sink_secondary: sinks[1].clone(),
        });
    }
    g.st.finish_all(now);

    let s = &per_region[1];
    let stores = vec![
        StorePair {
            kind: StoreKind::Storage,
            primary: p.blob.clone(),
            secondary: s.blob.clone(),
            by_rule: true,
        },
        StorePair {
            kind: StoreKind::Storage,
            primary: p.adls.clone(),
            secondary: s.adls.clone(),
            by_rule: true,
        },
        StorePair {
            kind: StoreKind::Storage,
            primary: p.archive.clone(),
            secondary: s.archive.clone(),
            by_rule: false,
        },
        StorePair {
            kind: StoreKind::Sql,
            primary: p.sql.clone(),
            secondary: s.sql.clone(),
            by_rule: true,
        },
        StorePair {
            kind: StoreKind::Synapse,
            primary: strip_pool(&p.synapse_pool),
            secondary: strip_pool(&s.synapse_pool),
            by_rule: true,
        },
        StorePair {
            kind: StoreKind::Kusto,
            primary: p.kusto.clone(),
            secondary: s.kusto.clone(),
            by_rule: true,
        },
    ];
    Ok(Estate {
        seed,
        pair_name: "sim".into(),
        subscription_id: sub,
        tenant_id: admin.tenant_id.clone(),
        admin_token: "sim".into(),
        primary_region: "westeurope".into(),
        secondary_region: "northeurope".into(),
        primary,
        secondary: accounts[1].clone(),
        shares,
        datasets_per_share: ds_counts,
        stores,
        consumers,
        drill_recipients: vec!["drill@contoso.example".into()],
    })
}

fn strip_pool(id: &str) -> String {
    id.rsplit_once("/sqlPools/")
        .map(|x| x.0.to_string())
        .unwrap_or_else(|| id.to_string())
}

fn storage_parts(id: &str) -> (String, String, String) {
    let s: Vec<&str> = id.split('/').filter(|x| !x.is_empty()).collect();
    (
        s.get(1).copied().unwrap_or("").to_string(),
        s.get(3).copied().unwrap_or("").to_string(),
        s.last().copied().unwrap_or("").to_string(),
    )
}

fn dataset_body(kind: &str, p: &Stores, _sub: &str, i: usize, j: usize) -> Value {
    // Containers and folders of every third share live on the archive account (override-mapped).
    let acct = match kind {
        "Container" | "BlobFolder" if i.is_multiple_of(3) => &p.archive,
        k if k.starts_with("AdlsGen2") => &p.adls,
        _ => &p.blob,
    };
    let (s, r, a) = storage_parts(acct);
    let store = json!({"subscriptionId": s, "resourceGroup": r, "storageAccountName": a});
    let mut props = match kind {
        "Blob" => {
            json!({"containerName": format!("share{i:03}"), "filePath": format!("exports/file{j:02}.csv")})
        }
        "Container" => json!({"containerName": format!("share{i:03}-c{j:02}")}),
        "BlobFolder" => {
            json!({"containerName": format!("share{i:03}"), "prefix": format!("folder{j:02}/")})
        }
        "AdlsGen2FileSystem" => json!({"fileSystem": format!("fs{i:03}-{j:02}")}),
        "AdlsGen2Folder" => {
            json!({"fileSystem": format!("fs{i:03}"), "folderPath": format!("curated/f{j:02}")})
        }
        "AdlsGen2File" => {
            json!({"fileSystem": format!("fs{i:03}"), "filePath": format!("curated/f{j:02}.parquet")})
        }
        "SqlDBTable" => {
            json!({"sqlServerResourceId": p.sql, "databaseName": "salesdb", "schemaName": "dbo", "tableName": format!("orders_{i:03}_{j:02}")})
        }
        "SqlDWTable" => {
            json!({"sqlServerResourceId": p.sql, "dataWarehouseName": "salesdw", "schemaName": "dbo", "tableName": format!("facts_{i:03}_{j:02}")})
        }
        "SynapseWorkspaceSqlPoolTable" => json!({"synapseWorkspaceSqlPoolTableResourceId":
            format!("{}/schemas/dbo/tables/t_{i:03}_{j:02}", p.synapse_pool)}),
        "KustoCluster" => json!({"kustoClusterResourceId": p.kusto}),
        "KustoDatabase" => json!({"kustoDatabaseResourceId": p.kusto_db}),
        _ => json!({"kustoDatabaseResourceId": p.kusto_db, "tableLevelSharingProperties": {
            "tablesToInclude": [format!("Events{j:02}")], "tablesToExclude": [],
            "externalTablesToInclude": [], "externalTablesToExclude": [],
            "materializedViewsToInclude": [], "materializedViewsToExclude": []}}),
    };
    if !kind.starts_with("Kusto")
        && !kind.starts_with("Sql")
        && !kind.starts_with("Synapse")
        && let (Some(o), Some(st)) = (props.as_object_mut(), store.as_object())
    {
        for (k, v) in st {
            o.insert(k.clone(), v.clone());
        }
    }
    json!({"kind": kind, "properties": props})
}

fn mapping_body(kind: &str, ds_id: &str, sink: &str, kusto: &str, share: &str, j: usize) -> Value {
    let (s, r, a) = storage_parts(sink);
    let mut props = match kind {
        "Blob" => json!({"containerName": share, "filePath": format!("in/{j:02}.csv")}),
        "Container" => json!({"containerName": format!("{share}-c{j:02}")}),
        "BlobFolder" => json!({"containerName": share, "prefix": format!("in{j:02}/")}),
        "AdlsGen2FileSystem" => json!({"fileSystem": format!("{share}-{j:02}")}),
        "AdlsGen2Folder" => json!({"fileSystem": share, "folderPath": format!("in{j:02}")}),
        k if k.starts_with("Kusto") => json!({"kustoClusterResourceId": kusto}),
        // File targets and SQL sources land as Parquet files.
        _ => {
            json!({"fileSystem": share, "filePath": format!("in/{j:02}.parquet"), "outputType": "Parquet"})
        }
    };
    let out_kind = match kind {
        "Blob" | "Container" | "BlobFolder" | "AdlsGen2FileSystem" | "AdlsGen2Folder" => kind,
        k if k.starts_with("Kusto") => kind,
        _ => "AdlsGen2File",
    };
    if !out_kind.starts_with("Kusto")
        && let Some(o) = props.as_object_mut()
    {
        o.insert("subscriptionId".into(), json!(s));
        o.insert("resourceGroup".into(), json!(r));
        o.insert("storageAccountName".into(), json!(a));
    }
    props["dataSetId"] = json!(ds_id);
    json!({"kind": out_kind, "properties": props})
}

fn q(s: &str) -> String {
    // TOML basic string.
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// DR config TOML (docs/config.md schema, provider role) for a generated estate served at
/// `base_url`: the pair, its store mapping (per-kind `replace` defaults + explicit overrides where
/// the defaults do not fit), `[arm]` pointing at the simulator with the static `sim` token
/// (loopback only), the simulated subscription in `[alerts] allowed_sources`, drill recipients
/// and per-consumer invitation policies.
pub fn write_config(estate: &Estate, base_url: &str) -> String {
    let mut t = String::new();
    let push = |t: &mut String, s: &str| {
        t.push_str(s);
        t.push('\n');
    };
    push(
        &mut t,
        &format!(
            "# Generated by the datashare-dr simulator for its estate (seed {}).",
            estate.seed
        ),
    );
    push(
        &mut t,
        "# Loopback only: static-token auth is refused for any other endpoint.",
    );
    push(&mut t, "role = \"provider\"");
    push(&mut t, "");
    push(&mut t, "[arm]");
    push(&mut t, &format!("endpoint = {}", q(base_url)));
    push(&mut t, "auth = \"static-token\"");
    push(&mut t, &format!("token = {}", q(&estate.admin_token)));
    push(&mut t, "max_concurrency = 16");
    push(&mut t, "deadline_secs = 60");
    push(&mut t, "");
    push(&mut t, "[defaults]");
    push(&mut t, "invitations = \"now\"");
    push(&mut t, "failover = \"approve\"");
    push(&mut t, "prune = \"report\"");
    push(&mut t, "expiry_horizon_days = 14");
    push(&mut t, "drill_max_age_days = 90");
    push(&mut t, "rpo_factor = 2.0");
    push(&mut t, "");
    push(&mut t, "[alerts]");
    push(
        &mut t,
        &format!(
            "allowed_sources = [{}]",
            q(&format!("/subscriptions/{}", estate.subscription_id))
        ),
    );
    push(&mut t, "");
    push(&mut t, "[[pairs]]");
    push(&mut t, &format!("name = {}", q(&estate.pair_name)));
    push(&mut t, &format!("primary = {}", q(&estate.primary.id)));
    push(&mut t, &format!("secondary = {}", q(&estate.secondary.id)));
    push(
        &mut t,
        &format!("primary_region = {}", q(&estate.primary_region)),
    );
    push(
        &mut t,
        &format!("secondary_region = {}", q(&estate.secondary_region)),
    );
    push(&mut t, "shares = [\"*\"]");
    push(&mut t, "invitations = \"now\"");
    push(&mut t, "failover = \"auto\"");
    let rec: Vec<String> = estate.drill_recipients.iter().map(|r| q(r)).collect();
    push(&mut t, &format!("drill_recipients = [{}]", rec.join(", ")));
    for (i, c) in estate.consumers.iter().enumerate() {
        push(&mut t, "");
        push(&mut t, "[[pairs.consumers]]");
        push(&mut t, &format!("target = {}", q(&c.email)));
        // Every second consumer is only invited at failover (a policy example).
        push(
            &mut t,
            &format!(
                "invitations = {}",
                if i % 2 == 1 {
                    "\"at-failover\""
                } else {
                    "\"now\""
                }
            ),
        );
    }
    push(&mut t, "");
    for kind in ["storage", "sql", "synapse", "kusto"] {
        push(&mut t, &format!("[pairs.stores.defaults.{kind}]"));
        push(
            &mut t,
            "replace = [[\"rg-data-weu\", \"rg-data-neu\"], [\"weu\", \"neu\"]]",
        );
    }
    for s in estate.stores.iter().filter(|s| !s.by_rule) {
        push(&mut t, "");
        push(&mut t, "[[pairs.stores.overrides]]");
        push(&mut t, &format!("primary = {}", q(&s.primary)));
        push(&mut t, &format!("secondary = {}", q(&s.secondary)));
    }
    t
}

/// DR config TOML for the consumer role (docs/consumer.md): consumer `index` of the estate
/// re-creates each of its share subscriptions on its northeurope account at failover.
/// `None` when the estate has no such consumer.
pub fn write_consumer_config(estate: &Estate, base_url: &str, index: usize) -> Option<String> {
    let c = estate.consumers.get(index)?;
    let mut t = String::new();
    t.push_str(&format!(
        "# Consumer-role DR config for {} (generated by the simulator).\n",
        c.email
    ));
    t.push_str("role = \"consumer\"\n\n[arm]\n");
    t.push_str(&format!(
        "endpoint = {}\nauth = \"static-token\"\ntoken = {}\n\n",
        q(base_url),
        q(&c.token)
    ));
    t.push_str(&format!(
        "[alerts]\nallowed_sources = [{}]\n",
        q(&format!("/subscriptions/{}", c.subscription_id))
    ));
    for sub in &c.share_subscriptions {
        let name = sub.rsplit('/').next().unwrap_or("sub");
        t.push_str("\n[[subscriptions]]\n");
        t.push_str(&format!("name = {}\n", q(name)));
        t.push_str(&format!("primary_share_subscription = {}\n", q(sub)));
        t.push_str(&format!(
            "secondary_account = {}\n",
            q(&c.secondary_account_id)
        ));
        t.push_str(&format!(
            "primary_region = {}\nsecondary_region = {}\n",
            q(&estate.primary_region),
            q(&estate.secondary_region)
        ));
        t.push_str("start_first_sync = true\n");
        // The provider config above invites every second consumer only at failover.
        t.push_str(&format!(
            "invitations = {}\n",
            if index % 2 == 1 {
                "\"at-failover\""
            } else {
                "\"now\""
            }
        ));
        t.push_str("[subscriptions.stores.defaults.storage]\nreplace = [[\"weu\", \"neu\"]]\n");
        t.push_str("[subscriptions.stores.defaults.kusto]\nreplace = [[\"weu\", \"neu\"]]\n");
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_populate_specs_and_names_bad_parts() {
        let s = PopulateSpec::parse("shares=200,datasets=10,consumers=5");
        assert_eq!(
            s.ok(),
            Some(PopulateSpec {
                shares: 200,
                datasets: 10,
                consumers: 5,
                seed: 1
            })
        );
        let e = PopulateSpec::parse("shares=2,tables=3")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("unknown key 'tables'"), "{e}");
        assert!(PopulateSpec::parse("shares=x").is_err());
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(q("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
