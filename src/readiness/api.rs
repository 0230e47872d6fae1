//! The `ReadinessStatus` surface as a pure function: which reports to show, as JSON or as the
//! HTML status page, with problem JSON for an unknown pair.
//!
//! Routes (function `ReadinessStatus`, route `readiness/{pair?}`):
//! - `GET api/readiness` → `{"generatedAt", "overall", "pairs": [Report…], "unchecked": [name…]}`
//! - `GET api/readiness/{pair}` → the pair's latest `Report`; 404 problem JSON
//!   (`application/problem+json`, RFC 9457) for a pair not in the DR config or never checked.
//! - Either with `Accept: text/html` (a browser) → the status page instead.
//!
//! Must not import: handlers, host, store (the caller loads the reports).

use serde::Serialize;
use time::OffsetDateTime;

use super::page::{render_configured_page_at, render_status_page_at};
use super::report::{Report, Status};

/// A rendered answer: status code, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// `GET api/readiness` body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllPairs<'a> {
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Worst status over the checked pairs; `null` when none was checked.
    pub overall: Option<Status>,
    pub pairs: &'a [Report],
    /// Configured pairs with no stored report yet.
    pub unchecked: Vec<String>,
}

/// RFC 9457 problem details.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

/// True when the client prefers HTML (`Accept` names `text/html` before any JSON type).
pub fn wants_html(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let mut html_q = None;
    let mut json_q = None;
    for part in accept.split(',') {
        let mut bits = part.split(';');
        let media = bits.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = bits
            .filter_map(|b| b.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if media == "text/html" || media == "application/xhtml+xml" {
            html_q = Some(html_q.map_or(q, |h: f32| h.max(q)));
        } else if media == "application/json" || media.ends_with("+json") {
            json_q = Some(json_q.map_or(q, |j: f32| j.max(q)));
        }
    }
    match (html_q, json_q) {
        (Some(h), Some(j)) => h > j,
        (Some(h), None) => h > 0.0,
        _ => false,
    }
}

fn json<T: Serialize>(status: u16, content_type: &'static str, value: &T) -> ApiResponse {
    match serde_json::to_string_pretty(value) {
        Ok(body) => ApiResponse {
            status,
            content_type,
            body,
        },
        Err(e) => ApiResponse {
            status: 500,
            content_type: "application/problem+json",
            body: format!(
                "{{\"type\":\"about:blank\",\"title\":\"Internal Server Error\",\"status\":500,\"detail\":{}}}",
                serde_json::Value::String(format!("could not encode the report: {e}"))
            ),
        },
    }
}

fn not_found(detail: String) -> ApiResponse {
    json(
        404,
        "application/problem+json",
        &Problem {
            kind: "about:blank".into(),
            title: "Not Found".into(),
            status: 404,
            detail,
        },
    )
}

/// Answers `GET api/readiness[/{pair}]`.
///
/// `configured` = pair names in the DR config (order kept); `reports` = the latest stored report
/// of each checked pair; `pair` = the route parameter; `accept` = the request's Accept header.
pub fn respond(
    configured: &[String],
    reports: &[Report],
    pair: Option<&str>,
    accept: Option<&str>,
    now: OffsetDateTime,
) -> ApiResponse {
    let html = wants_html(accept);
    match pair.filter(|p| !p.is_empty()) {
        None => {
            if html {
                return ApiResponse {
                    status: 200,
                    content_type: "text/html; charset=utf-8",
                    body: render_configured_page_at(configured, reports, now),
                };
            }
            let unchecked = configured
                .iter()
                .filter(|c| !reports.iter().any(|r| &r.pair == *c))
                .cloned()
                .collect();
            let overall = reports.iter().map(|r| r.status).max_by_key(|s| s.rank());
            json(
                200,
                "application/json",
                &AllPairs {
                    generated_at: now,
                    overall,
                    pairs: reports,
                    unchecked,
                },
            )
        }
        Some(name) => {
            if !configured.iter().any(|c| c == name) {
                return not_found(format!("pair {name:?} is not in the DR config"));
            }
            let Some(report) = reports.iter().find(|r| r.pair == name) else {
                return not_found(format!("pair {name:?} has no readiness report yet"));
            };
            if html {
                ApiResponse {
                    status: 200,
                    content_type: "text/html; charset=utf-8",
                    body: render_status_page_at(std::slice::from_ref(report), now),
                }
            } else {
                json(200, "application/json", report)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readiness::report::SeverityCounts;
    use time::macros::datetime;

    fn report(pair: &str, status: Status) -> Report {
        Report {
            pair: pair.into(),
            status,
            score: 100,
            checked_at: datetime!(2025-06-01 12:00 UTC),
            primary_region: "westeurope".into(),
            secondary_region: "northeurope".into(),
            counts: SeverityCounts::default(),
            findings: vec![],
            rpo: vec![],
            last_drill: None,
            pair_state: None,
            active_runs: Vec::new(),
            state_changed_since_check: false,
        }
    }

    const NOW: OffsetDateTime = datetime!(2025-06-01 12:05 UTC);

    #[test]
    fn lists_all_pairs_with_the_worst_status_and_the_unchecked_ones() {
        let configured = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let reports = vec![report("a", Status::Ready), report("b", Status::Degraded)];
        let r = respond(&configured, &reports, None, None, NOW);
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "application/json");
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
        assert_eq!(v["overall"], "Degraded");
        assert_eq!(v["pairs"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["unchecked"], serde_json::json!(["c"]));
        assert_eq!(v["generatedAt"], "2025-06-01T12:05:00Z");
    }

    #[test]
    fn answers_one_pair_or_a_404_problem() {
        let configured = vec!["a".to_string(), "b".to_string()];
        let reports = vec![report("a", Status::Ready)];
        let ok = respond(&configured, &reports, Some("a"), None, NOW);
        assert_eq!(ok.status, 200);
        let v: serde_json::Value = serde_json::from_str(&ok.body).expect("json");
        assert_eq!(v["pair"], "a");
        for (pair, text) in [
            ("zzz", "not in the DR config"),
            ("b", "no readiness report yet"),
        ] {
            let nf = respond(&configured, &reports, Some(pair), None, NOW);
            assert_eq!(nf.status, 404);
            assert_eq!(nf.content_type, "application/problem+json");
            let v: serde_json::Value = serde_json::from_str(&nf.body).expect("json");
            assert_eq!(v["status"], 404);
            assert!(
                v["detail"].as_str().is_some_and(|d| d.contains(text)),
                "{v}"
            );
        }
    }

    #[test]
    fn serves_the_page_to_browsers_and_json_to_everyone_else() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(Some(browser)));
        assert!(!wants_html(Some("application/json")));
        assert!(!wants_html(Some("*/*")));
        assert!(!wants_html(None));
        assert!(!wants_html(Some("text/html;q=0.5, application/json")));
        let configured = vec!["a".to_string()];
        let reports = vec![report("a", Status::Ready)];
        let r = respond(&configured, &reports, None, Some(browser), NOW);
        assert_eq!(r.content_type, "text/html; charset=utf-8");
        assert!(r.body.starts_with("<!DOCTYPE html>"));
        let one = respond(&configured, &reports, Some("a"), Some(browser), NOW);
        assert!(one.body.contains("data-pair=\"a\""));
    }
}
