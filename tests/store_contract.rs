//! One behavioural suite for the storage layer, run against both implementations: the in-memory
//! twins (always) and Azure Storage through the SDK against Azurite (when `scripts/test`
//! provides it; a failure when `DSDR_REQUIRE_AZURITE=1`).

mod support;

use std::sync::Arc;
use std::time::Duration;

use datashare_dr::store::{
    self, BlobStore, ETag, MemoryBlobStore, MemoryQueue, MessageEncoding, Precondition, Queue,
    StoreError,
};
use serde::{Deserialize, Serialize};

struct Ctx {
    blobs: Arc<dyn BlobStore>,
    queue: Arc<dyn Queue>,
    /// A fresh queue name for this test.
    q: String,
}

impl Ctx {
    fn memory() -> Self {
        Self {
            blobs: Arc::new(MemoryBlobStore::new()),
            queue: Arc::new(MemoryQueue::new()),
            q: support::azurite::unique_name("contract"),
        }
    }

    async fn azurite(test: &str, encoding: MessageEncoding) -> Option<Self> {
        let az = support::azurite::azurite(test)?;
        let blobs = az.fresh_container("contract").await;
        let (queue, q) = az.fresh_queue("contract", encoding).await;
        Some(Self { blobs, queue, q })
    }
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&super::Ctx::memory()).await;
                }
            )*
        }
        mod azurite {
            use datashare_dr::store::MessageEncoding;
            $(
                #[tokio::test]
                async fn $case() {
                    let name = concat!("azurite::", stringify!($case));
                    let Some(ctx) = super::Ctx::azurite(name, MessageEncoding::None).await else { return };
                    super::$case(&ctx).await;
                }
            )*
        }
        mod azurite_base64 {
            use datashare_dr::store::MessageEncoding;
            $(
                #[tokio::test]
                async fn $case() {
                    let name = concat!("azurite_base64::", stringify!($case));
                    let Some(ctx) = super::Ctx::azurite(name, MessageEncoding::Base64).await else { return };
                    super::$case(&ctx).await;
                }
            )*
        }
    };
}

contract!(
    put_then_get_returns_the_bytes_with_the_written_etag,
    get_of_a_missing_blob_is_none,
    every_write_gets_a_new_etag,
    create_if_absent_refuses_an_existing_blob_and_keeps_it,
    if_match_with_a_stale_etag_is_refused_and_writes_nothing,
    if_match_on_a_missing_blob_is_a_precondition_failure,
    list_returns_only_the_prefix_sorted_with_nested_paths,
    delete_honours_if_match_and_reports_a_missing_blob,
    concurrent_create_if_absent_has_exactly_one_winner,
    update_with_retry_applies_every_concurrent_change,
    update_with_retry_aborts_on_the_closures_error_without_writing,
    a_received_message_is_hidden_until_its_visibility_timeout_lapses,
    a_delayed_message_stays_invisible_until_the_delay_lapses,
    delete_needs_the_latest_pop_receipt,
    update_visibility_to_zero_redelivers_now_with_a_new_receipt,
    receive_returns_at_most_max_in_send_order,
    send_creates_a_missing_queue_and_receive_from_a_missing_queue_is_not_found,
    message_text_round_trips_exactly,
);

async fn put_then_get_returns_the_bytes_with_the_written_etag(ctx: &Ctx) {
    let etag = ctx
        .blobs
        .put("runs/r1.json", b"{\"a\":1}".to_vec(), Precondition::None)
        .await
        .unwrap();
    let got = ctx.blobs.get("runs/r1.json").await.unwrap().unwrap();
    assert_eq!(got.bytes, b"{\"a\":1}");
    assert_eq!(got.etag, etag);
}

async fn get_of_a_missing_blob_is_none(ctx: &Ctx) {
    assert!(ctx.blobs.get("runs/none.json").await.unwrap().is_none());
}

async fn every_write_gets_a_new_etag(ctx: &Ctx) {
    let a = ctx
        .blobs
        .put("x.json", b"1".to_vec(), Precondition::None)
        .await
        .unwrap();
    let b = ctx
        .blobs
        .put("x.json", b"1".to_vec(), Precondition::None)
        .await
        .unwrap();
    let c = ctx
        .blobs
        .put("x.json", b"2".to_vec(), Precondition::IfMatch(b.clone()))
        .await
        .unwrap();
    assert_ne!(a, b);
    assert_ne!(b, c);
}

