//! Every upstream example request body (tests/fixtures/datashare/examples/*.json with a body
//! parameter) is accepted by the simulator and answered with a spec-shaped body.
//!
//! The example's path is replayed against the simulator with our own subscription id; its
//! prerequisites (parent account/share, a provider share + invitation behind a share
//! subscription, the stores a data set or mapping names) are created first. Server-assigned ids
//! that an example hard-codes (`dataSetId` of a mapping, `invitationId` of a rejection, the
//! provider share subscription id of a reinstate) are replaced with real ones — the only rewrites.
//! A file dropped into the folder is picked up.

use std::time::{Duration, Instant};

use datashare_dr::sim::spec::{Mode, spec};
use datashare_dr::sim::{self, SimHandle, SimOptions};
use serde_json::{Value, json};

const SUB: &str = "5f1c1d9e-0000-4000-8000-00000000e001";

struct Ctx {
    h: SimHandle,
    c: reqwest::Client,
}

impl Ctx {
    async fn call(
        &self,
        method: &str,
        path: &str,
        api: &str,
        body: Option<&Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let u = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}?api-version={api}", self.h.base_url)
        };
        let mut rb = self.c.request(m, u).bearer_auth("sim");
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = match rb.send().await {
            Ok(r) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let st = r.status().as_u16();
        let hd = r.headers().clone();
        let t = r.text().await.unwrap_or_default();
        (st, serde_json::from_str(&t).unwrap_or(Value::Null), hd)
    }

    async fn put(&self, path: &str, body: Value) -> Value {
        let (st, b, _) = self.call("PUT", path, "2021-08-01", Some(&body)).await;
        assert!(st == 200 || st == 201, "setup PUT {path}: {st} {b}");
        b
    }

    async fn wait(&self, hd: &reqwest::header::HeaderMap) {
        let Some(op) = hd
            .get("azure-asyncoperation")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
        else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (_, b, _) = self.call("GET", &op, "", None).await;
            if b["status"] != "InProgress" {
                return;
            }
            assert!(Instant::now() < deadline, "operation did not finish");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn p<'a>(params: &'a Value, k: &str) -> &'a str {
    params.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Create the stores a data set / mapping body refers to.
async fn create_stores(cx: &Ctx, body: &Value, location: &str) {
    let kind = body["kind"].as_str().unwrap_or("");
    let pr = &body["properties"];
    let s = |k: &str| pr.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let loc = json!({"location": location});
    if !s("storageAccountName").is_empty() {
        let id = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/{}",
            s("subscriptionId"),
            s("resourceGroup"),
            s("storageAccountName")
        );
        cx.put(&id, json!({"location": location, "properties": {"isHnsEnabled": kind.starts_with("AdlsGen2")}})).await;
    }
    if !s("sqlServerResourceId").is_empty() {
        let server = s("sqlServerResourceId");
        cx.put(&server, loc.clone()).await;
        for db in [s("databaseName"), s("dataWarehouseName")] {
            if !db.is_empty() {
                cx.put(&format!("{server}/databases/{db}"), loc.clone())
                    .await;
            }
        }
    }
    let syn = s("synapseWorkspaceSqlPoolTableResourceId");
    if !syn.is_empty() {
        let segs: Vec<&str> = syn.split('/').filter(|x| !x.is_empty()).collect();
        if let Some(i) = segs.iter().position(|x| x.eq_ignore_ascii_case("sqlPools")) {
            cx.put(&format!("/{}", segs[..i].join("/")), loc.clone())
                .await;
            cx.put(&format!("/{}", segs[..i + 2].join("/")), loc.clone())
                .await;
        }
    }
    for k in ["kustoClusterResourceId", "kustoDatabaseResourceId"] {
        let id = s(k);
        if id.is_empty() {
            continue;
        }
        let segs: Vec<&str> = id.split('/').filter(|x| !x.is_empty()).collect();
        cx.put(
            &format!("/{}", segs[..8.min(segs.len())].join("/")),
            loc.clone(),
        )
        .await;
        if segs.len() >= 10 {
            cx.put(&format!("/{}", segs[..10].join("/")), loc.clone())
                .await;
        }
    }
}

