//! Typed Data Share operations (api-version 2021-08-01) and the generic ARM reads the
//! readiness checks need, as methods on [`ArmClient`].
//!
//! Naming: `list_x`, `get_x`, `put_x`, `delete_x`; long-running operations also have a
//! `start_x` form returning [`LroStart`] (poll later with [`ArmClient::poll`]); the plain
//! form waits with the settings' LRO deadline. Paths and verbs are the spec's; every method
//! names its spec operation id in errors.
//!
//! Must not import reconcile, readiness, failover, handlers or host.

use reqwest::Method;
use serde_json::Value;
use time::OffsetDateTime;

use super::client::{API_VERSION, ArmClient, LroStart};
use super::error::ArmError;
use super::id::{
    AccountId, DataSetId, DataSetMappingId, InvitationId, ProviderShareSubscriptionId, ResourceId,
    ShareId, ShareSubscriptionId, SynchronizationSettingId, TriggerId,
};
use super::models::*;

/// api-version of `Microsoft.Authorization/roleAssignments` reads.
pub const ROLE_ASSIGNMENTS_API_VERSION: &str = "2022-04-01";

/// OData options of list operations that accept them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `$filter`, passed through unchanged.
    pub filter: Option<String>,
    /// `$orderby`, passed through unchanged.
    pub orderby: Option<String>,
}

impl ListQuery {
    fn pairs(&self) -> Vec<(&str, &str)> {
        let mut v = Vec::new();
        if let Some(f) = &self.filter {
            v.push(("$filter", f.as_str()));
        }
        if let Some(o) = &self.orderby {
            v.push(("$orderby", o.as_str()));
        }
        v
    }
}

impl ArmClient {
    fn ds_url(&self, path: &str) -> Result<url::Url, ArmError> {
        self.url(path, API_VERSION, &[])
    }

    fn ds_url_q(&self, path: &str, q: &ListQuery) -> Result<url::Url, ArmError> {
        self.url(path, API_VERSION, &q.pairs())
    }

    async fn get_typed<T: serde::de::DeserializeOwned>(
        &self,
        op: &str,
        id: &str,
    ) -> Result<T, ArmError> {
        let url = self.ds_url(id)?;
        self.get_json(op, id, url).await
    }

    async fn put_typed<T: serde::de::DeserializeOwned, B: serde::Serialize>(
        &self,
        op: &str,
        id: &str,
        body: &B,
    ) -> Result<T, ArmError> {
        let url = self.ds_url(id)?;
        let mut v = self.encode_value(op, id, body)?;
        strip_envelope(&mut v);
        self.call_json(op, id, Method::PUT, url, Some(&v)).await
    }

