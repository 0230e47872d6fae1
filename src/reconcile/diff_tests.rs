//! Table-driven tests of the pure planner.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::reconcile::mapping::StoreKind;
use crate::reconcile::model::{
    AdlsGen1Ref, ConsumerSpec, DataSetSpec, InvitationSpec, Recurrence, ScheduleSpec, ShareKind,
    ShareProps, StorageAccountRef,
};
use crate::reconcile::plan::Summary;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

struct Rules {
    select: Option<Vec<&'static str>>,
    default_policy: InvitationPolicy,
    overrides: Vec<(Target, InvitationPolicy)>,
    map: fn(StoreKind, &str) -> Option<String>,
}

fn weu_to_neu(_: StoreKind, id: &str) -> Option<String> {
    id.contains("weu").then(|| id.replace("weu", "neu"))
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            select: None,
            default_policy: InvitationPolicy::Now,
            overrides: vec![],
            map: weu_to_neu,
        }
    }
}

impl PairRules for Rules {
    fn selects(&self, share: &str) -> bool {
        self.select
            .as_ref()
            .is_none_or(|s| s.iter().any(|n| n.eq_ignore_ascii_case(share)))
    }
    fn stores(&self) -> &dyn StoreRules {
        &self.map
    }
    fn invitation_policy(&self, target: &Target) -> InvitationPolicy {
        self.overrides
            .iter()
            .find(|(t, _)| t == target)
            .map(|(_, p)| *p)
            .unwrap_or(self.default_policy)
    }
}

fn props(desc: &str) -> ShareProps {
    ShareProps {
        description: Some(desc.into()),
        terms: Some("terms".into()),
        kind: ShareKind::CopyBased,
    }
}

fn blob(region: &str, path: &str) -> DataSetSpec {
    DataSetSpec::Blob {
        store: StorageAccountRef {
            subscription_id: "S".into(),
            resource_group: format!("rg-{region}").into(),
            storage_account_name: format!("raw{region}").into(),
        },
        container_name: "landing".into(),
        file_path: path.into(),
    }
}

fn daily(hour: u8) -> ScheduleSpec {
    ScheduleSpec {
        recurrence_interval: Recurrence::Day,
        synchronization_time: datetime!(2026-01-01 00:00 UTC)
            .replace_hour(hour)
            .unwrap_or(NOW),
    }
}

fn email(e: &str) -> Target {
    Target::Email(e.into())
}

fn tenant(t: &str, o: &str) -> Target {
    Target::Tenant {
        tenant_id: t.into(),
        object_id: o.into(),
    }
}

fn consumer(t: Target, status: SubscriptionStatus) -> ConsumerSpec {
    ConsumerSpec {
        display: t.to_string(),
        target: Some(t),
        candidates: Vec::new(),
        status,
        expiration: None,
    }
}

fn invitation(t: Target, status: InvitationStatus) -> InvitationSpec {
    InvitationSpec {
        target: t,
        expiration: None,
        status,
    }
}

/// A primary share: one blob data set in West Europe, a daily schedule, one active consumer.
fn primary_share() -> ShareModel {
    let mut s = ShareModel::new(props("sales data"));
    s.datasets
        .insert("orders".into(), blob("weu", "orders.csv"));
    s.sync_settings.insert("daily".into(), daily(2));
    s.consumers.push(consumer(
        email("alice@fabrikam.com"),
        SubscriptionStatus::Active,
    ));
    s
}

/// The matching secondary share: data set mapped to North Europe, same schedule, alice invited.
fn secondary_share() -> ShareModel {
    let mut s = ShareModel::new(props("sales data"));
    s.datasets
        .insert("orders".into(), blob("neu", "orders.csv"));
    s.sync_settings.insert("daily".into(), daily(2));
    s.invitations.push(invitation(
        email("alice@fabrikam.com"),
        InvitationStatus::Pending,
    ));
    s
}

fn account(shares: Vec<(&str, ShareModel)>) -> AccountModel {
    AccountModel {
        shares: shares.into_iter().map(|(n, s)| (n.into(), s)).collect(),
    }
}

