//! Table-driven tests of the pure evaluation: one clean pair, then one case per check.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime, macros::datetime};

use super::*;

const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000001";
const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);
const PRINCIPAL: &str = "11111111-2222-3333-4444-555555555555";
const BLOB_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";

fn account_id(rg: &str, name: &str) -> String {
    format!("{SUB}/resourceGroups/{rg}/providers/Microsoft.DataShare/accounts/{name}")
}

fn storage_id(rg: &str, name: &str) -> String {
    format!("{SUB}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}")
}

fn share(account: &str, name: &str, store: &str, with_consumer: bool) -> ShareObservation {
    let share_id = format!("{account}/shares/{name}");
    let mut datasets = BTreeMap::new();
    datasets.insert(
        "raw".to_string(),
        DatasetObservation {
            id: format!("{share_id}/dataSets/raw"),
            name: "raw".into(),
            kind: "Container".into(),
            store: Some(store.to_string()),
            store_kind: Some(StoreKind::Storage),
            locator: BTreeMap::from([("containerName".to_string(), "raw".to_string())]),
        },
    );
    let mut sync_settings = BTreeMap::new();
    sync_settings.insert(
        "daily".to_string(),
        SyncSettingObservation {
            id: format!("{share_id}/synchronizationSettings/daily"),
            name: "daily".into(),
            kind: "ScheduleBased".into(),
            recurrence_interval: Some("Day".into()),
            synchronization_time: Some(datetime!(2025-01-01 02:00 UTC)),
        },
    );
    let (invitations, subscriptions) = if with_consumer {
        (
            vec![InvitationObservation {
                id: format!("{share_id}/invitations/alice"),
                name: "alice".into(),
                invitation_id: Some("aaaaaaaa-0000-0000-0000-000000000001".into()),
                target: Some(ConsumerTarget::Email {
                    email: "Alice@Fabrikam.com".into(),
                }),
                status: "Accepted".into(),
                expiration: None,
            }],
            vec![SubscriptionObservation {
                id: format!(
                    "{share_id}/providerShareSubscriptions/aaaaaaaa-0000-0000-0000-000000000001"
                ),
                name: "aaaaaaaa-0000-0000-0000-000000000001".into(),
                consumer_email: Some("alice@fabrikam.com".into()),
                consumer_name: Some("Alice".into()),
                consumer_tenant_name: Some("Fabrikam".into()),
                status: "Active".into(),
                expiration: None,
            }],
        )
    } else {
        (Vec::new(), Vec::new())
    };
    ShareObservation {
        id: share_id,
        name: name.into(),
        share_kind: Some("CopyBased".into()),
        description: Some("sales data".into()),
        terms: None,
        datasets,
        sync_settings,
        invitations,
        subscriptions,
        synchronizations: None,
    }
}

