//! Budgets: what a key, user, team, team member, organisation or end user may spend in its
//! period (`max_budget`, `budget_duration`), exact under concurrency.
//!
//! Before a request is forwarded, its worst-case cost is reserved against every budget that
//! applies, each account checking `spent + reserved + worst case ≤ max_budget` under its own
//! lock; a request that does not fit anywhere is refused and holds nothing. When the request
//! ends, the reservation is settled: the actual cost (never more than the worst case the
//! provider's limits allow) becomes spend and the rest is released. So concurrent requests
//! can never together push recorded spend past a budget.
//!
//! Periods follow the calendar (`BudgetPeriod`): an account's spend starts again at the first
//! reservation or settlement after its boundary, judged by the time of that call — so a reset
//! takes effect at the boundary itself, however long the gateway was idle.
//!
//! With a shared Redis (`crate::shared`), the accounts are Redis's and every replica reserves
//! and settles in them; this replica's own accounts still count what it charged (on top of
//! what the store says), which seeds an account Redis does not have and stands in while
//! Redis cannot answer.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

use http::StatusCode;
use tollgate_core::calendar::{BudgetPeriod, WallClock, iso8601};
use tollgate_core::error::{ErrorKind, GatewayError, Origin};
use tollgate_pricing::Usd;
use tollgate_store::{BudgetFields, EntityKind, KeyRecord};

use crate::directory::Directory;
use crate::shared::SharedCounters;
use crate::shared::budgets::{Asked, Reserved, SharedReservation};

/// One entity's budget, read from its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max: Option<Usd>,
    pub soft: Option<Usd>,
    /// `None`: the budget never resets.
    pub period: Option<BudgetPeriod>,
}

impl Budget {
    /// `None` when the record sets no budget. Values the management API would refuse (a
    /// negative amount, an unreadable duration) are taken as unset.
    pub fn of(fields: &BudgetFields) -> Option<Budget> {
        let amount = |value: Option<f64>| value.and_then(Usd::from_f64);
        let budget = Budget {
            max: amount(fields.max_budget),
            soft: amount(fields.soft_budget),
            period: fields
                .budget_duration
                .as_deref()
                .and_then(BudgetPeriod::parse),
        };
        (budget.max.is_some() || budget.soft.is_some()).then_some(budget)
    }

    /// A key's budgets for single models (`model_max_budget`): each resets on its own
    /// `time_period`, else on the key's `budget_duration`. Amounts that cannot be dollars
    /// are left out (the management API refuses them).
    pub fn per_model(key: &KeyRecord) -> Vec<(String, Budget)> {
        let key_period = key
            .budget
            .budget_duration
            .as_deref()
            .and_then(BudgetPeriod::parse);
        key.model_max_budget
            .iter()
            .filter_map(|(model, limit)| {
                let period = match &limit.time_period {
                    Some(text) => Some(BudgetPeriod::parse(text)?),
                    None => key_period,
                };
                let budget = Budget {
                    max: Some(Usd::from_f64(limit.budget_limit)?),
                    soft: None,
                    period,
                };
                Some((model.clone(), budget))
            })
            .collect()
    }

    /// The budget that applies to a record: its own, else that of the shared budget its
    /// `budget_id` names.
    pub fn resolve(
        own: Option<Budget>,
        fields: &BudgetFields,
        directory: &Directory,
    ) -> Option<Budget> {
        own.or_else(|| {
            let shared = directory.budgets.get(fields.budget_id.as_deref()?)?;
            Budget::of(&shared.record.fields())
        })
    }

    /// When the period containing `now_ms` began (`i64::MIN`: the budget never resets).
    pub fn period_start(&self, now_ms: i64) -> i64 {
        self.period
            .map_or(i64::MIN, |period| period.current(now_ms).0)
    }

    /// When the spend counted against it next starts again.
    pub fn reset_at(&self, now_ms: i64) -> Option<i64> {
        self.period.map(|period| period.current(now_ms).1)
    }

    /// The spend past which an alert fires: the soft budget, else `percent` of the max.
    fn alert_threshold(&self, percent: u64) -> Option<Usd> {
        self.soft.or_else(|| {
            self.max.map(|max| {
                Usd::from_nanos((u128::from(max.nanos()) * u128::from(percent) / 100) as u64)
            })
        })
    }
}

