//! A deployment's price: the catalog's entry for its model (or `model_info.base_model`), with
//! whatever `model_info` says about prices laid over it.

use std::sync::Arc;

use serde_json::{Map, Value};
use tollgate_pricing::{ModelPrice, PriceCatalog};

use super::ModelInfo;

/// `Ok(None)` when neither the catalog nor `model_info` prices the model: its requests are
/// recorded at no cost, and the gateway says so once at start-up.
pub(super) fn deployment_price(
    catalog: &PriceCatalog,
    provider_prefix: &str,
    model: &str,
    info: &ModelInfo,
) -> Result<Option<Arc<ModelPrice>>, String> {
    // LiteLLM names the priced model in `base_model` where the deployment's own name says
    // nothing (an Azure deployment called `prod-chat`): `azure/gpt-4o` or `gpt-4o`.
    let listed = match info.base_model.as_deref() {
        Some(base) => match base.split_once('/') {
            Some((provider, model)) => catalog
                .lookup(provider, model)
                .or_else(|| catalog.lookup(provider_prefix, base)),
            None => catalog.lookup(provider_prefix, base),
        },
        None => catalog.lookup(provider_prefix, model),
    };
    let mut overrides: Map<String, Value> = info.extra.clone();
    let typed = [
        ("input_cost_per_token", info.input_cost_per_token),
        ("output_cost_per_token", info.output_cost_per_token),
    ];
    for (name, value) in typed {
        if let Some(number) = value.and_then(serde_json::Number::from_f64) {
            overrides.insert(name.to_owned(), Value::Number(number));
        }
    }
    let limits = [
        ("max_input_tokens", info.max_input_tokens),
        ("max_output_tokens", info.max_output_tokens),
        ("max_tokens", info.max_tokens),
    ];
    for (name, value) in limits {
        if let Some(count) = value {
            overrides.insert(name.to_owned(), Value::from(count));
        }
    }
    Ok(ModelPrice::from_litellm(listed.as_deref(), &overrides)?.map(Arc::new))
}
