//! In-memory world of the simulator: Data Share resources of every tenant, the other ARM
//! resources the DR tool checks (storage, SQL, Synapse, Kusto, role assignments), async
//! operations, synchronization history and the regions that are down.
//!
//! Invariants: resources are keyed by their lower-cased ARM id (ARM compares ids
//! case-insensitively) and keep the casing they were created with; every state change happens
//! under the caller's lock in one call, so a request is applied completely or not at all;
//! long-running operations complete lazily when `advance` runs (at the start of every request).
//! Pure data + logic: no I/O, no HTTP types. Must not import anything of ours outside `sim`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::spec::{Matched, resource_type};

/// Owner (counts as a data role on SQL, Synapse and Kusto stores).
const OWNER_ROLE: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";

/// Built-in role definition ids used by the simulator and the generated estate.
pub mod roles {
    /// Storage Blob Data Reader (Blob / ADLS Gen2 sources).
    pub const STORAGE_BLOB_DATA_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
    /// Reader (stand-in for the SQL `db_datareader` contained user on SQL / Synapse sources).
    pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    /// Contributor (Azure Data Explorer sources).
    pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
}

/// The caller, derived from the bearer token (`sim` = admin, `sim:<name>` = a named principal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub email: String,
    pub object_id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub admin: bool,
}

/// Domain of the admin principal (`sim` token).
pub const ADMIN_EMAIL: &str = "admin@contoso.example";

impl Principal {
    /// Map a bearer token to a principal; `None` for tokens the simulator does not issue.
    pub fn from_token(token: &str) -> Option<Principal> {
        if token == "sim" {
            let mut p = Principal::named(ADMIN_EMAIL);
            p.admin = true;
            p.name = "sim-admin".into();
            return Some(p);
        }
        let name = token.strip_prefix("sim:")?;
        if name.is_empty() || name.len() > 200 || name.chars().any(|c| c.is_whitespace()) {
            return None;
        }
        if let Some(app) = name.strip_prefix("app:") {
            return (!app.is_empty()).then(|| Principal::app(app));
        }
        Some(Principal::named(name))
    }

    /// A principal without e-mail (an application / managed identity, token `sim:app:<name>`):
    /// `consumer-dr@fabrikam.example` is the app `consumer-dr` of tenant `fabrikam.example`;
    /// without `@` the tenant is `<name>.example`. Invitations reach it by tenant + object id
    /// only, never by e-mail.
    pub fn app(name: &str) -> Principal {
        let mut p = Principal::named(name);
        let app_name = name.split('@').next().unwrap_or(name).to_string();
        p.object_id = det_uuid(&format!("app:{}", p.email.to_ascii_lowercase()));
        p.name = app_name;
        p.email = String::new();
        p
    }

    /// A non-admin principal named `name` (`alice@fabrikam.example`, or `alice` which becomes
    /// `alice@alice.example`); tenant = the e-mail domain.
    pub fn named(name: &str) -> Principal {
        let email = if name.contains('@') {
            name.to_string()
        } else {
            format!("{name}@{name}.example")
        };
        let domain = email
            .rsplit('@')
            .next()
            .unwrap_or("example")
            .to_ascii_lowercase();
        let tenant_name = domain.split('.').next().unwrap_or("tenant").to_string();
        Principal {
            name: name.to_string(),
            object_id: det_uuid(&format!("object:{}", email.to_ascii_lowercase())),
            tenant_id: det_uuid(&format!("tenant:{domain}")),
            email,
            tenant_name,
            admin: false,
        }
    }
}

/// A deterministic UUID derived from `seed` (SHA-256, version 4 layout).
pub fn det_uuid(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// Normalised region name (`West Europe` → `westeurope`).
pub fn norm_region(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

pub fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// An error answer (ARM / DataShareError shape).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub target: Option<String>,
    pub details: Vec<(String, String, String)>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            target: None,
            details: Vec::new(),
            retry_after: None,
        }
    }

    pub fn target(mut self, t: impl Into<String>) -> ApiError {
        self.target = Some(t.into());
        self
    }

    pub fn body(&self) -> Value {
        // Azure's error bodies always carry `target` (null when none) and `details`.
        let mut e = json!({"code": self.code, "message": self.message,
            "target": self.target, "details": []});
        if !self.details.is_empty() {
            e["details"] = Value::Array(
                self.details
                    .iter()
                    .map(|(c, m, t)| json!({"code": c, "message": m, "target": t}))
                    .collect(),
            );
        }
        json!({ "error": e })
    }

    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(
            404,
            "ResourceNotFound",
            format!("The {what} '{id}' was not found."),
        )
    }
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: None,
            headers: Vec::new(),
        }
    }
}

pub type Res = Result<Reply, ApiError>;

/// Per-request context handed to the state.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub principal: &'a Principal,
    pub base_url: &'a str,
    pub api_version: &'a str,
    pub now: OffsetDateTime,
    pub instant: Instant,
    pub page_size: usize,
    pub lro_delay: Duration,
    /// `SynchronizationSettings_Create` answers as a long-running operation (see
    /// [`super::server::Faults::long_running_settings`]).
    pub long_running_settings: bool,
    /// Checks of what the recordings cannot show (see [`StoreChecks`]).
    pub checks: StoreChecks,
    pub query: &'a [(String, String)],
    /// Request path as sent (no query), used for ids and nextLinks.
    pub path: &'a str,
}

/// Optional checks on data set creation (all off by default; `POST /_sim/faults`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreChecks {
    /// The account's managed identity must hold a data role on the data set's store.
    pub store_data_roles: bool,
    /// The data set kind must fit the share kind (`CopyBased` / `InPlace`).
    pub share_kind_rules: bool,
    /// A role assignment younger than this does not count yet.
    pub role_propagation: Duration,
}

impl Ctx<'_> {
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One stored resource.
#[derive(Debug, Clone)]
pub struct Resource {
    pub id: String,
    pub body: Value,
    pub region: String,
    pub tenant: String,
    pub deleting: bool,
    /// Consumer share subscription: key of the provider share; provider share subscription:
    /// key of the consumer share subscription.
    pub link: Option<String>,
    /// Consumer share subscription: key of the provider share subscription.
    pub link2: Option<String>,
}

/// One synchronization (snapshot) run.
#[derive(Debug, Clone)]
pub struct SyncRec {
    pub id: String,
    pub sub_key: String,
    pub share_key: String,
    pub mode: String,
    pub start: OffsetDateTime,
    pub end: Option<OffsetDateTime>,
    pub status: String,
    pub consumer_name: String,
    pub consumer_email: String,
    pub consumer_tenant_name: String,
}

#[derive(Debug, Clone)]
enum Effect {
    Delete(String),
    Provisioned(String),
    Revoke(String),
    Sync(String),
    CancelSync(String),
}

#[derive(Debug, Clone)]
struct AsyncOp {
    region: String,
    sub: String,
    complete_at: Instant,
    start: OffsetDateTime,
    end: Option<OffsetDateTime>,
    status: String,
    effect: Effect,
    /// Final body for the Location URL / merged into the status body (POST results).
    result: Option<Value>,
    /// Resource key whose current body is the final result (PUT).
    result_key: Option<String>,
    merge_result: bool,
}

/// The whole world.
#[derive(Debug)]
pub struct State {
    res: BTreeMap<String, Resource>,
    roles: BTreeMap<String, Resource>,
    invitations: HashMap<String, String>,
    syncs: Vec<SyncRec>,
    ops: HashMap<String, AsyncOp>,
    pending: Vec<String>,
    owners: HashMap<String, String>,
    pub down: HashSet<String>,
    rng: StdRng,
    /// When each role assignment (key) was created, for the propagation delay.
    role_at: HashMap<String, Instant>,
}

const DS: &str = "microsoft.datashare";
/// Query parameter of a `listSynchronizationDetails` nextLink naming the synchronization (the
/// first page had it in the POST body).
const SYNC_ID_PARAM: &str = "synchronizationId";

fn key(path: &str) -> String {
    path.trim_end_matches('/').to_ascii_lowercase()
}