/// A budget that applies to a request, with whose it is.
#[derive(Debug, Clone)]
pub struct BudgetCheck<'a> {
    pub kind: EntityKind,
    pub id: Cow<'a, str>,
    /// How the refusal names the entity: `key sk-...abcd`, `team research`.
    pub label: Cow<'a, str>,
    pub budget: Budget,
}

/// A soft budget (or the alert threshold of a hard one) crossed for the first time in its
/// period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetAlert {
    pub kind: EntityKind,
    pub id: String,
    /// How people know the entity: `key sk-...abcd`, `team research`.
    pub label: String,
    pub spent: Usd,
    pub threshold: Usd,
    pub max: Option<Usd>,
}

#[derive(Debug)]
struct Account {
    state: Mutex<AccountState>,
}

impl Account {
    /// What this replica counts as spent this period: the store's figure and its own charges.
    fn spent(&self, budget: &Budget, now_ms: i64) -> Usd {
        let mut state = self.state.lock().expect("budget lock poisoned");
        state.roll(budget, now_ms);
        state.spent
    }
}

#[derive(Debug)]
struct AccountState {
    /// The period `spent` belongs to (`i64::MIN`: the budget never resets).
    period_start: i64,
    spent: Usd,
    /// Worst cases of requests under way.
    reserved: Usd,
    /// The period an alert was last sent for.
    alerted_for: Option<i64>,
}

impl AccountState {
    /// Starts the period `now_ms` falls in, if a new one has begun. Reservations under way
    /// carry over: their requests will be charged when they end.
    fn roll(&mut self, budget: &Budget, now_ms: i64) {
        let start = budget.period_start(now_ms);
        if start != self.period_start {
            self.period_start = start;
            self.spent = Usd::ZERO;
        }
    }
}

/// Every budgeted entity's spend in its current period, and the reservations under way.
#[derive(Debug)]
pub struct BudgetBook {
    accounts: RwLock<HashMap<(EntityKind, String), Arc<Account>>>,
    clock: Arc<dyn WallClock>,
    /// The status a refusal gets (LiteLLM answers 400).
    exceeded_status: StatusCode,
    /// The share of `max_budget` (in percent) past which an alert fires when no
    /// `soft_budget` is set.
    alert_percent: u64,
    /// The accounts every replica reserves in, when there is a shared Redis.
    shared: Option<Arc<SharedCounters>>,
}

/// Why a reservation was not made.
#[derive(Debug)]
pub enum Shortfall {
    /// Every budget takes the amount, but one has less left than the room asked for: the
    /// caller should size the request exactly and ask again with that.
    Tight,
    /// A budget cannot take it: the refusal.
    Exceeded(GatewayError),
}

impl BudgetBook {
    pub fn new(clock: Arc<dyn WallClock>, exceeded_status: StatusCode, alert_percent: u64) -> Self {
        BudgetBook {
            accounts: RwLock::default(),
            clock,
            exceeded_status,
            alert_percent,
            shared: None,
        }
    }

    /// Reserves and settles in `shared`'s accounts, with every other replica using it.
    pub fn shared(self, shared: Arc<SharedCounters>) -> Self {
        BudgetBook {
            shared: Some(shared),
            ..self
        }
    }

