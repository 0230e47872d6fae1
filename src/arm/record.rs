//! Recording ARM exchanges (issue 16): every request the [`super::ArmClient`] sends and the
//! answer it gets, written as Azure SDK *SessionRecords* JSON — the form of the reference
//! recordings in `tests/fixtures/recordings/` — so an operator can send the project evidence of
//! how their tenant's Data Share behaves, and the replay harnesses can run it.
//!
//! File shape: `{"Entries":[{"RequestUri","RequestMethod","RequestHeaders","RequestBody",
//! "StatusCode","ResponseHeaders","ResponseBody"}…],"Variables":{…}}`; bodies are JSON values
//! when they parse (else the text; `null` when empty). One file per recorder, rewritten after
//! every exchange (so a crash loses nothing), rolled over to a new file every
//! [`MAX_ENTRIES_PER_FILE`] entries (long `serve` sessions).
//!
//! Sanitising (docs/recording.md):
//! - always: the `Authorization` header (never captured: written as `Sanitized`), bearer tokens
//!   and JWTs anywhere, SAS signatures (`sig=…` → `sig=Sanitized`), `Set-Cookie`, and e-mail
//!   addresses (→ `userN@example.com`, the same address always the same N, so matches between
//!   an invitation and a share subscription stay visible);
//! - by default (not with `keep_ids`): subscription ids (learnt from `/subscriptions/{id}` and
//!   `subscriptionId` fields) and tenant ids (fields named `*tenantId` and
//!   `targetActiveDirectoryId`) → stable pseudonym GUIDs `00000000-0000-0000-0000-00000000000N`
//!   (subscriptions) and `00000000-0000-0000-0001-00000000000N` (tenants), everywhere they occur.
//!
//! Must not import reconcile, readiness, failover, handlers or host.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http::HeaderMap;
use serde_json::{Map, Value, json};
use url::Url;

/// Entries per file before the recorder starts the next file.
pub const MAX_ENTRIES_PER_FILE: usize = 500;

/// A recorder could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot record ARM exchanges into {dir}: {source} (give a writable directory)")]
pub struct RecordError {
    /// The directory asked for.
    pub dir: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Collects exchanges into SessionRecords files under one directory. Cheap to clone.
#[derive(Clone)]
pub struct Recorder(Arc<Inner>);

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dir", &self.0.dir)
            .field("keep_ids", &self.0.keep_ids)
            .finish_non_exhaustive()
    }
}

struct Inner {
    dir: PathBuf,
    stem: String,
    keep_ids: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    part: usize,
    entries: Vec<Value>,
    subscriptions: Vec<String>,
    tenants: Vec<String>,
    emails: Vec<String>,
    write_error: Option<String>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Recorder {
    /// A recorder writing into `dir` (created if missing). Writes its (empty) first file at
    /// once, so an unwritable directory fails here, before any ARM call.
    pub fn create(dir: &Path, keep_ids: bool) -> Result<Self, RecordError> {
        let err = |source| RecordError {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let now = time::OffsetDateTime::now_utc();
        let stem = format!(
            "datashare-dr-{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}-{}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let r = Recorder(Arc::new(Inner {
            dir: dir.to_owned(),
            stem,
            keep_ids,
            state: Mutex::new(State::default()),
        }));
        let st = State::default();
        std::fs::write(r.file(0), r.render(&st)).map_err(err)?;
        Ok(r)
    }

    /// The file being written now.
    pub fn path(&self) -> PathBuf {
        let st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        self.file(st.part)
    }

    /// Entries recorded so far (all files).
    pub fn entries(&self) -> usize {
        let st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        st.part * MAX_ENTRIES_PER_FILE + st.entries.len()
    }

    /// The last write error, if writing a file failed (recording never fails an ARM call).
    pub fn write_error(&self) -> Option<String> {
        let st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        st.write_error.clone()
    }

    fn file(&self, part: usize) -> PathBuf {
        let name = if part == 0 {
            format!("{}.json", self.0.stem)
        } else {
            format!("{}.part{}.json", self.0.stem, part + 1)
        };
        self.0.dir.join(name)
    }

    fn render(&self, st: &State) -> String {
        let doc = json!({
            "Entries": st.entries,
            "Variables": {
                "RECORDED_BY": concat!("datashare-dr/", env!("CARGO_PKG_VERSION")),
                "IDS_SANITISED": (!self.0.keep_ids).to_string(),
            }
        });
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
    }

