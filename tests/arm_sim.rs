//! ArmClient round trip against the project's simulator (`datashare_dr::sim`): every Data
//! Share operation the client offers, provider and consumer side, with the typed models, the
//! real LRO and paging behaviour, and the counters of both sides agreeing.

use std::time::Duration;

use datashare_dr::arm::id::{AccountId, ResourceId, ShareId, ShareSubscriptionId};
use datashare_dr::arm::models::*;
use datashare_dr::arm::{
    ArmClient, ArmResultExt, ArmSettings, AuthMode, ListQuery, LroStart, Secret,
};
use datashare_dr::sim::{self, Estate, PopulateSpec, SimHandle, SimOptions};
use time::OffsetDateTime;

async fn start() -> (SimHandle, Estate) {
    let sim = sim::spawn(SimOptions {
        lro_delay_ms: 30,
        page_size: 2,
        ..SimOptions::default()
    })
    .await
    .expect("simulator starts");
    let estate = sim
        .populate(&PopulateSpec {
            shares: 3,
            datasets: 3,
            consumers: 1,
            seed: 5,
        })
        .expect("populate");
    (sim, estate)
}

fn client(sim: &SimHandle, token: &str) -> ArmClient {
    let mut s = ArmSettings::new(
        url::Url::parse(&sim.base_url).expect("url"),
        AuthMode::StaticToken(Secret::new(token)),
    );
    s.lro_poll_interval = Duration::from_millis(20);
    s.lro_deadline = Duration::from_secs(20);
    ArmClient::new(s).expect("client")
}

#[tokio::test]
async fn provider_reads_see_the_generated_estate_through_paging() {
    let (sim, estate) = start().await;
    let c = client(&sim, &estate.admin_token);
    let primary = AccountId::parse(&estate.primary.id).expect("account id");
    let acct = c.get_account(&primary).await.expect("account");
    assert_eq!(
        acct.properties.provisioning_state,
        Some(ProvisioningState::Succeeded)
    );
    assert_eq!(
        acct.principal_id(),
        Some(estate.primary.principal_id.as_str())
    );
    assert_eq!(
        acct.meta
            .typed_id::<AccountId>()
            .expect("id")
            .expect("typed"),
        primary
    );

    let accounts = c
        .list_accounts_in_subscription(&estate.subscription_id)
        .await
        .expect("accounts");
    assert!(
        accounts
            .iter()
            .any(|a| a.name() == Some(estate.secondary.name.as_str()))
    );

    let shares = c.list_shares(&primary).await.expect("shares");
    assert_eq!(shares.len(), 3, "3 shares over pages of 2");
    for (name, count) in estate.shares.iter().zip(&estate.datasets_per_share) {
        let sid = primary.share(name).expect("share id");
        let ds = c.list_datasets(&sid).await.expect("datasets");
        assert_eq!(ds.len(), *count);
        for d in &ds {
            assert!(
                !matches!(d.kind, DataSetKind::Unknown { .. }),
                "{}",
                d.kind_name()
            );
            assert!(d.data_set_id().is_some());
            let store = d.store().expect("every generated data set names a store");
            let found = c
                .get_resource(&store.id, "2023-01-01")
                .await
                .expect("get store");
            assert!(found.is_some(), "store {} exists", store.id);
        }
        c.list_synchronization_settings(&sid)
            .await
            .expect("settings");
        c.list_invitations(&sid).await.expect("invitations");
        c.list_provider_share_subscriptions(&sid)
            .await
            .expect("psss");
        c.list_share_synchronizations(&sid, &ListQuery::default())
            .await
            .expect("history");
    }
    assert_eq!(c.stats().throttled, 0);
    let ours = c.stats();
    let theirs = sim.stats();
    assert_eq!(
        (ours.reads, ours.writes),
        (theirs.reads, theirs.writes),
        "both sides count the same requests"
    );
}

