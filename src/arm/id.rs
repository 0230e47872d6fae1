//! ARM resource ids: parse, print, compare and navigate.
//!
//! Job: turn strings such as
//! `/subscriptions/S/resourceGroups/rg/providers/Microsoft.DataShare/accounts/a/shares/s`
//! into values that can be compared (case-insensitively, as ARM does), hashed, navigated
//! (`share.account()`, `account.share("x")`) and printed back with their original casing.
//!
//! Invariants:
//! - A [`ResourceId`] always has an even number of non-empty path segments (key/value pairs),
//!   starts with `subscriptions` or `providers`, and every value is free of characters ARM
//!   forbids in names (`/ \ ? # % & < > :` `*`, whitespace, control characters).
//! - Equality, ordering and hashing use the lower-cased text; `Display` prints the original
//!   casing (normalised: no trailing slash).
//! - Typed ids (`AccountId`, `ShareId`, ...) are `Microsoft.DataShare` ids of exactly their
//!   type under one subscription and resource group; they can only be built through checks.
//!
//! Must not import anything else of this crate (the simulator uses it too).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The Data Share resource provider namespace.
pub const DATASHARE_NAMESPACE: &str = "Microsoft.DataShare";

/// Why a string is not an acceptable ARM resource id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text was empty.
    #[error("resource id is empty")]
    Empty,
    /// The text does not start with `/`.
    #[error("resource id `{id}` must start with `/`")]
    NoLeadingSlash { id: String },
    /// A key segment has no value after it (e.g. `.../shares` with no share name).
    #[error("resource id `{id}` is missing the name after `{segment}`")]
    MissingSegment { id: String, segment: String },
    /// Two slashes in a row, or an empty name.
    #[error("resource id `{id}` has an empty segment at position {position}")]
    EmptyName { id: String, position: usize },
    /// A name contains a character ARM does not allow.
    #[error("resource id `{id}`: segment `{segment}` contains the forbidden character {ch:?}")]
    BadCharacters {
        id: String,
        segment: String,
        ch: char,
    },
    /// The id does not start with `subscriptions` or `providers`, or a scope segment
    /// (`resourceGroups`, `providers`) is out of place.
    #[error("resource id `{id}` has an unexpected segment `{found}` where {expected} was expected")]
    UnexpectedSegment {
        id: String,
        found: String,
        expected: &'static str,
    },
    /// The id parses but names a different kind of resource.
    #[error("resource id `{id}` is a `{found}`, expected a `{expected}`")]
    WrongType {
        id: String,
        expected: String,
        found: String,
    },
    /// A typed id needs a subscription and a resource group.
    #[error("resource id `{id}` has no {missing} (a `{expected}` lives in a resource group)")]
    MissingScope {
        id: String,
        missing: &'static str,
        expected: String,
    },
}

const FORBIDDEN: &[char] = &['\\', '?', '#', '%', '&', '<', '>', ':', '*', '"', '|'];

fn check_name(id: &str, segment: &str, position: usize) -> Result<(), IdError> {
    if segment.is_empty() {
        return Err(IdError::EmptyName {
            id: id.to_owned(),
            position,
        });
    }
    if let Some(ch) = segment
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || FORBIDDEN.contains(c) || *c == '/')
    {
        return Err(IdError::BadCharacters {
            id: id.to_owned(),
            segment: segment.to_owned(),
            ch,
        });
    }
    Ok(())
}

/// Any ARM resource id (subscription, resource group, provider resource, nested or extension
/// resource, tenant-level provider resource).
#[derive(Clone)]
pub struct ResourceId {
    /// Normalised original-casing text.
    text: String,
    /// Lower-cased `text`, used for comparisons.
    key: String,
    /// Key/value pairs, original casing.
    pairs: Vec<(String, String)>,
}

