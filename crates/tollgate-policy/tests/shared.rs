//! Limits and budgets shared by replicas through a real Redis (see `tollgate_testkit::redis`):
//! each test makes two or more "replicas" — rate limiters and budget books with connections
//! of their own — on one Redis, under a key prefix of its own.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use secrecy::SecretString;
use tollgate_core::calendar::{BudgetPeriod, ManualClock, WallClock, parse_iso8601};
use tollgate_core::config::RedisSettings;
use tollgate_policy::budgets::{
    Budget, BudgetAlert, BudgetBook, BudgetCheck, Reservation, Settlement, Shortfall,
};
use tollgate_policy::limits::{Limits, RateLimiter, Scope, ScopeKind};
use tollgate_policy::shared::SharedCounters;
use tollgate_pricing::Usd;
use tollgate_store::EntityKind;

const LEASE: Duration = Duration::from_secs(3600);

/// Redis settings under a prefix of their own; `None` when the test Redis is absent.
async fn settings() -> Option<RedisSettings> {
    let url = tollgate_testkit::redis::redis_url().await?;
    Some(settings_at(&url))
}

fn settings_at(url: &str) -> RedisSettings {
    RedisSettings {
        url: SecretString::from(url.to_owned()),
        shown: url.to_owned(),
        source: "router_settings.redis_url",
        key_prefix: tollgate_testkit::redis::unique_prefix(),
        timeout: Duration::from_secs(2),
    }
}

/// A replica's counters on the same Redis and prefix as `settings` (a connection of its own).
fn replica(settings: &RedisSettings, lease: Duration) -> Arc<SharedCounters> {
    SharedCounters::connect(settings, lease, 1).expect("the test Redis URL is usable")
}

fn book(counters: Arc<SharedCounters>, clock: Arc<dyn WallClock>) -> BudgetBook {
    BudgetBook::new(clock, StatusCode::BAD_REQUEST, 80).shared(counters)
}

fn dollars(text: &str) -> Usd {
    Usd::parse(text).unwrap()
}

fn budget(kind: EntityKind, id: &str, max: &str, period: Option<&str>) -> BudgetCheck<'static> {
    BudgetCheck {
        kind,
        id: Cow::Owned(id.to_owned()),
        label: Cow::Owned(format!("{} {id}", kind.as_str())),
        budget: Budget {
            max: Some(dollars(max)),
            soft: None,
            period: period.and_then(BudgetPeriod::parse),
        },
    }
}

