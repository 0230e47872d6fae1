//! The DR topology: the TOML file named by `DR_CONFIG_PATH` / `--config` (schema in
//! docs/config.md, consumer role in docs/consumer.md, a commented example in examples/dr.toml).
//!
//! Job: load that file once, validate all of it, and hand the rest of the tool a typed,
//! already-resolved view: pairs with their effective policies (defaults applied), share
//! selection, per-consumer invitation policy, store mapping, ARM settings and the alert
//! allow-list; or, in the consumer role, the share subscriptions to fail over.
//!
//! Invariants:
//! - Unknown keys are errors (a typo must not silently disable a policy); every error names the
//!   dotted key path *and* `file:line:column`, and a load reports every problem it finds.
//! - [`StoreMapping::map_store`] never returns the id it was given: a store that maps to itself
//!   (would point a secondary dataset at a primary-region store) or matches no rule is unmapped.
//! - Secrets (`arm.token`) live in [`Secret`], whose `Debug`/`Display` print `***`.
//! - Nothing panics on any input text.
//!
//! Must not import reconcile, readiness, failover, handlers, host or store (it is read by them).
//! It uses only [`crate::arm::id`] for resource ids.

pub mod regions;
mod walk;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use url::Url;

use crate::arm::id::{AccountId, IdError, ResourceId, ShareSubscriptionId};
use walk::{Ctx, Loc, Table};

pub use super::{ArmAuthKind as ArmAuth, Secret, url_is_loopback};

/// Default ARM endpoint (public cloud).
pub const DEFAULT_ARM_ENDPOINT: &str = "https://management.azure.com";
/// Default Service Health name of Azure Data Share (compared case- and space-insensitively).
pub const DEFAULT_SERVICE_HEALTH_NAME: &str = "Azure Data Share";

// ---------------------------------------------------------------------------------------------
// Errors

/// One problem found in a DR config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// File name (or the `source_name` given to [`DrConfig::from_toml_str`]).
    pub source: String,
    /// Dotted key path, e.g. `pairs[1].stores.overrides[0].secondary`; empty for syntax errors
    /// that do not belong to a key.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// What is wrong, lower-case.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "config error at {}:{}:{}",
            self.source, self.line, self.column
        )?;
        if !self.path.is_empty() {
            write!(f, " ({})", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a DR config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DrConfigError {
    /// The file could not be read.
    #[error("cannot read DR config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is invalid; one entry per problem, in file order.
    #[error("{}", render_issues(issues))]
    Invalid {
        source_name: String,
        issues: Vec<ConfigIssue>,
    },
}

fn render_issues(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl DrConfigError {
    /// The problems found (empty for a read error).
    pub fn issues(&self) -> &[ConfigIssue] {
        match self {
            DrConfigError::Read { .. } => &[],
            DrConfigError::Invalid { issues, .. } => issues,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small value types

/// Which side of sharing this deployment automates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Provider: `[[pairs]]` of primary/secondary Data Share accounts.
    Provider,
    /// Consumer: `[[subscriptions]]` to re-create on a secondary consumer account.
    Consumer,
}

macro_rules! keyword_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// All accepted spellings, in schema order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            /// The config spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "expected one of {}, got {:?}",
                        Self::NAMES.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "),
                        other
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

keyword_enum!(
    /// When consumers of a primary share get an invitation on the secondary share.
    InvitationPolicy {
        /// Invite as soon as the secondary share exists (consumer holds an idle subscription).
        Now = "now",
        /// Invite only during a failover.
        AtFailover = "at-failover",
    }
);

keyword_enum!(
    /// Whether an alert-started failover runs on its own or waits for a person.
    FailoverPolicy {
        /// Run all stages without approval.
        Auto = "auto",
        /// Stop at `await-approval` until someone approves.
        Approve = "approve",
    }
);

keyword_enum!(
    /// What happens when a run waiting for approval reaches `approval_timeout_minutes`.
    ApprovalTimeoutAction {
        /// End the run: `failed`, reason `approval-expired` (default).
        Fail = "fail",
        /// Continue as approved (recorded as approved by timeout) — only for runs that wait
        /// because of the pair's `failover = "approve"` policy, never for runs an `[alerts]`
        /// rule, a plausibility check or a tool fault routed to approval.
        Proceed = "proceed",
    }
);

/// The approval deadline of a pair (`[defaults]` or per pair).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApprovalDeadline {
    /// `approval_timeout_minutes` (fractional minutes allowed, e.g. `0.1` = 6 s for tests).
    pub timeout: Duration,
    /// `on_approval_timeout`.
    pub on_timeout: ApprovalTimeoutAction,
}

impl Default for ApprovalDeadline {
    fn default() -> Self {
        ApprovalDeadline {
            timeout: Duration::from_secs(60 * 60),
            on_timeout: ApprovalTimeoutAction::Fail,
        }
    }
}

keyword_enum!(
    /// What replication does with secondary items that have no primary counterpart.
    PrunePolicy {
        /// Report them as findings; never delete (default).
        Report = "report",
        /// Delete them (also `--prune` on the CLI).
        Delete = "delete",
    }
);

keyword_enum!(
    /// What an ambiguous alert does (`[alerts].on_degraded` and friends).
    AlertEscalation {
        /// Start a failover run that waits for approval.
        Approve = "approve",
        /// Record only, start nothing.
        Ignore = "ignore",
    }
);

keyword_enum!(
    /// The store families a dataset kind lives in (`stores.defaults.<kind>`).
    StoreKind {
        /// Storage accounts: Blob, BlobFolder, Container, AdlsGen2File/Folder/FileSystem.
        Storage = "storage",
        /// SQL servers: SqlDBTable, SqlDWTable.
        Sql = "sql",
        /// Synapse workspaces: SynapseWorkspaceSqlPoolTable.
        Synapse = "synapse",
        /// Kusto clusters: KustoCluster, KustoDatabase, KustoTable.
        Kusto = "kusto",
    }
);

impl StoreKind {
    /// The store family of a Data Share dataset `kind` (as in the 2021-08-01 spec); `None` for
    /// the retired ADLS Gen1 kinds and unknown kinds.
    pub fn for_dataset_kind(kind: &str) -> Option<StoreKind> {
        let k = kind.to_ascii_lowercase();
        match k.as_str() {
            "blob" | "blobfolder" | "container" | "adlsgen2file" | "adlsgen2folder"
            | "adlsgen2filesystem" => Some(StoreKind::Storage),
            "sqldbtable" | "sqldwtable" => Some(StoreKind::Sql),
            "synapseworkspacesqlpooltable" => Some(StoreKind::Synapse),
            "kustocluster" | "kustodatabase" | "kustotable" => Some(StoreKind::Kusto),
            _ => None,
        }
    }
}

/// A consumer an invitation is addressed to.
#[derive(Debug, Clone)]
pub enum ConsumerTarget {
    /// `targetEmail`; compared case-insensitively.
    Email(String),
    /// `targetActiveDirectoryId` + `targetObjectId` (lower-case GUIDs).
    Aad {
        tenant_id: String,
        object_id: String,
    },
}

impl PartialEq for ConsumerTarget {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ConsumerTarget::Email(a), ConsumerTarget::Email(b)) => a.eq_ignore_ascii_case(b),
            (
                ConsumerTarget::Aad {
                    tenant_id: t1,
                    object_id: o1,
                },
                ConsumerTarget::Aad {
                    tenant_id: t2,
                    object_id: o2,
                },
            ) => t1.eq_ignore_ascii_case(t2) && o1.eq_ignore_ascii_case(o2),
            _ => false,
        }
    }
}
impl Eq for ConsumerTarget {}

impl std::hash::Hash for ConsumerTarget {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            ConsumerTarget::Email(e) => {
                0u8.hash(state);
                e.to_ascii_lowercase().hash(state);
            }
            ConsumerTarget::Aad {
                tenant_id,
                object_id,
            } => {
                1u8.hash(state);
                tenant_id.to_ascii_lowercase().hash(state);
                object_id.to_ascii_lowercase().hash(state);
            }
        }
    }
}

