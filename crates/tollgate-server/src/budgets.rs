//! Budgets on the request path: the worst case a request may cost, reserved against every
//! budget that applies before it is forwarded (see `tollgate_policy::budgets`), and each
//! budgeted entity's spend so far read from the store at start-up and when a budget is set.

use std::collections::HashMap;
use std::sync::Arc;

use tollgate_core::endpoint::Endpoint;
use tollgate_core::error::GatewayError;
use tollgate_policy::auth::{Caller, end_user_budget, tag_budgets};
use tollgate_policy::budgets::{
    Budget, BudgetAlert, BudgetCheck, Reservation, Settlement, Shortfall,
};
use tollgate_policy::directory::{Cached, Directory};
use tollgate_policy::keys::key_model_id;
use tollgate_pricing::{ModelPrice, Usd};
use tollgate_router::AttemptPlan;
use tollgate_store::{
    BudgetFields, BudgetRecord, CustomerRecord, Entity, EntityKind, KeyRecord, OrganizationRecord,
    Store, StoreError, TagRecord, TeamRecord, UserRecord,
};

use crate::app::Gateway;

/// The output a request is assumed to ask for when neither it nor its model's price says.
const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 4_096;

/// Whom a request's spend counts against.
pub(crate) struct Payers<'a> {
    pub caller: &'a Caller,
    pub end_user: Option<&'a Cached<CustomerRecord>>,
    /// The defined tags it carries.
    pub tags: &'a [Arc<Cached<TagRecord>>],
    /// The model as the request names it: per-model key budgets go by that name, as spend
    /// records do.
    pub model: &'a str,
}

impl Payers<'_> {
    /// Every budget that applies.
    fn budgets(&self, directory: &Directory) -> Vec<BudgetCheck<'_>> {
        let mut checks = match self.caller {
            Caller::Key(principal) => {
                let mut checks = principal.budgets(directory);
                checks.extend(principal.key.model_budget(self.model));
                checks
            }
            Caller::Master | Caller::Anonymous => Vec::new(),
        };
        checks.extend(
            self.end_user
                .and_then(|customer| end_user_budget(customer, directory)),
        );
        checks.extend(tag_budgets(self.tags, directory));
        checks
    }
}

/// Reserves the request's worst-case cost against every budget its payers have; `None` when
/// none applies (and then nothing is counted or parsed).
pub(crate) async fn reserve(
    gateway: &Gateway,
    payers: &Payers<'_>,
    endpoint: Endpoint,
    body: &[u8],
    max_output_tokens: Option<u64>,
    plan: &AttemptPlan<'_>,
    request_id: &str,
) -> Result<Option<Reservation>, GatewayError> {
    let checks = payers.budgets(&gateway.auth.directory);
    if checks.is_empty() {
        return Ok(None);
    }
    let prices: Vec<_> = plan
        .requested()
        .members
        .iter()
        .filter_map(|member| {
            let config = &member.deployment.config;
            let longest_ms = u64::try_from(config.timeout.as_millis()).unwrap_or(u64::MAX);
            Some((config.price.clone()?, longest_ms))
        })
        .collect();
    let asked = if endpoint == Endpoint::Embeddings {
        Some(0)
    } else {
        max_output_tokens
    };
    // A tokenizer never counts more tokens than the body has bytes: that bound costs nothing
    // to know, and while every budget has room for many such requests it is reserved as is.
    // Only near a limit is the prompt counted, so the reservation is no larger than it must.
    let loose = worst_case(&prices, body.len() as u64, asked);
    let budgets = &gateway.budgets;
    let reserved = match budgets
        .reserve(&checks, loose, loose.saturating_mul(ROOM_FOR), request_id)
        .await
    {
        Err(Shortfall::Tight) => {
            let prompt = crate::exchange::estimated_prompt_tokens(endpoint, body)
                .await
                .unwrap_or(body.len() as u64);
            let exact = worst_case(&prices, prompt, asked);
            budgets.reserve(&checks, exact, exact, request_id).await
        }
        loose_enough => loose_enough,
    };
    match reserved {
        Ok(reservation) => Ok(Some(reservation)),
        Err(Shortfall::Exceeded(refusal)) => Err(refusal),
        Err(Shortfall::Tight) => unreachable!("no room beyond the amount was asked"),
    }
}

