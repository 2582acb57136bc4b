//! Budget accounts in Redis: what each budgeted entity has spent this period and what
//! requests under way have reserved, counted by every replica at once (the same accounting
//! `crate::budgets` keeps in one replica's memory).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::{Script, ScriptInvocation};
use tollgate_core::calendar::BudgetPeriod;
use tollgate_pricing::Usd;
use tollgate_store::EntityKind;

use super::{SharedCounters, wall_ms};
use crate::budgets::Budget;

/// How long an account nobody charges is kept; after that it is read from the store again.
const ACCOUNT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Accounts per floor script, so one call never holds Redis for long.
const FLOOR_CHUNK: usize = 500;

fn script(body: &str) -> Script {
    Script::new(&format!(
        "{}\n{body}",
        include_str!("budget_account_v1.lua")
    ))
}

static RESERVE: LazyLock<Script> = LazyLock::new(|| script(include_str!("budget_reserve_v1.lua")));
static SETTLE: LazyLock<Script> = LazyLock::new(|| script(include_str!("budget_settle_v1.lua")));
static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("budget_release_v1.lua")));
static FLOOR: LazyLock<Script> = LazyLock::new(|| script(include_str!("budget_floor_v1.lua")));

/// One budget's account and its leases.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    account: String,
    leases: String,
}

/// A budget as a reservation asks Redis about it.
#[derive(Debug)]
pub(crate) struct Asked {
    pub account: Account,
    pub max: Option<Usd>,
    /// The first ms of its current period.
    pub period: i64,
    /// What this replica knows was spent this period, for an account Redis does not have.
    pub seed: Usd,
    pub alert_threshold: Option<Usd>,
}

/// Redis's answer to a reservation.
pub(crate) enum Reserved {
    Yes,
    /// Every budget takes the amount, but one has less than the room asked for left.
    Tight,
    /// The budget at `index` cannot take it; it has spent `spent` this period.
    No {
        index: usize,
        spent: Usd,
    },
}

impl SharedCounters {
    /// The account of `kind`/`id` under `budget`. Its period's length is part of the name: a
    /// budget given another `budget_duration` starts a new account, from the store's figure.
    pub(crate) fn account(&self, kind: EntityKind, id: &str, budget: &Budget) -> Account {
        let kind = format!("{}:{}", kind.as_str(), period_name(budget.period));
        Account {
            account: self.key("budget.v1", &kind, id),
            leases: self.key("budget-leases.v1", &kind, id),
        }
    }

    /// Reserves `amount` against every budget in `asked` if each has `room` left, or against
    /// none; `None` when Redis cannot say.
    pub(crate) async fn reserve(
        &self,
        asked: &[Asked],
        request_id: &str,
        amount: Usd,
        room: Usd,
    ) -> Option<Reserved> {
        let now_ms = wall_ms();
        let mut invocation = RESERVE.prepare_invoke();
        with_accounts(&mut invocation, asked.iter().map(|asked| &asked.account));
        invocation
            .arg(now_ms)
            .arg(self.lapses_at(now_ms))
            .arg(lease(request_id, amount))
            .arg(amount.nanos())
            .arg(room.max(amount).nanos())
            .arg(ACCOUNT_TTL.as_millis() as u64);
        for asked in asked {
            invocation
                .arg(
                    asked
                        .max
                        .map_or(-1, |max| max.nanos().min(i64::MAX as u64) as i64),
                )
                .arg(period_arg(asked.period))
                .arg(asked.seed.nanos());
        }
        let reply: Vec<i64> = self.run(&invocation).await?;
        match reply.as_slice() {
            [1] => Some(Reserved::Yes),
            [2] => Some(Reserved::Tight),
            [0, index, spent] if (1..=asked.len() as i64).contains(index) => Some(Reserved::No {
                index: *index as usize - 1,
                spent: Usd::from_nanos((*spent).max(0) as u64),
            }),
            _ => {
                self.failed(&format!("the reservation script answered {reply:?}"));
                None
            }
        }
    }

