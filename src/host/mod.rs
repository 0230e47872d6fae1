//! The Azure Functions custom-handler wire format (payload mode), and nothing else.
//!
//! Job: decode the host's invocation envelope (`{"Data": …, "Metadata": …}`) into typed triggers
//! ([`QueueTrigger`], [`TimerTrigger`], [`HttpRequest`]) and encode the handler's answer
//! ([`InvocationResponse`] with `Outputs`, `Logs`, `ReturnValue`). The rules come from
//! docs/reference/functions-custom-handler.md (§5, §6) and the captured payloads in
//! tests/fixtures/functions-payloads/.
//!
//! Invariants:
//! - Double-encoded values are unwrapped exactly once, here: a queue message arrives as a JSON
//!   string holding a JSON string literal; metadata strings starting with `"` get one extra parse;
//!   integers arrive as numbers or numeric strings. The documentation's idealised forms (plain
//!   message text, numeric `DequeueCount`, `"Query": "{}"`) decode too.
//! - Unknown fields are ignored; metadata keys are matched case-insensitively (the host's binding
//!   data dictionary is case-insensitive).
//! - Malformed input is a [`PayloadError`] naming the JSON path of the field (`Data.msg.stage`,
//!   `Metadata.DequeueCount`), never a panic.
//! - Secrets that the host passes through (`code` query parameter, `x-functions-key` header) are
//!   redacted from `Debug` output.
//!
//! `serde_json::Value` stays inside this module: domain code gets typed structs.
//! Must not import handlers, domain modules, or axum.

mod http;
mod identity;
mod queue;
mod request;
mod response;
mod timer;
mod wire;

pub use http::{HTTP_BODY_LIMIT, Headers, HttpRequest};
pub use identity::{
    AUTH_LEVEL_CLAIM, Caller, Claim, Identities, Identity, KEY_AUTHENTICATION_TYPE, KEY_ID_CLAIM,
};
pub use queue::{MessageText, QueueBody, QueueTrigger};
pub use request::{
    INVOCATION_ID_HEADER, InvocationRequest, PayloadError, Sys, Trigger, TriggerKind,
};
pub use response::{
    EncodeError, HTTP_RES, HttpOutput, InvocationResponse, OutputValue, Problem, QueueMessage,
};
pub use timer::{ScheduleStatus, TimerTrigger};
pub use wire::parse_host_datetime;
