//! Typed bodies of the Azure Data Share REST API (api-version 2021-08-01) and the few generic
//! ARM resources the readiness checks read.
//!
//! Job: decode every response body the DR tool meets and encode every request body it sends,
//! with the spec's field names (camelCase) and polymorphic `kind` bodies as Rust enums.
//!
//! Invariants:
//! - Unknown `kind`s are kept whole (`Unknown { kind, raw }`), never dropped or rejected.
//! - Every properties struct keeps unknown properties in `extra`, and every resource keeps
//!   unknown top-level fields in `extra`, so a decode → encode round trip loses nothing.
//! - String enums (`ProvisioningState`, ...) accept values the spec does not list as `Other`.
//! - Resource ids inside bodies are kept as text (`id: Option<String>`): upstream examples
//!   carry misspelt ids, and a body must still decode. Use `typed_id()` to check one.
//!
//! Must not import anything of this crate except [`super::id`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::id::{IdError, ResourceId};

/// Errors raised while building or converting model values (not while decoding JSON: that
/// is `serde_json::Error`).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// `with_store` was given a store id of the wrong resource type for the data set kind.
    #[error("cannot re-point a `{kind}` data set at `{store}`: expected a `{expected}`")]
    WithStoreWrongType {
        kind: String,
        store: String,
        expected: &'static str,
    },
    /// `with_store` on a kind that has no store (unknown kinds).
    #[error("cannot re-point a data set of unknown kind `{kind}` at another store")]
    WithStoreUnknownKind { kind: String },
    /// A resource id inside a body (e.g. `sqlServerResourceId`) is malformed.
    #[error("data set `{kind}` has a malformed `{field}`")]
    BadEmbeddedId {
        kind: String,
        field: &'static str,
        #[source]
        source: IdError,
    },
}

// ---------------------------------------------------------------------------------------------
// Date-times: RFC 3339, lenient on input (missing offset = UTC), RFC 3339 on output.

/// Lenient RFC 3339 (de)serialisation for `Option<OffsetDateTime>`.
pub mod arm_time {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    /// Parses an ARM date-time (`2018-11-14T04:47:52.9614956Z`; no offset means UTC).
    pub fn parse(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
        match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) => Ok(t),
            Err(e) => {
                let with_z = format!("{s}Z");
                OffsetDateTime::parse(&with_z, &Rfc3339).map_err(|_| e)
            }
        }
    }

    /// Formats as RFC 3339 (`Z` for UTC).
    pub fn format(t: &OffsetDateTime) -> String {
        t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
    }

    /// `#[serde(with = "arm_time::option")]`
    pub mod option {
        use super::*;
        pub fn serialize<S: Serializer>(
            v: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(t) => s.serialize_str(&format(t)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            let v: Option<String> = Option::deserialize(d)?;
            match v {
                None => Ok(None),
                Some(s) if s.is_empty() => Ok(None),
                Some(s) => parse(&s)
                    .map(Some)
                    .map_err(|e| serde::de::Error::custom(format!("bad date-time `{s}`: {e}"))),
            }
        }
    }

    /// `#[serde(with = "arm_time::required")]`
    pub mod required {
        use super::*;
        pub fn serialize<S: Serializer>(v: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&format(v))
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
            let s = String::deserialize(d)?;
            parse(&s).map_err(|e| serde::de::Error::custom(format!("bad date-time `{s}`: {e}")))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// String enums with an `Other` fallback.

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value the 2021-08-01 spec does not list; kept verbatim.
            Other(String),
        }
        impl $name {
            /// The wire text.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(s) => s,
                }
            }
            /// Parses the wire text (exact first, then case-insensitively).
            pub fn parse(s: &str) -> Self {
                $(if s == $text { return Self::$variant; })+
                $(if s.eq_ignore_ascii_case($text) { return Self::$variant; })+
                Self::Other(s.to_owned())
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }
    };
}

string_enum!(
    /// `provisioningState` of Data Share resources.
    ProvisioningState { Succeeded => "Succeeded", Creating => "Creating", Deleting => "Deleting", Moving => "Moving", Failed => "Failed" });
string_enum!(
    /// `shareKind`.
    ShareKind { CopyBased => "CopyBased", InPlace => "InPlace" });
string_enum!(
    /// `invitationStatus`.
    InvitationStatus { Pending => "Pending", Accepted => "Accepted", Rejected => "Rejected", Withdrawn => "Withdrawn" });
string_enum!(
    /// `shareSubscriptionStatus`.
    ShareSubscriptionStatus { Active => "Active", Revoked => "Revoked", SourceDeleted => "SourceDeleted", Revoking => "Revoking" });
string_enum!(
    /// `recurrenceInterval` of schedules.
    RecurrenceInterval { Hour => "Hour", Day => "Day" });
string_enum!(
    /// `synchronizationMode`.
    SynchronizationMode { Incremental => "Incremental", FullSync => "FullSync" });
string_enum!(
    /// `triggerStatus`.
    TriggerStatus { Active => "Active", Inactive => "Inactive", SourceSynchronizationSettingDeleted => "SourceSynchronizationSettingDeleted" });
string_enum!(
    /// `dataSetMappingStatus`.
    DataSetMappingStatus { Ok => "Ok", Broken => "Broken" });
string_enum!(
    /// `outputType` of Blob / AdlsGen2File mappings.
    OutputType { Csv => "Csv", Parquet => "Parquet" });
string_enum!(
    /// `status` of an `OperationResponse` (async-operation status body).
    OperationStatus { Accepted => "Accepted", InProgress => "InProgress", TransientFailure => "TransientFailure", Succeeded => "Succeeded", Failed => "Failed", Canceled => "Canceled" });
string_enum!(
    /// `createdByType` / `lastModifiedByType` in `systemData`.
    CreatedByType { User => "User", Application => "Application", ManagedIdentity => "ManagedIdentity", Key => "Key" });

impl OperationStatus {
    /// `Succeeded`, `Failed` or `Canceled` (anything unknown is treated as still running).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

impl ProvisioningState {
    /// `Succeeded` or `Failed` (ARM also treats `Canceled` as terminal; it arrives as `Other`).
    pub fn is_terminal(&self) -> bool {
        match self {
            Self::Succeeded | Self::Failed => true,
            Self::Other(s) => s.eq_ignore_ascii_case("Canceled"),
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Common parts.

/// ARM `systemData` (read-only).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemData {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub created_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by_type: Option<CreatedByType>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub last_modified_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_by_type: Option<CreatedByType>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The read-only envelope of every proxy resource: `id`, `name`, `type`, `systemData`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_data: Option<SystemData>,
}

impl ResourceMeta {
    /// True when nothing is set (request bodies).
    pub fn is_empty(&self) -> bool {
        self.id.is_none()
            && self.name.is_none()
            && self.resource_type.is_none()
            && self.system_data.is_none()
    }
    /// The `id` parsed as the given id type (`None` when absent, `Err` when malformed).
    pub fn typed_id<T: TryFrom<ResourceId, Error = IdError>>(&self) -> Option<Result<T, IdError>> {
        self.id
            .as_deref()
            .map(|s| ResourceId::parse(s).and_then(T::try_from))
    }
}

/// One page of a list operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// `DataShareErrorInfo` / ARM error detail. Unknown fields (`additionalInfo`, ...) kept.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorInfo>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `DataShareError` — the `default` response of every operation: `{ "error": {...} }`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorInfo,
}

/// `OperationResponse` — body of async-operation status polls and of some DELETE 200s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationResponse {
    pub status: OperationStatus,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub start_time: Option<OffsetDateTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub end_time: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// ---------------------------------------------------------------------------------------------
// Accounts.

/// Account identity (`type` is always `SystemAssigned` in 2021-08-01).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    #[serde(rename = "type", default = "system_assigned")]
    pub identity_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

fn system_assigned() -> String {
    "SystemAssigned".into()
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            identity_type: system_assigned(),
            principal_id: None,
            tenant_id: None,
        }
    }
}