fn parse_guid(s: &str) -> Option<String> {
    (s.len() == 36)
        .then(|| uuid::Uuid::try_parse(s).ok())
        .flatten()
        .map(|u| u.hyphenated().to_string())
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && s.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && s.chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | ',' | ';' | '"' | '(' | ')'))
}

impl FromStr for ConsumerTarget {
    type Err = String;
    /// `alice@contoso.com` or `tenant:<tenant guid>/object:<object guid>`.
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("tenant:") {
            let Some((tid, oid)) = rest.split_once("/object:") else {
                return Err(format!(
                    "expected \"tenant:<tenant id>/object:<object id>\", got {s:?}"
                ));
            };
            let tenant_id = parse_guid(tid)
                .ok_or_else(|| format!("tenant id {tid:?} in {s:?} is not a GUID"))?;
            let object_id = parse_guid(oid)
                .ok_or_else(|| format!("object id {oid:?} in {s:?} is not a GUID"))?;
            return Ok(ConsumerTarget::Aad {
                tenant_id,
                object_id,
            });
        }
        if looks_like_email(s) {
            Ok(ConsumerTarget::Email(s.to_owned()))
        } else {
            Err(format!(
                "expected an e-mail address or \"tenant:<tenant id>/object:<object id>\", got {s:?}"
            ))
        }
    }
}

impl fmt::Display for ConsumerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsumerTarget::Email(e) => f.write_str(e),
            ConsumerTarget::Aad {
                tenant_id,
                object_id,
            } => write!(f, "tenant:{tenant_id}/object:{object_id}"),
        }
    }
}

/// Region normalising and validation live in [`regions`] (re-exported here, where callers have
/// always found `normalize_region`).
pub use regions::{RegionCheck, check_region, find_region, normalize_region, region_warning};

/// The transport rule for ARM: `https` everywhere; plain `http`, `static-token` and `none` only
/// for a loopback endpoint (the simulator). Call it again after an env override
/// (`ARM_ENDPOINT`, `ARM_AUTH`).
pub fn check_arm_transport(endpoint: &Url, auth: ArmAuth) -> Result<(), String> {
    let loopback = url_is_loopback(endpoint);
    match endpoint.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "plain http is only allowed for a loopback endpoint, got {endpoint}; use https"
            ));
        }
        other => return Err(format!("expected an http(s) URL, got scheme {other:?}")),
    }
    if matches!(auth, ArmAuth::StaticToken | ArmAuth::None) && !loopback {
        return Err(format!(
            "auth \"{}\" is only allowed with a loopback ARM endpoint (the simulator), \
             but the endpoint is {endpoint}",
            auth.as_str()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sections

/// `[arm]`.
#[derive(Debug, Clone)]
pub struct ArmSettings {
    /// ARM base URL (`https://management.azure.com`).
    pub endpoint: Url,
    pub auth: ArmAuth,
    /// Bearer token for `static-token` (loopback only); `Some` exactly when auth is static-token.
    pub token: Option<Secret>,
    /// In-flight ARM calls.
    pub max_concurrency: usize,
    /// Overall per-call deadline including retries.
    pub deadline: Duration,
}

impl Default for ArmSettings {
    fn default() -> Self {
        ArmSettings {
            endpoint: Url::parse(DEFAULT_ARM_ENDPOINT).unwrap_or_else(|_| unreachable_url()),
            auth: ArmAuth::ManagedIdentity,
            token: None,
            max_concurrency: 16,
            deadline: Duration::from_secs(120),
        }
    }
}

// The constant above always parses; this keeps `unwrap`/`expect` out of the code path.
fn unreachable_url() -> Url {
    Url::parse("https://management.azure.com/").unwrap_or_else(|_| unreachable_url())
}

/// `[defaults]`: policies applied to every pair unless the pair overrides them.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub invitations: InvitationPolicy,
    pub failover: FailoverPolicy,
    pub prune: PrunePolicy,
    /// Readiness: invitations / share subscriptions expiring within this are findings.
    pub expiry_horizon: Duration,
    /// Readiness: a last successful drill older than this is a finding.
    pub drill_max_age: Duration,
    /// Readiness: a last snapshot older than `rpo_factor × schedule interval` is a finding.
    pub rpo_factor: f64,
    /// `approval_timeout_minutes` (default 60) and `on_approval_timeout` (default `fail`).
    pub approval: ApprovalDeadline,
}

const DAY: u64 = 86_400;

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            invitations: InvitationPolicy::Now,
            failover: FailoverPolicy::Approve,
            prune: PrunePolicy::Report,
            expiry_horizon: Duration::from_secs(14 * DAY),
            drill_max_age: Duration::from_secs(90 * DAY),
            rpo_factor: 2.0,
            approval: ApprovalDeadline::default(),
        }
    }
}

/// Default of `[alerts].max_event_age_hours`.
pub const DEFAULT_MAX_EVENT_AGE_HOURS: u64 = 24;

/// `[alerts]`: which Azure Monitor alerts may start runs, and how ambiguous ones are treated.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    /// Lower-cased ARM ids without trailing `/`: subscriptions (`/subscriptions/<id>`), alert
    /// rule ids, action group ids. An empty list refuses every actionable alert.
    pub allowed_sources: Vec<String>,
    /// Service Health `ServiceName` of Data Share (default `Azure Data Share`).
    pub service_name: String,
    /// Resource Health `Degraded` on a primary account (default: run awaiting approval).
    pub on_degraded: AlertEscalation,
    /// Service Health incident that hits the secondary region too, or `Global`.
    pub on_both_regions: AlertEscalation,
    /// Resource Health `Unavailable` with cause `UserInitiated` (default: ignore).
    pub on_user_initiated: AlertEscalation,
    /// Events older than this (by event time) start nothing (`max_event_age_hours`, default
    /// 24); `None` = no limit (only when set explicitly to 0).
    pub max_event_age: Option<Duration>,
    /// Alerts must carry a valid secure-webhook token (`require_authenticated`, default true).
    pub require_authenticated: bool,
    /// Who may send alerts: tenant, audience, caller app ids, JWKS URL.
    pub auth: crate::failover::alert_auth::AlertAuth,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            allowed_sources: Vec::new(),
            service_name: DEFAULT_SERVICE_HEALTH_NAME.to_owned(),
            on_degraded: AlertEscalation::Approve,
            on_both_regions: AlertEscalation::Approve,
            on_user_initiated: AlertEscalation::Ignore,
            max_event_age: Some(Duration::from_secs(DEFAULT_MAX_EVENT_AGE_HOURS * 3600)),
            require_authenticated: true,
            auth: crate::failover::alert_auth::AlertAuth::default(),
        }
    }
}

impl AlertSettings {
    /// Whether `id` (a subscription id, `/subscriptions/<id>`, rule id or action group id) is on
    /// the allow-list; case-insensitive, trailing `/` ignored.
    pub fn allows(&self, id: &str) -> bool {
        let key = normalize_source(id);
        !key.is_empty() && self.allowed_sources.contains(&key)
    }
}