fn segs_of(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// Key of the Data Share account a path belongs to (first 8 segments), if any.
fn account_key(path: &str) -> Option<String> {
    let s = segs_of(path);
    (s.len() >= 8
        && s[0].eq_ignore_ascii_case("subscriptions")
        && s[4].eq_ignore_ascii_case("providers")
        && s[5].eq_ignore_ascii_case(DS)
        && s[6].eq_ignore_ascii_case("accounts"))
    .then(|| key(&format!("/{}", s[..8].join("/"))))
}

/// Keep only the header named `name` of an LRO header list.
fn only_header(h: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
    h.into_iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .collect()
}

fn prop<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get("properties")
        .and_then(|p| p.get(name))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn set_prop(v: &mut Value, name: &str, val: Value) {
    if !v.get("properties").is_some_and(Value::is_object) {
        v["properties"] = json!({});
    }
    v["properties"][name] = val;
}

impl State {
    pub fn new(seed: u64) -> State {
        State {
            res: BTreeMap::new(),
            roles: BTreeMap::new(),
            invitations: HashMap::new(),
            syncs: Vec::new(),
            ops: HashMap::new(),
            pending: Vec::new(),
            owners: HashMap::new(),
            down: HashSet::new(),
            rng: StdRng::seed_from_u64(seed),
            role_at: HashMap::new(),
        }
    }

    pub fn uuid(&mut self) -> String {
        let b: [u8; 16] = self.rng.random();
        uuid::Builder::from_random_bytes(b).into_uuid().to_string()
    }

    pub fn resource_count(&self) -> usize {
        self.res.len() + self.roles.len()
    }

    /// Complete every async operation whose time has come.
    pub fn advance(&mut self, now: Instant, ts_now: OffsetDateTime) {
        if self.pending.is_empty() {
            return;
        }
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|id| self.ops.get(*id).is_some_and(|o| o.complete_at <= now))
            .cloned()
            .collect();
        if due.is_empty() {
            return;
        }
        self.pending.retain(|id| !due.contains(id));
        for id in due {
            let Some(op) = self.ops.get(&id).cloned() else {
                continue;
            };
            let mut status = "Succeeded".to_string();
            let mut result = op.result.clone();
            match &op.effect {
                Effect::Delete(k) => self.remove_cascade(k, ts_now),
                Effect::Provisioned(k) => {
                    if let Some(r) = self.res.get_mut(k) {
                        set_prop(&mut r.body, "provisioningState", json!("Succeeded"));
                        if prop(&r.body, "triggerStatus") == "Inactive" {
                            set_prop(&mut r.body, "triggerStatus", json!("Active"));
                        }
                    }
                }
                Effect::Revoke(k) => {
                    // Reinstated meanwhile: the revocation is over.
                    if self
                        .res
                        .get(k)
                        .is_some_and(|r| prop(&r.body, "shareSubscriptionStatus") == "Revoking")
                    {
                        self.set_sub_status(k, "Revoked");
                    }
                    if let Some(r) = self.res.get(k) {
                        result = Some(r.body.clone());
                    }
                }
                Effect::Sync(sid) | Effect::CancelSync(sid) => {
                    let cancel = matches!(op.effect, Effect::CancelSync(_));
                    if let Some(s) = self.syncs.iter_mut().find(|s| &s.id == sid) {
                        if s.end.is_none() {
                            s.end = Some(ts_now);
                            s.status = if cancel {
                                "Canceled".into()
                            } else {
                                "Succeeded".into()
                            };
                        }
                        result = Some(sub_sync_json(s));
                        if cancel && s.status != "Canceled" {
                            status = "Succeeded".into();
                        }
                    }
                }
            }
            if let Some(o) = self.ops.get_mut(&id) {
                o.status = status;
                o.end = Some(ts_now);
                o.result = result;
            }
        }
    }

    /// Complete every pending operation now (used by the estate generator).
    pub fn finish_all(&mut self, ts_now: OffsetDateTime) {
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        self.advance(far, ts_now);
        self.ops.clear();
    }

    fn set_sub_status(&mut self, psub_key: &str, status: &str) {
        let link = self.res.get_mut(psub_key).map(|r| {
            set_prop(&mut r.body, "shareSubscriptionStatus", json!(status));
            r.link.clone()
        });
        if let Some(Some(ck)) = link
            && let Some(c) = self.res.get_mut(&ck)
        {
            set_prop(&mut c.body, "shareSubscriptionStatus", json!(status));
        }
    }

    fn children_keys(&self, parent: &str, coll: &str) -> Vec<String> {
        let prefix = format!("{}/{}/", key(parent), coll.to_ascii_lowercase());
        self.res
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k[prefix.len()..].contains('/'))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn children(&self, parent: &str, coll: &str) -> Vec<&Resource> {
        self.children_keys(parent, coll)
            .iter()
            .filter_map(|k| self.res.get(k))
            .collect()
    }

    /// Remove a resource and everything under it, with the cross-tenant side effects.
    fn remove_cascade(&mut self, k: &str, _now: OffsetDateTime) {
        let prefix = format!("{k}/");
        let keys: Vec<String> = self
            .res
            .range(k.to_string()..)
            .take_while(|(x, _)| x.as_str() == k || x.starts_with(&prefix))
            .map(|(x, _)| x.clone())
            .collect();
        for x in &keys {
            let Some(r) = self.res.remove(x) else {
                continue;
            };
            let t = r
                .body
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            if t.ends_with("accounts/shares/invitations") {
                let inv = prop(&r.body, "invitationId").to_ascii_lowercase();
                self.invitations.remove(&inv);
            } else if x.contains("/providersharesubscriptions/") {
                // Provider side vanished (share deleted): consumer sees SourceDeleted.
                if let Some(ck) = &r.link
                    && let Some(c) = self.res.get_mut(ck)
                {
                    set_prop(
                        &mut c.body,
                        "shareSubscriptionStatus",
                        json!("SourceDeleted"),
                    );
                    c.link2 = None;
                }
            } else if t.ends_with("accounts/sharesubscriptions") && r.link2.is_some() {
                if let Some(pk) = &r.link2 {
                    self.res.remove(pk);
                }
            } else if t.ends_with("accounts/shares/synchronizationsettings") {
                let share_key = x.rsplitn(3, '/').nth(2).unwrap_or("").to_string();
                if self
                    .children_keys(&share_key, "synchronizationSettings")
                    .is_empty()
                {
                    self.mark_triggers(&share_key, "SourceSynchronizationSettingDeleted");
                }
            } else if t.ends_with("accounts/shares/datasets") {
                let ds_id = prop(&r.body, "dataSetId").to_string();
                for m in self.res.values_mut() {
                    if prop(&m.body, "dataSetId") == ds_id
                        && m.body
                            .get("type")
                            .and_then(Value::as_str)
                            .is_some_and(|t| t.ends_with("dataSetMappings"))
                    {
                        set_prop(&mut m.body, "dataSetMappingStatus", json!("Broken"));
                    }
                }
            }
        }
        let role_keys: Vec<String> = self
            .roles
            .keys()
            .filter(|rk| rk.starts_with(&prefix))
            .cloned()
            .collect();
        for rk in role_keys {
            self.roles.remove(&rk);
        }
    }

    fn mark_triggers(&mut self, share_key: &str, status: &str) {
        let subs: Vec<String> = self
            .res
            .iter()
            .filter(|(_, r)| r.link.as_deref() == Some(share_key) && r.link2.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for s in subs {
            for t in self.children_keys(&s, "triggers") {
                if let Some(r) = self.res.get_mut(&t) {
                    set_prop(&mut r.body, "triggerStatus", json!(status));
                }
            }
        }
    }

    /// Region governing a request (for outages), if it can be told.
    pub fn region_of(&self, path: &str, body: Option<&Value>) -> Option<String> {
        let s = segs_of(path);
        if let Some(i) = s.iter().position(|x| x.eq_ignore_ascii_case("locations"))
            && i + 1 < s.len()
            && i >= 1
            && s[i - 1].eq_ignore_ascii_case(DS)
        {
            return Some(norm_region(s[i + 1]));
        }
        let scope_end = s
            .iter()
            .position(|x| x.eq_ignore_ascii_case("microsoft.authorization"))
            .map(|i| i.saturating_sub(1))
            .unwrap_or(s.len());
        let s = &s[..scope_end];
        if s.len() >= 8 && s[4].eq_ignore_ascii_case("providers") {
            let top = key(&format!("/{}", s[..8].join("/")));
            if let Some(r) = self.res.get(&top) {
                return Some(r.region.clone());
            }
            if s.len() == 8 {
                return body
                    .and_then(|b| b.get("location"))
                    .and_then(Value::as_str)
                    .map(norm_region);
            }
        }
        None
    }

    fn region_down(&self, region: &str) -> bool {
        self.down.contains(&norm_region(region))
    }

    /// Subscription ownership: the first tenant that writes into a subscription owns it; other
    /// non-admin tenants get 403 there.
    pub fn authorize(&mut self, p: &Principal, path: &str, method: &str) -> Result<(), ApiError> {
        let s = segs_of(path);
        if s.len() < 2 || !s[0].eq_ignore_ascii_case("subscriptions") {
            return Ok(());
        }
        let sub = s[1].to_ascii_lowercase();
        match self.owners.get(&sub) {
            Some(t) if *t == p.tenant_id || p.admin => Ok(()),
            Some(_) => Err(ApiError::new(
                403,
                "AuthorizationFailed",
                format!(
                    "The client '{}' with object id '{}' does not have authorization to perform action '{} {}' over scope '/subscriptions/{}' or the scope is invalid.",
                    p.email, p.object_id, method, path, s[1]
                ),
            )),
            None => {
                if method != "GET" {
                    self.owners.insert(sub, p.tenant_id.clone());
                }
                Ok(())
            }
        }
    }

    fn system_data(p: &Principal, now: OffsetDateTime, created: Option<&Value>) -> Value {
        let ty = if p.admin { "Application" } else { "User" };
        let mut v = json!({
            "createdBy": p.email, "createdByType": ty, "createdAt": ts(now),
            "lastModifiedBy": p.email, "lastModifiedByType": ty, "lastModifiedAt": ts(now),
        });
        if let Some(c) = created {
            for k in ["createdBy", "createdByType", "createdAt"] {
                if let Some(x) = c.get(k) {
                    v[k] = x.clone();
                }
            }
        }
        v
    }

    fn new_op(
        &mut self,
        ctx: &Ctx,
        region: &str,
        effect: Effect,
        result: Option<Value>,
        result_key: Option<String>,
        merge: bool,
    ) -> (String, Vec<(String, String)>) {
        let id = self.uuid();
        self.new_op_id(ctx, id, region, effect, result, result_key, merge)
    }

    /// [`Self::new_op`] under a given operation id (synchronizations use their own id).
    #[allow(clippy::too_many_arguments)]
    fn new_op_id(
        &mut self,
        ctx: &Ctx,
        id: String,
        region: &str,
        effect: Effect,
        result: Option<Value>,
        result_key: Option<String>,
        merge: bool,
    ) -> (String, Vec<(String, String)>) {
        let sub = segs_of(ctx.path)
            .get(1)
            .map(|s| s.to_string())
            .unwrap_or_default();
        self.ops.insert(
            id.clone(),
            AsyncOp {
                region: region.to_string(),
                sub: sub.clone(),
                complete_at: ctx.instant + ctx.lro_delay,
                start: ctx.now,
                end: None,
                status: "InProgress".into(),
                effect,
                result,
                result_key,
                merge_result: merge,
            },
        );
        self.pending.push(id.clone());
        let base = format!(
            "{}/subscriptions/{}/providers/Microsoft.DataShare/locations/{}",
            ctx.base_url, sub, region
        );
        let headers = vec![
            (
                "Azure-AsyncOperation".to_string(),
                format!(
                    "{base}/operationStatuses/{id}?api-version={}",
                    ctx.api_version
                ),
            ),
            (
                "Location".to_string(),
                format!(
                    "{base}/operationResults/{id}?api-version={}",
                    ctx.api_version
                ),
            ),
            (
                "Retry-After".to_string(),
                (ctx.lro_delay.as_millis() / 1000).to_string(),
            ),
        ];
        (id, headers)
    }

    /// GET on an async-operation URL. `status == true` for `operationStatuses` (always 200 with
    /// an OperationResponse), false for `operationResults` (202 while running, then the result).
    pub fn operation(&self, ctx: &Ctx, sub: &str, id: &str, status: bool) -> Res {
        let Some(op) = self
            .ops
            .get(&id.to_ascii_lowercase())
            .or_else(|| self.ops.get(id))
        else {
            return Err(ApiError::new(
                404,
                "OperationNotFound",
                format!("The operation '{id}' was not found."),
            ));
        };
        if !op.sub.eq_ignore_ascii_case(sub) {
            return Err(ApiError::new(
                404,
                "OperationNotFound",
                format!("The operation '{id}' was not found."),
            ));
        }
        let _ = &op.region;
        let done = op.end.is_some();
        let final_body = || -> Option<Value> {
            if let Some(k) = &op.result_key {
                return self.res.get(k).map(|r| r.body.clone());
            }
            op.result.clone()
        };
        if status {
            let mut body = if op.merge_result && done {
                final_body().unwrap_or_else(|| json!({}))
            } else {
                json!({})
            };
            if !body.is_object() {
                body = json!({});
            }
            body["status"] = json!(op.status);
            if body.get("startTime").is_none() {
                body["startTime"] = json!(ts(op.start));
            }
            if let Some(e) = op.end
                && body.get("endTime").is_none()
            {
                body["endTime"] = json!(ts(e));
            }
            if !op.merge_result {
                body["id"] = json!(ctx.path);
                body["name"] = json!(id);
            }
            return Ok(Reply::json(200, body));
        }
        if !done {
            let mut r = Reply::empty(202);
            r.headers.push((
                "Location".into(),
                format!(
                    "{}{}?api-version={}",
                    ctx.base_url, ctx.path, ctx.api_version
                ),
            ));
            r.headers.push(("Retry-After".into(), "0".into()));
            return Ok(r);
        }
        match (&op.effect, final_body()) {
            (Effect::Delete(_), _) | (_, None) => Ok(Reply::empty(204)),
            (_, Some(b)) => Ok(Reply::json(200, b)),
        }
    }

    /// One page of `items` (offset-based `$skipToken`) with a `nextLink` when more remain.
    fn list(&self, ctx: &Ctx, items: Vec<Value>) -> Res {
        self.list_with(ctx, items, &[])
    }

    /// [`Self::list`] for POST list operations: `carry` puts what the POST body said into the
    /// `nextLink`, because next pages are plain GETs without a body.
    fn list_with(&self, ctx: &Ctx, items: Vec<Value>, carry: &[(&str, &str)]) -> Res {
        let skip = match ctx.q("$skipToken") {
            None => 0,
            Some(t) => t.parse::<usize>().map_err(|_| {
                ApiError::new(
                    400,
                    "InvalidSkipToken",
                    format!("The $skipToken '{t}' is not valid."),
                )
                .target("$skipToken")
            })?,
        };
        let size = ctx.page_size.max(1);
        let total = items.len();
        let end = skip.saturating_add(size).min(total);
        let value: Vec<Value> = items.into_iter().skip(skip).take(size).collect();
        let mut body = json!({ "value": value });
        if end < total {
            let mut q: Vec<String> = ctx
                .query
                .iter()
                .filter(|(k, _)| {
                    !k.eq_ignore_ascii_case("$skipToken")
                        && !carry.iter().any(|(c, _)| k.eq_ignore_ascii_case(c))
                })
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect();
            for (k, v) in carry {
                q.push(format!("{}={}", enc(k), enc(v)));
            }
            q.push(format!("$skipToken={end}"));
            body["nextLink"] = json!(format!("{}{}?{}", ctx.base_url, ctx.path, q.join("&")));
        }
        Ok(Reply::json(200, body))
    }

    fn require(&self, k: &str, what: &str, id: &str) -> Result<&Resource, ApiError> {
        match self.res.get(k) {
            Some(r) if !r.deleting => Ok(r),
            Some(_) => Err(ApiError::new(
                404,
                "ParentResourceNotFound",
                format!("The {what} '{id}' is being deleted."),
            )),
            None => Err(ApiError::new(
                404,
                "ParentResourceNotFound",
                format!("The {what} '{id}' was not found."),
            )),
        }
    }

    fn get_reply(&self, path: &str, what: &str) -> Res {
        match self.res.get(&key(path)) {
            Some(r) => Ok(Reply::json(200, r.body.clone())),
            None => Err(ApiError::not_found(what, path)),
        }
    }

    fn parent_path(path: &str, levels: usize) -> String {
        let s = segs_of(path);
        format!("/{}", s[..s.len().saturating_sub(levels * 2)].join("/"))
    }

    /// Insert or update a proxy child resource; returns (status, stored body).
    fn upsert_child(
        &mut self,
        ctx: &Ctx,
        rtype: &str,
        parent: &str,
        body: Value,
        server_props: impl FnOnce(&mut Self, &mut Value, Option<&Value>),
    ) -> Result<(u16, Value), ApiError> {
        let pk = key(parent);
        let (region, tenant) = {
            let p = self.require(&pk, "parent resource", parent)?;
            (p.region.clone(), p.tenant.clone())
        };
        let k = key(ctx.path);
        let existing = self.res.get(&k).map(|r| r.body.clone());
        if self.res.get(&k).is_some_and(|r| r.deleting) {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!("The resource '{}' is being deleted.", ctx.path),
            ));
        }
        let s = segs_of(ctx.path);
        let name = s.last().copied().unwrap_or("");
        let mut v = body;
        if !v.is_object() {
            v = json!({});
        }
        let (id, created_sd) = match &existing {
            Some(e) => (
                e["id"].as_str().unwrap_or(ctx.path).to_string(),
                e.get("systemData").cloned(),
            ),
            None => (ctx.path.to_string(), None),
        };
        v["id"] = json!(id);
        v["name"] = json!(
            existing
                .as_ref()
                .and_then(|e| e["name"].as_str())
                .unwrap_or(name)
        );
        v["type"] = json!(rtype);
        v["systemData"] = Self::system_data(ctx.principal, ctx.now, created_sd.as_ref());
        server_props(self, &mut v, existing.as_ref());
        let status = if existing.is_some() { 200 } else { 201 };
        let link = self.res.get(&k).and_then(|r| r.link.clone());
        let link2 = self.res.get(&k).and_then(|r| r.link2.clone());
        self.res.insert(
            k,
            Resource {
                id,
                body: v.clone(),
                region,
                tenant,
                deleting: false,
                link,
                link2,
            },
        );
        Ok((status, v))
    }

    fn start_delete(&mut self, ctx: &Ctx, with_op_body: bool) -> Res {
        let k = key(ctx.path);
        let Some(r) = self.res.get_mut(&k) else {
            return Ok(Reply::empty(204));
        };
        if r.deleting {
            // Already being deleted: answer 202 again with a fresh monitor.
        }
        r.deleting = true;
        if r.body
            .get("properties")
            .and_then(|p| p.get("provisioningState"))
            .is_some()
        {
            set_prop(&mut r.body, "provisioningState", json!("Deleting"));
        }
        let region = r.region.clone();
        let _ = with_op_body;
        let (_, headers) = self.new_op(ctx, &region, Effect::Delete(k), None, None, false);
        // Azure answers these deletes with 202 and only `Location` (recordings).
        Ok(Reply {
            status: 202,
            body: None,
            headers: only_header(headers, "Location"),
        })
    }

    fn user_props(v: &mut Value, p: &Principal, email: bool) {
        set_prop(v, "userName", json!(p.name));
        if email {
            set_prop(v, "userEmail", json!(p.email));
        }
    }

    /// Dispatch one Data Share operation (body already validated and cleaned).
    pub fn datashare(&mut self, ctx: &Ctx, m: &Matched, body: Option<Value>) -> Res {
        let op = m.route.operation_id.as_str();
        let rtype = resource_type(&m.route.segs);
        let body = body.unwrap_or(Value::Null);
        match op {
            "Operations_List" => {
                let items: Vec<Value> = super::spec::spec()
                    .map(|s| {
                        s.routes()
                            .iter()
                            .map(|r| {
                                json!({"name": format!("Microsoft.DataShare/{}", r.operation_id), "origin": "user",
                                    "display": {"provider": "Microsoft.DataShare", "resource": resource_type(&r.segs),
                                    "operation": r.operation_id, "description": format!("{} {}", r.method, r.template)}})
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.list(ctx, items)
            }
            "Accounts_ListBySubscription" | "Accounts_ListByResourceGroup" => {
                let s = segs_of(ctx.path);
                let prefix = if op == "Accounts_ListBySubscription" {
                    format!("/subscriptions/{}/", s[1]).to_ascii_lowercase()
                } else {
                    format!("/subscriptions/{}/resourcegroups/{}/", s[1], s[3]).to_ascii_lowercase()
                };
                let items = self
                    .res
                    .iter()
                    .filter(|(k, r)| {
                        k.starts_with(&prefix)
                            && account_key(k).as_deref() == Some(k.as_str())
                            && !self.region_down(&r.region)
                    })
                    .map(|(_, r)| r.body.clone())
                    .collect();
                self.list(ctx, items)
            }
            "Accounts_Get" => self.get_reply(ctx.path, "Data Share account"),
            "Accounts_Create" => self.create_account(ctx, body),
            "Accounts_Update" => {
                let k = key(ctx.path);
                let Some(r) = self.res.get_mut(&k) else {
                    return Err(ApiError::not_found("Data Share account", ctx.path));
                };
                if let Some(t) = body.get("tags") {
                    r.body["tags"] = t.clone();
                }
                let sd = r.body.get("systemData").cloned();
                r.body["systemData"] = Self::system_data(ctx.principal, ctx.now, sd.as_ref());
                Ok(Reply::json(200, r.body.clone()))
            }
            "Accounts_Delete"
            | "Shares_Delete"
            | "SynchronizationSettings_Delete"
            | "ShareSubscriptions_Delete"
            | "Triggers_Delete" => self.start_delete(ctx, true),
            // Azure deletes data sets, mappings and invitations at once: 200, no LRO headers.
            "DataSets_Delete" | "Invitations_Delete" | "DataSetMappings_Delete" => {
                let k = key(ctx.path);
                if self.res.contains_key(&k) {
                    self.remove_cascade(&k, ctx.now);
                    Ok(Reply::empty(200))
                } else {
                    Ok(Reply::empty(204))
                }
            }
            "Shares_Get" => self.get_reply(ctx.path, "share"),
            "DataSets_Get" => self.get_reply(ctx.path, "data set"),
            "Invitations_Get" => match self.res.get(&key(ctx.path)) {
                Some(r) => Ok(Reply::json(200, r.body.clone())),
                // Azure's own service code (recordings: 2021-08-01 404).
                None => Err(ApiError::new(
                    404,
                    "7001",
                    "Invitation not found under share",
                )),
            },
            "SynchronizationSettings_Get" => self.get_reply(ctx.path, "synchronization setting"),
            "ProviderShareSubscriptions_GetByShare" => {
                self.get_reply(ctx.path, "provider share subscription")
            }
            "ShareSubscriptions_Get" => self.get_reply(ctx.path, "share subscription"),
            "DataSetMappings_Get" => self.get_reply(ctx.path, "data set mapping"),
            "Triggers_Get" => self.get_reply(ctx.path, "trigger"),
            "Shares_ListByAccount"
            | "DataSets_ListByShare"
            | "Invitations_ListByShare"
            | "SynchronizationSettings_ListByShare"
            | "ProviderShareSubscriptions_ListByShare"
            | "ShareSubscriptions_ListByAccount"
            | "DataSetMappings_ListByShareSubscription"
            | "Triggers_ListByShareSubscription" => {
                let s = segs_of(ctx.path);
                let coll = s.last().copied().unwrap_or("");
                let parent = format!("/{}", s[..s.len() - 1].join("/"));
                self.require(&key(&parent), "parent resource", &parent)?;
                let items = self
                    .children(&parent, coll)
                    .into_iter()
                    .map(|r| r.body.clone())
                    .collect();
                self.list(ctx, items)
            }
            "Shares_Create" => {
                let parent = Self::parent_path(ctx.path, 1);
                let (st, v) = self.upsert_child(ctx, &rtype, &parent, body, |_, v, old| {
                    if prop(v, "shareKind").is_empty() {
                        set_prop(v, "shareKind", json!("CopyBased"));
                    }
                    let created = old
                        .map(|o| prop(o, "createdAt").to_string())
                        .unwrap_or_else(|| ts(ctx.now));
                    set_prop(v, "createdAt", json!(created));
                    set_prop(v, "provisioningState", json!("Succeeded"));
                    Self::user_props(v, ctx.principal, true);
                })?;
                Ok(Reply::json(st, v))
            }
            "DataSets_Create" => {
                let parent = Self::parent_path(ctx.path, 1);
                let kind = body
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let store_region = self.check_store(&kind, &body, "properties", false)?;
                if ctx.checks.share_kind_rules {
                    self.check_share_kind(&parent, &kind)?;
                }
                if ctx.checks.store_data_roles || !ctx.checks.role_propagation.is_zero() {
                    self.check_data_role(ctx, &parent, &kind, &body)?;
                }
                if let Some(old) = self.res.get(&key(ctx.path)) {
                    let ok = old.body.get("kind").and_then(Value::as_str).unwrap_or("");
                    if !ok.eq_ignore_ascii_case(&kind) {
                        return Err(ApiError::new(400, "InvalidRequestContent",
                            format!("The kind of data set '{}' cannot be changed from '{ok}' to '{kind}'.", ctx.path)).target("kind"));
                    }
                }
                let new_id = self.uuid();
                let (st, v) = self.upsert_child(ctx, &rtype, &parent, body, |_, v, old| {
                    let id = old
                        .map(|o| prop(o, "dataSetId").to_string())
                        .filter(|s| !s.is_empty())
                        .unwrap_or(new_id);
                    set_prop(v, "dataSetId", json!(id));
                    if kind.starts_with("Kusto") {
                        set_prop(
                            v,
                            "location",
                            json!(store_region.clone().unwrap_or_default()),
                        );
                        set_prop(v, "provisioningState", json!("Succeeded"));
                    }
                })?;
                Ok(Reply::json(st, v))
            }
            "Invitations_Create" => self.create_invitation(ctx, &rtype, body),
            "SynchronizationSettings_Create" => {
                let parent = Self::parent_path(ctx.path, 1);
                let (st, v) = self.upsert_child(ctx, &rtype, &parent, body, |_, v, old| {
                    let created = old
                        .map(|o| prop(o, "createdAt").to_string())
                        .unwrap_or_else(|| ts(ctx.now));
                    set_prop(v, "createdAt", json!(created));
                    set_prop(
                        v,
                        "provisioningState",
                        json!(if ctx.long_running_settings {
                            "Creating"
                        } else {
                            "Succeeded"
                        }),
                    );
                    Self::user_props(v, ctx.principal, false);
                })?;
                // A schedule is back: consumers' triggers become active again.
                self.reactivate_triggers(&key(&parent));
                if ctx.long_running_settings {
                    // Answered as a long-running operation (an LRO-style 201 the client waits
                    // for): provisioned after `lro_delay`.
                    let k = key(ctx.path);
                    let region = self
                        .res
                        .get(&key(&parent))
                        .map(|r| r.region.clone())
                        .unwrap_or_default();
                    let (_, headers) = self.new_op(
                        ctx,
                        &region,
                        Effect::Provisioned(k.clone()),
                        None,
                        Some(k),
                        false,
                    );
                    return Ok(Reply {
                        status: st,
                        body: Some(v),
                        headers,
                    });
                }
                Ok(Reply::json(st, v))
            }
            "ProviderShareSubscriptions_Adjust" | "ProviderShareSubscriptions_Reinstate" => {
                let k = key(ctx
                    .path
                    .trim_end_matches(['/'])
                    .rsplit_once('/')
                    .map(|x| x.0)
                    .unwrap_or(""));
                let Some(r) = self.res.get(&k) else {
                    return Err(ApiError::not_found("provider share subscription", ctx.path));
                };
                let status = prop(&r.body, "shareSubscriptionStatus").to_string();
                // Azure reinstates a revocation still in progress too (recordings).
                if op.ends_with("Reinstate") && status != "Revoked" && status != "Revoking" {
                    return Err(ApiError::new(
                        409,
                        "InvalidShareSubscriptionStatus",
                        format!(
                            "Only a revoked share subscription can be reinstated; it is '{status}'."
                        ),
                    ));
                }
                let exp = body
                    .get("properties")
                    .and_then(|p| p.get("expirationDate"))
                    .cloned();
                if op.ends_with("Adjust") && exp.is_none() {
                    return Err(ApiError::new(400, "InvalidRequestContent",
                        "The request content is invalid: property 'properties.expirationDate' is required.").target("properties.expirationDate"));
                }
                let link = r.link.clone();
                for kk in std::iter::once(k.clone()).chain(link) {
                    if let Some(x) = self.res.get_mut(&kk) {
                        if let Some(e) = &exp {
                            set_prop(&mut x.body, "expirationDate", e.clone());
                        }
                        if op.ends_with("Reinstate") {
                            set_prop(&mut x.body, "shareSubscriptionStatus", json!("Active"));
                        }
                    }
                }
                Ok(Reply::json(
                    200,
                    self.res.get(&k).map(|r| r.body.clone()).unwrap_or_default(),
                ))
            }
            "ProviderShareSubscriptions_Revoke" => {
                let k = key(ctx
                    .path
                    .trim_end_matches('/')
                    .rsplit_once('/')
                    .map(|x| x.0)
                    .unwrap_or(""));
                let Some(r) = self.res.get(&k) else {
                    return Err(ApiError::not_found("provider share subscription", ctx.path));
                };
                let status = prop(&r.body, "shareSubscriptionStatus").to_string();
                if status == "Revoked" {
                    return Ok(Reply::json(200, r.body.clone()));
                }
                let region = r.region.clone();
                self.set_sub_status(&k, "Revoking");
                let body = self.res.get(&k).map(|r| r.body.clone());
                let (id, _) =
                    self.new_op(ctx, &region, Effect::Revoke(k), body.clone(), None, true);
                // Azure: 202 with the body; Azure-AsyncOperation under the share's
                // `operationResults`, Location = the provider share subscription; no Retry-After.
                let psub = Self::trim_last(ctx.path);
                let share = Self::parent_path(&psub, 1);
                let v = ctx.api_version;
                Ok(Reply {
                    status: 202,
                    body,
                    headers: vec![
                        (
                            "Azure-AsyncOperation".into(),
                            format!(
                                "{}{share}/operationResults/{id}?api-version={v}",
                                ctx.base_url
                            ),
                        ),
                        (
                            "Location".into(),
                            format!("{}{psub}?api-version={v}", ctx.base_url),
                        ),
                    ],
                })
            }
            "Shares_ListSynchronizations" => {
                let share = Self::trim_last(ctx.path);
                self.require(&key(&share), "share", &share)?;
                let sk = key(&share);
                let mut recs: Vec<&SyncRec> =
                    self.syncs.iter().filter(|s| s.share_key == sk).collect();
                recs.sort_by_key(|s| std::cmp::Reverse(s.start));
                let items = recs.into_iter().map(share_sync_json).collect();
                self.list(ctx, items)
            }
            "ShareSubscriptions_ListSynchronizations" => {
                let sub = Self::trim_last(ctx.path);
                self.require(&key(&sub), "share subscription", &sub)?;
                let k = key(&sub);
                let mut recs: Vec<&SyncRec> =
                    self.syncs.iter().filter(|s| s.sub_key == k).collect();
                recs.sort_by_key(|s| std::cmp::Reverse(s.start));
                let items = recs.into_iter().map(sub_sync_json).collect();
                self.list(ctx, items)
            }
            "Shares_ListSynchronizationDetails"
            | "ShareSubscriptions_ListSynchronizationDetails" => {
                let parent = Self::trim_last(ctx.path);
                self.require(&key(&parent), "resource", &parent)?;
                // First page: from the POST body; next pages (plain GETs): from the nextLink.
                let sid = body
                    .get("synchronizationId")
                    .and_then(Value::as_str)
                    .or_else(|| ctx.q(SYNC_ID_PARAM))
                    .unwrap_or("")
                    .to_string();
                let Some(rec) = self
                    .syncs
                    .iter()
                    .find(|s| s.id.eq_ignore_ascii_case(&sid))
                    .cloned()
                else {
                    return Err(ApiError::new(
                        404,
                        "SynchronizationNotFound",
                        format!("The synchronization '{sid}' was not found."),
                    )
                    .target("synchronizationId"));
                };
                let items = self
                    .children(&rec.share_key, "dataSets")
                    .into_iter()
                    .map(|d| {
                        let mut x = json!({"dataSetId": prop(&d.body, "dataSetId"), "dataSetType": d.body["kind"],
                            "name": d.body["name"], "status": rec.status, "startTime": ts(rec.start),
                            "filesRead": 3, "filesWritten": 3, "sizeRead": 4096, "sizeWritten": 4096,
                            "rowsRead": 0, "rowsCopied": 0, "vCore": 1});
                        if let Some(e) = rec.end {
                            x["endTime"] = json!(ts(e));
                            x["durationMs"] = json!((e - rec.start).whole_milliseconds() as i64);
                        }
                        x
                    })
                    .collect();
                self.list_with(ctx, items, &[(SYNC_ID_PARAM, &rec.id)])
            }
            "ConsumerInvitations_ListInvitations" => {
                let mut items: Vec<(String, Value)> = Vec::new();
                for ik in self.invitations.values() {
                    let Some(inv) = self.res.get(ik) else {
                        continue;
                    };
                    if prop(&inv.body, "invitationStatus") != "Pending"
                        || self.region_down(&inv.region)
                    {
                        continue;
                    }
                    if !ctx.principal.admin && !targets(&inv.body, ctx.principal) {
                        continue;
                    }
                    items.push((inv.id.to_ascii_lowercase(), self.consumer_invitation(ik)));
                }
                items.sort_by(|a, b| a.0.cmp(&b.0));
                self.list(ctx, items.into_iter().map(|x| x.1).collect())
            }
            "ConsumerInvitations_Get" => {
                let loc = norm_region(m.param("location"));
                let inv_id = m.param("invitationId").to_ascii_lowercase();
                let nf = || {
                    ApiError::new(
                        404,
                        "InvitationNotFound",
                        format!(
                            "The invitation '{}' was not found.",
                            m.param("invitationId")
                        ),
                    )
                };
                let ik = self.invitations.get(&inv_id).cloned().ok_or_else(nf)?;
                let inv = self.res.get(&ik).ok_or_else(nf)?;
                if inv.region != loc || (!ctx.principal.admin && !targets(&inv.body, ctx.principal))
                {
                    return Err(nf());
                }
                Ok(Reply::json(200, self.consumer_invitation(&ik)))
            }
            "ConsumerInvitations_RejectInvitation" => {
                let loc = norm_region(m.param("location"));
                let inv_id = prop(&body, "invitationId").to_ascii_lowercase();
                let nf = || {
                    ApiError::new(
                        404,
                        "InvitationNotFound",
                        format!("The invitation '{inv_id}' was not found."),
                    )
                };
                let ik = self.invitations.get(&inv_id).cloned().ok_or_else(nf)?;
                {
                    let inv = self.res.get(&ik).ok_or_else(nf)?;
                    if inv.region != loc
                        || (!ctx.principal.admin && !targets(&inv.body, ctx.principal))
                    {
                        return Err(nf());
                    }
                    let st = prop(&inv.body, "invitationStatus");
                    if st != "Pending" {
                        return Err(ApiError::new(
                            409,
                            "InvalidInvitationStatus",
                            format!("The invitation is '{st}', not 'Pending'."),
                        ));
                    }
                }
                if let Some(inv) = self.res.get_mut(&ik) {
                    set_prop(&mut inv.body, "invitationStatus", json!("Rejected"));
                    set_prop(&mut inv.body, "respondedAt", json!(ts(ctx.now)));
                }
                Ok(Reply::json(200, self.consumer_invitation(&ik)))
            }
            "ShareSubscriptions_Create" => self.create_share_subscription(ctx, &rtype, body),
            "ShareSubscriptions_Synchronize" => {
                let sub = Self::trim_last(ctx.path);
                let sk = key(&sub);
                let r = self.require(&sk, "share subscription", &sub)?.clone();
                let st = prop(&r.body, "shareSubscriptionStatus");
                if st != "Active" {
                    return Err(ApiError::new(
                        409,
                        "InvalidShareSubscriptionStatus",
                        format!(
                            "The share subscription is '{st}'; only an active subscription can synchronize."
                        ),
                    ));
                }
                let mode = body
                    .get("synchronizationMode")
                    .and_then(Value::as_str)
                    .unwrap_or("Incremental")
                    .to_string();
                let mut rec = self.new_sync(&sk, &mode, ctx.now, None);
                rec.status = "Queued".into();
                let id = rec.id.clone();
                let result = sub_sync_json(&rec);
                self.syncs.push(rec);
                self.new_op_id(
                    ctx,
                    id.clone(),
                    &r.region,
                    Effect::Sync(id.clone()),
                    Some(result),
                    None,
                    true,
                );
                // Azure: 202 with {status: Queued, synchronizationId, synchronizationMode};
                // status URLs under the share subscription; no Retry-After.
                let v = ctx.api_version;
                Ok(Reply {
                    status: 202,
                    body: Some(json!({"status": "Queued", "synchronizationId": id,
                        "synchronizationMode": mode})),
                    headers: vec![
                        (
                            "Azure-AsyncOperation".into(),
                            format!(
                                "{}{sub}/synchronizationOperationResults/{id}?api-version={v}",
                                ctx.base_url
                            ),
                        ),
                        (
                            "Location".into(),
                            format!(
                                "{}{sub}/shareSubscriptionSynchronizations/{id}?api-version={v}",
                                ctx.base_url
                            ),
                        ),
                    ],
                })
            }
            "ShareSubscriptions_CancelSynchronization" => {
                let sub = Self::trim_last(ctx.path);
                let sk = key(&sub);
                let region = self
                    .require(&sk, "share subscription", &sub)?
                    .region
                    .clone();
                // First page: from the POST body; next pages (plain GETs): from the nextLink.
                let sid = body
                    .get("synchronizationId")
                    .and_then(Value::as_str)
                    .or_else(|| ctx.q(SYNC_ID_PARAM))
                    .unwrap_or("")
                    .to_string();
                let Some(rec) = self
                    .syncs
                    .iter()
                    .find(|s| s.sub_key == sk && s.id.eq_ignore_ascii_case(&sid))
                    .cloned()
                else {
                    return Err(ApiError::new(
                        404,
                        "SynchronizationNotFound",
                        format!("The synchronization '{sid}' was not found."),
                    )
                    .target("synchronizationId"));
                };
                if rec.end.is_some() {
                    return Ok(Reply::json(200, sub_sync_json(&rec)));
                }
                let v = sub_sync_json(&rec);
                let (_, headers) = self.new_op(
                    ctx,
                    &region,
                    Effect::CancelSync(rec.id.clone()),
                    Some(v.clone()),
                    None,
                    true,
                );
                Ok(Reply {
                    status: 202,
                    body: Some(v),
                    headers,
                })
            }
            "ShareSubscriptions_ListSourceShareSynchronizationSettings" => {
                let sub = Self::trim_last(ctx.path);
                let r = self.require(&key(&sub), "share subscription", &sub)?;
                let items = match &r.link {
                    Some(share) if r.link2.is_some() => self
                        .children(share, "synchronizationSettings")
                        .into_iter()
                        .map(|s| {
                            json!({"kind": s.body["kind"], "properties": {
                            "recurrenceInterval": prop(&s.body, "recurrenceInterval"),
                            "synchronizationTime": prop(&s.body, "synchronizationTime")}})
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                self.list(ctx, items)
            }
            "ConsumerSourceDataSets_ListByShareSubscription" => {
                let sub = Self::trim_last(ctx.path);
                let r = self.require(&key(&sub), "share subscription", &sub)?;
                let items = match &r.link {
                    Some(share) if r.link2.is_some() => {
                        let region = self
                            .res
                            .get(share)
                            .map(|s| s.region.clone())
                            .unwrap_or_default();
                        self.children(share, "dataSets")
                            .into_iter()
                            .map(|d| {
                                let name = d.body["name"].as_str().unwrap_or("");
                                json!({"id": format!("{}/consumerSourceDataSets/{}", r.id, name), "name": name,
                                    "type": "Microsoft.DataShare/accounts/shareSubscriptions/consumerSourceDataSets",
                                    "properties": {"dataSetId": prop(&d.body, "dataSetId"), "dataSetLocation": region,
                                    "dataSetName": name, "dataSetPath": dataset_path(&d.body), "dataSetType": d.body["kind"]}})
                            })
                            .collect()
                    }
                    _ => Vec::new(),
                };
                self.list(ctx, items)
            }
            "DataSetMappings_Create" => {
                let parent = Self::parent_path(ctx.path, 1);
                let sub = self
                    .require(&key(&parent), "share subscription", &parent)?
                    .clone();
                let kind = body
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let ds_id = prop(&body, "dataSetId").to_string();
                let known = sub
                    .link
                    .as_ref()
                    .map(|share| {
                        self.children(share, "dataSets")
                            .iter()
                            .any(|d| prop(&d.body, "dataSetId").eq_ignore_ascii_case(&ds_id))
                    })
                    .unwrap_or(false);
                if !known {
                    return Err(ApiError::new(400, "InvalidDataSetId",
                        format!("The data set id '{ds_id}' is not a data set of the share subscribed by '{parent}'."))
                        .target("properties.dataSetId"));
                }
                let region = self.check_store(&kind, &body, "properties", true)?;
                let (st, v) = self.upsert_child(ctx, &rtype, &parent, body, |_, v, _| {
                    set_prop(v, "dataSetMappingStatus", json!("Ok"));
                    set_prop(v, "provisioningState", json!("Succeeded"));
                    if kind.starts_with("Kusto") {
                        set_prop(v, "location", json!(region.unwrap_or_default()));
                    }
                })?;
                Ok(Reply::json(st, v))
            }
            "Triggers_Create" => {
                let parent = Self::parent_path(ctx.path, 1);
                let sk = key(&parent);
                let sub = self.require(&sk, "share subscription", &parent)?.clone();
                let st = prop(&sub.body, "shareSubscriptionStatus");
                if st != "Active" {
                    return Err(ApiError::new(
                        409,
                        "InvalidShareSubscriptionStatus",
                        format!(
                            "The share subscription is '{st}'; triggers need an active subscription."
                        ),
                    ));
                }
                let has_setting = sub
                    .link
                    .as_ref()
                    .is_some_and(|s| !self.children_keys(s, "synchronizationSettings").is_empty());
                if !has_setting {
                    return Err(ApiError::new(
                        400,
                        "SynchronizationSettingNotFound",
                        "The source share has no synchronization setting; a schedule-based trigger cannot be created.",
                    ));
                }
                let existed = self.res.contains_key(&key(ctx.path));
                let (status, v) = self.upsert_child(ctx, &rtype, &parent, body, |_, v, old| {
                    if prop(v, "synchronizationMode").is_empty() {
                        set_prop(v, "synchronizationMode", json!("Incremental"));
                    }
                    let created = old
                        .map(|o| prop(o, "createdAt").to_string())
                        .unwrap_or_else(|| ts(ctx.now));
                    set_prop(v, "createdAt", json!(created));
                    set_prop(
                        v,
                        "provisioningState",
                        json!(if old.is_some() {
                            "Succeeded"
                        } else {
                            "Creating"
                        }),
                    );
                    // Azure: a new trigger is `Creating` / `Inactive` for a while.
                    set_prop(
                        v,
                        "triggerStatus",
                        json!(if old.is_some() { "Active" } else { "Inactive" }),
                    );
                    Self::user_props(v, ctx.principal, false);
                })?;
                if existed {
                    return Ok(Reply::json(status, v));
                }
                // The schedule's first run is recorded as a synchronization (scheduled snapshot).
                let mode = prop(&v, "synchronizationMode").to_string();
                let rec = self.new_sync(&sk, &mode, ctx.now, Some(ctx.now));
                self.syncs.push(rec);
                let k = key(ctx.path);
                // Provisioned later (GET shows it); Azure sends no LRO headers on the 201.
                self.new_op(
                    ctx,
                    &sub.region,
                    Effect::Provisioned(k.clone()),
                    None,
                    Some(k),
                    false,
                );
                Ok(Reply::json(status, v))
            }
            "EmailRegistrations_RegisterEmail" => Ok(Reply::json(
                200,
                json!({
                "email": ctx.principal.email, "registrationStatus": "ActivationPending", "tenantId": ctx.principal.tenant_id,
                "activationExpirationDate": ts(ctx.now + time::Duration::minutes(15))}),
            )),
            "EmailRegistrations_ActivateEmail" => Ok(Reply::json(
                200,
                json!({
                "email": ctx.principal.email, "registrationStatus": "Activated", "tenantId": ctx.principal.tenant_id,
                "activationExpirationDate": ts(ctx.now + time::Duration::minutes(15))}),
            )),
            other => Err(ApiError::new(
                501,
                "NotImplemented",
                format!("The simulator does not implement '{other}'."),
            )),
        }
    }

    fn trim_last(path: &str) -> String {
        path.trim_end_matches('/')
            .rsplit_once('/')
            .map(|x| x.0.to_string())
            .unwrap_or_default()
    }

    fn reactivate_triggers(&mut self, share_key: &str) {
        let subs: Vec<String> = self
            .res
            .iter()
            .filter(|(_, r)| r.link.as_deref() == Some(share_key) && r.link2.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for s in subs {
            for t in self.children_keys(&s, "triggers") {
                if let Some(r) = self.res.get_mut(&t)
                    && prop(&r.body, "triggerStatus") == "SourceSynchronizationSettingDeleted"
                {
                    set_prop(&mut r.body, "triggerStatus", json!("Active"));
                }
            }
        }
    }

    fn new_sync(
        &mut self,
        sub_key: &str,
        mode: &str,
        start: OffsetDateTime,
        end: Option<OffsetDateTime>,
    ) -> SyncRec {
        let id = self.uuid();
        let sub = self.res.get(sub_key);
        let share_key = sub.and_then(|s| s.link.clone()).unwrap_or_default();
        let (name, email, tenant) = sub
            .and_then(|s| s.link2.as_ref())
            .and_then(|pk| self.res.get(pk))
            .map(|p| {
                (
                    prop(&p.body, "consumerName").to_string(),
                    prop(&p.body, "consumerEmail").to_string(),
                    prop(&p.body, "consumerTenantName").to_string(),
                )
            })
            .unwrap_or_default();
        SyncRec {
            id,
            sub_key: sub_key.to_string(),
            share_key,
            mode: mode.to_string(),
            start,
            end,
            status: if end.is_some() {
                "Succeeded".into()
            } else {
                "InProgress".into()
            },
            consumer_name: name,
            consumer_email: email,
            consumer_tenant_name: tenant,
        }
    }

    /// Record a finished snapshot run (estate generator, `/_sim/triggers/fire`).
    pub fn add_sync(
        &mut self,
        sub_key: &str,
        mode: &str,
        start: OffsetDateTime,
        duration: Duration,
        status: &str,
    ) {
        let end = start + duration;
        let mut rec = self.new_sync(&key(sub_key), mode, start, Some(end));
        rec.status = status.to_string();
        self.syncs.push(rec);
    }

    /// Run every active trigger once now: one successful synchronization per trigger whose
    /// subscription is active and whose source share still has a schedule. Returns the count.
    pub fn fire_triggers(&mut self, now: OffsetDateTime) -> usize {
        let mut todo = Vec::new();
        for (k, r) in &self.res {
            let t = r.body.get("type").and_then(Value::as_str).unwrap_or("");
            if !t.ends_with("shareSubscriptions/triggers")
                || prop(&r.body, "triggerStatus") != "Active"
            {
                continue;
            }
            let sub_key = k.rsplitn(3, '/').nth(2).unwrap_or("").to_string();
            let active = self
                .res
                .get(&sub_key)
                .is_some_and(|s| prop(&s.body, "shareSubscriptionStatus") == "Active");
            if active {
                todo.push((sub_key, prop(&r.body, "synchronizationMode").to_string()));
            }
        }
        for (sk, mode) in &todo {
            self.add_sync(sk, mode, now, Duration::from_secs(42), "Succeeded");
        }
        todo.len()
    }

    /// Move all synchronization history `by` into the past (to make snapshots stale).
    pub fn age_history(&mut self, by: Duration) {
        let d = time::Duration::try_from(by).unwrap_or(time::Duration::ZERO);
        for s in &mut self.syncs {
            s.start -= d;
            if let Some(e) = s.end.as_mut() {
                *e -= d;
            }
        }
    }

    fn consumer_invitation(&self, inv_key: &str) -> Value {
        let Some(inv) = self.res.get(inv_key) else {
            return json!({});
        };
        let share_key = Self::parent_path(inv_key, 1).to_ascii_lowercase();
        let share = self.res.get(&share_key);
        let ds_count = self.children_keys(&share_key, "dataSets").len();
        let inv_id = prop(&inv.body, "invitationId");
        let mut p = json!({
            "dataSetCount": ds_count, "invitationId": inv_id,
            "invitationStatus": prop(&inv.body, "invitationStatus"), "location": inv.region,
            "providerEmail": prop(&inv.body, "userEmail"), "providerName": prop(&inv.body, "userName"),
            "providerTenantName": self.tenant_name_of(&inv.tenant),
            "sentAt": prop(&inv.body, "sentAt"),
            "shareName": share.and_then(|s| s.body["name"].as_str()).unwrap_or(""),
            "userEmail": prop(&inv.body, "userEmail"), "userName": prop(&inv.body, "userName"),
        });
        if let Some(s) = share {
            p["description"] = json!(prop(&s.body, "description"));
            p["termsOfUse"] = json!(prop(&s.body, "terms"));
        }
        for k in ["expirationDate", "respondedAt"] {
            let v = prop(&inv.body, k);
            if !v.is_empty() {
                p[k] = json!(v);
            }
        }
        json!({
            "id": format!("/providers/Microsoft.DataShare/consumerInvitations/{inv_id}"),
            "name": inv.body["name"], "type": "Microsoft.DataShare/consumerInvitations",
            "properties": p,
        })
    }

    fn tenant_name_of(&self, tenant_id: &str) -> String {
        // Tenant names are not stored; the admin tenant is the only provider tenant we know.
        if Principal::named(ADMIN_EMAIL).tenant_id == tenant_id {
            "contoso".into()
        } else {
            "tenant".into()
        }
    }

    fn create_account(&mut self, ctx: &Ctx, body: Value) -> Res {
        let Some(loc) = body
            .get("location")
            .and_then(Value::as_str)
            .filter(|l| !l.trim().is_empty())
        else {
            return Err(ApiError::new(
                400,
                "LocationRequired",
                "The location property is required for this definition.",
            )
            .target("location"));
        };
        let region = norm_region(loc);
        let k = key(ctx.path);
        if let Some(r) = self.res.get_mut(&k) {
            if r.deleting {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!("The account '{}' is being deleted.", ctx.path),
                ));
            }
            if r.region != region {
                return Err(ApiError::new(
                    400,
                    "LocationUpdateNotAllowed",
                    format!(
                        "The location of account '{}' is '{}' and cannot be changed to '{loc}'.",
                        ctx.path, r.region
                    ),
                )
                .target("location"));
            }
            if let Some(t) = body.get("tags") {
                r.body["tags"] = t.clone();
            }
            let sd = r.body.get("systemData").cloned();
            r.body["systemData"] = Self::system_data(ctx.principal, ctx.now, sd.as_ref());
            return Ok(Reply::json(200, r.body.clone()));
        }
        let s = segs_of(ctx.path);
        let principal_id = self.uuid();
        let v = json!({
            "id": ctx.path, "name": s.last().copied().unwrap_or(""), "type": "Microsoft.DataShare/accounts",
            "location": loc, "tags": body.get("tags").cloned().unwrap_or_else(|| json!({})),
            "identity": {"type": "SystemAssigned", "principalId": principal_id, "tenantId": ctx.principal.tenant_id},
            "properties": {"createdAt": ts(ctx.now), "provisioningState": "Creating",
                "userEmail": ctx.principal.email, "userName": ctx.principal.name},
            "systemData": Self::system_data(ctx.principal, ctx.now, None),
        });
        self.res.insert(
            k.clone(),
            Resource {
                id: ctx.path.to_string(),
                body: v.clone(),
                region: region.clone(),
                tenant: ctx.principal.tenant_id.clone(),
                deleting: false,
                link: None,
                link2: None,
            },
        );
        // Azure: 201 `Creating`, then GET until `Succeeded`; no Azure-AsyncOperation.
        self.new_op(
            ctx,
            &region,
            Effect::Provisioned(k.clone()),
            None,
            Some(k),
            false,
        );
        Ok(Reply::json(201, v))
    }

    fn create_invitation(&mut self, ctx: &Ctx, rtype: &str, body: Value) -> Res {
        let email = prop(&body, "targetEmail").to_string();
        let tenant = prop(&body, "targetActiveDirectoryId").to_string();
        let object = prop(&body, "targetObjectId").to_string();
        let bad = |t: &str, m: &str| {
            Err(ApiError::new(
                400,
                "InvalidRequestContent",
                format!("The request content is invalid: {m}"),
            )
            .target(t))
        };
        if !email.is_empty() && !tenant.is_empty() {
            return bad(
                "properties.targetActiveDirectoryId",
                "property 'properties.targetActiveDirectoryId' cannot be combined with 'properties.targetEmail'.",
            );
        }
        if !object.is_empty() && tenant.is_empty() {
            return bad(
                "properties.targetActiveDirectoryId",
                "property 'properties.targetActiveDirectoryId' is required together with 'properties.targetObjectId'.",
            );
        }
        if email.is_empty() && (tenant.is_empty() || object.is_empty()) {
            return bad(
                "properties.targetEmail",
                "either 'properties.targetEmail' or 'properties.targetActiveDirectoryId' with 'properties.targetObjectId' is required.",
            );
        }
        let parent = Self::parent_path(ctx.path, 1);
        if let Some(old) = self.res.get(&key(ctx.path)) {
            let same = prop(&old.body, "targetEmail").eq_ignore_ascii_case(&email)
                && prop(&old.body, "targetActiveDirectoryId").eq_ignore_ascii_case(&tenant)
                && prop(&old.body, "targetObjectId").eq_ignore_ascii_case(&object);
            if !same {
                return Err(ApiError::new(
                    409,
                    "InvitationUpdateNotAllowed",
                    format!(
                        "The invitation '{}' exists with another target; delete it first.",
                        ctx.path
                    ),
                ));
            }
        }
        let new_id = self.uuid();
        let (st, v) = self.upsert_child(ctx, rtype, &parent, body, |_, v, old| match old {
            Some(o) => {
                // A repeated PUT sends the invitation again: a new `sentAt` (recordings).
                set_prop(v, "sentAt", json!(ts(ctx.now)));
                for k in [
                    "invitationId",
                    "invitationStatus",
                    "respondedAt",
                    "userEmail",
                    "userName",
                ] {
                    let x = prop(o, k);
                    // A principal without e-mail has `userEmail: ""`: kept as it is.
                    if !x.is_empty() || o.get("properties").is_some_and(|p| p.get(k).is_some()) {
                        set_prop(v, k, json!(x));
                    }
                }
            }
            None => {
                set_prop(v, "invitationId", json!(new_id));
                set_prop(v, "invitationStatus", json!("Pending"));
                set_prop(v, "sentAt", json!(ts(ctx.now)));
                Self::user_props(v, ctx.principal, true);
            }
        })?;
        self.invitations
            .insert(prop(&v, "invitationId").to_ascii_lowercase(), key(ctx.path));
        // Azure answers a repeated invitation PUT with 201 as well.
        let _ = st;
        Ok(Reply::json(201, v))
    }

    fn create_share_subscription(&mut self, ctx: &Ctx, rtype: &str, body: Value) -> Res {
        let parent = Self::parent_path(ctx.path, 1);
        self.require(&key(&parent), "Data Share account", &parent)?;
        let inv_id = prop(&body, "invitationId").to_ascii_lowercase();
        let k = key(ctx.path);
        if let Some(old) = self.res.get(&k) {
            if prop(&old.body, "invitationId").eq_ignore_ascii_case(&inv_id) {
                let mut v = old.body.clone();
                if let Some(e) = body.get("properties").and_then(|p| p.get("expirationDate")) {
                    set_prop(&mut v, "expirationDate", e.clone());
                }
                if let Some(r) = self.res.get_mut(&k) {
                    r.body = v.clone();
                }
                return Ok(Reply::json(200, v));
            }
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "The share subscription '{}' exists for another invitation.",
                    ctx.path
                ),
            ));
        }
        let Some(ik) = self.invitations.get(&inv_id).cloned() else {
            return Err(ApiError::new(
                400,
                "InvitationNotFound",
                format!("The invitation '{inv_id}' was not found."),
            )
            .target("properties.invitationId"));
        };
        let inv = self.res.get(&ik).cloned().ok_or_else(|| {
            ApiError::new(400, "InvitationNotFound", "The invitation was not found.")
        })?;
        if !ctx.principal.admin && !targets(&inv.body, ctx.principal) {
            return Err(ApiError::new(
                403,
                "AuthorizationFailed",
                format!(
                    "The invitation '{inv_id}' is not addressed to '{}'.",
                    ctx.principal.email
                ),
            ));
        }
        if self.region_down(&inv.region) {
            return Err(ApiError::new(
                503,
                "ServiceUnavailable",
                format!(
                    "The Data Share service in region '{}' is unavailable.",
                    inv.region
                ),
            ));
        }
        let st = prop(&inv.body, "invitationStatus");
        if st != "Pending" {
            return Err(ApiError::new(
                409,
                "InvalidInvitationStatus",
                format!("The invitation is '{st}', not 'Pending'."),
            ));
        }
        let ssl = norm_region(prop(&body, "sourceShareLocation"));
        if ssl != inv.region {
            return Err(ApiError::new(
                400,
                "InvalidSourceShareLocation",
                format!(
                    "The source share is in '{}', not '{}'.",
                    inv.region,
                    prop(&body, "sourceShareLocation")
                ),
            )
            .target("properties.sourceShareLocation"));
        }
        let share_key = Self::parent_path(&ik, 1).to_ascii_lowercase();
        let share = self.res.get(&share_key).cloned().ok_or_else(|| {
            ApiError::new(
                400,
                "InvitationNotFound",
                "The shared share no longer exists.",
            )
        })?;
        let expiration = body
            .get("properties")
            .and_then(|p| p.get("expirationDate"))
            .cloned()
            .or_else(|| {
                inv.body
                    .get("properties")
                    .and_then(|p| p.get("expirationDate"))
                    .cloned()
            });
        let provider_tenant = self.tenant_name_of(&inv.tenant);
        let p = ctx.principal.clone();
        // Azure keys provider share subscriptions by `shareSubscriptionObjectId`; their `name`
        // is the consumer's share subscription name.
        let obj_id = self.uuid();
        let psub_key = format!("{share_key}/providersharesubscriptions/{obj_id}");
        let (status, v) = self.upsert_child(ctx, rtype, &parent, body, |_, v, _| {
            set_prop(v, "createdAt", json!(ts(ctx.now)));
            set_prop(v, "providerEmail", json!(prop(&inv.body, "userEmail")));
            set_prop(v, "providerName", json!(prop(&inv.body, "userName")));
            set_prop(v, "providerTenantName", json!(provider_tenant));
            set_prop(v, "provisioningState", json!("Succeeded"));
            set_prop(
                v,
                "shareDescription",
                json!(prop(&share.body, "description")),
            );
            set_prop(v, "shareKind", json!(prop(&share.body, "shareKind")));
            set_prop(v, "shareName", json!(share.body["name"]));
            set_prop(v, "shareSubscriptionStatus", json!("Active"));
            set_prop(v, "shareTerms", json!(prop(&share.body, "terms")));
            set_prop(v, "sourceShareLocation", json!(inv.region));
            Self::user_props(v, &p, true);
            if let Some(e) = &expiration {
                set_prop(v, "expirationDate", e.clone());
            }
        })?;
        if let Some(r) = self.res.get_mut(&k) {
            r.link = Some(share_key.clone());
            r.link2 = Some(psub_key.clone());
        }
        let sub_name = segs_of(ctx.path).last().copied().unwrap_or("").to_string();
        let mut pv = json!({
            "id": format!("{}/shareSubscriptions/{}", share.id, obj_id), "name": sub_name,
            "type": "Microsoft.DataShare/ShareSubscriptions",
            "properties": {"consumerEmail": p.email, "consumerName": p.name, "consumerTenantName": p.tenant_name,
                "createdAt": ts(ctx.now), "providerEmail": prop(&inv.body, "userEmail"),
                "providerName": prop(&inv.body, "userName"), "sharedAt": prop(&inv.body, "sentAt"),
                "shareSubscriptionObjectId": obj_id, "shareSubscriptionStatus": "Active"},
            "systemData": Self::system_data(&p, ctx.now, None),
        });
        if let Some(e) = &expiration {
            set_prop(&mut pv, "expirationDate", e.clone());
        }
        self.res.insert(
            psub_key,
            Resource {
                id: pv["id"].as_str().unwrap_or("").to_string(),
                body: pv,
                region: share.region.clone(),
                tenant: share.tenant.clone(),
                deleting: false,
                link: Some(k),
                link2: None,
            },
        );
        if let Some(i) = self.res.get_mut(&ik) {
            set_prop(&mut i.body, "invitationStatus", json!("Accepted"));
            set_prop(&mut i.body, "respondedAt", json!(ts(ctx.now)));
        }
        Ok(Reply::json(status, v))
    }

    /// Check that the store a data set (or mapping) points at exists; returns its region.
    fn check_store(
        &self,
        kind: &str,
        body: &Value,
        _p: &str,
        mapping: bool,
    ) -> Result<Option<String>, ApiError> {
        let p = |n: &str| prop(body, n).to_string();
        let missing = |what: &str, id: &str, target: &str| {
            Err(ApiError::new(
                400,
                "DataSetSourceNotFound",
                format!(
                    "The {} {what} '{id}' was not found or is not accessible.",
                    if mapping { "target" } else { "source" }
                ),
            )
            .target(target.to_string()))
        };
        let lookup = |id: &str| self.res.get(&key(id)).filter(|r| !r.deleting);
        match kind {
            "Blob" | "BlobFolder" | "Container" | "AdlsGen2File" | "AdlsGen2Folder" | "AdlsGen2FileSystem" => {
                let id = format!(
                    "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/{}",
                    p("subscriptionId"), p("resourceGroup"), p("storageAccountName")
                );
                let Some(r) = lookup(&id) else { return missing("storage account", &id, "properties.storageAccountName") };
                let hns = r.body.get("properties").and_then(|x| x.get("isHnsEnabled")).and_then(Value::as_bool).unwrap_or(false);
                if kind.starts_with("AdlsGen2") && !hns {
                    return Err(ApiError::new(400, "InvalidDataSetSource", format!(
                        "The storage account '{id}' does not have a hierarchical namespace (ADLS Gen2) enabled.")).target("properties.storageAccountName"));
                }
                Ok(Some(r.region.clone()))
            }
            "AdlsGen1File" | "AdlsGen1Folder" => Err(ApiError::new(400, "InvalidDataSetSource",
                "Azure Data Lake Storage Gen1 was retired on 2024-02-29; its accounts are no longer reachable.").target("properties.accountName")),
            "SqlDBTable" | "SqlDWTable" => {
                let server = p("sqlServerResourceId");
                let db = if kind == "SqlDBTable" { p("databaseName") } else { p("dataWarehouseName") };
                let Some(_) = lookup(&server) else { return missing("SQL server", &server, "properties.sqlServerResourceId") };
                let id = format!("{}/databases/{db}", server.trim_end_matches('/'));
                let target = if kind == "SqlDBTable" { "properties.databaseName" } else { "properties.dataWarehouseName" };
                let Some(r) = lookup(&id) else { return missing("SQL database", &id, target) };
                Ok(Some(r.region.clone()))
            }
            "SynapseWorkspaceSqlPoolTable" => {
                let full = p("synapseWorkspaceSqlPoolTableResourceId");
                let s = segs_of(&full);
                let pool = s.iter().position(|x| x.eq_ignore_ascii_case("sqlPools")).filter(|i| i + 1 < s.len());
                let id = pool.map(|i| format!("/{}", s[..i + 2].join("/"))).unwrap_or(full.clone());
                let Some(r) = lookup(&id) else {
                    return missing("Synapse SQL pool", &id, "properties.synapseWorkspaceSqlPoolTableResourceId");
                };
                Ok(Some(r.region.clone()))
            }
            "KustoCluster" | "KustoDatabase" | "KustoTable" => {
                let (id, target) = if mapping || kind == "KustoCluster" {
                    (p("kustoClusterResourceId"), "properties.kustoClusterResourceId")
                } else {
                    (p("kustoDatabaseResourceId"), "properties.kustoDatabaseResourceId")
                };
                let Some(r) = lookup(&id) else { return missing("Kusto resource", &id, target) };
                Ok(Some(r.region.clone()))
            }
            _ => Ok(None),
        }
    }

    /// `share_kind_rules`: a `CopyBased` share takes Blob/ADLS/SQL/Synapse data sets, an
    /// `InPlace` share only Kusto ones.
    fn check_share_kind(&self, share: &str, kind: &str) -> Result<(), ApiError> {
        let Some(sh) = self.res.get(&key(share)) else {
            return Ok(());
        };
        let share_kind = match prop(&sh.body, "shareKind") {
            "" => "CopyBased",
            k => k,
        };
        let in_place = kind.starts_with("Kusto");
        let fits = if share_kind.eq_ignore_ascii_case("InPlace") {
            in_place
        } else {
            !in_place
        };
        if fits {
            return Ok(());
        }
        let takes = if in_place {
            "KustoCluster or KustoDatabase data sets only in an 'InPlace' share"
        } else {
            "Blob, ADLS, SQL and Synapse data sets only in a 'CopyBased' share"
        };
        Err(ApiError::new(
            400,
            "InvalidDataSetKind",
            format!(
                "A data set of kind '{kind}' cannot be added to the '{share_kind}' share '{share}': Data Share takes {takes}. Create the data set in a share of the matching kind."
            ),
        )
        .target("kind"))
    }

    /// `store_data_roles` / `role_propagation`: the account's managed identity must hold a data
    /// role on the store (at or above its scope), created at least `role_propagation` ago.
    fn check_data_role(
        &self,
        ctx: &Ctx,
        share: &str,
        kind: &str,
        body: &Value,
    ) -> Result<(), ApiError> {
        let p = |n: &str| prop(body, n).to_string();
        let (store, accepted): (String, &[&str]) = match kind {
            "Blob" | "BlobFolder" | "Container" | "AdlsGen2File" | "AdlsGen2Folder"
            | "AdlsGen2FileSystem" => (
                format!(
                    "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/{}",
                    p("subscriptionId"),
                    p("resourceGroup"),
                    p("storageAccountName")
                ),
                &[
                    roles::STORAGE_BLOB_DATA_READER,
                    "ba92f5b4-2d11-453d-a403-e96b0029c9fe", // Storage Blob Data Contributor
                    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b", // Storage Blob Data Owner
                ],
            ),
            "SqlDBTable" | "SqlDWTable" | "SynapseWorkspaceSqlPoolTable" => (
                if kind == "SynapseWorkspaceSqlPoolTable" {
                    p("synapseWorkspaceSqlPoolTableResourceId")
                } else {
                    p("sqlServerResourceId")
                },
                &[roles::READER, roles::CONTRIBUTOR, OWNER_ROLE],
            ),
            "KustoCluster" => (
                p("kustoClusterResourceId"),
                &[roles::CONTRIBUTOR, OWNER_ROLE],
            ),
            "KustoDatabase" | "KustoTable" => (
                p("kustoDatabaseResourceId"),
                &[roles::CONTRIBUTOR, OWNER_ROLE],
            ),
            _ => return Ok(()),
        };
        let Some(acct) = account_key(share).and_then(|k| self.res.get(&k)) else {
            return Ok(());
        };
        let identity = acct.body["identity"]["principalId"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let store_l = key(&store);
        let mut young = false;
        for (rk, r) in &self.roles {
            let scope = key(r.body["properties"]["scope"].as_str().unwrap_or(""));
            let covers = store_l == scope || store_l.starts_with(&format!("{scope}/"));
            let role = prop(&r.body, "roleDefinitionId")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if !covers
                || !prop(&r.body, "principalId").eq_ignore_ascii_case(&identity)
                || !accepted.contains(&role.as_str())
            {
                continue;
            }
            let effective = self.role_at.get(rk).is_none_or(|at| {
                ctx.instant.saturating_duration_since(*at) >= ctx.checks.role_propagation
            });
            if effective {
                return Ok(());
            }
            young = true;
        }
        if !young && !ctx.checks.store_data_roles {
            return Ok(());
        }
        let why = if young {
            "its role assignment on the store has not taken effect yet (role assignments take a few minutes to propagate); retry later"
        } else {
            "assign it a data role on the store (e.g. Storage Blob Data Reader on a storage account, Contributor on a Kusto cluster) and retry"
        };
        Err(ApiError::new(
            403,
            "AuthorizationFailed",
            format!(
                "The Data Share account's managed identity '{identity}' does not have the permission to read the data store '{store}': {why}."
            ),
        ))
    }

    // ---------------------------------------------------------------- other ARM resources

    /// Handle a request for a supported non-Data-Share ARM resource or role assignment.
    /// Returns `None` when the path is not one the simulator knows.
    pub fn arm(&mut self, ctx: &Ctx, method: &str, body: Option<&Value>) -> Option<(String, Res)> {
        let s = segs_of(ctx.path);
        if let Some(i) = (0..s.len()).find(|&i| {
            s[i].eq_ignore_ascii_case("providers")
                && s.get(i + 1)
                    .is_some_and(|x| x.eq_ignore_ascii_case("Microsoft.Authorization"))
                && s.get(i + 2)
                    .is_some_and(|x| x.eq_ignore_ascii_case("roleAssignments"))
        }) {
            let scope = format!("/{}", s[..i].join("/"));
            return Some(self.role_assignments(
                ctx,
                method,
                &scope,
                s.get(i + 3).copied(),
                s.len() > i + 4,
                body,
            ));
        }
        let kind = ArmKind::parse(&s)?;
        let name = kind.op_name(method);
        Some((name, self.arm_resource(ctx, method, &kind, body)))
    }

    fn arm_resource(
        &mut self,
        ctx: &Ctx,
        method: &str,
        kind: &ArmKind,
        body: Option<&Value>,
    ) -> Res {
        let k = key(ctx.path);
        match (method, kind.item) {
            ("GET", true) => self.get_reply(ctx.path, kind.label),
            ("GET", false) => {
                let prefix = kind.list_prefix.to_ascii_lowercase();
                let depth = kind.item_depth;
                let mut items: Vec<Value> = self
                    .res
                    .range(prefix.clone()..)
                    .take_while(|(x, _)| x.starts_with(&prefix))
                    .filter(|(x, r)| {
                        let xs = segs_of(x);
                        xs.len() == depth && kind.matches_type(&xs) && !self.region_down(&r.region)
                    })
                    .map(|(_, r)| r.body.clone())
                    .collect();
                items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
                self.list(ctx, items)
            }
            ("PUT", true) => {
                let body = body.cloned().unwrap_or_else(|| json!({}));
                if !body.is_object() {
                    return Err(ApiError::new(
                        400,
                        "InvalidRequestContent",
                        "The request content must be a JSON object.",
                    ));
                }
                let mut region = body
                    .get("location")
                    .and_then(Value::as_str)
                    .map(norm_region)
                    .unwrap_or_default();
                let mut tenant = ctx.principal.tenant_id.clone();
                if let Some(parent) = &kind.parent {
                    let Some(pr) = self.res.get(&key(parent)) else {
                        return Err(ApiError::new(
                            404,
                            "ParentResourceNotFound",
                            format!("The parent resource '{parent}' was not found."),
                        ));
                    };
                    if region.is_empty() {
                        region = pr.region.clone();
                    }
                    tenant = pr.tenant.clone();
                }
                if region.is_empty() {
                    return Err(ApiError::new(
                        400,
                        "LocationRequired",
                        "The location property is required for this definition.",
                    )
                    .target("location"));
                }
                let old = self.res.get(&k).cloned();
                if let Some(o) = &old
                    && o.region != region
                {
                    return Err(ApiError::new(
                        400,
                        "LocationUpdateNotAllowed",
                        format!(
                            "The location of '{}' is '{}' and cannot be changed.",
                            ctx.path, o.region
                        ),
                    )
                    .target("location"));
                }
                let s = segs_of(ctx.path);
                let name = s.last().copied().unwrap_or("");
                let mut v = body.clone();
                v["id"] = json!(
                    old.as_ref()
                        .map(|o| o.id.clone())
                        .unwrap_or_else(|| ctx.path.to_string())
                );
                v["name"] = json!(name);
                v["type"] = json!(kind.type_name);
                v["location"] = json!(
                    body.get("location")
                        .and_then(Value::as_str)
                        .unwrap_or(&region)
                );
                let sd = old.as_ref().and_then(|o| o.body.get("systemData").cloned());
                v["systemData"] = Self::system_data(ctx.principal, ctx.now, sd.as_ref());
                if !v.get("properties").is_some_and(Value::is_object) {
                    v["properties"] = json!({});
                }
                v["properties"]["provisioningState"] = json!("Succeeded");
                kind.server_fields(&mut v, name, &region, ctx.now);
                self.res.insert(
                    k,
                    Resource {
                        id: v["id"].as_str().unwrap_or("").to_string(),
                        body: v.clone(),
                        region,
                        tenant,
                        deleting: false,
                        link: None,
                        link2: None,
                    },
                );
                Ok(Reply::json(if old.is_some() { 200 } else { 201 }, v))
            }
            ("DELETE", true) => {
                if self.res.contains_key(&k) {
                    self.remove_cascade(&k, ctx.now);
                    Ok(Reply::empty(200))
                } else {
                    Ok(Reply::empty(204))
                }
            }
            _ => Err(ApiError::new(
                405,
                "MethodNotAllowed",
                format!("The method '{method}' is not supported on '{}'.", ctx.path),
            )),
        }
    }

    fn role_assignments(
        &mut self,
        ctx: &Ctx,
        method: &str,
        scope: &str,
        name: Option<&str>,
        extra: bool,
        body: Option<&Value>,
    ) -> (String, Res) {
        if extra {
            return (
                "RoleAssignments_Unknown".into(),
                Err(ApiError::not_found("resource", ctx.path)),
            );
        }
        let scope_l = key(scope);
        match (method, name) {
            ("GET", None) => {
                let filter = ctx.q("$filter").unwrap_or("").to_string();
                let at_scope = filter.to_ascii_lowercase().contains("atscope()");
                let principal = filter_value(&filter, "principalid eq")
                    .or_else(|| filter_value(&filter, "assignedto("));
                let mut items: Vec<Value> = self
                    .roles
                    .values()
                    .filter(|r| {
                        let rs = key(r.body["properties"]["scope"].as_str().unwrap_or(""));
                        let above = scope_l == rs
                            || scope_l.starts_with(&format!("{rs}/"))
                            || rs.is_empty();
                        let below = rs.starts_with(&format!("{scope_l}/"));
                        (above || (!at_scope && below))
                            && principal.as_ref().is_none_or(|p| {
                                r.body["properties"]["principalId"]
                                    .as_str()
                                    .is_some_and(|x| x.eq_ignore_ascii_case(p))
                            })
                    })
                    .map(|r| r.body.clone())
                    .collect();
                items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
                ("RoleAssignments_ListForScope".into(), self.list(ctx, items))
            }
            ("GET", Some(_)) => {
                let r = match self.roles.get(&key(ctx.path)) {
                    Some(r) => Ok(Reply::json(200, r.body.clone())),
                    None => Err(ApiError::new(
                        404,
                        "RoleAssignmentNotFound",
                        format!("The role assignment '{}' is not found.", ctx.path),
                    )),
                };
                ("RoleAssignments_Get".into(), r)
            }
            ("DELETE", Some(_)) => {
                self.role_at.remove(&key(ctx.path));
                let r = match self.roles.remove(&key(ctx.path)) {
                    Some(r) => Ok(Reply::json(200, r.body)),
                    None => Ok(Reply::empty(204)),
                };
                ("RoleAssignments_Delete".into(), r)
            }
            ("PUT", Some(n)) => (
                "RoleAssignments_Create".into(),
                self.put_role(ctx, scope, n, body),
            ),
            _ => (
                "RoleAssignments_Unknown".into(),
                Err(ApiError::new(
                    405,
                    "MethodNotAllowed",
                    format!("The method '{method}' is not supported on '{}'.", ctx.path),
                )),
            ),
        }
    }

    fn put_role(&mut self, ctx: &Ctx, scope: &str, name: &str, body: Option<&Value>) -> Res {
        if uuid::Uuid::parse_str(name).is_err() {
            return Err(ApiError::new(
                400,
                "InvalidRoleAssignmentId",
                format!(
                    "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
                ),
            ));
        }
        let body = body.cloned().unwrap_or(Value::Null);
        let role = prop(&body, "roleDefinitionId").to_string();
        let principal = prop(&body, "principalId").to_string();
        for (f, v) in [("roleDefinitionId", &role), ("principalId", &principal)] {
            if v.is_empty() {
                return Err(ApiError::new(
                    400,
                    "InvalidRequestContent",
                    format!(
                        "The request content is invalid: property 'properties.{f}' is required."
                    ),
                )
                .target(format!("properties.{f}")));
            }
        }
        let k = key(ctx.path);
        let role_guid = role.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
        let scope_l = key(scope);
        if let Some(dup) = self.roles.iter().find(|(rk, r)| {
            **rk != k
                && key(r.body["properties"]["scope"].as_str().unwrap_or("")) == scope_l
                && prop(&r.body, "principalId").eq_ignore_ascii_case(&principal)
                && prop(&r.body, "roleDefinitionId")
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .eq_ignore_ascii_case(&role_guid)
        }) {
            return Err(ApiError::new(
                409,
                "RoleAssignmentExists",
                format!(
                    "The role assignment already exists. The ID of the existing role assignment is {}.",
                    dup.1.body["name"].as_str().unwrap_or("")
                ),
            ));
        }
        if let Some(old) = self.roles.get(&k) {
            let same = prop(&old.body, "principalId").eq_ignore_ascii_case(&principal)
                && prop(&old.body, "roleDefinitionId")
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .eq_ignore_ascii_case(&role_guid);
            if !same {
                return Err(ApiError::new(
                    400,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                ));
            }
            return Ok(Reply::json(200, old.body.clone()));
        }
        let sub = segs_of(scope)
            .get(1)
            .map(|x| x.to_string())
            .unwrap_or_default();
        let role_id = if role.starts_with('/') {
            role.clone()
        } else {
            format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}")
        };
        let v = json!({
            "id": ctx.path, "name": name, "type": "Microsoft.Authorization/roleAssignments",
            "properties": {"roleDefinitionId": role_id, "principalId": principal,
                "principalType": body["properties"].get("principalType").cloned().unwrap_or_else(|| json!("ServicePrincipal")),
                "scope": scope, "createdOn": ts(ctx.now), "updatedOn": ts(ctx.now), "createdBy": ctx.principal.object_id},
        });
        let region = self.region_of(scope, None).unwrap_or_default();
        self.role_at.insert(k.clone(), ctx.instant);
        self.roles.insert(
            k,
            Resource {
                id: ctx.path.to_string(),
                body: v.clone(),
                region,
                tenant: ctx.principal.tenant_id.clone(),
                deleting: false,
                link: None,
                link2: None,
            },
        );
        Ok(Reply::json(201, v))
    }
}

/// Operation name (for stats) of a request to a supported non-Data-Share resource.
pub fn arm_op_name(segs: &[&str], method: &str) -> Option<String> {
    if let Some(i) = (0..segs.len()).find(|&i| {
        segs[i].eq_ignore_ascii_case("providers")
            && segs
                .get(i + 1)
                .is_some_and(|x| x.eq_ignore_ascii_case("Microsoft.Authorization"))
            && segs
                .get(i + 2)
                .is_some_and(|x| x.eq_ignore_ascii_case("roleAssignments"))
    }) {
        let item = segs.len() > i + 3;
        let verb = match (method, item) {
            ("GET", false) => "ListForScope",
            ("GET", true) => "Get",
            ("PUT", _) => "Create",
            ("DELETE", _) => "Delete",
            _ => "Unknown",
        };
        return Some(format!("RoleAssignments_{verb}"));
    }
    ArmKind::parse(segs).map(|k| k.op_name(method))
}

fn filter_value(filter: &str, marker: &str) -> Option<String> {
    let lower = filter.to_ascii_lowercase();
    let i = lower.find(marker)? + marker.len();
    let rest = &filter[i..];
    let start = rest.find('\'')? + 1;
    let end = rest[start..].find('\'')? + start;
    Some(rest[start..end].to_string())
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%24", "$")
        .replace("%2D", "-")
        .replace("%2E", ".")
        .replace("%5F", "_")
}

fn targets(inv: &Value, p: &Principal) -> bool {
    let email = prop(inv, "targetEmail");
    if !email.is_empty() {
        return email.eq_ignore_ascii_case(&p.email);
    }
    prop(inv, "targetActiveDirectoryId").eq_ignore_ascii_case(&p.tenant_id)
        && prop(inv, "targetObjectId").eq_ignore_ascii_case(&p.object_id)
}

fn dataset_path(d: &Value) -> String {
    let parts: Vec<&str> = [
        "containerName",
        "fileSystem",
        "folderPath",
        "prefix",
        "filePath",
        "databaseName",
        "dataWarehouseName",
        "schemaName",
        "tableName",
        "kustoClusterResourceId",
        "kustoDatabaseResourceId",
        "synapseWorkspaceSqlPoolTableResourceId",
    ]
    .iter()
    .map(|k| prop(d, k))
    .filter(|s| !s.is_empty())
    .collect();
    parts.join("/")
}

fn share_sync_json(s: &SyncRec) -> Value {
    let mut v = json!({"consumerEmail": s.consumer_email, "consumerName": s.consumer_name,
        "consumerTenantName": s.consumer_tenant_name, "startTime": ts(s.start), "status": s.status,
        "synchronizationId": s.id, "synchronizationMode": s.mode});
    if let Some(e) = s.end {
        v["endTime"] = json!(ts(e));
        v["durationMs"] = json!((e - s.start).whole_milliseconds() as i64);
        v["message"] = json!(format!("The synchronization ended: {}.", s.status));
    }
    v
}

fn sub_sync_json(s: &SyncRec) -> Value {
    let mut v = json!({"startTime": ts(s.start), "status": s.status, "synchronizationId": s.id, "synchronizationMode": s.mode});
    if let Some(e) = s.end {
        v["endTime"] = json!(ts(e));
        v["durationMs"] = json!((e - s.start).whole_milliseconds() as i64);
        v["message"] = json!(format!("The synchronization ended: {}.", s.status));
    }
    v
}

/// A supported non-Data-Share resource path.
#[derive(Debug, Clone)]
struct ArmKind {
    label: &'static str,
    op: &'static str,
    type_name: &'static str,
    item: bool,
    parent: Option<String>,
    list_prefix: String,
    item_depth: usize,
    ns: &'static str,
    ty: &'static str,
    child: Option<&'static str>,
}

const ARM_TYPES: [(&str, &str, Option<&str>, &str, &str); 8] = [
    (
        "Microsoft.Storage",
        "storageAccounts",
        None,
        "StorageAccounts",
        "storage account",
    ),
    ("Microsoft.Sql", "servers", None, "SqlServers", "SQL server"),
    (
        "Microsoft.Sql",
        "servers",
        Some("databases"),
        "SqlDatabases",
        "SQL database",
    ),
    (
        "Microsoft.Synapse",
        "workspaces",
        None,
        "SynapseWorkspaces",
        "Synapse workspace",
    ),
    (
        "Microsoft.Synapse",
        "workspaces",
        Some("sqlPools"),
        "SynapseSqlPools",
        "Synapse SQL pool",
    ),
    (
        "Microsoft.Kusto",
        "clusters",
        None,
        "KustoClusters",
        "Kusto cluster",
    ),
    (
        "Microsoft.Kusto",
        "clusters",
        Some("databases"),
        "KustoDatabases",
        "Kusto database",
    ),
    (
        "Microsoft.Resources",
        "resourceGroups",
        None,
        "ResourceGroups",
        "resource group",
    ),
];

impl ArmKind {
    fn parse(s: &[&str]) -> Option<ArmKind> {
        if s.len() < 2 || !s[0].eq_ignore_ascii_case("subscriptions") {
            return None;
        }
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        // /subscriptions/{s}/providers/{ns}/{type}  (list by subscription)
        if s.len() == 5 && eq(s[2], "providers") {
            let (ns, ty, _, op, label) = ARM_TYPES
                .iter()
                .find(|t| t.2.is_none() && eq(t.0, s[3]) && eq(t.1, s[4]))?;
            return Some(ArmKind::mk(
                ns,
                ty,
                None,
                op,
                label,
                false,
                None,
                format!("/subscriptions/{}/", s[1]),
                8,
            ));
        }
        if s.len() < 7 || !eq(s[2], "resourceGroups") || !eq(s[4], "providers") {
            return None;
        }
        let rg_prefix = format!("/subscriptions/{}/resourcegroups/{}/", s[1], s[3]);
        match s.len() {
            7 | 8 => {
                let (ns, ty, _, op, label) = ARM_TYPES
                    .iter()
                    .find(|t| t.2.is_none() && eq(t.0, s[5]) && eq(t.1, s[6]))?;
                Some(ArmKind::mk(
                    ns,
                    ty,
                    None,
                    op,
                    label,
                    s.len() == 8,
                    None,
                    rg_prefix,
                    8,
                ))
            }
            9 | 10 => {
                let (ns, ty, child, op, label) = ARM_TYPES
                    .iter()
                    .find(|t| t.2.is_some_and(|c| eq(c, s[8])) && eq(t.0, s[5]) && eq(t.1, s[6]))?;
                let parent = format!("/{}", s[..8].join("/"));
                let prefix = format!("{}/{}/", parent, s[8]);
                Some(ArmKind::mk(
                    ns,
                    ty,
                    *child,
                    op,
                    label,
                    s.len() == 10,
                    Some(parent),
                    prefix,
                    10,
                ))
            }
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn mk(
        ns: &'static str,
        ty: &'static str,
        child: Option<&'static str>,
        op: &'static str,
        label: &'static str,
        item: bool,
        parent: Option<String>,
        prefix: String,
        depth: usize,
    ) -> ArmKind {
        let type_name = match (ns, ty, child) {
            ("Microsoft.Storage", _, _) => "Microsoft.Storage/storageAccounts",
            ("Microsoft.Sql", _, None) => "Microsoft.Sql/servers",
            ("Microsoft.Sql", _, Some(_)) => "Microsoft.Sql/servers/databases",
            ("Microsoft.Synapse", _, None) => "Microsoft.Synapse/workspaces",
            ("Microsoft.Synapse", _, Some(_)) => "Microsoft.Synapse/workspaces/sqlPools",
            ("Microsoft.Kusto", _, None) => "Microsoft.Kusto/clusters",
            ("Microsoft.Kusto", _, Some(_)) => "Microsoft.Kusto/clusters/databases",
            _ => "Microsoft.Resources/resourceGroups",
        };
        ArmKind {
            label,
            op,
            type_name,
            item,
            parent,
            list_prefix: prefix,
            item_depth: depth,
            ns,
            ty,
            child,
        }
    }

    fn matches_type(&self, xs: &[&str]) -> bool {
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        xs.len() >= 8
            && eq(xs[5], self.ns)
            && eq(xs[6], self.ty)
            && match self.child {
                None => xs.len() == 8,
                Some(c) => xs.len() == 10 && eq(xs[8], c),
            }
    }

    fn op_name(&self, method: &str) -> String {
        let verb = match (method, self.item) {
            ("GET", true) => "Get",
            ("GET", false) => "List",
            ("PUT", _) => "CreateOrUpdate",
            ("DELETE", _) => "Delete",
            _ => "Unsupported",
        };
        format!("{}_{verb}", self.op)
    }

    fn server_fields(&self, v: &mut Value, name: &str, region: &str, now: OffsetDateTime) {
        let p = &mut v["properties"];
        match self.type_name {
            "Microsoft.Storage/storageAccounts" => {
                let hns = p
                    .get("isHnsEnabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                p["isHnsEnabled"] = json!(hns);
                p["creationTime"] = json!(ts(now));
                p["primaryLocation"] = json!(region);
                p["primaryEndpoints"] = json!({"blob": format!("https://{name}.blob.core.windows.net/"),
                    "dfs": format!("https://{name}.dfs.core.windows.net/")});
                if v.get("kind").is_none() {
                    v["kind"] = json!("StorageV2");
                }
                if v.get("sku").is_none() {
                    v["sku"] = json!({"name": "Standard_LRS", "tier": "Standard"});
                }
            }
            "Microsoft.Sql/servers" => {
                p["fullyQualifiedDomainName"] = json!(format!("{name}.database.windows.net"));
                p["state"] = json!("Ready");
            }
            "Microsoft.Sql/servers/databases" | "Microsoft.Synapse/workspaces/sqlPools" => {
                p["status"] = json!("Online");
            }
            "Microsoft.Kusto/clusters" => {
                p["uri"] = json!(format!("https://{name}.{region}.kusto.windows.net"));
                p["state"] = json!("Running");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_principals_with_deterministic_ids() {
        let a = Principal::from_token("sim").map(|p| (p.admin, p.email));
        assert_eq!(a, Some((true, ADMIN_EMAIL.to_string())));
        let c1 = Principal::from_token("sim:alice@fabrikam.example");
        let c2 = Principal::from_token("sim:alice@fabrikam.example");
        assert_eq!(c1, c2);
        assert!(c1.is_some_and(|p| !p.admin && p.tenant_name == "fabrikam"));
        assert_eq!(Principal::from_token("other"), None);
        assert_eq!(Principal::from_token("sim:"), None);
    }

    #[test]
    fn odata_filter_values_are_extracted() {
        assert_eq!(
            filter_value("atScope() and principalId eq 'abc'", "principalid eq"),
            Some("abc".into())
        );
        assert_eq!(
            filter_value("assignedTo('x-1')", "assignedto("),
            Some("x-1".into())
        );
        assert_eq!(filter_value("", "principalid eq"), None);
    }
}