async fn create_if_absent_refuses_an_existing_blob_and_keeps_it(ctx: &Ctx) {
    let first = ctx
        .blobs
        .put(
            "locks/p1.json",
            b"first".to_vec(),
            Precondition::IfNoneMatchAny,
        )
        .await
        .unwrap();
    let err = ctx
        .blobs
        .put(
            "locks/p1.json",
            b"second".to_vec(),
            Precondition::IfNoneMatchAny,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { ref path } if path == "locks/p1.json"),
        "{err:?}"
    );
    assert!(!err.is_transient());
    let got = ctx.blobs.get("locks/p1.json").await.unwrap().unwrap();
    assert_eq!((got.bytes.as_slice(), got.etag), (&b"first"[..], first));
}

async fn if_match_with_a_stale_etag_is_refused_and_writes_nothing(ctx: &Ctx) {
    let v1 = ctx
        .blobs
        .put("runs/r.json", b"v1".to_vec(), Precondition::None)
        .await
        .unwrap();
    let v2 = ctx
        .blobs
        .put(
            "runs/r.json",
            b"v2".to_vec(),
            Precondition::IfMatch(v1.clone()),
        )
        .await
        .unwrap();
    let err = ctx
        .blobs
        .put("runs/r.json", b"v3".to_vec(), Precondition::IfMatch(v1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err:?}"
    );
    let got = ctx.blobs.get("runs/r.json").await.unwrap().unwrap();
    assert_eq!((got.bytes.as_slice(), got.etag), (&b"v2"[..], v2));
}

async fn if_match_on_a_missing_blob_is_a_precondition_failure(ctx: &Ctx) {
    let err = ctx
        .blobs
        .put(
            "runs/ghost.json",
            b"x".to_vec(),
            Precondition::IfMatch(ETag::new("\"0x1\"")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err:?}"
    );
    assert!(ctx.blobs.get("runs/ghost.json").await.unwrap().is_none());
}

async fn list_returns_only_the_prefix_sorted_with_nested_paths(ctx: &Ctx) {
    for p in [
        "reports/p1/history/2025-01-02.json",
        "reports/p1/latest.json",
        "reports/p1/history/2025-01-01.json",
        "reports/p10/latest.json",
        "runs/a.json",
    ] {
        ctx.blobs
            .put(p, p.as_bytes().to_vec(), Precondition::None)
            .await
            .unwrap();
    }
    let listed = ctx.blobs.list("reports/p1/").await.unwrap();
    let paths: Vec<&str> = listed.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "reports/p1/history/2025-01-01.json",
            "reports/p1/history/2025-01-02.json",
            "reports/p1/latest.json"
        ]
    );
    let latest = ctx
        .blobs
        .get("reports/p1/latest.json")
        .await
        .unwrap()
        .unwrap();
    let entry = &listed[2];
    assert_eq!(
        (entry.len, &entry.etag),
        (latest.bytes.len() as u64, &latest.etag)
    );
    assert_eq!(ctx.blobs.list("").await.unwrap().len(), 5);
    assert!(ctx.blobs.list("nothing/").await.unwrap().is_empty());
}

async fn delete_honours_if_match_and_reports_a_missing_blob(ctx: &Ctx) {
    let v1 = ctx
        .blobs
        .put("locks/d.json", b"1".to_vec(), Precondition::None)
        .await
        .unwrap();
    let v2 = ctx
        .blobs
        .put("locks/d.json", b"2".to_vec(), Precondition::None)
        .await
        .unwrap();
    let err = ctx
        .blobs
        .delete("locks/d.json", Some(&v1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err:?}"
    );
    assert!(ctx.blobs.delete("locks/d.json", Some(&v2)).await.unwrap());
    assert!(ctx.blobs.get("locks/d.json").await.unwrap().is_none());
    assert!(!ctx.blobs.delete("locks/d.json", None).await.unwrap());
}

async fn concurrent_create_if_absent_has_exactly_one_winner(ctx: &Ctx) {
    let tasks = (0..12).map(|i| {
        let blobs = ctx.blobs.clone();
        async move {
            blobs
                .put(
                    "locks/race.json",
                    format!("{i}").into_bytes(),
                    Precondition::IfNoneMatchAny,
                )
                .await
        }
    });
    let results = futures::future::join_all(tasks).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    let losers = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::AlreadyExists { .. })))
        .count();
    assert_eq!((winners, losers), (1, 11), "{results:?}");
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Counter {
    n: u32,
    writers: Vec<u32>,
}

