//! How requests are spread over a model group's deployments and what happens when one fails:
//! `router_settings` (and the `litellm_settings` keys LiteLLM also reads there), with
//! LiteLLM's names, shapes and defaults.

use std::collections::HashMap;
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use super::ConfigError;
use super::raw::Scalar;
use super::validate::Resolver;
use crate::error::FailureClass;
use crate::wildcard::Pattern;

/// LiteLLM's defaults: two retries, three failures a minute before a cooldown of five
/// seconds, at most five fallback groups.
const DEFAULT_NUM_RETRIES: u32 = 2;
const DEFAULT_ALLOWED_FAILS: u32 = 3;
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);
const DEFAULT_MAX_FALLBACKS: usize = 5;
/// A provider's `retry-after` longer than this is not waited for: the request moves on to a
/// fallback, or fails with the provider's `retry-after` passed on.
const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// The keys this module reads, for the start-up warning about the others.
pub(super) const ROUTER_KEYS: &[&str] = &[
    "routing_strategy",
    "routing_strategy_args",
    "num_retries",
    "retry_policy",
    "retry_after",
    "max_retry_wait",
    "allowed_fails",
    "allowed_fails_policy",
    "cooldown_time",
    "disable_cooldowns",
    "fallbacks",
    "default_fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "max_fallbacks",
    "model_group_alias",
    "enable_pre_call_checks",
];
/// Keys LiteLLM reads from `litellm_settings` when `router_settings` does not set them.
pub(super) const LITELLM_KEYS: &[&str] = &[
    "num_retries",
    "allowed_fails",
    "fallbacks",
    "default_fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "max_fallbacks",
];

/// `routing_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingStrategy {
    /// Random, weighted by `weight`, else `rpm`, else `tpm`.
    SimpleShuffle,
    /// Fewest requests in flight.
    LeastBusy,
    /// Lowest recent latency (time to first token for streams), within `lowest_latency_buffer`.
    LatencyBased,
    /// Most rpm/tpm headroom this minute.
    UsageBased,
    /// Cheapest by input + output price per token.
    CostBased,
}

/// A `model_group_alias` entry: requests for the alias go to `group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAlias {
    pub group: String,
    /// Left out of `/v1/models`.
    pub hidden: bool,
}

/// Model group → the groups to try, in order, when it fails. `*` applies to every group
/// without its own entry.
pub type FallbackMap = HashMap<String, Vec<String>>;

#[derive(Debug, Clone)]
pub struct RoutingSettings {
    pub strategy: RoutingStrategy,
    /// `latency-based-routing`: deployments within this fraction of the fastest are equal.
    pub lowest_latency_buffer: f64,
    /// Retries of a failed request within its group, unless `retry_policy` says otherwise.
    pub num_retries: u32,
    /// Retries per failure class, overriding `num_retries`.
    pub retry_policy: HashMap<FailureClass, u32>,
    /// The shortest wait before a retry on the same deployment (`retry_after`).
    pub min_retry_wait: Duration,
    /// The longest provider `retry-after` the gateway waits out (`max_retry_wait`, Tollgate's).
    pub max_retry_wait: Duration,
    /// Failures a deployment may have in a minute before it is cooled down.
    pub allowed_fails: u32,
    /// `allowed_fails` per failure class.
    pub allowed_fails_policy: HashMap<FailureClass, u32>,
    /// How long a failing deployment is left out; zero disables cooldowns.
    pub cooldown_time: Duration,
    pub fallbacks: FallbackMap,
    pub context_window_fallbacks: FallbackMap,
    pub content_policy_fallbacks: FallbackMap,
    /// Fallback groups tried at most, per request.
    pub max_fallbacks: usize,
    /// Before a request is sent, its prompt is counted and deployments whose
    /// `max_input_tokens` it exceeds are passed over (`enable_pre_call_checks`).
    pub pre_call_checks: bool,
    pub aliases: HashMap<String, GroupAlias>,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        RoutingSettings {
            strategy: RoutingStrategy::SimpleShuffle,
            lowest_latency_buffer: 0.0,
            num_retries: DEFAULT_NUM_RETRIES,
            retry_policy: HashMap::new(),
            min_retry_wait: Duration::ZERO,
            max_retry_wait: DEFAULT_MAX_RETRY_WAIT,
            allowed_fails: DEFAULT_ALLOWED_FAILS,
            allowed_fails_policy: HashMap::new(),
            cooldown_time: DEFAULT_COOLDOWN,
            fallbacks: HashMap::new(),
            context_window_fallbacks: HashMap::new(),
            content_policy_fallbacks: HashMap::new(),
            max_fallbacks: DEFAULT_MAX_FALLBACKS,
            pre_call_checks: false,
            aliases: HashMap::new(),
        }
    }
}