    /// Records one exchange (one attempt: retries and LRO polls are exchanges of their own).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn exchange(
        &self,
        method: &str,
        url: &Url,
        client_request_id: &str,
        correlation_id: Option<&str>,
        authorised: bool,
        request_body: Option<&Value>,
        status: u16,
        response_headers: &HeaderMap,
        response_body: &[u8],
    ) {
        let mut req_headers = Map::new();
        req_headers.insert("Accept".into(), "application/json".into());
        if authorised {
            // The token itself is never captured.
            req_headers.insert("Authorization".into(), "Sanitized".into());
        }
        if request_body.is_some() {
            req_headers.insert("Content-Type".into(), "application/json".into());
        }
        if let Some(c) = correlation_id {
            req_headers.insert("x-ms-correlation-request-id".into(), c.into());
        }
        req_headers.insert("x-ms-client-request-id".into(), client_request_id.into());
        let mut resp_headers = Map::new();
        for (name, value) in response_headers {
            let v = if name.as_str().eq_ignore_ascii_case("set-cookie")
                || name.as_str().eq_ignore_ascii_case("authorization")
            {
                "Sanitized".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            match resp_headers.get_mut(name.as_str()) {
                Some(Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(&v);
                }
                _ => {
                    resp_headers.insert(name.as_str().to_owned(), Value::String(v));
                }
            }
        }
        let resp_body = if response_body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(response_body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(response_body).into_owned())
            })
        };
        let mut entry = json!({
            "RequestUri": url.as_str(),
            "RequestMethod": method,
            "RequestHeaders": req_headers,
            "RequestBody": request_body.cloned().unwrap_or(Value::Null),
            "StatusCode": status,
            "ResponseHeaders": resp_headers,
            "ResponseBody": resp_body,
        });
        let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        if !self.0.keep_ids {
            learn_ids(&entry, &mut st);
        }
        sanitise_value(&mut entry, &mut st, self.0.keep_ids);
        if st.entries.len() >= MAX_ENTRIES_PER_FILE {
            st.part += 1;
            st.entries.clear();
        }
        st.entries.push(entry);
        let text = self.render(&st);
        if let Err(e) = std::fs::write(self.file(st.part), text) {
            tracing::warn!(error = %e, dir = %self.0.dir.display(), "cannot write the ARM recording");
            st.write_error = Some(e.to_string());
        }
    }
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn remember(list: &mut Vec<String>, id: &str) {
    let id = id.to_ascii_lowercase();
    if is_guid(&id) && id.chars().any(|c| c != '0' && c != '-') && !list.contains(&id) {
        list.push(id);
    }
}

/// Subscription and tenant ids the entry reveals (paths and known field names).
fn learn_ids(v: &Value, st: &mut State) {
    match v {
        Value::String(s) => {
            let lower = s.to_ascii_lowercase();
            let mut rest = lower.as_str();
            while let Some(i) = rest.find("/subscriptions/") {
                rest = &rest[i + "/subscriptions/".len()..];
                if let Some(id) = rest.get(..36) {
                    remember(&mut st.subscriptions, id);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| learn_ids(x, st)),
        Value::Object(m) => {
            for (k, x) in m {
                let key = k.to_ascii_lowercase();
                if let Value::String(s) = x {
                    if key.ends_with("tenantid") || key == "targetactivedirectoryid" {
                        remember(&mut st.tenants, s);
                    } else if key == "subscriptionid" {
                        remember(&mut st.subscriptions, s);
                    }
                }
                learn_ids(x, st);
            }
        }
        _ => {}
    }
}

fn sanitise_value(v: &mut Value, st: &mut State, keep_ids: bool) {
    match v {
        Value::String(s) => *s = sanitise_text(s, st, keep_ids),
        Value::Array(a) => a.iter_mut().for_each(|x| sanitise_value(x, st, keep_ids)),
        Value::Object(m) => m.values_mut().for_each(|x| sanitise_value(x, st, keep_ids)),
        _ => {}
    }
}

/// Replaces `marker` + the run of characters accepted by `keep` after it with
/// `marker` + `Sanitized` (case-insensitive marker).
fn mask_after(s: &str, marker: &str, value_char: impl Fn(char) -> bool) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(off) = lower[i..].find(marker) {
        let start = i + off + marker.len();
        let end = s[start..]
            .char_indices()
            .find(|(_, c)| !value_char(*c))
            .map_or(s.len(), |(j, _)| start + j);
        out.push_str(&s[i..start]);
        if end > start {
            out.push_str("Sanitized");
        }
        i = end.max(start);
    }
    out.push_str(&s[i..]);
    out
}

fn is_email_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

fn is_email_domain(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '-'
}

fn mask_emails(s: &str, st: &mut State) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut flushed = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let mut a = i;
            while a > flushed && is_email_local(chars[a - 1]) {
                a -= 1;
            }
            let mut b = i + 1;
            while b < chars.len() && is_email_domain(chars[b]) {
                b += 1;
            }
            let domain: String = chars[i + 1..b].iter().collect();
            let domain = domain.trim_end_matches('.');
            if a < i && domain.contains('.') && !domain.starts_with('.') {
                let b = i + 1 + domain.chars().count();
                let addr: String = chars[a..b].iter().collect::<String>().to_ascii_lowercase();
                let n = match st.emails.iter().position(|e| *e == addr) {
                    Some(n) => n + 1,
                    None => {
                        st.emails.push(addr);
                        st.emails.len()
                    }
                };
                out.extend(&chars[flushed..a]);
                out.push_str(&format!("user{n}@example.com"));
                flushed = b;
                i = b;
                continue;
            }
        }
        i += 1;
    }
    out.extend(&chars[flushed..]);
    out
}

