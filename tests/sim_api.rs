//! The simulator through HTTP: ARM semantics (auth, api-version, 404 body, PUT 201/200, LRO
//! delete, paging), validation errors, throttling, outages, both sides of sharing, other ARM
//! resources, and the control API.

use std::time::{Duration, Instant};

use datashare_dr::sim::{self, FaultSettings, SimHandle, SimOptions};
use serde_json::{Value, json};

const SUB: &str = "5f1c1d9e-0000-4000-8000-00000000a001";
const V: &str = "2021-08-01";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => panic!("client: {e}"),
    }
}

async fn start(opts: SimOptions) -> SimHandle {
    match sim::spawn(opts).await {
        Ok(h) => h,
        Err(e) => panic!("spawn: {e}"),
    }
}

struct R {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn call(
    c: &reqwest::Client,
    token: Option<&str>,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> R {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut rb = c.request(m, url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    R {
        status,
        headers,
        body,
    }
}

fn url(h: &SimHandle, path: &str) -> String {
    format!("{}{path}?api-version={V}", h.base_url)
}

fn acct(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-test/providers/Microsoft.DataShare/accounts/{name}"
    )
}

fn storage(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}"
    )
}

async fn put_ok(c: &reqwest::Client, h: &SimHandle, token: &str, path: &str, body: Value) -> Value {
    let r = call(c, Some(token), "PUT", &url(h, path), Some(body)).await;
    assert!(
        r.status == 200 || r.status == 201,
        "PUT {path}: {} {}",
        r.status,
        r.body
    );
    r.body
}