/// A fully replicated pair: one share, one dataset, one schedule, one consumer invited on both
/// sides, the store mapped and readable, a fresh snapshot and a recent drill.
fn clean() -> Observations {
    let primary_id = account_id("rg-weu", "sales-weu");
    let secondary_id = account_id("rg-neu", "sales-neu");
    let pstore = storage_id("rg-weu", "rawweu");
    let sstore = storage_id("rg-neu", "rawneu");
    let mut pshare = share(&primary_id, "sales", &pstore, true);
    pshare.synchronizations = Some(vec![
        SynchronizationObservation {
            synchronization_id: Some("s1".into()),
            status: "Succeeded".into(),
            start_time: Some(NOW - Duration::hours(10)),
            end_time: Some(NOW - Duration::hours(9)),
        },
        SynchronizationObservation {
            synchronization_id: Some("s0".into()),
            status: "Failed".into(),
            start_time: Some(NOW - Duration::hours(2)),
            end_time: Some(NOW - Duration::hours(1)),
        },
    ]);
    let mut sshare = share(&secondary_id, "sales", &sstore, false);
    sshare.invitations.push(InvitationObservation {
        id: format!("{}/invitations/alice", sshare.id),
        name: "alice".into(),
        invitation_id: Some("bbbbbbbb-0000-0000-0000-000000000001".into()),
        target: Some(ConsumerTarget::Email {
            email: "alice@fabrikam.com".into(),
        }),
        status: "Pending".into(),
        expiration: Some(NOW + Duration::days(60)),
    });
    Observations {
        pair: "sales".into(),
        primary_id: primary_id.clone(),
        secondary_id: secondary_id.clone(),
        primary_region: "westeurope".into(),
        secondary_region: "northeurope".into(),
        primary: AccountObservation::Present(AccountSnapshot {
            id: primary_id,
            location: "westeurope".into(),
            provisioning_state: "Succeeded".into(),
            principal_id: Some("99999999-0000-0000-0000-000000000000".into()),
            shares: BTreeMap::from([("sales".to_string(), pshare)]),
        }),
        secondary: AccountObservation::Present(AccountSnapshot {
            id: secondary_id,
            location: "northeurope".into(),
            provisioning_state: "Succeeded".into(),
            principal_id: Some(PRINCIPAL.into()),
            shares: BTreeMap::from([("sales".to_string(), sshare)]),
        }),
        store_mapping: BTreeMap::from([(pstore, Some(sstore.clone()))]),
        stores: BTreeMap::from([(
            sstore.clone(),
            StoreObservation {
                id: sstore,
                kind: StoreKind::Storage,
                existence: StoreExistence::Present {
                    location: "northeurope".into(),
                },
                identity_roles: Some(vec![format!(
                    "{SUB}/providers/Microsoft.Authorization/roleDefinitions/{BLOB_READER}"
                )]),
            },
        )]),
        last_drill: Some(DrillRecord {
            completed_at: NOW - Duration::days(10),
            run_id: Some("run-1".into()),
            rto_secs: Some(42.0),
        }),
    }
}

fn secondary(obs: &mut Observations) -> &mut AccountSnapshot {
    match &mut obs.secondary {
        AccountObservation::Present(s) => s,
        _ => unreachable!("the clean fixture has a secondary"),
    }
}

fn primary(obs: &mut Observations) -> &mut AccountSnapshot {
    match &mut obs.primary {
        AccountObservation::Present(s) => s,
        _ => unreachable!("the clean fixture has a primary"),
    }
}

fn sshare(obs: &mut Observations) -> &mut ShareObservation {
    secondary(obs)
        .shares
        .get_mut("sales")
        .expect("fixture share")
}

fn pshare(obs: &mut Observations) -> &mut ShareObservation {
    primary(obs).shares.get_mut("sales").expect("fixture share")
}

fn store(obs: &mut Observations) -> &mut StoreObservation {
    obs.stores.values_mut().next().expect("fixture store")
}

#[test]
fn a_fully_replicated_pair_is_ready_with_full_score() {
    let report = evaluate(&clean(), &Policy::default(), NOW);
    assert_eq!(report.status, Status::Ready, "{:#?}", report.findings);
    assert_eq!(report.score, 100);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.checked_at, NOW);
    assert_eq!(report.rpo.len(), 1);
    assert_eq!(report.rpo[0].age_secs, Some(9 * 3600));
    assert_eq!(report.rpo[0].limit_secs, Some(2 * 86_400));
    assert!(!report.rpo[0].exceeded);
    assert_eq!(
        report.last_drill.as_ref().and_then(|d| d.rto_secs),
        Some(42.0)
    );
}

type Mutation = fn(&mut Observations);