/// Lower-case, trailing `/` dropped; a bare GUID becomes `/subscriptions/<guid>`.
fn normalize_source(id: &str) -> String {
    let t = id.trim().trim_end_matches('/').to_ascii_lowercase();
    if parse_guid(&t).is_some() {
        format!("/subscriptions/{t}")
    } else {
        t
    }
}

/// Which primary shares a pair replicates (`shares = ["*"]`, names or globs).
#[derive(Debug, Clone)]
pub struct ShareSelection {
    patterns: Vec<String>,
    set: GlobSet,
}

impl ShareSelection {
    /// Every share.
    pub fn all() -> Self {
        ShareSelection::from_patterns(&["*".to_owned()]).unwrap_or_else(|_| ShareSelection {
            patterns: vec!["*".to_owned()],
            set: GlobSet::empty(),
        })
    }

    /// Compiles share-name globs (case-insensitive, `*`, `?`, `[a-z]`, `{a,b}`).
    pub fn from_patterns(patterns: &[String]) -> Result<Self, String> {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            let glob = GlobBuilder::new(p)
                .case_insensitive(true)
                .literal_separator(false)
                .build()
                .map_err(|e| format!("invalid share glob {p:?}: {}", e.kind()))?;
            b.add(glob);
        }
        let set = b.build().map_err(|e| format!("invalid share globs: {e}"))?;
        Ok(ShareSelection {
            patterns: patterns.to_vec(),
            set,
        })
    }

    /// Whether the share named `share_name` is selected.
    pub fn selects(&self, share_name: &str) -> bool {
        self.patterns.iter().any(|p| p == "*") || self.set.is_match(share_name)
    }

    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl PartialEq for ShareSelection {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

/// `[[pairs.consumers]]`: a per-consumer invitation policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerOverride {
    pub target: ConsumerTarget,
    pub invitations: InvitationPolicy,
}

/// `[pairs.create_secondary]`: create the secondary account when it is missing (Data Share
/// accounts always get a system-assigned identity).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSecondary {
    /// ARM location, equal to the pair's secondary region.
    pub location: String,
    pub tags: BTreeMap<String, String>,
}

/// One explicit `primary → secondary` store override.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreOverride {
    pub primary: ResourceId,
    pub secondary: ResourceId,
}

/// Why a store has no secondary counterpart (a readiness/replication finding).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnmappedStore {
    /// No override covers the id and no `replace` rule of its kind changes it.
    #[error("no store mapping rule for {kind} store {id}")]
    NoRule { kind: StoreKind, id: String },
    /// The rules map the id to itself: the secondary would use the primary-region store.
    #[error(
        "{kind} store {id} maps to itself; a secondary dataset must not point at a primary-region store"
    )]
    MapsToItself { kind: StoreKind, id: String },
    /// The rewritten id is not a valid ARM id.
    #[error("{kind} store {id} maps to {mapped:?}, which is not a valid ARM id")]
    InvalidResult {
        kind: StoreKind,
        id: String,
        mapped: String,
    },
}

/// `stores`: primary store id → secondary store id, per-kind `replace` rules plus overrides.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoreMapping {
    /// `stores.defaults.<kind>.replace`: `(from, to)` substring rewrites, applied in order,
    /// matched case-insensitively.
    pub replace: BTreeMap<StoreKind, Vec<(String, String)>>,
    /// `stores.overrides`: exact ids (or id prefixes: an override of a server also maps its
    /// databases); these win over `replace`.
    pub overrides: Vec<StoreOverride>,
}

/// Replaces every case-insensitive (ASCII) occurrence of `from` in `text` by `to`.
fn replace_ignore_case(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        return text.to_owned();
    }
    let hay = text.to_ascii_lowercase();
    let needle = from.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in hay.match_indices(&needle) {
        out.push_str(&text[last..i]);
        out.push_str(to);
        last = i + needle.len();
    }
    out.push_str(&text[last..]);
    out
}

impl StoreMapping {
    /// The secondary store for `primary_store_id`, or why there is none.
    ///
    /// Order: the longest override whose `primary` equals the id or is a segment prefix of it
    /// (case-insensitive); otherwise the kind's `replace` rules. A result equal to the input is
    /// refused ([`UnmappedStore::MapsToItself`]) — never silently a primary-region store.
    pub fn resolve(
        &self,
        kind: StoreKind,
        primary_store_id: &ResourceId,
    ) -> Result<ResourceId, UnmappedStore> {
        let id_text = primary_store_id.as_str();
        let best = self
            .overrides
            .iter()
            .filter(|o| primary_store_id.is_within(&o.primary))
            .max_by_key(|o| o.primary.as_str().len());
        let mapped_text = if let Some(o) = best {
            let suffix = &id_text[o.primary.as_str().len().min(id_text.len())..];
            format!("{}{suffix}", o.secondary.as_str())
        } else {
            let rules = self.replace.get(&kind).map(Vec::as_slice).unwrap_or(&[]);
            let mut text = id_text.to_owned();
            for (from, to) in rules {
                text = replace_ignore_case(&text, from, to);
            }
            if text.eq_ignore_ascii_case(id_text) {
                return Err(if rules.is_empty() {
                    UnmappedStore::NoRule {
                        kind,
                        id: id_text.to_owned(),
                    }
                } else {
                    UnmappedStore::MapsToItself {
                        kind,
                        id: id_text.to_owned(),
                    }
                });
            }
            text
        };
        let mapped = ResourceId::parse(&mapped_text).map_err(|_| UnmappedStore::InvalidResult {
            kind,
            id: id_text.to_owned(),
            mapped: mapped_text.clone(),
        })?;
        if mapped == *primary_store_id {
            return Err(UnmappedStore::MapsToItself {
                kind,
                id: id_text.to_owned(),
            });
        }
        Ok(mapped)
    }

    /// The secondary store for `primary_store_id`; `None` when unmapped (see [`Self::resolve`]).
    pub fn map_store(&self, kind: StoreKind, primary_store_id: &ResourceId) -> Option<ResourceId> {
        self.resolve(kind, primary_store_id).ok()
    }
}

/// `[[pairs]]`: one primary/secondary Data Share account pair, policies already resolved.
#[derive(Debug, Clone)]
pub struct Pair {
    /// `[a-z0-9-]{1,40}`, unique; used in routes and blob names.
    pub name: String,
    pub primary: AccountId,
    pub secondary: AccountId,
    /// Normalised ARM location (`westeurope`).
    pub primary_region: String,
    pub secondary_region: String,
    pub shares: ShareSelection,
    /// Effective pair-level invitation policy (pair value, else `[defaults]`).
    pub invitations: InvitationPolicy,
    pub failover: FailoverPolicy,
    /// Effective approval deadline (pair values, else `[defaults]`).
    pub approval: ApprovalDeadline,
    pub prune: PrunePolicy,
    pub drill_recipients: Vec<ConsumerTarget>,
    pub consumers: Vec<ConsumerOverride>,
    pub create_secondary: Option<CreateSecondary>,
    pub stores: StoreMapping,
}

impl Pair {
    /// Whether the primary share `share_name` is replicated by this pair.
    pub fn selects(&self, share_name: &str) -> bool {
        self.shares.selects(share_name)
    }

    /// The invitation policy for one consumer: its `[[pairs.consumers]]` entry, else the pair's.
    pub fn invitation_policy_for(&self, target: &ConsumerTarget) -> InvitationPolicy {
        self.consumers
            .iter()
            .find(|c| c.target == *target)
            .map_or(self.invitations, |c| c.invitations)
    }

