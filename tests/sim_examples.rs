//! Every upstream example (tests/fixtures/datashare/examples/*.json, the 2021-08-01 spec's
//! `x-ms-examples`) is replayed against the simulator — PUT/PATCH/POST with their bodies, GET,
//! list and DELETE alike — and the simulator's answer is compared with the example's response.
//!
//! Which operation a file shows comes from the spec itself: the operation whose `x-ms-examples`
//! names the file. A `.json` file the spec does not name, that is not an example, or that lacks a
//! path parameter of its operation cannot be judged and fails the test, saying what to add.
//!
//! Before replaying, every resource the example's path names is created through the simulator's
//! own API, parents first, generically from the ARM path segments (`accounts/{a}` → PUT account,
//! `shares/{s}` → PUT share, …; a list also gets one item of the listed kind, an action on a
//! share gets what it acts on). The resource the example reads (GET, DELETE, an action, a list's
//! item) is created from the example's own response body, so the writeable properties the
//! example shows are set; a PUT/PATCH creates only the parents and sends the example's body.
//! Invitations the prerequisites send carry an expiration date (the examples show one); a
//! consumer invitation the example reads by id as Accepted is accepted first; the region is the
//! example's `location` parameter where it has one.
//!
//! What is compared:
//! - the status: one of the example's `responses` keys;
//! - the property keys: every key of the example's response body, at any depth (array items as
//!   the union of their keys), must be in the simulator's body. General rule for what cannot be
//!   reproduced: a key whose example value is `null` (it carries nothing), `nextLink` (paging
//!   depends on how many items exist and the page size), and — only when the example shows its
//!   resource or items in a state (a `*Status` value) the simulator's answer does not have —
//!   the event timestamps (`…At`) that state brings (an Accepted invitation's `respondedAt` in
//!   a list where the simulator's items are still Pending). No per-file exception.
//! - the body is spec-shaped (response schema of the status), and a PUT answers with the id of
//!   the path and `systemData`.
//!
//! Values the service mints (an invitation's `invitationId`, a data set's `dataSetId`, a provider
//! share subscription's `shareSubscriptionObjectId`) cannot be chosen by a client: where an
//! example's path or request body names one, the value the simulator minted for the created
//! prerequisite is used — the only rewrites.
//!
//! Counts (total, replayed, status matched, keys matched) are printed; the test fails, listing
//! them, when any example was not replayed or did not match.

use std::collections::BTreeSet;
use std::time::Duration;

use datashare_dr::sim::spec::{Mode, Route, Seg, spec};
use datashare_dr::sim::{self, SimHandle, SimOptions};
use serde_json::{Value, json};

const LOC: &str = "westeurope";
const API: &str = "2021-08-01";
/// Invitations the prerequisites send expire (examples show `expirationDate`); far ahead.
const EXPIRES: &str = "2099-12-31T00:00:00Z";

struct Ctx {
    h: SimHandle,
    c: reqwest::Client,
}

/// A failure to set up or replay one example (collected; the test fails at the end).
type Fail = String;

impl Ctx {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Fail> {
        let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let u = format!("{}{path}?api-version={API}", self.h.base_url);
        let mut rb = self.c.request(m, u).bearer_auth("sim");
        if let Some(b) = body {
            rb = rb.json(b);
        } else if method != "GET" && method != "DELETE" {
            rb = rb.header("content-length", "0");
        }
        let r = rb
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let st = r.status().as_u16();
        let t = r.text().await.unwrap_or_default();
        Ok((st, serde_json::from_str(&t).unwrap_or(Value::Null)))
    }

    /// A set-up PUT that must succeed.
    async fn put(&self, path: &str, body: Value) -> Result<Value, Fail> {
        let (st, b) = self.call("PUT", path, Some(&body)).await?;
        if st == 200 || st == 201 {
            Ok(b)
        } else {
            Err(format!("set-up PUT {path} → {st} {b}"))
        }
    }
}

/// A string property of `v.properties`.
fn prop(v: &Value, k: &str) -> String {
    v["properties"][k].as_str().unwrap_or("").to_string()
}

