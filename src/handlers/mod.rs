//! One module per Azure Function: decode the typed trigger → call one domain function → encode.
//!
//! Job: the functions table ([`FUNCTIONS`], mirrored by `functions/<Name>/function.json`), the
//! handler error type, and the single place that turns a [`HandlerError`] into what the host
//! understands (STYLE #8):
//! - **queue** functions: transient → 500 (the host retries; poison after `maxDequeueCount`),
//!   a payload that cannot decode → 400 (retried, then kept in the poison queue for the record),
//!   permanent → 200 with the reason in `Logs` (the domain has recorded a terminal state);
//! - **HTTP** functions: the host always gets 200 and the caller gets `res` with
//!   400/404/409/413/503 (or 500) and an RFC 7807 JSON problem body;
//! - **timer** functions: not retried by the host; failures answer 500 (logged), a permanent
//!   outcome 200.
//!
//! Every handler has the shape
//! `pub async fn handle(state: &AppState, trigger: <typed trigger>) -> Result<InvocationResponse, HandlerError>`.
//! Handlers never see axum or `serde_json::Value`; nothing imports this module except `startup`.

pub mod alert_webhook;
pub mod check_readiness;
pub mod failover_poison;
pub mod failover_run;
pub mod failover_stage;
pub mod notify;
pub mod readiness_status;
pub mod replicate_config;
pub mod replicate_now;
pub mod replicate_pair;
pub mod reset_pair_state;
pub mod run_watchdog;
pub mod start_failover;

use std::error::Error as StdError;

use crate::host::{
    EncodeError, HttpOutput, InvocationResponse, PayloadError, Problem, TriggerKind,
};

/// Trigger binding name of every timer function (`Data.timer`).
pub const TIMER_BINDING: &str = "timer";
/// Trigger binding name of every queue function (`Data.msg`).
pub const QUEUE_BINDING: &str = "msg";
/// Trigger binding name of every HTTP function (`Data.req`).
pub const HTTP_BINDING: &str = "req";
/// Queue output binding to `failover-stages`.
pub const STAGES_OUT: &str = "stages";
/// Queue output binding to `notifications`.
pub const NOTIFY_OUT: &str = "notify";
/// HTTP output binding.
pub use crate::host::HTTP_RES;

/// Queue names (docs/CONTRACTS.md).
pub const STAGES_QUEUE: &str = "failover-stages";
pub const POISON_QUEUE: &str = "failover-stages-poison";
pub const NOTIFICATIONS_QUEUE: &str = "notifications";
pub const REPLICATE_PAIRS_QUEUE: &str = crate::reconcile::job::PAIRS_QUEUE;

/// What function.json declares for one function; a test holds the two equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSpec {
    /// Folder name = function name = handler path `POST /<name>`.
    pub name: &'static str,
    pub trigger: TriggerKind,
    /// Trigger binding name (`Data.<binding>`).
    pub binding: &'static str,
    /// HTTP route (without the `api/` prefix), queue name, or `%SETTING%` schedule.
    pub source: &'static str,
    /// HTTP methods (lower-case); empty for other triggers.
    pub methods: &'static [&'static str],
    /// Queue output bindings this function writes (`(binding, queue)`).
    pub queue_outputs: &'static [(&'static str, &'static str)],
}

