//! Fuzz target: the Azure Monitor alert parser and the decision must never panic; a refused
//! body names the field (or is not JSON at all), and the decision is deterministic for a fixed
//! clock.
#![no_main]

use std::sync::OnceLock;

use datashare_dr::config::dr::DrConfig;
use datashare_dr::failover::alert::{AlertParseError, decide, decide_at, parse_alert};
use libfuzzer_sys::fuzz_target;

fn config() -> Option<&'static DrConfig> {
    static CONFIG: OnceLock<Option<DrConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            DrConfig::from_toml_str(include_str!("../../examples/dr.toml"), "dr.toml").ok()
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    match parse_alert(data) {
        Ok(alert) => {
            let Some(c) = config() else {
                return;
            };
            let _ = decide(&alert, c);
            let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
            let a = decide_at(&alert, c, now);
            let b = decide_at(&alert, c, now);
            assert_eq!(a, b, "decide_at is not deterministic");
            let _ = a.to_string();
        }
        Err(AlertParseError::NotJson(_)) => {}
        Err(e) => {
            // "" is the document root: allowed only when the root itself is not an object.
            if e.field().is_empty() {
                let root: Result<serde_json::Value, _> = serde_json::from_slice(data);
                assert!(
                    !root.is_ok_and(|r| r.is_object()),
                    "a refusal of an object body without a field: {e}"
                );
            }
        }
    }
});