    /// The same book reading time from `clock` (tests move it across period boundaries).
    pub fn with_clock(self, clock: Arc<dyn WallClock>) -> Self {
        BudgetBook { clock, ..self }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn account(&self, kind: EntityKind, id: &str, budget: &Budget) -> Arc<Account> {
        let key = (kind, id.to_owned());
        if let Some(account) = self
            .accounts
            .read()
            .expect("budget lock poisoned")
            .get(&key)
        {
            return account.clone();
        }
        let period_start = budget.period_start(self.now_ms());
        self.accounts
            .write()
            .expect("budget lock poisoned")
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Account {
                    state: Mutex::new(AccountState {
                        period_start,
                        spent: Usd::ZERO,
                        reserved: Usd::ZERO,
                        alerted_for: None,
                    }),
                })
            })
            .clone()
    }

    /// Takes in what the store says an entity has spent in the period starting
    /// `period_start` (at start-up, or when its budget is set). The store lags behind what
    /// this gateway has charged, so within the same period the larger figure stands.
    pub fn seed(&self, kind: EntityKind, id: &str, budget: &Budget, period_start: i64, spent: Usd) {
        let account = self.account(kind, id, budget);
        let mut state = account.state.lock().expect("budget lock poisoned");
        if state.period_start == period_start {
            state.spent = state.spent.max(spent);
        } else {
            state.period_start = period_start;
            state.spent = spent;
        }
        state.roll(budget, self.now_ms());
    }

    /// What the entity has spent in its current period (every replica's charges, when they
    /// share a Redis), and when that period ends.
    pub async fn standing(
        &self,
        kind: EntityKind,
        id: &str,
        budget: &Budget,
    ) -> (Usd, Option<i64>) {
        let now = self.now_ms();
        let reset_at = budget.reset_at(now);
        if let Some(shared) = &self.shared
            && let Some(Some(spent)) = shared
                .spent(&shared.account(kind, id, budget), budget.period_start(now))
                .await
        {
            return (spent, reset_at);
        }
        let account = self.account(kind, id, budget);
        (account.spent(budget, now), reset_at)
    }

    /// Raises the shared accounts to what the store says each entity spent in the period
    /// starting `period_start`, where Redis shows less (a charge made while Redis was away
    /// counts once its record is stored). Nothing without a shared Redis.
    pub async fn share_store_figures(&self, figures: &[(EntityKind, String, Budget, i64, Usd)]) {
        let Some(shared) = &self.shared else {
            return;
        };
        let now = self.now_ms();
        let figures: Vec<_> = figures
            .iter()
            .filter(|(_, _, budget, period_start, _)| budget.period_start(now) == *period_start)
            .map(|(kind, id, budget, period_start, spent)| {
                (shared.account(*kind, id, budget), *period_start, *spent)
            })
            .collect();
        if let Some(raised) = shared.floor(&figures).await
            && raised > 0
        {
            tracing::info!(
                accounts = raised,
                "shared budget accounts raised to the spend the store has (charges made while Redis was away)"
            );
        }
    }

    /// Reserves `amount` against every budget in `checks` if each has at least `room` left
    /// (`room` ≥ `amount`: a loosely sized request reserves only far from every limit), or
    /// against none. `request_id` names the reservation in the shared accounts.
    pub async fn reserve(
        &self,
        checks: &[BudgetCheck<'_>],
        amount: Usd,
        room: Usd,
        request_id: &str,
    ) -> Result<Reservation, Shortfall> {
        let room = room.max(amount);
        if let Some(shared) = &self.shared {
            let now = self.now_ms();
            let accounts: Vec<Arc<Account>> = checks
                .iter()
                .map(|check| self.account(check.kind, &check.id, &check.budget))
                .collect();
            let asked: Vec<Asked> = checks
                .iter()
                .zip(&accounts)
                .map(|(check, account)| Asked {
                    account: shared.account(check.kind, &check.id, &check.budget),
                    max: check.budget.max,
                    period: check.budget.period_start(now),
                    // What an account Redis does not have starts from.
                    seed: account.spent(&check.budget, now),
                    alert_threshold: check.budget.alert_threshold(self.alert_percent),
                })
                .collect();
            match shared.reserve(&asked, request_id, amount, room).await {
                Some(Reserved::Yes) => {
                    return Ok(self.reservation(
                        checks,
                        accounts,
                        amount,
                        false,
                        Some(SharedReservation {
                            counters: shared.clone(),
                            request_id: request_id.to_owned(),
                            asked,
                        }),
                    ));
                }
                Some(Reserved::Tight) => return Err(Shortfall::Tight),
                Some(Reserved::No { index, spent }) => {
                    let check = &checks[index];
                    let max = check.budget.max.unwrap_or(Usd::ZERO);
                    let reset_at = check.budget.reset_at(now);
                    return Err(Shortfall::Exceeded(
                        self.exceeded(check, spent, max, amount, reset_at),
                    ));
                }
                None => {}
            }
        }
        self.reserve_here(checks, amount, room)
    }

    /// Reserves in this replica's own accounts.
    fn reserve_here(
        &self,
        checks: &[BudgetCheck<'_>],
        amount: Usd,
        room: Usd,
    ) -> Result<Reservation, Shortfall> {
        let now = self.now_ms();
        let mut held: Vec<Arc<Account>> = Vec::with_capacity(checks.len());
        let give_back = |held: &[Arc<Account>]| {
            for account in held {
                let mut state = account.state.lock().expect("budget lock poisoned");
                state.reserved = state.reserved.saturating_sub(amount);
            }
        };
        for check in checks {
            let account = self.account(check.kind, &check.id, &check.budget);
            let mut state = account.state.lock().expect("budget lock poisoned");
            state.roll(&check.budget, now);
            if let Some(max) = check.budget.max {
                let committed = state.spent.saturating_add(state.reserved);
                if committed.saturating_add(amount) > max {
                    let (spent, reset_at) = (state.spent, check.budget.reset_at(now));
                    drop(state);
                    give_back(&held);
                    return Err(Shortfall::Exceeded(
                        self.exceeded(check, spent, max, amount, reset_at),
                    ));
                }
                if committed.saturating_add(room) > max {
                    drop(state);
                    give_back(&held);
                    return Err(Shortfall::Tight);
                }
            }
            state.reserved = state.reserved.saturating_add(amount);
            drop(state);
            held.push(account);
        }
        Ok(self.reservation(checks, held, amount, true, None))
    }

    /// The reservation of `amount` against `checks`, whose accounts here are `accounts`.
    fn reservation(
        &self,
        checks: &[BudgetCheck<'_>],
        accounts: Vec<Arc<Account>>,
        amount: Usd,
        held_here: bool,
        shared: Option<SharedReservation>,
    ) -> Reservation {
        let holds = checks
            .iter()
            .zip(accounts)
            .map(|(check, account)| Hold {
                account,
                kind: check.kind,
                id: check.id.clone().into_owned(),
                label: check.label.clone().into_owned(),
                budget: check.budget,
            })
            .collect();
        Reservation {
            holds,
            amount,
            held_here,
            settled: false,
            alert_percent: self.alert_percent,
            clock: self.clock.clone(),
            shared,
        }
    }

    fn exceeded(
        &self,
        check: &BudgetCheck<'_>,
        spent: Usd,
        max: Usd,
        worst_case: Usd,
        reset_at: Option<i64>,
    ) -> GatewayError {
        let resets = reset_at.map_or(String::new(), |at| {
            format!(" The budget resets at {}.", iso8601(at))
        });
        // LiteLLM's wording first, so clients matching on it keep working.
        GatewayError::new(
            self.exceeded_status,
            Origin::Client,
            ErrorKind::BudgetExceeded,
            format!(
                "Budget has been exceeded! Current cost: {spent}, Max budget: {max}. \
                 {} has spent ${spent} of its ${max} budget, and this request could cost up \
                 to ${worst_case}.{resets}",
                capitalised(&check.label)
            ),
        )
        .with_code("budget_exceeded")
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[derive(Debug)]
struct Hold {
    account: Arc<Account>,
    kind: EntityKind,
    id: String,
    label: String,
    budget: Budget,
}

/// A request's place under its budgets, held until it ends. Dropped unsettled (the request
/// never reached a provider), it releases everything.
#[derive(Debug)]
pub struct Reservation {
    holds: Vec<Hold>,
    amount: Usd,
    /// Whether `amount` is reserved in this replica's accounts (else only in Redis's).
    held_here: bool,
    settled: bool,
    alert_percent: u64,
    clock: Arc<dyn WallClock>,
    shared: Option<SharedReservation>,
}

/// The alerts a settlement set off: known at once, or once Redis has answered.
pub enum Settlement {
    Done(Vec<BudgetAlert>),
    Pending(Pin<Box<dyn Future<Output = Vec<BudgetAlert>> + Send>>),
}

impl Reservation {
    /// Charges `cost` to every budget held and releases the reservation; the alerts this
    /// charge set off come with the settlement.
    pub fn settle(mut self, cost: Usd) -> Settlement {
        self.settled = true;
        let now = self.clock.now_ms();
        let alerts_here = self.charge_here(cost, now);
        let Some(shared) = self.shared.take() else {
            return Settlement::Done(alerts_here);
        };
        let (amount, holds) = (self.amount, std::mem::take(&mut self.holds));
        let counted = shared.counters.pending_work();
        Settlement::Pending(Box::pin(async move {
            let _counted = counted;
            let SharedReservation {
                counters,
                request_id,
                asked,
            } = shared;
            match counters.settle(&asked, &request_id, amount, cost).await {
                Some(charged) => holds
                    .iter()
                    .zip(asked.iter().zip(charged))
                    .filter(|(_, (_, (_, alert)))| *alert)
                    .filter_map(|(hold, (asked, (spent, _)))| {
                        Some(BudgetAlert {
                            kind: hold.kind,
                            id: hold.id.clone(),
                            label: hold.label.clone(),
                            spent,
                            threshold: asked.alert_threshold?,
                            max: hold.budget.max,
                        })
                    })
                    .collect(),
                // Redis is away: the reservation lapses with its lease, the charge reaches
                // the shared account from the store, and this replica alerts on its own count.
                None => alerts_here,
            }
        }))
    }

    /// Charges `cost` to this replica's accounts (giving back what it reserved there);
    /// the alerts its own count sets off.
    fn charge_here(&self, cost: Usd, now: i64) -> Vec<BudgetAlert> {
        let mut alerts = Vec::new();
        for hold in &self.holds {
            let mut state = hold.account.state.lock().expect("budget lock poisoned");
            if self.held_here {
                state.reserved = state.reserved.saturating_sub(self.amount);
            }
            state.roll(&hold.budget, now);
            state.spent = state.spent.saturating_add(cost);
            if let Some(threshold) = hold.budget.alert_threshold(self.alert_percent)
                && cost > Usd::ZERO
                && state.spent >= threshold
                && state.alerted_for != Some(state.period_start)
            {
                state.alerted_for = Some(state.period_start);
                alerts.push(BudgetAlert {
                    kind: hold.kind,
                    id: hold.id.clone(),
                    label: hold.label.clone(),
                    spent: state.spent,
                    threshold,
                    max: hold.budget.max,
                });
            }
        }
        alerts
    }

    /// Whether any budget applies (an empty reservation costs nothing to hold).
    pub fn is_empty(&self) -> bool {
        self.holds.is_empty()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if self.held_here {
            for hold in &self.holds {
                let mut state = hold.account.state.lock().expect("budget lock poisoned");
                state.reserved = state.reserved.saturating_sub(self.amount);
            }
        }
        if let Some(SharedReservation {
            counters,
            request_id,
            asked,
        }) = self.shared.take()
        {
            let amount = self.amount;
            let releasing = counters.clone();
            releasing.in_background(async move {
                let accounts: Vec<_> = asked.into_iter().map(|asked| asked.account).collect();
                counters.release(&accounts, &request_id, amount).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use tollgate_core::calendar::{ManualClock, parse_iso8601};

    use super::*;

    fn dollars(text: &str) -> Usd {
        Usd::parse(text).unwrap()
    }

    fn block_on<F: Future>(work: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(work)
    }

    /// Reserves exactly `amount` (no room asked beyond it) in a book without Redis.
    fn reserve(
        book: &BudgetBook,
        checks: &[BudgetCheck<'_>],
        amount: Usd,
    ) -> Result<Reservation, GatewayError> {
        match block_on(book.reserve(checks, amount, amount, "request-id")) {
            Ok(reservation) => Ok(reservation),
            Err(Shortfall::Exceeded(err)) => Err(err),
            Err(Shortfall::Tight) => panic!("no room was asked beyond the amount"),
        }
    }

    fn settle(reservation: Reservation, cost: Usd) -> Vec<BudgetAlert> {
        match reservation.settle(cost) {
            Settlement::Done(alerts) => alerts,
            Settlement::Pending(_) => panic!("a book without Redis settles at once"),
        }
    }

    fn book(clock: Arc<ManualClock>) -> BudgetBook {
        BudgetBook::new(clock, StatusCode::BAD_REQUEST, 80)
    }

    fn check(kind: EntityKind, id: &str, max: &str, period: Option<&str>) -> BudgetCheck<'static> {
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

    #[test]
    fn reservations_never_overshoot_and_settle_to_the_actual_cost() {
        let clock = Arc::new(ManualClock::at(0));
        let book = book(clock);
        let checks = [check(EntityKind::Key, "k", "1", None)];
        let held: Vec<Reservation> = (0..4)
            .map_while(|_| reserve(&book, &checks, dollars("0.3")).ok())
            .collect();
        assert_eq!(held.len(), 3, "three worst cases of $0.30 fit in $1");
        let refused = reserve(&book, &checks, dollars("0.3")).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::BudgetExceeded);
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        for reservation in held {
            settle(reservation, dollars("0.1"));
        }
        let (spent, _) = block_on(book.standing(EntityKind::Key, "k", &checks[0].budget));
        assert_eq!(spent, dollars("0.3"));
        // $0.70 left: two more worst cases fit, a third does not.
        let more: Vec<Reservation> = (0..3)
            .map_while(|_| reserve(&book, &checks, dollars("0.3")).ok())
            .collect();
        assert_eq!(more.len(), 2);
    }

    #[test]
    fn a_refusal_by_one_budget_holds_nothing_in_the_others() {
        let book = book(Arc::new(ManualClock::at(0)));
        let key = check(EntityKind::Key, "k", "10", None);
        let team = check(EntityKind::Team, "t", "0.5", None);
        let err = reserve(&book, &[key.clone(), team.clone()], dollars("1")).unwrap_err();
        assert!(
            err.message
                .contains("Team t has spent $0 of its $0.5 budget"),
            "{}",
            err.message
        );
        // The key's account was released: ten dollars' worth still fit.
        let all = reserve(&book, &[key], dollars("10")).unwrap();
        drop(all);
    }

    #[test]
    fn spend_starts_again_exactly_at_the_boundary() {
        let clock = Arc::new(ManualClock::at(
            parse_iso8601("2026-11-30T23:59:59.999Z").unwrap(),
        ));
        let book = book(clock.clone());
        let checks = [check(EntityKind::Team, "t", "1", Some("1mo"))];
        settle(reserve(&book, &checks, dollars("1")).unwrap(), dollars("1"));
        assert!(reserve(&book, &checks, dollars("0.01")).is_err());
        let err = reserve(&book, &checks, dollars("0.01")).unwrap_err();
        assert!(
            err.message.contains("resets at 2026-12-01T00:00:00.000Z"),
            "{}",
            err.message
        );
        clock.set(parse_iso8601("2026-12-01T00:00:00Z").unwrap());
        assert!(reserve(&book, &checks, dollars("1")).is_ok());
        let (spent, reset_at) = block_on(book.standing(EntityKind::Team, "t", &checks[0].budget));
        assert_eq!(spent, Usd::ZERO);
        assert_eq!(reset_at, parse_iso8601("2027-01-01"));
    }

    #[test]
    fn an_alert_fires_once_a_period_past_the_soft_budget() {
        let book = book(Arc::new(ManualClock::at(0)));
        let mut soft = check(EntityKind::User, "u", "10", None);
        soft.budget.soft = Some(dollars("2"));
        let charge = |cost: &str| {
            settle(
                reserve(&book, std::slice::from_ref(&soft), dollars("1")).unwrap(),
                dollars(cost),
            )
        };
        assert!(charge("1").is_empty());
        let alerts = charge("1");
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].spent, dollars("2"));
        assert!(charge("1").is_empty(), "once per period");
    }

    #[test]
    fn a_loosely_sized_request_reserves_only_far_from_every_limit() {
        let book = book(Arc::new(ManualClock::at(0)));
        let key = [check(EntityKind::Key, "k", "1", None)];
        let loose = |room: &str| block_on(book.reserve(&key, dollars("0.05"), dollars(room), "r"));
        let far = loose("0.5").expect("$0.50 of room in $1");
        // $0.95 left, not $1: the loose size is not reserved, and nothing is held for it.
        assert!(matches!(loose("0.96"), Err(Shortfall::Tight)));
        settle(far, dollars("0.9"));
        // $0.10 left: the worst case itself no longer fits: refused, not tight.
        let refused = block_on(book.reserve(&key, dollars("0.2"), dollars("2"), "r"));
        assert!(matches!(refused, Err(Shortfall::Exceeded(_))));
        assert!(reserve(&book, &key, dollars("0.1")).is_ok());
    }
}