    /// See [`StoreMapping::map_store`].
    pub fn map_store(&self, kind: StoreKind, primary_store_id: &ResourceId) -> Option<ResourceId> {
        self.stores.map_store(kind, primary_store_id)
    }
}

/// How the consumer-side trigger on the secondary share subscription is scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerSchedule {
    /// Copy the provider's synchronization setting on the secondary share (default).
    Provider,
    /// Create no trigger.
    None,
}

/// `[[subscriptions]]` (consumer role): a share subscription to re-create on the secondary.
#[derive(Debug, Clone)]
pub struct ConsumerSubscription {
    /// `[a-z0-9-]{1,40}`, unique; plays the part of the pair name in runs.
    pub name: String,
    /// The consumer's share subscription on the provider's primary share.
    pub primary_share_subscription: ShareSubscriptionId,
    /// The consumer account in the secondary region that accepts the failover invitation.
    pub secondary_account: AccountId,
    pub primary_region: String,
    pub secondary_region: String,
    /// Provider share whose invitation to accept; `None` = the primary subscription's share name.
    pub provider_share: Option<String>,
    /// Sink mapping: the consumer's primary-region sinks → secondary-region sinks.
    pub stores: StoreMapping,
    pub start_first_sync: bool,
    pub schedule: ConsumerSchedule,
    pub failover: FailoverPolicy,
    /// Effective approval deadline (subscription values, else `[defaults]`).
    pub approval: ApprovalDeadline,
    /// When the provider invites this consumer's secondary account: `now` (default; preflight
    /// requires the invitation or an existing share subscription) or `at-failover` (the
    /// `accept-invitations` stage waits for it).
    pub invitations: InvitationPolicy,
}

impl ConsumerSubscription {
    /// The consumer account that holds the primary share subscription.
    pub fn primary_account(&self) -> AccountId {
        self.primary_share_subscription.account()
    }

    /// See [`StoreMapping::map_store`].
    pub fn map_store(&self, kind: StoreKind, primary_sink_id: &ResourceId) -> Option<ResourceId> {
        self.stores.map_store(kind, primary_sink_id)
    }
}

/// The whole DR config.
#[derive(Debug, Clone)]
pub struct DrConfig {
    /// Where it was loaded from (for messages).
    pub source: String,
    pub role: Role,
    pub arm: ArmSettings,
    pub defaults: Defaults,
    pub alerts: AlertSettings,
    /// Provider role: at least one; consumer role: empty.
    pub pairs: Vec<Pair>,
    /// Consumer role: at least one; provider role: empty.
    pub subscriptions: Vec<ConsumerSubscription>,
}

impl DrConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<DrConfig, DrConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DrConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `source_name` is used in messages (`dr.toml:12:9`).
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<DrConfig, DrConfigError> {
        let mut ctx = Ctx::new(source_name, text);
        let parsed = toml::de::DeTable::parse(text);
        let config = match &parsed {
            Ok(doc) => read_document(&mut ctx, doc),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let message = e.message().trim().replace('\n', "; ");
                ctx.issue("", &span, format!("invalid TOML: {message}"));
                None
            }
        };
        match config {
            Some(mut c) if ctx.issues.is_empty() => {
                c.source = source_name.to_owned();
                for w in c.warnings() {
                    tracing::warn!(event = "config.warning", source = source_name, "{w}");
                }
                Ok(c)
            }
            _ => {
                let mut issues = ctx.issues;
                if issues.is_empty() {
                    // Defensive: a reader returned nothing without saying why.
                    issues.push(ConfigIssue {
                        source: source_name.to_owned(),
                        path: String::new(),
                        line: 1,
                        column: 1,
                        message: "invalid DR config".to_owned(),
                    });
                }
                issues.sort_by_key(|i| (i.line, i.column));
                Err(DrConfigError::Invalid {
                    source_name: source_name.to_owned(),
                    issues,
                })
            }
        }
    }

    /// Load-time warnings (the config is valid, but something deserves a look): a region not
    /// in the shipped list, or one where Data Share is not offered. `check` prints them;
    /// loading logs them.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, p) in self.pairs.iter().enumerate() {
            let mut push = |key: &str, region: &str| {
                if let Some(w) = region_warning(&format!("pairs[{i}].{key}"), region) {
                    out.push(w);
                }
            };
            push("primary_region", &p.primary_region);
            push("secondary_region", &p.secondary_region);
            if let Some(c) = &p.create_secondary {
                push("create_secondary.location", &c.location);
            }
        }
        for (i, s) in self.subscriptions.iter().enumerate() {
            for (key, region) in [
                ("primary_region", &s.primary_region),
                ("secondary_region", &s.secondary_region),
            ] {
                if let Some(w) = region_warning(&format!("subscriptions[{i}].{key}"), region) {
                    out.push(w);
                }
            }
        }
        out
    }

    /// The pair named `name`.
    pub fn pair(&self, name: &str) -> Option<&Pair> {
        self.pairs.iter().find(|p| p.name == name)
    }

    /// The consumer-role subscription named `name`.
    pub fn subscription(&self, name: &str) -> Option<&ConsumerSubscription> {
        self.subscriptions.iter().find(|s| s.name == name)
    }

    /// The approval deadline of the pair or subscription `name` (`[defaults]` when unknown).
    pub fn approval_deadline(&self, name: &str) -> ApprovalDeadline {
        self.pair(name)
            .map(|p| p.approval)
            .or_else(|| self.subscription(name).map(|s| s.approval))
            .unwrap_or(self.defaults.approval)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

type DocTable<'i> = toml::Spanned<toml::de::DeTable<'i>>;

fn keyword<T: FromStr<Err = String>>(found: Option<(String, Loc)>, ctx: &mut Ctx<'_>) -> Option<T> {
    let (text, loc) = found?;
    match text.parse::<T>() {
        Ok(v) => Some(v),
        Err(msg) => {
            ctx.issue(&loc.path, &loc.span, msg);
            None
        }
    }
}

fn id_message(what: &str, got: &str, err: &IdError) -> String {
    format!("expected an ARM id of {what}, got {got:?} ({err})")
}

fn account_id(found: Option<(String, Loc)>, ctx: &mut Ctx<'_>) -> Option<(AccountId, Loc)> {
    let (text, loc) = found?;
    match AccountId::parse(&text) {
        Ok(id) => Some((id, loc)),
        Err(e) => {
            ctx.issue(
                &loc.path,
                &loc.span,
                id_message("a Microsoft.DataShare account", &text, &e),
            );
            None
        }
    }
}

fn resource_id(found: Option<(String, Loc)>, ctx: &mut Ctx<'_>) -> Option<(ResourceId, Loc)> {
    let (text, loc) = found?;
    match ResourceId::parse(&text) {
        Ok(id) if id.provider_namespace().is_some() => Some((id, loc)),
        Ok(_) => {
            ctx.issue(
                &loc.path,
                &loc.span,
                format!("expected the ARM id of a resource (…/providers/<namespace>/<type>/<name>), got {text:?}"),
            );
            None
        }
        Err(e) => {
            ctx.issue(&loc.path, &loc.span, id_message("a resource", &text, &e));
            None
        }
    }
}

fn region(found: Option<(String, Loc)>, ctx: &mut Ctx<'_>) -> Option<(String, Loc)> {
    let (text, loc) = found?;
    let r = normalize_region(&text);
    if !r.is_empty() && r.len() <= 40 && r.chars().all(|c| c.is_ascii_alphanumeric()) {
        // A near miss of a known region is a typo: left as is, alerts for the real region
        // would be ignored as another region's. Unlisted names only warn (`DrConfig::warnings`).
        if let RegionCheck::Typo { suggestion } = check_region(&r) {
            ctx.issue(
                &loc.path,
                &loc.span,
                format!(
                    "{text:?} is not an Azure region; did you mean \"{suggestion}\"? (region \
                     names as `az account list-locations -o table` prints them, or display names \
                     such as \"West Europe\")"
                ),
            );
            return None;
        }
        Some((r, loc))
    } else {
        ctx.issue(
            &loc.path,
            &loc.span,
            format!("expected an Azure region such as \"westeurope\", got {text:?}"),
        );
        None
    }
}

fn name(found: Option<(String, Loc)>, ctx: &mut Ctx<'_>) -> Option<(String, Loc)> {
    let (text, loc) = found?;
    let ok = (1..=40).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Some((text, loc))
    } else {
        ctx.issue(
            &loc.path,
            &loc.span,
            format!("expected a name of 1-40 characters a-z, 0-9 or '-', got {text:?}"),
        );
        None
    }
}