/// Every function of the app (docs/CONTRACTS.md).
pub const FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec {
        name: replicate_config::NAME,
        trigger: TriggerKind::Timer,
        binding: TIMER_BINDING,
        source: "%REPLICATE_SCHEDULE%",
        methods: &[],
        queue_outputs: &[],
    },
    FunctionSpec {
        name: replicate_now::NAME,
        trigger: TriggerKind::Http,
        binding: HTTP_BINDING,
        source: "replicate/{jobId?}",
        methods: &["get", "post"],
        queue_outputs: &[],
    },
    FunctionSpec {
        name: replicate_pair::NAME,
        trigger: TriggerKind::Queue,
        binding: QUEUE_BINDING,
        source: REPLICATE_PAIRS_QUEUE,
        methods: &[],
        queue_outputs: &[],
    },
    FunctionSpec {
        name: check_readiness::NAME,
        trigger: TriggerKind::Timer,
        binding: TIMER_BINDING,
        source: "%READINESS_SCHEDULE%",
        methods: &[],
        queue_outputs: &[(NOTIFY_OUT, NOTIFICATIONS_QUEUE)],
    },
    FunctionSpec {
        name: readiness_status::NAME,
        trigger: TriggerKind::Http,
        binding: HTTP_BINDING,
        source: "readiness/{pair?}",
        methods: &["get"],
        queue_outputs: &[],
    },
    FunctionSpec {
        name: alert_webhook::NAME,
        trigger: TriggerKind::Http,
        binding: HTTP_BINDING,
        source: "alerts",
        methods: &["post"],
        queue_outputs: &[(STAGES_OUT, STAGES_QUEUE)],
    },
    FunctionSpec {
        name: start_failover::NAME,
        trigger: TriggerKind::Http,
        binding: HTTP_BINDING,
        source: "failover",
        methods: &["post"],
        queue_outputs: &[(STAGES_OUT, STAGES_QUEUE)],
    },
    FunctionSpec {
        name: failover_run::NAME,
        trigger: TriggerKind::Http,
        binding: HTTP_BINDING,
        source: "failover/{runId}/{action?}",
        methods: &["get", "post"],
        queue_outputs: &[],
    },
    FunctionSpec {
        name: reset_pair_state::NAME,
        trigger: TriggerKind::Http,
        binding: HTTP_BINDING,
        source: "failover/pairs/{pair}/reset",
        methods: &["post"],
        queue_outputs: &[],
    },
    FunctionSpec {
        name: failover_stage::NAME,
        trigger: TriggerKind::Queue,
        binding: QUEUE_BINDING,
        source: STAGES_QUEUE,
        methods: &[],
        queue_outputs: &[
            (STAGES_OUT, STAGES_QUEUE),
            (NOTIFY_OUT, NOTIFICATIONS_QUEUE),
        ],
    },
    FunctionSpec {
        name: failover_poison::NAME,
        trigger: TriggerKind::Queue,
        binding: QUEUE_BINDING,
        source: POISON_QUEUE,
        methods: &[],
        queue_outputs: &[(NOTIFY_OUT, NOTIFICATIONS_QUEUE)],
    },
    FunctionSpec {
        name: notify::NAME,
        trigger: TriggerKind::Queue,
        binding: QUEUE_BINDING,
        source: NOTIFICATIONS_QUEUE,
        methods: &[],
        queue_outputs: &[],
    },
    FunctionSpec {
        name: run_watchdog::NAME,
        trigger: TriggerKind::Timer,
        binding: TIMER_BINDING,
        source: "%WATCHDOG_SCHEDULE%",
        methods: &[],
        queue_outputs: &[],
    },
];

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a handler could not produce its normal answer. Classified once here; the mapping to the
/// host's language is [`HandlerError::into_host_response`].
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The trigger payload or request body is malformed (400, or 413 for size).
    // The message is the source's (error_chain appends it): "invalid request: <what>".
    #[error("invalid request")]
    BadRequest {
        #[from]
        source: PayloadError,
    },
    /// A named resource (pair, run) does not exist (HTTP 404; permanent for queue stages).
    #[error("{what} not found")]
    NotFound { what: String },
    /// The request conflicts with current state (HTTP 409; retried for queue stages).
    #[error("conflict: {detail}")]
    Conflict { detail: String },
    /// A dependency failed in a way that may pass (ARM 429/5xx, storage down, ETag race):
    /// queue → 500 (retry), HTTP → 503.
    #[error("{operation} failed transiently")]
    Transient {
        operation: String,
        #[source]
        source: BoxError,
    },
    /// A failure that retrying cannot fix; the domain has recorded the terminal state.
    #[error("{operation} failed permanently")]
    Permanent {
        operation: String,
        #[source]
        source: BoxError,
    },
    /// The response could not be encoded.
    #[error("cannot encode the response")]
    Encode {
        #[from]
        source: EncodeError,
    },
}

/// What the host gets: the HTTP status of our answer and its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct HostAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HostAnswer {
    /// A 2xx answer with the payload-mode response.
    pub fn ok(response: &InvocationResponse) -> HostAnswer {
        HostAnswer {
            status: 200,
            body: response.to_json_bytes(),
        }
    }

    /// A non-2xx answer with a JSON problem body (the host ignores the body; tests read it).
    pub fn problem(problem: &Problem) -> HostAnswer {
        HostAnswer {
            status: problem.status,
            body: problem.to_json().into_bytes(),
        }
    }
}

