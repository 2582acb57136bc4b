//! Model groups and deployment choice: every `model_list` entry sharing a `model_name` forms a
//! group, and each request is given one of the group's deployments.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;

use tollgate_core::error::GatewayError;
use tollgate_upstream::Deployment;

/// The deployments serving one `model_name`, in their priority tier.
#[derive(Debug)]
pub struct ModelGroup {
    pub name: String,
    /// Every deployment of the group, in config order.
    pub deployments: Vec<Arc<Deployment>>,
    /// Indexes into `deployments` of the preferred tier (lowest `order`).
    preferred: Vec<usize>,
    /// Running totals of the preferred deployments' shares; empty when all shares are equal.
    cumulative_shares: Vec<f64>,
}

impl ModelGroup {
    fn new(name: String, deployments: Vec<Arc<Deployment>>) -> Self {
        let tier = |deployment: &Deployment| deployment.config.order.unwrap_or(u32::MAX);
        let best_tier = deployments
            .iter()
            .map(|d| tier(d))
            .min()
            .unwrap_or(u32::MAX);
        let preferred: Vec<usize> = (0..deployments.len())
            .filter(|&index| tier(&deployments[index]) == best_tier)
            .collect();
        let shares = shares(preferred.iter().map(|&index| &*deployments[index]));
        let cumulative_shares = match shares {
            Some(shares) => shares
                .iter()
                .scan(0.0, |total, share| {
                    *total += share;
                    Some(*total)
                })
                .collect(),
            None => Vec::new(),
        };
        ModelGroup {
            name,
            deployments,
            preferred,
            cumulative_shares,
        }
    }

    /// A deployment for the next request: weighted random among the preferred tier
    /// (LiteLLM's `simple-shuffle`). Lock-free: one thread-local random number.
    pub fn pick(&self) -> &Arc<Deployment> {
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
        &self.deployments[self.preferred[slot]]
    }
}

/// Each deployment's share of traffic, as LiteLLM's simple-shuffle reads it: `weight` if the
/// first deployment has one, else `rpm`, else `tpm`; a deployment without the value gets 0.
/// `None` when shares are all equal (or all zero).
fn shares<'a>(deployments: impl Iterator<Item = &'a Deployment> + Clone) -> Option<Vec<f64>> {
    let first = deployments.clone().next()?;
    let read: fn(&Deployment) -> Option<f64> = if first.config.weight.is_some() {
        |d| d.config.weight
    } else if first.config.rpm.is_some() {
        |d| d.config.rpm.map(|v| v as f64)
    } else if first.config.tpm.is_some() {
        |d| d.config.tpm.map(|v| v as f64)
    } else {
        return None;
    };
    let shares: Vec<f64> = deployments.map(|d| read(d).unwrap_or(0.0)).collect();
    let total: f64 = shares.iter().sum();
    let all_equal = shares.windows(2).all(|pair| pair[0] == pair[1]);
    (total > 0.0 && !all_equal).then_some(shares)
}

/// Every model group, by the name clients send.
#[derive(Debug, Default)]
pub struct Router {
    groups: HashMap<String, ModelGroup>,
    /// Group names in config order, for listing.
    order: Vec<String>,
}

impl Router {
    pub fn new(deployments: impl IntoIterator<Item = Deployment>) -> Self {
        let mut members: HashMap<String, Vec<Arc<Deployment>>> = HashMap::new();
        let mut order = Vec::new();
        for deployment in deployments {
            let name = deployment.config.model_name.clone();
            if !members.contains_key(&name) {
                order.push(name.clone());
            }
            members.entry(name).or_default().push(Arc::new(deployment));
        }
        let groups = members
            .into_iter()
            .map(|(name, deployments)| (name.clone(), ModelGroup::new(name, deployments)))
            .collect();
        Router { groups, order }
    }

    pub fn group(&self, model: &str) -> Option<&ModelGroup> {
        self.groups.get(model)
    }

    /// The deployment that serves a request for `model`, or 404 when no group has that name.
    pub fn pick(&self, model: &str) -> Result<&Arc<Deployment>, GatewayError> {
        self.group(model)
            .map(ModelGroup::pick)
            .ok_or_else(|| GatewayError::model_not_found(model))
    }

    /// The deployment with this id (`model_info.id`), in whichever group.
    pub fn deployment(&self, id: &str) -> Option<&Arc<Deployment>> {
        self.groups
            .values()
            .flat_map(|group| group.deployments.iter())
            .find(|deployment| deployment.config.id == id)
    }

    /// Groups in config order.
    pub fn groups(&self) -> impl Iterator<Item = &ModelGroup> {
        self.order.iter().filter_map(|name| self.groups.get(name))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tollgate_core::config;
    use tollgate_upstream::ClientPool;

    use super::*;

    fn router(yaml: &str) -> Router {
        let config = config::load_str(yaml, Path::new("test.yaml")).unwrap();
        let pool = ClientPool::new(&config.upstream, 1, &config.source).unwrap();
        Router::new(
            config
                .deployments
                .into_iter()
                .enumerate()
                .map(|(index, d)| {
                    Deployment::build(d, index, &pool, Path::new("test.yaml")).unwrap()
                }),
        )
    }

    fn counts(router: &Router, model: &str, picks: usize) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for _ in 0..picks {
            *counts
                .entry(router.pick(model).unwrap().config.id.clone())
                .or_default() += 1;
        }
        counts
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
  - {model_name: m, litellm_params: {model: mock/a, rpm: 100}, model_info: {id: a}}
  - {model_name: m, litellm_params: {model: mock/b, rpm: 900}, model_info: {id: b}}",
        );
        let counts = counts(&router, "m", 20_000);
        let share_b = counts["b"] as f64 / 20_000.0;
        assert!((0.87..0.93).contains(&share_b), "b got {share_b}");
    }

    #[test]
    fn only_the_lowest_order_tier_serves() {
        let router = router(
            "model_list:
  - {model_name: m, litellm_params: {model: mock/a, order: 2}, model_info: {id: backup}}
  - {model_name: m, litellm_params: {model: mock/b, order: 1}, model_info: {id: primary}}
  - {model_name: m, litellm_params: {model: mock/c, order: 1}, model_info: {id: primary-2}}",
        );
        let counts = counts(&router, "m", 2_000);
        assert!(!counts.contains_key("backup"));
        assert!(counts["primary"] > 800 && counts["primary-2"] > 800);
    }

    #[test]
    fn unknown_models_are_404_naming_the_model() {
        let router = router("model_list:\n  - {model_name: m, litellm_params: {model: mock/a}}");
        let err = router.pick("nope").unwrap_err();
        assert_eq!(err.status.as_u16(), 404);
        assert!(err.message.contains("`nope`"));
        assert_eq!(
            router.groups().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            ["m"]
        );
    }
}
