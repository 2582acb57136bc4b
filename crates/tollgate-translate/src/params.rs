//! What happens to a parameter a provider cannot take: a 400 naming it and the provider, or —
//! with `drop_params: true` (LiteLLM's setting, globally or per deployment) — silently dropped.

use tollgate_core::error::GatewayError;
use tollgate_wire::openai::{ChatRequest, ToolChoice};

#[derive(Debug, Clone, Copy)]
pub struct ParamPolicy {
    /// The provider, as named in error messages (`anthropic`, `gemini`, …).
    pub provider: &'static str,
    pub drop_unsupported: bool,
}

impl ParamPolicy {
    /// For reading a request only to count its prompt: what a provider could not take is
    /// left out, never refused.
    pub const COUNTING: ParamPolicy = ParamPolicy {
        provider: "the token counter",
        drop_unsupported: true,
    };

    /// `Ok` when the parameter may be dropped; otherwise the client's 400.
    pub fn unsupported(&self, param: &str) -> Result<(), GatewayError> {
        self.unsupported_form(param, &format!("`{param}`"))
    }

    /// As `unsupported`, for one form of a parameter whose other forms the provider takes:
    /// `what` names that form in the message (`` `parallel_tool_calls: false` ``, a hosted
    /// tool in `tools`), `param` the parameter.
    pub fn unsupported_form(&self, param: &str, what: &str) -> Result<(), GatewayError> {
        if self.drop_unsupported {
            return Ok(());
        }
        Err(GatewayError::invalid_request(format!(
            "{what} is not supported by {}. Remove it, or set `drop_params: true` to have the gateway drop it.",
            self.provider
        ))
        .with_param(param.to_owned())
        .with_code("unsupported_parameter"))
    }

    /// For a provider with no way to keep the model to one tool call per turn:
    /// `parallel_tool_calls: false` is refused, unless dropped.
    pub fn cannot_disable_parallel_tool_calls(
        &self,
        request: &ChatRequest<'_>,
    ) -> Result<(), GatewayError> {
        // Without tools the model can call, no turn holds parallel calls: the provider
        // honours `false` by itself.
        let calls_possible = request
            .tools
            .as_ref()
            .is_some_and(|tools| !tools.is_empty())
            && !matches!(&request.tool_choice, Some(ToolChoice::Mode(mode)) if mode == "none");
        // A value carried over from another API (Anthropic's `disable_parallel_tool_use`,
        // a bridged Responses request) is dropped whatever `drop_params` says: Claude Code
        // and Codex set it on their requests unasked, and they must not fail on Gemini,
        // Converse or Cohere over a setting they never wrote as a chat parameter.
        if request.parallel_tool_calls == Some(false)
            && calls_possible
            && !request.parallel_tool_calls_derived
        {
            return self.unsupported_form("parallel_tool_calls", "`parallel_tool_calls: false`");
        }
        Ok(())
    }
}