/// Settles a request's reservation at `cost`, and sends the alerts that sets off (at once, or
/// once the shared accounts have answered).
pub(crate) fn settle(gateway: &Arc<Gateway>, reservation: Reservation, cost: Usd) {
    match reservation.settle(cost) {
        Settlement::Done(alerts) => {
            for alert in &alerts {
                self::alert(gateway, alert);
            }
        }
        Settlement::Pending(alerts) => {
            let gateway = gateway.clone();
            tokio::spawn(async move {
                for alert in &alerts.await {
                    self::alert(&gateway, alert);
                }
            });
        }
    }
}

/// How many loosely bounded requests a budget must have room for before the prompt is left
/// uncounted.
const ROOM_FOR: u64 = 10;

/// The most the request can cost on the dearest deployment of its group: `prompt` tokens, and
/// as many output tokens as it allows (`max_tokens`, else the model's limit); by the second,
/// as long as the deployment's timeout.
fn worst_case(prices: &[(Arc<ModelPrice>, u64)], prompt: u64, asked: Option<u64>) -> Usd {
    prices
        .iter()
        .map(|(price, longest_ms)| {
            let output = match (asked, price.max_output_tokens) {
                (Some(asked), Some(limit)) => asked.min(limit),
                (Some(asked), None) => asked,
                (None, Some(limit)) => limit,
                (None, None) => DEFAULT_MAX_OUTPUT_TOKENS,
            };
            price.worst_case(prompt, output, *longest_ms)
        })
        .max()
        .unwrap_or(Usd::ZERO)
}

/// The budget that applies to a record's fields (its own, or the shared one it names).
pub(crate) fn effective(
    gateway: &Gateway,
    fields: &tollgate_store::BudgetFields,
) -> Option<Budget> {
    Budget::resolve(Budget::of(fields), fields, &gateway.auth.directory)
}

/// Every budgeted entity the directory holds, with its budget.
fn budgeted(gateway: &Gateway) -> Vec<(EntityKind, String, Budget)> {
    let directory = &gateway.auth.directory;
    let mut found = Vec::new();
    for key in directory.keys.budgeted() {
        found.extend(key_budgets(gateway, &key.record));
    }
    let tables = [
        (
            EntityKind::User,
            budgets_of(directory, &directory.users.all(), |r| &r.user_id),
        ),
        (
            EntityKind::Team,
            budgets_of(directory, &directory.teams.all(), |r| &r.team_id),
        ),
        (
            EntityKind::Organization,
            budgets_of(directory, &directory.organizations.all(), |r| {
                &r.organization_id
            }),
        ),
        (
            EntityKind::EndUser,
            budgets_of(directory, &directory.customers.all(), |r| &r.user_id),
        ),
        (
            EntityKind::Tag,
            budgets_of(directory, &directory.tags.all(), |r| &r.name),
        ),
    ];
    for (kind, entries) in tables {
        found.extend(entries.into_iter().map(|(id, budget)| (kind, id, budget)));
    }
    for team in directory.teams.all() {
        for member in &team.record.members_with_roles {
            let (Some(user_id), Some(max)) = (&member.user_id, member.max_budget_in_team) else {
                continue;
            };
            let budget = Budget {
                max: Usd::from_f64(max),
                soft: None,
                period: team.budget.and_then(|budget| budget.period),
            };
            let id = format!("{}/{user_id}", team.record.team_id);
            found.push((EntityKind::TeamMember, id, budget));
        }
    }
    found
}

