//! OBSERVE: read a Data Share account with the fewest ARM reads — lists only.
//!
//! Reads per account: `Shares_ListByAccount` (plus `Accounts_Get`, sent alongside it, only when
//! [`ObserveOptions::read_account`] asks for it: readiness needs the account's provisioning
//! state and identity, replication does not), then per selected share, concurrently,
//! `DataSets_ListByShare`, `SynchronizationSettings_ListByShare`, `Invitations_ListByShare` and
//! `ProviderShareSubscriptions_ListByShare`. Never a per-item GET that a list already answers.
//! Shares are observed `concurrency` at a time (and the client's own limiter and concurrency
//! cap apply underneath).
//!
//! **Reuse (readiness):** [`observe_account`] returns the raw ARM lists
//! ([`AccountObservation`], with per-share [`ShareLists`]) — the same value replication
//! normalises with [`AccountObservation::model`]. A missing account (404) is a state
//! ([`AccountObservation::Missing`]), not an error; any other failure is an [`ObserveError`]
//! naming the read and the resource (readiness maps it to "unreachable").
//!
//! Guarantees: a share deleted between the share list and its item lists (404 on those) is left
//! out rather than failing the observation. A *primary* that does not exist is an error for
//! replication ([`observe_pair`]): planning against an empty primary would read as "delete
//! everything" under prune.
//!
//! Must not import: `handlers`, `host`.

use futures::StreamExt;

use crate::arm::client::ArmClient;
use crate::arm::error::ArmError;
use crate::arm::id::{AccountId, ShareId};
use crate::arm::models::Account;

use super::convert::{ShareLists, normalise_share};
use super::model::AccountModel;
use super::plan::Finding;

/// Errors of the observe step (one per failed read).
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("reading account {account}")]
    GetAccount {
        account: String,
        #[source]
        source: ArmError,
    },
    #[error("listing the shares of account {account}")]
    ListShares {
        account: String,
        #[source]
        source: ArmError,
    },
    #[error("listing the {what} of share {share}")]
    ListShareItems {
        share: String,
        what: &'static str,
        #[source]
        source: ArmError,
    },
    #[error("share {name:?} listed under account {account} has an invalid name")]
    BadShareName {
        account: String,
        name: String,
        #[source]
        source: crate::arm::id::IdError,
    },
    #[error("the primary account {account} does not exist; nothing to replicate from")]
    PrimaryMissing { account: String },
}

impl ObserveError {
    /// The ARM error underneath, when there is one.
    pub fn arm(&self) -> Option<&ArmError> {
        match self {
            ObserveError::GetAccount { source, .. }
            | ObserveError::ListShares { source, .. }
            | ObserveError::ListShareItems { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// How to observe.
#[derive(Debug, Clone, Copy)]
pub struct ObserveOptions {
    /// Shares observed at once.
    pub concurrency: usize,
    /// Also `Accounts_Get` (readiness: provisioning state, identity). Replication leaves it off.
    pub read_account: bool,
}

impl Default for ObserveOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            read_account: false,
        }
    }
}

/// One Data Share account as ARM listed it.
// One value per observed account: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum AccountObservation {
    /// The account does not exist (404).
    Missing,
    /// The account exists.
    Present {
        /// `Accounts_Get`, when [`ObserveOptions::read_account`] was set.
        account: Option<Account>,
        /// The selected shares with their lists, in the order ARM listed them.
        shares: Vec<ShareLists>,
    },
}

impl AccountObservation {
    /// The normalised model (`None` when missing) plus findings about what could not be
    /// modelled.
    pub fn model(&self) -> (Option<AccountModel>, Vec<Finding>) {
        match self {
            AccountObservation::Missing => (None, Vec::new()),
            AccountObservation::Present { shares, .. } => {
                let mut findings = Vec::new();
                let mut m = AccountModel::default();
                for s in shares {
                    let Some(name) = s.share.meta.name.as_deref() else {
                        continue;
                    };
                    let share = normalise_share(name, s, &mut findings);
                    m.shares.insert(name.into(), share);
                }
                (Some(m), findings)
            }
        }
    }
}

/// Both sides of a pair.
#[derive(Debug, Clone, PartialEq)]
pub struct PairObservation {
    pub primary: AccountObservation,
    pub secondary: AccountObservation,
}