/// Create the stores (storage account, SQL server/database, Synapse pool, Kusto) a data set or
/// mapping body refers to, so the simulator accepts it.
async fn create_stores(cx: &Ctx, body: &Value) -> Result<(), Fail> {
    let kind = body["kind"].as_str().unwrap_or("");
    let s = |k: &str| prop(body, k);
    let loc = json!({"location": LOC});
    if !s("storageAccountName").is_empty() {
        let id = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/{}",
            s("subscriptionId"),
            s("resourceGroup"),
            s("storageAccountName")
        );
        cx.put(
            &id,
            json!({"location": LOC, "properties": {"isHnsEnabled": kind.starts_with("AdlsGen2")}}),
        )
        .await?;
    }
    if !s("sqlServerResourceId").is_empty() {
        let server = s("sqlServerResourceId");
        cx.put(&server, loc.clone()).await?;
        for db in [s("databaseName"), s("dataWarehouseName")] {
            if !db.is_empty() {
                cx.put(&format!("{server}/databases/{db}"), loc.clone())
                    .await?;
            }
        }
    }
    let syn = s("synapseWorkspaceSqlPoolTableResourceId");
    if !syn.is_empty() {
        let segs: Vec<&str> = syn.split('/').filter(|x| !x.is_empty()).collect();
        if let Some(i) = segs.iter().position(|x| x.eq_ignore_ascii_case("sqlPools")) {
            cx.put(&format!("/{}", segs[..i].join("/")), loc.clone())
                .await?;
            cx.put(&format!("/{}", segs[..i + 2].join("/")), loc.clone())
                .await?;
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
        .await?;
        if segs.len() >= 10 {
            cx.put(&format!("/{}", segs[..10].join("/")), loc.clone())
                .await?;
        }
    }
    Ok(())
}

/// What the prerequisites minted: values an example may name that only the service assigns.
#[derive(Default, Debug)]
struct Minted {
    invitation_id: Option<String>,
    data_set_id: Option<String>,
    provider_subscription: Option<String>,
}

/// A provider share in its own account (a Blob data set, a daily schedule) and an invitation to
/// the admin principal. Returns (share path, invitation id, data set id).
async fn provider_share(
    cx: &Ctx,
    sub: &str,
    region: &str,
) -> Result<(String, String, String), Fail> {
    let acct = format!(
        "/subscriptions/{sub}/resourceGroups/rg-prov/providers/Microsoft.DataShare/accounts/provider"
    );
    let share = format!("{acct}/shares/source");
    let (st, _) = cx.call("GET", &share, None).await?;
    if st != 200 {
        cx.put(
            &acct,
            json!({"location": region, "identity": {"type": "SystemAssigned"}}),
        )
        .await?;
        cx.put(&share, json!({"properties": {"description": "source"}}))
            .await?;
        cx.put(
            &format!("{share}/synchronizationSettings/daily"),
            json!({"kind": "ScheduleBased", "properties": {"recurrenceInterval": "Day",
                "synchronizationTime": "2024-01-01T02:00:00Z"}}),
        )
        .await?;
    }
    let (ds, inv) = provider_parts(cx, &share, sub).await?;
    Ok((share, inv, ds))
}

/// On a provider share: a Blob data set (once) and a new invitation to the admin principal.
/// Returns (data set id, invitation id).
async fn provider_parts(cx: &Ctx, share: &str, sub: &str) -> Result<(String, String), Fail> {
    let ds_path = format!("{share}/dataSets/blob1");
    let (st, ds) = cx.call("GET", &ds_path, None).await?;
    let ds = if st == 200 {
        ds
    } else {
        let blob = json!({"kind": "Blob", "properties": {"containerName": "c", "filePath": "f.csv",
            "subscriptionId": sub, "resourceGroup": "rg-prov", "storageAccountName": "provstore"}});
        create_stores(cx, &blob).await?;
        cx.put(&ds_path, blob).await?
    };
    let n = uuid::Uuid::new_v4().simple().to_string();
    let inv = cx
        .put(
            &format!("{share}/invitations/inv-{}", &n[..8]),
            json!({"properties": {"targetEmail": sim::ADMIN_EMAIL,
                "expirationDate": EXPIRES}}),
        )
        .await?;
    Ok((prop(&ds, "dataSetId"), prop(&inv, "invitationId")))
}

/// The example body to create a resource from, when it is one (an object with `properties`).
fn hint_of(v: Option<&Value>) -> Option<Value> {
    v.filter(|b| b.get("properties").is_some_and(Value::is_object))
        .cloned()
}

