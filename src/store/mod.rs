//! Storage adapters: a blob store with ETag preconditions and a message queue with visibility
//! delays, each with two real implementations that behave the same way:
//!
//! - [`azure`]: Azure Storage through the official SDK crates (`azure_storage_blob`,
//!   `azure_storage_queue`). Production uses an Entra token (managed identity); local runs and
//!   tests use a connection string (Azurite or an account key), from which an **account SAS** is
//!   signed in-process because the SDK does not accept shared keys.
//! - [`memory`]: in-process twins for the offline CLI and `datashare-dr drill`, with the same
//!   semantics (ETags, create-if-absent, visibility delays, dequeue counts, pop receipts).
//!
//! Invariants every implementation keeps (the behavioural suite in `tests/store_contract.rs`
//! runs against both):
//! - `put` with [`Precondition::IfNoneMatchAny`] on an existing blob fails with
//!   [`StoreError::AlreadyExists`]; with [`Precondition::IfMatch`] on a changed or missing blob it
//!   fails with [`StoreError::PreconditionFailed`]. Nothing is written in either case.
//! - A received message is invisible until its visibility timeout lapses; each receive increments
//!   its dequeue count and issues a new pop receipt; `delete`/`update_visibility` need the latest.
//! - `send` creates a missing queue first (as the Functions host does for output bindings).
//! - Secrets (account keys, SAS signatures) never appear in `Debug`, `Display` or errors.
//!
//! This module must not import anything else of this crate (it sits at the bottom of the
//! dependency graph, beside `arm`).

pub mod azure;
pub mod memory;
mod sas;
pub mod settings;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

pub use azure::{AzureBlobStore, AzureQueue};
pub use memory::{MemoryBlobStore, MemoryQueue};
pub use settings::{AccountKey, StorageSettings};

/// Blob container used by the app (runs, locks, alert dedup, reports, state).
pub const CONTAINER: &str = "datashare-dr";
/// Queue of failover stage messages (trigger of `FailoverStage`).
pub const STAGE_QUEUE: &str = "failover-stages";
/// Poison queue of [`STAGE_QUEUE`] (trigger of `FailoverPoison`).
pub const STAGE_POISON_QUEUE: &str = "failover-stages-poison";
/// Queue of readiness / run notifications.
pub const NOTIFICATIONS_QUEUE: &str = "notifications";
/// Queue of per-pair replicate continuations (`ReplicatePair`; see `reconcile::job`).
pub const REPLICATE_PAIRS_QUEUE: &str = "replicate-pairs";

/// A boxed, sendable future (the trait methods return these so the traits stay object-safe).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// An entity tag identifying one version of a blob. Kept verbatim (Azure includes the quotes).
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ETag(String);

impl ETag {
    /// Wraps an ETag value as returned by the service, in its quoted form (blob listings give
    /// it unquoted, response headers quoted; both name the same version).
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        let trimmed = value.trim();
        if trimmed.starts_with('"') || trimmed.starts_with("W/") {
            Self(trimmed.to_owned())
        } else {
            Self(format!("\"{trimmed}\""))
        }
    }
    /// The raw value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ETag({})", self.0)
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A blob's content together with the ETag of exactly that content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub bytes: Vec<u8>,
    pub etag: ETag,
}

/// Condition a `put` must satisfy to be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Write unconditionally (create or overwrite).
    None,
    /// Overwrite only if the current version has this ETag ([`StoreError::PreconditionFailed`]
    /// otherwise, also when the blob does not exist).
    IfMatch(ETag),
    /// Create only if no blob exists at the path ([`StoreError::AlreadyExists`] otherwise).
    IfNoneMatchAny,
}

/// One entry of a blob listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobEntry {
    /// Path inside the container (e.g. `runs/abc.json`).
    pub path: String,
    pub etag: ETag,
    pub len: u64,
}

