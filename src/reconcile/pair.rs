//! Glue between a configured pair (`config::dr::Pair`) and the pure planner's [`PairRules`].
//!
//! Job: translate the config's share selection, store mapping and invitation policies into
//! the trait the pure core speaks, and derive the planning options (prune, create account).
//! Must not import: `handlers`, IO.

use time::OffsetDateTime;

use crate::arm::id::ResourceId;
use crate::config::dr::{self, ConsumerTarget, Pair, PrunePolicy};

use super::diff::{InvitationPolicy, PairRules, PlanOptions};
use super::mapping::{StoreKind, StoreRules};
use super::model::Target;
use super::plan::AccountSpec;

/// A pair as [`PairRules`].
pub struct ConfiguredPair<'a>(pub &'a Pair);

impl StoreRules for ConfiguredPair<'_> {
    fn map_store(&self, kind: StoreKind, primary_store_id: &str) -> Option<String> {
        let kind = match kind {
            StoreKind::Storage => dr::StoreKind::Storage,
            StoreKind::Sql => dr::StoreKind::Sql,
            StoreKind::Synapse => dr::StoreKind::Synapse,
            StoreKind::Kusto => dr::StoreKind::Kusto,
        };
        let id = ResourceId::parse(primary_store_id).ok()?;
        self.0.map_store(kind, &id).map(|m| m.as_str().to_string())
    }
}

impl PairRules for ConfiguredPair<'_> {
    fn selects(&self, share: &str) -> bool {
        self.0.selects(share)
    }
    fn stores(&self) -> &dyn StoreRules {
        self
    }
    fn invitation_policy(&self, target: &Target) -> InvitationPolicy {
        let t = match target {
            Target::Email(e) => ConsumerTarget::Email(e.to_string()),
            Target::Tenant {
                tenant_id,
                object_id,
            } => ConsumerTarget::Aad {
                tenant_id: tenant_id.key().to_string(),
                object_id: object_id.key().to_string(),
            },
        };
        match self.0.invitation_policy_for(&t) {
            dr::InvitationPolicy::Now => InvitationPolicy::Now,
            dr::InvitationPolicy::AtFailover => InvitationPolicy::AtFailover,
        }
    }
}

/// Planning options for a pair: prune when asked on the command line or by `prune = "delete"`.
pub fn plan_options(pair: &Pair, prune_flag: bool, now: OffsetDateTime) -> PlanOptions {
    PlanOptions {
        prune: prune_flag || pair.prune == PrunePolicy::Delete,
        create_account: pair.create_secondary.as_ref().map(|c| AccountSpec {
            location: c.location.clone(),
            tags: c.tags.clone(),
        }),
        now,
    }
}