/// `AccountProperties` (all read-only).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountProperties {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub created_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<ProvisioningState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AccountProperties {
    /// True when no field is set (create bodies carry no `properties`).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A Data Share account (tracked resource).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    #[serde(flatten)]
    pub meta: ResourceMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub identity: Identity,
    #[serde(default, skip_serializing_if = "AccountProperties::is_empty")]
    pub properties: AccountProperties,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Account {
    /// A create body: location, system-assigned identity, optional tags.
    pub fn new(location: &str, tags: Option<BTreeMap<String, String>>) -> Self {
        Self {
            location: Some(location.to_owned()),
            tags,
            ..Self::default()
        }
    }
    /// The managed identity's principal (object) id, once the service has set it.
    pub fn principal_id(&self) -> Option<&str> {
        self.identity.principal_id.as_deref()
    }
}

/// `AccountUpdateParameters` (PATCH): only tags.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AccountUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

// ---------------------------------------------------------------------------------------------
// Shares.

/// `ShareProperties`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_kind: Option<ShareKind>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub created_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<ProvisioningState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A share.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Share {
    #[serde(flatten)]
    pub meta: ResourceMeta,
    #[serde(default)]
    pub properties: ShareProperties,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Share {
    /// A create body with the writable fields only.
    pub fn new(description: Option<String>, terms: Option<String>, kind: ShareKind) -> Self {
        Self {
            properties: ShareProperties {
                description,
                terms,
                share_kind: Some(kind),
                ..ShareProperties::default()
            },
            ..Self::default()
        }
    }
    /// The same share with only writable fields (for a PUT elsewhere).
    pub fn for_create(&self) -> Self {
        Self {
            properties: ShareProperties {
                description: self.properties.description.clone(),
                terms: self.properties.terms.clone(),
                share_kind: self.properties.share_kind.clone(),
                extra: self.properties.extra.clone(),
                ..ShareProperties::default()
            },
            ..Self::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Polymorphic resources (`kind` + `properties`).

/// (meta, kind, properties, extra) of a polymorphic body.
type KindedParts = (ResourceMeta, String, Option<Value>, Map<String, Value>);

/// Splits a JSON object into (meta, kind, properties, extra).
fn split_kinded<E: serde::de::Error>(what: &str, v: Value) -> Result<KindedParts, E> {
    let Value::Object(mut m) = v else {
        return Err(E::custom(format!("{what}: expected a JSON object")));
    };
    let kind = match m.remove("kind") {
        Some(Value::String(k)) if !k.is_empty() => k,
        Some(other) => {
            return Err(E::custom(format!(
                "{what}: `kind` must be a non-empty string, got {other}"
            )));
        }
        None => return Err(E::custom(format!("{what}: missing `kind`"))),
    };
    let props = m.remove("properties");
    let mut meta_map = Map::new();
    for k in ["id", "name", "type", "systemData"] {
        if let Some(x) = m.remove(k) {
            meta_map.insert(k.to_owned(), x);
        }
    }
    let meta: ResourceMeta = serde_json::from_value(Value::Object(meta_map))
        .map_err(|e| E::custom(format!("{what}: {e}")))?;
    Ok((meta, kind, props, m))
}

fn join_kinded(
    meta: &ResourceMeta,
    kind: &str,
    props: Option<Value>,
    extra: &Map<String, Value>,
) -> Result<Value, serde_json::Error> {
    let mut m = match serde_json::to_value(meta)? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert("kind".into(), Value::String(kind.to_owned()));
    if let Some(p) = props {
        m.insert("properties".into(), p);
    }
    for (k, v) in extra {
        m.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(m))
}

fn typed_props<T: DeserializeOwned, E: serde::de::Error>(
    what: &str,
    kind: &str,
    props: Option<Value>,
) -> Result<T, E> {
    let p = props.unwrap_or_else(|| Value::Object(Map::new()));
    serde_json::from_value(p).map_err(|e| E::custom(format!("{what} of kind `{kind}`: {e}")))
}

macro_rules! kinded {
    (
        $(#[$doc:meta])* $name:ident, $kindenum:ident, $what:literal {
            $($variant:ident($props:ty) => $text:literal),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            /// `id`, `name`, `type`, `systemData`.
            pub meta: ResourceMeta,
            /// `kind` and the kind's `properties`.
            pub kind: $kindenum,
            /// Unknown top-level fields, kept for round trips.
            pub extra: Map<String, Value>,
        }

        #[doc = concat!("The `kind`-specific part of a ", $what, ".")]
        #[derive(Debug, Clone, PartialEq)]
        pub enum $kindenum {
            $($variant($props),)+
            /// A kind this client does not know; `raw` is the `properties` object verbatim.
            Unknown { kind: String, raw: Value },
        }

        impl $kindenum {
            /// The wire `kind` text.
            pub fn kind_name(&self) -> &str {
                match self {
                    $(Self::$variant(_) => $text,)+
                    Self::Unknown { kind, .. } => kind,
                }
            }
        }

        impl $name {
            /// Every kind this client models.
            pub const KNOWN_KINDS: &'static [&'static str] = &[$($text),+];

            /// A request body (no read-only envelope).
            pub fn new(kind: $kindenum) -> Self {
                Self { meta: ResourceMeta::default(), kind, extra: Map::new() }
            }
            /// The wire `kind` text.
            pub fn kind_name(&self) -> &str {
                self.kind.kind_name()
            }
            /// `name` from the envelope, if any.
            pub fn name(&self) -> Option<&str> {
                self.meta.name.as_deref()
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let props = match &self.kind {
                    $($kindenum::$variant(p) => Some(serde_json::to_value(p).map_err(serde::ser::Error::custom)?),)+
                    $kindenum::Unknown { raw, .. } => if raw.is_null() { None } else { Some(raw.clone()) },
                };
                join_kinded(&self.meta, self.kind_name(), props, &self.extra)
                    .map_err(serde::ser::Error::custom)?
                    .serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = Value::deserialize(d)?;
                let (meta, kind, props, extra) = split_kinded::<D::Error>($what, v)?;
                let k = match kind.as_str() {
                    $($text => $kindenum::$variant(typed_props::<_, D::Error>($what, &kind, props)?),)+
                    _ => $kindenum::Unknown { kind: kind.clone(), raw: props.unwrap_or(Value::Null) },
                };
                Ok(Self { meta, kind: k, extra })
            }
        }
    };
}

macro_rules! props_struct {
    (
        $(#[$doc:meta])* $name:ident {
            $( $(#[$fdoc:meta])* $field:ident : $ty:ty ),* $(,)?
        }
        optional {
            $( $(#[$odoc:meta])* $ofield:ident : $oty:ty ),* $(,)?
        }
        times { $( $tfield:ident ),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $( $(#[$fdoc])* pub $field: $ty, )*
            $( $(#[$odoc])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $ofield: Option<$oty>, )*
            $( #[serde(default, skip_serializing_if = "Option::is_none", with = "arm_time::option")] pub $tfield: Option<OffsetDateTime>, )*
            /// Unknown properties, kept for round trips.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }
    };
}

// --- data set properties

props_struct!(
    /// `Blob` data set: one file in a container.
    BlobProperties { container_name: String, file_path: String, subscription_id: String, resource_group: String, storage_account_name: String }
    optional { data_set_id: String } times {});
props_struct!(
    /// `BlobFolder` data set: a prefix in a container.
    BlobFolderProperties { container_name: String, prefix: String, subscription_id: String, resource_group: String, storage_account_name: String }
    optional { data_set_id: String } times {});
props_struct!(
    /// `Container` data set.
    BlobContainerProperties { container_name: String, subscription_id: String, resource_group: String, storage_account_name: String }
    optional { data_set_id: String } times {});
props_struct!(
    /// `AdlsGen2File` data set.
    AdlsGen2FileProperties { file_system: String, file_path: String, subscription_id: String, resource_group: String, storage_account_name: String }
    optional { data_set_id: String } times {});
props_struct!(
    /// `AdlsGen2Folder` data set.
    AdlsGen2FolderProperties { file_system: String, folder_path: String, subscription_id: String, resource_group: String, storage_account_name: String }
    optional { data_set_id: String } times {});
props_struct!(
    /// `AdlsGen2FileSystem` data set.
    AdlsGen2FileSystemProperties { file_system: String, subscription_id: String, resource_group: String, storage_account_name: String }
    optional { data_set_id: String } times {});
props_struct!(
    /// `AdlsGen1File` data set (ADLS Gen1 is retired).
    AdlsGen1FileProperties { account_name: String, folder_path: String, file_name: String, subscription_id: String, resource_group: String }
    optional { data_set_id: String } times {});
props_struct!(
    /// `AdlsGen1Folder` data set (ADLS Gen1 is retired).
    AdlsGen1FolderProperties { account_name: String, folder_path: String, subscription_id: String, resource_group: String }
    optional { data_set_id: String } times {});
props_struct!(
    /// `KustoCluster` data set (in-place sharing of a whole cluster).
    KustoClusterDataSetProperties { kusto_cluster_resource_id: String }
    optional { data_set_id: String, location: String, provisioning_state: ProvisioningState } times {});
props_struct!(
    /// `KustoDatabase` data set.
    KustoDatabaseDataSetProperties { kusto_database_resource_id: String }
    optional { data_set_id: String, location: String, provisioning_state: ProvisioningState } times {});
props_struct!(
    /// `KustoTable` data set.
    KustoTableDataSetProperties { kusto_database_resource_id: String, table_level_sharing_properties: TableLevelSharingProperties }
    optional { data_set_id: String, location: String, provisioning_state: ProvisioningState } times {});
props_struct!(
    /// `SqlDBTable` data set.
    SqlDbTableProperties { database_name: String, schema_name: String, table_name: String, sql_server_resource_id: String }
    optional { data_set_id: String } times {});
props_struct!(
    /// `SqlDWTable` data set.
    SqlDwTableProperties { data_warehouse_name: String, schema_name: String, table_name: String, sql_server_resource_id: String }
    optional { data_set_id: String } times {});
props_struct!(
    /// `SynapseWorkspaceSqlPoolTable` data set.
    SynapseWorkspaceSqlPoolTableDataSetProperties { synapse_workspace_sql_pool_table_resource_id: String }
    optional { data_set_id: String } times {});

/// Kusto `tableLevelSharingProperties`: six name lists.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableLevelSharingProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_tables_to_exclude: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_tables_to_include: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub materialized_views_to_exclude: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub materialized_views_to_include: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables_to_exclude: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables_to_include: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

kinded!(
    /// A data set in a share (polymorphic on `kind`).
    DataSet, DataSetKind, "data set" {
        Blob(BlobProperties) => "Blob",
        BlobFolder(BlobFolderProperties) => "BlobFolder",
        Container(BlobContainerProperties) => "Container",
        AdlsGen2File(AdlsGen2FileProperties) => "AdlsGen2File",
        AdlsGen2Folder(AdlsGen2FolderProperties) => "AdlsGen2Folder",
        AdlsGen2FileSystem(AdlsGen2FileSystemProperties) => "AdlsGen2FileSystem",
        AdlsGen1File(AdlsGen1FileProperties) => "AdlsGen1File",
        AdlsGen1Folder(AdlsGen1FolderProperties) => "AdlsGen1Folder",
        KustoCluster(KustoClusterDataSetProperties) => "KustoCluster",
        KustoDatabase(KustoDatabaseDataSetProperties) => "KustoDatabase",
        KustoTable(KustoTableDataSetProperties) => "KustoTable",
        SqlDbTable(SqlDbTableProperties) => "SqlDBTable",
        SqlDwTable(SqlDwTableProperties) => "SqlDWTable",
        SynapseWorkspaceSqlPoolTable(SynapseWorkspaceSqlPoolTableDataSetProperties) => "SynapseWorkspaceSqlPoolTable",
    }
);

/// The kind of data store a data set reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StoreKind {
    /// `Microsoft.Storage/storageAccounts` (Blob and ADLS Gen2 kinds).
    StorageAccount,
    /// `Microsoft.DataLakeStore/accounts` (retired ADLS Gen1).
    DataLakeStoreGen1,
    /// `Microsoft.Sql/servers` (SqlDBTable, SqlDWTable).
    SqlServer,
    /// `Microsoft.Synapse/workspaces` (SynapseWorkspaceSqlPoolTable).
    SynapseWorkspace,
    /// `Microsoft.Kusto/clusters` (KustoCluster).
    KustoCluster,
    /// `Microsoft.Kusto/clusters/databases` (KustoDatabase, KustoTable).
    KustoDatabase,
}

impl StoreKind {
    /// The ARM resource type of the store.
    pub fn arm_type(self) -> &'static str {
        match self {
            Self::StorageAccount => "Microsoft.Storage/storageAccounts",
            Self::DataLakeStoreGen1 => "Microsoft.DataLakeStore/accounts",
            Self::SqlServer => "Microsoft.Sql/servers",
            Self::SynapseWorkspace => "Microsoft.Synapse/workspaces",
            Self::KustoCluster => "Microsoft.Kusto/clusters",
            Self::KustoDatabase => "Microsoft.Kusto/clusters/databases",
        }
    }
}

/// The store a data set points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreRef {
    /// The ARM id of the store (storage account, SQL server, Synapse workspace, Kusto cluster
    /// or Kusto database).
    pub id: ResourceId,
    /// What kind of store that is.
    pub kind: StoreKind,
    /// The database inside the store, where the data set names one (SQL database, data
    /// warehouse, Synapse SQL pool); the Kusto database is part of `id` already.
    pub database: Option<String>,
}

/// Well-known Azure built-in role definition ids (GUIDs, same in every cloud).
pub mod roles {
    /// Storage Blob Data Reader — read blob data; what a Data Share provider account's
    /// identity needs on Blob / ADLS Gen2 sources.
    pub const STORAGE_BLOB_DATA_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
    /// Storage Blob Data Contributor — what a consumer account's identity needs on a target.
    pub const STORAGE_BLOB_DATA_CONTRIBUTOR: &str = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";
    /// Owner — the Data Share docs list it for ADLS Gen1 sources (retired service).
    pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
    /// Contributor — the Data Share roles doc lists it for Azure Data Explorer sources.
    pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
    /// Reader.
    pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
}

/// Which data-plane access the Data Share account's managed identity needs on a source store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataReaderRole {
    /// An Azure RBAC role assignment on the store's ARM scope (checkable through
    /// `Microsoft.Authorization/roleAssignments`).
    AzureRbac {
        role_definition_id: &'static str,
        role_name: &'static str,
    },
    /// A database role for a contained user named after the Data Share account (created with
    /// `CREATE USER [account] FROM EXTERNAL PROVIDER`); not visible through ARM.
    SqlDatabaseRole { role: &'static str },
    /// The kind is retired (ADLS Gen1): no role can make it work.
    Retired,
    /// Unknown kind: nothing can be said.
    Unknown,
}

/// The id of storage account `name` (Blob / ADLS Gen2 data sets and mappings name it in parts).
pub fn storage_account_id(sub: &str, rg: &str, name: &str) -> Result<ResourceId, IdError> {
    ResourceId::provider_resource(sub, rg, "Microsoft.Storage", "storageAccounts", name)
}

impl DataSet {
    /// `properties.dataSetId` (read-only GUID set by the service).
    pub fn data_set_id(&self) -> Option<&str> {
        match &self.kind {
            DataSetKind::Blob(p) => p.data_set_id.as_deref(),
            DataSetKind::BlobFolder(p) => p.data_set_id.as_deref(),
            DataSetKind::Container(p) => p.data_set_id.as_deref(),
            DataSetKind::AdlsGen2File(p) => p.data_set_id.as_deref(),
            DataSetKind::AdlsGen2Folder(p) => p.data_set_id.as_deref(),
            DataSetKind::AdlsGen2FileSystem(p) => p.data_set_id.as_deref(),
            DataSetKind::AdlsGen1File(p) => p.data_set_id.as_deref(),
            DataSetKind::AdlsGen1Folder(p) => p.data_set_id.as_deref(),
            DataSetKind::KustoCluster(p) => p.data_set_id.as_deref(),
            DataSetKind::KustoDatabase(p) => p.data_set_id.as_deref(),
            DataSetKind::KustoTable(p) => p.data_set_id.as_deref(),
            DataSetKind::SqlDbTable(p) => p.data_set_id.as_deref(),
            DataSetKind::SqlDwTable(p) => p.data_set_id.as_deref(),
            DataSetKind::SynapseWorkspaceSqlPoolTable(p) => p.data_set_id.as_deref(),
            DataSetKind::Unknown { raw, .. } => raw.get("dataSetId").and_then(Value::as_str),
        }
    }

    /// ADLS Gen1 kinds: still in the spec, but the service behind them was retired on
    /// 2024-02-29.
    pub fn is_retired(&self) -> bool {
        matches!(
            self.kind,
            DataSetKind::AdlsGen1File(_) | DataSetKind::AdlsGen1Folder(_)
        )
    }

    /// The same data set with every read-only field cleared (envelope, `dataSetId`,
    /// `location`, `provisioningState`): a body to PUT.
    pub fn for_create(&self) -> DataSet {
        let mut k = self.kind.clone();
        match &mut k {
            DataSetKind::Blob(p) => p.data_set_id = None,
            DataSetKind::BlobFolder(p) => p.data_set_id = None,
            DataSetKind::Container(p) => p.data_set_id = None,
            DataSetKind::AdlsGen2File(p) => p.data_set_id = None,
            DataSetKind::AdlsGen2Folder(p) => p.data_set_id = None,
            DataSetKind::AdlsGen2FileSystem(p) => p.data_set_id = None,
            DataSetKind::AdlsGen1File(p) => p.data_set_id = None,
            DataSetKind::AdlsGen1Folder(p) => p.data_set_id = None,
            DataSetKind::KustoCluster(p) => {
                p.data_set_id = None;
                p.location = None;
                p.provisioning_state = None;
            }
            DataSetKind::KustoDatabase(p) => {
                p.data_set_id = None;
                p.location = None;
                p.provisioning_state = None;
            }
            DataSetKind::KustoTable(p) => {
                p.data_set_id = None;
                p.location = None;
                p.provisioning_state = None;
            }
            DataSetKind::SqlDbTable(p) => p.data_set_id = None,
            DataSetKind::SqlDwTable(p) => p.data_set_id = None,
            DataSetKind::SynapseWorkspaceSqlPoolTable(p) => p.data_set_id = None,
            DataSetKind::Unknown { raw, .. } => {
                if let Value::Object(m) = raw {
                    for f in ["dataSetId", "location", "provisioningState"] {
                        m.remove(f);
                    }
                }
            }
        }
        DataSet {
            meta: ResourceMeta::default(),
            kind: k,
            extra: self.extra.clone(),
        }
    }

    /// The store this data set reads from; `None` for unknown kinds or when the embedded
    /// resource id is malformed (see [`DataSet::try_store`] for the reason).
    pub fn store(&self) -> Option<StoreRef> {
        self.try_store().ok().flatten()
    }

    /// Like [`DataSet::store`], but says why an embedded id is malformed.
    pub fn try_store(&self) -> Result<Option<StoreRef>, ModelError> {
        let kind = self.kind_name().to_owned();
        let bad = |field: &'static str| {
            let kind = kind.clone();
            move |source| ModelError::BadEmbeddedId {
                kind,
                field,
                source,
            }
        };
        let storage = |sub: &str, rg: &str, name: &str| {
            storage_account_id(sub, rg, name)
                .map(|id| {
                    Some(StoreRef {
                        id,
                        kind: StoreKind::StorageAccount,
                        database: None,
                    })
                })
                .map_err(bad("storageAccountName"))
        };
        match &self.kind {
            DataSetKind::Blob(p) => storage(
                &p.subscription_id,
                &p.resource_group,
                &p.storage_account_name,
            ),
            DataSetKind::BlobFolder(p) => storage(
                &p.subscription_id,
                &p.resource_group,
                &p.storage_account_name,
            ),
            DataSetKind::Container(p) => storage(
                &p.subscription_id,
                &p.resource_group,
                &p.storage_account_name,
            ),
            DataSetKind::AdlsGen2File(p) => storage(
                &p.subscription_id,
                &p.resource_group,
                &p.storage_account_name,
            ),
            DataSetKind::AdlsGen2Folder(p) => storage(
                &p.subscription_id,
                &p.resource_group,
                &p.storage_account_name,
            ),
            DataSetKind::AdlsGen2FileSystem(p) => storage(
                &p.subscription_id,
                &p.resource_group,
                &p.storage_account_name,
            ),
            DataSetKind::AdlsGen1File(p) => {
                gen1(&p.subscription_id, &p.resource_group, &p.account_name)
                    .map_err(bad("accountName"))
            }
            DataSetKind::AdlsGen1Folder(p) => {
                gen1(&p.subscription_id, &p.resource_group, &p.account_name)
                    .map_err(bad("accountName"))
            }
            DataSetKind::KustoCluster(p) => Ok(Some(StoreRef {
                id: ResourceId::parse(&p.kusto_cluster_resource_id)
                    .map_err(bad("kustoClusterResourceId"))?,
                kind: StoreKind::KustoCluster,
                database: None,
            })),
            DataSetKind::KustoDatabase(p) => Ok(Some(StoreRef {
                id: ResourceId::parse(&p.kusto_database_resource_id)
                    .map_err(bad("kustoDatabaseResourceId"))?,
                kind: StoreKind::KustoDatabase,
                database: None,
            })),
            DataSetKind::KustoTable(p) => Ok(Some(StoreRef {
                id: ResourceId::parse(&p.kusto_database_resource_id)
                    .map_err(bad("kustoDatabaseResourceId"))?,
                kind: StoreKind::KustoDatabase,
                database: None,
            })),
            DataSetKind::SqlDbTable(p) => Ok(Some(StoreRef {
                id: ResourceId::parse(&p.sql_server_resource_id)
                    .map_err(bad("sqlServerResourceId"))?,
                kind: StoreKind::SqlServer,
                database: Some(p.database_name.clone()),
            })),
            DataSetKind::SqlDwTable(p) => Ok(Some(StoreRef {
                id: ResourceId::parse(&p.sql_server_resource_id)
                    .map_err(bad("sqlServerResourceId"))?,
                kind: StoreKind::SqlServer,
                database: Some(p.data_warehouse_name.clone()),
            })),
            DataSetKind::SynapseWorkspaceSqlPoolTable(p) => {
                let table = ResourceId::parse(&p.synapse_workspace_sql_pool_table_resource_id)
                    .map_err(bad("synapseWorkspaceSqlPoolTableResourceId"))?;
                let ws = synapse_workspace_of(&table).ok_or_else(|| {
                    bad("synapseWorkspaceSqlPoolTableResourceId")(IdError::WrongType {
                        id: table.to_string(),
                        expected: "Microsoft.Synapse/workspaces/sqlPools/schemas/tables".into(),
                        found: table.resource_type(),
                    })
                })?;
                Ok(Some(StoreRef {
                    id: ws,
                    kind: StoreKind::SynapseWorkspace,
                    database: table.name_of("sqlPools").map(str::to_owned),
                }))
            }
            DataSetKind::Unknown { .. } => Ok(None),
        }
    }

    /// The same data set re-pointed at another store of the same kind: storage kinds get
    /// `subscriptionId`/`resourceGroup`/`storageAccountName` from `store`; SQL kinds get
    /// `sqlServerResourceId`; Kusto cluster kinds the cluster id; Kusto database kinds accept
    /// a database id, or a cluster id (the database name is kept); Synapse accepts a workspace
    /// id (pool/schema/table path kept) or a full table id. Everything else (paths, tables,
    /// unknown properties) is kept; read-only fields are cleared (a body to PUT).
    pub fn with_store(&self, store: &ResourceId) -> Result<DataSet, ModelError> {
        let mut out = self.for_create();
        let kind = self.kind_name().to_owned();
        let wrong = |expected: &'static str| ModelError::WithStoreWrongType {
            kind: kind.clone(),
            store: store.to_string(),
            expected,
        };
        let storage_parts = || -> Result<(String, String, String), ModelError> {
            if !store.is_type(StoreKind::StorageAccount.arm_type()) {
                return Err(wrong(StoreKind::StorageAccount.arm_type()));
            }
            Ok((
                store.subscription_id().unwrap_or_default().to_owned(),
                store.resource_group().unwrap_or_default().to_owned(),
                store.name().to_owned(),
            ))
        };
        macro_rules! set_storage {
            ($p:expr, $name_field:ident) => {{
                let (s, r, n) = storage_parts()?;
                $p.subscription_id = s;
                $p.resource_group = r;
                $p.$name_field = n;
            }};
        }
        match &mut out.kind {
            DataSetKind::Blob(p) => set_storage!(p, storage_account_name),
            DataSetKind::BlobFolder(p) => set_storage!(p, storage_account_name),
            DataSetKind::Container(p) => set_storage!(p, storage_account_name),
            DataSetKind::AdlsGen2File(p) => set_storage!(p, storage_account_name),
            DataSetKind::AdlsGen2Folder(p) => set_storage!(p, storage_account_name),
            DataSetKind::AdlsGen2FileSystem(p) => set_storage!(p, storage_account_name),
            DataSetKind::AdlsGen1File(p) => {
                if !store.is_type(StoreKind::DataLakeStoreGen1.arm_type()) {
                    return Err(wrong(StoreKind::DataLakeStoreGen1.arm_type()));
                }
                p.subscription_id = store.subscription_id().unwrap_or_default().to_owned();
                p.resource_group = store.resource_group().unwrap_or_default().to_owned();
                p.account_name = store.name().to_owned();
            }
            DataSetKind::AdlsGen1Folder(p) => {
                if !store.is_type(StoreKind::DataLakeStoreGen1.arm_type()) {
                    return Err(wrong(StoreKind::DataLakeStoreGen1.arm_type()));
                }
                p.subscription_id = store.subscription_id().unwrap_or_default().to_owned();
                p.resource_group = store.resource_group().unwrap_or_default().to_owned();
                p.account_name = store.name().to_owned();
            }
            DataSetKind::KustoCluster(p) => {
                if !store.is_type(StoreKind::KustoCluster.arm_type()) {
                    return Err(wrong(StoreKind::KustoCluster.arm_type()));
                }
                p.kusto_cluster_resource_id = store.to_string();
            }
            DataSetKind::KustoDatabase(p) => {
                p.kusto_database_resource_id =
                    kusto_database_target(&p.kusto_database_resource_id, store).ok_or_else(
                        || wrong("Microsoft.Kusto/clusters or Microsoft.Kusto/clusters/databases"),
                    )?;
            }
            DataSetKind::KustoTable(p) => {
                p.kusto_database_resource_id =
                    kusto_database_target(&p.kusto_database_resource_id, store).ok_or_else(
                        || wrong("Microsoft.Kusto/clusters or Microsoft.Kusto/clusters/databases"),
                    )?;
            }
            DataSetKind::SqlDbTable(p) => {
                if !store.is_type(StoreKind::SqlServer.arm_type()) {
                    return Err(wrong(StoreKind::SqlServer.arm_type()));
                }
                p.sql_server_resource_id = store.to_string();
            }
            DataSetKind::SqlDwTable(p) => {
                if !store.is_type(StoreKind::SqlServer.arm_type()) {
                    return Err(wrong(StoreKind::SqlServer.arm_type()));
                }
                p.sql_server_resource_id = store.to_string();
            }
            DataSetKind::SynapseWorkspaceSqlPoolTable(p) => {
                let table_type = "Microsoft.Synapse/workspaces/sqlPools/schemas/tables";
                if store.is_type(table_type) {
                    p.synapse_workspace_sql_pool_table_resource_id = store.to_string();
                } else if store.is_type(StoreKind::SynapseWorkspace.arm_type()) {
                    let old = ResourceId::parse(&p.synapse_workspace_sql_pool_table_resource_id)
                        .map_err(|source| ModelError::BadEmbeddedId {
                            kind: kind.clone(),
                            field: "synapseWorkspaceSqlPoolTableResourceId",
                            source,
                        })?;
                    let mut id = store.to_string();
                    let mut seen_ws = false;
                    for (k, v) in old.pairs() {
                        if seen_ws {
                            id.push('/');
                            id.push_str(k);
                            id.push('/');
                            id.push_str(v);
                        }
                        if k.eq_ignore_ascii_case("workspaces") {
                            seen_ws = true;
                        }
                    }
                    p.synapse_workspace_sql_pool_table_resource_id = id;
                } else {
                    return Err(wrong("Microsoft.Synapse/workspaces"));
                }
            }
            DataSetKind::Unknown { kind, .. } => {
                return Err(ModelError::WithStoreUnknownKind { kind: kind.clone() });
            }
        }
        Ok(out)
    }

    /// The data-plane access the Data Share account's managed identity needs on this data
    /// set's source store (Data Share "roles and requirements" doc).
    pub fn data_reader_role(&self) -> DataReaderRole {
        match &self.kind {
            DataSetKind::Blob(_)
            | DataSetKind::BlobFolder(_)
            | DataSetKind::Container(_)
            | DataSetKind::AdlsGen2File(_)
            | DataSetKind::AdlsGen2Folder(_)
            | DataSetKind::AdlsGen2FileSystem(_) => DataReaderRole::AzureRbac {
                role_definition_id: roles::STORAGE_BLOB_DATA_READER,
                role_name: "Storage Blob Data Reader",
            },
            DataSetKind::AdlsGen1File(_) | DataSetKind::AdlsGen1Folder(_) => {
                DataReaderRole::Retired
            }
            DataSetKind::KustoCluster(_)
            | DataSetKind::KustoDatabase(_)
            | DataSetKind::KustoTable(_) => DataReaderRole::AzureRbac {
                role_definition_id: roles::CONTRIBUTOR,
                role_name: "Contributor",
            },
            DataSetKind::SqlDbTable(_)
            | DataSetKind::SqlDwTable(_)
            | DataSetKind::SynapseWorkspaceSqlPoolTable(_) => DataReaderRole::SqlDatabaseRole {
                role: "db_datareader",
            },
            DataSetKind::Unknown { .. } => DataReaderRole::Unknown,
        }
    }
}

fn gen1(sub: &str, rg: &str, name: &str) -> Result<Option<StoreRef>, IdError> {
    Ok(Some(StoreRef {
        id: ResourceId::provider_resource(sub, rg, "Microsoft.DataLakeStore", "accounts", name)?,
        kind: StoreKind::DataLakeStoreGen1,
        database: None,
    }))
}

fn synapse_workspace_of(table: &ResourceId) -> Option<ResourceId> {
    let mut cur = table.clone();
    loop {
        if cur.is_type(StoreKind::SynapseWorkspace.arm_type()) {
            return Some(cur);
        }
        cur = cur.parent()?;
    }
}

fn kusto_database_target(old: &str, store: &ResourceId) -> Option<String> {
    if store.is_type(StoreKind::KustoDatabase.arm_type()) {
        return Some(store.to_string());
    }
    if store.is_type(StoreKind::KustoCluster.arm_type()) {
        let db = ResourceId::parse(old).ok()?;
        return store
            .child("databases", db.name())
            .ok()
            .map(|d| d.to_string());
    }
    None
}

// --- data set mappings (consumer side)

props_struct!(
    /// `Blob` mapping.
    BlobMappingProperties { data_set_id: String, container_name: String, file_path: String, subscription_id: String, resource_group: String, storage_account_name: String }
    optional { output_type: OutputType, data_set_mapping_status: DataSetMappingStatus, provisioning_state: ProvisioningState } times {});
props_struct!(
    /// `BlobFolder` mapping.
    BlobFolderMappingProperties { data_set_id: String, container_name: String, prefix: String, subscription_id: String, resource_group: String, storage_account_name: String }
    optional { data_set_mapping_status: DataSetMappingStatus, provisioning_state: ProvisioningState } times {});
props_struct!(
    /// `Container` mapping.
    BlobContainerMappingProperties { data_set_id: String, container_name: String, subscription_id: String, resource_group: String, storage_account_name: String }
    optional { data_set_mapping_status: DataSetMappingStatus, provisioning_state: ProvisioningState } times {});
props_struct!(
    /// `AdlsGen2File` mapping.
    AdlsGen2FileMappingProperties { data_set_id: String, file_system: String, file_path: String, subscription_id: String, resource_group: String, storage_account_name: String }
    optional { output_type: OutputType, data_set_mapping_status: DataSetMappingStatus, provisioning_state: ProvisioningState } times {});
props_struct!(
    /// `AdlsGen2Folder` mapping.
    AdlsGen2FolderMappingProperties { data_set_id: String, file_system: String, folder_path: String, subscription_id: String, resource_group: String, storage_account_name: String }
    optional { data_set_mapping_status: DataSetMappingStatus, provisioning_state: ProvisioningState } times {});
props_struct!(
    /// `AdlsGen2FileSystem` mapping.
    AdlsGen2FileSystemMappingProperties { data_set_id: String, file_system: String, subscription_id: String, resource_group: String, storage_account_name: String }
    optional { data_set_mapping_status: DataSetMappingStatus, provisioning_state: ProvisioningState } times {});
props_struct!(
    /// Kusto mappings (all three Kusto kinds map into the consumer's cluster).
    KustoMappingProperties { data_set_id: String, kusto_cluster_resource_id: String }
    optional { location: String, data_set_mapping_status: DataSetMappingStatus, provisioning_state: ProvisioningState } times {});
props_struct!(
    /// `SqlDBTable` mapping.
    SqlDbTableMappingProperties { data_set_id: String, database_name: String, schema_name: String, table_name: String, sql_server_resource_id: String }
    optional { data_set_mapping_status: DataSetMappingStatus, provisioning_state: ProvisioningState } times {});
props_struct!(
    /// `SqlDWTable` mapping.
    SqlDwTableMappingProperties { data_set_id: String, data_warehouse_name: String, schema_name: String, table_name: String, sql_server_resource_id: String }
    optional { data_set_mapping_status: DataSetMappingStatus, provisioning_state: ProvisioningState } times {});
props_struct!(
    /// `SynapseWorkspaceSqlPoolTable` mapping.
    SynapseWorkspaceSqlPoolTableMappingProperties { data_set_id: String, synapse_workspace_sql_pool_table_resource_id: String }
    optional { data_set_mapping_status: DataSetMappingStatus, provisioning_state: ProvisioningState } times {});

kinded!(
    /// A consumer's data set mapping (polymorphic on `kind`; no ADLS Gen1 targets).
    DataSetMapping, DataSetMappingKind, "data set mapping" {
        Blob(BlobMappingProperties) => "Blob",
        BlobFolder(BlobFolderMappingProperties) => "BlobFolder",
        Container(BlobContainerMappingProperties) => "Container",
        AdlsGen2File(AdlsGen2FileMappingProperties) => "AdlsGen2File",
        AdlsGen2Folder(AdlsGen2FolderMappingProperties) => "AdlsGen2Folder",
        AdlsGen2FileSystem(AdlsGen2FileSystemMappingProperties) => "AdlsGen2FileSystem",
        KustoCluster(KustoMappingProperties) => "KustoCluster",
        KustoDatabase(KustoMappingProperties) => "KustoDatabase",
        KustoTable(KustoMappingProperties) => "KustoTable",
        SqlDbTable(SqlDbTableMappingProperties) => "SqlDBTable",
        SqlDwTable(SqlDwTableMappingProperties) => "SqlDWTable",
        SynapseWorkspaceSqlPoolTable(SynapseWorkspaceSqlPoolTableMappingProperties) => "SynapseWorkspaceSqlPoolTable",
    }
);

impl DataSetMapping {
    /// The provider data set id (`properties.dataSetId`) this mapping receives.
    pub fn data_set_id(&self) -> Option<&str> {
        Some(match &self.kind {
            DataSetMappingKind::Blob(p) => &p.data_set_id,
            DataSetMappingKind::BlobFolder(p) => &p.data_set_id,
            DataSetMappingKind::Container(p) => &p.data_set_id,
            DataSetMappingKind::AdlsGen2File(p) => &p.data_set_id,
            DataSetMappingKind::AdlsGen2Folder(p) => &p.data_set_id,
            DataSetMappingKind::AdlsGen2FileSystem(p) => &p.data_set_id,
            DataSetMappingKind::KustoCluster(p)
            | DataSetMappingKind::KustoDatabase(p)
            | DataSetMappingKind::KustoTable(p) => &p.data_set_id,
            DataSetMappingKind::SqlDbTable(p) => &p.data_set_id,
            DataSetMappingKind::SqlDwTable(p) => &p.data_set_id,
            DataSetMappingKind::SynapseWorkspaceSqlPoolTable(p) => &p.data_set_id,
            DataSetMappingKind::Unknown { raw, .. } => {
                return raw.get("dataSetId").and_then(Value::as_str);
            }
        })
    }
}

// --- schedules

/// `ScheduledSynchronizationSettingProperties` (provider's snapshot schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledSynchronizationSettingProperties {
    pub recurrence_interval: RecurrenceInterval,
    #[serde(with = "arm_time::required")]
    pub synchronization_time: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<ProvisioningState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub created_at: Option<OffsetDateTime>,
    /// Unknown properties, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

props_struct!(
    /// `ScheduledSourceShareSynchronizationSettingProperties` (the provider's schedule as the
    /// consumer sees it).
    ScheduledSourceSynchronizationSettingProperties { }
    optional { recurrence_interval: RecurrenceInterval } times { synchronization_time });

/// `ScheduledTriggerProperties` (consumer's schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledTriggerProperties {
    pub recurrence_interval: RecurrenceInterval,
    #[serde(with = "arm_time::required")]
    pub synchronization_time: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronization_mode: Option<SynchronizationMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_status: Option<TriggerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<ProvisioningState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub created_at: Option<OffsetDateTime>,
    /// Unknown properties, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

kinded!(
    /// A provider synchronization setting (snapshot schedule).
    SynchronizationSetting, SynchronizationSettingKind, "synchronization setting" {
        ScheduleBased(ScheduledSynchronizationSettingProperties) => "ScheduleBased",
    }
);
kinded!(
    /// The provider's schedule, seen by a consumer (`listSourceShareSynchronizationSettings`).
    SourceShareSynchronizationSetting, SourceShareSynchronizationSettingKind, "source share synchronization setting" {
        ScheduleBased(ScheduledSourceSynchronizationSettingProperties) => "ScheduleBased",
    }
);
kinded!(
    /// A consumer trigger (turns the snapshot schedule on for a share subscription).
    Trigger, TriggerKind, "trigger" {
        ScheduleBased(ScheduledTriggerProperties) => "ScheduleBased",
    }
);

impl SynchronizationSetting {
    /// A `ScheduleBased` setting body.
    pub fn schedule(interval: RecurrenceInterval, synchronization_time: OffsetDateTime) -> Self {
        Self::new(SynchronizationSettingKind::ScheduleBased(
            ScheduledSynchronizationSettingProperties {
                recurrence_interval: interval,
                synchronization_time,
                ..Default::default()
            },
        ))
    }
    /// The same setting with read-only fields cleared.
    pub fn for_create(&self) -> Self {
        let kind = match &self.kind {
            SynchronizationSettingKind::ScheduleBased(p) => {
                SynchronizationSettingKind::ScheduleBased(
                    ScheduledSynchronizationSettingProperties {
                        recurrence_interval: p.recurrence_interval.clone(),
                        synchronization_time: p.synchronization_time,
                        extra: p.extra.clone(),
                        ..Default::default()
                    },
                )
            }
            other => other.clone(),
        };
        Self::new(kind)
    }
}

impl Default for ScheduledSynchronizationSettingProperties {
    fn default() -> Self {
        Self {
            recurrence_interval: RecurrenceInterval::Day,
            synchronization_time: OffsetDateTime::UNIX_EPOCH,
            provisioning_state: None,
            user_name: None,
            created_at: None,
            extra: Map::new(),
        }
    }
}

impl Default for ScheduledTriggerProperties {
    fn default() -> Self {
        Self {
            recurrence_interval: RecurrenceInterval::Day,
            synchronization_time: OffsetDateTime::UNIX_EPOCH,
            synchronization_mode: None,
            trigger_status: None,
            provisioning_state: None,
            user_name: None,
            created_at: None,
            extra: Map::new(),
        }
    }
}

impl Trigger {
    /// A `ScheduleBased` trigger body.
    pub fn schedule(
        interval: RecurrenceInterval,
        synchronization_time: OffsetDateTime,
        mode: Option<SynchronizationMode>,
    ) -> Self {
        Self::new(TriggerKind::ScheduleBased(ScheduledTriggerProperties {
            recurrence_interval: interval,
            synchronization_time,
            synchronization_mode: mode,
            ..Default::default()
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Invitations and subscriptions.

/// `InvitationProperties`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_active_directory_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_object_id: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub expiration_date: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_status: Option<InvitationStatus>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub responded_at: Option<OffsetDateTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub sent_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Who an invitation is addressed to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InvitationTarget {
    /// A person's Azure sign-in address (mail is sent).
    Email(String),
    /// A user or service principal in a tenant (no mail).
    Principal {
        tenant_id: String,
        object_id: String,
    },
}

/// A provider-side invitation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Invitation {
    #[serde(flatten)]
    pub meta: ResourceMeta,
    #[serde(default)]
    pub properties: InvitationProperties,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Invitation {
    /// A create body for the target, with an optional expiration date.
    pub fn new(target: &InvitationTarget, expiration_date: Option<OffsetDateTime>) -> Self {
        let mut p = InvitationProperties {
            expiration_date,
            ..Default::default()
        };
        match target {
            InvitationTarget::Email(e) => p.target_email = Some(e.clone()),
            InvitationTarget::Principal {
                tenant_id,
                object_id,
            } => {
                p.target_active_directory_id = Some(tenant_id.clone());
                p.target_object_id = Some(object_id.clone());
            }
        }
        Self {
            properties: p,
            ..Default::default()
        }
    }
    /// The target, when the body names one (email wins; a tenant without object id is
    /// `None`).
    pub fn target(&self) -> Option<InvitationTarget> {
        let p = &self.properties;
        if let Some(e) = &p.target_email {
            return Some(InvitationTarget::Email(e.clone()));
        }
        match (&p.target_active_directory_id, &p.target_object_id) {
            (Some(t), Some(o)) => Some(InvitationTarget::Principal {
                tenant_id: t.clone(),
                object_id: o.clone(),
            }),
            _ => None,
        }
    }
}

/// `ProviderShareSubscriptionProperties`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderShareSubscriptionProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_tenant_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub created_at: Option<OffsetDateTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub expiration_date: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub shared_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_subscription_object_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_subscription_status: Option<ShareSubscriptionStatus>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The provider's view of one consumer's subscription to a share.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProviderShareSubscription {
    #[serde(flatten)]
    pub meta: ResourceMeta,
    #[serde(default)]
    pub properties: ProviderShareSubscriptionProperties,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ProviderShareSubscription {
    /// The body of `ProviderShareSubscriptions_Adjust` / `_Reinstate`: only the (new)
    /// expiration date.
    pub fn expiration_body(expiration_date: Option<OffsetDateTime>) -> Self {
        Self {
            properties: ProviderShareSubscriptionProperties {
                expiration_date,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// One snapshot run made by a consumer (`Shares_ListSynchronizations`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareSynchronization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_tenant_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub end_time: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub start_time: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronization_mode: Option<SynchronizationMode>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One consumer-side snapshot run (`ShareSubscriptions_ListSynchronizations`,
/// `_Synchronize` result).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareSubscriptionSynchronization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub end_time: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub start_time: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default)]
    pub synchronization_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronization_mode: Option<SynchronizationMode>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Per-data-set detail of one snapshot run (`…_ListSynchronizationDetails`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SynchronizationDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub end_time: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_read: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_written: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_copied: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_read: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_read: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_written: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub start_time: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v_core: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Body of `ShareSubscriptions_Synchronize`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Synchronize {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronization_mode: Option<SynchronizationMode>,
}

/// `ConsumerInvitationProperties`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerInvitationProperties {
    #[serde(default)]
    pub invitation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub expiration_date: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_status: Option<InvitationStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_tenant_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub responded_at: Option<OffsetDateTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub sent_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An invitation as its recipient sees it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConsumerInvitation {
    #[serde(flatten)]
    pub meta: ResourceMeta,
    #[serde(default)]
    pub properties: ConsumerInvitationProperties,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ConsumerInvitation {
    /// The body of `ConsumerInvitations_RejectInvitation`.
    pub fn reject_body(invitation_id: &str) -> Self {
        Self {
            properties: ConsumerInvitationProperties {
                invitation_id: invitation_id.to_owned(),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// `ShareSubscriptionProperties`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareSubscriptionProperties {
    #[serde(default)]
    pub invitation_id: String,
    #[serde(default)]
    pub source_share_location: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub expiration_date: Option<OffsetDateTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "arm_time::option"
    )]
    pub created_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_tenant_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<ProvisioningState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_kind: Option<ShareKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_subscription_status: Option<ShareSubscriptionStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_terms: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A consumer's share subscription (created by accepting an invitation).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ShareSubscription {
    #[serde(flatten)]
    pub meta: ResourceMeta,
    #[serde(default)]
    pub properties: ShareSubscriptionProperties,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ShareSubscription {
    /// The create-from-invitation body (`ShareSubscriptions_Create` = accepting).
    pub fn from_invitation(
        invitation_id: &str,
        source_share_location: &str,
        expiration_date: Option<OffsetDateTime>,
    ) -> Self {
        Self {
            properties: ShareSubscriptionProperties {
                invitation_id: invitation_id.to_owned(),
                source_share_location: source_share_location.to_owned(),
                expiration_date,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// `ConsumerSourceDataSetProperties`: a provider data set a consumer can map.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerSourceDataSetProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A provider data set as the consumer sees it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConsumerSourceDataSet {
    #[serde(flatten)]
    pub meta: ResourceMeta,
    #[serde(default)]
    pub properties: ConsumerSourceDataSetProperties,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// ---------------------------------------------------------------------------------------------
// Generic ARM resources for readiness checks.

/// Any ARM resource read with `GET {id}?api-version=...` (storage account, SQL server, ...).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GenericResource {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub properties: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl GenericResource {
    /// `properties.provisioningState`, if present.
    pub fn provisioning_state(&self) -> Option<&str> {
        self.properties
            .get("provisioningState")
            .and_then(Value::as_str)
    }
}

/// `Microsoft.Authorization/roleAssignments` item.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RoleAssignment {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub resource_type: String,
    pub properties: RoleAssignmentProperties,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Properties of a role assignment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentProperties {
    /// Full id: `/subscriptions/S/providers/Microsoft.Authorization/roleDefinitions/{guid}`.
    pub role_definition_id: String,
    pub principal_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RoleAssignment {
    /// The role definition GUID (last segment of `roleDefinitionId`).
    pub fn role_definition_guid(&self) -> &str {
        self.properties
            .role_definition_id
            .rsplit('/')
            .next()
            .unwrap_or("")
    }
    /// Whether this assignment grants `role_guid` at `scope` or at a scope above it.
    pub fn grants(&self, role_guid: &str, scope: &ResourceId) -> bool {
        if !self.role_definition_guid().eq_ignore_ascii_case(role_guid) {
            return false;
        }
        if self.properties.scope == "/" {
            return true;
        }
        match ResourceId::parse(&self.properties.scope) {
            Ok(s) => scope.is_within(&s),
            Err(_) => false,
        }
    }
}

macro_rules! impl_name {
    ($($t:ty),+) => {$(
        impl $t {
            /// `name` from the envelope, if any.
            pub fn name(&self) -> Option<&str> {
                self.meta.name.as_deref()
            }
        }
    )+};
}
impl_name!(
    Account,
    Share,
    Invitation,
    ProviderShareSubscription,
    ConsumerInvitation,
    ShareSubscription,
    ConsumerSourceDataSet
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_an_unknown_data_set_kind_whole() {
        let v = json!({"kind": "FancyLake", "properties": {"a": 1, "dataSetId": "x"}, "id": "/i", "name": "n", "weird": true});
        let ds: DataSet = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(ds.kind_name(), "FancyLake");
        assert_eq!(ds.data_set_id(), Some("x"));
        assert!(ds.store().is_none());
        assert_eq!(ds.data_reader_role(), DataReaderRole::Unknown);
        assert_eq!(serde_json::to_value(&ds).unwrap(), v);
    }

    #[test]
    fn keeps_unknown_properties_of_a_known_kind() {
        let v = json!({"kind": "Container", "properties": {"containerName": "c", "subscriptionId": "s", "resourceGroup": "rg", "storageAccountName": "st", "futureFlag": [1,2]}});
        let ds: DataSet = serde_json::from_value(v.clone()).unwrap();
        assert!(matches!(ds.kind, DataSetKind::Container(_)));
        assert_eq!(serde_json::to_value(&ds).unwrap(), v);
    }

    #[test]
    fn rejects_a_data_set_without_kind() {
        let e = serde_json::from_value::<DataSet>(json!({"properties": {}})).unwrap_err();
        assert!(e.to_string().contains("missing `kind`"), "{e}");
    }

    #[test]
    fn rejects_a_blob_data_set_missing_a_required_property() {
        let e = serde_json::from_value::<DataSet>(
            json!({"kind": "Blob", "properties": {"containerName": "c"}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("Blob"), "{e}");
        assert!(e.to_string().contains("filePath"), "{e}");
    }

    #[test]
    fn storage_data_set_points_at_its_storage_account_and_can_be_repointed() {
        let ds: DataSet = serde_json::from_value(json!({"kind": "AdlsGen2Folder", "properties": {"fileSystem": "fs", "folderPath": "a/b", "subscriptionId": "s1", "resourceGroup": "rg1", "storageAccountName": "st1", "dataSetId": "g"}})).unwrap();
        let st = ds.store().unwrap();
        assert_eq!(st.kind, StoreKind::StorageAccount);
        assert_eq!(
            st.id.to_string(),
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/st1"
        );
        let target = ResourceId::parse(
            "/subscriptions/s2/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/st2",
        )
        .unwrap();
        let moved = ds.with_store(&target).unwrap();
        assert_eq!(moved.store().unwrap().id, target);
        assert_eq!(moved.data_set_id(), None);
        let DataSetKind::AdlsGen2Folder(p) = &moved.kind else {
            panic!("kind changed")
        };
        assert_eq!(p.folder_path, "a/b");
        let sql = ResourceId::parse(
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Sql/servers/x",
        )
        .unwrap();
        assert!(matches!(
            ds.with_store(&sql),
            Err(ModelError::WithStoreWrongType { .. })
        ));
        assert_eq!(
            ds.data_reader_role(),
            DataReaderRole::AzureRbac {
                role_definition_id: roles::STORAGE_BLOB_DATA_READER,
                role_name: "Storage Blob Data Reader"
            }
        );
    }

    #[test]
    fn synapse_and_kusto_data_sets_are_repointed_keeping_their_inner_path() {
        let ds: DataSet = serde_json::from_value(json!({"kind": "SynapseWorkspaceSqlPoolTable", "properties": {"synapseWorkspaceSqlPoolTableResourceId": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Synapse/workspaces/ws1/sqlPools/p/schemas/dbo/tables/t"}})).unwrap();
        let st = ds.store().unwrap();
        assert_eq!(st.kind, StoreKind::SynapseWorkspace);
        assert_eq!(st.database.as_deref(), Some("p"));
        let ws2 = ResourceId::parse(
            "/subscriptions/s/resourceGroups/r2/providers/Microsoft.Synapse/workspaces/ws2",
        )
        .unwrap();
        let moved = ds.with_store(&ws2).unwrap();
        let DataSetKind::SynapseWorkspaceSqlPoolTable(p) = &moved.kind else {
            panic!("kind changed")
        };
        assert_eq!(
            p.synapse_workspace_sql_pool_table_resource_id,
            "/subscriptions/s/resourceGroups/r2/providers/Microsoft.Synapse/workspaces/ws2/sqlPools/p/schemas/dbo/tables/t"
        );

        let k: DataSet = serde_json::from_value(json!({"kind": "KustoDatabase", "properties": {"kustoDatabaseResourceId": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Kusto/clusters/c1/databases/db"}})).unwrap();
        let c2 = ResourceId::parse(
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Kusto/clusters/c2",
        )
        .unwrap();
        let moved = k.with_store(&c2).unwrap();
        assert_eq!(
            moved.store().unwrap().id.to_string(),
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Kusto/clusters/c2/databases/db"
        );
    }

    #[test]
    fn adls_gen1_kinds_are_modelled_but_retired() {
        let ds: DataSet = serde_json::from_value(json!({"kind": "AdlsGen1File", "properties": {"accountName": "a", "folderPath": "f", "fileName": "x", "subscriptionId": "s", "resourceGroup": "r"}})).unwrap();
        assert!(ds.is_retired());
        assert_eq!(ds.data_reader_role(), DataReaderRole::Retired);
        assert_eq!(ds.store().unwrap().kind, StoreKind::DataLakeStoreGen1);
    }

    #[test]
    fn unknown_enum_values_are_kept() {
        let s: ShareSubscriptionStatus = serde_json::from_value(json!("Paused")).unwrap();
        assert_eq!(s, ShareSubscriptionStatus::Other("Paused".into()));
        assert_eq!(serde_json::to_value(&s).unwrap(), json!("Paused"));
        let s: OperationStatus = serde_json::from_value(json!("succeeded")).unwrap();
        assert!(s.is_terminal());
    }

    #[test]
    fn role_assignment_grants_at_or_above_scope() {
        let ra: RoleAssignment = serde_json::from_value(json!({"id": "/x", "name": "n", "type": "Microsoft.Authorization/roleAssignments", "properties": {"roleDefinitionId": "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1", "principalId": "p", "scope": "/subscriptions/s/resourceGroups/rg"}})).unwrap();
        let st = ResourceId::parse(
            "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/st",
        )
        .unwrap();
        assert!(ra.grants(roles::STORAGE_BLOB_DATA_READER, &st));
        assert!(!ra.grants(roles::CONTRIBUTOR, &st));
        let other = ResourceId::parse(
            "/subscriptions/s/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/st",
        )
        .unwrap();
        assert!(!ra.grants(roles::STORAGE_BLOB_DATA_READER, &other));
    }

    #[test]
    fn invitation_targets_encode_as_the_spec_says() {
        let inv = Invitation::new(
            &InvitationTarget::Principal {
                tenant_id: "t".into(),
                object_id: "o".into(),
            },
            None,
        );
        assert_eq!(
            serde_json::to_value(&inv).unwrap(),
            json!({"properties": {"targetActiveDirectoryId": "t", "targetObjectId": "o"}})
        );
        assert_eq!(
            inv.target(),
            Some(InvitationTarget::Principal {
                tenant_id: "t".into(),
                object_id: "o".into()
            })
        );
        let sub = ShareSubscription::from_invitation("g", "westeurope", None);
        assert_eq!(
            serde_json::to_value(&sub).unwrap(),
            json!({"properties": {"invitationId": "g", "sourceShareLocation": "westeurope"}})
        );
    }
}
