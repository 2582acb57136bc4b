//! The provider table: what each `provider/` prefix of a LiteLLM model string means — its wire
//! format, default base URL, where its key and base come from, and how it authenticates.
//! Adding an OpenAI-compatible provider is one row.

/// The wire format and URL scheme a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// `{api_base}/chat/completions` etc., OpenAI's request and response bodies.
    OpenAiCompatible,
    /// Azure OpenAI: `{api_base}/openai/deployments/{deployment}/…?api-version=…`.
    Azure,
    /// Anthropic's Messages API: `{api_base}/v1/messages`.
    Anthropic,
    /// Google's Gemini API: `{api_base}/models/{model}:generateContent`.
    Gemini,
    /// Vertex AI: Gemini and Anthropic models under a Google Cloud project, OAuth-authenticated.
    Vertex,
    /// Amazon Bedrock: the Converse API for every model (or InvokeModel for Claude),
    /// SigV4-signed.
    Bedrock,
    /// Cohere's v2 API: `{api_base}/v2/chat`, `{api_base}/v2/embed`.
    Cohere,
    /// The built-in echo provider: answers in-process, no network.
    Mock,
}

/// The request and response format a deployment's endpoint speaks. Mostly the provider's;
/// Vertex AI serves Gemini models in Gemini's format and Claude models in Anthropic's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    OpenAi,
    Anthropic,
    Gemini,
    /// Bedrock's Converse API.
    BedrockConverse,
    /// Cohere's v2 chat.
    Cohere,
}

/// How the provider key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `api-key: <key>` (Azure).
    ApiKeyHeader,
    /// `x-api-key: <key>` (Anthropic).
    XApiKey,
    /// `x-goog-api-key: <key>` (Gemini API).
    GoogApiKey,
    /// `Authorization: Bearer <token>` from a Google service account's OAuth token (Vertex AI).
    GoogleOAuth,
    /// AWS Signature Version 4 (Bedrock), or `Authorization: Bearer` with a Bedrock API key.
    AwsSigV4,
}

/// Whether streams may carry `stream_options.include_usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamUsage {
    /// The provider accepts it: the gateway injects it on every stream.
    Supported,
    /// The provider rejects the field; it reports usage on its own or not at all.
    Unsupported,
    /// Azure: accepted from api-version 2024-08-01-preview on.
    AzureByApiVersion,
}

#[derive(Debug)]
pub struct ProviderSpec {
    /// The prefix in `litellm_params.model`, e.g. `groq` in `groq/llama-3.1-8b-instant`.
    pub prefix: &'static str,
    pub kind: ProviderKind,
    /// Used when neither `api_base` nor an env var gives one. `None`: `api_base` is required.
    pub default_api_base: Option<&'static str>,
    /// Env vars read, in order, when `api_key` is not set.
    pub api_key_env: &'static [&'static str],
    /// Env vars read, in order, when `api_base` is not set.
    pub api_base_env: &'static [&'static str],
    pub auth: AuthStyle,
    /// Whether a request without any key is an error at start-up.
    pub requires_api_key: bool,
    /// Servers that serve the OpenAI API under `/v1`: a base URL given without a path (as
    /// LiteLLM users write `http://localhost:11434` for Ollama) gets `/v1` appended.
    pub append_v1_to_bare_base: bool,
    /// Prepended to the model name unless already there (Fireworks' `accounts/fireworks/models/`).
    pub model_prefix: Option<&'static str>,
    pub stream_usage: StreamUsage,
    /// Whether it serves OpenAI's Responses API itself (`/responses`); Responses requests to
    /// other providers are bridged onto chat.
    pub responses_api: bool,
}

const fn openai_compatible(
    prefix: &'static str,
    default_api_base: Option<&'static str>,
    api_key_env: &'static [&'static str],
    api_base_env: &'static [&'static str],
) -> ProviderSpec {
    ProviderSpec {
        prefix,
        kind: ProviderKind::OpenAiCompatible,
        default_api_base,
        api_key_env,
        api_base_env,
        auth: AuthStyle::Bearer,
        requires_api_key: true,
        append_v1_to_bare_base: false,
        model_prefix: None,
        stream_usage: StreamUsage::Supported,
        responses_api: false,
    }
}

