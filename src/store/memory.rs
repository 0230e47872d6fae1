//! In-process twins of the Azure adapters, for the offline CLI, `datashare-dr drill` and tests.
//! Same observable semantics as Azure Storage (checked by the shared behavioural suite):
//! fresh ETag per write, `If-Match`/`If-None-Match: *` preconditions, visibility delays and
//! timeouts in whole seconds, dequeue counts, a new pop receipt per receive/update, 7-day TTL.
//!
//! Differences, by design: the container always exists (`ensure_container` is a no-op), and
//! state lives only as long as the value (clone the `Arc` to share it).
//!
//! Imports only the store's own types.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use super::{
    BlobEntry, BlobStore, ETag, Precondition, Queue, ReceivedMessage, StoreError, StoreFuture,
    Versioned, visibility_secs,
};

/// Time a message lives on a queue (Azure's default TTL).
const MESSAGE_TTL: time::Duration = time::Duration::days(7);

/// In-memory [`BlobStore`]. Cloning shares the same blobs.
#[derive(Clone, Default)]
pub struct MemoryBlobStore {
    inner: Arc<BlobState>,
}

#[derive(Default)]
struct BlobState {
    blobs: Mutex<BTreeMap<String, Versioned>>,
    next_etag: AtomicU64,
}

impl MemoryBlobStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn blobs(&self) -> MutexGuard<'_, BTreeMap<String, Versioned>> {
        // A poisoned lock only means another thread panicked mid-call; the map itself is
        // always left consistent (every mutation is a single insert/remove).
        self.inner
            .blobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fresh_etag(&self) -> ETag {
        let n = self.inner.next_etag.fetch_add(1, Ordering::Relaxed) + 1;
        ETag::new(format!("\"0x8D{n:013X}\""))
    }
}

impl std::fmt::Debug for MemoryBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBlobStore")
            .field("blobs", &self.blobs().len())
            .finish()
    }
}

impl BlobStore for MemoryBlobStore {
    fn ensure_container(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn get<'a>(&'a self, path: &'a str) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move { Ok(self.blobs().get(path).cloned()) })
    }

    fn put<'a>(
        &'a self,
        path: &'a str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> StoreFuture<'a, ETag> {
        Box::pin(async move {
            let mut blobs = self.blobs();
            let current = blobs.get(path);
            match (&precondition, current) {
                (Precondition::None, _) => {}
                (Precondition::IfNoneMatchAny, None) => {}
                (Precondition::IfNoneMatchAny, Some(_)) => {
                    return Err(StoreError::AlreadyExists { path: path.into() });
                }
                (Precondition::IfMatch(expected), Some(v)) if &v.etag == expected => {}
                (Precondition::IfMatch(_), _) => {
                    return Err(StoreError::PreconditionFailed { path: path.into() });
                }
            }
            let etag = self.fresh_etag();
            blobs.insert(
                path.to_owned(),
                Versioned {
                    bytes,
                    etag: etag.clone(),
                },
            );
            Ok(etag)
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<BlobEntry>> {
        Box::pin(async move {
            Ok(self
                .blobs()
                .range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| BlobEntry {
                    path: k.clone(),
                    etag: v.etag.clone(),
                    len: v.bytes.len() as u64,
                })
                .collect())
        })
    }

    fn delete<'a>(&'a self, path: &'a str, if_match: Option<&'a ETag>) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut blobs = self.blobs();
            match (blobs.get(path), if_match) {
                (None, _) => Ok(false),
                (Some(v), Some(expected)) if &v.etag != expected => {
                    Err(StoreError::PreconditionFailed { path: path.into() })
                }
                (Some(_), _) => {
                    blobs.remove(path);
                    Ok(true)
                }
            }
        })
    }
}

/// In-memory [`Queue`] service. Cloning shares the same queues.
#[derive(Clone, Default)]
pub struct MemoryQueue {
    inner: Arc<Mutex<HashMap<String, Vec<StoredMessage>>>>,
}

#[derive(Clone)]
struct StoredMessage {
    id: String,
    pop_receipt: Option<String>,
    dequeue_count: u32,
    insertion_time: OffsetDateTime,
    expiration_time: OffsetDateTime,
    next_visible_time: OffsetDateTime,
    text: String,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn queues(&self) -> MutexGuard<'_, HashMap<String, Vec<StoredMessage>>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Number of messages on `queue`, visible or not (0 for a missing queue). For tests/reports.
    pub fn len(&self, queue: &str) -> usize {
        let now = OffsetDateTime::now_utc();
        self.queues()
            .get(queue)
            .map(|q| q.iter().filter(|m| m.expiration_time > now).count())
            .unwrap_or(0)
    }

