//! One request's attempts. The plan hands out a deployment per attempt and, when an attempt
//! fails, decides what follows, with LiteLLM's semantics:
//! - failures of the request itself (bad request, or an error the gateway raised) end it;
//! - a context-window or content-policy failure moves to that kind's fallbacks, if any;
//! - otherwise the failure's class allows `retry_policy` (else `num_retries`) retries in the
//!   group, each on a deployment not tried yet where there is one (then at once), else after
//!   the provider's `retry-after` or an exponential backoff with jitter; never while every
//!   deployment of the group is cooling down (the retry would only wait);
//! - 404s are not retried, nor rejected credentials when the group has one deployment;
//! - when retries run out, or every deployment is cooling down, the group's `fallbacks`
//!   (else `default_fallbacks`) are tried in order, each with its own retries, up to
//!   `max_fallbacks` groups.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tollgate_core::error::{ErrorKind, FailureClass, GatewayError, Origin};

use crate::state::{Cooldown, MINUTE_MS};
use crate::strategy::Choice;
use crate::{Lease, Member, ModelGroup, Router};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Ask `next_attempt` for another deployment once this long has passed.
    Retry { after: Duration },
    /// Nothing left to try: the failure is the answer.
    GiveUp,
}

/// Which fallback list a request moved onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FallbackKind {
    General,
    ContextWindow,
    ContentPolicy,
}

/// Backoff between retries on the same deployment: 0.5 s doubling up to 8 s, less up to a
/// quarter at random so that clients do not retry in step.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

#[derive(Debug)]
pub struct AttemptPlan<'r> {
    router: &'r Router,
    /// The group the client asked for; fallback lists are looked up by its name.
    requested: Arc<ModelGroup>,
    /// The group being tried now.
    group: Arc<ModelGroup>,
    /// Members of `group` this request has tried.
    tried: Vec<usize>,
    retries_in_group: u32,
    /// Retries so far, over all groups.
    retries: u32,
    /// Fallback groups moved to so far.
    fallbacks: u32,
    /// The fallback groups still to try, once the request is on a fallback list.
    pending: Option<VecDeque<String>>,
    /// The request's own `fallbacks`, in place of the configured ones.
    request_fallbacks: Option<Vec<String>>,
    /// Set when every deployment was cooling down: how long until one is back.
    all_cooling: Option<Duration>,
    /// Members of `group` that have used up their rpm/tpm this minute.
    saturated: Vec<usize>,
    /// Set when a group was passed over whole for its deployments' rpm/tpm.
    all_saturated: bool,
    /// The one deployment that can serve this request (it holds the request's state), if any.
    pinned: Option<Arc<Member>>,
    /// The prompt's counted tokens, when pre-call checks are on: deployments with a smaller
    /// `max_input_tokens` are passed over.
    prompt_tokens: Option<u64>,
    /// Set when a group was passed over whole for its context windows: the largest of them.
    context_exceeded: Option<u64>,
}

impl<'r> AttemptPlan<'r> {
    pub(crate) fn new(
        router: &'r Router,
        group: Arc<ModelGroup>,
        request_fallbacks: Option<Vec<String>>,
    ) -> Self {
        AttemptPlan {
            router,
            requested: group.clone(),
            group,
            tried: Vec::new(),
            retries_in_group: 0,
            retries: 0,
            fallbacks: 0,
            pending: None,
            request_fallbacks,
            all_cooling: None,
            saturated: Vec::new(),
            all_saturated: false,
            pinned: None,
            prompt_tokens: None,
            context_exceeded: None,
        }
    }

    /// Passes over deployments whose `max_input_tokens` is below `prompt_tokens`; a group with
    /// none left moves on to its context-window fallbacks (LiteLLM's pre-call check).
    pub fn limit_prompt(&mut self, prompt_tokens: u64) {
        self.prompt_tokens = Some(prompt_tokens);
    }

    /// The group being tried now.
    pub fn group(&self) -> &ModelGroup {
        &self.group
    }

    /// The group the client asked for.
    pub fn requested(&self) -> &ModelGroup {
        &self.requested
    }

    pub fn retries(&self) -> u32 {
        self.retries
    }

    pub fn fallbacks(&self) -> u32 {
        self.fallbacks
    }

    /// Serves the request on `member` alone: one attempt, no retry, no fallback (for a request
    /// continuing state only that deployment holds).
    pub fn pin(&mut self, member: Arc<Member>) {
        self.pinned = Some(member);
    }