/// A self-hosted OpenAI-compatible server: no default host, no key needed, `/v1` implied.
const fn self_hosted(
    prefix: &'static str,
    default_api_base: Option<&'static str>,
    api_key_env: &'static [&'static str],
    api_base_env: &'static [&'static str],
) -> ProviderSpec {
    ProviderSpec {
        requires_api_key: false,
        append_v1_to_bare_base: true,
        ..openai_compatible(prefix, default_api_base, api_key_env, api_base_env)
    }
}

const fn without_stream_usage(spec: ProviderSpec) -> ProviderSpec {
    ProviderSpec {
        stream_usage: StreamUsage::Unsupported,
        ..spec
    }
}

const OPENAI_KEY: &[&str] = &["OPENAI_API_KEY"];
const OPENAI_BASE: &[&str] = &["OPENAI_BASE_URL", "OPENAI_API_BASE"];
const AZURE_KEY: &[&str] = &["AZURE_OPENAI_API_KEY", "AZURE_API_KEY"];
const AZURE_BASE: &[&str] = &["AZURE_API_BASE"];

/// Defaults and env var names follow LiteLLM, so a config written for it resolves the same way.
pub static PROVIDERS: &[ProviderSpec] = &[
    ProviderSpec {
        responses_api: true,
        ..openai_compatible(
            "openai",
            Some("https://api.openai.com/v1"),
            OPENAI_KEY,
            OPENAI_BASE,
        )
    },
    openai_compatible(
        "custom_openai",
        Some("https://api.openai.com/v1"),
        OPENAI_KEY,
        OPENAI_BASE,
    ),
    openai_compatible(
        "text-completion-openai",
        Some("https://api.openai.com/v1"),
        OPENAI_KEY,
        OPENAI_BASE,
    ),
    openai_compatible(
        "openai_like",
        None,
        &["OPENAI_LIKE_API_KEY"],
        &["OPENAI_LIKE_API_BASE"],
    ),
    ProviderSpec {
        prefix: "azure",
        kind: ProviderKind::Azure,
        default_api_base: None,
        api_key_env: AZURE_KEY,
        api_base_env: AZURE_BASE,
        auth: AuthStyle::ApiKeyHeader,
        requires_api_key: true,
        append_v1_to_bare_base: false,
        model_prefix: None,
        stream_usage: StreamUsage::AzureByApiVersion,
        responses_api: true,
    },
    ProviderSpec {
        prefix: "azure_text",
        kind: ProviderKind::Azure,
        default_api_base: None,
        api_key_env: AZURE_KEY,
        api_base_env: AZURE_BASE,
        auth: AuthStyle::ApiKeyHeader,
        requires_api_key: true,
        append_v1_to_bare_base: false,
        model_prefix: None,
        stream_usage: StreamUsage::AzureByApiVersion,
        responses_api: false,
    },
    self_hosted(
        "hosted_vllm",
        None,
        &["HOSTED_VLLM_API_KEY"],
        &["HOSTED_VLLM_API_BASE"],
    ),
    // LiteLLM's `vllm/` loads the vLLM Python library in-process; a gateway can only reach a
    // vLLM server, so `vllm/` means the same as `hosted_vllm/`.
    self_hosted(
        "vllm",
        None,
        &["HOSTED_VLLM_API_KEY", "VLLM_API_KEY"],
        &["HOSTED_VLLM_API_BASE", "VLLM_API_BASE"],
    ),
    self_hosted(
        "ollama",
        Some("http://localhost:11434"),
        &["OLLAMA_API_KEY"],
        &["OLLAMA_API_BASE"],
    ),
    self_hosted(
        "ollama_chat",
        Some("http://localhost:11434"),
        &["OLLAMA_API_KEY"],
        &["OLLAMA_API_BASE"],
    ),
    self_hosted(
        "lm_studio",
        None,
        &["LM_STUDIO_API_KEY"],
        &["LM_STUDIO_API_BASE"],
    ),
    self_hosted(
        "llamafile",
        Some("http://127.0.0.1:8080/v1"),
        &["LLAMAFILE_API_KEY"],
        &["LLAMAFILE_API_BASE"],
    ),
    openai_compatible(
        "groq",
        Some("https://api.groq.com/openai/v1"),
        &["GROQ_API_KEY"],
        &["GROQ_API_BASE"],
    ),
    // Mistral answers 422 to `stream_options`; it reports usage in the last chunk unasked.
    without_stream_usage(openai_compatible(
        "mistral",
        Some("https://api.mistral.ai/v1"),
        &["MISTRAL_API_KEY"],
        &["MISTRAL_API_BASE"],
    )),
    without_stream_usage(openai_compatible(
        "codestral",
        Some("https://codestral.mistral.ai/v1"),
        &["CODESTRAL_API_KEY"],
        &["CODESTRAL_API_BASE"],
    )),
    openai_compatible(
        "deepseek",
        Some("https://api.deepseek.com/beta"),
        &["DEEPSEEK_API_KEY"],
        &["DEEPSEEK_API_BASE"],
    ),
    openai_compatible(
        "together_ai",
        Some("https://api.together.xyz/v1"),
        &[
            "TOGETHER_API_KEY",
            "TOGETHER_AI_API_KEY",
            "TOGETHERAI_API_KEY",
            "TOGETHER_AI_TOKEN",
        ],
        &["TOGETHER_AI_API_BASE"],
    ),
    without_stream_usage(ProviderSpec {
        model_prefix: Some("accounts/fireworks/models/"),
        ..openai_compatible(
            "fireworks_ai",
            Some("https://api.fireworks.ai/inference/v1"),
            &[
                "FIREWORKS_API_KEY",
                "FIREWORKS_AI_API_KEY",
                "FIREWORKSAI_API_KEY",
                "FIREWORKS_AI_TOKEN",
            ],
            &["FIREWORKS_API_BASE"],
        )
    }),
    openai_compatible(
        "xai",
        Some("https://api.x.ai/v1"),
        &["XAI_API_KEY"],
        &["XAI_API_BASE"],
    ),
    openai_compatible(
        "openrouter",
        Some("https://openrouter.ai/api/v1"),
        &["OPENROUTER_API_KEY", "OR_API_KEY"],
        &["OPENROUTER_API_BASE"],
    ),
    without_stream_usage(openai_compatible(
        "perplexity",
        Some("https://api.perplexity.ai"),
        &["PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"],
        &["PERPLEXITY_API_BASE"],
    )),
    openai_compatible(
        "cerebras",
        Some("https://api.cerebras.ai/v1"),
        &["CEREBRAS_API_KEY"],
        &["CEREBRAS_API_BASE"],
    ),
    without_stream_usage(openai_compatible(
        "deepinfra",
        Some("https://api.deepinfra.com/v1/openai"),
        &["DEEPINFRA_API_KEY"],
        &["DEEPINFRA_API_BASE"],
    )),
    openai_compatible(
        "nvidia_nim",
        Some("https://integrate.api.nvidia.com/v1"),
        &["NVIDIA_NIM_API_KEY"],
        &["NVIDIA_NIM_API_BASE"],
    ),
    openai_compatible(
        "sambanova",
        Some("https://api.sambanova.ai/v1"),
        &["SAMBANOVA_API_KEY"],
        &["SAMBANOVA_API_BASE"],
    ),
    openai_compatible(
        "github",
        Some("https://models.inference.ai.azure.com"),
        &["GITHUB_API_KEY"],
        &["GITHUB_API_BASE"],
    ),
    openai_compatible(
        "novita",
        Some("https://api.novita.ai/v3/openai"),
        &["NOVITA_API_KEY"],
        &["NOVITA_API_BASE"],
    ),
    without_stream_usage(openai_compatible(
        "hyperbolic",
        Some("https://api.hyperbolic.xyz/v1"),
        &["HYPERBOLIC_API_KEY"],
        &["HYPERBOLIC_API_BASE"],
    )),
    openai_compatible(
        "moonshot",
        Some("https://api.moonshot.ai/v1"),
        &["MOONSHOT_API_KEY"],
        &["MOONSHOT_API_BASE"],
    ),
    openai_compatible(
        "dashscope",
        Some("https://dashscope-intl.aliyuncs.com/compatible-mode/v1"),
        &["DASHSCOPE_API_KEY"],
        &["DASHSCOPE_API_BASE"],
    ),
    openai_compatible(
        "nebius",
        Some("https://api.studio.nebius.ai/v1"),
        &["NEBIUS_API_KEY"],
        &["NEBIUS_API_BASE"],
    ),
    openai_compatible(
        "friendliai",
        Some("https://api.friendli.ai/serverless/v1"),
        &["FRIENDLIAI_API_KEY", "FRIENDLI_TOKEN"],
        &["FRIENDLI_API_BASE"],
    ),
    without_stream_usage(openai_compatible(
        "featherless_ai",
        Some("https://api.featherless.ai/v1"),
        &["FEATHERLESS_API_KEY", "FEATHERLESS_AI_API_KEY"],
        &["FEATHERLESS_API_BASE"],
    )),
    without_stream_usage(openai_compatible(
        "nscale",
        Some("https://inference.api.nscale.com/v1"),
        &["NSCALE_API_KEY"],
        &["NSCALE_API_BASE"],
    )),
    openai_compatible(
        "galadriel",
        Some("https://api.galadriel.com/v1"),
        &["GALADRIEL_API_KEY"],
        &["GALADRIEL_API_BASE"],
    ),
    openai_compatible(
        "volcengine",
        Some("https://ark.cn-beijing.volces.com/api/v3"),
        &["VOLCENGINE_API_KEY"],
        &["VOLCENGINE_API_BASE"],
    ),
    openai_compatible(
        "jina_ai",
        Some("https://api.jina.ai/v1"),
        &["JINA_AI_API_KEY", "JINA_AI_TOKEN"],
        &["JINA_AI_API_BASE"],
    ),
    ProviderSpec {
        prefix: "anthropic",
        kind: ProviderKind::Anthropic,
        default_api_base: Some("https://api.anthropic.com"),
        api_key_env: &["ANTHROPIC_API_KEY"],
        api_base_env: &["ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"],
        auth: AuthStyle::XApiKey,
        requires_api_key: true,
        append_v1_to_bare_base: false,
        model_prefix: None,
        stream_usage: StreamUsage::Unsupported,
        responses_api: false,
    },
    ProviderSpec {
        prefix: "gemini",
        kind: ProviderKind::Gemini,
        default_api_base: Some("https://generativelanguage.googleapis.com/v1beta"),
        api_key_env: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        api_base_env: &["GEMINI_API_BASE"],
        auth: AuthStyle::GoogApiKey,
        requires_api_key: true,
        append_v1_to_bare_base: false,
        model_prefix: None,
        stream_usage: StreamUsage::Unsupported,
        responses_api: false,
    },
    ProviderSpec {
        prefix: "vertex_ai",
        kind: ProviderKind::Vertex,
        default_api_base: None,
        api_key_env: &[],
        api_base_env: &["VERTEXAI_API_BASE", "VERTEX_API_BASE"],
        auth: AuthStyle::GoogleOAuth,
        requires_api_key: false,
        append_v1_to_bare_base: false,
        model_prefix: None,
        stream_usage: StreamUsage::Unsupported,
        responses_api: false,
    },
    ProviderSpec {
        prefix: "bedrock",
        kind: ProviderKind::Bedrock,
        default_api_base: None,
        api_key_env: &["AWS_BEARER_TOKEN_BEDROCK"],
        api_base_env: &["AWS_BEDROCK_RUNTIME_ENDPOINT"],
        auth: AuthStyle::AwsSigV4,
        requires_api_key: false,
        append_v1_to_bare_base: false,
        model_prefix: None,
        stream_usage: StreamUsage::Unsupported,
        responses_api: false,
    },
    ProviderSpec {
        prefix: "cohere",
        kind: ProviderKind::Cohere,
        default_api_base: Some("https://api.cohere.com"),
        api_key_env: &["COHERE_API_KEY", "CO_API_KEY"],
        api_base_env: &["COHERE_API_BASE"],
        auth: AuthStyle::Bearer,
        requires_api_key: true,
        append_v1_to_bare_base: false,
        model_prefix: None,
        stream_usage: StreamUsage::Unsupported,
        responses_api: false,
    },
    ProviderSpec {
        prefix: "cohere_chat",
        kind: ProviderKind::Cohere,
        default_api_base: Some("https://api.cohere.com"),
        api_key_env: &["COHERE_API_KEY", "CO_API_KEY"],
        api_base_env: &["COHERE_API_BASE"],
        auth: AuthStyle::Bearer,
        requires_api_key: true,
        append_v1_to_bare_base: false,
        model_prefix: None,
        stream_usage: StreamUsage::Unsupported,
        responses_api: false,
    },
    ProviderSpec {
        prefix: "mock",
        kind: ProviderKind::Mock,
        default_api_base: None,
        api_key_env: &[],
        api_base_env: &[],
        auth: AuthStyle::Bearer,
        requires_api_key: false,
        append_v1_to_bare_base: false,
        model_prefix: None,
        stream_usage: StreamUsage::Supported,
        responses_api: false,
    },
];