async fn update_with_retry_applies_every_concurrent_change(ctx: &Ctx) {
    let tasks = (0..6u32).map(|i| {
        let blobs = ctx.blobs.clone();
        async move {
            store::update_with_retry::<Counter, StoreError, _>(
                blobs.as_ref(),
                "state/c.json",
                |cur| {
                    let mut c = cur.unwrap_or(Counter {
                        n: 0,
                        writers: vec![],
                    });
                    c.n += 1;
                    c.writers.push(i);
                    Ok(c)
                },
            )
            .await
        }
    });
    for r in futures::future::join_all(tasks).await {
        r.unwrap();
    }
    let (c, _) = store::get_json::<Counter>(ctx.blobs.as_ref(), "state/c.json")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.n, 6);
    let mut w = c.writers.clone();
    w.sort();
    assert_eq!(w, [0, 1, 2, 3, 4, 5]);
}

#[derive(Debug)]
enum AppError {
    Store(#[allow(dead_code)] StoreError),
    Refused(&'static str),
}
impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

async fn update_with_retry_aborts_on_the_closures_error_without_writing(ctx: &Ctx) {
    let first = store::put_json(
        ctx.blobs.as_ref(),
        "state/s.json",
        &Counter {
            n: 1,
            writers: vec![],
        },
        Precondition::None,
    )
    .await
    .unwrap();
    let r = store::update_with_retry::<Counter, AppError, _>(
        ctx.blobs.as_ref(),
        "state/s.json",
        |_| Err(AppError::Refused("run already complete")),
    )
    .await;
    let Err(AppError::Refused(why)) = r else {
        panic!("expected the closure's error, got {r:?}")
    };
    assert_eq!(why, "run already complete");
    let got = ctx.blobs.get("state/s.json").await.unwrap().unwrap();
    assert_eq!(got.etag, first);
    // A blob that is not the expected JSON is a decode error, not a silent overwrite.
    ctx.blobs
        .put("state/bad.json", b"not json".to_vec(), Precondition::None)
        .await
        .unwrap();
    let r = store::update_with_retry::<Counter, StoreError, _>(
        ctx.blobs.as_ref(),
        "state/bad.json",
        |c| {
            Ok(c.unwrap_or(Counter {
                n: 0,
                writers: vec![],
            }))
        },
    )
    .await;
    assert!(matches!(r, Err(StoreError::DecodeBlob { .. })), "{r:?}");
}

async fn a_received_message_is_hidden_until_its_visibility_timeout_lapses(ctx: &Ctx) {
    let id = ctx
        .queue
        .send(&ctx.q, r#"{"stage":"preflight"}"#, None)
        .await
        .unwrap();
    let first = ctx
        .queue
        .receive(&ctx.q, 1, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].id.as_str(), first[0].dequeue_count),
        (id.as_str(), 1)
    );
    assert!(first[0].next_visible_time > first[0].insertion_time);
    assert!(first[0].expiration_time > first[0].insertion_time + time::Duration::days(6));
    assert!(
        ctx.queue
            .receive(&ctx.q, 1, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let again = ctx
        .queue
        .receive(&ctx.q, 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, id);
    assert_eq!(again[0].dequeue_count, 2);
    assert_ne!(again[0].pop_receipt, first[0].pop_receipt);
    assert_eq!(again[0].text, r#"{"stage":"preflight"}"#);
}

async fn a_delayed_message_stays_invisible_until_the_delay_lapses(ctx: &Ctx) {
    ctx.queue
        .send(&ctx.q, "later", Some(Duration::from_millis(1200)))
        .await
        .unwrap();
    assert!(
        ctx.queue
            .receive(&ctx.q, 32, Duration::from_secs(5))
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let got = ctx
        .queue
        .receive(&ctx.q, 32, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].text.as_str(), got[0].dequeue_count), ("later", 1));
}

async fn delete_needs_the_latest_pop_receipt(ctx: &Ctx) {
    ctx.queue.send(&ctx.q, "m", None).await.unwrap();
    let m = ctx
        .queue
        .receive(&ctx.q, 1, Duration::from_secs(30))
        .await
        .unwrap()
        .remove(0);
    let receipt2 = ctx
        .queue
        .update_visibility(&ctx.q, &m.id, &m.pop_receipt, Duration::from_secs(30))
        .await
        .unwrap();
    let err = ctx
        .queue
        .delete(&ctx.q, &m.id, &m.pop_receipt)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    ctx.queue.delete(&ctx.q, &m.id, &receipt2).await.unwrap();
    let err = ctx
        .queue
        .delete(&ctx.q, &m.id, &receipt2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

async fn update_visibility_to_zero_redelivers_now_with_a_new_receipt(ctx: &Ctx) {
    ctx.queue.send(&ctx.q, "retry me", None).await.unwrap();
    let m = ctx
        .queue
        .receive(&ctx.q, 1, Duration::from_secs(600))
        .await
        .unwrap()
        .remove(0);
    let receipt = ctx
        .queue
        .update_visibility(&ctx.q, &m.id, &m.pop_receipt, Duration::ZERO)
        .await
        .unwrap();
    assert_ne!(receipt, m.pop_receipt);
    let again = ctx
        .queue
        .receive(&ctx.q, 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id.as_str(), again[0].dequeue_count),
        (m.id.as_str(), 2)
    );
}

async fn receive_returns_at_most_max_in_send_order(ctx: &Ctx) {
    for i in 0..5 {
        ctx.queue
            .send(&ctx.q, &format!("m{i}"), None)
            .await
            .unwrap();
    }
    let got = ctx
        .queue
        .receive(&ctx.q, 3, Duration::from_secs(30))
        .await
        .unwrap();
    let texts: Vec<&str> = got.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["m0", "m1", "m2"]);
    let rest = ctx
        .queue
        .receive(&ctx.q, 32, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert!(rest.iter().all(|m| m.dequeue_count == 1));
}

async fn send_creates_a_missing_queue_and_receive_from_a_missing_queue_is_not_found(ctx: &Ctx) {
    let other = format!("{}-x", ctx.q);
    let err = ctx
        .queue
        .receive(&other, 1, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    ctx.queue.send(&other, "hello", None).await.unwrap();
    let got = ctx
        .queue
        .receive(&other, 1, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(got[0].text, "hello");
    ctx.queue.ensure_queue(&other).await.unwrap();
}

async fn message_text_round_trips_exactly(ctx: &Ctx) {
    let texts = [
        r#"{"runId":"r-1","stage":"invite-consumers","attempt":2,"notBefore":"2025-01-01T00:00:00Z"}"#,
        "plain <xml> & 'quotes' \"double\" ]]> unicode: Ærø ✓ 🚀",
        "  leading and trailing spaces  ",
        "dGVzdA==",
        "line1\nline2\ttab",
    ];
    for t in texts {
        ctx.queue.send(&ctx.q, t, None).await.unwrap();
    }
    let got = ctx
        .queue
        .receive(&ctx.q, 32, Duration::from_secs(30))
        .await
        .unwrap();
    let back: Vec<&str> = got.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(back, texts);
    assert!(got.iter().all(|m| !m.decoding_failed));
}

/// Azurite only: the stored form follows the encoding, and text that is not base64 under
/// `Base64` is flagged (the host poisons such messages) instead of being mis-decoded.
#[tokio::test]
async fn base64_encoding_is_what_is_stored_and_bad_base64_is_flagged() {
    let Some(az) = support::azurite::azurite("base64_encoding_is_what_is_stored") else {
        return;
    };
    let (b64, q) = az.fresh_queue("enc", MessageEncoding::Base64).await;
    let raw = az.queue_client(MessageEncoding::None);
    b64.send(&q, "hello", None).await.unwrap();
    let stored = raw.receive(&q, 1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(stored[0].text, "aGVsbG8=");
    raw.send(&q, "{not base64}", None).await.unwrap();
    let flagged = b64.receive(&q, 1, Duration::from_secs(30)).await.unwrap();
    assert!(flagged[0].decoding_failed);
    assert_eq!(flagged[0].text, "{not base64}");
}

/// Azurite only: the SAS built from the key is what authorises requests — a wrong key fails
/// with a non-transient error that names the operation and carries no signature.
#[tokio::test]
async fn a_wrong_account_key_is_refused_without_leaking_the_signature() {
    let Some(az) = support::azurite::azurite("a_wrong_account_key_is_refused") else {
        return;
    };
    let wrong = az
        .connection_string
        .replace("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==");
    let settings = datashare_dr::store::StorageSettings::from_connection_string(&wrong).unwrap();
    let blobs = datashare_dr::store::AzureBlobStore::new(&settings, "datashare-dr").unwrap();
    let err = blobs.get("runs/x.json").await.unwrap_err();
    let text = format!("{err} {:?}", err);
    assert!(matches!(err, StoreError::GetBlob { .. }), "{text}");
    assert!(!err.is_transient(), "{text}");
    assert!(!text.contains("sig=") || text.contains("sig=***"), "{text}");
}