async fn list_share(
    client: &ArmClient,
    id: ShareId,
    share: crate::arm::models::Share,
) -> Result<Option<ShareLists>, ObserveError> {
    let (datasets, settings, invitations, subscriptions) = futures::join!(
        client.list_datasets(&id),
        client.list_synchronization_settings(&id),
        client.list_invitations(&id),
        client.list_provider_share_subscriptions(&id),
    );
    // A share deleted meanwhile: every list answers 404. Leave it out.
    fn gone<T>(r: &Result<T, ArmError>) -> bool {
        matches!(r, Err(e) if e.is_not_found())
    }
    if gone(&datasets) && gone(&settings) && gone(&invitations) && gone(&subscriptions) {
        return Ok(None);
    }
    let wrap = |what: &'static str| {
        let share = id.to_string();
        move |source| ObserveError::ListShareItems {
            share,
            what,
            source,
        }
    };
    Ok(Some(ShareLists {
        share,
        datasets: datasets.map_err(wrap("data sets"))?,
        sync_settings: settings.map_err(wrap("synchronization settings"))?,
        invitations: invitations.map_err(wrap("invitations"))?,
        subscriptions: subscriptions.map_err(wrap("provider share subscriptions"))?,
    }))
}

/// Observe one account: its shares that `selects` accepts, each with its four lists.
pub async fn observe_account(
    client: &ArmClient,
    id: &AccountId,
    selects: &(dyn Fn(&str) -> bool + Sync),
    opts: &ObserveOptions,
) -> Result<AccountObservation, ObserveError> {
    // The account GET and the share listing do not depend on each other: sent together.
    let (account, shares) = if opts.read_account {
        let (a, s) = futures::join!(client.get_account(id), client.list_shares(id));
        (Some(a), s)
    } else {
        (None, client.list_shares(id).await)
    };
    // Only an ARM 404 naming the account (or its resource group) means it is gone; any other
    // 404 is the tool's fault (a wrong endpoint), not a missing account (`arm::fault`).
    let gone = |e: &ArmError| {
        crate::arm::fault::classify(e) == crate::arm::fault::Failure::ResourceMissing
    };
    if account
        .as_ref()
        .is_some_and(|a| a.as_ref().err().is_some_and(gone))
        || shares.as_ref().err().is_some_and(gone)
    {
        return Ok(AccountObservation::Missing);
    }
    let account = match account.transpose() {
        Ok(a) => a,
        Err(source) => {
            return Err(ObserveError::GetAccount {
                account: id.to_string(),
                source,
            });
        }
    };
    let shares = shares.map_err(|source| ObserveError::ListShares {
        account: id.to_string(),
        source,
    })?;
    let mut selected = Vec::new();
    for s in shares {
        let Some(name) = s.meta.name.clone() else {
            continue;
        };
        if !selects(&name) {
            continue;
        }
        let sid = id
            .share(&name)
            .map_err(|source| ObserveError::BadShareName {
                account: id.to_string(),
                name: name.clone(),
                source,
            })?;
        selected.push((sid, s));
    }
    // Unordered (no head-of-line blocking: a slow share does not hold a slot of the window),
    // then put back in the order ARM listed the shares.
    let mut results: Vec<(usize, Result<Option<ShareLists>, ObserveError>)> =
        futures::stream::iter(
            selected
                .into_iter()
                .enumerate()
                .map(|(i, (sid, s))| async move { (i, list_share(client, sid, s).await) }),
        )
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    let mut shares = Vec::with_capacity(results.len());
    for (_, r) in results {
        if let Some(s) = r? {
            shares.push(s);
        }
    }
    Ok(AccountObservation::Present { account, shares })
}

/// Observe both accounts of a pair concurrently. A missing primary is an error.
pub async fn observe_pair(
    client: &ArmClient,
    primary: &AccountId,
    secondary: &AccountId,
    selects: &(dyn Fn(&str) -> bool + Sync),
    opts: &ObserveOptions,
) -> Result<PairObservation, ObserveError> {
    let (p, s) = futures::join!(
        observe_account(client, primary, selects, opts),
        observe_account(client, secondary, selects, opts)
    );
    let p = p?;
    if p == AccountObservation::Missing {
        return Err(ObserveError::PrimaryMissing {
            account: primary.to_string(),
        });
    }
    Ok(PairObservation {
        primary: p,
        secondary: s?,
    })
}