pub fn lookup(prefix: &str) -> Option<&'static ProviderSpec> {
    PROVIDERS.iter().find(|spec| spec.prefix == prefix)
}

/// Every known prefix, for error messages.
pub fn known_prefixes() -> String {
    let mut prefixes: Vec<&str> = PROVIDERS.iter().map(|spec| spec.prefix).collect();
    prefixes.sort_unstable();
    prefixes.join(", ")
}

/// LiteLLM accepts bare model names (`model: gpt-4o`, `model: claude-3-5-sonnet-…`); these
/// prefixes identify OpenAI's.
const OPENAI_MODEL_PREFIXES: &[&str] = &[
    "gpt-",
    "chatgpt-",
    "o1",
    "o3",
    "o4",
    "text-embedding-",
    "text-moderation-",
    "omni-moderation-",
    "davinci-",
    "babbage-",
    "ft:gpt-",
    "computer-use-",
];

/// The provider for a model string without a known `provider/` prefix, if it names an OpenAI model.
pub fn infer_provider(model: &str) -> Option<&'static ProviderSpec> {
    let is_openai = model == "*"
        || OPENAI_MODEL_PREFIXES
            .iter()
            .any(|prefix| model.starts_with(prefix));
    if is_openai {
        lookup("openai")
    } else if model.starts_with("claude-") {
        lookup("anthropic")
    } else {
        None
    }
}

