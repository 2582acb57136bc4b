//! Deployment health: each deployment probed with the cheapest call its `model_info.mode`
//! allows (a one-token chat or completion, a one-word embedding), sent the way an attempt of a
//! request is, so a probe fails exactly when a request would. `GET /health` runs a round on
//! demand; with `background_health_checks` a round runs every `health_check_interval`, the
//! latest is what `/health` shows, and a deployment failing its probe cools down as if a
//! request had failed on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use serde_json::{Value, json};
use tollgate_core::endpoint::Endpoint;
use tollgate_core::error::GatewayError;
use tollgate_router::{Cooldown, Member, ModelGroup};

use crate::app::Gateway;
use crate::pipeline;

/// One deployment's probe.
pub(crate) struct Probed {
    group: Arc<ModelGroup>,
    member: Arc<Member>,
    result: Result<Duration, GatewayError>,
}

/// Probes every deployment (of the group serving `model`, if given) at once. Deployments of
/// wildcard names are not probed: they serve no model until one is asked for.
pub(crate) async fn check(gateway: &Arc<Gateway>, model: Option<&str>) -> Vec<Probed> {
    let probes = gateway
        .router
        .groups()
        .into_iter()
        .filter(|group| model.is_none_or(|model| group.name == model))
        .flat_map(|group| {
            let members = group.members.clone();
            members
                .into_iter()
                .map(move |member| (group.clone(), member))
        })
        .map(|(group, member)| async move {
            let result = probe(gateway, &group, &member).await;
            Probed {
                group,
                member,
                result,
            }
        });
    join_all(probes).await
}

async fn probe(
    gateway: &Arc<Gateway>,
    group: &ModelGroup,
    member: &Member,
) -> Result<Duration, GatewayError> {
    let (endpoint, body) = match member.config.model_info.mode.as_deref() {
        Some("embedding") => (
            Endpoint::Embeddings,
            json!({"model": group.name, "input": ["health check"]}),
        ),
        Some("completion") => (
            Endpoint::Completions,
            json!({"model": group.name, "prompt": "ping", "max_tokens": 1}),
        ),
        _ => (
            Endpoint::ChatCompletions,
            json!({
                "model": group.name,
                "messages": [{"role": "user", "content": "ping"}],
                "max_tokens": 1,
            }),
        ),
    };
    let body = Bytes::from(body.to_string());
    let request_id = format!("health-check-{}", tollgate_core::ids::new_request_id());
    let started = Instant::now();
    pipeline::probe(gateway, endpoint, body, member, request_id.into()).await?;
    Ok(started.elapsed())
}

/// LiteLLM's `/health` body: the deployments that answered and those that did not, with the
/// error (provider keys are masked in provider errors before they get here).
pub(crate) fn report(probes: &[Probed]) -> Value {
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    for probed in probes {
        let config = &probed.member.config;
        let mut entry = json!({
            "model_name": probed.group.name,
            "model": format!("{}/{}", config.provider.prefix, config.model),
            "model_id": config.id,
            "api_base": probed.member.api_base_host,
        });
        match &probed.result {
            Ok(latency) => {
                entry["latency_ms"] = json!(latency.as_millis() as u64);
                healthy.push(entry);
            }
            Err(err) => {
                entry["error"] = json!(err.message);
                entry["error_type"] = json!(err.kind.as_str());
                entry["status_code"] = json!(err.status.as_u16());
                unhealthy.push(entry);
            }
        }
    }
    json!({
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
    })
}

/// Runs a round of probes every `interval`, for as long as the gateway serves: deployments
/// that fail are cooled down, and the report is kept for `/health`.
pub(crate) async fn run_in_background(gateway: Arc<Gateway>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let probes = check(&gateway, None).await;
        for probed in &probes {
            let Err(err) = &probed.result else { continue };
            let cooldown = gateway
                .router
                .probe_failed(&probed.group, &probed.member, err);
            tracing::warn!(
                deployment = %probed.member.config.id,
                model_group = %probed.group.name,
                error = %err.message,
                cooldown_s = match cooldown {
                    Cooldown::For(duration) => duration.as_secs_f64(),
                    Cooldown::None => 0.0,
                },
                "deployment failed its health check"
            );
        }
        let report = report(&probes);
        drop(probes);
        gateway.set_latest_health(report);
    }
}