impl RoutingSettings {
    /// Retries allowed after a failure of this class.
    pub fn retries_for(&self, class: FailureClass) -> u32 {
        self.retry_policy
            .get(&class)
            .copied()
            .unwrap_or(self.num_retries)
    }

    /// Failures of this class a deployment may have in a minute before it cools down.
    pub fn allowed_fails_for(&self, class: FailureClass) -> u32 {
        self.allowed_fails_policy
            .get(&class)
            .copied()
            .unwrap_or(self.allowed_fails)
    }
}

/// `retry_policy` keys (`…Retries`) and `allowed_fails_policy` keys (`…AllowedFails`), by the
/// LiteLLM exception name they start with.
const POLICY_CLASSES: &[(&str, FailureClass)] = &[
    ("BadRequestError", FailureClass::BadRequest),
    ("AuthenticationError", FailureClass::Authentication),
    ("NotFoundError", FailureClass::NotFound),
    ("TimeoutError", FailureClass::Timeout),
    ("RateLimitError", FailureClass::RateLimit),
    ("ContentPolicyViolationError", FailureClass::ContentPolicy),
    ("InternalServerError", FailureClass::InternalServer),
];

/// The model names of `model_list`, wildcard patterns included: a name is known when it is
/// one of them or a pattern matches it.
pub(super) struct GroupNames<'a> {
    pub(super) names: Vec<&'a str>,
    pub(super) patterns: Vec<Pattern>,
}

impl GroupNames<'_> {
    fn contains(&self, name: &str) -> bool {
        self.names.contains(&name) || self.patterns.iter().any(|pattern| pattern.matches(name))
    }
}

/// Reads the routing settings. `groups` are the model groups of `model_list`: fallbacks and
/// aliases must name one of them.
pub(super) fn resolve(
    cx: &Resolver<'_>,
    router: &Mapping,
    litellm: &Mapping,
    groups: &GroupNames<'_>,
) -> Result<RoutingSettings, ConfigError> {
    let mut settings = RoutingSettings::default();
    // A key in `router_settings` wins over the same key in `litellm_settings`.
    let either = |key: &str| -> Option<(String, &Value)> {
        match router.get(key) {
            Some(value) if !value.is_null() => Some((format!("router_settings.{key}"), value)),
            _ => litellm
                .get(key)
                .filter(|value| !value.is_null())
                .map(|value| (format!("litellm_settings.{key}"), value)),
        }
    };
    let router_only = |key: &str| -> Option<(String, &Value)> {
        router
            .get(key)
            .filter(|value| !value.is_null())
            .map(|value| (format!("router_settings.{key}"), value))
    };

    if let Some((path, value)) = router_only("routing_strategy") {
        let name = cx.text(&path, &scalar(cx, &path, value)?)?;
        settings.strategy = match name.as_str() {
            "simple-shuffle" => RoutingStrategy::SimpleShuffle,
            "least-busy" => RoutingStrategy::LeastBusy,
            "latency-based-routing" => RoutingStrategy::LatencyBased,
            "usage-based-routing" | "usage-based-routing-v2" => RoutingStrategy::UsageBased,
            "cost-based-routing" => RoutingStrategy::CostBased,
            other => {
                return Err(cx.error(
                    &path,
                    format!(
                        "unknown routing strategy `{other}`; expected simple-shuffle, \
                         least-busy, latency-based-routing, usage-based-routing-v2 or \
                         cost-based-routing"
                    ),
                ));
            }
        };
    }
    // LiteLLM reads the buffer from `routing_strategy_args`; accepted at the top level too.
    let buffer = match router_only("routing_strategy_args") {
        Some((path, Value::Mapping(args))) => args
            .get("lowest_latency_buffer")
            .map(|value| (format!("{path}.lowest_latency_buffer"), value)),
        Some((path, _)) => return Err(cx.error(&path, "expected a mapping")),
        None => None,
    }
    .or_else(|| router_only("lowest_latency_buffer"));
    if let Some((path, value)) = buffer {
        settings.lowest_latency_buffer = cx.non_negative_f64(&path, &scalar(cx, &path, value)?)?;
    }

    if let Some((path, value)) = either("num_retries") {
        settings.num_retries = count(cx, &path, value)?;
    }
    if let Some((path, value)) = router_only("retry_policy") {
        settings.retry_policy = policy(cx, &path, value, "Retries")?;
    }
    if let Some((path, value)) = router_only("retry_after") {
        settings.min_retry_wait = seconds_or_zero(cx, &path, value)?;
    }
    if let Some((path, value)) = router_only("max_retry_wait") {
        settings.max_retry_wait = seconds_or_zero(cx, &path, value)?;
    }
    if let Some((path, value)) = either("allowed_fails") {
        settings.allowed_fails = count(cx, &path, value)?;
    }
    if let Some((path, value)) = router_only("allowed_fails_policy") {
        settings.allowed_fails_policy = policy(cx, &path, value, "AllowedFails")?;
    }
    if let Some((path, value)) = router_only("cooldown_time") {
        settings.cooldown_time = seconds_or_zero(cx, &path, value)?;
    }
    if let Some((path, value)) = router_only("disable_cooldowns")
        && cx.bool(&path, &scalar(cx, &path, value)?)?
    {
        settings.cooldown_time = Duration::ZERO;
    }

    if let Some((path, value)) = either("fallbacks") {
        settings.fallbacks = fallback_map(cx, &path, value, groups)?;
    }
    if let Some((path, value)) = either("default_fallbacks") {
        let targets = group_list(cx, &path, value, groups)?;
        settings.fallbacks.entry("*".to_owned()).or_insert(targets);
    }
    if let Some((path, value)) = either("context_window_fallbacks") {
        settings.context_window_fallbacks = fallback_map(cx, &path, value, groups)?;
    }
    if let Some((path, value)) = either("content_policy_fallbacks") {
        settings.content_policy_fallbacks = fallback_map(cx, &path, value, groups)?;
    }
    if let Some((path, value)) = either("max_fallbacks") {
        settings.max_fallbacks = count(cx, &path, value)? as usize;
    }

    if let Some((path, value)) = router_only("model_group_alias") {
        settings.aliases = aliases(cx, &path, value, groups)?;
    }
    if let Some((path, value)) = router_only("enable_pre_call_checks") {
        settings.pre_call_checks = cx.bool(&path, &scalar(cx, &path, value)?)?;
    }
    Ok(settings)
}