fn mask_jwts(s: &str) -> String {
    // A JWT: three base64url segments, the first starting `eyJ` (`{"`).
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(off) = s[i..].find("eyJ") {
        let start = i + off;
        let end = s[start..]
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || "-_.".contains(*c)))
            .map_or(s.len(), |(j, _)| start + j);
        out.push_str(&s[i..start]);
        if s[start..end].matches('.').count() >= 2 {
            out.push_str("Sanitized");
        } else {
            out.push_str(&s[start..end]);
        }
        i = end;
    }
    out.push_str(&s[i..]);
    out
}

fn replace_ci(s: &str, from: &str, to: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(off) = lower[i..].find(from) {
        out.push_str(&s[i..i + off]);
        out.push_str(to);
        i += off + from.len();
    }
    out.push_str(&s[i..]);
    out
}

/// Sanitises one string (see the module docs for what and why).
fn sanitise_text(s: &str, st: &mut State, keep_ids: bool) -> String {
    let token_char = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    let sig_char = |c: char| !matches!(c, '&' | '"' | '\'' | '<' | '>' | ' ' | '\t' | '\n');
    let mut out = mask_after(s, "bearer ", token_char);
    out = mask_after(&out, "sig=", sig_char);
    out = mask_jwts(&out);
    out = mask_emails(&out, st);
    if !keep_ids {
        for (n, id) in st.subscriptions.iter().enumerate() {
            out = replace_ci(&out, id, &format!("00000000-0000-0000-0000-{:012}", n + 1));
        }
        for (n, id) in st.tenants.iter().enumerate() {
            out = replace_ci(&out, id, &format!("00000000-0000-0000-0001-{:012}", n + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str, keep_ids: bool) -> String {
        let mut st = State::default();
        learn_ids(&Value::String(s.to_owned()), &mut st);
        sanitise_text(s, &mut st, keep_ids)
    }

    #[test]
    fn tokens_signatures_and_emails_are_masked() {
        let s = "Bearer abc.DEF-123 https://a.blob.core.windows.net/c?sv=1&sig=AbC%2F%3D&se=2 \
                 eyJhbGciOi.eyJzdWIi.c2ln ann.lee@contoso.com and Ann.Lee@contoso.com";
        let out = text(s, true);
        assert!(!out.contains("abc.DEF"), "{out}");
        assert!(out.contains("sig=Sanitized&se=2"), "{out}");
        assert!(!out.contains("eyJhbGciOi"), "{out}");
        assert!(!out.contains("contoso"), "{out}");
        assert_eq!(out.matches("user1@example.com").count(), 2, "{out}");
    }

    #[test]
    fn subscription_and_tenant_ids_get_stable_pseudonyms_unless_kept() {
        let entry = json!({
            "RequestUri": "https://m/subscriptions/9ABFF005-2afc-4de1-b39c-344b9de2cc9c/x",
            "ResponseBody": {"identity": {"tenantId": "54826b22-38d6-4fb2-bad9-b7b93a3e9c5a"},
                "id": "/subscriptions/9abff005-2afc-4de1-b39c-344b9de2cc9c/y",
                "note": "tenant 54826b22-38d6-4fb2-bad9-b7b93a3e9c5a"}
        });
        let mut st = State::default();
        let mut e = entry.clone();
        learn_ids(&e, &mut st);
        sanitise_value(&mut e, &mut st, false);
        let t = e.to_string();
        assert!(!t.to_ascii_lowercase().contains("9abff005"), "{t}");
        assert!(!t.contains("54826b22"), "{t}");
        assert_eq!(
            t.matches("00000000-0000-0000-0000-000000000001").count(),
            2,
            "{t}"
        );
        assert_eq!(
            t.matches("00000000-0000-0000-0001-000000000001").count(),
            2,
            "{t}"
        );
        let mut st = State::default();
        let mut k = entry.clone();
        sanitise_value(&mut k, &mut st, true);
        assert_eq!(k, entry);
    }
}