/// (test name, mutation, expected code, expected severity, expected status)
const CASES: &[(&str, Mutation, &str, Severity, Status)] = &[
    (
        "secondary account missing",
        |o| o.secondary = AccountObservation::Missing,
        codes::SECONDARY_ACCOUNT_MISSING,
        Severity::Critical,
        Status::NotReady,
    ),
    (
        "secondary region down",
        |o| {
            o.secondary = AccountObservation::Unreachable {
                reason: "503 region down".into(),
            }
        },
        codes::SECONDARY_UNREACHABLE,
        Severity::Critical,
        Status::NotReady,
    ),
    (
        "secondary account still creating",
        |o| secondary(o).provisioning_state = "Creating".into(),
        codes::SECONDARY_ACCOUNT_NOT_SUCCEEDED,
        Severity::Critical,
        Status::NotReady,
    ),
    (
        "secondary account in the wrong region",
        |o| secondary(o).location = "West Europe".into(),
        codes::SECONDARY_ACCOUNT_WRONG_REGION,
        Severity::Critical,
        Status::NotReady,
    ),
    (
        "secondary account without identity",
        |o| secondary(o).principal_id = None,
        codes::IDENTITY_MISSING,
        Severity::Critical,
        Status::NotReady,
    ),
    (
        "primary region down",
        |o| {
            o.primary = AccountObservation::Unreachable {
                reason: "503 region down".into(),
            }
        },
        codes::PRIMARY_UNREACHABLE,
        Severity::Warning,
        Status::Degraded,
    ),
    (
        "primary read with an expired token",
        |o| {
            o.primary = AccountObservation::Faulted {
                fault: crate::arm::fault::ToolFault::Authentication,
                reason: "HTTP 401 InvalidAuthenticationToken".into(),
            }
        },
        codes::TOOL_FAULT,
        Severity::Warning,
        Status::Unknown,
    ),
    (
        "secondary read through a wrong endpoint",
        |o| {
            o.secondary = AccountObservation::Faulted {
                fault: crate::arm::fault::ToolFault::Configuration,
                reason: "connection refused".into(),
            }
        },
        codes::TOOL_FAULT,
        Severity::Warning,
        Status::Unknown,
    ),
    (
        "neither region answers",
        |o| {
            o.primary = AccountObservation::Unreachable {
                reason: "503".into(),
            };
            o.secondary = AccountObservation::Unreachable {
                reason: "timeout".into(),
            };
        },
        codes::NO_REGION_ANSWERS,
        Severity::Warning,
        Status::Unknown,
    ),
    (
        "share removed from the secondary",
        |o| {
            secondary(o).shares.clear();
        },
        codes::SHARE_MISSING,
        Severity::Critical,
        Status::NotReady,
    ),
    (
        "share kind differs",
        |o| sshare(o).share_kind = Some("InPlace".into()),
        codes::SHARE_MISMATCH,
        Severity::Warning,
        Status::Degraded,
    ),
    (
        "dataset removed from the secondary",
        |o| {
            sshare(o).datasets.clear();
        },
        codes::DATASET_MISSING,
        Severity::Critical,
        Status::NotReady,
    ),
    (
        "dataset points at another container",
        |o| {
            let ds = sshare(o).datasets.get_mut("raw").expect("fixture dataset");
            ds.locator.insert("containerName".into(), "other".into());
        },
        codes::DATASET_MISMATCH,
        Severity::Warning,
        Status::Degraded,
    ),
    (
        "dataset reads from the primary store",
        |o| {
            let pstore = storage_id("rg-weu", "rawweu");
            let ds = sshare(o).datasets.get_mut("raw").expect("fixture dataset");
            ds.store = Some(pstore);
        },
        codes::DATASET_MISMATCH,
        Severity::Warning,
        Status::Degraded,
    ),
    (
        "extra secondary share",
        |o| {
            let id = o.secondary_id.clone();
            let extra = share(&id, "old", &storage_id("rg-neu", "rawneu"), false);
            secondary(o).shares.insert("old".into(), extra);
        },
        codes::DRIFT_EXTRA,
        Severity::Info,
        Status::Ready,
    ),
    (
        "schedule removed from the secondary",
        |o| {
            sshare(o).sync_settings.clear();
        },
        codes::SYNC_SETTING_MISSING,
        Severity::Warning,
        Status::Degraded,
    ),
    (
        "schedule differs on the secondary",
        |o| {
            let s = sshare(o)
                .sync_settings
                .get_mut("daily")
                .expect("fixture setting");
            s.recurrence_interval = Some("Hour".into());
        },
        codes::SYNC_SETTING_MISMATCH,
        Severity::Warning,
        Status::Degraded,
    ),
    (
        "store without mapping rule",
        |o| {
            for v in o.store_mapping.values_mut() {
                *v = None;
            }
        },
        codes::STORE_UNMAPPED,
        Severity::Critical,
        Status::NotReady,
    ),
    (
        "mapped store deleted",
        |o| store(o).existence = StoreExistence::Missing,
        codes::STORE_MISSING,
        Severity::Critical,
        Status::NotReady,
    ),
    (
        "mapped store in the primary region",
        |o| {
            store(o).existence = StoreExistence::Present {
                location: "westeurope".into(),
            }
        },
        codes::STORE_WRONG_REGION,
        Severity::Critical,
        Status::NotReady,
    ),
    (
        "reader role missing on the store",
        |o| store(o).identity_roles = Some(vec!["acdd72a7-3385-48ef-bd42-f606fba81ae7".into()]),
        codes::IDENTITY_ROLE_MISSING,
        Severity::Critical,
        Status::NotReady,
    ),
    (
        "consumer not invited on the secondary",
        |o| sshare(o).invitations.clear(),
        codes::CONSUMER_NOT_COVERED,
        Severity::Warning,
        Status::Degraded,
    ),
    (
        "secondary invitation expiring within the horizon",
        |o| sshare(o).invitations[0].expiration = Some(NOW + Duration::days(3)),
        codes::INVITATION_EXPIRING,
        Severity::Warning,
        Status::Degraded,
    ),
    (
        "secondary invitation already expired",
        |o| sshare(o).invitations[0].expiration = Some(NOW - Duration::days(1)),
        codes::INVITATION_EXPIRED,
        Severity::Warning,
        Status::Degraded,
    ),
    (
        "primary subscription expiring within the horizon",
        |o| pshare(o).subscriptions[0].expiration = Some(NOW + Duration::days(5)),
        codes::SUBSCRIPTION_EXPIRING,
        Severity::Warning,
        Status::Degraded,
    ),
    (
        "snapshot older than twice the daily schedule",
        |o| {
            let runs = pshare(o).synchronizations.as_mut().expect("fixture runs");
            runs[0].end_time = Some(NOW - Duration::hours(49));
        },
        codes::RPO_EXCEEDED,
        Severity::Warning,
        Status::Degraded,
    ),
    (
        "no successful snapshot yet",
        |o| pshare(o).synchronizations = Some(Vec::new()),
        codes::RPO_UNKNOWN,
        Severity::Info,
        Status::Ready,
    ),
    (
        "last drill too old",
        |o| {
            if let Some(d) = o.last_drill.as_mut() {
                d.completed_at = NOW - Duration::days(120);
            }
        },
        codes::DRILL_STALE,
        Severity::Warning,
        Status::Degraded,
    ),
    (
        "never drilled",
        |o| o.last_drill = None,
        codes::DRILL_NEVER,
        Severity::Info,
        Status::Ready,
    ),
    (
        "ADLS Gen1 dataset",
        |o| {
            let ds = pshare(o).datasets.get_mut("raw").expect("fixture dataset");
            ds.kind = "AdlsGen1Folder".into();
            ds.store_kind = Some(StoreKind::AdlsGen1);
        },
        codes::DATASET_KIND_RETIRED,
        Severity::Warning,
        Status::Degraded,
    ),
];