    /// Whether `queue` holds no live messages.
    pub fn is_empty(&self, queue: &str) -> bool {
        self.len(queue) == 0
    }
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue")
            .field("queues", &self.queues().len())
            .finish()
    }
}

fn secs(d: Duration) -> time::Duration {
    time::Duration::seconds(i64::from(visibility_secs(d)))
}

fn missing_queue(queue: &str) -> StoreError {
    StoreError::NotFound {
        resource: format!("queue {queue}"),
    }
}

fn missing_message(queue: &str, id: &str) -> StoreError {
    StoreError::NotFound {
        resource: format!("message {id} (with that pop receipt) in queue {queue}"),
    }
}

impl Queue for MemoryQueue {
    fn ensure_queue<'a>(&'a self, queue: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.queues().entry(queue.to_owned()).or_default();
            Ok(())
        })
    }

    fn send<'a>(
        &'a self,
        queue: &'a str,
        text: &'a str,
        visibility_delay: Option<Duration>,
    ) -> StoreFuture<'a, String> {
        Box::pin(async move {
            let now = OffsetDateTime::now_utc();
            let id = uuid::Uuid::new_v4().to_string();
            self.queues()
                .entry(queue.to_owned())
                .or_default()
                .push(StoredMessage {
                    id: id.clone(),
                    pop_receipt: None,
                    dequeue_count: 0,
                    insertion_time: now,
                    expiration_time: now + MESSAGE_TTL,
                    next_visible_time: now + secs(visibility_delay.unwrap_or_default()),
                    text: text.to_owned(),
                });
            Ok(id)
        })
    }

    fn receive<'a>(
        &'a self,
        queue: &'a str,
        max: u32,
        visibility_timeout: Duration,
    ) -> StoreFuture<'a, Vec<ReceivedMessage>> {
        Box::pin(async move {
            let max = max.clamp(1, 32) as usize;
            let now = OffsetDateTime::now_utc();
            let hide = secs(visibility_timeout).max(time::Duration::seconds(1));
            let mut queues = self.queues();
            let q = queues.get_mut(queue).ok_or_else(|| missing_queue(queue))?;
            q.retain(|m| m.expiration_time > now);
            let mut out = Vec::new();
            for m in q
                .iter_mut()
                .filter(|m| m.next_visible_time <= now)
                .take(max)
            {
                m.dequeue_count += 1;
                m.next_visible_time = now + hide;
                let receipt = uuid::Uuid::new_v4().to_string();
                m.pop_receipt = Some(receipt.clone());
                out.push(ReceivedMessage {
                    id: m.id.clone(),
                    pop_receipt: receipt,
                    dequeue_count: m.dequeue_count,
                    insertion_time: m.insertion_time,
                    expiration_time: m.expiration_time,
                    next_visible_time: m.next_visible_time,
                    text: m.text.clone(),
                    decoding_failed: false,
                });
            }
            Ok(out)
        })
    }

    fn delete<'a>(
        &'a self,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut queues = self.queues();
            let q = queues.get_mut(queue).ok_or_else(|| missing_queue(queue))?;
            let pos = q
                .iter()
                .position(|m| m.id == id && m.pop_receipt.as_deref() == Some(pop_receipt))
                .ok_or_else(|| missing_message(queue, id))?;
            q.remove(pos);
            Ok(())
        })
    }

    fn update_visibility<'a>(
        &'a self,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
        visibility_timeout: Duration,
    ) -> StoreFuture<'a, String> {
        Box::pin(async move {
            let now = OffsetDateTime::now_utc();
            let mut queues = self.queues();
            let q = queues.get_mut(queue).ok_or_else(|| missing_queue(queue))?;
            let m = q
                .iter_mut()
                .find(|m| m.id == id && m.pop_receipt.as_deref() == Some(pop_receipt))
                .ok_or_else(|| missing_message(queue, id))?;
            m.next_visible_time = now + secs(visibility_timeout);
            let receipt = uuid::Uuid::new_v4().to_string();
            m.pop_receipt = Some(receipt.clone());
            Ok(receipt)
        })
    }
}