#[tokio::test]
async fn a_share_is_replicated_shared_accepted_and_cleaned_up_with_every_operation() {
    let (sim, estate) = start().await;
    let admin = client(&sim, &estate.admin_token);
    let consumer = &estate.consumers[0];
    let cons = client(&sim, &consumer.token);
    let primary = AccountId::parse(&estate.primary.id).expect("id");
    let secondary = AccountId::parse(&estate.secondary.id).expect("id");

    // provider: replicate one share to the secondary, data sets re-pointed at the secondary
    // stores, schedule, invitation
    let src = primary.share(&estate.shares[0]).expect("id");
    let share = admin.get_share(&src).await.expect("share");
    let dst: ShareId = secondary.share("dr-copy").expect("id");
    let put = admin.put_share(&dst, &share).await.expect("put share");
    assert_eq!(put.properties.share_kind, share.properties.share_kind);
    let mut copied = 0;
    for d in admin.list_datasets(&src).await.expect("datasets") {
        let Some(store) = d.store() else { continue };
        let Some(pair) = estate.stores.iter().find(|p| {
            ResourceId::parse(&p.primary).ok().as_ref() == Some(&store.id)
                || store
                    .id
                    .is_within(&ResourceId::parse(&p.primary).expect("id"))
        }) else {
            continue;
        };
        let target = ResourceId::parse(&pair.secondary).expect("id");
        let moved = match d.with_store(&target) {
            Ok(m) => m,
            Err(_) => continue,
        };
        let name = d.name().expect("name");
        let back = admin
            .put_dataset(&dst.data_set(name).expect("id"), &moved)
            .await
            .expect("put dataset");
        assert_eq!(back.kind_name(), d.kind_name());
        assert_eq!(
            back.store().expect("store").id,
            moved.store().expect("store").id
        );
        assert_ne!(
            back.data_set_id(),
            d.data_set_id(),
            "a re-created data set gets a new dataSetId"
        );
        copied += 1;
    }
    assert!(copied > 0, "at least one data set was replicated");
    let sync_id = dst.synchronization_setting("daily").expect("id");
    let at = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("time");
    let setting = admin
        .put_synchronization_setting(
            &sync_id,
            &SynchronizationSetting::schedule(RecurrenceInterval::Day, at),
        )
        .await
        .expect("setting");
    let SynchronizationSettingKind::ScheduleBased(p) = &setting.kind else {
        panic!("kind")
    };
    assert_eq!(p.synchronization_time, at);
    assert_eq!(
        admin
            .get_synchronization_setting(&sync_id)
            .await
            .expect("get")
            .kind,
        setting.kind
    );

    let inv_id = dst.invitation("inv-1").expect("id");
    let target = InvitationTarget::Email(consumer.email.clone());
    let inv = admin
        .put_invitation(&inv_id, &Invitation::new(&target, None))
        .await
        .expect("invite");
    assert_eq!(inv.target(), Some(target));
    let invitation_guid = inv.properties.invitation_id.clone().expect("invitationId");
    assert_eq!(
        admin
            .get_invitation(&inv_id)
            .await
            .expect("get")
            .properties
            .invitation_status,
        Some(InvitationStatus::Pending)
    );

    // consumer: find the invitation and accept it on the secondary consumer account
    let mine = cons
        .list_consumer_invitations()
        .await
        .expect("consumer invitations");
    let ci = mine
        .iter()
        .find(|i| i.properties.invitation_id == invitation_guid)
        .expect("the invitation is listed for the consumer");
    let location = ci.properties.location.clone().expect("location");
    let got = cons
        .get_consumer_invitation(&location, &invitation_guid)
        .await
        .expect("get");
    assert_eq!(got.properties.share_name.as_deref(), Some("dr-copy"));
    let cons_acct = AccountId::parse(&consumer.secondary_account_id).expect("id");
    let ssid: ShareSubscriptionId = cons_acct.share_subscription("from-dr").expect("id");
    let ss = cons
        .create_share_subscription(&ssid, &invitation_guid, &location, None)
        .await
        .expect("accept");
    assert_eq!(
        ss.properties.share_subscription_status,
        Some(ShareSubscriptionStatus::Active)
    );
    assert!(
        cons.list_share_subscriptions(&cons_acct)
            .await
            .expect("list")
            .iter()
            .any(|s| s.name() == Some("from-dr"))
    );
    let src_settings = cons
        .list_source_share_synchronization_settings(&ssid)
        .await
        .expect("source settings");
    assert_eq!(src_settings.len(), 1);
    let sources = cons
        .list_consumer_source_datasets(&ssid)
        .await
        .expect("source data sets");
    assert_eq!(sources.len(), copied);

    // map one storage data set into the consumer's sink, turn the schedule on, snapshot
    let sink = ResourceId::parse(&consumer.sink_secondary).expect("sink id");
    let src_ds = sources
        .iter()
        .find(|s| {
            s.properties.data_set_type.as_deref() == Some("Container")
                || s.properties.data_set_type.as_deref() == Some("Blob")
        })
        .or_else(|| sources.first())
        .expect("a source data set");
    let ds_guid = src_ds.properties.data_set_id.clone().expect("dataSetId");
    let mapping = DataSetMapping::new(DataSetMappingKind::AdlsGen2FileSystem(
        AdlsGen2FileSystemMappingProperties {
            data_set_id: ds_guid.clone(),
            file_system: "received".into(),
            subscription_id: sink.subscription_id().expect("sub").into(),
            resource_group: sink.resource_group().expect("rg").into(),
            storage_account_name: sink.name().into(),
            ..Default::default()
        },
    ));
    let mid = ssid.data_set_mapping("m1").expect("id");
    let m = cons
        .put_dataset_mapping(&mid, &mapping)
        .await
        .expect("mapping");
    assert_eq!(m.data_set_id(), Some(ds_guid.as_str()));
    assert_eq!(
        cons.list_dataset_mappings(&ssid).await.expect("list").len(),
        1
    );
    cons.get_dataset_mapping(&mid).await.expect("get mapping");
    cons.delete_dataset_mapping(&mid)
        .await
        .expect("delete mapping");
    assert!(
        cons.list_dataset_mappings(&ssid)
            .await
            .expect("list")
            .is_empty()
    );
    let tid = ssid.trigger("daily").expect("id");
    let trig = cons
        .put_trigger(
            &tid,
            &Trigger::schedule(
                RecurrenceInterval::Day,
                at,
                Some(SynchronizationMode::Incremental),
            ),
        )
        .await
        .expect("trigger");
    assert!(matches!(trig.kind, TriggerKind::ScheduleBased(_)));
    assert_eq!(cons.list_triggers(&ssid).await.expect("triggers").len(), 1);
    cons.get_trigger(&tid).await.expect("get trigger");
    let run = cons
        .synchronize(&ssid, SynchronizationMode::FullSync)
        .await
        .expect("synchronize");
    assert!(!run.synchronization_id.is_empty());
    assert!(
        !cons
            .list_share_subscription_synchronizations(&ssid, &ListQuery::default())
            .await
            .expect("runs")
            .is_empty()
    );

    // provider: the consumer shows up; adjust, revoke (LRO, handle form), reinstate
    let psss = admin
        .list_provider_share_subscriptions(&dst)
        .await
        .expect("psss");
    assert_eq!(psss.len(), 1);
    let pss_id = dst
        // Azure keys provider share subscriptions by `shareSubscriptionObjectId` (its `name` is
        // the consumer's share subscription name).
        .provider_share_subscription(
            psss[0]
                .properties
                .share_subscription_object_id
                .as_deref()
                .expect("shareSubscriptionObjectId"),
        )
        .expect("id");
    assert_eq!(
        psss[0].properties.consumer_email.as_deref(),
        Some(consumer.email.as_str())
    );
    let later = at + time::Duration::days(30);
    let adjusted = admin
        .adjust_provider_share_subscription(&pss_id, Some(later))
        .await
        .expect("adjust");
    assert_eq!(adjusted.properties.expiration_date, Some(later));
    let history = admin
        .list_share_synchronizations(&dst, &ListQuery::default())
        .await
        .expect("history");
    assert!(
        !history.is_empty(),
        "the consumer's snapshot is in the provider's history"
    );
    match admin
        .start_revoke_provider_share_subscription(&pss_id)
        .await
        .expect("revoke")
    {
        LroStart::Pending(h) => {
            let stored = serde_json::to_value(&h).expect("store handle");
            let h = serde_json::from_value(stored).expect("load handle");
            admin
                .wait(&h, Duration::from_secs(10))
                .await
                .expect("revoked");
        }
        LroStart::Done(_) => {}
    }
    let revoked = admin
        .get_provider_share_subscription(&pss_id)
        .await
        .expect("get");
    assert_eq!(
        revoked.properties.share_subscription_status,
        Some(ShareSubscriptionStatus::Revoked)
    );
    let back = admin
        .reinstate_provider_share_subscription(&pss_id, None)
        .await
        .expect("reinstate");
    assert_eq!(
        back.properties.share_subscription_status,
        Some(ShareSubscriptionStatus::Active)
    );
    let again = admin
        .revoke_provider_share_subscription(&pss_id)
        .await
        .expect("revoke (wait form)");
    assert_eq!(
        again.properties.share_subscription_status,
        Some(ShareSubscriptionStatus::Revoked)
    );

    // a second invitation is rejected by the consumer
    let inv2 = dst.invitation("inv-2").expect("id");
    let guid2 = admin
        .put_invitation(
            &inv2,
            &Invitation::new(&InvitationTarget::Email(consumer.email.clone()), None),
        )
        .await
        .expect("invite")
        .properties
        .invitation_id
        .expect("guid");
    let rejected = cons
        .reject_consumer_invitation(&location, &guid2)
        .await
        .expect("reject");
    assert_eq!(
        rejected.properties.invitation_status,
        Some(InvitationStatus::Rejected)
    );

    // clean up: every delete, LRO or not
    cons.delete_trigger(&tid).await.expect("delete trigger");
    cons.delete_share_subscription(&ssid)
        .await
        .expect("delete share subscription");
    admin
        .delete_invitation(&inv_id)
        .await
        .expect("delete invitation");
    admin
        .delete_synchronization_setting(&sync_id)
        .await
        .expect("delete setting");
    for d in admin.list_datasets(&dst).await.expect("list") {
        admin
            .delete_dataset(&dst.data_set(d.name().expect("name")).expect("id"))
            .await
            .expect("delete dataset");
    }
    admin.delete_share(&dst).await.expect("delete share");
    assert!(
        admin
            .get_share(&dst)
            .await
            .optional()
            .expect("get")
            .is_none()
    );
    assert_eq!(admin.stats().throttled + cons.stats().throttled, 0);
    assert!(admin.stats().lro_polls > 0);
}