#[test]
fn each_broken_check_turns_up_as_its_own_finding_with_its_severity_and_status() {
    for (name, mutate, code, severity, status) in CASES {
        let mut obs = clean();
        mutate(&mut obs);
        let report = evaluate(&obs, &Policy::default(), NOW);
        let found: Vec<_> = report.findings.iter().filter(|f| f.code == *code).collect();
        assert!(
            !found.is_empty(),
            "{name}: expected {code}, got {:#?}",
            report.findings
        );
        assert!(
            found.iter().all(|f| f.severity == *severity),
            "{name}: {code} should be {severity:?}: {found:#?}"
        );
        assert_eq!(report.status, *status, "{name}: {:#?}", report.findings);
        assert!(
            found
                .iter()
                .all(|f| !f.remedy.is_empty() && !f.message.is_empty()),
            "{name}: findings need a message and a remedy"
        );
        match status {
            Status::Ready => assert_eq!(report.score, 100, "{name}"),
            Status::Degraded => assert!((50..=89).contains(&report.score), "{name}"),
            Status::NotReady => assert!(report.score <= 49, "{name}"),
            Status::Unknown => {
                // Nothing else was assessed, and nothing suggests a failover.
                assert!(
                    report
                        .findings
                        .iter()
                        .all(|f| codes::is_cannot_assess(&f.code)),
                    "{name}: {:#?}",
                    report.findings
                );
                assert!(
                    report
                        .findings
                        .iter()
                        .all(|f| !format!("{} {}", f.message, f.remedy).contains("failover")),
                    "{name}: {:#?}",
                    report.findings
                );
                assert_eq!(report.score, 0, "{name}");
            }
        }
    }
}

