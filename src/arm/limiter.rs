//! Client-side rate limiting that mirrors ARM's token buckets, and retry timing.
//!
//! Job: keep a well-behaved run from ever being throttled. ARM throttles per subscription
//! (and principal) and per operation type with token buckets (datashare-api.md §10.1):
//! reads 250 burst / 25 per second, writes 200 / 10, deletes 200 / 10. We keep the same
//! buckets per subscription (tenant-level calls share a `tenant` bucket), reserve a token
//! before each request, lower our level when the server's
//! `x-ms-ratelimit-remaining-subscription-*` header says fewer remain than we think, and on a
//! 429 drain the bucket and block it for `Retry-After`.
//!
//! Invariants: time comes from `tokio::time` (tests use paused time); no lock is held across
//! an await.
//!
//! Must not import reconcile, readiness, failover, handlers or host.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use http::HeaderMap;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// ARM's operation types for throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpKind {
    /// GET (including LRO polls and nextLink pages).
    Read,
    /// PUT, PATCH, POST.
    Write,
    /// DELETE.
    Delete,
}

impl OpKind {
    /// From the HTTP method.
    pub fn of(method: &reqwest::Method) -> Self {
        match *method {
            reqwest::Method::GET | reqwest::Method::HEAD => Self::Read,
            reqwest::Method::DELETE => Self::Delete,
            _ => Self::Write,
        }
    }
    /// The remaining-quota header ARM sends for this kind.
    pub fn remaining_header(self) -> &'static str {
        match self {
            Self::Read => "x-ms-ratelimit-remaining-subscription-reads",
            Self::Write => "x-ms-ratelimit-remaining-subscription-writes",
            Self::Delete => "x-ms-ratelimit-remaining-subscription-deletes",
        }
    }
}

/// One token bucket's shape.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BucketSpec {
    /// Burst size.
    pub capacity: f64,
    /// Tokens added per second.
    pub refill_per_sec: f64,
}

/// The buckets per operation type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateLimits {
    pub reads: BucketSpec,
    pub writes: BucketSpec,
    pub deletes: BucketSpec,
    /// Fraction of each bucket kept in reserve (0.05 = 5%) as a jitter buffer: requests are
    /// paced when we send them but counted by ARM when they arrive, and arrival spacing can
    /// be tighter than sending spacing. The refill rate is not reduced, so sustained
    /// throughput stays at ARM's rate; only the burst is 5% smaller.
    pub headroom: f64,
    /// `false` disables client-side limiting (429 handling still applies).
    pub enabled: bool,
}

impl Default for RateLimits {
    /// ARM's per-subscription numbers (2024 token-bucket model).
    fn default() -> Self {
        Self {
            reads: BucketSpec {
                capacity: 250.0,
                refill_per_sec: 25.0,
            },
            writes: BucketSpec {
                capacity: 200.0,
                refill_per_sec: 10.0,
            },
            deletes: BucketSpec {
                capacity: 200.0,
                refill_per_sec: 10.0,
            },
            headroom: 0.05,
            enabled: true,
        }
    }
}

impl RateLimits {
    fn spec(&self, kind: OpKind) -> BucketSpec {
        match kind {
            OpKind::Read => self.reads,
            OpKind::Write => self.writes,
            OpKind::Delete => self.deletes,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// Token buckets keyed by (subscription or `tenant`, operation type). Shared by all clones
/// of a client.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<(String, OpKind), Bucket>>,
}

impl RateLimiter {
    /// New limiter with full buckets.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn with_bucket<R>(
        &self,
        scope: &str,
        kind: OpKind,
        f: impl FnOnce(&mut Bucket, BucketSpec, Instant) -> R,
    ) -> R {
        let spec = self.limits.spec(kind);
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = map
            .entry((scope.to_ascii_lowercase(), kind))
            .or_insert_with(|| Bucket {
                tokens: spec.capacity,
                last: now,
                blocked_until: None,
            });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * spec.refill_per_sec).min(spec.capacity);
        b.last = now;
        f(b, spec, now)
    }

