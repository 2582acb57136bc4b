//! What happens to a parameter a provider cannot take: a 400 naming it and the provider, or —
//! with `drop_params: true` (LiteLLM's setting, globally or per deployment) — silently dropped.

use std::borrow::Cow;

use serde_json::value::RawValue;
use tollgate_core::error::GatewayError;
use tollgate_wire::openai::{ChatRequest, ToolChoice};

#[derive(Debug, Clone, Copy, Default)]
pub struct ParamPolicy {
    /// The provider, as named in error messages (`anthropic`, `gemini`, …).
    pub provider: &'static str,
    pub drop_unsupported: bool,
    /// The provider searches the web itself when asked as OpenAI's `web_search_options` asks
    /// (Gemini's Google Search): a client's own web-search tool (Anthropic's
    /// `web_search_…`, the Responses API's `web_search`) becomes that search rather than
    /// being refused.
    pub web_search: bool,
}

impl ParamPolicy {
    /// For reading a request only to count its prompt: what a provider could not take is
    /// left out, never refused.
    pub const COUNTING: ParamPolicy = ParamPolicy {
        provider: "the token counter",
        drop_unsupported: true,
        web_search: false,
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

    /// For a client's own web-search tool, named by `what`: `Ok(true)` when the provider
    /// searches itself (the request then asks it to, see [`ask_for_web_search`]), `Ok(false)`
    /// when the tool is left out, the client's 400 otherwise.
    pub fn web_search_tool(&self, what: &str) -> Result<bool, GatewayError> {
        if self.web_search {
            return Ok(true);
        }
        self.unsupported_form("tools", what).map(|()| false)
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

/// Asks the model to search the web as OpenAI's chat API does (`web_search_options`), which
/// the providers that search themselves translate (Gemini: the Google Search tool).
pub fn ask_for_web_search(request: &mut ChatRequest<'_>) {
    if request.openai_only.get("web_search_options").is_none() {
        let defaults: &'static RawValue = serde_json::from_str("{}").expect("valid JSON");
        request
            .openai_only
            .push(Cow::Borrowed("web_search_options"), defaults);
    }
}