/// Whether an Azure api-version accepts `stream_options` (2024-08-01-preview and later, and
/// the rolling `v1` / `latest` / `preview` versions).
pub fn azure_api_version_supports_stream_usage(api_version: &str) -> bool {
    if matches!(api_version, "v1" | "latest" | "preview") {
        return true;
    }
    api_version
        .get(..10)
        .is_some_and(|date| date >= "2024-08-01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_unique() {
        let mut prefixes: Vec<&str> = PROVIDERS.iter().map(|spec| spec.prefix).collect();
        prefixes.sort_unstable();
        let before = prefixes.len();
        prefixes.dedup();
        assert_eq!(before, prefixes.len());
    }

    #[test]
    fn bare_openai_model_names_are_recognised() {
        assert_eq!(infer_provider("gpt-4o").map(|p| p.prefix), Some("openai"));
        assert_eq!(infer_provider("o3-mini").map(|p| p.prefix), Some("openai"));
        assert_eq!(
            infer_provider("text-embedding-3-small").map(|p| p.prefix),
            Some("openai")
        );
        assert!(infer_provider("llama3").is_none());
    }

    #[test]
    fn azure_stream_usage_follows_the_api_version() {
        assert!(azure_api_version_supports_stream_usage("2024-10-21"));
        assert!(azure_api_version_supports_stream_usage(
            "2025-02-01-preview"
        ));
        assert!(azure_api_version_supports_stream_usage("v1"));
        assert!(!azure_api_version_supports_stream_usage("2024-02-01"));
        assert!(!azure_api_version_supports_stream_usage("2023-05-15"));
    }
}