    /// Reserves one token and returns how long to wait before sending. When the wait would
    /// end after `deadline`, nothing is reserved and `Err(wait)` is returned.
    pub fn reserve(
        &self,
        scope: &str,
        kind: OpKind,
        deadline: Option<Instant>,
    ) -> Result<Duration, Duration> {
        self.with_bucket(scope, kind, |b, spec, now| {
            let blocked = b
                .blocked_until
                .map(|u| u.saturating_duration_since(now))
                .unwrap_or_default();
            let needed = 1.0 + self.limits.headroom.clamp(0.0, 0.5) * spec.capacity;
            let bucket_wait = if !self.limits.enabled || b.tokens >= needed {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(
                    (needed - b.tokens) / spec.refill_per_sec.max(f64::MIN_POSITIVE),
                )
            };
            let wait = blocked.max(bucket_wait);
            if let Some(d) = deadline
                && now + wait > d
            {
                return Err(wait);
            }
            if self.limits.enabled {
                b.tokens -= 1.0;
            }
            Ok(wait)
        })
    }

    /// Applies the server's remaining-quota header: if fewer remain than we think, lower.
    pub fn observe_remaining(&self, scope: &str, kind: OpKind, remaining: f64) {
        self.with_bucket(scope, kind, |b, _, _| {
            if remaining < b.tokens {
                b.tokens = remaining;
            }
        });
    }

    /// A 429: drain the bucket and block it for `retry_after`.
    pub fn observe_throttled(&self, scope: &str, kind: OpKind, retry_after: Duration) {
        self.with_bucket(scope, kind, |b, _, now| {
            b.tokens = b.tokens.min(0.0);
            let until = now + retry_after;
            b.blocked_until = Some(b.blocked_until.map_or(until, |u| u.max(until)));
        });
    }

    /// Current token level (for tests and diagnostics).
    pub fn level(&self, scope: &str, kind: OpKind) -> f64 {
        self.with_bucket(scope, kind, |b, _, _| b.tokens)
    }

    /// Reads the remaining-quota headers (`x-ms-ratelimit-remaining-subscription-reads`,
    /// `-writes`, `-deletes`, whichever are present) and applies each to its bucket, so a
    /// server that classifies an operation differently from us still slows us down.
    pub fn observe_headers(&self, scope: &str, headers: &HeaderMap) {
        for kind in [OpKind::Read, OpKind::Write, OpKind::Delete] {
            if let Some(n) = headers
                .get(kind.remaining_header())
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|n| n.is_finite())
            {
                self.observe_remaining(scope, kind, n);
            }
        }
    }
}

/// Retry limits and backoff.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts per call, including the first (1 = no retries).
    pub max_attempts: u32,
    /// Backoff base: attempt n waits uniform(0, min(max_delay, base × 2^n)).
    pub base_delay: Duration,
    /// Backoff cap.
    pub max_delay: Duration,
    /// Upper bound on a server-sent `Retry-After` we are willing to honour.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(400),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// Full-jitter exponential backoff for retry number `attempt` (0-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX));
        let cap = exp.min(self.max_delay);
        let ms = cap.as_millis().min(u128::from(u64::MAX)) as u64;
        if ms == 0 {
            return Duration::ZERO;
        }
        let mut rng = rand::make_rng::<rand::rngs::SmallRng>();
        Duration::from_millis(rng.random_range(0..=ms))
    }
}