fn header(r: &R, name: &str) -> Option<String> {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Poll an Azure-AsyncOperation URL until terminal (bounded).
async fn wait_async(c: &reqwest::Client, token: &str, op_url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = call(c, Some(token), "GET", op_url, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let st = r.body["status"].as_str().unwrap_or("").to_string();
        if ["Succeeded", "Failed", "Canceled"].contains(&st.as_str()) {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "operation did not finish: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn account(
    c: &reqwest::Client,
    h: &SimHandle,
    token: &str,
    path: &str,
    location: &str,
) -> Value {
    put_ok(
        c,
        h,
        token,
        path,
        json!({"location": location, "identity": {"type": "SystemAssigned"}}),
    )
    .await
}

#[tokio::test]
async fn requests_without_a_valid_bearer_token_get_401() {
    let h = start(SimOptions::default()).await;
    let c = client();
    let r = call(&c, None, "GET", &url(&h, &acct("a1")), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], "AuthenticationFailed");
    assert!(header(&r, "www-authenticate").is_some());
    let r = call(
        &c,
        Some("not-a-sim-token"),
        "GET",
        &url(&h, &acct("a1")),
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], "InvalidAuthenticationToken");
    h.shutdown().await;
}

#[tokio::test]
async fn api_version_is_required_and_must_be_a_published_one() {
    let h = start(SimOptions::default()).await;
    let c = client();
    let r = call(
        &c,
        Some("sim"),
        "GET",
        &format!("{}{}", h.base_url, acct("a1")),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("MissingApiVersionParameter"))
    );
    let r = call(
        &c,
        Some("sim"),
        "GET",
        &format!("{}{}?api-version=2030-01-01", h.base_url, acct("a1")),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("NoRegisteredProviderFound"))
    );
    for v in [
        "2018-11-01-preview",
        "2019-11-01",
        "2020-09-01",
        "2020-10-01-preview",
        "2021-08-01",
    ] {
        let r = call(
            &c,
            Some("sim"),
            "GET",
            &format!("{}{}?api-version={v}", h.base_url, acct("a1")),
            None,
        )
        .await;
        assert_eq!(r.status, 404, "version {v} should be accepted");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn missing_resources_get_404_with_the_spec_error_body_and_arm_headers() {
    let h = start(SimOptions::default()).await;
    let c = client();
    let r = c
        .get(url(&h, &format!("{}/shares/nope", acct("a1"))))
        .bearer_auth("sim")
        .header("x-ms-correlation-request-id", "corr-1")
        .header("x-ms-client-request-id", "client-1")
        .header("x-ms-return-client-request-id", "true")
        .send()
        .await;
    let Ok(r) = r else { panic!("send") };
    assert_eq!(r.status().as_u16(), 404);
    let hd = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(hd("x-ms-correlation-request-id").as_deref(), Some("corr-1"));
    assert_eq!(hd("x-ms-client-request-id").as_deref(), Some("client-1"));
    assert!(hd("x-ms-request-id").is_some());
    assert!(hd("x-ms-ratelimit-remaining-subscription-reads").is_some());
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().unwrap_or("");
    assert!(
        !code.is_empty() && body["error"]["message"].is_string(),
        "{body}"
    );
    // Without the return header the client request id is not echoed; a correlation id is made up.
    let r = call(&c, Some("sim"), "GET", &url(&h, &acct("a1")), None).await;
    assert!(header(&r, "x-ms-client-request-id").is_none());
    assert!(header(&r, "x-ms-correlation-request-id").is_some_and(|v| v.len() == 36));
    h.shutdown().await;
}

#[tokio::test]
async fn put_creates_with_201_then_updates_with_200_keeping_server_fields() {
    let h = start(SimOptions::default()).await;
    let c = client();
    let a = acct("acct1");
    let r = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &a),
        Some(json!({"location": "westeurope", "identity": {"type": "SystemAssigned"}})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Azure (recordings): 201 `Creating`, polled by GET until `Succeeded`; no status URL.
    assert!(
        header(&r, "azure-asyncoperation").is_none() && header(&r, "retry-after").is_none(),
        "account create answers without LRO headers"
    );
    assert_eq!(r.body["properties"]["provisioningState"], "Creating");
    let pid = r.body["identity"]["principalId"].clone();
    assert!(pid.is_string());
    let share = format!("{a}/shares/s1");
    let r1 = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &share),
        Some(json!({"properties": {"description": "one"}})),
    )
    .await;
    assert_eq!(r1.status, 201);
    assert_eq!(r1.body["id"], share);
    assert_eq!(r1.body["name"], "s1");
    assert_eq!(r1.body["type"], "Microsoft.DataShare/accounts/shares");
    assert_eq!(r1.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(r1.body["properties"]["shareKind"], "CopyBased");
    assert!(r1.body["systemData"]["createdAt"].is_string());
    let r2 = call(
        &c,
        Some("sim"),
        "PUT",
        &url(
            &h,
            &share
                .to_uppercase()
                .replace("SUBSCRIPTIONS", "subscriptions"),
        ),
        Some(json!({"properties": {"description": "two"}})),
    )
    .await;
    assert_eq!(
        r2.status, 200,
        "ids compare case-insensitively: {}",
        r2.body
    );
    assert_eq!(r2.body["properties"]["description"], "two");
    assert_eq!(
        r2.body["properties"]["createdAt"],
        r1.body["properties"]["createdAt"]
    );
    let r = call(&c, Some("sim"), "PUT", &url(&h, &a), Some(json!({"location": "westeurope", "identity": {"type": "SystemAssigned"}, "tags": {"x": "y"}}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["identity"]["principalId"], pid);
    h.shutdown().await;
}

#[tokio::test]
async fn delete_is_long_running_through_the_async_operation_endpoint() {
    let h = start(SimOptions {
        lro_delay_ms: 100,
        ..SimOptions::default()
    })
    .await;
    let c = client();
    let a = acct("acct1");
    account(&c, &h, "sim", &a, "westeurope").await;
    let share = format!("{a}/shares/s1");
    put_ok(&c, &h, "sim", &share, json!({"properties": {}})).await;
    let r = call(&c, Some("sim"), "DELETE", &url(&h, &share), None).await;
    assert_eq!(r.status, 202);
    // Azure (recordings): 202 with only `Location`, no Azure-AsyncOperation, no Retry-After.
    assert!(header(&r, "azure-asyncoperation").is_none());
    assert!(header(&r, "retry-after").is_none());
    let loc = header(&r, "location").unwrap_or_default();
    assert!(
        loc.starts_with(&h.base_url) && loc.contains("/operationResults/"),
        "{loc}"
    );
    let op = loc.replace("/operationResults/", "/operationStatuses/");
    let first = call(&c, Some("sim"), "GET", &op, None).await;
    assert_eq!(first.body["status"], "InProgress");
    let during = call(&c, Some("sim"), "GET", &url(&h, &share), None).await;
    assert_eq!(during.status, 200, "still visible while deleting");
    let l = call(&c, Some("sim"), "GET", &loc, None).await;
    assert_eq!(l.status, 202);
    let done = wait_async(&c, "sim", &op).await;
    assert_eq!(done["status"], "Succeeded");
    assert!(done["endTime"].is_string());
    let after = call(&c, Some("sim"), "GET", &url(&h, &share), None).await;
    assert_eq!(after.status, 404);
    let l = call(&c, Some("sim"), "GET", &loc, None).await;
    assert_eq!(l.status, 204);
    let again = call(&c, Some("sim"), "DELETE", &url(&h, &share), None).await;
    assert_eq!(again.status, 204, "deleting a missing resource is 204");
    h.shutdown().await;
}

#[tokio::test]
async fn lists_page_with_next_link_including_post_lists_followed_by_get() {
    let h = start(SimOptions {
        page_size: 3,
        ..SimOptions::default()
    })
    .await;
    let c = client();
    let a = acct("acct1");
    account(&c, &h, "sim", &a, "westeurope").await;
    for i in 0..8 {
        put_ok(
            &c,
            &h,
            "sim",
            &format!("{a}/shares/s{i}"),
            json!({"properties": {}}),
        )
        .await;
    }
    let mut next = Some(url(&h, &format!("{a}/shares")));
    let mut names = Vec::new();
    let mut pages = 0;
    while let Some(u) = next.take() {
        let r = call(&c, Some("sim"), "GET", &u, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        pages += 1;
        for v in r.body["value"].as_array().cloned().unwrap_or_default() {
            names.push(v["name"].as_str().unwrap_or("").to_string());
        }
        next = r.body["nextLink"].as_str().map(str::to_string);
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 8);
    names.dedup();
    assert_eq!(names.len(), 8);
    h.shutdown().await;
}

#[tokio::test]
async fn invalid_bodies_get_400_naming_the_property() {
    let h = start(SimOptions::default()).await;
    let c = client();
    let a = acct("acct1");
    let r = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &a),
        Some(json!({"location": "westeurope"})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["target"].as_str()),
        (400, Some("identity")),
        "{}",
        r.body
    );
    assert_eq!(r.body["error"]["code"], "InvalidRequestContent");
    account(&c, &h, "sim", &a, "westeurope").await;
    put_ok(
        &c,
        &h,
        "sim",
        &format!("{a}/shares/s1"),
        json!({"properties": {}}),
    )
    .await;
    let ds = format!("{a}/shares/s1/dataSets/d1");
    let cases = [
        (json!({"properties": {}}), "kind"),
        (json!({"kind": "Parquet", "properties": {}}), "kind"),
        (
            json!({"kind": "Blob", "properties": {"containerName": "c", "filePath": "f", "subscriptionId": SUB, "resourceGroup": "rg"}}),
            "properties.storageAccountName",
        ),
        (json!({"kind": "Blob"}), "properties"),
    ];
    for (body, target) in cases {
        let r = call(&c, Some("sim"), "PUT", &url(&h, &ds), Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.body["error"]["target"], target, "{}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(target)
        );
    }
    let trig = format!("{a}/shares/s1/synchronizationSettings/x");
    let r = call(&c, Some("sim"), "PUT", &url(&h, &trig), Some(json!({"kind": "ScheduleBased",
        "properties": {"recurrenceInterval": "Week", "synchronizationTime": "2024-01-01T00:00:00Z"}}))).await;
    assert_eq!(r.body["error"]["target"], "properties.recurrenceInterval");
    let r = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &trig),
        Some(json!({"kind": "ScheduleBased",
        "properties": {"recurrenceInterval": "Day", "synchronizationTime": "tomorrow"}})),
    )
    .await;
    assert_eq!(r.body["error"]["target"], "properties.synchronizationTime");
    let r = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &format!("{a}/shares/s1/invitations/i1")),
        Some(json!({"properties": {}})),
    )
    .await;
    assert_eq!(r.body["error"]["target"], "properties.targetEmail");
    let raw = c
        .put(url(&h, &format!("{a}/shares/s2")))
        .bearer_auth("sim")
        .body("{not json")
        .send()
        .await;
    assert_eq!(raw.map(|r| r.status().as_u16()).unwrap_or(0), 400);
    h.shutdown().await;
}

