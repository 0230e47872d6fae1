//! The human surface: a self-contained HTML status page for one or more readiness reports.
//!
//! Invariants: no external assets (inline CSS, no JS, no web fonts, no images), every piece of
//! report text HTML-escaped, readable on a phone (viewport meta; tables collapse into labelled
//! cards below 700 px). The page is a pure function of the configured pairs, the reports and
//! `now` (for ages).
//!
//! Layout: a summary line with one pill per pair linking to its card (`#pair-…`, see
//! [`pair_anchor`]); one card per pair, worst first, then the configured pairs with no report
//! yet ("not checked yet"). A pair that is not `normal` says so under its header (phase,
//! serving side, since, a link to the run) and in its pill; active runs are listed with their
//! status and stage. In a card, Critical and Warning findings are a table; Info findings
//! sit in a `<details>` that is closed by default, so many of them never push the next pair out
//! of sight. Text in `backticks` (commands, names) is shown as `<code>`.
//!
//! Must not import: handlers, host, store, arm.

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::evaluate::fmt_secs;
use super::report::{Finding, Report, Severity, ShareRpo, Status};
use crate::pair_state::Phase;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root{--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--unknown:#8250df;--info:#0969da;--fg:#1f2328;--muted:#59636e;
--bg:#f6f8fa;--card:#fff;--line:#d1d9e0}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header.top{background:#24292f;color:#fff;padding:14px 16px}
header.top h1{margin:0;font-size:19px}
header.top p{margin:4px 0 0;color:#d1d9e0;font-size:13px}
main{max-width:1100px;margin:0 auto;padding:12px}
.summary{display:flex;flex-wrap:wrap;gap:8px;margin:4px 0 12px}
.pill{display:inline-block;padding:2px 10px;border-radius:999px;font-weight:600;font-size:13px;color:#fff;white-space:nowrap}
.pill.Ready{background:var(--ok)}.pill.Degraded{background:var(--warn)}.pill.NotReady{background:var(--bad)}.pill.Unknown{background:var(--unknown)}.pill.Unchecked{background:var(--muted)}
a.pill{text-decoration:none}a.pill:hover,a.pill:focus{outline:2px solid var(--fg);outline-offset:1px}
details.info{margin:8px 0 0}details.info>summary{cursor:pointer;color:var(--info);font-weight:600;font-size:14px;padding:4px 0}
section.pair{background:var(--card);border:1px solid var(--line);border-left:6px solid var(--line);border-radius:8px;padding:14px;margin:0 0 16px}
section.pair.Unchecked{border-left-color:var(--muted)}section.pair.Ready{border-left-color:var(--ok)}section.pair.Degraded{border-left-color:var(--warn)}section.pair.NotReady{border-left-color:var(--bad)}section.pair.Unknown{border-left-color:var(--unknown)}
.head{display:flex;flex-wrap:wrap;align-items:center;gap:10px;justify-content:space-between}
.head h2{margin:0;font-size:20px;word-break:break-word}
.score{font-size:30px;font-weight:700;line-height:1}
.score small{font-size:14px;color:var(--muted);font-weight:400}
.Ready .score{color:var(--ok)}.Degraded .score{color:var(--warn)}.NotReady .score{color:var(--bad)}.Unknown .score{color:var(--unknown)}
.unknown-note{margin:8px 0 0;padding:6px 10px;border-radius:6px;background:#fbefff;color:var(--unknown);font-weight:600}
dl.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:6px 14px;margin:12px 0}
dl.facts div{min-width:0}
dt{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
dd{margin:0;font-weight:600;word-break:break-word}
h3{font-size:15px;margin:16px 0 6px}
table{width:100%;border-collapse:collapse;font-size:14px}
th,td{text-align:left;vertical-align:top;padding:7px 8px;border-bottom:1px solid var(--line)}
th{background:var(--bg);font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
code{background:var(--bg);border-radius:4px;padding:0 3px;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all;overflow-wrap:anywhere}
.sev{display:inline-block;font-weight:700;font-size:12px;white-space:nowrap;padding:1px 8px;border-radius:999px}
.sev.Critical{color:var(--bad);background:#ffebe9}.sev.Warning{color:var(--warn);background:#fff8c5}.sev.Info{color:var(--info);background:#ddf4ff}
.code{font-weight:700}
tr.Critical td:first-child{box-shadow:inset 3px 0 var(--bad)}tr.Warning td:first-child{box-shadow:inset 3px 0 var(--warn)}tr.Info td:first-child{box-shadow:inset 3px 0 var(--info)}
.remedy{color:var(--fg)}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:600}
.none{color:var(--muted);margin:6px 0}
p.state{margin:10px 0 0;padding:8px 10px;border-radius:6px;background:#fff8c5;border:1px solid #d4a72c}
p.state.failed-over{background:#ddf4ff;border-color:#54aeff}
ul.runs{margin:8px 0 0;padding-left:20px}ul.runs li{margin:2px 0}
footer{color:var(--muted);font-size:12px;text-align:center;padding:8px 12px 20px}
@media (max-width:700px){
 main{padding:8px}
 section.pair{padding:12px}
 table,thead,tbody,tr,th,td{display:block}
 thead{position:absolute;left:-9999px}
 tr{border:1px solid var(--line);border-radius:6px;margin:0 0 10px;padding:4px 0;background:var(--card)}
 td{border:0;padding:4px 10px}
 td::before{content:attr(data-label);display:block;font-size:11px;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
 tr.Critical{border-left:4px solid var(--bad)}tr.Warning{border-left:4px solid var(--warn)}tr.Info{border-left:4px solid var(--info)}
 tr td:first-child{box-shadow:none!important}
 td.sevcell{padding-bottom:0}
 td.sevcell::before{content:none}
}
"#;

fn fmt_time(t: OffsetDateTime) -> String {
    let d = t.date();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        d.year(),
        u8::from(d.month()),
        d.day(),
        t.hour(),
        t.minute()
    )
}

/// Renders the status page for `reports` (one section per pair, worst first).
pub fn render_status_page(reports: &[Report]) -> String {
    render_status_page_at(reports, OffsetDateTime::now_utc())
}

/// As [`render_status_page`], with the clock passed in (tests). Every pair shown has a report;
/// use [`render_configured_page_at`] when configured pairs may not have been checked yet.
pub fn render_status_page_at(reports: &[Report], now: OffsetDateTime) -> String {
    render_configured_page_at(&[], reports, now)
}

/// The `id` of a pair's card (`pair-` + the name with every character outside `[A-Za-z0-9-]`
/// written `_xx_` in hex), so any pair name gives a distinct, valid fragment for the summary's
/// links.
pub fn pair_anchor(pair: &str) -> String {
    let mut out = String::with_capacity(pair.len() + 5);
    out.push_str("pair-");
    for c in pair.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c);
        } else {
            let _ = write!(out, "_{:x}_", u32::from(c));
        }
    }
    out
}

/// Escapes `text`, showing each `backticked` span as `<code>` (its content escaped too). An
/// unpaired backtick is kept as text.
pub fn with_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        let Some(len) = rest[open + 1..].find('`') else {
            break;
        };
        out.push_str(&escape(&rest[..open]));
        out.push_str("<code>");
        out.push_str(&escape(&rest[open + 1..open + 1 + len]));
        out.push_str("</code>");
        rest = &rest[open + 1 + len + 1..];
    }
    out.push_str(&escape(rest));
    out
}

/// The status page for the pairs of the DR config: `configured` names every pair (in config
/// order); `reports` holds the latest report of those checked. Pairs without a report are listed
/// as "not checked yet" (and counted). Reports of pairs not in `configured` are shown too.
pub fn render_configured_page_at(
    configured: &[String],
    reports: &[Report],
    now: OffsetDateTime,
) -> String {
    let unchecked: Vec<&String> = configured
        .iter()
        .filter(|c| !reports.iter().any(|r| &r.pair == *c))
        .collect();
    let mut sorted: Vec<&Report> = reports.iter().collect();
    sorted.sort_by(|a, b| {
        b.status
            .rank()
            .cmp(&a.status.rank())
            .then_with(|| a.pair.cmp(&b.pair))
    });
    let overall = sorted.first().map(|r| r.status);
    let mut h = String::with_capacity(8192);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<meta name=\"color-scheme\" content=\"light\">\n");
    let title = match overall {
        Some(s) => format!("Data Share DR readiness: {s}"),
        None => "Data Share DR readiness".to_string(),
    };
    let _ = writeln!(h, "<title>{}</title>", escape(&title));
    let _ = writeln!(h, "<style>{CSS}</style>\n</head>\n<body>");
    h.push_str("<header class=\"top\"><h1>Data Share DR readiness</h1>");
    let _ = write!(
        h,
        "<p>Page generated {}</p></header>\n<main>\n",
        fmt_time(now)
    );

    let count = |s: Status| sorted.iter().filter(|r| r.status == s).count();
    let total = sorted.len() + unchecked.len();
    h.push_str("<div class=\"summary\" id=\"summary\">");
    let mut tally: Vec<String> = [
        Status::NotReady,
        Status::Unknown,
        Status::Degraded,
        Status::Ready,
    ]
    .into_iter()
    .filter(|s| count(*s) > 0)
    .map(|s| format!("{} {s}", count(s)))
    .collect();
    if !unchecked.is_empty() {
        tally.push(format!("{} not checked yet", unchecked.len()));
    }
    let _ = write!(
        h,
        "<span data-role=\"tally\">{total} pair{}{}{}:</span>",
        if total == 1 { "" } else { "s" },
        if tally.is_empty() { "" } else { " — " },
        tally.join(", ")
    );
    for r in &sorted {
        let _ = write!(
            h,
            "<a class=\"pill {status}\" href=\"#{anchor}\" data-pair=\"{pair}\">{pair}: {status}{phase}</a>",
            status = r.status,
            anchor = pair_anchor(&r.pair),
            pair = escape(&r.pair),
            phase = r
                .pair_state
                .as_ref()
                .filter(|s| s.phase != Phase::Normal)
                .map(|s| format!(" · {}", s.phase.words()))
                .unwrap_or_default(),
        );
    }
    for name in &unchecked {
        let _ = write!(
            h,
            "<a class=\"pill Unchecked\" href=\"#{anchor}\" data-pair=\"{pair}\">{pair}: not checked yet</a>",
            anchor = pair_anchor(name),
            pair = escape(name),
        );
    }
    h.push_str("</div>\n");
    if total == 0 {
        h.push_str("<p class=\"none\">No pair is configured and no readiness report has been stored yet.</p>\n");
    }
    for report in sorted {
        render_pair(&mut h, report, now);
    }
    for name in unchecked {
        render_unchecked(&mut h, name);
    }
    h.push_str(
        "</main>\n<footer>datashare-dr · readiness is checked on a schedule; \
                JSON at <code>api/readiness</code></footer>\n</body>\n</html>\n",
    );
    h
}

/// The card of a configured pair that has no stored report yet.
fn render_unchecked(h: &mut String, name: &str) {
    let pair = escape(name);
    let anchor = pair_anchor(name);
    let _ = writeln!(
        h,
        "<section class=\"pair Unchecked\" id=\"{anchor}\" data-pair=\"{pair}\" data-status=\"Unchecked\">\
         <div class=\"head\"><h2>{pair} <span class=\"pill Unchecked\" data-role=\"status\">not checked yet</span></h2></div>\
         <p class=\"none\">This pair is in the DR config but has not been checked yet: the \
         <code>CheckReadiness</code> timer writes its first report (or run \
         <code>datashare-dr check --config FILE --pair {pair}</code>).</p></section>"
    );
}

fn render_pair(h: &mut String, r: &Report, now: OffsetDateTime) {
    let pair = escape(&r.pair);
    let anchor = pair_anchor(&r.pair);
    let status = r.status.as_str();
    let _ = writeln!(
        h,
        "<section class=\"pair {status}\" id=\"{anchor}\" data-pair=\"{pair}\" data-status=\"{status}\">"
    );
    if r.status == Status::Unknown {
        // Nothing was assessed: no score, and a plain word on what that means.
        let _ = writeln!(
            h,
            "<div class=\"head\"><h2>{pair} <span class=\"pill {status}\" data-role=\"status\">{status}</span></h2>\
             <div class=\"score\" data-role=\"score\">?<small>/100</small></div></div>\
             <p class=\"unknown-note\" data-role=\"unknown-note\">Cannot assess: this tool could not \
             read the pair (see the finding below for the fault and its fix). This says nothing about \
             the regions: do not fail over because of it.</p>"
        );
    } else {
        let _ = writeln!(
            h,
            "<div class=\"head\"><h2>{pair} <span class=\"pill {status}\" data-role=\"status\">{status}</span></h2>\
             <div class=\"score\" data-role=\"score\">{}<small>/100</small></div></div>",
            r.score
        );
    }
    render_state(h, r);
    h.push_str("<dl class=\"facts\">");
    let fact = |h: &mut String, label: &str, value: &str| {
        let _ = write!(h, "<div><dt>{label}</dt><dd>{value}</dd></div>");
    };
    fact(
        h,
        "Regions",
        &format!(
            "{} → {}",
            escape(&r.primary_region),
            escape(&r.secondary_region)
        ),
    );
    let age = (now - r.checked_at).whole_seconds();
    fact(
        h,
        "Last check",
        &format!("{} ({} ago)", fmt_time(r.checked_at), fmt_secs(age)),
    );
    let drill = match &r.last_drill {
        Some(d) => {
            let mut s = format!(
                "{} ({} days ago)",
                fmt_time(d.completed_at),
                (now - d.completed_at).whole_days()
            );
            if let Some(rto) = d.rto_secs {
                let _ = write!(s, ", RTO {}", fmt_rto(rto));
            }
            s
        }
        None => "never".to_string(),
    };
    fact(h, "Last drill", &drill);
    fact(h, "Worst RPO", &worst_rpo(&r.rpo));
    fact(
        h,
        "Findings",
        &format!(
            "{} critical · {} warning · {} info",
            r.counts.critical, r.counts.warning, r.counts.info
        ),
    );
    h.push_str("</dl>\n");

    h.push_str("<h3>Findings</h3>\n");
    let (info, acted): (Vec<&Finding>, Vec<&Finding>) = r
        .findings
        .iter()
        .partition(|f| f.severity == Severity::Info);
    if r.findings.is_empty() {
        h.push_str("<p class=\"none\">No findings: a failover would work now.</p>\n");
    } else if acted.is_empty() {
        h.push_str("<p class=\"none\">No critical or warning findings.</p>\n");
    } else {
        findings_table(h, &acted);
    }
    if !info.is_empty() {
        // Closed by default: informational rows must not push the next pair down the page.
        let _ = writeln!(
            h,
            "<details class=\"info\" data-role=\"info-findings\"><summary>{} info finding{} \
             (nothing to fix now)</summary>",
            info.len(),
            if info.len() == 1 { "" } else { "s" }
        );
        findings_table(h, &info);
        h.push_str("</details>\n");
    }
    if !r.rpo.is_empty() {
        h.push_str("<h3>Recovery point per share</h3>\n");
        h.push_str(
            "<table class=\"rpo\"><thead><tr><th>Share</th><th>Schedule</th>\
             <th>Last snapshot</th><th>Age / allowed</th></tr></thead><tbody>\n",
        );
        for rpo in &r.rpo {
            render_rpo(h, rpo);
        }
        h.push_str("</tbody></table>\n");
    }
    h.push_str("</section>\n");
}

/// The link to a run's status (`GET api/failover/{runId}`, the `FailoverRun` route).
fn run_link(run_id: &str) -> String {
    let id = escape(run_id);
    format!("<a href=\"/api/failover/{id}\" data-role=\"run-link\"><code>{id}</code></a>")
}

/// The pair state (when it is not `normal`) and the active runs, under the card's header.
fn render_state(h: &mut String, r: &Report) {
    if let Some(st) = r.pair_state.as_ref().filter(|s| s.phase != Phase::Normal) {
        let since = st
            .since
            .map(fmt_time)
            .unwrap_or_else(|| "an unknown time".into());
        let run = st
            .run_id
            .as_deref()
            .map(|id| format!(" · run {}", run_link(id)))
            .unwrap_or_default();
        let question = if st.phase == Phase::FailedOver {
            " The checks below ask whether the primary is ready to take back (failback readiness)."
        } else {
            ""
        };
        let _ = writeln!(
            h,
            "<p class=\"state {phase}\" data-role=\"pair-state\" data-phase=\"{phase}\" \
             data-serving=\"{serving}\"><strong>{words}</strong> — {serving} serving since \
             {since}{run}.{question}</p>",
            phase = st.phase.as_str(),
            serving = st.serving.as_str(),
            words = capitalised(st.phase.words()),
        );
    }
    if r.state_changed_since_check {
        h.push_str(
            "<p class=\"none\" data-role=\"state-changed\">The pair state changed after this \
             check; the findings below answer for the state it had then, until the next check.</p>\n",
        );
    }
    if !r.active_runs.is_empty() {
        h.push_str("<ul class=\"runs\" data-role=\"active-runs\">");
        for run in &r.active_runs {
            let stage = run
                .stage
                .as_deref()
                .map(|s| format!(", stage <code>{}</code>", escape(s)))
                .unwrap_or_default();
            let _ = write!(
                h,
                "<li data-run=\"{id}\" data-status=\"{status}\">Active {mode} run {link}: \
                 <strong>{status}</strong>{stage} (started {started})</li>",
                id = escape(&run.run_id),
                mode = escape(&run.mode),
                link = run_link(&run.run_id),
                status = escape(&run.status),
                started = fmt_time(run.created_at),
            );
        }
        h.push_str("</ul>\n");
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn findings_table(h: &mut String, findings: &[&Finding]) {
    h.push_str(
        "<table class=\"findings\"><thead><tr><th>Severity</th><th>Finding</th>\
         <th>Resource</th><th>Remedy</th></tr></thead><tbody>\n",
    );
    for f in findings {
        render_finding(h, f);
    }
    h.push_str("</tbody></table>\n");
}

fn render_finding(h: &mut String, f: &Finding) {
    let sev = f.severity.as_str();
    let _ = writeln!(
        h,
        "<tr class=\"finding {sev}\" data-code=\"{code}\"><td data-label=\"Severity\" class=\"sevcell\"><span class=\"sev {sev}\">{sev}</span></td>\
         <td data-label=\"Finding\"><span class=\"code\">{code}</span><br>{msg}</td>\
         <td data-label=\"Resource\"><code>{res}</code></td>\
         <td data-label=\"Remedy\" class=\"remedy\">{remedy}</td></tr>",
        code = escape(&f.code),
        msg = with_code(&f.message),
        res = escape(&f.resource_id),
        remedy = with_code(&f.remedy),
    );
}

fn render_rpo(h: &mut String, r: &ShareRpo) {
    let schedule = r
        .recurrence_interval
        .as_deref()
        .map(|i| match i {
            "Hour" => "hourly".to_string(),
            "Day" => "daily".to_string(),
            other => escape(other),
        })
        .unwrap_or_else(|| "none".to_string());
    let last = r
        .last_success
        .map(fmt_time)
        .unwrap_or_else(|| "none yet".to_string());
    let age = match (r.age_secs, r.limit_secs) {
        (Some(a), Some(l)) => format!(
            "<span class=\"{}\">{}</span> / {}",
            if r.exceeded { "bad" } else { "ok" },
            fmt_secs(a),
            fmt_secs(l)
        ),
        (Some(a), None) => fmt_secs(a),
        (None, Some(l)) => format!("— / {}", fmt_secs(l)),
        (None, None) => "—".to_string(),
    };
    let _ = writeln!(
        h,
        "<tr><td data-label=\"Share\">{}</td><td data-label=\"Schedule\">{schedule}</td>\
         <td data-label=\"Last snapshot\">{last}</td><td data-label=\"Age / allowed\">{age}</td></tr>",
        escape(&r.share)
    );
}

fn worst_rpo(rpo: &[ShareRpo]) -> String {
    // The share furthest over (or closest to) its limit, else the oldest snapshot.
    let ratio = |r: &ShareRpo| match (r.age_secs, r.limit_secs) {
        (Some(a), Some(l)) if l > 0 => a as f64 / l as f64,
        _ => 0.0,
    };
    let worst = rpo.iter().filter(|r| r.age_secs.is_some()).max_by(|a, b| {
        ratio(a)
            .total_cmp(&ratio(b))
            .then_with(|| a.age_secs.cmp(&b.age_secs))
    });
    match worst {
        Some(r) => {
            let age = fmt_secs(r.age_secs.unwrap_or(0));
            match r.limit_secs {
                Some(l) if r.exceeded => format!(
                    "{age} on {} (over the {} limit)",
                    escape(&r.share),
                    fmt_secs(l)
                ),
                Some(l) => format!("{age} on {} (limit {})", escape(&r.share), fmt_secs(l)),
                None => format!("{age} on {}", escape(&r.share)),
            }
        }
        None => "unknown".to_string(),
    }
}

fn fmt_rto(secs: f64) -> String {
    if secs < 120.0 {
        format!("{secs:.0} s")
    } else {
        fmt_secs(secs.round() as i64)
    }
}

/// Severity as a CSS class (exposed for tests that look for it).
pub fn severity_class(s: Severity) -> &'static str {
    s.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readiness::report::{SeverityCounts, codes};
    use time::macros::datetime;

    fn report(pair: &str, status: Status, findings: Vec<Finding>) -> Report {
        Report {
            pair: pair.into(),
            status,
            score: 40,
            checked_at: datetime!(2025-06-01 12:00 UTC),
            primary_region: "westeurope".into(),
            secondary_region: "northeurope".into(),
            counts: SeverityCounts {
                critical: 1,
                warning: 0,
                info: 0,
            },
            findings,
            rpo: vec![ShareRpo {
                share: "sales".into(),
                recurrence_interval: Some("Day".into()),
                last_success: Some(datetime!(2025-06-01 03:00 UTC)),
                age_secs: Some(9 * 3600),
                limit_secs: Some(2 * 86_400),
                exceeded: false,
            }],
            last_drill: None,
            pair_state: None,
            active_runs: Vec::new(),
            state_changed_since_check: false,
        }
    }

    #[test]
    fn escapes_every_piece_of_report_text() {
        let f = Finding {
            severity: Severity::Critical,
            code: codes::DATASET_MISSING.into(),
            resource_id: "/x/<script>alert(1)</script>".into(),
            message: "a \"quoted\" & <b>bold</b> message".into(),
            remedy: "it's <fine>".into(),
        };
        let html = render_status_page_at(
            &[report("p<1>", Status::NotReady, vec![f])],
            datetime!(2025-06-01 12:30 UTC),
        );
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>bold"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("a &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt; message"));
        assert!(html.contains("it&#39;s &lt;fine&gt;"));
        assert!(html.contains("data-pair=\"p&lt;1&gt;\""));
    }

    #[test]
    fn is_self_contained_and_phone_ready() {
        let html = render_status_page_at(
            &[report("sales", Status::Ready, vec![])],
            datetime!(2025-06-01 12:30 UTC),
        );
        assert!(html.contains("name=\"viewport\""));
        assert!(html.contains("@media (max-width:700px)"));
        for banned in ["<script", "<link", "http://", "https://", "@import", "url("] {
            assert!(!html.contains(banned), "page must not contain {banned}");
        }
        assert!(html.contains("No findings"));
        assert!(html.contains("9 h 0 min"));
    }

    #[test]
    fn backticks_become_escaped_code_and_unpaired_ones_stay_text() {
        assert_eq!(
            with_code("run `a <b> & 'c'` now"),
            "run <code>a &lt;b&gt; &amp; &#39;c&#39;</code> now"
        );
        assert_eq!(
            with_code("`x` and `y`"),
            "<code>x</code> and <code>y</code>"
        );
        assert_eq!(with_code("a ` b <i>"), "a ` b &lt;i&gt;");
        assert_eq!(with_code("no code"), "no code");
    }

    #[test]
    fn pair_anchors_are_valid_ids_and_distinct_for_distinct_names() {
        let names = [
            "sales",
            "sales eu",
            "sales-eu",
            "sales_eu",
            "sales_20_eu",
            "ü",
            "a\"b",
        ];
        let anchors: Vec<String> = names.iter().map(|n| pair_anchor(n)).collect();
        for a in &anchors {
            assert!(
                a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{a}"
            );
        }
        let distinct: std::collections::BTreeSet<&String> = anchors.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{anchors:?}");
        assert_eq!(pair_anchor("sales"), "pair-sales");
    }

    #[test]
    fn shows_worst_pairs_first() {
        let html = render_status_page_at(
            &[
                report("alpha", Status::Ready, vec![]),
                report("beta", Status::NotReady, vec![]),
            ],
            datetime!(2025-06-01 12:30 UTC),
        );
        let a = html.find("data-pair=\"alpha\"").expect("alpha");
        let b = html.find("data-pair=\"beta\"").expect("beta");
        assert!(b < a);
        assert!(html.contains("<title>Data Share DR readiness: NotReady</title>"));
    }
}