/// A message taken from a queue by [`Queue::receive`] (now invisible to other receivers).
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub id: String,
    /// Needed to delete the message or change its visibility; replaced on every receive/update.
    pub pop_receipt: String,
    /// 1 on the first delivery, incremented by every receive.
    pub dequeue_count: u32,
    pub insertion_time: OffsetDateTime,
    pub expiration_time: OffsetDateTime,
    pub next_visible_time: OffsetDateTime,
    /// The message text after decoding (see [`MessageEncoding`]). When `decoding_failed` is set,
    /// this is the raw stored text instead.
    pub text: String,
    /// The stored text was not valid under the queue's [`MessageEncoding`] (the Functions host
    /// sends such messages straight to the poison queue).
    pub decoding_failed: bool,
}

impl fmt::Debug for ReceivedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedMessage")
            .field("id", &self.id)
            .field("dequeue_count", &self.dequeue_count)
            .field("insertion_time", &self.insertion_time)
            .field("next_visible_time", &self.next_visible_time)
            .field("text_len", &self.text.len())
            .field("decoding_failed", &self.decoding_failed)
            .finish_non_exhaustive()
    }
}

/// How message text is stored on the queue; must equal host.json
/// `extensions.queues.messageEncoding` so the Functions host and this code agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MessageEncoding {
    /// Stored as-is (`"none"`).
    #[default]
    None,
    /// Stored as base64 of the UTF-8 text (`"base64"`, the host's default).
    Base64,
}

impl MessageEncoding {
    /// Parses the host.json value (`none` / `base64`, case-insensitive).
    pub fn parse(value: &str) -> Result<Self, StoreError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "base64" => Ok(Self::Base64),
            other => Err(StoreError::InvalidSettings {
                key: "extensions.queues.messageEncoding".into(),
                reason: format!("expected \"none\" or \"base64\", got {other:?}"),
            }),
        }
    }

    /// Reads `extensions.queues.messageEncoding` from a host.json text. A missing key means the
    /// host's default, `base64`.
    pub fn from_host_json(host_json: &str) -> Result<Self, StoreError> {
        let doc: serde_json::Value =
            serde_json::from_str(host_json).map_err(|e| StoreError::InvalidSettings {
                key: "host.json".into(),
                reason: format!("not valid JSON: {e}"),
            })?;
        match doc
            .pointer("/extensions/queues/messageEncoding")
            .and_then(|v| v.as_str())
        {
            Some(v) => Self::parse(v),
            None => Ok(Self::Base64),
        }
    }

    /// The text stored on the queue for `text`.
    pub fn encode(self, text: &str) -> String {
        match self {
            Self::None => text.to_owned(),
            Self::Base64 => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
            }
        }
    }

    /// The message text for stored text; `None` when it is not valid under this encoding.
    pub fn decode(self, stored: &str) -> Option<String> {
        match self {
            Self::None => Some(stored.to_owned()),
            Self::Base64 => {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(stored.trim())
                    .ok()?;
                String::from_utf8(bytes).ok()
            }
        }
    }
}

/// A failure reported by the storage service or the transport, with secrets (SAS signatures)
/// already redacted. Used as the `#[source]` of [`StoreError`] variants.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    /// HTTP status, when the service answered.
    pub status: Option<u16>,
    /// Storage error code (e.g. `ConditionNotMet`), when the service sent one.
    pub code: Option<String>,
    /// Redacted description of the failure and its causes.
    pub message: String,
    /// Whether retrying the same call later may succeed (timeouts, 408/429/5xx, connection).
    pub transient: bool,
}