    /// The deployment for the next attempt; `None` when no group has one left (see
    /// `unavailable` for the error when that happens before any attempt failed).
    pub fn next_attempt(&mut self) -> Option<Lease> {
        let now = self.router.clock.now_ms();
        if let Some(member) = &self.pinned {
            return (self.tried.is_empty()).then(|| {
                self.tried.push(usize::MAX);
                Lease::new(member.clone(), now)
            });
        }
        loop {
            let too_small = self.too_small();
            if !too_small.is_empty() && too_small.len() == self.group.len() {
                let largest = self.group.members.iter().filter_map(max_input_tokens).max();
                self.context_exceeded = largest;
                if !self.fall_back(FallbackKind::ContextWindow) {
                    return None;
                }
                continue;
            }
            let mut excluded = too_small;
            excluded.extend_from_slice(&self.saturated);
            match self
                .group
                .choose(&self.router.settings, &self.tried, &excluded, now)
            {
                Choice::Member(index) => {
                    let member = self.group.members[index].clone();
                    match Lease::within_limits(member, now) {
                        Some(lease) => {
                            self.tried.push(index);
                            return Some(lease);
                        }
                        None => self.saturated.push(index),
                    }
                }
                Choice::AllCooling(back_in) => {
                    self.all_cooling = Some(back_in);
                    if !self.fall_back(FallbackKind::General) {
                        return None;
                    }
                }
                Choice::NoneLeft => {
                    self.all_saturated |= !self.saturated.is_empty();
                    if !self.fall_back(FallbackKind::General) {
                        return None;
                    }
                }
            }
        }
    }

    /// Members of the current group whose context window the prompt exceeds.
    fn too_small(&self) -> Vec<usize> {
        let Some(tokens) = self.prompt_tokens else {
            return Vec::new();
        };
        (0..self.group.len())
            .filter(|&index| {
                max_input_tokens(&self.group.members[index]).is_some_and(|max| tokens > max)
            })
            .collect()
    }

    /// The error for a request no deployment could take: 400 `context_length_exceeded` when
    /// the prompt fits no deployment's context window; 429 with `retry-after`, naming the
    /// group, when every deployment is cooling down.
    pub fn unavailable(&self) -> GatewayError {
        if self.all_saturated && self.all_cooling.is_none() {
            let now = self.router.clock.now_ms();
            let next_minute = MINUTE_MS - now % MINUTE_MS;
            return GatewayError::new(
                StatusCode::TOO_MANY_REQUESTS,
                Origin::Gateway,
                ErrorKind::RateLimit,
                format!(
                    "Every deployment of `{}` has used its rpm/tpm limit for this minute.",
                    self.requested.name
                ),
            )
            .with_code("rate_limit_exceeded")
            .with_retry_after(Duration::from_millis(next_minute));
        }
        if let (Some(largest), None) = (self.context_exceeded, self.all_cooling) {
            return GatewayError::new(
                StatusCode::BAD_REQUEST,
                Origin::Gateway,
                ErrorKind::InvalidRequest,
                format!(
                    "The prompt (about {} tokens) is longer than the context window of every \
                     deployment of `{}` (at most {largest} input tokens) and of its \
                     context-window fallbacks.",
                    self.prompt_tokens.unwrap_or_default(),
                    self.requested.name
                ),
            )
            .with_param("messages")
            .with_code(tollgate_core::error::CONTEXT_LENGTH_EXCEEDED);
        }
        let back_in = self.all_cooling.unwrap_or_default();
        let seconds = back_in.as_secs_f64().ceil().max(1.0);
        GatewayError::new(
            StatusCode::TOO_MANY_REQUESTS,
            Origin::Gateway,
            ErrorKind::RateLimit,
            format!(
                "No deployments available for model `{}`: every deployment is cooling down \
                 after failures. Try again in {seconds:.0} s.",
                self.requested.name
            ),
        )
        .with_code("no_deployments_available")
        .with_retry_after(Duration::from_secs_f64(seconds))
    }

    /// A successful attempt: its latency (time to first token for streams) feeds
    /// latency-based routing.
    pub fn succeeded(&self, lease: &Lease, latency: Duration) {
        lease.state.record_latency(latency);
    }