/// Create the resource `path` (its parents exist) of kind `kind` (the collection segment before
/// its name), from `hint` (an example body) where given. Records what it minted.
#[allow(clippy::too_many_arguments)]
async fn ensure(
    cx: &Ctx,
    sub: &str,
    region: &str,
    kind: &str,
    path: &str,
    hint: Option<Value>,
    minted: &mut Minted,
) -> Result<(), Fail> {
    let parent = path.rsplitn(3, '/').nth(2).unwrap_or("").to_string();
    match kind.to_ascii_lowercase().as_str() {
        "accounts" => {
            let mut b = hint.unwrap_or_else(|| json!({}));
            b["location"] = json!(LOC);
            b["identity"] = json!({"type": "SystemAssigned"});
            cx.put(path, b).await?;
        }
        "shares" => {
            cx.put(path, hint.unwrap_or_else(|| json!({"properties": {}})))
                .await?;
        }
        "datasets" => {
            let b = hint.unwrap_or_else(|| {
                json!({"kind": "Blob", "properties": {"containerName": "c", "filePath": "f.csv",
                    "subscriptionId": sub, "resourceGroup": "rg-store", "storageAccountName": "store1"}})
            });
            create_stores(cx, &b).await?;
            let ds = cx.put(path, b).await?;
            minted.data_set_id = Some(prop(&ds, "dataSetId"));
        }
        "synchronizationsettings" => {
            cx.put(
                path,
                hint.unwrap_or_else(|| {
                    json!({"kind": "ScheduleBased", "properties": {"recurrenceInterval": "Day",
                        "synchronizationTime": "2024-01-01T02:00:00Z"}})
                }),
            )
            .await?;
        }
        "invitations" => {
            let inv = cx
                .put(
                    path,
                    hint.unwrap_or_else(
                        || json!({"properties": {"targetEmail": sim::ADMIN_EMAIL}}),
                    ),
                )
                .await?;
            minted.invitation_id = Some(prop(&inv, "invitationId"));
        }
        "sharesubscriptions" => {
            let (_, inv, ds) = provider_share(cx, sub, region).await?;
            let mut b = hint.unwrap_or_else(|| json!({"properties": {}}));
            b["properties"]["invitationId"] = json!(inv);
            b["properties"]["sourceShareLocation"] = json!(LOC);
            cx.put(path, b).await?;
            minted.invitation_id = Some(inv);
            minted.data_set_id = Some(ds);
        }
        "datasetmappings" => {
            let mut b = hint.unwrap_or_else(|| {
                json!({"kind": "Blob", "properties": {"containerName": "c", "filePath": "f.csv",
                    "subscriptionId": sub, "resourceGroup": "rg-store", "storageAccountName": "cstore1"}})
            });
            b["properties"]["dataSetId"] = json!(minted.data_set_id.clone().unwrap_or_default());
            create_stores(cx, &b).await?;
            cx.put(path, b).await?;
        }
        "triggers" => {
            cx.put(
                path,
                hint.unwrap_or_else(|| {
                    json!({"kind": "ScheduleBased", "properties": {"recurrenceInterval": "Day",
                        "synchronizationTime": "2024-01-01T02:00:00Z"}})
                }),
            )
            .await?;
        }
        // A consumer's share subscription of the provider share `parent` (the path's name is
        // server-assigned: the minted object id replaces it).
        "providersharesubscriptions" | "listsynchronizations" => {
            let (_, inv) = provider_parts(cx, &parent, sub).await?;
            let cacct = format!(
                "/subscriptions/{sub}/resourceGroups/rg-cons/providers/Microsoft.DataShare/accounts/consumer"
            );
            cx.put(
                &cacct,
                json!({"location": LOC, "identity": {"type": "SystemAssigned"}}),
            )
            .await?;
            let n = &uuid::Uuid::new_v4().simple().to_string()[..8];
            let subscription = format!("{cacct}/shareSubscriptions/sub-{n}");
            cx.put(
                &subscription,
                json!({"properties": {"invitationId": inv, "sourceShareLocation": LOC}}),
            )
            .await?;
            let (st, list) = cx
                .call("GET", &format!("{parent}/providerShareSubscriptions"), None)
                .await?;
            // Its path name is what the service assigned: the last segment of its listed id.
            let obj = list["value"]
                .as_array()
                .and_then(|v| v.last())
                .and_then(|i| i["id"].as_str())
                .and_then(|id| id.rsplit('/').next())
                .unwrap_or_default()
                .to_string();
            if st != 200 || obj.is_empty() {
                return Err(format!(
                    "no provider share subscription listed on {parent}: {st} {list}"
                ));
            }
            minted.provider_subscription = Some(obj);
            if kind.eq_ignore_ascii_case("listsynchronizations") {
                // A synchronization of the share: a schedule on it, a trigger on the
                // subscription, run once.
                cx.put(
                    &format!("{parent}/synchronizationSettings/daily"),
                    json!({"kind": "ScheduleBased", "properties": {"recurrenceInterval": "Day",
                        "synchronizationTime": "2024-01-01T02:00:00Z"}}),
                )
                .await?;
                cx.put(
                    &format!("{subscription}/triggers/t1"),
                    json!({"kind": "ScheduleBased", "properties": {"recurrenceInterval": "Day",
                        "synchronizationTime": "2024-01-01T02:00:00Z"}}),
                )
                .await?;
                cx.h.fire_triggers();
            }
        }
        // An invitation to the admin principal (the caller), as the consumer sees it; one the
        // example reads by id in the state the example shows (accepted: a share subscription
        // made from it). Listed ones stay pending (the simulator lists pending invitations).
        "consumerinvitations" | "listinvitations" | "rejectinvitation" => {
            let (_, inv, _) = provider_share(cx, sub, region).await?;
            if kind.eq_ignore_ascii_case("consumerInvitations")
                && hint
                    .as_ref()
                    .is_some_and(|h| h["properties"]["invitationStatus"] == "Accepted")
            {
                let cacct = format!(
                    "/subscriptions/{sub}/resourceGroups/rg-cons/providers/Microsoft.DataShare/accounts/consumer"
                );
                cx.put(
                    &cacct,
                    json!({"location": region, "identity": {"type": "SystemAssigned"}}),
                )
                .await?;
                cx.put(
                    &format!("{cacct}/shareSubscriptions/accepted"),
                    json!({"properties": {"invitationId": inv, "sourceShareLocation": region}}),
                )
                .await?;
            }
            minted.invitation_id = Some(inv);
        }
        // Actions on what the path named (created above), and the source share's schedule of
        // a share subscription (provider_share made it).
        "revoke" | "reinstate" | "listsourcesharesynchronizationsettings" => {}
        other => {
            return Err(format!(
                "the test does not know how to create a '{other}' (path {path}): add the kind to \
                 ensure() in tests/sim_examples.rs"
            ));
        }
    }
    Ok(())
}

