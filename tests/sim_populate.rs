//! Generated estate and DR config: the estate is what it claims over HTTP, the config is the
//! docs/config.md schema (parsed with `toml` and loaded by the project's config loader), and the
//! `sim` CLI prints its listening line first and serves until terminated.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use datashare_dr::sim::{self, PopulateSpec, SimOptions};
use serde_json::Value;

async fn get(c: &reqwest::Client, token: &str, url: &str) -> (u16, Value) {
    match c.get(url).bearer_auth(token).send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(Value::Null))
        }
        Err(e) => panic!("GET {url}: {e}"),
    }
}

async fn list_all(c: &reqwest::Client, token: &str, url: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(url.to_string());
    let mut pages = 0;
    while let Some(u) = next.take() {
        let (s, b) = get(c, token, &u).await;
        assert_eq!(s, 200, "{u}: {b}");
        out.extend(b["value"].as_array().cloned().unwrap_or_default());
        next = b["nextLink"].as_str().map(str::to_string);
        pages += 1;
        assert!(pages < 1000);
    }
    out
}

#[tokio::test]
async fn a_generated_estate_is_served_and_described_by_a_loadable_config() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let h = match sim::spawn(SimOptions::default()).await {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    };
    let spec = PopulateSpec {
        shares: 6,
        datasets: 4,
        consumers: 2,
        seed: 42,
    };
    let est = match h.populate(&spec) {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    };
    // Deterministic for a seed.
    let h2 = match sim::spawn(SimOptions::default()).await {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    };
    let est2 = h2.populate(&spec).ok();
    assert_eq!(
        est2.as_ref()
            .map(|e| (&e.primary, &e.secondary, &e.consumers)),
        Some((&est.primary, &est.secondary, &est.consumers))
    );
    h2.shutdown().await;

    let c = reqwest::Client::new();
    let v = "api-version=2021-08-01";
    let shares = list_all(
        &c,
        "sim",
        &format!("{}{}/shares?{v}", h.base_url, est.primary.id),
    )
    .await;
    assert_eq!(shares.len(), 6);
    let kinds: std::collections::BTreeSet<String> = {
        let mut k = std::collections::BTreeSet::new();
        for s in &shares {
            let name = s["name"].as_str().unwrap_or("");
            for d in list_all(
                &c,
                "sim",
                &format!(
                    "{}{}/shares/{name}/dataSets?{v}",
                    h.base_url, est.primary.id
                ),
            )
            .await
            {
                k.insert(d["kind"].as_str().unwrap_or("").to_string());
            }
        }
        k
    };
    for kind in ["Blob", "SqlDBTable", "KustoDatabase", "AdlsGen2Folder"] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }
    let share0 = format!("{}{}/shares/share-000", h.base_url, est.primary.id);
    let subs = list_all(
        &c,
        "sim",
        &format!("{share0}/providerShareSubscriptions?{v}"),
    )
    .await;
    assert_eq!(subs.len(), 2);
    assert!(
        subs.iter()
            .all(|s| s["properties"]["shareSubscriptionStatus"] == "Active")
    );
    let hist = match c
        .post(format!("{share0}/listSynchronizations?{v}"))
        .bearer_auth("sim")
        .send()
        .await
    {
        Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
        Err(e) => panic!("{e}"),
    };
    assert!(
        hist["value"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["status"] == "Succeeded")),
        "{hist}"
    );
    // Secondary exists, is empty, and its identity reads the secondary stores.
    let sec = list_all(
        &c,
        "sim",
        &format!("{}{}/shares?{v}", h.base_url, est.secondary.id),
    )
    .await;
    assert!(sec.is_empty());
    for s in &est.stores {
        let (st, b) = get(
            &c,
            "sim",
            &format!("{}{}?api-version=2023-01-01", h.base_url, s.secondary),
        )
        .await;
        assert_eq!(
            (st, b["location"].as_str()),
            (200, Some("northeurope")),
            "{}",
            s.secondary
        );
        let ra = list_all(&c, "sim", &format!("{}{}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20%27{}%27",
            h.base_url, s.secondary, est.secondary.principal_id)).await;
        assert_eq!(ra.len(), 1, "role on {}", s.secondary);
    }
    // Consumers act with their own token on their own account.
    let cons = &est.consumers[0];
    let (st, _) = get(
        &c,
        &cons.token,
        &format!("{}{}?{v}", h.base_url, cons.share_subscriptions[0]),
    )
    .await;
    assert_eq!(st, 200);

    // The DR config.
    let text = sim::write_config(&est, &h.base_url);
    let doc: toml::Table = match toml::from_str(&text) {
        Ok(t) => t,
        Err(e) => panic!("{e}\n{text}"),
    };
    assert_eq!(doc["arm"]["endpoint"].as_str(), Some(h.base_url.as_str()));
    assert_eq!(doc["arm"]["auth"].as_str(), Some("static-token"));
    assert_eq!(doc["arm"]["token"].as_str(), Some("sim"));
    let pair = &doc["pairs"][0];
    assert_eq!(pair["primary"].as_str(), Some(est.primary.id.as_str()));
    assert_eq!(pair["secondary"].as_str(), Some(est.secondary.id.as_str()));
    assert!(pair["stores"]["defaults"]["storage"]["replace"].is_array());
    assert_eq!(
        pair["stores"]["overrides"].as_array().map(Vec::len),
        Some(1)
    );
    assert!(
        doc["alerts"]["allowed_sources"]
            .as_array()
            .is_some_and(|a| a
                .iter()
                .any(|s| s.as_str().is_some_and(|s| s.contains(&est.subscription_id))))
    );
    assert!(
        pair["drill_recipients"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    // Replace rules map every rule-mapped primary store to its secondary.
    for s in est.stores.iter().filter(|s| s.by_rule) {
        assert_eq!(
            s.primary
                .replace("rg-data-weu", "rg-data-neu")
                .replace("weu", "neu"),
            s.secondary
        );
    }
    // And the project's own loader accepts it.
    let loaded = datashare_dr::config::dr::DrConfig::from_toml_str(&text, "sim.toml");
    assert!(loaded.is_ok(), "{:?}\n{text}", loaded.err());
    let consumer = sim::write_consumer_config(&est, &h.base_url, 0).unwrap_or_default();
    let loaded = datashare_dr::config::dr::DrConfig::from_toml_str(&consumer, "consumer.toml");
    assert!(loaded.is_ok(), "{:?}\n{consumer}", loaded.err());
    h.shutdown().await;
}

#[test]
fn the_sim_command_prints_its_url_first_writes_a_config_and_stops_on_sigterm() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let cfg = dir.path().join("dr.toml");
    let mut child = match Command::new(env!("CARGO_BIN_EXE_datashare-dr"))
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--populate",
            "shares=2,datasets=2,consumers=1",
            "--seed",
            "3",
            "--write-config",
        ])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let ok_line = line.starts_with("listening on http://127.0.0.1:");
    let text = std::fs::read_to_string(&cfg).unwrap_or_default();
    let url = line.trim().trim_start_matches("listening on ").to_string();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let mut status = None;
    for _ in 0..100 {
        if let Ok(Some(s)) = child.try_wait() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if status.is_none() {
        let _ = child.kill();
    }
    assert!(ok_line, "first line: {line:?}");
    assert!(text.contains(&format!("endpoint = \"{url}\"")), "{text}");
    assert!(
        status.is_some_and(|s| s.success()),
        "did not stop cleanly on SIGTERM: {status:?}"
    );
    let refused = Command::new(env!("CARGO_BIN_EXE_datashare-dr"))
        .args(["sim", "--listen", "0.0.0.0:0"])
        .output();
    assert!(refused.is_ok_and(
        |o| !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("loopback")
    ));
}