fn target(ctx: &mut Ctx<'_>, text: &str, loc: &Loc) -> Option<ConsumerTarget> {
    match text.parse::<ConsumerTarget>() {
        Ok(t) => Some(t),
        Err(msg) => {
            ctx.issue(&loc.path, &loc.span, msg);
            None
        }
    }
}

fn days(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, key: &str, default: Duration) -> Duration {
    t.opt_int(ctx, key, 1, 3650).map_or(default, |(n, _)| {
        Duration::from_secs(n.unsigned_abs() * DAY)
    })
}

fn read_document(ctx: &mut Ctx<'_>, doc: &DocTable<'_>) -> Option<DrConfig> {
    let root = Table::root(
        Loc {
            path: String::new(),
            span: 0..0,
        },
        doc.get_ref(),
    );
    root.check_keys(
        ctx,
        &[
            "role",
            "arm",
            "defaults",
            "alerts",
            "pairs",
            "subscriptions",
        ],
    );
    let role = match root.opt_str(ctx, "role") {
        None => Some(Role::Provider),
        Some((r, _)) if r == "provider" => Some(Role::Provider),
        Some((r, _)) if r == "consumer" => Some(Role::Consumer),
        Some((r, loc)) => {
            ctx.issue(
                &loc.path,
                &loc.span,
                format!("expected \"provider\" or \"consumer\", got {r:?}"),
            );
            None
        }
    };
    let arm = read_arm(ctx, &root);
    let defaults = read_defaults(ctx, &root);
    let alerts = read_alerts(ctx, &root);

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut check_unique = |ctx: &mut Ctx<'_>, n: &str, loc: &Loc| {
        let (line, _) = ctx.line_col(loc.span.start);
        if let Some(first) = seen.insert(n.to_owned(), line) {
            ctx.issue(
                &loc.path,
                &loc.span,
                format!("duplicate name {n:?} (first used on line {first})"),
            );
        }
    };

    let pair_tables = root.opt_tables(ctx, "pairs", PAIR_KEYS);
    let mut pairs = Vec::new();
    for t in &pair_tables {
        if let Some((p, name_loc)) = read_pair(ctx, t, &defaults) {
            check_unique(ctx, &p.name, &name_loc);
            pairs.push(p);
        }
    }
    let sub_tables = root.opt_tables(ctx, "subscriptions", SUBSCRIPTION_KEYS);
    let mut subscriptions = Vec::new();
    for t in &sub_tables {
        if let Some((s, name_loc)) = read_subscription(ctx, t, &defaults) {
            check_unique(ctx, &s.name, &name_loc);
            subscriptions.push(s);
        }
    }

    let role = role?;
    let doc_start = 0..0;
    match role {
        Role::Provider => {
            if pair_tables.is_empty() {
                ctx.issue(
                    "pairs",
                    &doc_start,
                    "a provider config needs at least one [[pairs]] entry",
                );
            }
            if let Some((_, loc)) = root.get("subscriptions") {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    "[[subscriptions]] is for role = \"consumer\"; a provider config uses [[pairs]]",
                );
            }
        }
        Role::Consumer => {
            if sub_tables.is_empty() {
                ctx.issue(
                    "subscriptions",
                    &doc_start,
                    "a consumer config needs at least one [[subscriptions]] entry",
                );
            }
            if let Some((_, loc)) = root.get("pairs") {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    "[[pairs]] is for role = \"provider\"; a consumer config uses [[subscriptions]]",
                );
            }
        }
    }

    Some(DrConfig {
        source: String::new(),
        role,
        arm: arm?,
        defaults,
        alerts,
        pairs,
        subscriptions,
    })
}

fn read_arm(ctx: &mut Ctx<'_>, root: &Table<'_, '_>) -> Option<ArmSettings> {
    let mut arm = ArmSettings::default();
    let Some(t) = root.opt_table(
        ctx,
        "arm",
        &[
            "endpoint",
            "auth",
            "token",
            "max_concurrency",
            "deadline_secs",
        ],
    ) else {
        return Some(arm);
    };
    let mut ok = true;
    let endpoint_loc = match t.opt_str(ctx, "endpoint") {
        Some((text, loc)) => {
            match Url::parse(&text) {
                Ok(u) if u.host().is_some() => arm.endpoint = u,
                _ => {
                    ctx.issue(
                        &loc.path,
                        &loc.span,
                        format!("expected an absolute URL, got {text:?}"),
                    );
                    ok = false;
                }
            }
            Some(loc)
        }
        None => None,
    };
    let auth_found = t.opt_str(ctx, "auth");
    let auth_loc = auth_found.as_ref().map(|(_, l)| l.clone());
    if let Some((word, loc)) = auth_found {
        match ArmAuth::parse(&word) {
            Some(a) => arm.auth = a,
            None => {
                let names: Vec<String> = ArmAuth::ALL
                    .iter()
                    .map(|(n, _)| format!("\"{n}\""))
                    .collect();
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("expected one of {}, got {word:?}", names.join(", ")),
                );
                ok = false;
            }
        }
    }
    if let Some((token, loc)) = t.opt_str(ctx, "token") {
        if arm.auth != ArmAuth::StaticToken {
            ctx.issue(
                &loc.path,
                &loc.span,
                format!(
                    "token is only used with auth = \"static-token\" (auth is \"{}\")",
                    arm.auth.as_str()
                ),
            );
            ok = false;
        } else if token.is_empty() {
            ctx.issue(&loc.path, &loc.span, "token must not be empty");
            ok = false;
        } else {
            arm.token = Some(Secret::new(token));
        }
    } else if arm.auth == ArmAuth::StaticToken && ok {
        let loc = t.loc.child("token", t.loc.span.clone());
        ctx.issue(
            &loc.path,
            &loc.span,
            "auth = \"static-token\" needs a token",
        );
        ok = false;
    }
    if let Some((n, _)) = t.opt_int(ctx, "max_concurrency", 1, 1024) {
        arm.max_concurrency = usize::try_from(n).unwrap_or(16);
    }
    if let Some((n, _)) = t.opt_int(ctx, "deadline_secs", 1, 86_400) {
        arm.deadline = Duration::from_secs(n.unsigned_abs());
    }
    if ok && let Err(msg) = check_arm_transport(&arm.endpoint, arm.auth) {
        let loc = endpoint_loc.or(auth_loc).unwrap_or_else(|| t.loc.clone());
        ctx.issue(&loc.path, &loc.span, msg);
        ok = false;
    }
    ok.then_some(arm)
}

