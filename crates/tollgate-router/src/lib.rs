//! Model groups and deployment choice: every `model_list` entry sharing a `model_name` forms a
//! group; each attempt of a request is given one of its group's deployments by the configured
//! strategy, skipping deployments cooling down after failures; an `AttemptPlan` decides, when
//! an attempt fails, whether to retry, fall back to another group, or give up.
//!
//! Wildcard names (`openai/*`, `*`) serve any model they match: the first request for a model
//! makes a group for it from the wildcard's deployments, kept (within a bound) so that its
//! deployments' state — cooldowns, latency, usage — persists like a configured group's.
#![forbid(unsafe_code)]

mod plan;
pub mod state;
mod strategy;

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;
use std::time::Duration;

use http::HeaderValue;
use tollgate_core::config::{GroupAlias, RoutingSettings};
use tollgate_core::error::GatewayError;
use tollgate_core::wildcard::Pattern;
use tollgate_upstream::Deployment;

pub use plan::{AttemptPlan, Decision};
pub use state::{Clock, Cooldown, DeploymentState};

/// A deployment as the router sees it: how to reach it, and how it is doing.
#[derive(Debug)]
pub struct Member {
    pub deployment: Arc<Deployment>,
    pub state: DeploymentState,
    /// `model_info.id`, ready to send as a header.
    pub id_header: HeaderValue,
    /// The host of `api_base`, ready to send as a header.
    pub api_base_header: HeaderValue,
    /// How long a failure takes it out of rotation: its own `cooldown_time`, else the router's.
    cooldown_time: Duration,
    /// `order`: lower tiers serve first; no `order` is the last tier.
    tier: u32,
    /// Share of traffic under simple-shuffle (`weight`, else `rpm`, else `tpm`).
    share: f64,
    /// Input + output price per token, for cost-based routing.
    price: f64,
}

impl Member {
    fn new(
        deployment: Deployment,
        share_of: fn(&Deployment) -> Option<f64>,
        settings: &RoutingSettings,
    ) -> Self {
        let config = &deployment.config;
        let info = &config.model_info;
        let price = match (info.input_cost_per_token, info.output_cost_per_token) {
            (None, None) => strategy::UNKNOWN_PRICE,
            (input, output) => input.unwrap_or(0.0) + output.unwrap_or(0.0),
        };
        Member {
            id_header: header_value(&config.id),
            api_base_header: header_value(&deployment.api_base_host),
            cooldown_time: config.cooldown_time.unwrap_or(settings.cooldown_time),
            tier: config.order.unwrap_or(u32::MAX),
            share: share_of(&deployment).unwrap_or(0.0),
            price,
            state: DeploymentState::default(),
            deployment: Arc::new(deployment),
        }
    }
}

impl Deref for Member {
    type Target = Deployment;

    fn deref(&self) -> &Deployment {
        &self.deployment
    }
}

/// The deployments serving one `model_name`.
#[derive(Debug)]
pub struct ModelGroup {
    pub name: String,
    /// The wildcard `model_name` that made this group, if one did.
    pub pattern: Option<String>,
    /// The name, ready to send as a header.
    pub name_header: HeaderValue,
    /// Every deployment of the group, in config order.
    pub members: Vec<Arc<Member>>,
    /// Indexes of the lowest tier's members, and the running totals of their shares (empty
    /// when shares are equal): the simple-shuffle pick when nothing is cooling down.
    preferred: Vec<usize>,
    cumulative_shares: Vec<f64>,
    /// The latest end of any member's cooldown (router clock): before it, picks check each
    /// member; after it, none can be cooling.
    cooling_until: AtomicU64,
}