fn scalar(cx: &Resolver<'_>, path: &str, value: &Value) -> Result<Scalar, ConfigError> {
    match value {
        Value::Bool(flag) => Ok(Scalar::Bool(*flag)),
        Value::Number(number) => Ok(match number.as_i64() {
            Some(int) => Scalar::Integer(int),
            None => Scalar::Float(number.as_f64().unwrap_or(f64::NAN)),
        }),
        Value::String(text) => Ok(Scalar::Text(text.clone())),
        _ => Err(cx.error(path, "expected a single value, not a list or mapping")),
    }
}

fn count(cx: &Resolver<'_>, path: &str, value: &Value) -> Result<u32, ConfigError> {
    let number = cx.u64(path, &scalar(cx, path, value)?)?;
    u32::try_from(number).map_err(|_| cx.error(path, format!("{number} is too large")))
}

/// Seconds (a number or a duration like `30s`), where zero is allowed and means "none".
fn seconds_or_zero(cx: &Resolver<'_>, path: &str, value: &Value) -> Result<Duration, ConfigError> {
    let value = scalar(cx, path, value)?;
    match value {
        Scalar::Integer(_) | Scalar::Float(_) => {
            let number = cx.non_negative_f64(path, &value)?;
            Ok(Duration::from_secs_f64(number))
        }
        _ if cx.text(path, &value)?.trim() == "0" => Ok(Duration::ZERO),
        _ => cx.duration(path, &value),
    }
}

/// `retry_policy` / `allowed_fails_policy`: `{RateLimitErrorRetries: 3, …}`.
fn policy(
    cx: &Resolver<'_>,
    path: &str,
    value: &Value,
    suffix: &str,
) -> Result<HashMap<FailureClass, u32>, ConfigError> {
    let Value::Mapping(entries) = value else {
        return Err(cx.error(path, "expected a mapping of error class to count"));
    };
    let mut policy = HashMap::new();
    for (key, count_value) in entries {
        let key = key.as_str().unwrap_or_default();
        let entry_path = format!("{path}.{key}");
        let class = POLICY_CLASSES
            .iter()
            .find(|(name, _)| key.strip_prefix(name) == Some(suffix))
            .map(|(_, class)| *class)
            .ok_or_else(|| {
                let known: Vec<String> = POLICY_CLASSES
                    .iter()
                    .map(|(name, _)| format!("{name}{suffix}"))
                    .collect();
                cx.error(
                    &entry_path,
                    format!("unknown key; expected one of {}", known.join(", ")),
                )
            })?;
        if count_value.is_null() {
            continue;
        }
        policy.insert(class, count(cx, &entry_path, count_value)?);
    }
    Ok(policy)
}