/// A provider share with one Blob data set and a schedule, and an invitation to the admin.
/// Returns (share path, invitation id).
async fn provider_share(cx: &Ctx, tag: &str, location: &str) -> (String, String, String) {
    let acct = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-prov/providers/Microsoft.DataShare/accounts/prov-{tag}"
    );
    cx.put(
        &acct,
        json!({"location": location, "identity": {"type": "SystemAssigned"}}),
    )
    .await;
    let share = format!("{acct}/shares/src");
    cx.put(&share, json!({"properties": {"description": "source"}}))
        .await;
    let blob = json!({"kind": "Blob", "properties": {"containerName": "c", "filePath": "f.csv", "subscriptionId": SUB,
        "resourceGroup": "rg-prov", "storageAccountName": format!("provstore{tag}")}});
    create_stores(cx, &blob, location).await;
    let ds = cx.put(&format!("{share}/dataSets/d1"), blob).await;
    cx.put(&format!("{share}/synchronizationSettings/daily"), json!({"kind": "ScheduleBased",
        "properties": {"recurrenceInterval": "Day", "synchronizationTime": "2024-01-01T02:00:00Z"}})).await;
    let inv = cx
        .put(
            &format!("{share}/invitations/i-{tag}"),
            json!({"properties": {"targetEmail": sim::ADMIN_EMAIL}}),
        )
        .await;
    (
        share,
        inv["properties"]["invitationId"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        ds["properties"]["dataSetId"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

#[tokio::test]
async fn every_example_request_body_is_accepted_and_answered_spec_shaped() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let h = match sim::spawn(SimOptions {
        lro_delay_ms: 5,
        throttle: false,
        ..SimOptions::default()
    })
    .await
    {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    };
    let c = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let cx = Ctx { h, c };
    let Ok(sp) = spec() else { panic!("spec") };
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/datashare/examples"
    );
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut replayed = Vec::new();
    for (n, f) in files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.extension().is_some_and(|e| e == "json"))
    {
        let stem = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let ex: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => panic!("{stem}: {e}"),
        };
        let params = ex["parameters"].clone();
        // The operation: same group prefix and verb suffix as the file name, every path
        // parameter present in the example, and a body parameter the example provides.
        let route = sp.routes().iter().find(|r| {
            let (group, verb) = r.operation_id.split_once('_').unwrap_or(("", ""));
            stem.starts_with(&format!("{group}_"))
                && stem.ends_with(verb)
                && r.body
                    .as_ref()
                    .is_some_and(|(name, _, _)| params.get(name).is_some())
                && r.segs.iter().all(|s| match s {
                    datashare_dr::sim::spec::Seg::Param(p) => params.get(p).is_some(),
                    _ => true,
                })
        });
        let Some(route) = route else { continue };
        let Some((body_name, _, _)) = &route.body else {
            continue;
        };
        let mut body = params[body_name].clone();
        let api = p(&params, "api-version");
        // Each example runs in a fresh, empty world.
        cx.h.reset_state();
        let tag = format!("e{n}");
        let loc = "westeurope";
        // Path from the template with our subscription.
        let mut values: Vec<(String, String)> = Vec::new();
        for s in &route.segs {
            if let datashare_dr::sim::spec::Seg::Param(name) = s {
                let v = if name == "subscriptionId" {
                    SUB.to_string()
                } else {
                    p(&params, name).to_string()
                };
                values.push((name.clone(), v));
            }
        }
        let val = |name: &str, values: &[(String, String)]| {
            values
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let acct = format!(
            "/subscriptions/{SUB}/resourceGroups/{}/providers/Microsoft.DataShare/accounts/{}",
            val("resourceGroupName", &values),
            val("accountName", &values)
        );
        let op = route.operation_id.as_str();
        if values.iter().any(|(k, _)| k == "accountName") && op != "Accounts_Create" {
            cx.put(
                &acct,
                json!({"location": loc, "identity": {"type": "SystemAssigned"}}),
            )
            .await;
        }
        if values.iter().any(|(k, _)| k == "shareName") {
            cx.put(
                &format!("{acct}/shares/{}", val("shareName", &values)),
                json!({"properties": {}}),
            )
            .await;
        }
        if values.iter().any(|(k, _)| k == "shareSubscriptionName") {
            let (_, inv_id, ds_id) = provider_share(&cx, &tag, loc).await;
            cx.put(
                &format!(
                    "{acct}/shareSubscriptions/{}",
                    val("shareSubscriptionName", &values)
                ),
                json!({"properties": {"invitationId": inv_id, "sourceShareLocation": loc}}),
            )
            .await;
            if body["properties"].get("dataSetId").is_some() {
                body["properties"]["dataSetId"] = json!(ds_id);
            }
        }
        if op == "DataSets_Create" || op == "DataSetMappings_Create" {
            create_stores(&cx, &body, loc).await;
        }
        if op == "ProviderShareSubscriptions_Reinstate" {
            // A consumer subscribed to the example's share, then revoked.
            let share = format!("{acct}/shares/{}", val("shareName", &values));
            let inv = cx
                .put(
                    &format!("{share}/invitations/c-{tag}"),
                    json!({"properties": {"targetEmail": sim::ADMIN_EMAIL}}),
                )
                .await;
            let inv_id = inv["properties"]["invitationId"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let cacct = format!(
                "/subscriptions/{SUB}/resourceGroups/rg-cons/providers/Microsoft.DataShare/accounts/cons-{tag}"
            );
            cx.put(
                &cacct,
                json!({"location": loc, "identity": {"type": "SystemAssigned"}}),
            )
            .await;
            cx.put(
                &format!("{cacct}/shareSubscriptions/s"),
                json!({"properties": {"invitationId": inv_id, "sourceShareLocation": loc}}),
            )
            .await;
            let (st, _, hd) = cx
                .call(
                    "POST",
                    &format!("{share}/providerShareSubscriptions/{inv_id}/revoke"),
                    "2021-08-01",
                    None,
                )
                .await;
            assert_eq!(st, 202);
            cx.wait(&hd).await;
            if let Some(slot) = values
                .iter_mut()
                .find(|(k, _)| k == "providerShareSubscriptionId")
            {
                slot.1 = inv_id;
            }
        }
        if op == "ConsumerInvitations_RejectInvitation" {
            let region = p(&params, "location");
            let (_, inv_id, _) = provider_share(&cx, &tag, region).await;
            body["properties"]["invitationId"] = json!(inv_id);
        }
        let mut path = String::new();
        let mut vi = values.iter();
        for s in &route.segs {
            path.push('/');
            match s {
                datashare_dr::sim::spec::Seg::Lit(l) => path.push_str(l),
                datashare_dr::sim::spec::Seg::Param(_) => {
                    path.push_str(&vi.next().map(|x| x.1.clone()).unwrap_or_default())
                }
            }
        }
        let (st, resp, _) = cx.call(&route.method, &path, api, Some(&body)).await;
        let codes: Vec<&str> = route
            .responses
            .iter()
            .map(|(c, _)| c.as_str())
            .filter(|c| *c != "default")
            .collect();
        assert!(
            codes.contains(&st.to_string().as_str()),
            "{stem}: {} {path} → {st} {resp}",
            route.method
        );
        let schema = route
            .responses
            .iter()
            .find(|(c, _)| *c == st.to_string())
            .map(|(_, s)| s.clone());
        if let Some(schema) = schema {
            let mut v = Vec::new();
            sp.validate(&schema, &resp, "", Mode::Response, &mut v);
            assert!(
                v.is_empty(),
                "{stem}: response not spec-shaped: {v:?}\n{resp}"
            );
        }
        if route.method == "PUT" {
            assert!(
                resp["id"]
                    .as_str()
                    .is_some_and(|id| id.eq_ignore_ascii_case(&path)),
                "{stem}: id {} vs {path}",
                resp["id"]
            );
            assert!(resp["systemData"].is_object(), "{stem}: systemData");
        }
        replayed.push(stem);
    }
    // Every example with a request body in the visible set (at least these) was replayed.
    for must in [
        "Accounts_Create",
        "DataSets_Create",
        "DataSets_KustoTable_Create",
        "DataSets_SynapseWorkspaceSqlPoolTable_Create",
        "DataSetMappings_SqlDWDataSetToAdlsGen2File_Create",
        "Invitations_Create",
        "SynchronizationSettings_Create",
        "Triggers_Create",
        "ProviderShareSubscriptions_Reinstate",
        "ConsumerInvitations_RejectInvitation",
    ] {
        assert!(
            replayed.iter().any(|s| s == must),
            "{must} not replayed; replayed: {replayed:?}"
        );
    }
    cx.h.shutdown().await;
}