/// The error message with its cause chain (`a: b: c`), for the one log line per error.
pub fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl HandlerError {
    pub fn transient(operation: impl Into<String>, source: impl Into<BoxError>) -> Self {
        HandlerError::Transient {
            operation: operation.into(),
            source: source.into(),
        }
    }

    pub fn permanent(operation: impl Into<String>, source: impl Into<BoxError>) -> Self {
        HandlerError::Permanent {
            operation: operation.into(),
            source: source.into(),
        }
    }

    /// Status for the HTTP caller (`res.statusCode`).
    pub fn http_status(&self) -> u16 {
        match self {
            HandlerError::BadRequest { source } => source.status(),
            HandlerError::NotFound { .. } => 404,
            HandlerError::Conflict { .. } => 409,
            HandlerError::Transient { .. } => 503,
            HandlerError::Permanent { .. } | HandlerError::Encode { .. } => 500,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            HandlerError::BadRequest { source } if source.status() == 413 => "payload too large",
            HandlerError::BadRequest { .. } => "bad request",
            HandlerError::NotFound { .. } => "not found",
            HandlerError::Conflict { .. } => "conflict",
            HandlerError::Transient { .. } => "temporarily unavailable",
            HandlerError::Permanent { .. } => "failed",
            HandlerError::Encode { .. } => "internal error",
        }
    }

    /// An RFC 7807 problem for this error (`detail` carries the cause chain, no secrets).
    pub fn problem(&self, status: u16, function: &str, invocation_id: Option<&str>) -> Problem {
        let mut p = Problem::new(status, self.title(), error_chain(self));
        if let HandlerError::BadRequest { source } = self {
            p.field = Some(source.path().to_owned());
        }
        p.function = Some(function.to_owned());
        p.invocation_id = invocation_id.map(str::to_owned);
        p
    }

    /// The answer to the host for a function with trigger `kind` (STYLE #8, see module doc).
    pub fn into_host_answer(
        self,
        kind: TriggerKind,
        function: &str,
        invocation_id: Option<&str>,
    ) -> HostAnswer {
        match kind {
            TriggerKind::Http => {
                let status = self.http_status();
                let res = HttpOutput::problem(&self.problem(status, function, invocation_id));
                HostAnswer::ok(&InvocationResponse::http(res))
            }
            TriggerKind::Queue | TriggerKind::Timer => {
                let status = match &self {
                    HandlerError::Permanent { .. } | HandlerError::NotFound { .. } => {
                        let line = format!("{function}: {}", error_chain(&self));
                        return HostAnswer::ok(&InvocationResponse::new().log(line));
                    }
                    HandlerError::BadRequest { source } => source.status(),
                    HandlerError::Transient { .. }
                    | HandlerError::Conflict { .. }
                    | HandlerError::Encode { .. } => 500,
                };
                HostAnswer::problem(&self.problem(status, function, invocation_id))
            }
        }
    }

    /// True when the host will retry (queue) / the caller may retry (HTTP 503).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HandlerError::Transient { .. } | HandlerError::Conflict { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(msg: &str) -> std::io::Error {
        std::io::Error::other(msg.to_owned())
    }

    #[test]
    fn a_transient_queue_failure_answers_500_so_the_host_retries() {
        let a = HandlerError::transient("read run r1", io("timeout")).into_host_answer(
            TriggerKind::Queue,
            "FailoverStage",
            Some("i1"),
        );
        assert_eq!(a.status, 500);
        let p: Problem = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(p.detail, "read run r1 failed transiently: timeout");
        assert_eq!(p.invocation_id.as_deref(), Some("i1"));
    }

    #[test]
    fn a_permanent_queue_failure_answers_200_with_the_reason_logged() {
        let a = HandlerError::permanent("invite consumers", io("bad target")).into_host_answer(
            TriggerKind::Queue,
            "FailoverStage",
            None,
        );
        assert_eq!(a.status, 200);
        let r = InvocationResponse::parse(&a.body, &[]).unwrap();
        assert_eq!(
            r.logs(),
            ["FailoverStage: invite consumers failed permanently: bad target"]
        );
    }

    #[test]
    fn http_errors_reach_the_caller_through_res_with_a_problem_body() {
        for (err, status) in [
            (HandlerError::from(PayloadError::missing("body.pair")), 400),
            (
                HandlerError::NotFound {
                    what: "pair `x`".into(),
                },
                404,
            ),
            (
                HandlerError::Conflict {
                    detail: "run active".into(),
                },
                409,
            ),
            (HandlerError::transient("enqueue", io("down")), 503),
        ] {
            let a = err.into_host_answer(TriggerKind::Http, "StartFailover", None);
            assert_eq!(a.status, 200);
            let r = InvocationResponse::parse(&a.body, &["res"]).unwrap();
            let res = r.http_res().unwrap();
            assert_eq!(res.status(), status);
            assert_eq!(res.header("content-type"), Some("application/problem+json"));
            let p: Problem = serde_json::from_str(&res.body_text().unwrap()).unwrap();
            assert_eq!(p.status, status);
        }
    }

    #[test]
    fn a_bad_request_problem_names_the_cause_once() {
        let err = HandlerError::from(PayloadError::invalid("body.mode", "expected failover"));
        let p = err.problem(400, "StartFailover", None);
        assert_eq!(
            p.detail,
            "invalid request: invalid `body.mode`: expected failover"
        );
        assert_eq!(p.field.as_deref(), Some("body.mode"));
    }

    #[test]
    fn function_names_are_unique_and_valid_folder_names() {
        let mut names: Vec<_> = FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FUNCTIONS.len());
        for n in names {
            assert!(n.chars().next().is_some_and(|c| c.is_ascii_alphabetic()));
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            );
        }
    }
}