    async fn start_lro(
        &self,
        op: &str,
        id: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<LroStart, ArmError> {
        let url = self.ds_url(path)?;
        self.start(op, id, method, url, body).await
    }

    async fn lro_typed<T: serde::de::DeserializeOwned>(
        &self,
        op: &str,
        id: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ArmError> {
        let url = self.ds_url(path)?;
        match self.run_lro(op, id, method, url, body).await? {
            Some(v) => self.decode_value(op, id, v),
            // finished without a body: read the resource
            None => self.get_typed(op, id).await,
        }
    }

    async fn lro_unit(
        &self,
        op: &str,
        id: &str,
        method: Method,
        path: &str,
    ) -> Result<(), ArmError> {
        let url = self.ds_url(path)?;
        self.run_lro(op, id, method, url, None).await.map(|_| ())
    }

    // ---------------------------------------------------------------- accounts

    /// `Accounts_Get`.
    pub async fn get_account(&self, id: &AccountId) -> Result<Account, ArmError> {
        self.get_typed("Accounts_Get", id.as_str()).await
    }

    /// `Accounts_Create` (LRO): waits, then returns the account.
    pub async fn create_account(
        &self,
        id: &AccountId,
        account: &Account,
    ) -> Result<Account, ArmError> {
        let body = self.account_body(id, account)?;
        self.lro_typed(
            "Accounts_Create",
            id.as_str(),
            Method::PUT,
            id.as_str(),
            Some(&body),
        )
        .await
    }

    /// `Accounts_Create` (LRO), start form.
    pub async fn start_create_account(
        &self,
        id: &AccountId,
        account: &Account,
    ) -> Result<LroStart, ArmError> {
        let body = self.account_body(id, account)?;
        self.start_lro(
            "Accounts_Create",
            id.as_str(),
            Method::PUT,
            id.as_str(),
            Some(&body),
        )
        .await
    }

    fn account_body(&self, id: &AccountId, account: &Account) -> Result<Value, ArmError> {
        let mut v = self.encode_value("Accounts_Create", id.as_str(), account)?;
        strip_envelope(&mut v);
        if let Some(m) = v.as_object_mut() {
            m.remove("properties");
            if let Some(Value::Object(ident)) = m.get_mut("identity") {
                ident.remove("principalId");
                ident.remove("tenantId");
            }
        }
        Ok(v)
    }

    /// `Accounts_Update` (PATCH tags).
    pub async fn update_account(
        &self,
        id: &AccountId,
        update: &AccountUpdate,
    ) -> Result<Account, ArmError> {
        let url = self.ds_url(id.as_str())?;
        self.call_json(
            "Accounts_Update",
            id.as_str(),
            Method::PATCH,
            url,
            Some(update),
        )
        .await
    }

    /// `Accounts_Delete` (LRO): waits.
    pub async fn delete_account(&self, id: &AccountId) -> Result<(), ArmError> {
        self.lro_unit("Accounts_Delete", id.as_str(), Method::DELETE, id.as_str())
            .await
    }

    /// `Accounts_Delete` (LRO), start form.
    pub async fn start_delete_account(&self, id: &AccountId) -> Result<LroStart, ArmError> {
        self.start_lro(
            "Accounts_Delete",
            id.as_str(),
            Method::DELETE,
            id.as_str(),
            None,
        )
        .await
    }

    /// `Accounts_ListByResourceGroup`.
    pub async fn list_accounts_in_resource_group(
        &self,
        subscription_id: &str,
        resource_group: &str,
    ) -> Result<Vec<Account>, ArmError> {
        let path = format!(
            "/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.DataShare/accounts"
        );
        let url = self.ds_url(&path)?;
        self.list("Accounts_ListByResourceGroup", &path, Method::GET, url)
            .await
    }

    /// `Accounts_ListBySubscription`.
    pub async fn list_accounts_in_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<Account>, ArmError> {
        let path =
            format!("/subscriptions/{subscription_id}/providers/Microsoft.DataShare/accounts");
        let url = self.ds_url(&path)?;
        self.list("Accounts_ListBySubscription", &path, Method::GET, url)
            .await
    }

    // ---------------------------------------------------------------- shares

    /// `Shares_ListByAccount`.
    pub async fn list_shares(&self, account: &AccountId) -> Result<Vec<Share>, ArmError> {
        let path = format!("{account}/shares");
        let url = self.ds_url(&path)?;
        self.list("Shares_ListByAccount", account.as_str(), Method::GET, url)
            .await
    }

    /// `Shares_Get`.
    pub async fn get_share(&self, id: &ShareId) -> Result<Share, ArmError> {
        self.get_typed("Shares_Get", id.as_str()).await
    }

    /// `Shares_Create` (upsert; not an LRO).
    pub async fn put_share(&self, id: &ShareId, share: &Share) -> Result<Share, ArmError> {
        self.put_typed("Shares_Create", id.as_str(), &share.for_create())
            .await
    }

    /// `Shares_Delete` (LRO): waits.
    pub async fn delete_share(&self, id: &ShareId) -> Result<(), ArmError> {
        self.lro_unit("Shares_Delete", id.as_str(), Method::DELETE, id.as_str())
            .await
    }

    /// `Shares_Delete` (LRO), start form.
    pub async fn start_delete_share(&self, id: &ShareId) -> Result<LroStart, ArmError> {
        self.start_lro(
            "Shares_Delete",
            id.as_str(),
            Method::DELETE,
            id.as_str(),
            None,
        )
        .await
    }

    /// `Shares_ListSynchronizations` (POST, paged): consumers' snapshot runs of this share.
    pub async fn list_share_synchronizations(
        &self,
        share: &ShareId,
        query: &ListQuery,
    ) -> Result<Vec<ShareSynchronization>, ArmError> {
        let path = format!("{share}/listSynchronizations");
        let url = self.ds_url_q(&path, query)?;
        self.list(
            "Shares_ListSynchronizations",
            share.as_str(),
            Method::POST,
            url,
        )
        .await
    }

    /// `Shares_ListSynchronizationDetails` (POST, paged): per-data-set rows of one
    /// consumer snapshot run (`run` as returned by `list_share_synchronizations`).
    pub async fn list_share_synchronization_details(
        &self,
        share: &ShareId,
        run: &ShareSynchronization,
    ) -> Result<Vec<SynchronizationDetails>, ArmError> {
        let op = "Shares_ListSynchronizationDetails";
        let path = format!("{share}/listSynchronizationDetails");
        let url = self.ds_url(&path)?;
        let body = self.encode_value(op, share.as_str(), run)?;
        self.list_with_body(op, share.as_str(), Method::POST, url, Some(&body))
            .await
    }

    // ---------------------------------------------------------------- data sets

    /// `DataSets_ListByShare`.
    pub async fn list_datasets(&self, share: &ShareId) -> Result<Vec<DataSet>, ArmError> {
        let path = format!("{share}/dataSets");
        let url = self.ds_url(&path)?;
        self.list("DataSets_ListByShare", share.as_str(), Method::GET, url)
            .await
    }

    /// `DataSets_Get`.
    pub async fn get_dataset(&self, id: &DataSetId) -> Result<DataSet, ArmError> {
        self.get_typed("DataSets_Get", id.as_str()).await
    }

    /// `DataSets_Create` (not an LRO). Read-only fields of `dataset` are not sent.
    pub async fn put_dataset(
        &self,
        id: &DataSetId,
        dataset: &DataSet,
    ) -> Result<DataSet, ArmError> {
        self.put_typed("DataSets_Create", id.as_str(), &dataset.for_create())
            .await
    }

    /// `DataSets_Delete` (LRO): waits.
    pub async fn delete_dataset(&self, id: &DataSetId) -> Result<(), ArmError> {
        self.lro_unit("DataSets_Delete", id.as_str(), Method::DELETE, id.as_str())
            .await
    }

    /// `DataSets_Delete` (LRO), start form.
    pub async fn start_delete_dataset(&self, id: &DataSetId) -> Result<LroStart, ArmError> {
        self.start_lro(
            "DataSets_Delete",
            id.as_str(),
            Method::DELETE,
            id.as_str(),
            None,
        )
        .await
    }

    // ---------------------------------------------------------------- invitations

    /// `Invitations_ListByShare`.
    pub async fn list_invitations(&self, share: &ShareId) -> Result<Vec<Invitation>, ArmError> {
        let path = format!("{share}/invitations");
        let url = self.ds_url(&path)?;
        self.list("Invitations_ListByShare", share.as_str(), Method::GET, url)
            .await
    }

    /// `Invitations_Get`.
    pub async fn get_invitation(&self, id: &InvitationId) -> Result<Invitation, ArmError> {
        self.get_typed("Invitations_Get", id.as_str()).await
    }

    /// `Invitations_Create` (not an LRO). Only the writable fields are sent.
    pub async fn put_invitation(
        &self,
        id: &InvitationId,
        invitation: &Invitation,
    ) -> Result<Invitation, ArmError> {
        let p = &invitation.properties;
        let body = Invitation {
            properties: InvitationProperties {
                target_email: p.target_email.clone(),
                target_active_directory_id: p.target_active_directory_id.clone(),
                target_object_id: p.target_object_id.clone(),
                expiration_date: p.expiration_date,
                ..Default::default()
            },
            ..Default::default()
        };
        self.put_typed("Invitations_Create", id.as_str(), &body)
            .await
    }

    /// `Invitations_Delete` (not an LRO; withdraws a pending invitation).
    pub async fn delete_invitation(&self, id: &InvitationId) -> Result<(), ArmError> {
        let url = self.ds_url(id.as_str())?;
        self.call_empty("Invitations_Delete", id.as_str(), Method::DELETE, url)
            .await
            .map(|_| ())
    }

    // ---------------------------------------------------------------- synchronization settings

    /// `SynchronizationSettings_ListByShare`.
    pub async fn list_synchronization_settings(
        &self,
        share: &ShareId,
    ) -> Result<Vec<SynchronizationSetting>, ArmError> {
        let path = format!("{share}/synchronizationSettings");
        let url = self.ds_url(&path)?;
        self.list(
            "SynchronizationSettings_ListByShare",
            share.as_str(),
            Method::GET,
            url,
        )
        .await
    }

    /// `SynchronizationSettings_Get`.
    pub async fn get_synchronization_setting(
        &self,
        id: &SynchronizationSettingId,
    ) -> Result<SynchronizationSetting, ArmError> {
        self.get_typed("SynchronizationSettings_Get", id.as_str())
            .await
    }

    /// `SynchronizationSettings_Create` (not an LRO in the spec; an LRO-style 201/202 answer
    /// is waited for).
    pub async fn put_synchronization_setting(
        &self,
        id: &SynchronizationSettingId,
        setting: &SynchronizationSetting,
    ) -> Result<SynchronizationSetting, ArmError> {
        let body = self.encode_value(
            "SynchronizationSettings_Create",
            id.as_str(),
            &setting.for_create(),
        )?;
        self.lro_typed(
            "SynchronizationSettings_Create",
            id.as_str(),
            Method::PUT,
            id.as_str(),
            Some(&body),
        )
        .await
    }

    /// `SynchronizationSettings_Delete` (LRO): waits.
    pub async fn delete_synchronization_setting(
        &self,
        id: &SynchronizationSettingId,
    ) -> Result<(), ArmError> {
        self.lro_unit(
            "SynchronizationSettings_Delete",
            id.as_str(),
            Method::DELETE,
            id.as_str(),
        )
        .await
    }

    /// `SynchronizationSettings_Delete` (LRO), start form.
    pub async fn start_delete_synchronization_setting(
        &self,
        id: &SynchronizationSettingId,
    ) -> Result<LroStart, ArmError> {
        self.start_lro(
            "SynchronizationSettings_Delete",
            id.as_str(),
            Method::DELETE,
            id.as_str(),
            None,
        )
        .await
    }

    // ---------------------------------------------------------------- provider share subscriptions

    /// `ProviderShareSubscriptions_ListByShare`.
    pub async fn list_provider_share_subscriptions(
        &self,
        share: &ShareId,
    ) -> Result<Vec<ProviderShareSubscription>, ArmError> {
        let path = format!("{share}/providerShareSubscriptions");
        let url = self.ds_url(&path)?;
        self.list(
            "ProviderShareSubscriptions_ListByShare",
            share.as_str(),
            Method::GET,
            url,
        )
        .await
    }

    /// `ProviderShareSubscriptions_GetByShare`.
    pub async fn get_provider_share_subscription(
        &self,
        id: &ProviderShareSubscriptionId,
    ) -> Result<ProviderShareSubscription, ArmError> {
        self.get_typed("ProviderShareSubscriptions_GetByShare", id.as_str())
            .await
    }

    /// `ProviderShareSubscriptions_Adjust`: moves the expiration date.
    pub async fn adjust_provider_share_subscription(
        &self,
        id: &ProviderShareSubscriptionId,
        expiration_date: Option<OffsetDateTime>,
    ) -> Result<ProviderShareSubscription, ArmError> {
        let url = self.ds_url(&format!("{id}/adjust"))?;
        let body = ProviderShareSubscription::expiration_body(expiration_date);
        self.non_idempotent()
            .call_json(
                "ProviderShareSubscriptions_Adjust",
                id.as_str(),
                Method::POST,
                url,
                Some(&body),
            )
            .await
    }

    /// `ProviderShareSubscriptions_Reinstate`: re-activates a revoked subscription.
    pub async fn reinstate_provider_share_subscription(
        &self,
        id: &ProviderShareSubscriptionId,
        expiration_date: Option<OffsetDateTime>,
    ) -> Result<ProviderShareSubscription, ArmError> {
        let url = self.ds_url(&format!("{id}/reinstate"))?;
        // Azure's reinstate takes no request body (recordings): send one only to set an
        // expiration date, which the spec allows.
        let body = expiration_date.map(|d| ProviderShareSubscription::expiration_body(Some(d)));
        self.non_idempotent()
            .call_json(
                "ProviderShareSubscriptions_Reinstate",
                id.as_str(),
                Method::POST,
                url,
                body.as_ref(),
            )
            .await
    }

    /// `ProviderShareSubscriptions_Revoke` (LRO): waits, then returns the subscription.
    pub async fn revoke_provider_share_subscription(
        &self,
        id: &ProviderShareSubscriptionId,
    ) -> Result<ProviderShareSubscription, ArmError> {
        let path = format!("{id}/revoke");
        let url = self.ds_url(&path)?;
        let op = "ProviderShareSubscriptions_Revoke";
        match self
            .non_idempotent()
            .run_lro(op, id.as_str(), Method::POST, url, None)
            .await?
        {
            // the async-operation body is an OperationResponse, not the subscription
            Some(v) if v.get("properties").is_some() => self.decode_value(op, id.as_str(), v),
            _ => self.get_provider_share_subscription(id).await,
        }
    }

    /// `ProviderShareSubscriptions_Revoke` (LRO), start form.
    pub async fn start_revoke_provider_share_subscription(
        &self,
        id: &ProviderShareSubscriptionId,
    ) -> Result<LroStart, ArmError> {
        let path = format!("{id}/revoke");
        self.non_idempotent()
            .start_lro(
                "ProviderShareSubscriptions_Revoke",
                id.as_str(),
                Method::POST,
                &path,
                None,
            )
            .await
    }

    // ---------------------------------------------------------------- consumer side

    /// `ConsumerInvitations_ListInvitations` (tenant level: invitations addressed to the
    /// caller).
    pub async fn list_consumer_invitations(&self) -> Result<Vec<ConsumerInvitation>, ArmError> {
        let path = "/providers/Microsoft.DataShare/listInvitations";
        let url = self.ds_url(path)?;
        self.list(
            "ConsumerInvitations_ListInvitations",
            path,
            Method::GET,
            url,
        )
        .await
    }

    /// `ConsumerInvitations_Get` (`location` = region of the provider's share).
    pub async fn get_consumer_invitation(
        &self,
        location: &str,
        invitation_id: &str,
    ) -> Result<ConsumerInvitation, ArmError> {
        let path = format!(
            "/providers/Microsoft.DataShare/locations/{location}/consumerInvitations/{invitation_id}"
        );
        check_segment("ConsumerInvitations_Get", location)?;
        check_segment("ConsumerInvitations_Get", invitation_id)?;
        self.get_typed("ConsumerInvitations_Get", &path).await
    }

    /// `ConsumerInvitations_RejectInvitation`.
    pub async fn reject_consumer_invitation(
        &self,
        location: &str,
        invitation_id: &str,
    ) -> Result<ConsumerInvitation, ArmError> {
        check_segment("ConsumerInvitations_RejectInvitation", location)?;
        let path = format!("/providers/Microsoft.DataShare/locations/{location}/rejectInvitation");
        let url = self.ds_url(&path)?;
        let body = ConsumerInvitation::reject_body(invitation_id);
        self.call_json(
            "ConsumerInvitations_RejectInvitation",
            &path,
            Method::POST,
            url,
            Some(&body),
        )
        .await
    }

    /// `ShareSubscriptions_ListByAccount`.
    pub async fn list_share_subscriptions(
        &self,
        account: &AccountId,
    ) -> Result<Vec<ShareSubscription>, ArmError> {
        let path = format!("{account}/shareSubscriptions");
        let url = self.ds_url(&path)?;
        self.list(
            "ShareSubscriptions_ListByAccount",
            account.as_str(),
            Method::GET,
            url,
        )
        .await
    }

    /// `ShareSubscriptions_Get`.
    pub async fn get_share_subscription(
        &self,
        id: &ShareSubscriptionId,
    ) -> Result<ShareSubscription, ArmError> {
        self.get_typed("ShareSubscriptions_Get", id.as_str()).await
    }

    /// `ShareSubscriptions_Create` = accepting an invitation.
    pub async fn create_share_subscription(
        &self,
        id: &ShareSubscriptionId,
        invitation_id: &str,
        source_share_location: &str,
        expiration_date: Option<OffsetDateTime>,
    ) -> Result<ShareSubscription, ArmError> {
        let body = ShareSubscription::from_invitation(
            invitation_id,
            source_share_location,
            expiration_date,
        );
        self.put_typed("ShareSubscriptions_Create", id.as_str(), &body)
            .await
    }

    /// `ShareSubscriptions_Delete` (LRO): waits.
    pub async fn delete_share_subscription(
        &self,
        id: &ShareSubscriptionId,
    ) -> Result<(), ArmError> {
        self.lro_unit(
            "ShareSubscriptions_Delete",
            id.as_str(),
            Method::DELETE,
            id.as_str(),
        )
        .await
    }

    /// `ShareSubscriptions_Delete` (LRO), start form.
    pub async fn start_delete_share_subscription(
        &self,
        id: &ShareSubscriptionId,
    ) -> Result<LroStart, ArmError> {
        self.start_lro(
            "ShareSubscriptions_Delete",
            id.as_str(),
            Method::DELETE,
            id.as_str(),
            None,
        )
        .await
    }

    /// `ShareSubscriptions_ListSourceShareSynchronizationSettings` (POST, paged).
    pub async fn list_source_share_synchronization_settings(
        &self,
        id: &ShareSubscriptionId,
    ) -> Result<Vec<SourceShareSynchronizationSetting>, ArmError> {
        let path = format!("{id}/listSourceShareSynchronizationSettings");
        let url = self.ds_url(&path)?;
        self.list(
            "ShareSubscriptions_ListSourceShareSynchronizationSettings",
            id.as_str(),
            Method::POST,
            url,
        )
        .await
    }

    /// `ShareSubscriptions_ListSynchronizations` (POST, paged).
    pub async fn list_share_subscription_synchronizations(
        &self,
        id: &ShareSubscriptionId,
        query: &ListQuery,
    ) -> Result<Vec<ShareSubscriptionSynchronization>, ArmError> {
        let path = format!("{id}/listSynchronizations");
        let url = self.ds_url_q(&path, query)?;
        self.list(
            "ShareSubscriptions_ListSynchronizations",
            id.as_str(),
            Method::POST,
            url,
        )
        .await
    }

    /// `ShareSubscriptions_ListSynchronizationDetails` (POST, paged).
    pub async fn list_share_subscription_synchronization_details(
        &self,
        id: &ShareSubscriptionId,
        synchronization_id: &str,
    ) -> Result<Vec<SynchronizationDetails>, ArmError> {
        let op = "ShareSubscriptions_ListSynchronizationDetails";
        let path = format!("{id}/listSynchronizationDetails");
        let url = self.ds_url(&path)?;
        let body = serde_json::json!({ "synchronizationId": synchronization_id });
        self.list_with_body(op, id.as_str(), Method::POST, url, Some(&body))
            .await
    }

    /// `ShareSubscriptions_CancelSynchronization` (LRO): waits.
    pub async fn cancel_synchronization(
        &self,
        id: &ShareSubscriptionId,
        synchronization_id: &str,
    ) -> Result<(), ArmError> {
        let op = "ShareSubscriptions_CancelSynchronization";
        let url = self.ds_url(&format!("{id}/cancelSynchronization"))?;
        let body = serde_json::json!({ "synchronizationId": synchronization_id });
        self.non_idempotent()
            .run_lro(op, id.as_str(), Method::POST, url, Some(&body))
            .await
            .map(|_| ())
    }

    /// `ShareSubscriptions_CancelSynchronization` (LRO), start form.
    pub async fn start_cancel_synchronization(
        &self,
        id: &ShareSubscriptionId,
        synchronization_id: &str,
    ) -> Result<LroStart, ArmError> {
        let op = "ShareSubscriptions_CancelSynchronization";
        let body = serde_json::json!({ "synchronizationId": synchronization_id });
        self.non_idempotent()
            .start_lro(
                op,
                id.as_str(),
                Method::POST,
                &format!("{id}/cancelSynchronization"),
                Some(&body),
            )
            .await
    }

    /// `ConsumerSourceDataSets_ListByShareSubscription`: the provider data sets to map.
    pub async fn list_consumer_source_datasets(
        &self,
        id: &ShareSubscriptionId,
    ) -> Result<Vec<ConsumerSourceDataSet>, ArmError> {
        let path = format!("{id}/consumerSourceDataSets");
        let url = self.ds_url(&path)?;
        self.list(
            "ConsumerSourceDataSets_ListByShareSubscription",
            id.as_str(),
            Method::GET,
            url,
        )
        .await
    }

    /// `ShareSubscriptions_Synchronize` (LRO): starts a snapshot and waits for it.
    pub async fn synchronize(
        &self,
        id: &ShareSubscriptionId,
        mode: SynchronizationMode,
    ) -> Result<ShareSubscriptionSynchronization, ArmError> {
        let op = "ShareSubscriptions_Synchronize";
        let path = format!("{id}/synchronize");
        let body = self.encode_value(
            op,
            id.as_str(),
            &Synchronize {
                synchronization_mode: Some(mode),
            },
        )?;
        let url = self.ds_url(&path)?;
        match self
            .non_idempotent()
            .run_lro(op, id.as_str(), Method::POST, url, Some(&body))
            .await?
        {
            Some(v) => self.decode_value(op, id.as_str(), v),
            None => Err(ArmError::Protocol {
                operation: op.into(),
                resource: id.to_string(),
                reason: "finished without a synchronization body".into(),
            }),
        }
    }

    /// `ShareSubscriptions_Synchronize` (LRO), start form.
    pub async fn start_synchronize(
        &self,
        id: &ShareSubscriptionId,
        mode: SynchronizationMode,
    ) -> Result<LroStart, ArmError> {
        let op = "ShareSubscriptions_Synchronize";
        let body = self.encode_value(
            op,
            id.as_str(),
            &Synchronize {
                synchronization_mode: Some(mode),
            },
        )?;
        self.non_idempotent()
            .start_lro(
                op,
                id.as_str(),
                Method::POST,
                &format!("{id}/synchronize"),
                Some(&body),
            )
            .await
    }

    /// `DataSetMappings_ListByShareSubscription`.
    pub async fn list_dataset_mappings(
        &self,
        id: &ShareSubscriptionId,
    ) -> Result<Vec<DataSetMapping>, ArmError> {
        let path = format!("{id}/dataSetMappings");
        let url = self.ds_url(&path)?;
        self.list(
            "DataSetMappings_ListByShareSubscription",
            id.as_str(),
            Method::GET,
            url,
        )
        .await
    }

    /// `DataSetMappings_Get`.
    pub async fn get_dataset_mapping(
        &self,
        id: &DataSetMappingId,
    ) -> Result<DataSetMapping, ArmError> {
        self.get_typed("DataSetMappings_Get", id.as_str()).await
    }

    /// `DataSetMappings_Create` (not an LRO).
    pub async fn put_dataset_mapping(
        &self,
        id: &DataSetMappingId,
        mapping: &DataSetMapping,
    ) -> Result<DataSetMapping, ArmError> {
        self.put_typed("DataSetMappings_Create", id.as_str(), mapping)
            .await
    }

    /// `DataSetMappings_Delete` (not an LRO).
    pub async fn delete_dataset_mapping(&self, id: &DataSetMappingId) -> Result<(), ArmError> {
        let url = self.ds_url(id.as_str())?;
        self.call_empty("DataSetMappings_Delete", id.as_str(), Method::DELETE, url)
            .await
            .map(|_| ())
    }

    /// `Triggers_ListByShareSubscription`.
    pub async fn list_triggers(&self, id: &ShareSubscriptionId) -> Result<Vec<Trigger>, ArmError> {
        let path = format!("{id}/triggers");
        let url = self.ds_url(&path)?;
        self.list(
            "Triggers_ListByShareSubscription",
            id.as_str(),
            Method::GET,
            url,
        )
        .await
    }

    /// `Triggers_Get`.
    pub async fn get_trigger(&self, id: &TriggerId) -> Result<Trigger, ArmError> {
        self.get_typed("Triggers_Get", id.as_str()).await
    }

    /// `Triggers_Create` (LRO): waits, then returns the trigger.
    pub async fn put_trigger(
        &self,
        id: &TriggerId,
        trigger: &Trigger,
    ) -> Result<Trigger, ArmError> {
        let body = self.trigger_body(id, trigger)?;
        self.lro_typed(
            "Triggers_Create",
            id.as_str(),
            Method::PUT,
            id.as_str(),
            Some(&body),
        )
        .await
    }

    /// `Triggers_Create` (LRO), start form.
    pub async fn start_put_trigger(
        &self,
        id: &TriggerId,
        trigger: &Trigger,
    ) -> Result<LroStart, ArmError> {
        let body = self.trigger_body(id, trigger)?;
        self.start_lro(
            "Triggers_Create",
            id.as_str(),
            Method::PUT,
            id.as_str(),
            Some(&body),
        )
        .await
    }

    fn trigger_body(&self, id: &TriggerId, trigger: &Trigger) -> Result<Value, ArmError> {
        let mut v = self.encode_value("Triggers_Create", id.as_str(), trigger)?;
        strip_envelope(&mut v);
        if let Some(Value::Object(p)) = v.get_mut("properties") {
            for f in [
                "createdAt",
                "provisioningState",
                "triggerStatus",
                "userName",
            ] {
                p.remove(f);
            }
        }
        Ok(v)
    }

    /// `Triggers_Delete` (LRO): waits.
    pub async fn delete_trigger(&self, id: &TriggerId) -> Result<(), ArmError> {
        self.lro_unit("Triggers_Delete", id.as_str(), Method::DELETE, id.as_str())
            .await
    }

    // ---------------------------------------------------------------- generic ARM

    /// `GET {id}?api-version={api_version}` of any resource; `None` on 404.
    pub async fn get_resource(
        &self,
        id: &ResourceId,
        api_version: &str,
    ) -> Result<Option<GenericResource>, ArmError> {
        let url = self.url(id.as_str(), api_version, &[])?;
        match self
            .get_json::<GenericResource>("Resources_GetById", id.as_str(), url)
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Role assignments at `scope` (and inherited from above it) for one principal:
    /// `GET {scope}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId eq '…'`.
    pub async fn list_role_assignments(
        &self,
        scope: &ResourceId,
        principal_id: &str,
    ) -> Result<Vec<RoleAssignment>, ArmError> {
        let op = "RoleAssignments_ListForScope";
        if !principal_id
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-')
            || principal_id.is_empty()
        {
            return Err(ArmError::Protocol {
                operation: op.into(),
                resource: scope.to_string(),
                reason: format!("principal id `{principal_id}` is not a GUID"),
            });
        }
        let path = format!("{scope}/providers/Microsoft.Authorization/roleAssignments");
        let filter = format!("principalId eq '{principal_id}'");
        let url = self.url(&path, ROLE_ASSIGNMENTS_API_VERSION, &[("$filter", &filter)])?;
        self.list(op, scope.as_str(), Method::GET, url).await
    }
}

/// Drops the read-only envelope (`id`, `name`, `type`, `systemData`) from a request body.
fn strip_envelope(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        for k in ["id", "name", "type", "systemData"] {
            m.remove(k);
        }
    }
}

fn check_segment(op: &str, s: &str) -> Result<(), ArmError> {
    // reuse the id rules for a single path segment
    super::id::ResourceId::parse(&format!("/providers/x/{s}/y"))
        .map(|_| ())
        .map_err(|source| ArmError::BadId {
            operation: op.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm::{ArmSettings, AuthMode};

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn operation_futures_are_send_so_handlers_can_spawn_them() {
        let c = ArmClient::new(ArmSettings::new(
            url::Url::parse("http://127.0.0.1:9").expect("url"),
            AuthMode::None,
        ))
        .expect("client");
        let acct = AccountId::new("s", "rg", "a").expect("id");
        let share = acct.share("x").expect("id");
        let ds = share.data_set("d").expect("id");
        let store = ResourceId::parse("/subscriptions/s").expect("id");
        assert_send(&c.list_shares(&acct));
        assert_send(&c.list_datasets(&share));
        assert_send(&c.delete_share(&share));
        assert_send(&c.start_delete_dataset(&ds));
        assert_send(&c.list_share_synchronizations(&share, &ListQuery::default()));
        assert_send(&c.list_role_assignments(&store, "00000000-0000-0000-0000-000000000000"));
        assert_send(&c.get_resource(&store, "2023-01-01"));
    }
}