    /// A failed attempt: counts against the deployment (perhaps cooling it down), then
    /// decides whether and when to try again.
    pub fn failed(&mut self, lease: &Lease, err: &GatewayError) -> Decision {
        let settings = &self.router.settings;
        let now = self.router.clock.now_ms();
        let cooldown =
            lease
                .state
                .record_failure(err, settings, lease.cooldown_time, self.group.len(), now);
        if let Cooldown::For(duration) = cooldown {
            self.group.note_cooldown(now + duration.as_millis() as u64);
            tracing::warn!(
                deployment = %lease.config.id,
                model_group = %self.group.name,
                cooldown_s = duration.as_secs_f64(),
                "deployment cooling down after failures"
            );
        }
        if matches!(err.kind, ErrorKind::Timeout) {
            // A timed-out deployment is slow, whatever the clock said so far.
            lease.state.record_latency(lease.config.timeout);
        }

        let Some(class) = err.failure_class() else {
            return Decision::GiveUp;
        };
        if self.pinned.is_some() {
            return Decision::GiveUp;
        }
        let kind = match class {
            FailureClass::BadRequest => return Decision::GiveUp,
            FailureClass::ContextWindow => FallbackKind::ContextWindow,
            FailureClass::ContentPolicy => FallbackKind::ContentPolicy,
            _ => FallbackKind::General,
        };
        // With every deployment of the group cooling down, a retry would only wait: move on.
        let group_available = self
            .group
            .members
            .iter()
            .any(|member| !member.state.is_cooling(now));
        if kind == FallbackKind::General
            && group_available
            && self.retries_in_group < self.retries_allowed(class)
            && let Some(after) = self.retry_wait(err, now)
        {
            self.retries_in_group += 1;
            self.retries += 1;
            return Decision::Retry { after };
        }
        if self.fall_back(kind) {
            Decision::Retry {
                after: Duration::ZERO,
            }
        } else {
            Decision::GiveUp
        }
    }

    fn retries_allowed(&self, class: FailureClass) -> u32 {
        let settings = &self.router.settings;
        match class {
            // Same request, same deployments: a 404 is not going away.
            FailureClass::NotFound if !settings.retry_policy.contains_key(&class) => 0,
            // One deployment, one credential: retrying it is pointless.
            FailureClass::Authentication if self.group.len() < 2 => 0,
            _ => settings.retries_for(class),
        }
    }

    /// How long to wait before the retry; `None` when the provider asked for longer than the
    /// gateway waits (`max_retry_wait`) and no other deployment can take it now.
    fn retry_wait(&self, err: &GatewayError, now: u64) -> Option<Duration> {
        let settings = &self.router.settings;
        let another_ready = (0..self.group.len()).any(|index| {
            !self.tried.contains(&index) && !self.group.members[index].state.is_cooling(now)
        });
        if another_ready {
            return Some(Duration::ZERO);
        }
        if let Some(after) = err.retry_after {
            return (after <= settings.max_retry_wait).then(|| after.max(settings.min_retry_wait));
        }
        let doubling = BACKOFF_BASE.saturating_mul(1 << self.retries_in_group.min(8));
        let jitter = 0.75 + fastrand::f64() * 0.25;
        Some(
            doubling
                .min(BACKOFF_MAX)
                .mul_f64(jitter)
                .max(settings.min_retry_wait),
        )
    }

    /// Moves to the next fallback group of the list for `kind` (entered on first use);
    /// false when there is none left or `max_fallbacks` is reached.
    fn fall_back(&mut self, kind: FallbackKind) -> bool {
        if self.pending.is_none() {
            self.pending = Some(self.fallback_list(kind).into());
        }
        let max_fallbacks = self.router.settings.max_fallbacks;
        let pending = self.pending.as_mut().expect("just set");
        while let Some(name) = pending.pop_front() {
            if self.fallbacks as usize >= max_fallbacks {
                return false;
            }
            let Some(group) = self.router.group(&name) else {
                continue;
            };
            if Arc::ptr_eq(&group, &self.group) {
                continue;
            }
            self.group = group;
            self.tried.clear();
            self.saturated.clear();
            self.retries_in_group = 0;
            self.fallbacks += 1;
            return true;
        }
        false
    }

    /// The fallback groups for the requested group: the request's own, else the configured
    /// list of `kind` for the group, else (general fallbacks only) the `*` entry.
    fn fallback_list(&self, kind: FallbackKind) -> Vec<String> {
        if let Some(own) = &self.request_fallbacks {
            return own.clone();
        }
        let settings = &self.router.settings;
        let map = match kind {
            FallbackKind::General => &settings.fallbacks,
            FallbackKind::ContextWindow => &settings.context_window_fallbacks,
            FallbackKind::ContentPolicy => &settings.content_policy_fallbacks,
        };
        map.get(&self.requested.name)
            .or_else(|| map.get(self.requested.pattern.as_deref()?))
            .or_else(|| map.get("*"))
            .cloned()
            .unwrap_or_default()
    }
}

fn max_input_tokens(member: &Arc<Member>) -> Option<u64> {
    member.config.model_info.max_input_tokens
}