fn read_defaults(ctx: &mut Ctx<'_>, root: &Table<'_, '_>) -> Defaults {
    let mut d = Defaults::default();
    let Some(t) = root.opt_table(
        ctx,
        "defaults",
        &[
            "invitations",
            "failover",
            "prune",
            "expiry_horizon_days",
            "drill_max_age_days",
            "rpo_factor",
            "approval_timeout_minutes",
            "on_approval_timeout",
        ],
    ) else {
        return d;
    };
    if let Some(v) = keyword(t.opt_str(ctx, "invitations"), ctx) {
        d.invitations = v;
    }
    if let Some(v) = keyword(t.opt_str(ctx, "failover"), ctx) {
        d.failover = v;
    }
    if let Some(v) = keyword(t.opt_str(ctx, "prune"), ctx) {
        d.prune = v;
    }
    d.expiry_horizon = days(ctx, &t, "expiry_horizon_days", d.expiry_horizon);
    d.drill_max_age = days(ctx, &t, "drill_max_age_days", d.drill_max_age);
    if let Some((f, _)) = t.opt_float(ctx, "rpo_factor", 1.0, 100.0) {
        d.rpo_factor = f;
    }
    d.approval = read_approval(ctx, &t, d.approval);
    d
}

/// The longest approval deadline accepted: a week.
const MAX_APPROVAL_MINUTES: f64 = 7.0 * 24.0 * 60.0;

/// `approval_timeout_minutes` (a number of minutes > 0, fractions allowed) and
/// `on_approval_timeout` of a table, over `inherited`.
fn read_approval(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    inherited: ApprovalDeadline,
) -> ApprovalDeadline {
    let mut a = inherited;
    if let Some((m, loc)) = t.opt_float(ctx, "approval_timeout_minutes", 0.0, MAX_APPROVAL_MINUTES)
    {
        if m * 60.0 < 1.0 {
            ctx.issue(
                &loc.path,
                &loc.span,
                "approval_timeout_minutes must be at least one second (0.0167); use e.g. 60 for an hour",
            );
        } else {
            a.timeout = Duration::from_secs_f64(m * 60.0);
        }
    }
    if let Some(v) = keyword(t.opt_str(ctx, "on_approval_timeout"), ctx) {
        a.on_timeout = v;
    }
    a
}

fn read_alerts(ctx: &mut Ctx<'_>, root: &Table<'_, '_>) -> AlertSettings {
    let mut a = AlertSettings::default();
    let Some(t) = root.opt_table(
        ctx,
        "alerts",
        &[
            "allowed_sources",
            "service_name",
            "on_degraded",
            "on_both_regions",
            "on_user_initiated",
            "max_event_age_hours",
            "require_authenticated",
            "tenant_id",
            "audience",
            "allowed_app_ids",
            "jwks_url",
        ],
    ) else {
        return a;
    };
    for (src, loc) in t.opt_str_array(ctx, "allowed_sources").unwrap_or_default() {
        let key = normalize_source(&src);
        let valid = ResourceId::parse(&key).is_ok_and(|id| {
            id.subscription_id().is_some()
                && (id.pairs().len() == 1 || id.provider_namespace().is_some())
        });
        if !valid {
            ctx.issue(
                &loc.path,
                &loc.span,
                format!(
                    "expected a subscription id (\"/subscriptions/<guid>\" or a GUID), an alert rule id or an action group id, got {src:?}"
                ),
            );
        } else if !a.allowed_sources.contains(&key) {
            a.allowed_sources.push(key);
        }
    }
    if let Some((s, loc)) = t.opt_str(ctx, "service_name") {
        if s.trim().is_empty() {
            ctx.issue(&loc.path, &loc.span, "service_name must not be empty");
        } else {
            a.service_name = s;
        }
    }
    if let Some(v) = keyword(t.opt_str(ctx, "on_degraded"), ctx) {
        a.on_degraded = v;
    }
    if let Some(v) = keyword(t.opt_str(ctx, "on_both_regions"), ctx) {
        a.on_both_regions = v;
    }
    if let Some(v) = keyword(t.opt_str(ctx, "on_user_initiated"), ctx) {
        a.on_user_initiated = v;
    }
    if let Some((h, _)) = t.opt_int(ctx, "max_event_age_hours", 0, 24 * 365) {
        // 0 = no limit (documented; not recommended).
        a.max_event_age = (h > 0).then(|| Duration::from_secs(h.unsigned_abs() * 3600));
    }
    if let Some(b) = t.opt_bool(ctx, "require_authenticated") {
        a.require_authenticated = b;
    }
    if let Some((s, loc)) = t.opt_str(ctx, "tenant_id") {
        match parse_guid(s.trim()) {
            Some(g) => a.auth.tenant_id = Some(g),
            None => ctx.issue(
                &loc.path,
                &loc.span,
                format!("expected the Entra tenant id (a GUID), got {s:?}"),
            ),
        }
    }
    if let Some((s, loc)) = t.opt_str(ctx, "audience") {
        if s.trim().is_empty() {
            ctx.issue(
                &loc.path,
                &loc.span,
                "audience must be the Application ID URI of the alert receiver app registration (e.g. \"api://datashare-dr-alerts\")",
            );
        } else {
            a.auth.audience = Some(s.trim().to_owned());
        }
    }
    if let Some(ids) = t.opt_str_array(ctx, "allowed_app_ids") {
        let mut list = Vec::new();
        for (id, loc) in ids {
            match parse_guid(id.trim()) {
                Some(g) => list.push(g),
                None => ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("expected an application (client) id GUID, got {id:?}"),
                ),
            }
        }
        a.auth.allowed_app_ids = list;
    }
    if let Some((u, loc)) = t.opt_str(ctx, "jwks_url") {
        let parsed = url::Url::parse(&u).ok();
        let scheme_ok = parsed
            .as_ref()
            .is_some_and(|p| p.scheme() == "https" || (p.scheme() == "http" && url_is_loopback(p)));
        if !scheme_ok {
            ctx.issue(
                &loc.path,
                &loc.span,
                format!("jwks_url must be an https URL (plain http only on loopback), got {u:?}"),
            );
        } else {
            a.auth.jwks_url = Some(u);
        }
    }
    // A missing tenant/audience with require_authenticated is not a config error: the config
    // stays loadable (drills, plans, checks), and every alert is answered 401 naming what to set.
    a
}

const PAIR_KEYS: &[&str] = &[
    "name",
    "primary",
    "secondary",
    "primary_region",
    "secondary_region",
    "shares",
    "invitations",
    "failover",
    "approval_timeout_minutes",
    "on_approval_timeout",
    "prune",
    "drill_recipients",
    "create_secondary",
    "consumers",
    "stores",
];

const SUBSCRIPTION_KEYS: &[&str] = &[
    "name",
    "primary_share_subscription",
    "secondary_account",
    "primary_region",
    "secondary_region",
    "provider_share",
    "failover",
    "approval_timeout_minutes",
    "on_approval_timeout",
    "invitations",
    "start_first_sync",
    "schedule",
    "stores",
];