/// Errors of the storage layer. Variants are named after the failed operation and carry the
/// resource (container path, queue, message id).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid storage setting {key}: {reason}")]
    InvalidSettings { key: String, reason: String },
    #[error("could not build the storage client for {endpoint}")]
    BuildClient {
        endpoint: String,
        #[source]
        source: RemoteError,
    },
    #[error("blob {path} was changed or removed since it was read (ETag precondition failed)")]
    PreconditionFailed { path: String },
    #[error("blob {path} already exists")]
    AlreadyExists { path: String },
    #[error("{resource} does not exist")]
    NotFound { resource: String },
    #[error("could not create container {container}")]
    EnsureContainer {
        container: String,
        #[source]
        source: RemoteError,
    },
    #[error("could not read blob {path}")]
    GetBlob {
        path: String,
        #[source]
        source: RemoteError,
    },
    #[error("could not write blob {path}")]
    PutBlob {
        path: String,
        #[source]
        source: RemoteError,
    },
    #[error("could not list blobs under {prefix:?}")]
    ListBlobs {
        prefix: String,
        #[source]
        source: RemoteError,
    },
    #[error("could not delete blob {path}")]
    DeleteBlob {
        path: String,
        #[source]
        source: RemoteError,
    },
    #[error("could not create queue {queue}")]
    EnsureQueue {
        queue: String,
        #[source]
        source: RemoteError,
    },
    #[error("could not send a message to queue {queue}")]
    SendMessage {
        queue: String,
        #[source]
        source: RemoteError,
    },
    #[error("could not receive messages from queue {queue}")]
    ReceiveMessages {
        queue: String,
        #[source]
        source: RemoteError,
    },
    #[error("could not delete message {id} from queue {queue}")]
    DeleteMessage {
        queue: String,
        id: String,
        #[source]
        source: RemoteError,
    },
    #[error("could not update the visibility of message {id} in queue {queue}")]
    UpdateVisibility {
        queue: String,
        id: String,
        #[source]
        source: RemoteError,
    },
    #[error("blob {path} does not hold the expected JSON document")]
    DecodeBlob {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("could not serialise the document for blob {path}")]
    EncodeBlob {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("blob {path} kept changing: gave up after {attempts} conflicting updates")]
    UpdateConflict { path: String, attempts: u32 },
}

impl StoreError {
    /// Whether the same call may succeed if retried later (the caller — e.g. a queue stage —
    /// should then answer non-2xx so the host retries). Precondition failures, existing blobs,
    /// missing resources and bad settings are not transient: retrying changes nothing.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::EnsureContainer { source, .. }
            | Self::GetBlob { source, .. }
            | Self::PutBlob { source, .. }
            | Self::ListBlobs { source, .. }
            | Self::DeleteBlob { source, .. }
            | Self::EnsureQueue { source, .. }
            | Self::SendMessage { source, .. }
            | Self::ReceiveMessages { source, .. }
            | Self::DeleteMessage { source, .. }
            | Self::UpdateVisibility { source, .. } => source.transient,
            Self::UpdateConflict { .. } => true,
            Self::InvalidSettings { .. }
            | Self::BuildClient { .. }
            | Self::PreconditionFailed { .. }
            | Self::AlreadyExists { .. }
            | Self::NotFound { .. }
            | Self::DecodeBlob { .. }
            | Self::EncodeBlob { .. } => false,
        }
    }
}

/// A blob container holding small JSON documents, with optimistic concurrency through ETags.
pub trait BlobStore: Send + Sync {
    /// Creates the container if it does not exist (idempotent).
    fn ensure_container(&self) -> StoreFuture<'_, ()>;
    /// Reads a blob; `None` if it does not exist.
    fn get<'a>(&'a self, path: &'a str) -> StoreFuture<'a, Option<Versioned>>;
    /// Writes a blob under a precondition; returns the ETag of the written version.
    fn put<'a>(
        &'a self,
        path: &'a str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> StoreFuture<'a, ETag>;
    /// Lists the blobs whose path starts with `prefix`, sorted by path.
    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<BlobEntry>>;
    /// Deletes a blob (only the version `if_match` names, when given). Returns whether a blob was
    /// deleted; a missing blob is `Ok(false)`; a different version is `PreconditionFailed`.
    fn delete<'a>(&'a self, path: &'a str, if_match: Option<&'a ETag>) -> StoreFuture<'a, bool>;
}