impl ResourceId {
    /// Parses an ARM id. A single trailing `/` is tolerated and dropped.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        let Some(rest) = s.strip_prefix('/') else {
            return Err(IdError::NoLeadingSlash { id: s.to_owned() });
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(IdError::Empty);
        }
        let segs: Vec<&str> = rest.split('/').collect();
        for (i, seg) in segs.iter().enumerate() {
            check_name(s, seg, i)?;
        }
        if segs.len() % 2 == 1 {
            let last = segs.last().map(|x| (*x).to_owned()).unwrap_or_default();
            return Err(IdError::MissingSegment {
                id: s.to_owned(),
                segment: last,
            });
        }
        let pairs: Vec<(String, String)> = segs
            .chunks(2)
            .map(|c| (c[0].to_owned(), c[1].to_owned()))
            .collect();
        Self::from_pairs(s, pairs)
    }

    fn from_pairs(original: &str, pairs: Vec<(String, String)>) -> Result<Self, IdError> {
        // Structure: [subscriptions/S [resourceGroups/RG]] (providers/NS (type/name)+)*
        let mut i = 0;
        let first = pairs.first().map(|p| p.0.as_str()).unwrap_or("");
        if first.eq_ignore_ascii_case("subscriptions") {
            i = 1;
            if pairs
                .get(1)
                .is_some_and(|p| p.0.eq_ignore_ascii_case("resourceGroups"))
            {
                i = 2;
            }
        } else if !first.eq_ignore_ascii_case("providers") {
            return Err(IdError::UnexpectedSegment {
                id: original.to_owned(),
                found: first.to_owned(),
                expected: "`subscriptions` or `providers`",
            });
        }
        let mut after_provider = false;
        while i < pairs.len() {
            let k = &pairs[i].0;
            if k.eq_ignore_ascii_case("providers") {
                // a provider namespace must be followed by at least one type/name pair
                if pairs
                    .get(i + 1)
                    .is_none_or(|p| p.0.eq_ignore_ascii_case("providers"))
                {
                    return Err(IdError::MissingSegment {
                        id: original.to_owned(),
                        segment: format!("providers/{}", pairs[i].1),
                    });
                }
                after_provider = true;
            } else if !after_provider
                || k.eq_ignore_ascii_case("subscriptions")
                || k.eq_ignore_ascii_case("resourceGroups")
            {
                return Err(IdError::UnexpectedSegment {
                    id: original.to_owned(),
                    found: k.clone(),
                    expected: "`providers`",
                });
            }
            i += 1;
        }
        let mut text = String::new();
        for (k, v) in &pairs {
            text.push('/');
            text.push_str(k);
            text.push('/');
            text.push_str(v);
        }
        let key = text.to_ascii_lowercase();
        Ok(Self { text, key, pairs })
    }

    /// `/subscriptions/{sub}`.
    pub fn subscription(subscription_id: &str) -> Result<Self, IdError> {
        Self::parse(&format!("/subscriptions/{subscription_id}"))
    }

    /// `/subscriptions/{sub}/resourceGroups/{rg}`.
    pub fn resource_group_id(subscription_id: &str, resource_group: &str) -> Result<Self, IdError> {
        Self::parse(&format!(
            "/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        ))
    }

    /// `/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}`;
    /// `resource_type` may be nested (`servers/databases`) and then `name` must have as many
    /// `/`-separated parts.
    pub fn provider_resource(
        subscription_id: &str,
        resource_group: &str,
        namespace: &str,
        resource_type: &str,
        name: &str,
    ) -> Result<Self, IdError> {
        let types: Vec<&str> = resource_type.split('/').collect();
        let names: Vec<&str> = name.split('/').collect();
        let mut s = format!(
            "/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{namespace}"
        );
        if types.len() != names.len() {
            return Err(IdError::MissingSegment {
                id: format!("{s}/{resource_type}/{name}"),
                segment: resource_type.to_owned(),
            });
        }
        for (t, n) in types.iter().zip(names) {
            s.push('/');
            s.push_str(t);
            s.push('/');
            s.push_str(n);
        }
        Self::parse(&s)
    }

    /// A child: this id plus `/{child_type}/{name}`.
    pub fn child(&self, child_type: &str, name: &str) -> Result<Self, IdError> {
        Self::parse(&format!("{}/{child_type}/{name}", self.text))
    }

    /// The id as text, original casing.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Key/value segment pairs in original casing.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    fn value_of(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The subscription id, if the id is under a subscription.
    pub fn subscription_id(&self) -> Option<&str> {
        if self
            .pairs
            .first()
            .is_some_and(|p| p.0.eq_ignore_ascii_case("subscriptions"))
        {
            self.pairs.first().map(|p| p.1.as_str())
        } else {
            None
        }
    }

    /// The resource group name, if any.
    pub fn resource_group(&self) -> Option<&str> {
        self.subscription_id()?;
        self.pairs
            .get(1)
            .filter(|p| p.0.eq_ignore_ascii_case("resourceGroups"))
            .map(|p| p.1.as_str())
    }

    fn last_provider_index(&self) -> Option<usize> {
        self.pairs
            .iter()
            .rposition(|(k, _)| k.eq_ignore_ascii_case("providers"))
    }

    /// Namespace of the innermost provider (`Microsoft.Storage`), if the id is a provider
    /// resource.
    pub fn provider_namespace(&self) -> Option<&str> {
        self.last_provider_index().map(|i| self.pairs[i].1.as_str())
    }

    /// ARM resource type: `Microsoft.Storage/storageAccounts`,
    /// `Microsoft.DataShare/accounts/shares`, or `Microsoft.Resources/subscriptions`,
    /// `Microsoft.Resources/resourceGroups` for scope ids.
    pub fn resource_type(&self) -> String {
        match self.last_provider_index() {
            Some(i) => {
                let mut t = self.pairs[i].1.clone();
                for (k, _) in &self.pairs[i + 1..] {
                    t.push('/');
                    t.push_str(k);
                }
                t
            }
            None if self.resource_group().is_some() => "Microsoft.Resources/resourceGroups".into(),
            None => "Microsoft.Resources/subscriptions".into(),
        }
    }

    /// Whether the resource type equals `t` (case-insensitive).
    pub fn is_type(&self, t: &str) -> bool {
        self.resource_type().eq_ignore_ascii_case(t)
    }

    /// The last name in the id (resource name, resource group name or subscription id).
    pub fn name(&self) -> &str {
        self.pairs.last().map(|p| p.1.as_str()).unwrap_or("")
    }

    /// The value after the last occurrence of the given type key, e.g. `"accounts"`.
    pub fn name_of(&self, type_key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(type_key))
            .map(|(_, v)| v.as_str())
    }

    /// The parent id (drops the last pair, and a dangling `providers/NS` pair).
    pub fn parent(&self) -> Option<Self> {
        let mut pairs = self.pairs.clone();
        pairs.pop()?;
        if pairs
            .last()
            .is_some_and(|p| p.0.eq_ignore_ascii_case("providers"))
        {
            pairs.pop();
        }
        if pairs.is_empty() {
            return None;
        }
        Self::from_pairs(&self.text, pairs).ok()
    }

    /// The subscription-level scope of this id (`/subscriptions/S`), if any.
    pub fn subscription_scope(&self) -> Option<Self> {
        let s = self.subscription_id()?;
        Self::subscription(s).ok()
    }

    /// Whether `self` equals `other` or lies under it (case-insensitive prefix on segments).
    pub fn is_within(&self, scope: &ResourceId) -> bool {
        self.key == scope.key || self.key.starts_with(&format!("{}/", scope.key))
    }

    /// `location` segment of tenant-level ids like
    /// `/providers/Microsoft.DataShare/locations/{location}/consumerInvitations/{id}`.
    pub fn location(&self) -> Option<&str> {
        self.value_of("locations")
    }
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for ResourceId {}
impl Hash for ResourceId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}
impl PartialOrd for ResourceId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ResourceId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}
impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceId({})", self.text)
    }
}
impl FromStr for ResourceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
impl AsRef<str> for ResourceId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}
impl Serialize for ResourceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}
impl<'de> Deserialize<'de> for ResourceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Checks that `id` is a Data Share resource of exactly the given type chain under a resource
/// group.
fn check_datashare(id: &ResourceId, types: &[&str]) -> Result<(), IdError> {
    let expected = format!("{DATASHARE_NAMESPACE}/{}", types.join("/"));
    if id.subscription_id().is_none() {
        return Err(IdError::MissingScope {
            id: id.text.clone(),
            missing: "subscription",
            expected,
        });
    }
    if id.resource_group().is_none() {
        return Err(IdError::MissingScope {
            id: id.text.clone(),
            missing: "resource group",
            expected,
        });
    }
    let providers = id
        .pairs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("providers"))
        .count();
    if providers != 1 || !id.is_type(&expected) {
        return Err(IdError::WrongType {
            id: id.text.clone(),
            expected,
            found: id.resource_type(),
        });
    }
    Ok(())
}

