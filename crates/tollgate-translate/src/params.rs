//! What happens to a parameter a provider cannot take: a 400 naming it and the provider, or —
//! with `drop_params: true` (LiteLLM's setting, globally or per deployment) — silently dropped.

use tollgate_core::error::GatewayError;

#[derive(Debug, Clone, Copy)]
pub struct ParamPolicy {
    /// The provider, as named in error messages (`anthropic`, `gemini`, …).
    pub provider: &'static str,
    pub drop_unsupported: bool,
}

impl ParamPolicy {
    /// `Ok` when the parameter may be dropped; otherwise the client's 400.
    pub fn unsupported(&self, param: &str) -> Result<(), GatewayError> {
        if self.drop_unsupported {
            return Ok(());
        }
        Err(GatewayError::invalid_request(format!(
            "`{param}` is not supported by {}. Remove it, or set `drop_params: true` to have the gateway drop it.",
            self.provider
        ))
        .with_param(param.to_owned())
        .with_code("unsupported_parameter"))
    }
}