#[tokio::test]
async fn a_dataset_whose_store_does_not_exist_is_refused() {
    let h = start(SimOptions::default()).await;
    let c = client();
    let a = acct("acct1");
    account(&c, &h, "sim", &a, "westeurope").await;
    put_ok(
        &c,
        &h,
        "sim",
        &format!("{a}/shares/s1"),
        json!({"properties": {}}),
    )
    .await;
    let body = json!({"kind": "AdlsGen2FileSystem", "properties": {"fileSystem": "fs", "subscriptionId": SUB, "resourceGroup": "rg-data", "storageAccountName": "lake1"}});
    let ds = format!("{a}/shares/s1/dataSets/d1");
    let r = call(&c, Some("sim"), "PUT", &url(&h, &ds), Some(body.clone())).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("DataSetSourceNotFound")),
        "{}",
        r.body
    );
    put_ok(
        &c,
        &h,
        "sim",
        &storage(SUB, "rg-data", "lake1"),
        json!({"location": "westeurope"}),
    )
    .await;
    let r = call(&c, Some("sim"), "PUT", &url(&h, &ds), Some(body.clone())).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("InvalidDataSetSource")),
        "no HNS: {}",
        r.body
    );
    put_ok(
        &c,
        &h,
        "sim",
        &storage(SUB, "rg-data", "lake1"),
        json!({"location": "westeurope", "properties": {"isHnsEnabled": true}}),
    )
    .await;
    let r = call(&c, Some("sim"), "PUT", &url(&h, &ds), Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.body["properties"]["dataSetId"]
            .as_str()
            .is_some_and(|s| s.len() == 36)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after_and_counts_it() {
    let h = start(SimOptions::default()).await;
    let c = client();
    let u = url(&h, &acct("nope"));
    let mut last_remaining = None;
    let mut throttled = None;
    let began = std::time::Instant::now();
    for i in 0..300 {
        let r = call(&c, Some("sim"), "GET", &u, None).await;
        if r.status == 429 {
            throttled = Some((i, r));
            break;
        }
        last_remaining = header(&r, "x-ms-ratelimit-remaining-subscription-reads");
    }
    let Some((i, r)) = throttled else {
        panic!("no 429 within 300 reads")
    };
    // 250 burst plus what the bucket refilled (25/s) while we were asking: under load the loop
    // takes longer, so the upper bound follows the time it took rather than a fixed count.
    let refilled = (25.0 * began.elapsed().as_secs_f64()).ceil() as usize;
    assert!(
        (245..=255 + refilled).contains(&i),
        "throttled after {i} reads (250 burst + 25/s refill = up to {refilled} in {:?})",
        began.elapsed()
    );
    assert_eq!(last_remaining.as_deref(), Some("0"));
    assert!(header(&r, "retry-after").is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s >= 1)));
    assert_eq!(r.body["error"]["code"], "TooManyRequests");
    // Writes have their own bucket; another principal has its own too.
    let w = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &acct("w1")),
        Some(json!({"location": "westeurope", "identity": {"type": "SystemAssigned"}})),
    )
    .await;
    assert_eq!(w.status, 201);
    assert_eq!(
        header(&w, "x-ms-ratelimit-remaining-subscription-writes").as_deref(),
        Some("199")
    );
    let stats = h.stats();
    assert!(stats.throttled >= 1 && stats.reads >= 245, "{stats:?}");
    assert!(
        stats
            .operations
            .get("Accounts_Get")
            .is_some_and(|o| o.throttled >= 1)
    );
    h.reset_counters();
    let r = call(&c, Some("sim"), "GET", &u, None).await;
    assert_eq!(r.status, 404, "reset refills the buckets");
    h.shutdown().await;
}