/// The example's value of each path parameter, in template order.
fn param_values(route: &Route, params: &Value) -> Result<Vec<(String, String)>, Fail> {
    let mut out = Vec::new();
    for s in &route.segs {
        if let Seg::Param(name) = s {
            let v = params.get(name).and_then(Value::as_str).ok_or_else(|| {
                format!(
                    "lacks the path parameter '{name}' of {}: add it to `parameters`",
                    route.operation_id
                )
            })?;
            out.push((name.clone(), v.to_string()));
        }
    }
    Ok(out)
}

/// The path with the given parameter values.
fn build_path(segs: &[Seg], values: &[(String, String)]) -> String {
    let mut path = String::new();
    for s in segs {
        path.push('/');
        match s {
            Seg::Lit(l) => path.push_str(l),
            Seg::Param(p) => path.push_str(
                &values
                    .iter()
                    .find(|(k, _)| k == p)
                    .map(|x| x.1.clone())
                    .unwrap_or_default(),
            ),
        }
    }
    path
}

/// Keys an answer must carry: every key of `v` at any depth (`a.b`, array items `a[].b`), except
/// null-valued ones and `nextLink`.
fn expected_keys(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if x.is_null() || k == "nextLink" {
                    continue;
                }
                let key = format!("{prefix}{k}");
                out.insert(key.clone());
                expected_keys(x, &format!("{key}."), out);
            }
        }
        Value::Array(items) => {
            for i in items {
                expected_keys(i, &format!("{}[].", prefix.trim_end_matches('.')), out);
            }
        }
        _ => {}
    }
}