#[test]
fn a_consumer_listed_for_invitation_at_failover_is_covered_with_an_info() {
    let mut obs = clean();
    sshare(&mut obs).invitations.clear();
    let policy = Policy {
        consumer_overrides: vec![(
            ConsumerTarget::Email {
                email: "ALICE@fabrikam.com".into(),
            },
            InvitationPolicy::AtFailover,
        )],
        ..Policy::default()
    };
    let report = evaluate(&obs, &policy, NOW);
    assert_eq!(report.status, Status::Ready, "{:#?}", report.findings);
    assert!(report.has(codes::CONSUMER_INVITE_AT_FAILOVER));
    assert!(!report.has(codes::CONSUMER_NOT_COVERED));
}

#[test]
fn an_expired_pending_invitation_does_not_cover_the_consumer() {
    let mut obs = clean();
    sshare(&mut obs).invitations[0].expiration = Some(NOW - Duration::hours(1));
    let report = evaluate(&obs, &Policy::default(), NOW);
    assert!(report.has(codes::CONSUMER_NOT_COVERED));
}

#[test]
fn a_revoked_primary_consumer_needs_no_coverage() {
    let mut obs = clean();
    sshare(&mut obs).invitations.clear();
    pshare(&mut obs).subscriptions[0].status = "Revoked".into();
    let report = evaluate(&obs, &Policy::default(), NOW);
    assert!(
        !report.has(codes::CONSUMER_NOT_COVERED),
        "{:#?}",
        report.findings
    );
}

#[test]
fn a_primary_outage_skips_drift_with_an_info_and_keeps_checking_the_secondary() {
    let mut obs = clean();
    obs.primary = AccountObservation::Unreachable {
        reason: "region down".into(),
    };
    store(&mut obs).existence = StoreExistence::Missing;
    let report = evaluate(&obs, &Policy::default(), NOW);
    assert!(report.has(codes::PRIMARY_UNREACHABLE));
    assert!(report.has(codes::DRIFT_UNVERIFIED));
    assert!(report.has(codes::STORE_MISSING));
    assert_eq!(report.status, Status::NotReady);
    assert!(report.rpo.is_empty());
}

#[test]
fn ids_and_emails_compare_without_case() {
    let mut obs = clean();
    let upper: BTreeMap<_, _> = obs
        .store_mapping
        .iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v.clone().map(|v| v.to_uppercase())))
        .collect();
    obs.store_mapping = upper;
    sshare(&mut obs).invitations[0].target = Some(ConsumerTarget::Email {
        email: "ALICE@FABRIKAM.COM".into(),
    });
    let report = evaluate(&obs, &Policy::default(), NOW);
    assert_eq!(report.status, Status::Ready, "{:#?}", report.findings);
}