impl ModelGroup {
    fn new(name: String, pattern: Option<String>, members: Vec<Arc<Member>>) -> Self {
        let best_tier = members.iter().map(|m| m.tier).min().unwrap_or(u32::MAX);
        let preferred: Vec<usize> = (0..members.len())
            .filter(|&index| members[index].tier == best_tier)
            .collect();
        let shares: Vec<f64> = preferred.iter().map(|&i| members[i].share).collect();
        let unequal = shares.windows(2).any(|pair| pair[0] != pair[1]);
        let cumulative_shares = if unequal && shares.iter().sum::<f64>() > 0.0 {
            shares
                .iter()
                .scan(0.0, |total, share| {
                    *total += share;
                    Some(*total)
                })
                .collect()
        } else {
            Vec::new()
        };
        ModelGroup {
            name_header: header_value(&name),
            name,
            pattern,
            members,
            preferred,
            cumulative_shares,
            cooling_until: AtomicU64::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The first deployment, whose provider describes the group in `/v1/models`.
    pub fn first(&self) -> &Deployment {
        &self.members[0].deployment
    }

    /// The same group with other members (the kept ones with their state), still knowing
    /// when the last cooldown ends.
    fn succeeded_by(&self, members: Vec<Arc<Member>>) -> ModelGroup {
        let group = ModelGroup::new(self.name.clone(), self.pattern.clone(), members);
        group.note_cooldown(self.cooling_until.load(Ordering::Relaxed));
        group
    }

    fn note_cooldown(&self, until_ms: u64) {
        self.cooling_until.fetch_max(until_ms, Ordering::Relaxed);
    }
}

/// A request's hold on a deployment: counted in flight (least-busy routing) until dropped.
#[derive(Debug)]
pub struct Lease {
    member: Arc<Member>,
}

impl Lease {
    fn new(member: Arc<Member>, now_ms: u64) -> Self {
        member.state.start_request(now_ms);
        Lease { member }
    }

    /// A lease within the deployment's `rpm` and `tpm`; `None` when it has used them up
    /// this minute.
    fn within_limits(member: Arc<Member>, now_ms: u64) -> Option<Self> {
        let (rpm, tpm) = (member.config.rpm, member.config.tpm);
        member
            .state
            .try_start_request(now_ms, rpm, tpm)
            .then_some(Lease { member })
    }

    pub fn member(&self) -> &Arc<Member> {
        &self.member
    }
}

impl Deref for Lease {
    type Target = Member;

    fn deref(&self) -> &Member {
        &self.member
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.member.state.end_request();
    }
}

/// The deployments of one wildcard `model_name`, from which groups for the models it
/// matches are made.
#[derive(Debug)]
struct Wildcard {
    pattern: Pattern,
    deployments: Vec<Deployment>,
}

/// Groups made from wildcards kept at most; past it, one is dropped for each new one (its
/// deployments' state starts afresh if it is asked for again).
const MAX_MADE_GROUPS: usize = 1024;

/// The named groups at one moment. Deployments added or removed at run time (through the
/// management API) make a new one; requests hold on to the one they started with.
#[derive(Debug, Default)]
struct Groups {
    by_name: HashMap<String, Arc<ModelGroup>>,
    /// Group names in config order (then in the order they were added), for listing.
    order: Vec<String>,
}

/// Every model group, by the name clients send, with the routing settings.
#[derive(Debug, Default)]
pub struct Router {
    /// Read on every request without a lock; swapped whole when deployments change.
    groups: ArcSwap<Groups>,
    /// Serialises changes to `groups` (management calls, never requests).
    changing: Mutex<()>,
    aliases: HashMap<String, GroupAlias>,
    /// Most specific first.
    wildcards: Vec<Wildcard>,
    /// Groups made from `wildcards`, by requested model. Only read-locked on the way to a
    /// model no configured group serves; never held across an await.
    made: RwLock<HashMap<String, Arc<ModelGroup>>>,
    /// Whether pre-call checks are on and some deployment has a `max_input_tokens` to check.
    checks_prompt_size: bool,
    settings: RoutingSettings,
    clock: Clock,
}

impl Router {
    pub fn new(
        deployments: impl IntoIterator<Item = Deployment>,
        settings: RoutingSettings,
    ) -> Self {
        let mut by_name: HashMap<String, Vec<Deployment>> = HashMap::new();
        let mut order = Vec::new();
        let mut wildcards: Vec<Wildcard> = Vec::new();
        let mut any_context_limit = false;
        for deployment in deployments {
            any_context_limit |= deployment.config.model_info.max_input_tokens.is_some();
            let name = deployment.config.model_name.clone();
            if let Some(pattern) = Pattern::new(&name) {
                match wildcards.iter_mut().find(|w| w.pattern == pattern) {
                    Some(wildcard) => wildcard.deployments.push(deployment),
                    None => wildcards.push(Wildcard {
                        pattern,
                        deployments: vec![deployment],
                    }),
                }
                continue;
            }
            if !by_name.contains_key(&name) {
                order.push(name.clone());
            }
            by_name.entry(name).or_default().push(deployment);
        }
        let groups = by_name
            .into_iter()
            .map(|(name, deployments)| {
                let group = group_of(name.clone(), None, deployments, &settings);
                (name, Arc::new(group))
            })
            .collect();
        // A stable sort: among equally specific patterns, config order decides.
        wildcards.sort_by_key(|wildcard| wildcard.pattern.specificity());
        Router {
            groups: ArcSwap::from_pointee(Groups {
                by_name: groups,
                order,
            }),
            changing: Mutex::new(()),
            aliases: settings.aliases.clone(),
            wildcards,
            made: RwLock::default(),
            checks_prompt_size: settings.pre_call_checks && any_context_limit,
            settings,
            clock: Clock::new(),
        }
    }

    pub fn settings(&self) -> &RoutingSettings {
        &self.settings
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Whether requests' prompts are to be counted before routing (see
    /// `AttemptPlan::limit_prompt`).
    pub fn checks_prompt_size(&self) -> bool {
        self.checks_prompt_size
    }

    /// The group serving `model`: by its name, through `model_group_alias`, or made from the
    /// most specific wildcard matching it.
    pub fn group(&self, model: &str) -> Option<Arc<ModelGroup>> {
        let groups = self.groups.load();
        if let Some(group) = groups.by_name.get(model) {
            return Some(group.clone());
        }
        let target = match self.aliases.get(model) {
            Some(alias) => alias.group.as_str(),
            None => model,
        };
        if let Some(group) = groups.by_name.get(target) {
            return Some(group.clone());
        }
        self.made_group(target)
    }

    /// Adds a deployment to the group of its `model_name` (made when there is none); the
    /// group's other deployments keep their state. `false` when a deployment with its id is
    /// already here, or its name is a wildcard (wildcards come from the config file).
    pub fn add(&self, deployment: Deployment) -> bool {
        self.change(|groups| {
            if find_member(groups, &deployment.config.id).is_some() {
                return None;
            }
            self.with(groups, deployment)
        })
    }

    /// Puts `deployment` in place of the one with its id (which may be in another group);
    /// `false` when there is none, or its name is a wildcard.
    pub fn replace(&self, deployment: Deployment) -> bool {
        self.change(|groups| {
            let without = without(groups, &deployment.config.id)?;
            self.with(&without, deployment)
        })
    }

    /// Removes the deployment with this id (its group too when it was the last); `false`
    /// when there is none.
    pub fn remove(&self, id: &str) -> bool {
        self.change(|groups| without(groups, id))
    }

    /// Swaps in the groups `next` makes of the current ones, if it makes any. Requests under
    /// way keep the groups they started with.
    fn change(&self, next: impl FnOnce(&Groups) -> Option<Groups>) -> bool {
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        match next(&self.groups.load()) {
            Some(next) => {
                self.groups.store(Arc::new(next));
                true
            }
            None => false,
        }
    }

    /// `groups` with `deployment` joined to its group.
    fn with(&self, groups: &Groups, deployment: Deployment) -> Option<Groups> {
        if Pattern::new(&deployment.config.model_name).is_some() {
            return None;
        }
        let name = deployment.config.model_name.clone();
        let mut next = Groups {
            by_name: groups.by_name.clone(),
            order: groups.order.clone(),
        };
        let group = match groups.by_name.get(&name) {
            Some(group) => {
                let share_of = share_reader(group.first());
                let mut members = group.members.clone();
                members.push(Arc::new(Member::new(deployment, share_of, &self.settings)));
                group.succeeded_by(members)
            }
            None => {
                next.order.push(name.clone());
                group_of(name.clone(), None, vec![deployment], &self.settings)
            }
        };
        next.by_name.insert(name, Arc::new(group));
        Some(next)
    }

    /// The wildcard `model_name` that serves `model`, when no configured name does.
    pub fn wildcard_for(&self, model: &str) -> Option<(&str, &Deployment)> {
        self.wildcards
            .iter()
            .find(|wildcard| wildcard.pattern.matches(model))
            .map(|wildcard| (wildcard.pattern.as_str(), &wildcard.deployments[0]))
    }

    fn made_group(&self, model: &str) -> Option<Arc<ModelGroup>> {
        if self.wildcards.is_empty() {
            return None;
        }
        let made = self
            .made
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(group) = made.get(model) {
            return Some(group.clone());
        }
        drop(made);

        let (wildcard, captures) = self.wildcards.iter().find_map(|wildcard| {
            wildcard
                .pattern
                .captures(model)
                .map(|captures| (wildcard, captures))
        })?;
        let deployments: Vec<Deployment> = wildcard
            .deployments
            .iter()
            .filter_map(|template| {
                let config = template.config.for_model(model, &captures);
                template
                    .for_model(config)
                    .inspect_err(|reason| {
                        tracing::warn!(
                            model,
                            deployment = %template.config.id,
                            reason,
                            "wildcard deployment cannot serve this model"
                        );
                    })
                    .ok()
            })
            .collect();
        if deployments.is_empty() {
            return None;
        }
        let group = Arc::new(group_of(
            model.to_owned(),
            Some(wildcard.pattern.as_str().to_owned()),
            deployments,
            &self.settings,
        ));

        let mut made = self
            .made
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(raced) = made.get(model) {
            return Some(raced.clone());
        }
        if made.len() >= MAX_MADE_GROUPS
            && let Some(evicted) = made.keys().next().cloned()
        {
            made.remove(&evicted);
        }
        made.insert(model.to_owned(), group.clone());
        Some(group)
    }

    /// The attempts for a request for `model`: 404 when no group serves it. `fallbacks`: the
    /// request's own fallback groups, in place of the configured ones.
    pub fn plan(
        &self,
        model: &str,
        fallbacks: Option<Vec<String>>,
    ) -> Result<AttemptPlan<'_>, GatewayError> {
        let group = self
            .group(model)
            .ok_or_else(|| GatewayError::model_not_found(model))?;
        if let Some(unknown) = fallbacks
            .iter()
            .flatten()
            .find(|name| self.group(name).is_none())
        {
            return Err(GatewayError::invalid_param(
                "fallbacks",
                format!("`fallbacks` names `{unknown}`, which is not a model on this gateway."),
            ));
        }
        Ok(AttemptPlan::new(self, group, fallbacks))
    }

    /// The deployment with this id (`model_info.id`), in whichever group.
    pub fn deployment(&self, id: &str) -> Option<Arc<Member>> {
        find_member(&self.groups.load(), id).map(|(_, member)| member)
    }

    /// A failed health probe of `member`, a deployment of `group`: cools it down as a failing
    /// request would at once (see `DeploymentState::record_failed_probe`).
    pub fn probe_failed(
        &self,
        group: &ModelGroup,
        member: &Member,
        err: &GatewayError,
    ) -> Cooldown {
        let now = self.clock.now_ms();
        let cooldown =
            member
                .state
                .record_failed_probe(err, member.cooldown_time, group.len(), now);
        if let Cooldown::For(duration) = cooldown {
            group.note_cooldown(now + duration.as_millis() as u64);
        }
        cooldown
    }

    /// Groups in config order.
    pub fn groups(&self) -> Vec<Arc<ModelGroup>> {
        let groups = self.groups.load();
        groups
            .order
            .iter()
            .filter_map(|name| groups.by_name.get(name).cloned())
            .collect()
    }

    /// Aliases shown in `/v1/models` (those not `hidden`), with the group each serves.
    pub fn listed_aliases(&self) -> Vec<(&str, Arc<ModelGroup>)> {
        let groups = self.groups.load();
        let mut aliases: Vec<_> = self
            .aliases
            .iter()
            .filter(|(_, alias)| !alias.hidden)
            .filter_map(|(name, alias)| {
                Some((name.as_str(), groups.by_name.get(&alias.group)?.clone()))
            })
            .collect();
        aliases.sort_by_key(|(name, _)| *name);
        aliases
    }
}

/// `groups` without the deployment with this id (and without its group, if it was the
/// last); `None` when there is no such deployment.
fn without(groups: &Groups, id: &str) -> Option<Groups> {
    let (name, _) = find_member(groups, id)?;
    let mut next = Groups {
        by_name: groups.by_name.clone(),
        order: groups.order.clone(),
    };
    let group = &groups.by_name[&name];
    let members: Vec<_> = group
        .members
        .iter()
        .filter(|member| member.config.id != id)
        .cloned()
        .collect();
    if members.is_empty() {
        next.by_name.remove(&name);
        next.order.retain(|listed| *listed != name);
    } else {
        next.by_name
            .insert(name, Arc::new(group.succeeded_by(members)));
    }
    Some(next)
}

/// The group name and member with deployment id `id`.
fn find_member(groups: &Groups, id: &str) -> Option<(String, Arc<Member>)> {
    groups.by_name.values().find_map(|group| {
        group
            .members
            .iter()
            .find(|member| member.config.id == id)
            .map(|member| (group.name.clone(), member.clone()))
    })
}

/// A group of `deployments` (at least one), shares read as simple-shuffle reads them.
fn group_of(
    name: String,
    pattern: Option<String>,
    deployments: Vec<Deployment>,
    settings: &RoutingSettings,
) -> ModelGroup {
    let share_of = share_reader(&deployments[0]);
    let members = deployments
        .into_iter()
        .map(|deployment| Arc::new(Member::new(deployment, share_of, settings)))
        .collect();
    ModelGroup::new(name, pattern, members)
}

/// How simple-shuffle reads a group's shares, as LiteLLM does: `weight` if the group's first
/// deployment has one, else `rpm`, else `tpm`; a deployment without that value gets 0.
fn share_reader(first: &Deployment) -> fn(&Deployment) -> Option<f64> {
    let config = &first.config;
    if config.weight.is_some() {
        |d| d.config.weight
    } else if config.rpm.is_some() {
        |d| d.config.rpm.map(|v| v as f64)
    } else if config.tpm.is_some() {
        |d| d.config.tpm.map(|v| v as f64)
    } else {
        |_| Some(1.0)
    }
}

/// A configured name as a header value (ids and hosts the config accepts are valid header
/// text; anything else is shown as `invalid` rather than failing the request).
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tollgate_core::config;
    use tollgate_upstream::ClientPool;

    use super::*;

    fn router(yaml: &str) -> Router {
        let config = config::load_str(yaml, Path::new("test.yaml")).unwrap();
        Router::new(router_deployments(yaml), config.routing)
    }

    fn router_deployments(yaml: &str) -> Vec<Deployment> {
        let config = config::load_str(yaml, Path::new("test.yaml")).unwrap();
        let pool = ClientPool::new(&config.upstream, 1, &config.source).unwrap();
        config
            .deployments
            .into_iter()
            .enumerate()
            .map(|(index, d)| {
                let entry = format!("model_list[{index}]");
                Deployment::build(d, &entry, &pool, Path::new("test.yaml")).unwrap()
            })
            .collect()
    }

    fn first_pick(router: &Router, model: &str) -> String {
        let mut plan = router.plan(model, None).unwrap();
        plan.next_attempt().unwrap().config.id.clone()
    }

    fn counts(router: &Router, model: &str, picks: usize) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for _ in 0..picks {
            *counts.entry(first_pick(router, model)).or_default() += 1;
        }
        counts
    }