/// A message queue service (several named queues), with the semantics of Azure Storage queues.
pub trait Queue: Send + Sync {
    /// Creates the queue if it does not exist (idempotent).
    fn ensure_queue<'a>(&'a self, queue: &'a str) -> StoreFuture<'a, ()>;
    /// Enqueues `text`; with a delay the message stays invisible that long (whole seconds,
    /// rounded up; at most 7 days). Creates a missing queue. Returns the message id.
    fn send<'a>(
        &'a self,
        queue: &'a str,
        text: &'a str,
        visibility_delay: Option<Duration>,
    ) -> StoreFuture<'a, String>;
    /// Takes up to `max` (1..=32) visible messages and hides them for `visibility_timeout`.
    fn receive<'a>(
        &'a self,
        queue: &'a str,
        max: u32,
        visibility_timeout: Duration,
    ) -> StoreFuture<'a, Vec<ReceivedMessage>>;
    /// Deletes a received message. `NotFound` if it is gone or the pop receipt is stale.
    fn delete<'a>(
        &'a self,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
    ) -> StoreFuture<'a, ()>;
    /// Makes a received message visible again after `visibility_timeout` (zero = now).
    /// Returns the new pop receipt. `NotFound` if it is gone or the pop receipt is stale.
    fn update_visibility<'a>(
        &'a self,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
        visibility_timeout: Duration,
    ) -> StoreFuture<'a, String>;
}

/// Largest visibility delay/timeout accepted: just under the 7-day message lifetime (Azure
/// refuses a delay that is not shorter than the message's time-to-live).
pub const MAX_VISIBILITY: Duration = Duration::from_secs(7 * 24 * 3600 - 1);

/// Whole seconds for a visibility value: rounded up, capped at [`MAX_VISIBILITY`].
pub(crate) fn visibility_secs(d: Duration) -> u32 {
    let d = d.min(MAX_VISIBILITY);
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// Reads and decodes a JSON blob.
pub async fn get_json<T: DeserializeOwned>(
    store: &dyn BlobStore,
    path: &str,
) -> Result<Option<(T, ETag)>, StoreError> {
    match store.get(path).await? {
        None => Ok(None),
        Some(v) => {
            let value =
                serde_json::from_slice(&v.bytes).map_err(|source| StoreError::DecodeBlob {
                    path: path.to_owned(),
                    source,
                })?;
            Ok(Some((value, v.etag)))
        }
    }
}

/// Encodes and writes a JSON blob under a precondition.
pub async fn put_json<T: Serialize + ?Sized>(
    store: &dyn BlobStore,
    path: &str,
    value: &T,
    precondition: Precondition,
) -> Result<ETag, StoreError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| StoreError::EncodeBlob {
        path: path.to_owned(),
        source,
    })?;
    store.put(path, bytes, precondition).await
}

/// Attempts [`update_with_retry`] makes before giving up with [`StoreError::UpdateConflict`].
pub const UPDATE_ATTEMPTS: u32 = 10;

/// Read-modify-write of a JSON blob guarded by its ETag: reads the current value (`None` if
/// absent), calls `change`, and writes the result with `IfMatch` (or `IfNoneMatchAny` when the
/// blob was absent). On a concurrent change it re-reads and calls `change` again, at most
/// [`UPDATE_ATTEMPTS`] times, with a short jittered pause between attempts. `change` may run
/// several times, so it must be a pure function of its input. An error from `change` aborts
/// without writing. Returns the written value and its ETag.
pub async fn update_with_retry<T, E, F>(
    store: &dyn BlobStore,
    path: &str,
    mut change: F,
) -> Result<(T, ETag), E>
where
    T: Serialize + DeserializeOwned,
    E: From<StoreError>,
    F: FnMut(Option<T>) -> Result<T, E>,
{
    for attempt in 0..UPDATE_ATTEMPTS {
        if attempt > 0 {
            let jitter: u64 = {
                use rand::RngExt as _;
                rand::make_rng::<rand::rngs::SmallRng>().random_range(0..=10 * u64::from(attempt))
            };
            tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt) + jitter)).await;
        }
        let current = get_json::<T>(store, path).await?;
        let (value, precondition) = match current {
            Some((value, etag)) => (Some(value), Precondition::IfMatch(etag)),
            None => (None, Precondition::IfNoneMatchAny),
        };
        let next = change(value)?;
        match put_json(store, path, &next, precondition).await {
            Ok(etag) => return Ok((next, etag)),
            Err(StoreError::PreconditionFailed { .. } | StoreError::AlreadyExists { .. }) => {
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::UpdateConflict {
        path: path.to_owned(),
        attempts: UPDATE_ATTEMPTS,
    }
    .into())
}