#[test]
fn findings_are_sorted_most_severe_first() {
    let mut obs = clean();
    obs.last_drill = None;
    sshare(&mut obs).datasets.clear();
    sshare(&mut obs).invitations.clear();
    let report = evaluate(&obs, &Policy::default(), NOW);
    let severities: Vec<_> = report.findings.iter().map(|f| f.severity).collect();
    let mut sorted = severities.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(severities, sorted);
    assert_eq!(report.counts.critical, 1);
    assert_eq!(report.counts.warning, 1);
    assert_eq!(report.counts.info, 1);
}

#[test]
fn score_falls_with_each_finding_and_orders_like_the_status() {
    let c = |critical, warning, info| SeverityCounts {
        critical,
        warning,
        info,
    };
    assert_eq!(status_and_score(c(0, 0, 5)), (Status::Ready, 100));
    assert_eq!(status_and_score(c(0, 1, 0)), (Status::Degraded, 89));
    assert_eq!(status_and_score(c(0, 3, 0)), (Status::Degraded, 70));
    assert_eq!(status_and_score(c(1, 0, 0)), (Status::NotReady, 49));
    assert_eq!(status_and_score(c(3, 0, 0)), (Status::NotReady, 25));
    assert_eq!(status_and_score(c(10, 10, 0)), (Status::NotReady, 0));
}

/// Every `datashare-dr` command a remedy suggests names the DR config (`--config`, shell-quoted
/// when the path needs it) and sits in backticks, so the page can show it as code.
#[test]
fn every_command_in_a_remedy_carries_the_config_path() {
    let policy = Policy {
        config_path: "ops/dr config.toml".into(),
        ..Policy::default()
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut scenarios: Vec<Observations> = CASES
        .iter()
        .map(|(_, mutate, ..)| {
            let mut obs = clean();
            mutate(&mut obs);
            obs
        })
        .collect();
    let mut never = clean();
    never.last_drill = None;
    scenarios.push(never);
    for obs in &scenarios {
        for f in evaluate(obs, &policy, NOW).findings {
            let mut rest = f.remedy.as_str();
            while let Some(at) = rest.find("datashare-dr ") {
                assert!(
                    rest[..at].ends_with('`'),
                    "{}: command not in backticks: {}",
                    f.code,
                    f.remedy
                );
                let cmd_end = rest[at..].find('`').map_or(rest.len(), |e| at + e);
                let cmd = &rest[at..cmd_end];
                assert!(
                    cmd.contains(" --config 'ops/dr config.toml'"),
                    "{}: {cmd:?} lacks --config: {}",
                    f.code,
                    f.remedy
                );
                seen.insert(f.code.clone());
                rest = &rest[cmd_end..];
            }
        }
    }
    assert!(seen.len() >= 5, "too few remedies with a command: {seen:?}");
}

#[test]
fn the_report_serialises_with_camel_case_keys_and_round_trips() {
    let mut obs = clean();
    sshare(&mut obs).datasets.clear();
    let report = evaluate(&obs, &Policy::default(), NOW);
    let json = serde_json::to_value(&report).expect("serialise");
    assert_eq!(json["status"], "NotReady");
    assert_eq!(json["checkedAt"], "2025-06-01T12:00:00Z");
    assert_eq!(json["findings"][0]["code"], "dataset-missing");
    assert_eq!(json["findings"][0]["severity"], "Critical");
    assert!(json["findings"][0]["resourceId"].is_string());
    let back: Report = serde_json::from_value(json).expect("deserialise");
    assert_eq!(back, report);
}

#[test]
fn consumer_targets_parse_the_config_forms() {
    assert_eq!(
        ConsumerTarget::parse("tenant:t1/object:o1"),
        Some(ConsumerTarget::Principal {
            tenant_id: "t1".into(),
            object_id: "o1".into()
        })
    );
    assert!(matches!(
        ConsumerTarget::parse("bob@contoso.com"),
        Some(ConsumerTarget::Email { .. })
    ));
    assert_eq!(ConsumerTarget::parse("tenant:/object:x"), None);
    assert_eq!(ConsumerTarget::parse("nobody"), None);
}