/// `[{group: [fallback, …]}, …]` (LiteLLM's shape), or a plain mapping `{group: [...]}`.
fn fallback_map(
    cx: &Resolver<'_>,
    path: &str,
    value: &Value,
    groups: &GroupNames<'_>,
) -> Result<FallbackMap, ConfigError> {
    let mut map = FallbackMap::new();
    let mut add = |entry_path: String, key: &Value, targets: &Value| -> Result<(), ConfigError> {
        let Some(group) = key.as_str() else {
            return Err(cx.error(&entry_path, "the model group name must be a string"));
        };
        let entry_path = format!("{entry_path}.{group}");
        if group != "*" && !groups.contains(group) {
            return Err(cx.error(
                &entry_path,
                format!("`{group}` is not a model_name in model_list"),
            ));
        }
        let targets = group_list(cx, &entry_path, targets, groups)?;
        map.insert(group.to_owned(), targets);
        Ok(())
    };
    match value {
        Value::Sequence(entries) => {
            for (index, entry) in entries.iter().enumerate() {
                let entry_path = format!("{path}[{index}]");
                let Value::Mapping(entry) = entry else {
                    return Err(cx.error(
                        &entry_path,
                        "expected a mapping of a model group to its fallbacks, like `{gpt-4o: [claude-sonnet]}`",
                    ));
                };
                for (key, targets) in entry {
                    add(entry_path.clone(), key, targets)?;
                }
            }
        }
        Value::Mapping(entries) => {
            for (key, targets) in entries {
                add(path.to_owned(), key, targets)?;
            }
        }
        _ => {
            return Err(cx.error(path, "expected a list like `[{gpt-4o: [claude-sonnet]}]`"));
        }
    }
    Ok(map)
}

/// A list of model group names (a single name is a list of one).
fn group_list(
    cx: &Resolver<'_>,
    path: &str,
    value: &Value,
    groups: &GroupNames<'_>,
) -> Result<Vec<String>, ConfigError> {
    let names: Vec<(String, &Value)> = match value {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| (format!("{path}[{index}]"), item))
            .collect(),
        Value::String(_) => vec![(path.to_owned(), value)],
        _ => return Err(cx.error(path, "expected a list of model group names")),
    };
    names
        .into_iter()
        .map(|(item_path, item)| {
            let name = item
                .as_str()
                .ok_or_else(|| cx.error(&item_path, "expected a model group name"))?;
            if !groups.contains(name) {
                return Err(cx.error(
                    &item_path,
                    format!("`{name}` is not a model_name in model_list"),
                ));
            }
            Ok(name.to_owned())
        })
        .collect()
}

/// `{alias: group}` or `{alias: {model: group, hidden: true}}`.
fn aliases(
    cx: &Resolver<'_>,
    path: &str,
    value: &Value,
    groups: &GroupNames<'_>,
) -> Result<HashMap<String, GroupAlias>, ConfigError> {
    let Value::Mapping(entries) = value else {
        return Err(cx.error(path, "expected a mapping of alias to model group"));
    };
    let mut aliases = HashMap::new();
    for (alias, target) in entries {
        let Some(alias) = alias.as_str() else {
            return Err(cx.error(path, "aliases must be strings"));
        };
        let entry_path = format!("{path}.{alias}");
        let (group, hidden) = match target {
            Value::String(group) => (group.clone(), false),
            Value::Mapping(fields) => {
                let group = fields
                    .get("model")
                    .and_then(Value::as_str)
                    .ok_or_else(|| cx.error(&format!("{entry_path}.model"), "is required"))?;
                let hidden = match fields.get("hidden") {
                    Some(value) if !value.is_null() => {
                        let hidden_path = format!("{entry_path}.hidden");
                        cx.bool(&hidden_path, &scalar(cx, &hidden_path, value)?)?
                    }
                    _ => false,
                };
                (group.to_owned(), hidden)
            }
            _ => {
                return Err(cx.error(
                    &entry_path,
                    "expected a model group name, or {model: <group>, hidden: <bool>}",
                ));
            }
        };
        if !groups.contains(&group) {
            return Err(cx.error(
                &entry_path,
                format!("`{group}` is not a model_name in model_list"),
            ));
        }
        aliases.insert(alias.to_owned(), GroupAlias { group, hidden });
    }
    Ok(aliases)
}