/// Reads primary/secondary regions and checks they differ.
fn read_regions(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> (Option<String>, Option<String>) {
    let r1 = region(t.req_str(ctx, "primary_region"), ctx);
    let r2 = region(t.req_str(ctx, "secondary_region"), ctx);
    if let (Some((a, _)), Some((b, loc))) = (&r1, &r2)
        && a == b
    {
        ctx.issue(
            &loc.path,
            &loc.span,
            format!("secondary_region must differ from primary_region (both are {a:?})"),
        );
    }
    (r1.map(|r| r.0), r2.map(|r| r.0))
}

fn read_pair(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, defaults: &Defaults) -> Option<(Pair, Loc)> {
    let before = ctx.issues.len();
    let name = name(t.req_str(ctx, "name"), ctx);
    let primary = account_id(t.req_str(ctx, "primary"), ctx);
    let secondary = account_id(t.req_str(ctx, "secondary"), ctx);
    if let (Some((p, _)), Some((s, loc))) = (&primary, &secondary)
        && p == s
    {
        ctx.issue(
            &loc.path,
            &loc.span,
            "secondary must be a different account than primary",
        );
    }
    let (r1, r2) = read_regions(ctx, t);

    let shares = match t.opt_str_array(ctx, "shares") {
        None => Some(ShareSelection::all()),
        Some(items) if items.is_empty() => {
            let loc = t.get("shares").map_or_else(|| t.loc.clone(), |(_, l)| l);
            ctx.issue(
                &loc.path,
                &loc.span,
                "an empty list selects no share; omit `shares` (or use [\"*\"]) to select all",
            );
            None
        }
        Some(items) => {
            let mut ok = true;
            for (p, loc) in &items {
                if p.is_empty() {
                    ctx.issue(
                        &loc.path,
                        &loc.span,
                        "a share name or glob must not be empty",
                    );
                    ok = false;
                } else if let Err(msg) = ShareSelection::from_patterns(std::slice::from_ref(p)) {
                    ctx.issue(&loc.path, &loc.span, msg);
                    ok = false;
                }
            }
            let patterns: Vec<String> = items.into_iter().map(|(p, _)| p).collect();
            if ok {
                ShareSelection::from_patterns(&patterns).ok()
            } else {
                None
            }
        }
    };

    let invitations = keyword(t.opt_str(ctx, "invitations"), ctx).unwrap_or(defaults.invitations);
    let failover = keyword(t.opt_str(ctx, "failover"), ctx).unwrap_or(defaults.failover);
    let approval = read_approval(ctx, t, defaults.approval);
    let prune = keyword(t.opt_str(ctx, "prune"), ctx).unwrap_or(defaults.prune);

    let mut drill_recipients: Vec<ConsumerTarget> = Vec::new();
    for (text, loc) in t.opt_str_array(ctx, "drill_recipients").unwrap_or_default() {
        if let Some(tg) = target(ctx, &text, &loc) {
            if drill_recipients.contains(&tg) {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("duplicate drill recipient {text:?}"),
                );
            } else {
                drill_recipients.push(tg);
            }
        }
    }

    let mut consumers: Vec<ConsumerOverride> = Vec::new();
    for c in t.opt_tables(ctx, "consumers", &["target", "invitations"]) {
        let tg = c
            .req_str(ctx, "target")
            .and_then(|(text, loc)| target(ctx, &text, &loc).map(|tg| (tg, loc)));
        let inv = match c.get("invitations") {
            Some(_) => keyword::<InvitationPolicy>(c.opt_str(ctx, "invitations"), ctx),
            None => {
                let loc = c.loc.child("invitations", c.loc.span.clone());
                ctx.issue(&loc.path, &loc.span, "missing required key");
                None
            }
        };
        if let (Some((tg, loc)), Some(inv)) = (tg, inv) {
            if consumers.iter().any(|o| o.target == tg) {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    format!("consumer {tg} is listed twice"),
                );
            } else {
                consumers.push(ConsumerOverride {
                    target: tg,
                    invitations: inv,
                });
            }
        }
    }

    let create_secondary = t
        .opt_table(ctx, "create_secondary", &["location", "tags"])
        .and_then(|c| read_create_secondary(ctx, &c, r2.as_deref()));

    let stores = read_stores(ctx, t);

    if ctx.issues.len() != before {
        return None;
    }
    let (name, name_loc) = name?;
    Some((
        Pair {
            name,
            primary: primary?.0,
            secondary: secondary?.0,
            primary_region: r1?,
            secondary_region: r2?,
            shares: shares?,
            invitations,
            failover,
            approval,
            prune,
            drill_recipients,
            consumers,
            create_secondary,
            stores: stores?,
        },
        name_loc,
    ))
}

fn read_create_secondary(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    secondary_region: Option<&str>,
) -> Option<CreateSecondary> {
    let location = region(t.req_str(ctx, "location"), ctx);
    if let (Some((l, loc)), Some(r2)) = (&location, secondary_region)
        && l != r2
    {
        ctx.issue(
            &loc.path,
            &loc.span,
            format!("location {l:?} must equal the pair's secondary_region {r2:?}"),
        );
    }
    let mut tags = BTreeMap::new();
    if let Some(tt) = t.opt_free_table(ctx, "tags") {
        let entries = tt.entries();
        if entries.len() > 50 {
            ctx.issue(&tt.loc.path, &tt.loc.span, "Azure allows at most 50 tags");
        }
        for (k, v, vloc) in entries {
            if let Some(s) = walk::as_str(ctx, v, &vloc) {
                if k.is_empty() || k.len() > 512 || s.len() > 256 {
                    ctx.issue(
                        &vloc.path,
                        &vloc.span,
                        "tag names are 1-512 characters and values at most 256",
                    );
                } else {
                    tags.insert(k, s);
                }
            }
        }
    }
    Some(CreateSecondary {
        location: location?.0,
        tags,
    })
}

fn read_stores(ctx: &mut Ctx<'_>, parent: &Table<'_, '_>) -> Option<StoreMapping> {
    let mut m = StoreMapping::default();
    let Some(t) = parent.opt_table(ctx, "stores", &["defaults", "overrides"]) else {
        return Some(m);
    };
    let before = ctx.issues.len();
    if let Some(d) = t.opt_table(ctx, "defaults", StoreKind::NAMES) {
        for kind in [
            StoreKind::Storage,
            StoreKind::Sql,
            StoreKind::Synapse,
            StoreKind::Kusto,
        ] {
            let Some(k) = d.opt_table(ctx, kind.as_str(), &["replace"]) else {
                continue;
            };
            let mut rules = Vec::new();
            for (item, loc) in k.opt_array(ctx, "replace").unwrap_or_default() {
                let Some(parts) = walk::as_array(ctx, item, &loc) else {
                    continue;
                };
                let strs: Vec<String> = parts
                    .iter()
                    .filter_map(|(v, l)| walk::as_str(ctx, v, l))
                    .collect();
                if parts.len() != 2 || strs.len() != 2 {
                    ctx.issue(
                        &loc.path,
                        &loc.span,
                        "expected a pair [\"from\", \"to\"] of strings",
                    );
                    continue;
                }
                let (from, to) = (strs[0].clone(), strs[1].clone());
                if from.is_empty() {
                    ctx.issue(
                        &parts[0].1.path,
                        &parts[0].1.span,
                        "the text to replace must not be empty",
                    );
                } else if from.eq_ignore_ascii_case(&to) {
                    ctx.issue(
                        &loc.path,
                        &loc.span,
                        format!("replacing {from:?} by {to:?} changes nothing; the secondary store would be the primary one"),
                    );
                } else if from.matches('/').count() != to.matches('/').count() {
                    ctx.issue(
                        &loc.path,
                        &loc.span,
                        "a rule must not add or remove '/' separators of the id",
                    );
                } else {
                    rules.push((from, to));
                }
            }
            if k.get("replace").is_none() {
                let loc = k.loc.child("replace", k.loc.span.clone());
                ctx.issue(&loc.path, &loc.span, "missing required key");
            }
            m.replace.insert(kind, rules);
        }
    }
    for o in t.opt_tables(ctx, "overrides", &["primary", "secondary"]) {
        let p = resource_id(o.req_str(ctx, "primary"), ctx);
        let s = resource_id(o.req_str(ctx, "secondary"), ctx);
        if let (Some((p, ploc)), Some((s, sloc))) = (p, s) {
            if p == s {
                ctx.issue(
                    &sloc.path,
                    &sloc.span,
                    "secondary equals primary; a secondary dataset must not point at a primary-region store",
                );
            } else if m.overrides.iter().any(|x| x.primary == p) {
                ctx.issue(
                    &ploc.path,
                    &ploc.span,
                    format!("store {p} has more than one override"),
                );
            } else {
                m.overrides.push(StoreOverride {
                    primary: p,
                    secondary: s,
                });
            }
        }
    }
    (ctx.issues.len() == before).then_some(m)
}