    /// Gives back what `request_id` reserved and charges `cost`: per budget, what it has
    /// spent this period after the charge and whether this charge is the one to alert about.
    pub(crate) async fn settle(
        &self,
        asked: &[Asked],
        request_id: &str,
        amount: Usd,
        cost: Usd,
    ) -> Option<Vec<(Usd, bool)>> {
        let now_ms = wall_ms();
        let mut invocation = SETTLE.prepare_invoke();
        with_accounts(&mut invocation, asked.iter().map(|asked| &asked.account));
        invocation
            .arg(now_ms)
            .arg(lease(request_id, amount))
            .arg(amount.nanos())
            .arg(cost.nanos())
            .arg(ACCOUNT_TTL.as_millis() as u64);
        for asked in asked {
            invocation
                .arg(period_arg(asked.period))
                .arg(asked.seed.nanos())
                .arg(asked.alert_threshold.map_or(-1, |t| t.nanos() as i64));
        }
        let reply: Vec<i64> = self.run(&invocation).await?;
        if reply.len() != 2 * asked.len() {
            self.failed(&format!("the settlement script answered {reply:?}"));
            return None;
        }
        Some(
            reply
                .chunks_exact(2)
                .map(|pair| (Usd::from_nanos(pair[0].max(0) as u64), pair[1] == 1))
                .collect(),
        )
    }

    /// Gives back a reservation whose request never reached a provider.
    pub(crate) async fn release(&self, accounts: &[Account], request_id: &str, amount: Usd) {
        let mut invocation = RELEASE.prepare_invoke();
        with_accounts(&mut invocation, accounts.iter());
        invocation
            .arg(lease(request_id, amount))
            .arg(amount.nanos());
        // Should this fail, the reservation lapses with its lease.
        let _: Option<i64> = self.run(&invocation).await;
    }

    /// What the account shows spent in the period starting `period`: `Some(None)` when Redis
    /// has no such account.
    pub(crate) async fn spent(&self, account: &Account, period: i64) -> Option<Option<Usd>> {
        let mut connection = self.connection();
        let mut command = redis::cmd("HMGET");
        command.arg(&account.account).arg("period").arg("spent");
        let (stored_period, spent) = self
            .within(command.query_async::<(Option<i64>, Option<i64>)>(&mut connection))
            .await?;
        Some(stored_period.map(|stored| {
            if stored < period_arg(period) {
                Usd::ZERO
            } else {
                Usd::from_nanos(spent.unwrap_or(0).max(0) as u64)
            }
        }))
    }

    /// Raises accounts to what the store says each spent this period where they show less
    /// (`(account, period, store's figure)`); how many were raised.
    pub(crate) async fn floor(&self, figures: &[(Account, i64, Usd)]) -> Option<u64> {
        let now_ms = wall_ms();
        let mut raised = 0;
        for chunk in figures.chunks(FLOOR_CHUNK) {
            let mut invocation = FLOOR.prepare_invoke();
            with_accounts(&mut invocation, chunk.iter().map(|(account, _, _)| account));
            invocation.arg(now_ms).arg(ACCOUNT_TTL.as_millis() as u64);
            for (_, period, spent) in chunk {
                invocation.arg(period_arg(*period)).arg(spent.nanos());
            }
            raised += self.run::<u64>(&invocation).await?;
        }
        Some(raised)
    }
}

fn with_accounts<'a>(
    invocation: &mut ScriptInvocation<'_>,
    accounts: impl Iterator<Item = &'a Account>,
) {
    for account in accounts {
        invocation.key(&account.account).key(&account.leases);
    }
}

/// A period's first ms as Redis keeps it. Lua holds numbers as doubles, so a budget that never
/// resets (its period starting at `i64::MIN`) is kept as 0: no real period starts before 1970.
fn period_arg(period: i64) -> i64 {
    period.max(0)
}

/// A reservation's lease: the request and the amount it holds (given back if it lapses).
fn lease(request_id: &str, amount: Usd) -> String {
    format!("{request_id}:{}", amount.nanos())
}

fn period_name(period: Option<BudgetPeriod>) -> String {
    match period {
        None => "lifetime".to_owned(),
        Some(BudgetPeriod::Every { ms }) => format!("{ms}ms"),
        Some(BudgetPeriod::Week) => "week".to_owned(),
        Some(BudgetPeriod::Months(months)) => format!("{months}mo"),
    }
}

/// A reservation held in Redis, to settle or give back.
#[derive(Debug)]
pub(crate) struct SharedReservation {
    pub counters: Arc<SharedCounters>,
    pub request_id: String,
    pub asked: Vec<Asked>,
}