    fn failure(status: u16) -> GatewayError {
        GatewayError::upstream_status(http::StatusCode::from_u16(status).unwrap(), "failed")
    }

    #[test]
    fn weights_split_traffic_in_proportion() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a, weight: 3}, model_info: {id: a}}
  - {model_name: m, litellm_params: {model: mock/b, weight: 1}, model_info: {id: b}}",
        );
        let counts = counts(&router, "m", 20_000);
        let share_a = counts["a"] as f64 / 20_000.0;
        assert!((0.72..0.78).contains(&share_a), "a got {share_a}");
    }

    #[test]
    fn rpm_is_the_share_when_no_weight_is_given() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a, rpm: 100000}, model_info: {id: a}}
  - {model_name: m, litellm_params: {model: mock/b, rpm: 900000}, model_info: {id: b}}",
        );
        let counts = counts(&router, "m", 20_000);
        let share_b = counts["b"] as f64 / 20_000.0;
        assert!((0.87..0.93).contains(&share_b), "b got {share_b}");
    }

    #[test]
    fn a_deployment_takes_no_more_than_its_rpm_in_a_minute() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a, rpm: 3}, model_info: {id: a}}
  - {model_name: m, litellm_params: {model: mock/b, rpm: 2}, model_info: {id: b}}
  - {model_name: other, litellm_params: {model: mock/c}, model_info: {id: c}}",
        );
        let counts = counts(&router, "m", 5);
        assert_eq!((counts["a"], counts["b"]), (3, 2));
        let mut plan = router.plan("m", None).unwrap();
        assert!(plan.next_attempt().is_none());
        let refused = plan.unavailable();
        assert_eq!(refused.status.as_u16(), 429);
        assert!(refused.message.contains("rpm/tpm"), "{}", refused.message);
        assert!(
            refused
                .retry_after
                .is_some_and(|after| after.as_secs() <= 60)
        );
        // A request with fallbacks moves on to a group that has room.
        let mut plan = router.plan("m", Some(vec!["other".into()])).unwrap();
        assert_eq!(plan.next_attempt().unwrap().config.id, "c");
    }

    #[test]
    fn only_the_lowest_order_tier_serves_while_it_is_available() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a, order: 2}, model_info: {id: backup}}
  - {model_name: m, litellm_params: {model: mock/b, order: 1}, model_info: {id: primary}}
  - {model_name: m, litellm_params: {model: mock/c, order: 1}, model_info: {id: primary-2}}
