//! Shared helpers for integration tests (each test crate includes this with `mod support;`).
#![allow(dead_code, unused_imports)]

pub mod alert_token;
pub mod app;
pub mod azurite;
pub mod azurite_restart;
pub mod estate;
pub mod host_emulator;
pub mod logs;
pub mod replay;
