//! Simulator conformance to recorded sessions of the real Azure Data Share service.
//!
//! Every `*.json` file in `tests/fixtures/recordings/` (SessionRecords: `Entries[]`, or the
//! extract form `interactions[]` with the same entry fields) is replayed, request by request and
//! in order, against a fresh simulator. For every replayed request the simulator must answer with
//! Azure's status code, Azure's LRO header kinds and every key of Azure's response body.
//!
//! Rules for what a recording cannot hand to the simulator as it is (general, never per file):
//! 1. **Environment.** Only `Microsoft.DataShare` requests are replayed. Everything else in a
//!    recording (subscription reads, resource groups, role assignments, storage) is the test's
//!    environment; the harness creates what the Data Share requests need instead (rule 5).
//! 2. **Callers.** A request runs as the principal who created the Data Share account it
//!    addresses, as Azure recorded it (`properties.userEmail` of the account's first recorded
//!    answer; an empty e-mail is a principal without e-mail, `sim:app:<userName>`). A request
//!    outside any account (tenant-level `ListInvitations`, `consumerInvitations`) runs as the
//!    caller of the account addressed last.
//! 3. **Subscriptions.** Recording tools sanitise subscription ids, so two tenants' subscriptions
//!    may share one recorded id: each (recorded subscription, caller) gets its own simulator
//!    subscription, substituted in paths and request bodies.
//! 4. **Ids the service assigns.** After each answer the recorded and the simulated bodies are
//!    walked in parallel; where the recording has a GUID and the simulator another string at the
//!    same place, the pair is learned and the simulator's value is substituted in every later
//!    path and request body (invitation ids, data set ids, share subscription object ids, …).
//! 5. **Preconditions.** A request body naming a storage account (`subscriptionId`,
//!    `resourceGroup`, `storageAccountName`) gets that account created first, in the region of
//!    the Data Share account, with the Data Share account's identity granted Storage Blob Data
//!    Reader on it (what the recorded environment did before the request).
//! 6. **Timing.** Values are not compared (times, counts, states that depend on how long the
//!    service took); a poll loop is replayed as recorded, one request per recorded request.
//! 7. **Headers.** `Azure-AsyncOperation` and `Retry-After` must be present exactly when Azure's
//!    answer had them; `Location` is compared on 202 answers (on 200/201 it is informational:
//!    2019-11-01 sends a resource URL or a malformed relative one, 2021-08-01 none); every
//!    `x-ms-ratelimit-remaining-*` header Azure sent must be present (its value is not compared:
//!    the recordings count down from older quotas than the simulator's buckets).
//!
//! A file the harness cannot judge (not JSON, no entries, an entry without method/URI/status)
//! fails with a message saying what to add.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use datashare_dr::sim::{self, SimOptions, det_uuid};
use serde_json::{Value, json};

const DIR: &str = "tests/fixtures/recordings";
const AZURE: &str = "https://management.azure.com";
const READER_ROLE: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";

struct Entry {
    method: String,
    uri: String,
    body: Option<Value>,
    status: u16,
    headers: BTreeMap<String, String>,
    resp: Option<Value>,
}

/// Parse a body that is a JSON value, a JSON string, an empty string or null.
fn body_of(v: Option<&Value>) -> Option<Value> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => serde_json::from_str(s)
            .ok()
            .or(Some(Value::String(s.clone()))),
        Some(other) => Some(other.clone()),
    }
}

fn load(path: &Path) -> Result<Vec<Entry>, String> {
    let what = "add a SessionRecords JSON object with `Entries` (or `interactions`): a list of \
                {RequestMethod, RequestUri, RequestBody, StatusCode, ResponseHeaders, ResponseBody}";
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}); {what}"))?;
    let list = doc
        .get("Entries")
        .or_else(|| doc.get("interactions"))
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no `Entries` list; {what}"))?;
    let mut out = Vec::new();
    for (i, e) in list.iter().enumerate() {
        // Markers of left-out interactions (`skipped_non_datashare`) carry no request.
        if e.get("RequestMethod").is_none() && e.get("skipped_non_datashare").is_some() {
            continue;
        }
        let field = |n: &str| {
            e.get(n)
                .ok_or_else(|| format!("entry {i} has no `{n}`; {what}"))
        };
        let method = field("RequestMethod")?
            .as_str()
            .ok_or_else(|| format!("entry {i}: RequestMethod is not a string"))?
            .to_ascii_uppercase();
        let uri = field("RequestUri")?
            .as_str()
            .ok_or_else(|| format!("entry {i}: RequestUri is not a string"))?
            .to_string();
        let status = field("StatusCode")?
            .as_u64()
            .ok_or_else(|| format!("entry {i}: StatusCode is not a number"))?
            as u16;
        let headers = e
            .get("ResponseHeaders")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            Value::Array(a) => a
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(","),
                            other => other.to_string(),
                        };
                        (k.to_ascii_lowercase(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Entry {
            method,
            uri,
            body: body_of(e.get("RequestBody")),
            status,
            headers,
            resp: body_of(e.get("ResponseBody")),
        });
    }
    if out.is_empty() {
        return Err(format!("no entries; {what}"));
    }
    Ok(out)
}

