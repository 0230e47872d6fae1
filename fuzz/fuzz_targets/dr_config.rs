//! Fuzz target: the DR config loader must never panic, and every error must carry a position.
#![no_main]

use datashare_dr::config::dr::DrConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = DrConfig::from_toml_str(text, "fuzz.toml") {
        for issue in e.issues() {
            assert!(issue.line >= 1 && issue.column >= 1, "{issue}");
        }
    }
});