#[tokio::test]
async fn throttle_off_and_injected_faults_are_switchable_at_runtime() {
    let h = start(SimOptions {
        throttle: false,
        seed: 7,
        ..SimOptions::default()
    })
    .await;
    let c = client();
    for _ in 0..300 {
        let r = call(&c, Some("sim"), "GET", &url(&h, &acct("x")), None).await;
        assert_eq!(r.status, 404);
    }
    h.set_faults(&FaultSettings {
        fault_429: Some(0.5),
        fault_5xx: Some(0.5),
        ..FaultSettings::default()
    });
    let mut seen = (0, 0);
    for _ in 0..40 {
        let r = call(&c, Some("sim"), "GET", &url(&h, &acct("x")), None).await;
        match r.status {
            429 => {
                assert!(header(&r, "retry-after").is_some());
                seen.0 += 1;
            }
            500 | 503 => seen.1 += 1,
            s => panic!("unexpected {s}"),
        }
    }
    assert!(seen.0 > 5 && seen.1 > 5, "{seen:?}");
    let resp = c
        .post(format!("{}/_sim/faults", h.base_url))
        .json(&json!({"fault_429": 0.0, "fault_5xx": 0.0}))
        .send()
        .await;
    assert_eq!(resp.map(|r| r.status().as_u16()).unwrap_or(0), 200);
    let r = call(&c, Some("sim"), "GET", &url(&h, &acct("x")), None).await;
    assert_eq!(r.status, 404);
    let s = h.stats();
    assert_eq!(s.faults_429 + s.faults_5xx, 40);

    // One operation made to fail every time (case-insensitive id), the others untouched; an
    // empty map clears it.
    let resp = c
        .post(format!("{}/_sim/faults", h.base_url))
        .json(&json!({"fail_operations": {"accounts_get": 503, "Shares_ListByAccount": 403}}))
        .send()
        .await;
    assert_eq!(resp.map(|r| r.status().as_u16()).unwrap_or(0), 200);
    for _ in 0..3 {
        let r = call(&c, Some("sim"), "GET", &url(&h, &acct("x")), None).await;
        assert_eq!(r.status, 503, "{:?}", r.body);
    }
    let r = call(
        &c,
        Some("sim"),
        "GET",
        &url(&h, &format!("{}/shares", acct("x"))),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("AuthorizationFailed"))
    );
    h.set_faults(&FaultSettings {
        fail_operations: Some(Default::default()),
        ..FaultSettings::default()
    });
    let r = call(&c, Some("sim"), "GET", &url(&h, &acct("x")), None).await;
    assert_eq!(r.status, 404);
    h.shutdown().await;
}

/// One raw HTTP/1.1 request over TCP; returns every byte the simulator sent before closing.
async fn raw_http(h: &SimHandle, method: &str, path: &str, body: &str) -> Vec<u8> {
    let (addr, method, path, body) = (
        h.addr,
        method.to_string(),
        path.to_string(),
        body.to_string(),
    );
    match tokio::task::spawn_blocking(move || raw_http_blocking(addr, &method, &path, &body)).await
    {
        Ok(v) => v,
        Err(e) => panic!("raw request: {e}"),
    }
}

fn raw_http_blocking(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = match std::net::TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!(
        "{method} {path}?api-version={V} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer sim\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        addr,
        body.len()
    );
    if let Err(e) = s.write_all(req.as_bytes()) {
        panic!("write: {e}");
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read (the simulator neither answered nor closed): {e}"),
        }
        if got.windows(4).any(|w| w == b"\r\n\r\n") {
            // A complete answer head: enough to tell an answer from a dropped connection.
            break;
        }
    }
    got
}