#[tokio::test]
async fn accounts_are_created_and_deleted_as_long_running_operations() {
    let (sim, estate) = start().await;
    let c = client(&sim, &estate.admin_token);
    let id = AccountId::new(
        &estate.subscription_id,
        &estate.secondary.resource_group,
        "dr-scratch",
    )
    .expect("id");
    let acct = c
        .create_account(&id, &Account::new(&estate.secondary_region, None))
        .await
        .expect("create");
    assert_eq!(
        acct.properties.provisioning_state,
        Some(ProvisioningState::Succeeded)
    );
    assert!(
        acct.principal_id().is_some(),
        "the service sets the identity"
    );
    let ras = c
        .list_role_assignments(
            &ResourceId::parse(&estate.stores[0].secondary).expect("id"),
            acct.principal_id().expect("pid"),
        )
        .await
        .expect("role assignments");
    assert!(ras.is_empty(), "a brand-new identity holds no roles");
    c.delete_account(&id).await.expect("delete");
    let err = c.get_account(&id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.correlation_id().is_some(),
        "errors carry the correlation id"
    );
}

#[tokio::test]
async fn the_simulator_refuses_a_client_without_a_token_and_the_error_is_not_retried() {
    let (sim, estate) = start().await;
    let c = ArmClient::new(ArmSettings::new(
        url::Url::parse(&sim.base_url).expect("url"),
        AuthMode::None,
    ))
    .expect("client");
    let err = c
        .get_account(&AccountId::parse(&estate.primary.id).expect("id"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(!err.is_transient());
    assert_eq!(c.stats().retries, 0);
}

#[tokio::test]
async fn a_burst_beyond_arm_s_read_bucket_is_paced_without_a_single_429() {
    let (sim, estate) = start().await;
    sim.reset_counters();
    let mut s = ArmSettings::new(
        url::Url::parse(&sim.base_url).expect("url"),
        AuthMode::StaticToken(Secret::new(estate.admin_token.clone())),
    );
    s.max_concurrency = 32;
    let c = ArmClient::new(s).expect("client");
    let id = AccountId::parse(&estate.primary.id).expect("id");
    let started = std::time::Instant::now();
    let calls = (0..300).map(|_| {
        let c = c.clone();
        let id = id.clone();
        async move { c.get_account(&id).await }
    });
    for r in futures::future::join_all(calls).await {
        r.expect("read");
    }
    let elapsed = started.elapsed();
    // 250 burst, then 25/s: the last 50 reads need about 2 s of refill
    assert!(elapsed >= Duration::from_millis(1800), "{elapsed:?}");
    assert_eq!(
        sim.stats().throttled,
        0,
        "the simulator never had to throttle"
    );
    assert_eq!(c.stats().throttled, 0);
    assert_eq!(c.stats().reads, 300);
}

#[tokio::test]
async fn synchronization_details_follow_next_link_with_a_plain_get() {
    let (sim, estate) = start().await;
    assert!(
        sim.fire_triggers() > 0,
        "the generated consumers have active triggers"
    );
    let c = client(&sim, &estate.admin_token);
    let share = AccountId::parse(&estate.primary.id)
        .expect("id")
        .share(&estate.shares[0])
        .expect("id");
    let history = c
        .list_share_synchronizations(&share, &ListQuery::default())
        .await
        .expect("history");
    assert!(!history.is_empty());
    let details = c
        .list_share_synchronization_details(&share, &history[0])
        .await
        .expect("details over several pages");
    assert_eq!(details.len(), estate.datasets_per_share[0]);
    let consumer = &estate.consumers[0];
    let cons = client(&sim, &consumer.token);
    let ssid = ShareSubscriptionId::parse(&consumer.share_subscriptions[0]).expect("id");
    let runs = cons
        .list_share_subscription_synchronizations(&ssid, &ListQuery::default())
        .await
        .expect("runs");
    let rows = cons
        .list_share_subscription_synchronization_details(&ssid, &runs[0].synchronization_id)
        .await
        .expect("consumer-side details");
    assert_eq!(rows.len(), estate.datasets_per_share[0]);
}