async fn reserve(
    book: &BudgetBook,
    checks: &[BudgetCheck<'_>],
    amount: &str,
    request: &str,
) -> Result<Reservation, Shortfall> {
    book.reserve(checks, dollars(amount), dollars(amount), request)
        .await
}

async fn settle(reservation: Reservation, cost: &str) -> Vec<BudgetAlert> {
    match reservation.settle(dollars(cost)) {
        Settlement::Done(alerts) => alerts,
        Settlement::Pending(alerts) => alerts.await,
    }
}

#[tokio::test]
async fn two_replicas_never_reserve_past_a_budget_together() {
    let Some(settings) = settings().await else {
        return;
    };
    let clock: Arc<dyn WallClock> = Arc::new(ManualClock::at(0));
    let a = book(replica(&settings, LEASE), clock.clone());
    let b = book(replica(&settings, LEASE), clock.clone());
    let key = [budget(EntityKind::Key, "k", "1", None)];
    // Forty requests at once, half through each replica: ten worst cases of $0.10 fit.
    let attempts = (0..40).map(|i| {
        let book = if i % 2 == 0 { &a } else { &b };
        let key = &key;
        async move { reserve(book, key, "0.1", &format!("request-{i}")).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let mut held = Vec::new();
    for result in results {
        match result {
            Ok(reservation) => held.push(reservation),
            Err(Shortfall::Exceeded(refusal)) => {
                assert!(
                    refusal
                        .message
                        .contains("this request could cost up to $0.1"),
                    "{}",
                    refusal.message
                );
            }
            Err(Shortfall::Tight) => panic!("no room beyond the amount was asked"),
        }
    }
    assert_eq!(held.len(), 10);
    // Settled at less than reserved: what is left is free again, on both replicas.
    for reservation in held {
        settle(reservation, "0.05").await;
    }
    let (spent, _) = b.standing(EntityKind::Key, "k", &key[0].budget).await;
    assert_eq!(spent, dollars("0.5"), "both replicas' charges");
    let last = reserve(&a, &key, "0.5", "last").await.unwrap();
    assert!(matches!(
        reserve(&b, &key, "0.01", "one-too-many").await,
        Err(Shortfall::Exceeded(_))
    ));
    drop(last);
}

#[tokio::test]
async fn a_reservation_whose_replica_died_lapses_with_its_lease() {
    let Some(settings) = settings().await else {
        return;
    };
    let clock: Arc<dyn WallClock> = Arc::new(ManualClock::at(0));
    let lease = Duration::from_millis(300);
    let dying = book(replica(&settings, lease), clock.clone());
    let survivor = book(replica(&settings, lease), clock.clone());
    let team = [budget(EntityKind::Team, "t", "1", None)];
    // The replica dies holding the whole budget: it never settles nor releases.
    std::mem::forget(reserve(&dying, &team, "1", "orphan").await.unwrap());
    assert!(matches!(
        reserve(&survivor, &team, "0.5", "blocked").await,
        Err(Shortfall::Exceeded(_))
    ));
    // Leases run on the wall clock (the budget's own clock does not move): wait it out.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(reserve(&survivor, &team, "1", "after").await.is_ok());
}

#[tokio::test]
async fn a_dropped_reservation_is_given_back_at_once() {
    let Some(settings) = settings().await else {
        return;
    };
    let clock: Arc<dyn WallClock> = Arc::new(ManualClock::at(0));
    let a = book(replica(&settings, LEASE), clock.clone());
    let b = book(replica(&settings, LEASE), clock.clone());
    let user = [budget(EntityKind::User, "u", "1", None)];
    drop(reserve(&a, &user, "1", "never-sent").await.unwrap());
    // The release runs in the background: B sees the room once it has.
    let mut attempts = 0;
    while reserve(&b, &user, "1", "next").await.is_err() {
        attempts += 1;
        assert!(
            attempts < 100,
            "the dropped reservation was never given back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn spend_starts_again_at_the_boundary_for_every_replica() {
    let Some(settings) = settings().await else {
        return;
    };
    let clock = Arc::new(ManualClock::at(
        parse_iso8601("2026-11-30T23:59:59.000Z").unwrap(),
    ));
    let a = book(replica(&settings, LEASE), clock.clone());
    let b = book(replica(&settings, LEASE), clock.clone());
    let org = [budget(EntityKind::Organization, "o", "1", Some("1mo"))];
    settle(reserve(&a, &org, "1", "november").await.unwrap(), "1").await;
    let refusal = match reserve(&b, &org, "0.01", "late").await {
        Err(Shortfall::Exceeded(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(
        refusal
            .message
            .contains("resets at 2026-12-01T00:00:00.000Z"),
        "{}",
        refusal.message
    );
    clock.set(parse_iso8601("2026-12-01T00:00:00Z").unwrap());
    settle(reserve(&b, &org, "1", "december").await.unwrap(), "0.25").await;
    let (spent, reset_at) = a
        .standing(EntityKind::Organization, "o", &org[0].budget)
        .await;
    assert_eq!(spent, dollars("0.25"));
    assert_eq!(reset_at, parse_iso8601("2027-01-01"));
}

#[tokio::test]
async fn an_account_redis_does_not_have_starts_from_the_stores_figure() {
    let Some(settings) = settings().await else {
        return;
    };
    let clock: Arc<dyn WallClock> = Arc::new(ManualClock::at(0));
    let a = book(replica(&settings, LEASE), clock.clone());
    let key = [budget(EntityKind::Key, "imported", "1", None)];
    // The store says $0.70 was spent already (an import, or Redis emptied).
    a.seed(
        EntityKind::Key,
        "imported",
        &key[0].budget,
        i64::MIN,
        dollars("0.7"),
    );
    assert!(matches!(
        reserve(&a, &key, "0.4", "too-much").await,
        Err(Shortfall::Exceeded(_))
    ));
    let fits = reserve(&a, &key, "0.3", "fits").await.unwrap();
    // Another replica that never saw the seed reads the shared account.
    let b = book(replica(&settings, LEASE), clock.clone());
    let (spent, _) = b
        .standing(EntityKind::Key, "imported", &key[0].budget)
        .await;
    assert_eq!(spent, dollars("0.7"));
    drop(fits);
}

#[tokio::test]
async fn the_stores_figure_raises_an_account_that_missed_a_charge() {
    let Some(settings) = settings().await else {
        return;
    };
    let clock: Arc<dyn WallClock> = Arc::new(ManualClock::at(0));
    let a = book(replica(&settings, LEASE), clock.clone());
    let tag = budget(EntityKind::Tag, "prod", "1", None);
    settle(
        reserve(&a, std::slice::from_ref(&tag), "0.1", "r")
            .await
            .unwrap(),
        "0.1",
    )
    .await;
    // The store has more than Redis (a charge settled while Redis was away): Redis is raised.
    a.share_store_figures(&[(
        EntityKind::Tag,
        "prod".to_owned(),
        tag.budget,
        i64::MIN,
        dollars("0.6"),
    )])
    .await;
    let (spent, _) = a.standing(EntityKind::Tag, "prod", &tag.budget).await;
    assert_eq!(spent, dollars("0.6"));
    // Less than Redis (the store lags): nothing changes.
    a.share_store_figures(&[(
        EntityKind::Tag,
        "prod".to_owned(),
        tag.budget,
        i64::MIN,
        dollars("0.2"),
    )])
    .await;
    let (spent, _) = a.standing(EntityKind::Tag, "prod", &tag.budget).await;
    assert_eq!(spent, dollars("0.6"));
}

#[tokio::test]
async fn an_alert_fires_once_whichever_replica_crosses_the_threshold() {
    let Some(settings) = settings().await else {
        return;
    };
    let clock: Arc<dyn WallClock> = Arc::new(ManualClock::at(0));
    let a = book(replica(&settings, LEASE), clock.clone());
    let b = book(replica(&settings, LEASE), clock.clone());
    let mut soft = budget(EntityKind::EndUser, "alice", "10", None);
    soft.budget.soft = Some(dollars("2"));
    let checks = std::slice::from_ref(&soft);
    let mut alerts = Vec::new();
    for (i, book) in [&a, &b, &a, &b].into_iter().enumerate() {
        let reservation = reserve(book, checks, "1", &format!("r{i}")).await.unwrap();
        alerts.extend(settle(reservation, "1").await);
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].spent, dollars("2"));
    assert_eq!(alerts[0].threshold, dollars("2"));
}

fn scope(kind: ScopeKind, id: &str) -> Scope<'_> {
    Scope {
        kind,
        id: id.into(),
        label: id.into(),
    }
}

#[tokio::test]
async fn two_replicas_admit_exactly_an_rpm_limit_between_them() {
    let Some(settings) = settings().await else {
        return;
    };
    let a = RateLimiter::default().shared(replica(&settings, LEASE));
    let b = RateLimiter::default().shared(replica(&settings, LEASE));
    let checks = [
        (
            scope(ScopeKind::Key, "k"),
            Limits {
                rpm: Some(10),
                ..Limits::default()
            },
        ),
        (
            scope(ScopeKind::Team, "t"),
            Limits {
                rpm: Some(1000),
                tpm: Some(1_000_000),
                ..Limits::default()
            },
        ),
    ];
    let attempts = (0..40).map(|i| {
        let limiter = if i % 2 == 0 { &a } else { &b };
        let checks = &checks;
        async move { limiter.admit(checks, &format!("request-{i}")).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let admitted = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(admitted, 10);
    let refusal = results.into_iter().find_map(Result::err).unwrap();
    assert!(
        refusal.error.message.contains("key `k`: rpm_limit is 10"),
        "{}",
        refusal.error.message
    );
    assert!(refusal.error.retry_after.unwrap() > Duration::from_secs(55));
    // The team's own count took only the admitted requests.
    let team_only = [checks[1].clone()];
    let next = a.admit(&team_only, "team-only").await.unwrap();
    let standing = next.quota.unwrap().requests.unwrap();
    assert_eq!((standing.limit, standing.remaining), (1000, 1000 - 11));
}

#[tokio::test]
async fn tokens_counted_by_one_replica_hold_back_the_other() {
    let Some(settings) = settings().await else {
        return;
    };
    let a = RateLimiter::default().shared(replica(&settings, LEASE));
    let b = RateLimiter::default().shared(replica(&settings, LEASE));
    let checks = [(
        scope(ScopeKind::User, "u"),
        Limits {
            tpm: Some(100),
            ..Limits::default()
        },
    )];
    a.admit(&checks, "first").await.unwrap().finish(Some(100));
    let mut attempts = 0;
    loop {
        match b.admit(&checks, "second").await {
            Err(refusal) => {
                assert!(refusal.error.message.contains("tpm_limit is 100"));
                assert_eq!(refusal.quota.tokens.unwrap().remaining, 0);
                break;
            }
            Ok(_) => {
                attempts += 1;
                assert!(attempts < 100, "A's tokens never reached B");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test]
async fn parallel_requests_are_counted_across_replicas_and_given_back() {
    let Some(settings) = settings().await else {
        return;
    };
    let a = RateLimiter::default().shared(replica(&settings, LEASE));
    let b = RateLimiter::default().shared(replica(&settings, LEASE));
    let checks = [(
        scope(ScopeKind::EndUser, "e"),
        Limits {
            parallel: Some(2),
            ..Limits::default()
        },
    )];
    let one = a.admit(&checks, "one").await.unwrap();
    let _two = b.admit(&checks, "two").await.unwrap();
    let refused = a.admit(&checks, "three").await.unwrap_err();
    assert!(refused.error.message.contains("max_parallel_requests is 2"));
    drop(one);
    let mut attempts = 0;
    while b.admit(&checks, "three").await.is_err() {
        attempts += 1;
        assert!(
            attempts < 100,
            "the ended request's mark was never taken back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn without_redis_each_replica_counts_on_its_own() {
    // Nothing listens on port 1: every call fails at once and the replica counts alone.
    let settings = settings_at("redis://127.0.0.1:1");
    let limiter = RateLimiter::default().shared(replica(&settings, LEASE));
    let checks = [(
        scope(ScopeKind::Key, "k"),
        Limits {
            rpm: Some(2),
            ..Limits::default()
        },
    )];
    assert!(limiter.admit(&checks, "a").await.is_ok());
    assert!(limiter.admit(&checks, "b").await.is_ok());
    assert!(limiter.admit(&checks, "c").await.is_err(), "still limited");

    let clock: Arc<dyn WallClock> = Arc::new(ManualClock::at(0));
    let book = book(replica(&settings, LEASE), clock);
    let key = [budget(EntityKind::Key, "k", "1", None)];
    let held = reserve(&book, &key, "0.75", "r").await.unwrap();
    assert!(matches!(
        reserve(&book, &key, "0.5", "s").await,
        Err(Shortfall::Exceeded(_))
    ));
    settle(held, "0.5").await;
    let (spent, _) = book.standing(EntityKind::Key, "k", &key[0].budget).await;
    assert_eq!(spent, dollars("0.5"));
}