/// The delay a response asks for: `x-ms-retry-after-ms`, `retry-after-ms`, then
/// `Retry-After` (seconds or an HTTP date).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    for name in ["x-ms-retry-after-ms", "retry-after-ms"] {
        if let Some(ms) = get(name).and_then(|s| s.parse::<f64>().ok())
            && ms.is_finite()
            && ms >= 0.0
        {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let v = get("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = parse_http_date(v)?;
    let now = time::OffsetDateTime::now_utc();
    let d = when - now;
    Some(if d.is_negative() {
        Duration::ZERO
    } else {
        Duration::try_from(d).unwrap_or_default()
    })
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(s: &str) -> Option<time::OffsetDateTime> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s, &fmt)
        .ok()
        .map(|p| p.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// ARM's numbers without the jitter buffer, so the figures are exact.
    fn exact() -> RateLimits {
        RateLimits {
            headroom: 0.0,
            ..RateLimits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_default_headroom_keeps_five_percent_of_the_bucket_in_reserve() {
        let l = RateLimiter::new(RateLimits::default());
        let immediate = (0..300)
            .take_while(|_| l.reserve("s", OpKind::Read, None) == Ok(Duration::ZERO))
            .count();
        assert_eq!(immediate, 237, "250 minus a 12.5-token reserve");
        // sustained rate is still 25/s: ten seconds later 250 more tokens have arrived
        tokio::time::advance(Duration::from_secs(10)).await;
        let more = (0..300)
            .take_while(|_| l.reserve("s", OpKind::Read, None) == Ok(Duration::ZERO))
            .count();
        assert!(more >= 236, "{more}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_read_bucket_allows_a_burst_of_250_then_paces_at_25_per_second() {
        let l = RateLimiter::new(exact());
        for _ in 0..250 {
            assert_eq!(l.reserve("s", OpKind::Read, None), Ok(Duration::ZERO));
        }
        let w = l.reserve("s", OpKind::Read, None).unwrap();
        assert!((w.as_secs_f64() - 0.04).abs() < 1e-6, "{w:?}");
        let w = l.reserve("s", OpKind::Read, None).unwrap();
        assert!((w.as_secs_f64() - 0.08).abs() < 1e-6, "{w:?}");
        // other subscriptions and kinds are separate buckets
        assert_eq!(l.reserve("other", OpKind::Read, None), Ok(Duration::ZERO));
        assert_eq!(l.reserve("s", OpKind::Write, None), Ok(Duration::ZERO));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(l.reserve("s", OpKind::Read, None), Ok(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn writes_refill_at_10_per_second() {
        let l = RateLimiter::new(exact());
        for _ in 0..200 {
            l.reserve("s", OpKind::Write, None).unwrap();
        }
        let w = l.reserve("s", OpKind::Write, None).unwrap();
        assert!((w.as_secs_f64() - 0.1).abs() < 1e-6, "{w:?}");
        tokio::time::advance(Duration::from_secs(1)).await;
        // 10 tokens came back, 1 was owed
        assert!((l.level("s", OpKind::Write) - 9.0).abs() < 1e-6);
    }

    #[tokio::test(start_paused = true)]
    async fn lowers_its_level_when_the_server_says_fewer_remain() {
        let l = RateLimiter::new(exact());
        let mut h = HeaderMap::new();
        h.insert(
            "x-ms-ratelimit-remaining-subscription-reads",
            HeaderValue::from_static("2"),
        );
        l.observe_headers("s", &h);
        assert_eq!(l.reserve("s", OpKind::Read, None), Ok(Duration::ZERO));
        assert_eq!(l.reserve("s", OpKind::Read, None), Ok(Duration::ZERO));
        assert!(l.reserve("s", OpKind::Read, None).unwrap() > Duration::ZERO);
        // a higher server figure does not raise our level
        h.insert(
            "x-ms-ratelimit-remaining-subscription-reads",
            HeaderValue::from_static("240"),
        );
        l.observe_headers("s", &h);
        assert!(l.level("s", OpKind::Read) < 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_drains_and_blocks_the_bucket_for_retry_after() {
        let l = RateLimiter::new(exact());
        l.observe_throttled("s", OpKind::Write, Duration::from_secs(3));
        let w = l.reserve("s", OpKind::Write, None).unwrap();
        assert!(w >= Duration::from_secs(3), "{w:?}");
        let deadline = Instant::now() + Duration::from_secs(1);
        assert!(l.reserve("s", OpKind::Write, Some(deadline)).is_err());
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(
            l.reserve(
                "s",
                OpKind::Write,
                Some(Instant::now() + Duration::from_secs(1))
            )
            .is_ok()
        );
    }

    #[test]
    fn parses_retry_after_in_all_three_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("x-ms-retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        let future = time::OffsetDateTime::now_utc() + time::Duration::seconds(30);
        let fmt = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        h.insert(
            "retry-after",
            HeaderValue::from_str(&future.format(&fmt).unwrap()).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_is_full_jitter_and_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(60),
        };
        for attempt in 0..30 {
            let d = p.backoff(attempt);
            let cap = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(20))
                .min(Duration::from_secs(1));
            assert!(d <= cap, "{attempt}: {d:?}");
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(5)).collect();
        assert!(spread.len() > 10, "jitter should spread delays");
    }
}