router_settings: {num_retries: 3}",
        );
        let counts = counts(&router, "m", 2_000);
        assert!(!counts.contains_key("backup"));
        assert!(counts["primary"] > 800 && counts["primary-2"] > 800);

        // Both primaries rate-limited: they cool down, and the backup tier serves.
        let mut plan = router.plan("m", None).unwrap();
        for _ in 0..2 {
            let lease = plan.next_attempt().unwrap();
            assert!(lease.config.id.starts_with("primary"));
            assert_eq!(
                plan.failed(&lease, &failure(429)),
                Decision::Retry {
                    after: Duration::ZERO
                }
            );
        }
        assert_eq!(plan.next_attempt().unwrap().config.id, "backup");
        assert_eq!(first_pick(&router, "m"), "backup");
    }

    #[test]
    fn a_retry_goes_to_a_deployment_not_tried_yet() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a}, model_info: {id: a}}
  - {model_name: m, litellm_params: {model: mock/b}, model_info: {id: b}}
  - {model_name: m, litellm_params: {model: mock/c}, model_info: {id: c}}
router_settings: {allowed_fails: 1000}",
        );
        for _ in 0..50 {
            let mut plan = router.plan("m", None).unwrap();
            let mut seen = Vec::new();
            for _ in 0..3 {
                let lease = plan.next_attempt().unwrap();
                seen.push(lease.config.id.clone());
                // 500s: under allowed_fails, so nothing cools down.
                if seen.len() < 3 {
                    assert!(matches!(
                        plan.failed(&lease, &failure(500)),
                        Decision::Retry { .. }
                    ));
                }
            }
            seen.sort();
            assert_eq!(seen, ["a", "b", "c"]);
        }
    }

    #[test]
    fn retries_follow_retry_policy_then_fallbacks_then_give_up() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a}, model_info: {id: a}}
  - {model_name: backup, litellm_params: {model: mock/b}, model_info: {id: b}}