macro_rules! datashare_id {
    ($(#[$doc:meta])* $name:ident, [$($t:literal),+]) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(ResourceId);

        impl $name {
            /// Resource type path under the provider, e.g. `["accounts", "shares"]`.
            pub const TYPES: &'static [&'static str] = &[$($t),+];
            /// Full ARM type string.
            pub fn arm_type() -> String {
                format!("{}/{}", DATASHARE_NAMESPACE, Self::TYPES.join("/"))
            }
            /// Parses and checks the id.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let id = ResourceId::parse(s)?;
                Self::try_from(id)
            }
            /// The id as text, original casing.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
            /// The untyped id.
            pub fn as_resource_id(&self) -> &ResourceId {
                &self.0
            }
            /// Consumes into the untyped id.
            pub fn into_resource_id(self) -> ResourceId {
                self.0
            }
            /// Subscription id.
            pub fn subscription_id(&self) -> &str {
                self.0.subscription_id().unwrap_or("")
            }
            /// Resource group name.
            pub fn resource_group(&self) -> &str {
                self.0.resource_group().unwrap_or("")
            }
            /// The resource's own name (last segment).
            pub fn name(&self) -> &str {
                self.0.name()
            }
            /// The Data Share account name.
            pub fn account_name(&self) -> &str {
                self.0.name_of("accounts").unwrap_or("")
            }
        }
        impl Unchecked for $name {
            fn unchecked(id: ResourceId) -> Self {
                Self(id)
            }
        }
        impl TryFrom<ResourceId> for $name {
            type Error = IdError;
            fn try_from(id: ResourceId) -> Result<Self, IdError> {
                check_datashare(&id, Self::TYPES)?;
                Ok(Self(id))
            }
        }
        impl From<$name> for ResourceId {
            fn from(v: $name) -> ResourceId {
                v.0
            }
        }
        impl AsRef<ResourceId> for $name {
            fn as_ref(&self) -> &ResourceId {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.as_str())
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

datashare_id!(
    /// `.../providers/Microsoft.DataShare/accounts/{account}`
    AccountId, ["accounts"]);
datashare_id!(
    /// `{account}/shares/{share}`
    ShareId, ["accounts", "shares"]);
datashare_id!(
    /// `{account}/shares/{share}/dataSets/{dataSet}`
    DataSetId, ["accounts", "shares", "dataSets"]);
datashare_id!(
    /// `{account}/shares/{share}/invitations/{invitation}`
    InvitationId, ["accounts", "shares", "invitations"]);
datashare_id!(
    /// `{account}/shares/{share}/synchronizationSettings/{setting}`
    SynchronizationSettingId, ["accounts", "shares", "synchronizationSettings"]);
datashare_id!(
    /// `{account}/shares/{share}/providerShareSubscriptions/{guid}`
    ProviderShareSubscriptionId, ["accounts", "shares", "providerShareSubscriptions"]);
datashare_id!(
    /// `{account}/shareSubscriptions/{shareSubscription}`
    ShareSubscriptionId, ["accounts", "shareSubscriptions"]);
datashare_id!(
    /// `{account}/shareSubscriptions/{shareSubscription}/dataSetMappings/{mapping}`
    DataSetMappingId, ["accounts", "shareSubscriptions", "dataSetMappings"]);
datashare_id!(
    /// `{account}/shareSubscriptions/{shareSubscription}/triggers/{trigger}`
    TriggerId, ["accounts", "shareSubscriptions", "triggers"]);

fn typed_child<T: TryFrom<ResourceId, Error = IdError>>(
    parent: &ResourceId,
    child_type: &str,
    name: &str,
) -> Result<T, IdError> {
    let id = parent.child(child_type, name)?;
    if id.pairs.len() != parent.pairs.len() + 1 {
        // `name` contained a `/` that split into extra segments
        return Err(IdError::BadCharacters {
            id: id.text.clone(),
            segment: name.to_owned(),
            ch: '/',
        });
    }
    T::try_from(id)
}

fn typed_parent<T: Unchecked>(id: &ResourceId) -> T {
    // A checked typed id's parent is always a valid id of the parent type (its pairs are a
    // prefix of a checked id), so no re-check is needed.
    T::unchecked(id.parent().unwrap_or_else(|| id.clone()))
}

/// Internal: wrap an id already known to be of the right type.
trait Unchecked {
    fn unchecked(id: ResourceId) -> Self;
}

impl AccountId {
    /// Builds `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DataShare/accounts/{name}`.
    pub fn new(subscription_id: &str, resource_group: &str, name: &str) -> Result<Self, IdError> {
        let id = ResourceId::provider_resource(
            subscription_id,
            resource_group,
            DATASHARE_NAMESPACE,
            "accounts",
            name,
        )?;
        Self::try_from(id)
    }
    /// A share of this account.
    pub fn share(&self, name: &str) -> Result<ShareId, IdError> {
        typed_child(&self.0, "shares", name)
    }
    /// A (consumer-side) share subscription of this account.
    pub fn share_subscription(&self, name: &str) -> Result<ShareSubscriptionId, IdError> {
        typed_child(&self.0, "shareSubscriptions", name)
    }
    /// The resource group id that holds the account.
    pub fn resource_group_id(&self) -> ResourceId {
        self.0
            .parent()
            .and_then(|p| p.parent())
            .unwrap_or_else(|| self.0.clone())
    }
}

impl ShareId {
    /// The account that holds this share.
    pub fn account(&self) -> AccountId {
        typed_parent(&self.0)
    }
    /// Share name.
    pub fn share_name(&self) -> &str {
        self.name()
    }
    /// A data set of this share.
    pub fn data_set(&self, name: &str) -> Result<DataSetId, IdError> {
        typed_child(&self.0, "dataSets", name)
    }
    /// An invitation of this share.
    pub fn invitation(&self, name: &str) -> Result<InvitationId, IdError> {
        typed_child(&self.0, "invitations", name)
    }
    /// A synchronization setting of this share.
    pub fn synchronization_setting(&self, name: &str) -> Result<SynchronizationSettingId, IdError> {
        typed_child(&self.0, "synchronizationSettings", name)
    }
    /// A provider share subscription (consumer) of this share.
    pub fn provider_share_subscription(
        &self,
        name: &str,
    ) -> Result<ProviderShareSubscriptionId, IdError> {
        typed_child(&self.0, "providerShareSubscriptions", name)
    }
}

macro_rules! share_child {
    ($name:ident) => {
        impl $name {
            /// The share this resource belongs to.
            pub fn share(&self) -> ShareId {
                typed_parent(&self.0)
            }
            /// The account this resource belongs to.
            pub fn account(&self) -> AccountId {
                self.share().account()
            }
            /// Share name.
            pub fn share_name(&self) -> &str {
                self.0.name_of("shares").unwrap_or("")
            }
        }
    };
}
share_child!(DataSetId);
share_child!(InvitationId);
share_child!(SynchronizationSettingId);
share_child!(ProviderShareSubscriptionId);

impl ShareSubscriptionId {
    /// The (consumer) account holding this share subscription.
    pub fn account(&self) -> AccountId {
        typed_parent(&self.0)
    }
    /// A data set mapping of this share subscription.
    pub fn data_set_mapping(&self, name: &str) -> Result<DataSetMappingId, IdError> {
        typed_child(&self.0, "dataSetMappings", name)
    }
    /// A trigger of this share subscription.
    pub fn trigger(&self, name: &str) -> Result<TriggerId, IdError> {
        typed_child(&self.0, "triggers", name)
    }
}

macro_rules! subscription_child {
    ($name:ident) => {
        impl $name {
            /// The share subscription this resource belongs to.
            pub fn share_subscription(&self) -> ShareSubscriptionId {
                typed_parent(&self.0)
            }
            /// The account this resource belongs to.
            pub fn account(&self) -> AccountId {
                self.share_subscription().account()
            }
            /// Share subscription name.
            pub fn share_subscription_name(&self) -> &str {
                self.0.name_of("shareSubscriptions").unwrap_or("")
            }
        }
    };
}
subscription_child!(DataSetMappingId);
subscription_child!(TriggerId);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const ACCT: &str = "/subscriptions/433a8dfd-e5d5-4e77-ad86-90acdc75eb1a/resourceGroups/rg-weu/providers/Microsoft.DataShare/accounts/sales-weu";

    #[test]
    fn parses_and_navigates_a_share_id() {
        let share = ShareId::parse(&format!("{ACCT}/shares/Orders")).unwrap();
        assert_eq!(share.name(), "Orders");
        assert_eq!(share.account_name(), "sales-weu");
        assert_eq!(
            share.subscription_id(),
            "433a8dfd-e5d5-4e77-ad86-90acdc75eb1a"
        );
        assert_eq!(share.resource_group(), "rg-weu");
        assert_eq!(share.account().as_str(), ACCT);
        let ds = share.data_set("ds1").unwrap();
        assert_eq!(ds.share(), share);
        assert_eq!(ds.account().as_str(), ACCT);
        assert_eq!(ds.to_string(), format!("{ACCT}/shares/Orders/dataSets/ds1"));
        assert_eq!(
            ds.as_resource_id().resource_type(),
            "Microsoft.DataShare/accounts/shares/dataSets"
        );
    }

    #[test]
    fn compares_case_insensitively_but_prints_original_casing() {
        let a = ShareId::parse(&format!("{ACCT}/shares/Orders")).unwrap();
        let b = ShareId::parse(&format!("{}/SHARES/orders", ACCT.to_uppercase())).unwrap();
        assert_eq!(a, b);
        let set: HashSet<_> = [a.clone(), b.clone()].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert!(a.to_string().ends_with("/shares/Orders"));
        assert!(b.to_string().ends_with("/SHARES/orders"));
    }

    #[test]
    fn rejects_a_share_id_given_for_an_account() {
        let e = AccountId::parse(&format!("{ACCT}/shares/x")).unwrap_err();
        assert!(matches!(e, IdError::WrongType { .. }), "{e}");
        assert!(
            e.to_string().contains("Microsoft.DataShare/accounts"),
            "{e}"
        );
    }

    #[test]
    fn rejects_a_storage_account_given_for_an_account() {
        let e = AccountId::parse(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("Microsoft.Storage/storageAccounts"),
            "{e}"
        );
    }

    #[test]
    fn rejects_a_missing_name() {
        let e = ShareId::parse(&format!("{ACCT}/shares")).unwrap_err();
        assert!(
            matches!(e, IdError::MissingSegment { ref segment, .. } if segment == "shares"),
            "{e}"
        );
        assert!(e.to_string().contains("missing the name after `shares`"));
    }

    #[test]
    fn rejects_an_empty_name() {
        let e = ShareId::parse(&format!("{ACCT}/shares//dataSets/x")).unwrap_err();
        assert!(matches!(e, IdError::EmptyName { .. }), "{e}");
    }

    #[test]
    fn rejects_bad_characters() {
        let e = ShareId::parse(&format!("{ACCT}/shares/a b")).unwrap_err();
        assert!(matches!(e, IdError::BadCharacters { ch: ' ', .. }), "{e}");
        let e = ResourceId::parse(&format!("{ACCT}/shares/a?x")).unwrap_err();
        assert!(matches!(e, IdError::BadCharacters { ch: '?', .. }), "{e}");
        let acct = AccountId::parse(ACCT).unwrap();
        assert!(acct.share("a/b").is_err());
        assert!(acct.share("").is_err());
    }

    #[test]
    fn rejects_ids_without_leading_slash_or_scope() {
        assert!(matches!(
            ResourceId::parse("subscriptions/x"),
            Err(IdError::NoLeadingSlash { .. })
        ));
        assert!(matches!(ResourceId::parse(""), Err(IdError::Empty)));
        assert!(matches!(ResourceId::parse("/"), Err(IdError::Empty)));
        assert!(matches!(
            ResourceId::parse("/foo/bar"),
            Err(IdError::UnexpectedSegment { .. })
        ));
        let e = AccountId::parse("/subscriptions/s/providers/Microsoft.DataShare/accounts/a")
            .unwrap_err();
        assert!(
            matches!(
                e,
                IdError::MissingScope {
                    missing: "resource group",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn generic_ids_cover_stores_role_assignments_and_tenant_level_resources() {
        let ra = ResourceId::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st/providers/Microsoft.Authorization/roleAssignments/abc").unwrap();
        assert_eq!(
            ra.resource_type(),
            "Microsoft.Authorization/roleAssignments"
        );
        assert_eq!(
            ra.parent().unwrap().resource_type(),
            "Microsoft.Storage/storageAccounts"
        );
        let st = ResourceId::parse(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st",
        )
        .unwrap();
        assert!(ra.is_within(&st));
        assert!(!st.is_within(&ra));
        let inv = ResourceId::parse(
            "/providers/Microsoft.DataShare/locations/westeurope/consumerInvitations/g",
        )
        .unwrap();
        assert_eq!(inv.location(), Some("westeurope"));
        assert_eq!(inv.subscription_id(), None);
        let db = ResourceId::provider_resource(
            "s",
            "rg",
            "Microsoft.Sql",
            "servers/databases",
            "srv/db",
        )
        .unwrap();
        assert_eq!(
            db.to_string(),
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/srv/databases/db"
        );
        assert_eq!(db.parent().unwrap().name(), "srv");
        let rg = ResourceId::resource_group_id("s", "rg").unwrap();
        assert_eq!(rg.resource_type(), "Microsoft.Resources/resourceGroups");
        assert_eq!(rg.parent().unwrap(), ResourceId::subscription("S").unwrap());
    }

    #[test]
    fn serde_uses_plain_strings_and_reports_bad_ids() {
        let id = ShareId::parse(&format!("{ACCT}/shares/Orders")).unwrap();
        let j = serde_json::to_string(&id).unwrap();
        assert_eq!(j, format!("\"{ACCT}/shares/Orders\""));
        let back: ShareId = serde_json::from_str(&j).unwrap();
        assert_eq!(back, id);
        let err = serde_json::from_str::<ShareId>(&format!("\"{ACCT}\"")).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a `Microsoft.DataShare/accounts/shares`"),
            "{err}"
        );
    }

    #[test]
    fn consumer_side_ids_navigate() {
        let acct = AccountId::new("s", "rg", "consumer").unwrap();
        let sub = acct.share_subscription("sub1").unwrap();
        let t = sub.trigger("t1").unwrap();
        assert_eq!(t.share_subscription(), sub);
        assert_eq!(t.account(), acct);
        assert_eq!(t.share_subscription_name(), "sub1");
        let m = sub.data_set_mapping("m").unwrap();
        assert_eq!(
            m.as_resource_id().resource_type(),
            "Microsoft.DataShare/accounts/shareSubscriptions/dataSetMappings"
        );
        assert!(TriggerId::parse(m.as_str()).is_err());
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9._()-]{0,20}"
    }

    proptest! {
        #[test]
        fn parse_print_round_trips(sub in name_strategy(), rg in name_strategy(), acct in name_strategy(), share in name_strategy(), ds in name_strategy()) {
            let id = AccountId::new(&sub, &rg, &acct).unwrap().share(&share).unwrap().data_set(&ds).unwrap();
            let text = id.to_string();
            let back = DataSetId::parse(&text).unwrap();
            prop_assert_eq!(back.to_string(), text.clone());
            prop_assert_eq!(back.name(), ds.as_str());
            prop_assert_eq!(back.share_name(), share.as_str());
            prop_assert_eq!(back.account_name(), acct.as_str());
            prop_assert_eq!(back.resource_group(), rg.as_str());
            prop_assert_eq!(back.subscription_id(), sub.as_str());
            let generic = ResourceId::parse(&text).unwrap();
            prop_assert_eq!(generic.as_str(), text.as_str());
        }

        #[test]
        fn case_changes_do_not_change_identity(sub in name_strategy(), rg in name_strategy(), acct in name_strategy(), share in name_strategy(), flips in proptest::collection::vec(any::<bool>(), 0..200)) {
            let id = AccountId::new(&sub, &rg, &acct).unwrap().share(&share).unwrap();
            let text: String = id.to_string().chars().enumerate().map(|(i, c)| {
                if flips.get(i).copied().unwrap_or(false) {
                    if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }
                } else { c }
            }).collect();
            let other = ShareId::parse(&text).unwrap();
            prop_assert_eq!(&other, &id);
            prop_assert_eq!(other.to_string(), text);
            use std::hash::BuildHasher;
            let h = std::collections::hash_map::RandomState::new();
            prop_assert_eq!(h.hash_one(&other), h.hash_one(&id));
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,80}") {
            let _ = ResourceId::parse(&s);
            let _ = ShareId::parse(&s);
        }
    }
}