fn files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(DIR) {
        Ok(d) => d.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => panic!("cannot read {DIR}: {e}"),
    };
    v.sort();
    v
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

/// Learn recorded → simulated values at the same places of two bodies.
fn learn(rec: &Value, got: &Value, subs: &[String], map: &mut HashMap<String, String>) {
    match (rec, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if let Some(w) = b.get(k) {
                    learn(v, w, subs, map);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (v, w) in a.iter().zip(b) {
                learn(v, w, subs, map);
            }
        }
        (Value::String(a), Value::String(b)) => {
            let key = a.to_ascii_lowercase();
            if is_guid(a)
                && !a.eq_ignore_ascii_case(b)
                && !subs.contains(&key)
                && key != "00000000-0000-0000-0000-000000000000"
            {
                map.entry(key).or_insert_with(|| b.clone());
            }
        }
        _ => {}
    }
}

/// Keys of Azure's body missing from the simulator's (JSON paths).
fn missing_keys(rec: &Value, got: &Value, at: &str, out: &mut Vec<String>) {
    match (rec, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = format!("{at}.{k}");
                match b.get(k) {
                    Some(w) => missing_keys(v, w, &p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Object(_), _) => out.push(format!("{at} (object expected)")),
        (Value::Array(a), Value::Array(b)) => {
            for (i, v) in a.iter().enumerate() {
                match b.get(i) {
                    Some(w) => missing_keys(v, w, &format!("{at}[{i}]"), out),
                    None => out.push(format!("{at}[{i}]")),
                }
            }
        }
        _ => {}
    }
}

fn replace_all(s: &str, map: &HashMap<String, String>) -> String {
    let mut out = s.to_string();
    for (k, v) in map {
        if out.to_ascii_lowercase().contains(k.as_str()) {
            // Case-insensitive replace of `k` (lower-case) in `out`.
            let mut res = String::new();
            let mut rest = out.as_str();
            loop {
                match rest.to_ascii_lowercase().find(k.as_str()) {
                    Some(i) => {
                        res.push_str(&rest[..i]);
                        res.push_str(v);
                        rest = &rest[i + k.len()..];
                    }
                    None => {
                        res.push_str(rest);
                        break;
                    }
                }
            }
            out = res;
        }
    }
    out
}

fn segs(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// `/subscriptions/S/resourceGroups/G/providers/Microsoft.DataShare/accounts/A` of a path.
fn account_of(path: &str) -> Option<String> {
    let s = segs(path);
    (s.len() >= 8
        && s[0].eq_ignore_ascii_case("subscriptions")
        && s[5].eq_ignore_ascii_case("Microsoft.DataShare")
        && s[6].eq_ignore_ascii_case("accounts"))
    .then(|| format!("/{}", s[..8].join("/")).to_ascii_lowercase())
}

#[derive(Default, Debug)]
struct Figures {
    replayed: usize,
    environment: usize,
    status_ok: usize,
    headers_ok: usize,
    bodies: usize,
    bodies_ok: usize,
    failures: Vec<String>,
}

async fn send(
    c: &reqwest::Client,
    token: &str,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> (u16, reqwest::header::HeaderMap, Option<Value>) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut rb = c.request(m, url).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = if text.trim().is_empty() {
        None
    } else {
        serde_json::from_str(&text).ok()
    };
    (status, headers, body)
}

fn caller_token(rec_account_body: &Value) -> String {
    let p = &rec_account_body["properties"];
    let email = p["userEmail"].as_str().unwrap_or("");
    if email.contains('@') {
        format!("sim:{email}")
    } else {
        let name = p["userName"].as_str().unwrap_or("app");
        format!("sim:app:{}", name.replace(char::is_whitespace, "-"))
    }
}

async fn replay(file: &Path, entries: &[Entry]) -> Figures {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"));
    let h = sim::spawn(SimOptions {
        throttle: false,
        lro_delay_ms: 300,
        page_size: 100,
        ..SimOptions::default()
    })
    .await
    .unwrap_or_else(|e| panic!("spawn: {e}"));
    let base = h.base_url.clone();
    let mut fig = Figures::default();
    // Recorded subscription ids (rule 3), recorded account → caller token (rule 2).
    let mut rec_subs: Vec<String> = Vec::new();
    for e in entries {
        let s = segs(e.uri.split('?').next().unwrap_or(""));
        if s.len() >= 4 && s[2].eq_ignore_ascii_case("subscriptions") {
            let sub = s[3].to_ascii_lowercase();
            if !rec_subs.contains(&sub) {
                rec_subs.push(sub);
            }
        }
    }
    let mut callers: HashMap<String, String> = HashMap::new();
    for e in entries {
        let path = e.uri.trim_start_matches(AZURE);
        let path = path.split('?').next().unwrap_or("");
        if let Some(acc) = account_of(path)
            && segs(path).len() == 8
            && !callers.contains_key(&acc)
            && let Some(b) = &e.resp
            && b.get("properties").is_some()
        {
            callers.insert(acc, caller_token(b));
        }
    }
    let mut learned: HashMap<String, String> = HashMap::new();
    let mut last_caller = "sim".to_string();
    let mut stores_made: Vec<String> = Vec::new();
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?");
    for (i, e) in entries.iter().enumerate() {
        if !e
            .uri
            .to_ascii_lowercase()
            .contains("/providers/microsoft.datashare")
        {
            fig.environment += 1;
            continue;
        }
        let rec_path = e.uri.trim_start_matches(AZURE).to_string();
        let rec_path_only = rec_path.split('?').next().unwrap_or("").to_string();
        let caller = match account_of(&rec_path_only) {
            Some(acc) => callers.get(&acc).cloned().unwrap_or_else(|| "sim".into()),
            None => last_caller.clone(),
        };
        last_caller = caller.clone();
        // Per-caller subscription map (rule 3) first, then the learned ids (rule 4).
        let mut map: HashMap<String, String> = rec_subs
            .iter()
            .map(|s| (s.clone(), det_uuid(&format!("{s}|{caller}"))))
            .collect();
        let path = replace_all(&replace_all(&rec_path, &map), &learned);
        let body = e.body.as_ref().map(|b| {
            let t = replace_all(&replace_all(&b.to_string(), &map), &learned);
            serde_json::from_str::<Value>(&t).unwrap_or_else(|_| b.clone())
        });
        // Preconditions (rule 5).
        if let Some(b) = &body
            && let Some(p) = b.get("properties")
            && let (Some(sub), Some(rg), Some(sa)) = (
                p["subscriptionId"].as_str(),
                p["resourceGroup"].as_str(),
                p["storageAccountName"].as_str(),
            )
        {
            let sa_id = format!(
                "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{sa}"
            );
            if !stores_made.contains(&sa_id.to_ascii_lowercase()) {
                stores_made.push(sa_id.to_ascii_lowercase());
                let acc = account_of(path.split('?').next().unwrap_or("")).unwrap_or_default();
                let (_, _, ab) = send(
                    &c,
                    &caller,
                    "GET",
                    &format!("{base}{acc}?api-version=2021-08-01"),
                    None,
                )
                .await;
                let ab = ab.unwrap_or(Value::Null);
                let loc = ab["location"].as_str().unwrap_or("westus2").to_string();
                let (st, _, b) = send(
                    &c,
                    &caller,
                    "PUT",
                    &format!("{base}{sa_id}?api-version=2023-01-01"),
                    Some(&json!({"location": loc, "kind": "StorageV2", "properties": {}})),
                )
                .await;
                assert!(
                    st < 300,
                    "{name}: creating storage account {sa_id}: {st} {b:?}"
                );
                if let Some(pid) = ab["identity"]["principalId"].as_str() {
                    let ra = det_uuid(&format!("{sa_id}|{pid}"));
                    let (st, _, b) = send(&c, &caller, "PUT",
                        &format!("{base}{sa_id}/providers/Microsoft.Authorization/roleAssignments/{ra}?api-version=2022-04-01"),
                        Some(&json!({"properties": {"roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{READER_ROLE}"),
                            "principalId": pid, "principalType": "ServicePrincipal"}})),
                    ).await;
                    assert!(st < 300, "{name}: granting {pid} on {sa_id}: {st} {b:?}");
                }
            }
        }
        let url = format!("{base}{path}");
        let (status, headers, got) = send(&c, &caller, &e.method, &url, body.as_ref()).await;
        fig.replayed += 1;
        let what = format!("{name} #{i} {} {}", e.method, rec_path_only);
        if status == e.status {
            fig.status_ok += 1;
        } else {
            fig.failures.push(format!(
                "{what}: status {status}, Azure {} (simulator body {})",
                e.status,
                got.as_ref().map(|b| b.to_string()).unwrap_or_default()
            ));
        }
        // Header kinds (rule 7).
        let has = |n: &str| headers.contains_key(n);
        let mut bad_headers = Vec::new();
        for n in ["azure-asyncoperation", "retry-after"] {
            if e.headers.contains_key(n) != has(n) {
                bad_headers.push(format!(
                    "{n}: Azure {}, simulator {}",
                    e.headers.contains_key(n),
                    has(n)
                ));
            }
        }
        if e.status == 202 && e.headers.contains_key("location") != has("location") {
            bad_headers.push(format!(
                "location: Azure {}, simulator {}",
                e.headers.contains_key("location"),
                has("location")
            ));
        }
        for n in e.headers.keys() {
            if n.starts_with("x-ms-ratelimit-remaining-") && !has(n) {
                bad_headers.push(format!("{n} missing"));
            }
        }
        if bad_headers.is_empty() {
            fig.headers_ok += 1;
        } else {
            fig.failures
                .push(format!("{what}: headers: {}", bad_headers.join("; ")));
        }
        if let Some(rb) = &e.resp {
            fig.bodies += 1;
            let mut miss = Vec::new();
            match &got {
                Some(g) => missing_keys(rb, g, "$", &mut miss),
                None => miss.push("$ (no body)".into()),
            }
            if miss.is_empty() {
                fig.bodies_ok += 1;
            } else {
                fig.failures
                    .push(format!("{what}: body lacks {}", miss.join(", ")));
            }
            if let Some(g) = &got {
                let subs: Vec<String> = rec_subs.clone();
                learn(rb, g, &subs, &mut learned);
            }
        }
        map.clear();
    }
    h.shutdown().await;
    fig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recording_replays_against_the_simulator_with_azures_answers() {
    let mut problems = Vec::new();
    let mut judged = 0;
    let mut total = Figures::default();
    for f in files() {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        if name == "README.md" {
            continue;
        }
        if !name.ends_with(".json") {
            problems.push(format!(
                "{name}: cannot judge this file: recordings are SessionRecords JSON files \
                 (`*.json`); rename it or add it as JSON with `Entries`"
            ));
            continue;
        }
        let entries = match load(&f) {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("{name}: cannot judge this file: {e}"));
                continue;
            }
        };
        judged += 1;
        let fig = replay(&f, &entries).await;
        eprintln!(
            "{name}: {} requests replayed ({} environment requests not replayed), {} statuses \
             matched, {} with Azure's LRO/rate-limit header kinds, {} of {} bodies with all of \
             Azure's keys",
            fig.replayed, fig.environment, fig.status_ok, fig.headers_ok, fig.bodies_ok, fig.bodies
        );
        total.replayed += fig.replayed;
        total.status_ok += fig.status_ok;
        total.headers_ok += fig.headers_ok;
        total.bodies += fig.bodies;
        total.bodies_ok += fig.bodies_ok;
        problems.extend(fig.failures);
    }
    eprintln!(
        "TOTAL: {} replayed, {} statuses matched, {} header kinds matched, {} of {} bodies with all keys",
        total.replayed, total.status_ok, total.headers_ok, total.bodies_ok, total.bodies
    );
    assert!(judged > 0, "no recordings in {DIR}");
    assert!(
        problems.is_empty(),
        "{} differences from Azure:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn a_file_the_harness_cannot_judge_names_what_to_add() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let p = dir.path().join("x.json");
    std::fs::write(&p, r#"{"Entries": [{"RequestMethod": "GET"}]}"#)
        .unwrap_or_else(|e| panic!("write: {e}"));
    let err = match load(&p) {
        Ok(_) => panic!("an entry without RequestUri was accepted"),
        Err(e) => e,
    };
    assert!(
        err.contains("`RequestUri`") && err.contains("add a SessionRecords"),
        "{err}"
    );
    std::fs::write(&p, "{}").unwrap_or_else(|e| panic!("write: {e}"));
    let err = load(&p).err().unwrap_or_default();
    assert!(err.contains("no `Entries`"), "{err}");
}