fn opts(prune: bool) -> PlanOptions {
    PlanOptions {
        prune,
        create_account: None,
        now: NOW,
    }
}

/// Compact description of a change for assertions.
fn describe(c: &Change) -> String {
    match c {
        Change::CreateInvitation { share, spec, .. } => format!("invite {share} {}", spec.target),
        Change::CreateAccount { .. } => "create account".into(),
        _ => {
            let verb = match c.action() {
                super::super::plan::Action::Create => "create",
                super::super::plan::Action::Update => "update",
                super::super::plan::Action::Replace => "replace",
                super::super::plan::Action::Delete => "delete",
            };
            format!("{verb} {}", c.address())
        }
    }
}

struct Case {
    name: &'static str,
    primary: AccountModel,
    secondary: Option<AccountModel>,
    rules: Rules,
    opts: PlanOptions,
    changes: &'static [&'static str],
    findings: &'static [FindingCode],
}

fn with<F: FnOnce(&mut ShareModel)>(mut s: ShareModel, f: F) -> ShareModel {
    f(&mut s);
    s
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "bootstrap of an empty secondary creates everything in order",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(AccountModel::default()),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[
                "create shares/sales",
                "create shares/sales/dataSets/orders",
                "create shares/sales/synchronizationSettings/daily",
                "invite sales alice@fabrikam.com",
            ],
            findings: &[],
        },
        Case {
            name: "a missing secondary account is created first when configured",
            primary: account(vec![("sales", primary_share())]),
            secondary: None,
            rules: Rules::default(),
            opts: PlanOptions {
                create_account: Some(AccountSpec {
                    location: "northeurope".into(),
                    tags: BTreeMap::new(),
                }),
                ..opts(false)
            },
            changes: &[
                "create account",
                "create shares/sales",
                "create shares/sales/dataSets/orders",
                "create shares/sales/synchronizationSettings/daily",
                "invite sales alice@fabrikam.com",
            ],
            findings: &[],
        },
        Case {
            name: "a missing secondary account without create_secondary is one finding",
            primary: account(vec![("sales", primary_share())]),
            secondary: None,
            rules: Rules::default(),
            opts: opts(true),
            changes: &[],
            findings: &[FindingCode::SecondaryAccountMissing],
        },
        Case {
            name: "an equal secondary plans nothing",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![("sales", secondary_share())])),
            rules: Rules::default(),
            opts: opts(true),
            changes: &[],
            findings: &[],
        },
        Case {
            name: "names compare case-insensitively",
            primary: account(vec![("Sales", primary_share())]),
            secondary: Some(account(vec![(
                "SALES",
                with(secondary_share(), |s| {
                    let d = s
                        .datasets
                        .remove(&"orders".into())
                        .unwrap_or_else(|| blob("neu", "x"));
                    s.datasets.insert("ORDERS".into(), d);
                }),
            )])),
            rules: Rules::default(),
            opts: opts(true),
            changes: &[],
            findings: &[],
        },
        Case {
            name: "a missing data set is created",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| s.datasets.clear()),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &["create shares/sales/dataSets/orders"],
            findings: &[],
        },
        Case {
            name: "a changed data set path is a replace",
            primary: account(vec![(
                "sales",
                with(primary_share(), |s| {
                    s.datasets
                        .insert("orders".into(), blob("weu", "orders-v2.csv"));
                }),
            )]),
            secondary: Some(account(vec![("sales", secondary_share())])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &["replace shares/sales/dataSets/orders"],
            findings: &[],
        },
        Case {
            name: "a changed schedule is a replace of the setting",
            primary: account(vec![(
                "sales",
                with(primary_share(), |s| {
                    s.sync_settings.insert("daily".into(), daily(5));
                }),
            )]),
            secondary: Some(account(vec![("sales", secondary_share())])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &["replace shares/sales/synchronizationSettings/daily"],
            findings: &[],
        },
        Case {
            name: "a changed recurrence is a replace of the setting",
            primary: account(vec![(
                "sales",
                with(primary_share(), |s| {
                    s.sync_settings.insert(
                        "daily".into(),
                        ScheduleSpec {
                            recurrence_interval: Recurrence::Hour,
                            ..daily(2)
                        },
                    );
                }),
            )]),
            secondary: Some(account(vec![("sales", secondary_share())])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &["replace shares/sales/synchronizationSettings/daily"],
            findings: &[],
        },
        Case {
            name: "a schedule equal as an instant in another offset is no change",
            primary: account(vec![(
                "sales",
                with(primary_share(), |s| {
                    s.sync_settings.insert(
                        "daily".into(),
                        ScheduleSpec {
                            recurrence_interval: Recurrence::Day,
                            synchronization_time: datetime!(2026-01-01 04:00 +02:00),
                        },
                    );
                }),
            )]),
            secondary: Some(account(vec![("sales", secondary_share())])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[],
            findings: &[],
        },
        Case {
            name: "a changed description is an update of the share",
            primary: account(vec![(
                "sales",
                with(primary_share(), |s| s.props = props("new")),
            )]),
            secondary: Some(account(vec![("sales", secondary_share())])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &["update shares/sales"],
            findings: &[],
        },
        Case {
            name: "an unmapped store is a finding and the secondary namesake is left alone",
            primary: account(vec![(
                "sales",
                with(primary_share(), |s| {
                    s.datasets
                        .insert("orders".into(), blob("use", "orders.csv"));
                }),
            )]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| {
                    s.datasets
                        .insert("orders".into(), blob("other", "orders.csv"));
                }),
            )])),
            rules: Rules::default(),
            opts: opts(true),
            changes: &[],
            findings: &[FindingCode::UnmappedStore],
        },
        Case {
            name: "a retired ADLS Gen1 data set is a finding",
            primary: account(vec![(
                "sales",
                with(primary_share(), |s| {
                    s.datasets.insert(
                        "lake".into(),
                        DataSetSpec::AdlsGen1File {
                            account: AdlsGen1Ref {
                                subscription_id: "S".into(),
                                resource_group: "rg-weu".into(),
                                account_name: "lakeweu".into(),
                            },
                            folder_path: "f".into(),
                            file_name: "x".into(),
                        },
                    );
                }),
            )]),
            secondary: Some(account(vec![("sales", secondary_share())])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[],
            findings: &[FindingCode::RetiredKind],
        },
        Case {
            name: "an extra secondary share is reported without prune",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![
                ("sales", secondary_share()),
                ("old", ShareModel::new(props("x"))),
            ])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[],
            findings: &[FindingCode::ExtraShare],
        },
        Case {
            name: "an extra secondary share is deleted with prune and nothing else",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![
                ("sales", secondary_share()),
                ("old", ShareModel::new(props("x"))),
            ])),
            rules: Rules::default(),
            opts: opts(true),
            changes: &["delete shares/old"],
            findings: &[],
        },
        Case {
            name: "an extra data set and setting are reported, or deleted with prune",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| {
                    s.datasets.insert("legacy".into(), blob("neu", "l.csv"));
                    s.sync_settings.insert("hourly".into(), daily(1));
                }),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[],
            findings: &[FindingCode::ExtraDataSet, FindingCode::ExtraSyncSetting],
        },
        Case {
            name: "prune deletes an extra data set and setting",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| {
                    s.datasets.insert("legacy".into(), blob("neu", "l.csv"));
                    s.sync_settings.insert("hourly".into(), daily(1));
                }),
            )])),
            rules: Rules::default(),
            opts: opts(true),
            changes: &[
                "delete shares/sales/dataSets/legacy",
                "delete shares/sales/synchronizationSettings/hourly",
            ],
            findings: &[],
        },
        Case {
            name: "unselected shares are ignored on both sides",
            primary: account(vec![("sales", primary_share()), ("hr", primary_share())]),
            secondary: Some(account(vec![
                ("sales", secondary_share()),
                ("payroll", ShareModel::new(props("x"))),
            ])),
            rules: Rules {
                select: Some(vec!["sales"]),
                ..Rules::default()
            },
            opts: opts(true),
            changes: &[],
            findings: &[],
        },
        Case {
            name: "a different share kind is a finding and nothing under it changes",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![(
                "sales",
                with(ShareModel::new(props("sales data")), |s| {
                    s.props.kind = ShareKind::InPlace
                }),
            )])),
            rules: Rules::default(),
            opts: opts(true),
            changes: &[],
            findings: &[FindingCode::ShareKindDiffers],
        },
        Case {
            name: "invitation dedup compares emails case-insensitively",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| {
                    s.invitations = vec![invitation(
                        email("ALICE@Fabrikam.COM"),
                        InvitationStatus::Pending,
                    )];
                }),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[],
            findings: &[],
        },
        Case {
            name: "an accepted invitation covers the target",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| {
                    s.invitations = vec![invitation(
                        email("alice@fabrikam.com"),
                        InvitationStatus::Accepted,
                    )];
                }),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[],
            findings: &[],
        },
        Case {
            name: "an active secondary subscription covers the target",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| {
                    s.invitations.clear();
                    s.consumers = vec![consumer(
                        email("Alice@fabrikam.com"),
                        SubscriptionStatus::Active,
                    )];
                }),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[],
            findings: &[],
        },
        Case {
            name: "a tenant and object consumer is invited in the same form and deduped by it",
            primary: account(vec![
                (
                    "a",
                    with(primary_share(), |s| {
                        s.consumers =
                            vec![consumer(tenant("T1", "O1"), SubscriptionStatus::Active)];
                    }),
                ),
                (
                    "b",
                    with(primary_share(), |s| {
                        s.consumers =
                            vec![consumer(tenant("T1", "O1"), SubscriptionStatus::Active)];
                    }),
                ),
            ]),
            secondary: Some(account(vec![
                (
                    "a",
                    with(secondary_share(), |s| {
                        s.invitations =
                            vec![invitation(tenant("t1", "o1"), InvitationStatus::Pending)];
                    }),
                ),
                (
                    "b",
                    with(secondary_share(), |s| {
                        // Same object in another tenant does not cover it.
                        s.invitations =
                            vec![invitation(tenant("T2", "O1"), InvitationStatus::Pending)];
                    }),
                ),
            ])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &["invite b tenant:T1/object:O1"],
            findings: &[],
        },
        Case {
            name: "a revoked or expired consumer is not invited",
            primary: account(vec![(
                "sales",
                with(primary_share(), |s| {
                    s.consumers = vec![
                        consumer(email("alice@fabrikam.com"), SubscriptionStatus::Revoked),
                        ConsumerSpec {
                            expiration: Some(datetime!(2026-05-01 00:00 UTC)),
                            ..consumer(email("bob@fabrikam.com"), SubscriptionStatus::Active)
                        },
                        consumer(
                            email("carol@fabrikam.com"),
                            SubscriptionStatus::SourceDeleted,
                        ),
                    ];
                }),
            )]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| s.invitations.clear()),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[],
            findings: &[],
        },
        Case {
            name: "pending primary invitations are mirrored, expired or rejected ones are not",
            primary: account(vec![(
                "sales",
                with(primary_share(), |s| {
                    s.consumers.clear();
                    s.invitations = vec![
                        InvitationSpec {
                            expiration: Some(datetime!(2026-12-31 00:00 UTC)),
                            ..invitation(email("dave@contoso.com"), InvitationStatus::Pending)
                        },
                        InvitationSpec {
                            expiration: Some(datetime!(2026-01-01 00:00 UTC)),
                            ..invitation(email("erin@contoso.com"), InvitationStatus::Pending)
                        },
                        invitation(email("frank@contoso.com"), InvitationStatus::Rejected),
                        invitation(email("gina@contoso.com"), InvitationStatus::Withdrawn),
                    ];
                }),
            )]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| s.invitations.clear()),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &["invite sales dave@contoso.com"],
            findings: &[],
        },
        Case {
            name: "a consumer with both a subscription and a pending invitation gets one invitation",
            primary: account(vec![(
                "sales",
                with(primary_share(), |s| {
                    s.invitations = vec![invitation(
                        email("ALICE@fabrikam.com"),
                        InvitationStatus::Pending,
                    )];
                }),
            )]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| s.invitations.clear()),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &["invite sales alice@fabrikam.com"],
            findings: &[],
        },
        Case {
            name: "policy at-failover sends no invitation now",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| s.invitations.clear()),
            )])),
            rules: Rules {
                default_policy: InvitationPolicy::AtFailover,
                ..Rules::default()
            },
            opts: opts(false),
            changes: &[],
            findings: &[],
        },
        Case {
            name: "a per-consumer override wins over the pair policy both ways",
            primary: account(vec![(
                "sales",
                with(primary_share(), |s| {
                    s.consumers = vec![
                        consumer(email("alice@fabrikam.com"), SubscriptionStatus::Active),
                        consumer(email("bob@fabrikam.com"), SubscriptionStatus::Active),
                        consumer(email("carol@fabrikam.com"), SubscriptionStatus::Active),
                    ];
                }),
            )]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| s.invitations.clear()),
            )])),
            rules: Rules {
                default_policy: InvitationPolicy::AtFailover,
                overrides: vec![
                    (email("BOB@fabrikam.com"), InvitationPolicy::Now),
                    (email("carol@fabrikam.com"), InvitationPolicy::AtFailover),
                ],
                ..Rules::default()
            },
            opts: opts(false),
            changes: &["invite sales bob@fabrikam.com"],
            findings: &[],
        },
        Case {
            name: "a rejected secondary invitation is a finding, not a second e-mail",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| {
                    s.invitations = vec![invitation(
                        email("alice@fabrikam.com"),
                        InvitationStatus::Rejected,
                    )];
                }),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[],
            findings: &[FindingCode::InvitationRejected],
        },
        Case {
            name: "a revoked secondary subscription is a finding, not a re-invitation",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| {
                    s.invitations.clear();
                    s.consumers = vec![consumer(
                        email("alice@fabrikam.com"),
                        SubscriptionStatus::Revoked,
                    )];
                }),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[],
            findings: &[FindingCode::ConsumerRevokedOnSecondary],
        },
        Case {
            name: "an expired pending secondary invitation does not cover the target",
            primary: account(vec![("sales", primary_share())]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| {
                    s.invitations = vec![InvitationSpec {
                        expiration: Some(datetime!(2026-02-01 00:00 UTC)),
                        ..invitation(email("alice@fabrikam.com"), InvitationStatus::Pending)
                    }];
                }),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &["invite sales alice@fabrikam.com"],
            findings: &[],
        },
        Case {
            name: "a consumer whose target is unknown is a finding",
            primary: account(vec![(
                "sales",
                with(primary_share(), |s| {
                    s.consumers = vec![ConsumerSpec {
                        target: None,
                        candidates: Vec::new(),
                        display: "Alice (fabrikam)".into(),
                        status: SubscriptionStatus::Active,
                        expiration: None,
                    }];
                }),
            )]),
            secondary: Some(account(vec![(
                "sales",
                with(secondary_share(), |s| s.invitations.clear()),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[],
            findings: &[FindingCode::ConsumerUnresolved],
        },
        Case {
            name: "changes are ordered account, shares, data sets, settings, invitations",
            primary: account(vec![("b", primary_share()), ("a", primary_share())]),
            secondary: Some(account(vec![(
                "b",
                with(secondary_share(), |s| {
                    s.props = props("old");
                    s.invitations.clear();
                    s.sync_settings.clear();
                }),
            )])),
            rules: Rules::default(),
            opts: opts(false),
            changes: &[
                "create shares/a",
                "update shares/b",
                "create shares/a/dataSets/orders",
                "create shares/a/synchronizationSettings/daily",
                "create shares/b/synchronizationSettings/daily",
                "invite a alice@fabrikam.com",
                "invite b alice@fabrikam.com",
            ],
            findings: &[],
        },
    ]
}

#[test]
fn every_table_case_plans_exactly_the_expected_changes_and_findings() {
    let all = cases();
    assert!(all.len() >= 20, "the table should hold at least 20 cases");
    let mut failures = Vec::new();
    for c in all {
        let p = plan(&c.primary, c.secondary.as_ref(), &c.rules, &c.opts);
        let got: Vec<String> = p.changes.iter().map(describe).collect();
        let want: Vec<String> = c.changes.iter().map(|s| s.to_string()).collect();
        let got_f: Vec<FindingCode> = p.findings.iter().map(|f| f.code).collect();
        if got != want || got_f != c.findings {
            failures.push(format!(
                "case {:?}:\n  changes  got {got:?}\n           want {want:?}\n  findings got {got_f:?}\n           want {:?}",
                c.name, c.findings
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn replanning_after_applying_a_bootstrap_is_a_no_op() {
    // Build the secondary from what the bootstrap plan says, as apply would.
    let primary = account(vec![("sales", primary_share()), ("hr", primary_share())]);
    let p = plan(
        &primary,
        Some(&AccountModel::default()),
        &Rules::default(),
        &opts(false),
    );
    let mut sec = AccountModel::default();
    for c in &p.changes {
        match c {
            Change::CreateShare { share, props } => {
                sec.shares
                    .insert(share.clone(), ShareModel::new(props.clone()));
            }
            Change::CreateDataSet {
                share,
                dataset,
                spec,
            } => {
                if let Some(s) = sec.shares.get_mut(share) {
                    s.datasets.insert(dataset.clone(), spec.clone());
                }
            }
            Change::CreateSyncSetting {
                share,
                setting,
                spec,
            } => {
                if let Some(s) = sec.shares.get_mut(share) {
                    s.sync_settings.insert(setting.clone(), spec.clone());
                }
            }
            Change::CreateInvitation { share, spec, .. } => {
                if let Some(s) = sec.shares.get_mut(share) {
                    s.invitations.push(InvitationSpec {
                        target: spec.target.clone(),
                        expiration: spec.expiration,
                        status: InvitationStatus::Pending,
                    });
                }
            }
            other => panic!("unexpected change in a bootstrap: {other:?}"),
        }
    }
    let again = plan(&primary, Some(&sec), &Rules::default(), &opts(true));
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert!(again.findings.is_empty(), "{:?}", again.findings);
}

#[test]
fn invitation_copies_the_primary_expiry() {
    let exp = datetime!(2026-09-30 00:00 UTC);
    let primary = account(vec![(
        "sales",
        with(primary_share(), |s| s.consumers[0].expiration = Some(exp)),
    )]);
    let p = plan(
        &primary,
        Some(&AccountModel::default()),
        &Rules::default(),
        &opts(false),
    );
    let inv = p.changes.iter().find_map(|c| match c {
        Change::CreateInvitation { spec, .. } => Some(spec.clone()),
        _ => None,
    });
    assert_eq!(inv.and_then(|i| i.expiration), Some(exp));
}

#[test]
fn invitation_names_are_deterministic_per_target_and_expiry() {
    let a = invitation_name(&email("Alice@x.com"), None);
    assert_eq!(a, invitation_name(&email("alice@X.com"), None));
    assert_ne!(a, invitation_name(&email("bob@x.com"), None));
    assert_ne!(a, invitation_name(&email("alice@x.com"), Some(NOW)));
    assert_ne!(
        invitation_name(&tenant("t", "o"), None),
        invitation_name(&tenant("o", "t"), None)
    );
    assert!(a.as_str().starts_with("dr-") && a.as_str().len() == 23);
}

#[test]
fn a_replace_counts_as_one_create_and_one_delete() {
    let primary = account(vec![(
        "sales",
        with(primary_share(), |s| {
            s.datasets.insert("orders".into(), blob("weu", "v2.csv"));
            s.props = props("new");
        }),
    )]);
    let secondary = account(vec![("sales", secondary_share())]);
    let p = plan(&primary, Some(&secondary), &Rules::default(), &opts(false));
    assert_eq!(
        p.summary(),
        Summary {
            create: 1,
            update: 1,
            delete: 1,
            findings: 0
        }
    );
}