/// Every key the simulator's answer has (same notation, nulls included: present is present).
fn present_keys(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = format!("{prefix}{k}");
                out.insert(key.clone());
                present_keys(x, &format!("{key}."), out);
            }
        }
        Value::Array(items) => {
            for i in items {
                present_keys(i, &format!("{}[].", prefix.trim_end_matches('.')), out);
            }
        }
        _ => {}
    }
}

/// The `*Status` values of a body's resource (`properties`) or list items (`value[].properties`).
fn states(v: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let items: Vec<&Value> = match v["value"].as_array() {
        Some(a) => a.iter().collect(),
        None => vec![v],
    };
    for i in items {
        for (k, x) in i["properties"].as_object().into_iter().flatten() {
            if k.ends_with("Status")
                && let Some(x) = x.as_str()
            {
                out.insert((k.clone(), x.to_string()));
            }
        }
    }
    out
}

/// An event timestamp key (`…At`: `respondedAt`, `sharedAt`, …), ARM's naming for when a
/// resource went through a state change.
fn event_time(key: &str) -> bool {
    key.rsplit('.').next().is_some_and(|k| k.ends_with("At"))
}

/// The spec's `x-ms-examples`: example file name → operationId.
fn examples_in_spec() -> Vec<(String, String)> {
    let raw: Value = match serde_json::from_str(include_str!("../src/sim/DataShare.json")) {
        Ok(v) => v,
        Err(e) => panic!("the embedded spec: {e}"),
    };
    let mut out = Vec::new();
    for ops in raw["paths"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        for op in ops.as_object().into_iter().flat_map(|m| m.values()) {
            let Some(id) = op["operationId"].as_str() else {
                continue;
            };
            for ex in op["x-ms-examples"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
            {
                if let Some(r) = ex["$ref"].as_str() {
                    let file = r.rsplit('/').next().unwrap_or(r).to_string();
                    out.push((file, id.to_string()));
                }
            }
        }
    }
    out
}

#[derive(Default)]
struct Tally {
    total: usize,
    replayed: usize,
    status_matched: usize,
    keys_matched: usize,
    failures: Vec<String>,
}

/// Replay one example; Ok(()) when it was replayed (mismatches go to `t.failures`).
async fn replay(
    cx: &Ctx,
    stem: &str,
    ex: &Value,
    route: &Route,
    t: &mut Tally,
) -> Result<(), Fail> {
    let sp = spec().map_err(|e| e.to_string())?;
    let params = &ex["parameters"];
    let mut values = param_values(route, params)?;
    let sub = values
        .iter()
        .find(|(k, _)| k == "subscriptionId")
        .map(|x| x.1.clone())
        .unwrap_or_else(|| "5f1c1d9e-0000-4000-8000-00000000e001".into());
    // The region the example names (`locations/{location}`), else a default.
    let region = values
        .iter()
        .find(|(k, _)| k == "location")
        .map(|x| x.1.clone())
        .unwrap_or_else(|| LOC.to_string());
    let method = route.method.as_str();
    let ok_codes: Vec<String> = ex["responses"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let first_ok = ok_codes
        .iter()
        .find(|c| c.starts_with('2'))
        .cloned()
        .unwrap_or_default();
    let example_body = ex["responses"][&first_ok].get("body");
    cx.h.reset_state();
    let mut minted = Minted::default();

    // The resources the path names: (collection literal, parameter) pairs after the provider.
    let provider_at = route
        .segs
        .iter()
        .position(|s| matches!(s, Seg::Lit(l) if l.eq_ignore_ascii_case("Microsoft.DataShare")));
    let after = provider_at.map_or(route.segs.len(), |i| i + 1);
    let mut chain: Vec<(String, usize)> = Vec::new(); // (kind, index of its name segment)
    let mut i = after;
    while i + 1 < route.segs.len() {
        if let (Seg::Lit(kind), Seg::Param(_)) = (&route.segs[i], &route.segs[i + 1]) {
            chain.push((kind.clone(), i + 1));
            i += 2;
        } else {
            i += 1;
        }
    }
    let ends_with_name = matches!(route.segs.last(), Some(Seg::Param(_)));
    let is_write = method == "PUT" || method == "PATCH";
    let create_upto = if is_write && ends_with_name {
        chain.len().saturating_sub(1)
    } else {
        chain.len()
    };
    for (n, (kind, at)) in chain.iter().take(create_upto).enumerate() {
        // Locations (`locations/{location}`) are not resources.
        if kind.eq_ignore_ascii_case("locations") {
            continue;
        }
        let path = build_path(&route.segs[..=*at], &values);
        let target = n + 1 == chain.len() && ends_with_name;
        let hint = if target { hint_of(example_body) } else { None };
        ensure(cx, &sub, &region, kind, &path, hint, &mut minted).await?;
        // A name only the service assigns: use the minted one.
        if kind.eq_ignore_ascii_case("providerShareSubscriptions")
            || kind.eq_ignore_ascii_case("consumerInvitations")
        {
            let v = if kind.eq_ignore_ascii_case("consumerInvitations") {
                minted.invitation_id.clone()
            } else {
                minted.provider_subscription.clone()
            };
            if let (Some(v), Seg::Param(p)) = (v, &route.segs[*at])
                && let Some(slot) = values.iter_mut().find(|(k, _)| k == p)
            {
                slot.1 = v;
            }
        }
    }
    // A list or an action on the last resource: one item of what it lists or acts on.
    if let Some(Seg::Lit(last)) = route.segs.last() {
        let parent = build_path(&route.segs, &values);
        let item = example_body
            .and_then(|b| b["value"].as_array())
            .and_then(|v| v.first());
        let name = item
            .and_then(|i| i["name"].as_str())
            .unwrap_or("item1")
            .to_string();
        // A collection (a PUT route is this path plus a name): one item, from the example's
        // first item. Otherwise (a list or action without one) what ensure() knows it needs.
        let child = sp.routes().iter().find(|r| {
            r.method == "PUT"
                && r.segs.len() > 2
                && matches!(r.segs.last(), Some(Seg::Param(_)))
                && matches!(&r.segs[r.segs.len() - 2], Seg::Lit(l) if l == last)
        });
        let (path, hint) = if let Some(child) = child {
            // The item's path: the parameters this path has, the others from the example
            // item's id (or a plain default), the name from the example item.
            let from_id: Vec<(String, String)> = item
                .and_then(|i| i["id"].as_str())
                .map(|id| id.split('/').filter(|x| !x.is_empty()).collect::<Vec<_>>())
                .and_then(|segs| sp.find("PUT", &segs).map(|m| m.params))
                .unwrap_or_default();
            let mut cv = Vec::new();
            let last_param = match child.segs.last() {
                Some(Seg::Param(p)) => p.clone(),
                _ => String::new(),
            };
            for seg in &child.segs {
                if let Seg::Param(p) = seg {
                    let v = if *p == last_param {
                        name.clone()
                    } else if let Some((_, v)) = values.iter().find(|(k, _)| k == p) {
                        v.clone()
                    } else if let Some((_, v)) = from_id.iter().find(|(k, _)| k == p) {
                        v.clone()
                    } else {
                        "examples".into()
                    };
                    cv.push((p.clone(), v));
                }
            }
            (build_path(&child.segs, &cv), hint_of(item))
        } else if method == "GET" || last.to_ascii_lowercase().starts_with("list") {
            (format!("{parent}/-"), hint_of(item))
        } else {
            (format!("{parent}/-"), None)
        };
        ensure(cx, &sub, &region, last, &path, hint, &mut minted).await?;
    }
    let mut body = params.as_object().and_then(|m| {
        route
            .body
            .as_ref()
            .and_then(|(name, _, _)| m.get(name).cloned())
    });
    if let Some(b) = body.as_mut() {
        for (k, v) in [
            ("invitationId", minted.invitation_id.clone()),
            ("dataSetId", minted.data_set_id.clone()),
        ] {
            if b["properties"].get(k).is_some()
                && let Some(v) = v
            {
                b["properties"][k] = json!(v);
            }
        }
        if route.operation_id.starts_with("DataSets_")
            || route.operation_id.starts_with("DataSetMappings_")
        {
            create_stores(cx, b).await?;
        }
    }
    let path = build_path(&route.segs, &values);
    // Reinstate acts on a revoked provider share subscription (its state, not a resource).
    if route.operation_id == "ProviderShareSubscriptions_Reinstate" {
        let (st, _) = cx
            .call("POST", &path.replace("/reinstate", "/revoke"), None)
            .await?;
        if st >= 300 {
            return Err(format!("set-up revoke of {path} → {st}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The replay.
    let (st, resp) = cx.call(method, &path, body.as_ref()).await?;
    t.replayed += 1;
    let status = st.to_string();
    let mut problems = Vec::new();
    if ok_codes.contains(&status) {
        t.status_matched += 1;
    } else {
        problems.push(format!(
            "status {st}, the example allows {ok_codes:?}: {resp}"
        ));
    }
    if let Some(want) = ex["responses"].get(&status).and_then(|r| r.get("body")) {
        let mut expected = BTreeSet::new();
        expected_keys(want, "", &mut expected);
        let mut present = BTreeSet::new();
        present_keys(&resp, "", &mut present);
        let (want_states, have_states) = (states(want), states(&resp));
        let missing: Vec<&String> = expected
            .difference(&present)
            .filter(|k| !event_time(k) || want_states.is_subset(&have_states))
            .collect();
        if missing.is_empty() {
            t.keys_matched += 1;
        } else {
            problems.push(format!(
                "keys missing from the answer: {missing:?}\n  answer: {resp}"
            ));
        }
    } else if ok_codes.contains(&status) {
        // The example shows no body for this status: nothing to compare, nothing missing.
        t.keys_matched += 1;
    }
    if let Some((_, schema)) = route.responses.iter().find(|(c, _)| *c == status) {
        let mut v = Vec::new();
        sp.validate(schema, &resp, "", Mode::Response, &mut v);
        if !v.is_empty() && !resp.is_null() {
            problems.push(format!("answer not spec-shaped: {v:?}"));
        }
    }
    if method == "PUT" && st < 300 {
        if !resp["id"]
            .as_str()
            .is_some_and(|id| id.eq_ignore_ascii_case(&path))
        {
            problems.push(format!("id {} is not the path {path}", resp["id"]));
        }
        if !resp["systemData"].is_object() {
            problems.push("no systemData".into());
        }
    }
    for p in problems {
        t.failures.push(format!("{stem}: {method} {path}: {p}"));
    }
    Ok(())
}

#[tokio::test]
async fn every_example_is_replayed_and_answered_like_the_example() {
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
    let in_spec = examples_in_spec();
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/datashare/examples"
    );
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut t = Tally::default();
    let mut not_replayed: Vec<String> = Vec::new();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
    {
        t.total += 1;
        let file = f
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        let stem = file.trim_end_matches(".json").to_string();
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let ex: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                not_replayed.push(format!("{file}: not JSON ({e}): fix or remove the file"));
                continue;
            }
        };
        if !ex["parameters"].is_object() || !ex["responses"].is_object() {
            not_replayed.push(format!(
                "{file}: not an x-ms-example (needs `parameters` and `responses` objects)"
            ));
            continue;
        }
        let ops: Vec<&String> = in_spec
            .iter()
            .filter(|(f, _)| f.eq_ignore_ascii_case(&file))
            .map(|(_, op)| op)
            .collect();
        let Some(route) = ops.first().and_then(|op| sp.route(op)) else {
            not_replayed.push(format!(
                "{file}: no operation of the spec (src/sim/DataShare.json) names it in \
                 x-ms-examples: add it to its operation's x-ms-examples (or remove the file)"
            ));
            continue;
        };
        if let Err(e) = replay(&cx, &stem, &ex, route, &mut t).await {
            not_replayed.push(format!("{file} ({}): {e}", route.operation_id));
        }
    }
    eprintln!(
        "sim_examples: {} examples, {} replayed, {} status matched, {} keys matched",
        t.total, t.replayed, t.status_matched, t.keys_matched
    );
    assert!(t.total > 0, "no example files in {dir}");
    assert!(
        not_replayed.is_empty(),
        "{} of {} examples not replayed:\n{}",
        not_replayed.len(),
        t.total,
        not_replayed.join("\n")
    );
    assert!(
        t.failures.is_empty(),
        "{} mismatches ({} replayed, {} status matched, {} keys matched):\n{}",
        t.failures.len(),
        t.replayed,
        t.status_matched,
        t.keys_matched,
        t.failures.join("\n")
    );
    assert_eq!(
        (t.replayed, t.status_matched, t.keys_matched),
        (t.total, t.total, t.total)
    );
    cx.h.shutdown().await;
}