/// Replaces every `sig=<value>` (SAS signature) in `text` with `sig=***`.
pub(crate) fn redact_sas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = find_sig(rest) {
        let (head, tail) = rest.split_at(pos + 4);
        out.push_str(head);
        out.push_str("***");
        let end = tail
            .find(|c: char| c == '&' || c == ')' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn find_sig(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("sig=") {
        let at = from + i;
        let prev = lower[..at].chars().next_back();
        if matches!(prev, None | Some('?') | Some('&') | Some(';')) {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_compare_equal_quoted_or_not() {
        assert_eq!(ETag::new("0x8D1"), ETag::new("\"0x8D1\""));
        assert_eq!(ETag::new("0x8D1").as_str(), "\"0x8D1\"");
        assert_eq!(ETag::new("W/\"x\"").as_str(), "W/\"x\"");
    }

    #[test]
    fn redacts_sas_signatures_in_urls() {
        let text = "error sending request for url (http://127.0.0.1:1/devstoreaccount1/q?se=2025&sig=AbC%2Bde%3D&sp=r)";
        let out = redact_sas(text);
        assert!(!out.contains("AbC"), "{out}");
        assert!(out.contains("sig=***&sp=r)"), "{out}");
        assert_eq!(
            redact_sas("no secret here; design=1"),
            "no secret here; design=1"
        );
        assert_eq!(redact_sas("x?sig=abc"), "x?sig=***");
    }

    #[test]
    fn rounds_visibility_up_to_whole_seconds_and_caps_it() {
        assert_eq!(visibility_secs(Duration::ZERO), 0);
        assert_eq!(visibility_secs(Duration::from_millis(1)), 1);
        assert_eq!(visibility_secs(Duration::from_millis(2500)), 3);
        assert_eq!(
            visibility_secs(Duration::from_secs(30 * 24 * 3600)),
            7 * 24 * 3600 - 1
        );
    }

    #[test]
    fn message_encoding_round_trips_and_rejects_bad_base64() {
        for enc in [MessageEncoding::None, MessageEncoding::Base64] {
            let text = r#"{"runId":"r1","stage":"preflight"}"#;
            assert_eq!(enc.decode(&enc.encode(text)).as_deref(), Some(text));
        }
        assert_eq!(MessageEncoding::Base64.decode("{not base64}"), None);
        assert_eq!(
            MessageEncoding::parse("Base64").ok(),
            Some(MessageEncoding::Base64)
        );
        assert!(MessageEncoding::parse("utf8").is_err());
    }

    #[test]
    fn reads_message_encoding_from_host_json_with_the_hosts_default() {
        let with = r#"{"version":"2.0","extensions":{"queues":{"messageEncoding":"none"}}}"#;
        assert_eq!(
            MessageEncoding::from_host_json(with).ok(),
            Some(MessageEncoding::None)
        );
        let without = r#"{"version":"2.0"}"#;
        assert_eq!(
            MessageEncoding::from_host_json(without).ok(),
            Some(MessageEncoding::Base64)
        );
        assert!(MessageEncoding::from_host_json("{").is_err());
    }
}