/// Who names the shared budget `budget_id` (`team eng`, `key ci-bot`, …), for messages.
pub(crate) fn holders(gateway: &Gateway, budget_id: &str) -> Vec<String> {
    let directory = &gateway.auth.directory;
    let names = |fields: Option<&BudgetFields>| {
        fields.and_then(|fields| fields.budget_id.as_deref()) == Some(budget_id)
    };
    let mut found: Vec<String> = directory
        .keys
        .budgeted()
        .iter()
        .filter(|key| names(Some(&key.record.budget)))
        .map(|key| {
            let name = key
                .record
                .key_alias
                .as_ref()
                .unwrap_or(&key.record.key_name);
            format!("key {name}")
        })
        .collect();
    found.extend(naming(&directory.users.all(), "user", names, |r| {
        &r.user_id
    }));
    found.extend(naming(&directory.teams.all(), "team", names, |r| {
        &r.team_id
    }));
    found.extend(naming(
        &directory.organizations.all(),
        "organization",
        names,
        |r| &r.organization_id,
    ));
    found.extend(naming(&directory.customers.all(), "end user", names, |r| {
        &r.user_id
    }));
    found.extend(naming(&directory.tags.all(), "tag", names, |r| &r.name));
    found
}

fn naming<E: Entity>(
    rows: &[Arc<Cached<E>>],
    label: &str,
    names: impl Fn(Option<&BudgetFields>) -> bool,
    id: impl Fn(&E) -> &String,
) -> Vec<String> {
    rows.iter()
        .filter(|row| names(row.record.budget()))
        .map(|row| format!("{label} {}", id(&row.record)))
        .collect()
}

/// A key's budgets: its own (or its shared one's), and one per model it has a budget for.
pub(crate) fn key_budgets(gateway: &Gateway, key: &KeyRecord) -> Vec<(EntityKind, String, Budget)> {
    let own =
        effective(gateway, &key.budget).map(|budget| (EntityKind::Key, key.token.clone(), budget));
    let per_model = Budget::per_model(key).into_iter().map(|(model, budget)| {
        (
            EntityKind::KeyModel,
            key_model_id(&key.token, &model),
            budget,
        )
    });
    own.into_iter().chain(per_model).collect()
}

fn budgets_of<E: Entity>(
    directory: &Directory,
    rows: &[std::sync::Arc<Cached<E>>],
    id: impl Fn(&E) -> &String,
) -> Vec<(String, Budget)> {
    rows.iter()
        .filter_map(|row| {
            let budget = Budget::resolve(row.budget, row.record.budget()?, directory)?;
            Some((id(&row.record).clone(), budget))
        })
        .collect()
}

/// Reads what every budgeted entity has spent in its current period (one query per kind and
/// period) into the budget book, and into the shared accounts where they show less.
pub(crate) async fn load(gateway: &Gateway, store: &Store) -> Result<usize, StoreError> {
    let now = gateway.budgets.now_ms();
    let mut by_period: HashMap<(EntityKind, i64), Vec<(String, Budget)>> = HashMap::new();
    for (kind, id, budget) in budgeted(gateway) {
        by_period
            .entry((kind, budget.period_start(now)))
            .or_default()
            .push((id, budget));
    }
    let mut figures = Vec::new();
    for ((kind, since), entities) in by_period {
        let spent = store.period_spend(kind, since, None).await?;
        for (id, budget) in entities {
            let amount = Usd::from_nanos(spent.get(&id).copied().unwrap_or(0));
            gateway.budgets.seed(kind, &id, &budget, since, amount);
            figures.push((kind, id, budget, since, amount));
        }
    }
    gateway.budgets.share_store_figures(&figures).await;
    Ok(figures.len())
}

