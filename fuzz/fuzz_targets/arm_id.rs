//! Fuzz target: ARM resource id parsing must never panic; an accepted id prints back to text that
//! parses to an equal id (same text), equality ignores ASCII case, and navigation never panics.
#![no_main]

use datashare_dr::arm::id::{
    AccountId, DataSetId, DataSetMappingId, InvitationId, ProviderShareSubscriptionId, ResourceId,
    ShareId, ShareSubscriptionId, SynchronizationSettingId, TriggerId,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = AccountId::parse(text);
    let _ = ShareId::parse(text);
    let _ = DataSetId::parse(text);
    let _ = InvitationId::parse(text);
    let _ = SynchronizationSettingId::parse(text);
    let _ = ProviderShareSubscriptionId::parse(text);
    let _ = ShareSubscriptionId::parse(text);
    let _ = DataSetMappingId::parse(text);
    let _ = TriggerId::parse(text);
    let id = match ResourceId::parse(text) {
        Ok(id) => id,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let printed = id.to_string();
    let again = ResourceId::parse(&printed)
        .unwrap_or_else(|e| panic!("printed id {printed:?} does not parse back: {e}"));
    assert_eq!(again, id);
    assert_eq!(again.to_string(), printed, "print is not stable");
    let upper = ResourceId::parse(&printed.to_ascii_uppercase())
        .unwrap_or_else(|e| panic!("upper-cased id does not parse: {e}"));
    let lower = ResourceId::parse(&printed.to_ascii_lowercase())
        .unwrap_or_else(|e| panic!("lower-cased id does not parse: {e}"));
    assert_eq!(upper, id);
    assert_eq!(lower, id);
    assert_eq!(upper.cmp(&lower), std::cmp::Ordering::Equal);
    let json = serde_json::to_string(&id).unwrap_or_default();
    let back: ResourceId = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("serde round trip of {printed:?} failed: {e}"));
    assert_eq!(back.as_str(), id.as_str());
    let _ = (
        id.subscription_id(),
        id.resource_group(),
        id.provider_namespace(),
    );
    let _ = (
        id.resource_type(),
        id.name(),
        id.location(),
        id.pairs().len(),
    );
    let mut cursor = Some(id.clone());
    let mut steps = 0;
    while let Some(c) = cursor {
        assert!(id.is_within(&c) || c == id || !id.as_str().is_empty());
        cursor = c.parent();
        steps += 1;
        assert!(steps <= id.pairs().len() + 1, "parent() does not terminate");
    }
    if let Some(scope) = id.subscription_scope() {
        assert!(
            id.is_within(&scope),
            "{id} is not within its own subscription {scope}"
        );
    }
});