#[tokio::test]
async fn drop_after_apply_applies_the_write_then_closes_the_connection_without_an_answer() {
    let h = start(SimOptions {
        throttle: false,
        ..SimOptions::default()
    })
    .await;
    let c = client();
    let a = acct("drop");
    account(&c, &h, "sim", &a, "westeurope").await;
    put_ok(
        &c,
        &h,
        "sim",
        &format!("{a}/shares/s1"),
        json!({"properties": {}}),
    )
    .await;
    // The next Invitations_Create (case-insensitive id) is applied and its answer lost.
    let resp = c
        .post(format!("{}/_sim/faults", h.base_url))
        .json(&json!({"drop_after_apply": {"invitations_create": 1}}))
        .send()
        .await;
    assert_eq!(resp.map(|r| r.status().as_u16()).unwrap_or(0), 200);
    assert_eq!(
        h.faults().drop_after_apply.get("invitations_create"),
        Some(&1)
    );
    let inv = format!("{a}/shares/s1/invitations/i1");
    // A call the operation refuses (invalid body: nothing applied) uses up no drop.
    let bad = raw_http(&h, "PUT", &inv, r#"{"properties": {"targetEmail": 5}}"#).await;
    assert!(
        bad.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&bad)
    );
    let body = r#"{"properties": {"targetEmail": "bob@fabrikam.example"}}"#;
    let lost = raw_http(&h, "PUT", &inv, body).await;
    assert!(
        lost.is_empty(),
        "the connection must close with no answer, got: {}",
        String::from_utf8_lossy(&lost)
    );
    // A client sees a transport error, not a status.
    let r = c
        .put(url(&h, &format!("{a}/shares/s1/invitations/i2")))
        .bearer_auth("sim")
        .json(&json!({"properties": {"targetEmail": "carol@fabrikam.example"}}))
        .send()
        .await;
    assert!(r.is_ok(), "the drop was used up: i2 is answered normally");
    // The write was applied: the invitation exists.
    let g = call(&c, Some("sim"), "GET", &url(&h, &inv), None).await;
    assert_eq!(g.status, 200, "{}", g.body);
    assert_eq!(g.body["properties"]["targetEmail"], "bob@fabrikam.example");
    // Counted as served (a write and a call of the operation) and as dropped; logged `dropped`.
    let s = h.stats();
    assert_eq!(s.dropped, 1);
    let op = s
        .operations
        .get("Invitations_Create")
        .cloned()
        .unwrap_or_default();
    assert_eq!(op.calls, 3, "400 + dropped + i2: {op:?}");
    let log: Vec<(String, u16, String)> = h
        .requests()
        .into_iter()
        .filter(|e| e.operation == "Invitations_Create")
        .map(|e| (e.path, e.status, e.outcome))
        .collect();
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[0].2, "served");
    assert_eq!(
        (log[1].0.as_str(), log[1].1, log[1].2.as_str()),
        (inv.as_str(), 201, "dropped")
    );
    assert_eq!(log[2].2, "served");
    assert!(
        h.faults().drop_after_apply.is_empty(),
        "a count of 1 is used up"
    );
    // Through a real client: the next planned drop is a transport error after the write.
    h.set_faults(&FaultSettings {
        drop_after_apply: Some([("Shares_Create".to_string(), 1)].into_iter().collect()),
        ..FaultSettings::default()
    });
    let r = c
        .put(url(&h, &format!("{a}/shares/s2")))
        .bearer_auth("sim")
        .json(&json!({"properties": {}}))
        .send()
        .await;
    assert!(r.is_err(), "a dropped answer is a transport error: {r:?}");
    let g = call(
        &c,
        Some("sim"),
        "GET",
        &url(&h, &format!("{a}/shares/s2")),
        None,
    )
    .await;
    assert_eq!(g.status, 200);
    assert_eq!(h.stats().dropped, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn a_region_outage_fails_calls_for_that_region_only() {
    let h = start(SimOptions::default()).await;
    let c = client();
    let weu = acct("a-weu");
    let neu = acct("a-neu");
    account(&c, &h, "sim", &weu, "westeurope").await;
    account(&c, &h, "sim", &neu, "North Europe").await;
    let r = c
        .post(format!("{}/_sim/regions/westeurope/down", h.base_url))
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).unwrap_or(0), 200);
    let r = call(
        &c,
        Some("sim"),
        "GET",
        &url(&h, &format!("{weu}/shares")),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
    let r = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &acct("new-weu")),
        Some(json!({"location": "West Europe", "identity": {"type": "SystemAssigned"}})),
    )
    .await;
    assert_eq!(r.status, 503);
    let r = call(&c, Some("sim"), "GET", &url(&h, &neu), None).await;
    assert_eq!(r.status, 200);
    let r = call(
        &c,
        Some("sim"),
        "GET",
        &url(
            &h,
            &format!("/subscriptions/{SUB}/providers/Microsoft.DataShare/accounts"),
        ),
        None,
    )
    .await;
    let names: Vec<&str> = r.body["value"]
        .as_array()
        .map(|v| v.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["a-neu"]);
    assert!(h.stats().region_down >= 2);
    h.region_up("westeurope");
    let r = call(&c, Some("sim"), "GET", &url(&h, &weu), None).await;
    assert_eq!(r.status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn a_consumer_accepts_an_invitation_and_both_sides_see_it() {
    let h = start(SimOptions {
        lro_delay_ms: 10,
        ..SimOptions::default()
    })
    .await;
    let c = client();
    let prov = acct("prov");
    account(&c, &h, "sim", &prov, "westeurope").await;
    let share = format!("{prov}/shares/sales");
    put_ok(
        &c,
        &h,
        "sim",
        &share,
        json!({"properties": {"description": "d", "terms": "t"}}),
    )
    .await;
    put_ok(
        &c,
        &h,
        "sim",
        &storage(SUB, "rg-data", "blob1"),
        json!({"location": "westeurope"}),
    )
    .await;
    put_ok(
        &c,
        &h,
        "sim",
        &format!("{share}/dataSets/d1"),
        json!({"kind": "Blob", "properties": {"containerName": "c", "filePath": "f",
        "subscriptionId": SUB, "resourceGroup": "rg-data", "storageAccountName": "blob1"}}),
    )
    .await;
    put_ok(&c, &h, "sim", &format!("{share}/synchronizationSettings/daily"), json!({"kind": "ScheduleBased",
        "properties": {"recurrenceInterval": "Day", "synchronizationTime": "2024-01-01T02:00:00Z"}})).await;
    let alice = "sim:alice@fabrikam.example";
    let inv = put_ok(
        &c,
        &h,
        "sim",
        &format!("{share}/invitations/alice"),
        json!({"properties": {"targetEmail": "alice@fabrikam.example"}}),
    )
    .await;
    assert_eq!(inv["properties"]["invitationStatus"], "Pending");
    let inv_id = inv["properties"]["invitationId"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // The consumer sees it; another principal does not.
    let r = call(
        &c,
        Some(alice),
        "GET",
        &url(&h, "/providers/Microsoft.DataShare/listInvitations"),
        None,
    )
    .await;
    assert_eq!(
        r.body["value"][0]["properties"]["invitationId"],
        inv_id.as_str(),
        "{}",
        r.body
    );
    let r = call(
        &c,
        Some("sim:bob@other.example"),
        "GET",
        &url(&h, "/providers/Microsoft.DataShare/listInvitations"),
        None,
    )
    .await;
    assert_eq!(r.body["value"].as_array().map(Vec::len), Some(0));
    let csub = "6a1c1d9e-0000-4000-8000-00000000c001";
    let cacct = format!(
        "/subscriptions/{csub}/resourceGroups/rg-c/providers/Microsoft.DataShare/accounts/alice"
    );
    account(&c, &h, alice, &cacct, "westeurope").await;
    // The provider's identity cannot act in the consumer's subscription... but the admin can.
    let r = call(
        &c,
        Some("sim:mallory@contoso2.example"),
        "GET",
        &url(&h, &cacct),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("AuthorizationFailed"))
    );
    let ss = format!("{cacct}/shareSubscriptions/sales");
    let r = call(
        &c,
        Some(alice),
        "PUT",
        &url(&h, &ss),
        Some(json!({"properties": {"invitationId": inv_id, "sourceShareLocation": "eastus"}})),
    )
    .await;
    assert_eq!(r.body["error"]["code"], "InvalidSourceShareLocation");
    let s = put_ok(
        &c,
        &h,
        alice,
        &ss,
        json!({"properties": {"invitationId": inv_id, "sourceShareLocation": "westeurope"}}),
    )
    .await;
    assert_eq!(s["properties"]["shareSubscriptionStatus"], "Active");
    assert_eq!(s["properties"]["shareName"], "sales");
    let inv = call(
        &c,
        Some("sim"),
        "GET",
        &url(&h, &format!("{share}/invitations/alice")),
        None,
    )
    .await;
    assert_eq!(inv.body["properties"]["invitationStatus"], "Accepted");
    let ps = call(
        &c,
        Some("sim"),
        "GET",
        &url(&h, &format!("{share}/providerShareSubscriptions")),
        None,
    )
    .await;
    let p0 = ps.body["value"][0].clone();
    // Azure (recordings): keyed by shareSubscriptionObjectId, named after the consumer's share
    // subscription.
    assert_eq!(p0["name"], ss.rsplit('/').next().unwrap_or(""));
    let obj = p0["properties"]["shareSubscriptionObjectId"]
        .as_str()
        .unwrap_or("");
    assert!(
        p0["id"]
            .as_str()
            .unwrap_or("")
            .ends_with(&format!("/shareSubscriptions/{obj}")),
        "{p0}"
    );
    assert_ne!(obj, inv_id.as_str());
    let by_obj = call(
        &c,
        Some("sim"),
        "GET",
        &url(&h, &format!("{share}/providerShareSubscriptions/{obj}")),
        None,
    )
    .await;
    assert_eq!(by_obj.status, 200, "{}", by_obj.body);
    assert_eq!(p0["properties"]["consumerEmail"], "alice@fabrikam.example");
    // Synchronize (LRO) creates history that both sides list.
    let r = call(
        &c,
        Some(alice),
        "POST",
        &url(&h, &format!("{ss}/synchronize")),
        Some(json!({"synchronizationMode": "FullSync"})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let done = wait_async(
        &c,
        alice,
        &header(&r, "azure-asyncoperation").unwrap_or_default(),
    )
    .await;
    assert_eq!(done["status"], "Succeeded");
    assert!(done["synchronizationId"].is_string());
    let hist = call(
        &c,
        Some("sim"),
        "POST",
        &url(&h, &format!("{share}/listSynchronizations")),
        None,
    )
    .await;
    assert_eq!(
        hist.body["value"][0]["consumerEmail"], "alice@fabrikam.example",
        "{}",
        hist.body
    );
    assert_eq!(hist.body["value"][0]["status"], "Succeeded");
    // Mappings must name a source data set id.
    let src = call(
        &c,
        Some(alice),
        "GET",
        &url(&h, &format!("{ss}/consumerSourceDataSets")),
        None,
    )
    .await;
    let ds_id = src.body["value"][0]["properties"]["dataSetId"]
        .as_str()
        .unwrap_or("")
        .to_string();
    put_ok(
        &c,
        &h,
        alice,
        &storage(csub, "rg-c", "sink1"),
        json!({"location": "westeurope"}),
    )
    .await;
    let map = |id: &str| {
        json!({"kind": "Blob", "properties": {"dataSetId": id, "containerName": "in", "filePath": "x.csv",
        "subscriptionId": csub, "resourceGroup": "rg-c", "storageAccountName": "sink1"}})
    };
    let r = call(
        &c,
        Some(alice),
        "PUT",
        &url(&h, &format!("{ss}/dataSetMappings/m1")),
        Some(map("00000000-0000-0000-0000-000000000000")),
    )
    .await;
    assert_eq!(r.body["error"]["code"], "InvalidDataSetId");
    let m = put_ok(
        &c,
        &h,
        alice,
        &format!("{ss}/dataSetMappings/m1"),
        map(&ds_id),
    )
    .await;
    assert_eq!(m["properties"]["dataSetMappingStatus"], "Ok");
    let t = call(&c, Some(alice), "PUT", &url(&h, &format!("{ss}/triggers/t1")), Some(json!({"kind": "ScheduleBased",
        "properties": {"recurrenceInterval": "Day", "synchronizationTime": "2024-01-01T02:00:00Z"}}))).await;
    assert_eq!(t.status, 201);
    // Azure (recordings): created `Creating` / `Inactive`, no LRO headers; GET until provisioned.
    assert!(header(&t, "azure-asyncoperation").is_none());
    assert_eq!(
        (
            t.body["properties"]["provisioningState"].as_str(),
            t.body["properties"]["triggerStatus"].as_str()
        ),
        (Some("Creating"), Some("Inactive"))
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let g = call(
            &c,
            Some(alice),
            "GET",
            &url(&h, &format!("{ss}/triggers/t1")),
            None,
        )
        .await;
        if g.body["properties"]["provisioningState"] == "Succeeded" {
            assert_eq!(g.body["properties"]["triggerStatus"], "Active");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "trigger never provisioned: {}",
            g.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Revoke (LRO) → Revoked on both sides; reinstate; adjust.
    let pss = format!("{share}/providerShareSubscriptions/{obj}");
    let r = call(
        &c,
        Some("sim"),
        "POST",
        &url(&h, &format!("{pss}/revoke")),
        None,
    )
    .await;
    assert_eq!(
        (
            r.status,
            r.body["properties"]["shareSubscriptionStatus"].as_str()
        ),
        (202, Some("Revoking"))
    );
    let fin = wait_async(
        &c,
        "sim",
        &header(&r, "azure-asyncoperation").unwrap_or_default(),
    )
    .await;
    assert_eq!(fin["properties"]["shareSubscriptionStatus"], "Revoked");
    let s = call(&c, Some(alice), "GET", &url(&h, &ss), None).await;
    assert_eq!(s.body["properties"]["shareSubscriptionStatus"], "Revoked");
    let r = call(
        &c,
        Some(alice),
        "POST",
        &url(&h, &format!("{ss}/synchronize")),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 409);
    let r = call(
        &c,
        Some("sim"),
        "POST",
        &url(&h, &format!("{pss}/reinstate")),
        Some(json!({"properties": {}})),
    )
    .await;
    assert_eq!(
        r.body["properties"]["shareSubscriptionStatus"], "Active",
        "{}",
        r.body
    );
    let r = call(
        &c,
        Some("sim"),
        "POST",
        &url(&h, &format!("{pss}/adjust")),
        Some(json!({"properties": {"expirationDate": "2030-01-01T00:00:00Z"}})),
    )
    .await;
    assert_eq!(
        r.body["properties"]["expirationDate"],
        "2030-01-01T00:00:00Z"
    );
    let s = call(&c, Some(alice), "GET", &url(&h, &ss), None).await;
    assert_eq!(
        s.body["properties"]["expirationDate"],
        "2030-01-01T00:00:00Z"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn role_assignments_are_listed_at_a_scope_filtered_by_principal() {
    let h = start(SimOptions::default()).await;
    let c = client();
    let st = storage(SUB, "rg-data", "blob1");
    put_ok(&c, &h, "sim", &st, json!({"location": "northeurope"})).await;
    let reader =
        "/providers/Microsoft.Authorization/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
    let ra = |n: &str| format!("{st}/providers/Microsoft.Authorization/roleAssignments/{n}");
    let p1 = "11111111-1111-4111-8111-111111111111";
    let r = put_ok(
        &c,
        &h,
        "sim",
        &ra("0a0a0a0a-0000-4000-8000-000000000001"),
        json!({"properties": {"roleDefinitionId": reader, "principalId": p1}}),
    )
    .await;
    assert_eq!(r["properties"]["scope"], st);
    let dup = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &ra("0a0a0a0a-0000-4000-8000-000000000002")),
        Some(json!({"properties": {"roleDefinitionId": reader, "principalId": p1}})),
    )
    .await;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].as_str()),
        (409, Some("RoleAssignmentExists"))
    );
    put_ok(&c, &h, "sim", &format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/0a0a0a0a-0000-4000-8000-000000000003"),
        json!({"properties": {"roleDefinitionId": reader, "principalId": "22222222-2222-4222-8222-222222222222"}})).await;
    let list = |f: &str| {
        format!(
            "{}{st}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter={}",
            h.base_url,
            urlenc(f)
        )
    };
    let r = call(
        &c,
        Some("sim"),
        "GET",
        &list(&format!("principalId eq '{p1}'")),
        None,
    )
    .await;
    assert_eq!(
        r.body["value"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.body
    );
    let r = call(&c, Some("sim"), "GET", &list("atScope()"), None).await;
    assert_eq!(
        r.body["value"].as_array().map(Vec::len),
        Some(2),
        "inherited from the subscription: {}",
        r.body
    );
    let r = call(&c, Some("sim"), "GET", &url(&h, &st), None).await;
    assert_eq!(r.body["location"], "northeurope");
    let r = call(&c, Some("sim"), "DELETE", &url(&h, &st), None).await;
    assert_eq!(r.status, 200);
    let r = call(
        &c,
        Some("sim"),
        "GET",
        &list(&format!("principalId eq '{p1}'")),
        None,
    )
    .await;
    assert_eq!(
        r.body["value"].as_array().map(Vec::len),
        Some(0),
        "deleting the store removes its assignments"
    );
    h.shutdown().await;
}

fn urlenc(s: &str) -> String {
    s.replace(' ', "%20").replace('\'', "%27")
}

#[tokio::test]
async fn the_control_api_reports_stats_and_the_request_log_and_resets_state() {
    let h = start(SimOptions::default()).await;
    let c = client();
    account(&c, &h, "sim", &acct("a1"), "westeurope").await;
    call(&c, Some("sim"), "GET", &url(&h, &acct("a1")), None).await;
    call(&c, Some("sim"), "DELETE", &url(&h, &acct("a1")), None).await;
    let s: Value = match c.get(format!("{}/_sim/stats", h.base_url)).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        (
            s["reads"].as_u64(),
            s["writes"].as_u64(),
            s["deletes"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(s["operations"]["Accounts_Create"]["calls"], 1);
    let log: Value = match c
        .get(format!("{}/_sim/requests?since=1", h.base_url))
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(e) => panic!("{e}"),
    };
    let ops: Vec<&str> = log["requests"]
        .as_array()
        .map(|v| v.iter().filter_map(|e| e["operation"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ops, vec!["Accounts_Get", "Accounts_Delete"]);
    let r = c
        .post(format!("{}/_sim/reset?state=true", h.base_url))
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).unwrap_or(0), 200);
    assert_eq!(h.stats().reads, 0);
    assert_eq!(h.resource_count(), 0);
    h.shutdown().await;
}

// ------------------------------------------------ options for what recordings cannot show

const READER_ROLE: &str =
    "/providers/Microsoft.Authorization/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";

/// A provider account (its identity's principal id), a share of `share_kind`, a storage account.
async fn store_setup(c: &reqwest::Client, h: &SimHandle, share_kind: &str) -> (String, String) {
    let a = acct("acct1");
    let acc = account(c, h, "sim", &a, "westeurope").await;
    let pid = acc["identity"]["principalId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(pid.len(), 36, "the account has a managed identity: {acc}");
    put_ok(
        c,
        h,
        "sim",
        &format!("{a}/shares/s1"),
        json!({"properties": {"shareKind": share_kind}}),
    )
    .await;
    put_ok(
        c,
        h,
        "sim",
        &storage(SUB, "rg-data", "blob1"),
        json!({"location": "westeurope"}),
    )
    .await;
    (a, pid)
}

fn container_ds() -> Value {
    json!({"kind": "Container", "properties": {"containerName": "c1", "subscriptionId": SUB, "resourceGroup": "rg-data", "storageAccountName": "blob1"}})
}

async fn grant_reader(c: &reqwest::Client, h: &SimHandle, pid: &str) {
    let st = storage(SUB, "rg-data", "blob1");
    put_ok(
        c,
        h,
        "sim",
        &format!("{st}/providers/Microsoft.Authorization/roleAssignments/0b0b0b0b-0000-4000-8000-000000000001"),
        json!({"properties": {"roleDefinitionId": READER_ROLE, "principalId": pid}}),
    )
    .await;
}

#[tokio::test]
async fn store_data_roles_require_the_account_identity_to_hold_a_data_role_on_the_store() {
    let h = start(SimOptions::default()).await;
    let c = client();
    let (a, pid) = store_setup(&c, &h, "CopyBased").await;
    let ds = format!("{a}/shares/s1/dataSets/d1");
    // off by default: Azure-shaped success without any role
    let r = call(&c, Some("sim"), "PUT", &url(&h, &ds), Some(container_ds())).await;
    assert_eq!(r.status, 201, "off by default: {}", r.body);
    let r = call(&c, Some("sim"), "DELETE", &url(&h, &ds), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // switched on through the control API, like the other options
    let r = c
        .post(format!("{}/_sim/faults", h.base_url))
        .json(&json!({"store_data_roles": true}))
        .send()
        .await
        .expect("POST /_sim/faults");
    assert_eq!(r.status().as_u16(), 200);
    assert!(h.faults().store_data_roles);
    let r = call(&c, Some("sim"), "PUT", &url(&h, &ds), Some(container_ds())).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("AuthorizationFailed")),
        "{}",
        r.body
    );
    let msg = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&pid) && msg.contains("blob1") && msg.contains("Storage Blob Data Reader"),
        "names the identity, the store and the role to assign: {msg}"
    );
    // a role of another principal does not count; the identity's own does
    let st = storage(SUB, "rg-data", "blob1");
    put_ok(&c, &h, "sim", &format!("{st}/providers/Microsoft.Authorization/roleAssignments/0b0b0b0b-0000-4000-8000-000000000009"),
        json!({"properties": {"roleDefinitionId": READER_ROLE, "principalId": "33333333-3333-4333-8333-333333333333"}})).await;
    let r = call(&c, Some("sim"), "PUT", &url(&h, &ds), Some(container_ds())).await;
    assert_eq!(r.status, 403, "another principal's role: {}", r.body);
    grant_reader(&c, &h, &pid).await;
    let r = call(&c, Some("sim"), "PUT", &url(&h, &ds), Some(container_ds())).await;
    assert_eq!(r.status, 201, "with the role: {}", r.body);
    h.shutdown().await;
}

#[tokio::test]
async fn share_kind_rules_refuse_a_data_set_kind_the_share_kind_does_not_take() {
    let h = start(SimOptions {
        share_kind_rules: true,
        ..SimOptions::default()
    })
    .await;
    let c = client();
    let (a, _) = store_setup(&c, &h, "InPlace").await;
    put_ok(
        &c,
        &h,
        "sim",
        &format!("{a}/shares/s2"),
        json!({"properties": {"shareKind": "CopyBased"}}),
    )
    .await;
    let kc = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Kusto/clusters/adx1"
    );
    put_ok(&c, &h, "sim", &kc, json!({"location": "westeurope"})).await;
    let kusto = json!({"kind": "KustoCluster", "properties": {"kustoClusterResourceId": kc}});
    // blob into InPlace: 400 with an ARM error body
    let r = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &format!("{a}/shares/s1/dataSets/d1")),
        Some(container_ds()),
    )
    .await;
    assert_eq!(
        (
            r.status,
            r.body["error"]["code"].as_str(),
            r.body["error"]["target"].as_str()
        ),
        (400, Some("InvalidDataSetKind"), Some("kind")),
        "{}",
        r.body
    );
    let msg = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("Container") && msg.contains("InPlace"),
        "{msg}"
    );
    // Kusto into CopyBased: 400
    let r = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &format!("{a}/shares/s2/dataSets/k1")),
        Some(kusto.clone()),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("InvalidDataSetKind")),
        "{}",
        r.body
    );
    // the fitting combinations are accepted
    let r = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &format!("{a}/shares/s1/dataSets/k1")),
        Some(kusto),
    )
    .await;
    assert_eq!(r.status, 201, "Kusto into InPlace: {}", r.body);
    let r = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &format!("{a}/shares/s2/dataSets/d1")),
        Some(container_ds()),
    )
    .await;
    assert_eq!(r.status, 201, "blob into CopyBased: {}", r.body);
    // switched off at run time: no check
    h.set_faults(&FaultSettings {
        share_kind_rules: Some(false),
        ..FaultSettings::default()
    });
    let r = call(
        &c,
        Some("sim"),
        "PUT",
        &url(&h, &format!("{a}/shares/s1/dataSets/d2")),
        Some(container_ds()),
    )
    .await;
    assert_eq!(r.status, 201, "off: {}", r.body);
    h.shutdown().await;
}

#[tokio::test]
async fn a_role_assignment_takes_effect_only_after_the_propagation_delay() {
    let h = start(SimOptions::default()).await;
    let c = client();
    let (a, pid) = store_setup(&c, &h, "CopyBased").await;
    let r = c
        .post(format!("{}/_sim/faults", h.base_url))
        .json(&json!({"role_propagation_ms": 600}))
        .send()
        .await
        .expect("POST /_sim/faults");
    assert_eq!(r.status().as_u16(), 200);
    grant_reader(&c, &h, &pid).await;
    let granted = Instant::now();
    let ds = format!("{a}/shares/s1/dataSets/d1");
    let r = call(&c, Some("sim"), "PUT", &url(&h, &ds), Some(container_ds())).await;
    assert!(
        granted.elapsed() < Duration::from_millis(600),
        "test too slow to judge"
    );
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("AuthorizationFailed")),
        "within the delay: {}",
        r.body
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not taken effect yet")),
        "{}",
        r.body
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = call(&c, Some("sim"), "PUT", &url(&h, &ds), Some(container_ds())).await;
    assert_eq!(r.status, 201, "after the delay: {}", r.body);
    h.shutdown().await;
}
