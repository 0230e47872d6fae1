//! ARM-style token-bucket throttling for the simulator (datashare-api.md §10.1).
//!
//! Buckets are kept per (principal, subscription-or-tenant scope, operation type) with ARM's
//! numbers — reads 250 burst / 25 s⁻¹, writes and deletes 200 burst / 10 s⁻¹ — plus a global
//! per-scope bucket for all principals together at 15× those figures. A request takes one token
//! from both; when either is empty the caller answers 429 with `Retry-After`. Pure logic, no I/O.

use std::collections::HashMap;
use std::time::Instant;

/// ARM operation type (by HTTP method: GET read, DELETE delete, everything else write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Read,
    Write,
    Delete,
}

impl OpType {
    pub fn from_method(method: &str) -> OpType {
        match method {
            "GET" | "HEAD" => OpType::Read,
            "DELETE" => OpType::Delete,
            _ => OpType::Write,
        }
    }

    /// `(burst, refill per second)` for one principal.
    pub fn limits(self) -> (f64, f64) {
        match self {
            OpType::Read => (250.0, 25.0),
            OpType::Write | OpType::Delete => (200.0, 10.0),
        }
    }

    pub fn header_suffix(self) -> &'static str {
        match self {
            OpType::Read => "reads",
            OpType::Write => "writes",
            OpType::Delete => "deletes",
        }
    }
}

/// Factor of the all-principals bucket over the single-principal one.
pub const GLOBAL_FACTOR: f64 = 15.0;

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last: Instant,
    cap: f64,
    rate: f64,
}

impl Bucket {
    fn new(cap: f64, rate: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: cap,
            last: now,
            cap,
            rate,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.cap);
        self.last = now;
    }

    fn wait_secs(&self) -> f64 {
        if self.tokens >= 1.0 {
            0.0
        } else {
            (1.0 - self.tokens) / self.rate
        }
    }
}

/// Outcome of one admission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admit {
    /// Admitted; tokens left in the caller's bucket (for the remaining-* header).
    Ok { remaining: u64 },
    /// Throttled; seconds to wait (`Retry-After`, at least 1) and tokens left (0).
    Throttled { retry_after_secs: u64 },
}

/// All buckets of one simulator.
#[derive(Debug, Default)]
pub struct Throttle {
    principal: HashMap<(String, String, OpType), Bucket>,
    global: HashMap<(String, OpType), Bucket>,
}

impl Throttle {
    /// Take one token for `principal` in `scope` (a subscription id or `tenant:<id>`).
    /// With `enforce == false` nothing is refused, but the remaining count is still reported.
    pub fn admit(
        &mut self,
        principal: &str,
        scope: &str,
        op: OpType,
        enforce: bool,
        now: Instant,
    ) -> Admit {
        let (cap, rate) = op.limits();
        let scope = scope.to_ascii_lowercase();
        let pb = self
            .principal
            .entry((principal.to_string(), scope.clone(), op))
            .or_insert_with(|| Bucket::new(cap, rate, now));
        pb.refill(now);
        let gb = self
            .global
            .entry((scope, op))
            .or_insert_with(|| Bucket::new(cap * GLOBAL_FACTOR, rate * GLOBAL_FACTOR, now));
        gb.refill(now);
        if !enforce {
            return Admit::Ok {
                remaining: pb.tokens.floor().max(0.0) as u64,
            };
        }
        if pb.tokens < 1.0 || gb.tokens < 1.0 {
            let wait = pb.wait_secs().max(gb.wait_secs());
            return Admit::Throttled {
                retry_after_secs: (wait.ceil() as u64).max(1),
            };
        }
        pb.tokens -= 1.0;
        gb.tokens -= 1.0;
        Admit::Ok {
            remaining: pb.tokens.floor().max(0.0) as u64,
        }
    }

    /// Refill every bucket (used by `/_sim/reset`).
    pub fn clear(&mut self) {
        self.principal.clear();
        self.global.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_principal_gets_250_reads_then_429_then_refills_at_25_per_second() {
        let mut t = Throttle::default();
        let now = Instant::now();
        for i in 0..250 {
            let a = t.admit("p", "s", OpType::Read, true, now);
            assert_eq!(a, Admit::Ok { remaining: 249 - i });
        }
        assert_eq!(
            t.admit("p", "s", OpType::Read, true, now),
            Admit::Throttled {
                retry_after_secs: 1
            }
        );
        let later = now + Duration::from_millis(400);
        let admitted = (0..20)
            .filter(|_| {
                matches!(
                    t.admit("p", "s", OpType::Read, true, later),
                    Admit::Ok { .. }
                )
            })
            .count();
        assert_eq!(admitted, 10);
    }

    #[test]
    fn buckets_are_separate_per_operation_type_and_principal() {
        let mut t = Throttle::default();
        let now = Instant::now();
        for _ in 0..200 {
            t.admit("p", "s", OpType::Write, true, now);
        }
        assert!(matches!(
            t.admit("p", "s", OpType::Write, true, now),
            Admit::Throttled { .. }
        ));
        assert!(matches!(
            t.admit("p", "s", OpType::Delete, true, now),
            Admit::Ok { .. }
        ));
        assert!(matches!(
            t.admit("q", "s", OpType::Write, true, now),
            Admit::Ok { .. }
        ));
        assert!(matches!(
            t.admit("p", "s", OpType::Write, false, now),
            Admit::Ok { .. }
        ));
    }
}