router_settings:
  num_retries: 1
  retry_policy: {BadRequestErrorRetries: 5, InternalServerErrorRetries: 0}
  fallbacks: [{m: [backup]}]",
        );
        // A bad request is never retried nor falls back, whatever the policy says.
        let mut plan = router.plan("m", None).unwrap();
        let lease = plan.next_attempt().unwrap();
        assert_eq!(plan.failed(&lease, &failure(400)), Decision::GiveUp);

        // 500: no retries by policy, straight to the fallback group; it fails too: give up.
        let mut plan = router.plan("m", None).unwrap();
        let lease = plan.next_attempt().unwrap();
        assert_eq!(
            plan.failed(&lease, &failure(500)),
            Decision::Retry {
                after: Duration::ZERO
            }
        );
        let lease = plan.next_attempt().unwrap();
        assert_eq!(lease.config.id, "b");
        assert_eq!((plan.retries(), plan.fallbacks()), (0, 1));
        assert_eq!(plan.failed(&lease, &failure(503)), Decision::GiveUp);

        // 429 falls under num_retries (1): one retry on the same deployment, after its
        // retry-after, then the fallback.
        let mut plan = router.plan("m", None).unwrap();
        let lease = plan.next_attempt().unwrap();
        let limited = failure(429).with_retry_after(Duration::from_millis(1500));
        assert_eq!(
            plan.failed(&lease, &limited),
            Decision::Retry {
                after: Duration::from_millis(1500)
            }
        );
        let lease = plan.next_attempt().unwrap();
        assert_eq!(lease.config.id, "a");
        assert!(matches!(
            plan.failed(&lease, &limited),
            Decision::Retry { .. }
        ));
        assert_eq!(plan.next_attempt().unwrap().config.id, "b");
        assert_eq!((plan.retries(), plan.fallbacks()), (1, 1));
    }

    #[test]
    fn a_retry_after_beyond_the_cap_is_not_waited_for() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a}, model_info: {id: a}}