fn read_subscription(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    defaults: &Defaults,
) -> Option<(ConsumerSubscription, Loc)> {
    let before = ctx.issues.len();
    let name = name(t.req_str(ctx, "name"), ctx);
    let primary = t
        .req_str(ctx, "primary_share_subscription")
        .and_then(|(text, loc)| match ShareSubscriptionId::parse(&text) {
            Ok(id) => Some((id, loc)),
            Err(e) => {
                ctx.issue(
                    &loc.path,
                    &loc.span,
                    id_message("a Microsoft.DataShare share subscription", &text, &e),
                );
                None
            }
        });
    let secondary = account_id(t.req_str(ctx, "secondary_account"), ctx);
    if let (Some((p, _)), Some((s, loc))) = (&primary, &secondary)
        && p.account() == *s
    {
        ctx.issue(
            &loc.path,
            &loc.span,
            "secondary_account must differ from the account holding primary_share_subscription",
        );
    }
    let (r1, r2) = read_regions(ctx, t);
    let provider_share = t.opt_str(ctx, "provider_share").and_then(|(s, loc)| {
        if s.is_empty() || s.contains('/') {
            ctx.issue(
                &loc.path,
                &loc.span,
                format!("expected a share name, got {s:?}"),
            );
            None
        } else {
            Some(s)
        }
    });
    let failover = keyword(t.opt_str(ctx, "failover"), ctx).unwrap_or(defaults.failover);
    let approval = read_approval(ctx, t, defaults.approval);
    let start_first_sync = t.opt_bool(ctx, "start_first_sync").unwrap_or(false);
    let invitations = keyword(t.opt_str(ctx, "invitations"), ctx).unwrap_or(InvitationPolicy::Now);
    let schedule = match t.opt_str(ctx, "schedule") {
        None => ConsumerSchedule::Provider,
        Some((s, _)) if s == "provider" => ConsumerSchedule::Provider,
        Some((s, _)) if s == "none" => ConsumerSchedule::None,
        Some((s, loc)) => {
            ctx.issue(
                &loc.path,
                &loc.span,
                format!("expected \"provider\" or \"none\", got {s:?}"),
            );
            ConsumerSchedule::Provider
        }
    };
    let stores = read_stores(ctx, t);
    if ctx.issues.len() != before {
        return None;
    }
    let (name, name_loc) = name?;
    Some((
        ConsumerSubscription {
            name,
            primary_share_subscription: primary?.0,
            secondary_account: secondary?.0,
            primary_region: r1?,
            secondary_region: r2?,
            provider_share,
            stores: stores?,
            start_first_sync,
            schedule,
            failover,
            approval,
            invitations,
        },
        name_loc,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid(s: &str) -> ResourceId {
        ResourceId::parse(s).unwrap()
    }

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn replaces_substrings_ignoring_case() {
        assert_eq!(
            replace_ignore_case("/a/RG-WEU/x-weu", "weu", "neu"),
            "/a/RG-neu/x-neu"
        );
        assert_eq!(replace_ignore_case("abc", "", "x"), "abc");
    }

    #[test]
    fn an_override_of_a_server_maps_its_databases() {
        let m = StoreMapping {
            replace: BTreeMap::new(),
            overrides: vec![StoreOverride {
                primary: rid("/subscriptions/s/resourceGroups/a/providers/Microsoft.Sql/servers/p"),
                secondary: rid(
                    "/subscriptions/s/resourceGroups/b/providers/Microsoft.Sql/servers/q",
                ),
            }],
        };
        let db =
            rid("/subscriptions/s/resourceGroups/A/providers/Microsoft.Sql/servers/P/databases/d");
        assert_eq!(
            m.map_store(StoreKind::Sql, &db).unwrap().as_str(),
            "/subscriptions/s/resourceGroups/b/providers/Microsoft.Sql/servers/q/databases/d"
        );
        // a sibling whose name merely starts with the same text is not covered
        let other = rid("/subscriptions/s/resourceGroups/a/providers/Microsoft.Sql/servers/p2");
        assert!(m.map_store(StoreKind::Sql, &other).is_none());
    }

    #[test]
    fn consumer_targets_parse_and_compare_case_insensitively() {
        let a: ConsumerTarget = "Alice@Contoso.com".parse().unwrap();
        let b: ConsumerTarget = "alice@contoso.com".parse().unwrap();
        assert_eq!(a, b);
        let t: ConsumerTarget = "tenant:11111111-1111-1111-1111-111111111111/object:AAAAAAAA-1111-1111-1111-111111111111"
            .parse()
            .unwrap();
        assert_eq!(
            t.to_string(),
            "tenant:11111111-1111-1111-1111-111111111111/object:aaaaaaaa-1111-1111-1111-111111111111"
        );
        assert!("not-an-email".parse::<ConsumerTarget>().is_err());
        assert!("tenant:x/object:y".parse::<ConsumerTarget>().is_err());
    }

    #[test]
    fn maps_dataset_kinds_to_store_kinds() {
        assert_eq!(
            StoreKind::for_dataset_kind("AdlsGen2Folder"),
            Some(StoreKind::Storage)
        );
        assert_eq!(
            StoreKind::for_dataset_kind("SqlDWTable"),
            Some(StoreKind::Sql)
        );
        assert_eq!(
            StoreKind::for_dataset_kind("KustoTable"),
            Some(StoreKind::Kusto)
        );
        assert_eq!(StoreKind::for_dataset_kind("AdlsGen1File"), None);
    }

    #[test]
    fn transport_rule_refuses_static_tokens_off_loopback() {
        let local = Url::parse("http://127.0.0.1:8080").unwrap();
        let remote = Url::parse("https://management.azure.com").unwrap();
        assert!(check_arm_transport(&local, ArmAuth::StaticToken).is_ok());
        assert!(check_arm_transport(&remote, ArmAuth::StaticToken).is_err());
        assert!(check_arm_transport(&remote, ArmAuth::None).is_err());
        assert!(
            check_arm_transport(
                &Url::parse("http://example.com").unwrap(),
                ArmAuth::ManagedIdentity
            )
            .is_err()
        );
        assert!(check_arm_transport(&Url::parse("http://[::1]:1").unwrap(), ArmAuth::None).is_ok());
    }
}