/// After a record is written through the management API: its budget (and, for a team, its
/// members' budgets) starts from what the store says was spent this period. A store that
/// cannot say is logged; the budget then counts from this gateway's own figure.
pub(crate) async fn take_in<E: Entity>(gateway: &Gateway, store: &Store, record: &E) {
    if E::TABLE == BudgetRecord::TABLE {
        // Every record naming it may have a new budget now.
        if let Err(err) = load(gateway, store).await {
            tracing::warn!(error = %err, "cannot read budgets' spend so far from the store; they count from this gateway's own figures");
        }
        return;
    }
    let kind = match E::TABLE {
        TeamRecord::TABLE => EntityKind::Team,
        UserRecord::TABLE => EntityKind::User,
        OrganizationRecord::TABLE => EntityKind::Organization,
        CustomerRecord::TABLE => EntityKind::EndUser,
        TagRecord::TABLE => EntityKind::Tag,
        _ => return,
    };
    let directory = &gateway.auth.directory;
    let mut budgets: Vec<(EntityKind, String, Budget)> = record
        .budget()
        .and_then(|fields| Budget::resolve(Budget::of(fields), fields, directory))
        .map(|budget| (kind, record.id().to_owned(), budget))
        .into_iter()
        .collect();
    if let Some(team) = (record as &dyn std::any::Any).downcast_ref::<TeamRecord>() {
        let period = Budget::of(&team.budget).and_then(|budget| budget.period);
        for member in &team.members_with_roles {
            if let (Some(user_id), Some(max)) = (&member.user_id, member.max_budget_in_team) {
                let budget = Budget {
                    max: Usd::from_f64(max),
                    soft: None,
                    period,
                };
                let id = format!("{}/{user_id}", team.team_id);
                budgets.push((EntityKind::TeamMember, id, budget));
            }
        }
    }
    for (kind, id, budget) in budgets {
        if let Err(err) = load_one(gateway, store, kind, &id, &budget).await {
            tracing::warn!(error = %err, entity = kind.as_str(), %id, "cannot read this budget's spend so far from the store; counting from this gateway's own figure");
        }
    }
}

/// Reads one entity's spend in its current period into the budget book, when its budget has
/// just been set or changed.
pub(crate) async fn load_one(
    gateway: &Gateway,
    store: &Store,
    kind: EntityKind,
    id: &str,
    budget: &Budget,
) -> Result<(), StoreError> {
    let since = budget.period_start(gateway.budgets.now_ms());
    let spent = store.period_spend(kind, since, Some(id)).await?;
    let amount = Usd::from_nanos(spent.get(id).copied().unwrap_or(0));
    gateway.budgets.seed(kind, id, budget, since, amount);
    gateway
        .budgets
        .share_store_figures(&[(kind, id.to_owned(), *budget, since, amount)])
        .await;
    Ok(())
}

/// A budget's alert threshold crossed (once per period): logged, and posted to the alert
/// webhook in a shape Slack's incoming webhooks show (`text`) with the figures as fields.
pub(crate) fn alert(gateway: &Gateway, alert: &BudgetAlert) {
    let max = alert.max.map(|max| max.to_string());
    tracing::warn!(
        entity = alert.kind.as_str(),
        id = %alert.id,
        spent = %alert.spent,
        threshold = %alert.threshold,
        max_budget = max.as_deref().unwrap_or("none"),
        "budget alert: spend has passed the alert threshold for this period"
    );
    let Some(webhook) = gateway.alerts.clone() else {
        return;
    };
    let limit = max
        .as_ref()
        .map_or(String::new(), |max| format!(" of its ${max} budget"));
    let body = serde_json::json!({
        "text": format!(
            "Budget alert: {} has spent ${}{limit} (alert threshold ${}).",
            alert.label,
            alert.spent,
            alert.threshold
        ),
        "event": "budget_alert",
        "entity_type": alert.kind.as_str(),
        "entity_id": alert.id,
        "spend": alert.spent.as_f64(),
        "threshold": alert.threshold.as_f64(),
        "max_budget": alert.max.map(tollgate_pricing::Usd::as_f64),
    });
    tokio::spawn(async move {
        if let Err(reason) = webhook.post_json(body.to_string().into_bytes()).await {
            tracing::warn!(%reason, "the budget alert webhook did not take the alert");
        }
    });
}

/// Adds `spend` (dollars: this period's when the budget resets, else all time, as LiteLLM
/// reports it) and `budget_reset_at` to an entity's shown record.
pub(crate) async fn show_spend(
    gateway: &Gateway,
    store: &Store,
    shown: &mut serde_json::Value,
    kind: EntityKind,
    id: &str,
    budget: Option<Budget>,
) -> Result<(), StoreError> {
    let (spent, reset_at) = match budget {
        Some(budget) => gateway.budgets.standing(kind, id, &budget).await,
        None => {
            let totals = store.spend_totals(kind, &[id]).await?;
            (Usd::from_nanos(totals.get(id).copied().unwrap_or(0)), None)
        }
    };
    shown["spend"] = serde_json::json!(spent.as_f64());
    shown["budget_reset_at"] = serde_json::json!(reset_at.map(tollgate_core::calendar::iso8601));
    Ok(())
}