router_settings: {max_retry_wait: 10}",
        );
        let mut plan = router.plan("m", None).unwrap();
        let lease = plan.next_attempt().unwrap();
        let err = failure(429).with_retry_after(Duration::from_secs(30));
        assert_eq!(plan.failed(&lease, &err), Decision::GiveUp);
    }

    #[test]
    fn backoff_doubles_with_jitter_when_the_same_deployment_is_retried() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a}, model_info: {id: a}}
router_settings: {num_retries: 3}",
        );
        let mut plan = router.plan("m", None).unwrap();
        let mut waits = Vec::new();
        for _ in 0..3 {
            let lease = plan.next_attempt().unwrap();
            match plan.failed(&lease, &failure(502)) {
                Decision::Retry { after } => waits.push(after.as_secs_f64()),
                Decision::GiveUp => panic!("retries left"),
            }
        }
        for (wait, full) in waits.iter().zip([0.5, 1.0, 2.0]) {
            assert!((full * 0.75..=full).contains(wait), "{waits:?}");
        }
        let lease = plan.next_attempt().unwrap();
        assert_eq!(plan.failed(&lease, &failure(502)), Decision::GiveUp);
    }

    #[test]
    fn context_window_errors_use_their_own_fallbacks() {
        let router = router(
            "model_list:
  - {model_name: small, litellm_params: {model: mock/a}, model_info: {id: a}}
  - {model_name: large, litellm_params: {model: mock/b}, model_info: {id: b}}
  - {model_name: other, litellm_params: {model: mock/c}, model_info: {id: c}}
router_settings:
  fallbacks: [{small: [other]}]
  context_window_fallbacks: [{small: [large]}]",
        );
        let mut plan = router.plan("small", None).unwrap();
        let lease = plan.next_attempt().unwrap();
        let err = failure(400).with_code(tollgate_core::error::CONTEXT_LENGTH_EXCEEDED);
        assert!(matches!(plan.failed(&lease, &err), Decision::Retry { .. }));
        assert_eq!(plan.next_attempt().unwrap().config.id, "b");
    }

    #[test]
    fn when_every_deployment_cools_the_answer_is_429_with_retry_after() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a}, model_info: {id: a}}
  - {model_name: m, litellm_params: {model: mock/b}, model_info: {id: b}}
