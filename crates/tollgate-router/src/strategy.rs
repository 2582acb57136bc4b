//! Choosing the deployment for an attempt. Candidates are the group's members not cooling
//! down, preferring those this request has not tried yet, in the lowest `order` tier among
//! them; the routing strategy chooses one. A few passes over the members' atomics, no locks
//! and no allocation; with nothing cooling and nothing tried, simple-shuffle is one random
//! number against precomputed shares.

use std::time::Duration;

use tollgate_core::config::{RoutingSettings, RoutingStrategy};

use crate::ModelGroup;

/// The price assumed for a deployment without one (LiteLLM's: one dollar a token), so
/// cost-based routing prefers every priced deployment.
pub(crate) const UNKNOWN_PRICE: f64 = 1.0;

/// The outcome of a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    Member(usize),
    /// Every member is cooling down; the first is back after this long.
    AllCooling(Duration),
    /// Every member is excluded.
    NoneLeft,
}

impl ModelGroup {
    /// `excluded`: members that cannot take this request at all (its prompt is too large
    /// for them, or they have used up their rpm/tpm this minute).
    pub(crate) fn choose(
        &self,
        settings: &RoutingSettings,
        tried: &[usize],
        excluded: &[usize],
        now_ms: u64,
    ) -> Choice {
        let nothing_cooling = self
            .cooling_until
            .load(std::sync::atomic::Ordering::Relaxed)
            <= now_ms;
        if nothing_cooling
            && tried.is_empty()
            && excluded.is_empty()
            && settings.strategy == RoutingStrategy::SimpleShuffle
        {
            return Choice::Member(self.shuffle_preferred());
        }

        let available = |index: usize| {
            !excluded.contains(&index) && !self.members[index].state.is_cooling(now_ms)
        };
        let untried_left = (0..self.members.len()).any(|i| available(i) && !tried.contains(&i));
        let open = |index: usize| available(index) && (!untried_left || !tried.contains(&index));
        let Some(tier) = (0..self.members.len())
            .filter(|&i| open(i))
            .map(|i| self.members[i].tier)
            .min()
        else {
            let back_in = (0..self.members.len())
                .filter(|index| !excluded.contains(index))
                .map(|index| self.members[index].state.cooldown_left(now_ms))
                .min();
            return back_in.map_or(Choice::NoneLeft, Choice::AllCooling);
        };
        let eligible = |index: usize| open(index) && self.members[index].tier == tier;
        let index = match settings.strategy {
            RoutingStrategy::SimpleShuffle => self.weighted(eligible),
            RoutingStrategy::LeastBusy => self.lowest(eligible, 0.0, |i| {
                f64::from(self.members[i].state.in_flight())
            }),
            RoutingStrategy::LatencyBased => {
                self.lowest(eligible, settings.lowest_latency_buffer, |i| {
                    // Unmeasured deployments go first, so every one gets measured.
                    self.members[i].state.latency().unwrap_or(0.0)
                })
            }
            RoutingStrategy::UsageBased => {
                let under_limits = |i: usize| eligible(i) && self.has_headroom(i, now_ms);
                let any_under = (0..self.members.len()).any(under_limits);
                let usage = |i: usize| self.members[i].state.tokens_this_minute(now_ms) as f64;
                if any_under {
                    self.lowest(under_limits, 0.0, usage)
                } else {
                    self.lowest(eligible, 0.0, usage)
                }
            }
            RoutingStrategy::CostBased => self.lowest(eligible, 0.0, |i| self.members[i].price),
        };
        Choice::Member(index)
    }

    /// Simple-shuffle among the lowest tier, nothing excluded.
    fn shuffle_preferred(&self) -> usize {
        let slot = if self.preferred.len() == 1 {
            0
        } else if self.cumulative_shares.is_empty() {
            fastrand::usize(..self.preferred.len())
        } else {
            let total = *self.cumulative_shares.last().expect("non-empty");
            let point = fastrand::f64() * total;
            self.cumulative_shares
                .partition_point(|&running| running <= point)
                .min(self.preferred.len() - 1)
        };
        self.preferred[slot]
    }

    /// A random eligible member, weighted by share (uniform when every share is 0).
    fn weighted(&self, eligible: impl Fn(usize) -> bool) -> usize {
        let total: f64 = (0..self.members.len())
            .filter(|&i| eligible(i))
            .map(|i| self.members[i].share)
            .sum();
        if total <= 0.0 {
            return self.nth_eligible(&eligible, |_| true);
        }
        let mut point = fastrand::f64() * total;
        let mut last = 0;
        for index in (0..self.members.len()).filter(|&i| eligible(i)) {
            last = index;
            point -= self.members[index].share;
            if point < 0.0 {
                return index;
            }
        }
        last
    }

    /// A random eligible member among those scoring at most `(1 + buffer)` × the lowest.
    fn lowest(
        &self,
        eligible: impl Fn(usize) -> bool,
        buffer: f64,
        score: impl Fn(usize) -> f64,
    ) -> usize {
        let best = (0..self.members.len())
            .filter(|&i| eligible(i))
            .map(&score)
            .fold(f64::INFINITY, f64::min);
        let limit = best + best.abs() * buffer;
        self.nth_eligible(&eligible, |i| score(i) <= limit)
    }

    /// A uniformly random member among those `eligible` and `within`.
    fn nth_eligible(
        &self,
        eligible: &impl Fn(usize) -> bool,
        within: impl Fn(usize) -> bool,
    ) -> usize {
        let matching = |i: &usize| eligible(*i) && within(*i);
        let count = (0..self.members.len()).filter(matching).count();
        let nth = if count > 1 {
            fastrand::usize(..count)
        } else {
            0
        };
        (0..self.members.len())
            .filter(matching)
            .nth(nth)
            .unwrap_or_default()
    }

    /// Whether another request fits the deployment's `rpm` and `tpm` this minute.
    fn has_headroom(&self, index: usize, now_ms: u64) -> bool {
        let member = &self.members[index];
        let config = &member.config;
        config
            .rpm
            .is_none_or(|rpm| member.state.requests_this_minute(now_ms) < rpm)
            && config
                .tpm
                .is_none_or(|tpm| member.state.tokens_this_minute(now_ms) < tpm)
    }
}