router_settings: {cooldown_time: 30, num_retries: 1}",
        );
        let mut plan = router.plan("m", None).unwrap();
        for _ in 0..2 {
            let lease = plan.next_attempt().unwrap();
            plan.failed(&lease, &failure(429));
        }
        let mut plan = router.plan("m", None).unwrap();
        assert!(plan.next_attempt().is_none());
        let err = plan.unavailable();
        assert_eq!(err.status.as_u16(), 429);
        assert!(err.message.contains("`m`"), "{}", err.message);
        let retry_after = err.retry_after.unwrap().as_secs();
        assert!((29..=30).contains(&retry_after), "{retry_after}");
    }

    #[test]
    fn least_busy_picks_the_deployment_with_fewest_in_flight() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a}, model_info: {id: a}}
  - {model_name: m, litellm_params: {model: mock/b}, model_info: {id: b}}
router_settings: {routing_strategy: least-busy}",
        );
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(router.plan("m", None).unwrap().next_attempt().unwrap());
        }
        let on_a = held.iter().filter(|lease| lease.config.id == "a").count();
        // 3 requests over 2 deployments: 2 and 1, never 3 and 0.
        assert!(on_a == 1 || on_a == 2);
        let busier = if on_a == 2 { "a" } else { "b" };
        for _ in 0..20 {
            assert_ne!(first_pick(&router, "m"), busier);
        }
        drop(held);
        assert_eq!(router.deployment("a").unwrap().state.in_flight(), 0);
    }

    #[test]
    fn latency_based_prefers_the_fastest_within_the_buffer() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a}, model_info: {id: a}}
  - {model_name: m, litellm_params: {model: mock/b}, model_info: {id: b}}
  - {model_name: m, litellm_params: {model: mock/c}, model_info: {id: c}}
router_settings:
  routing_strategy: latency-based-routing
  routing_strategy_args: {lowest_latency_buffer: 0.5}",
        );
        let set = |id: &str, ms: u64| {
            router
                .deployment(id)
                .unwrap()
                .state
                .record_latency(Duration::from_millis(ms));
        };
        set("a", 100);
        set("b", 140);
        set("c", 400);
        let counts = counts(&router, "m", 2_000);
        assert!(!counts.contains_key("c"));
        assert!(counts["a"] > 800 && counts["b"] > 800, "{counts:?}");
    }

    #[test]
    fn cost_based_picks_the_cheapest_priced_deployment() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a}, model_info: {id: unpriced}}
  - {model_name: m, litellm_params: {model: mock/b}, model_info: {id: dear, input_cost_per_token: 0.00001, output_cost_per_token: 0.00003}}
  - {model_name: m, litellm_params: {model: mock/c}, model_info: {id: cheap, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}}
router_settings: {routing_strategy: cost-based-routing}",
        );
        for _ in 0..20 {
            assert_eq!(first_pick(&router, "m"), "cheap");
        }
    }

    #[test]
    fn usage_based_prefers_the_deployment_with_headroom() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a, tpm: 1000}, model_info: {id: a}}
  - {model_name: m, litellm_params: {model: mock/b, tpm: 1000}, model_info: {id: b}}
router_settings: {routing_strategy: usage-based-routing-v2}",
        );
        let now = router.clock().now_ms();
        router
            .deployment("a")
            .unwrap()
            .state
            .record_tokens(now, 900);
        router
            .deployment("b")
            .unwrap()
            .state
            .record_tokens(now, 100);
        for _ in 0..20 {
            assert_eq!(first_pick(&router, "m"), "b");
        }
    }

    #[test]
    fn deployments_join_and_leave_groups_at_run_time_keeping_the_others_state() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a}, model_info: {id: a}}",
        );
        let extra = |yaml: &str| {
            let mut built = router_deployments(yaml);
            built.remove(0)
        };
        let mut plan = router.plan("m", None).unwrap();
        let held = plan.next_attempt().unwrap();
        assert!(router.add(extra(
            "model_list:\n  - {model_name: m, litellm_params: {model: mock/b}, model_info: {id: b}}"
        )));
        assert_eq!(
            router.deployment("a").unwrap().state.in_flight(),
            1,
            "a kept its state"
        );
        let picked = counts(&router, "m", 200);
        assert!(
            picked.contains_key("a") && picked.contains_key("b"),
            "{picked:?}"
        );
        assert!(!router.add(extra(
            "model_list:\n  - {model_name: m, litellm_params: {model: mock/c}, model_info: {id: b}}"
        )), "ids stay unique");

        // A new group, listed after the configured ones.
        assert!(router.add(extra(
            "model_list:\n  - {model_name: n, litellm_params: {model: mock/c}, model_info: {id: c}}"
        )));
        let names: Vec<_> = router.groups().iter().map(|g| g.name.clone()).collect();
        assert_eq!(names, ["m", "n"]);

        // Moved to another group, then removed: the emptied group goes.
        assert!(router.replace(extra(
            "model_list:\n  - {model_name: m, litellm_params: {model: mock/c}, model_info: {id: c}}"
        )));
        assert!(router.group("n").is_none());
        assert_eq!(router.group("m").unwrap().len(), 3);
        assert!(router.remove("a") && !router.remove("a"));
        drop(held);
        assert_eq!(
            counts(&router, "m", 50)
                .keys()
                .filter(|id| *id == "a")
                .count(),
            0
        );
        assert!(!router.add(extra(
            "model_list:\n  - {model_name: \"w/*\", litellm_params: {model: mock/w}, model_info: {id: w}}"
        )), "wildcards come from the config file");
    }

    #[test]
    fn aliases_and_request_fallbacks_resolve_to_groups() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a}, model_info: {id: a}}
  - {model_name: n, litellm_params: {model: mock/b}, model_info: {id: b}}
router_settings:
  model_group_alias: {gpt-4: m, secret: {model: n, hidden: true}}",
        );
        assert_eq!(first_pick(&router, "gpt-4"), "a");
        assert_eq!(first_pick(&router, "secret"), "b");
        let listed: Vec<&str> = router
            .listed_aliases()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(listed, ["gpt-4"]);

        let err = router.plan("m", Some(vec!["nope".into()])).unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        let mut plan = router.plan("m", Some(vec!["n".into()])).unwrap();
        let lease = plan.next_attempt().unwrap();
        assert!(matches!(
            plan.failed(&lease, &failure(404)),
            Decision::Retry { .. }
        ));
        assert_eq!(plan.next_attempt().unwrap().config.id, "b");
    }

    #[test]
    fn unknown_models_are_404_naming_the_model() {
        let router = router("model_list:\n  - {model_name: m, litellm_params: {model: mock/a}}");
        let err = router.plan("nope", None).unwrap_err();
        assert_eq!(err.status.as_u16(), 404);
        assert!(err.message.contains("`nope`"));
        assert_eq!(
            router
                .groups()
                .iter()
                .map(|g| g.name.clone())
                .collect::<Vec<_>>(),
            ["m"]
        );
    }

    #[test]
    fn wildcard_groups_are_made_once_per_model_and_keep_their_state() {
        let router = router(
            "model_list:
  - {model_name: '*', litellm_params: {model: 'mock/*'}, model_info: {id: any}}
  - {model_name: 'team/*', litellm_params: {model: 'mock/*'}, model_info: {id: team-a}}
  - {model_name: 'team/*', litellm_params: {model: 'mock/*'}, model_info: {id: team-b}}
router_settings: {fallbacks: [{'team/*': [other]}]}",
        );
        let group = router.group("team/x").unwrap();
        assert_eq!(group.len(), 2);
        assert_eq!(group.pattern.as_deref(), Some("team/*"));
        assert_eq!(group.members[0].config.model, "x");
        assert!(Arc::ptr_eq(&group, &router.group("team/x").unwrap()));
        assert_eq!(router.group("other").unwrap().members[0].config.id, "any");
        assert_eq!(router.wildcard_for("y").unwrap().0, "*");

        // A cooldown on a made group's deployment lasts across requests.
        let mut plan = router.plan("team/x", None).unwrap();
        let lease = plan.next_attempt().unwrap();
        let cooled = lease.config.id.clone();
        plan.failed(&lease, &failure(429));
        drop(lease);
        for _ in 0..20 {
            assert_ne!(first_pick(&router, "team/x"), cooled);
        }
        // The pattern's fallbacks apply to the models it serves.
        let mut plan = router.plan("team/y", None).unwrap();
        for _ in 0..3 {
            let Some(lease) = plan.next_attempt() else {
                break;
            };
            plan.failed(&lease, &failure(500));
        }
        assert_eq!(plan.group().name, "other");
    }
}
