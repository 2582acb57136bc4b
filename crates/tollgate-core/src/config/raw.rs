//! The config file as written: LiteLLM's proxy `config.yaml` keys, plus Tollgate's own
//! `tollgate_settings`. Only shapes are checked here; meaning is checked in `validate`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_yaml_ng::{Mapping, Value};

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    #[serde(default)]
    pub model_list: Option<Vec<RawDeployment>>,
    #[serde(default)]
    pub general_settings: Option<RawGeneralSettings>,
    #[serde(default)]
    pub router_settings: Option<Mapping>,
    #[serde(default)]
    pub litellm_settings: Option<Mapping>,
    #[serde(default)]
    pub environment_variables: Option<BTreeMap<String, Scalar>>,
    #[serde(default)]
    pub include: Option<Vec<String>>,
    #[serde(default)]
    pub tollgate_settings: Option<RawTollgateSettings>,
    /// Other top-level keys LiteLLM knows (guardrails, callback_settings, …): kept for the
    /// start-up warning.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct RawDeployment {
    pub model_name: Scalar,
    pub litellm_params: RawLitellmParams,
    #[serde(default)]
    pub model_info: Option<RawModelInfo>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct RawLitellmParams {
    pub model: Scalar,
    #[serde(default)]
    pub custom_llm_provider: Option<Scalar>,
    #[serde(default)]
    pub api_base: Option<Scalar>,
    #[serde(default)]
    pub api_key: Option<Scalar>,
    #[serde(default)]
    pub api_version: Option<Scalar>,
    #[serde(default)]
    pub organization: Option<Scalar>,
    #[serde(default)]
    pub timeout: Option<Scalar>,
    #[serde(default)]
    pub stream_timeout: Option<Scalar>,
    /// Tollgate's addition: the longest silence between two chunks of a stream.
    #[serde(default)]
    pub stream_idle_timeout: Option<Scalar>,
    /// Tollgate's addition: whether Responses API requests are relayed to the provider's own
    /// `/responses` (true) or bridged onto chat completions (false).
    #[serde(default)]
    pub responses_api: Option<Scalar>,
    /// Tollgate's addition: connection set-up timeout for this deployment.
    #[serde(default)]
    pub connect_timeout: Option<Scalar>,
    #[serde(default)]
    pub max_retries: Option<Scalar>,
    /// Seconds this deployment is left out after failing (overrides the router's).
    #[serde(default)]
    pub cooldown_time: Option<Scalar>,
    #[serde(default)]
    pub rpm: Option<Scalar>,
    #[serde(default)]
    pub tpm: Option<Scalar>,
    #[serde(default)]
    pub weight: Option<Scalar>,
    #[serde(default)]
    pub order: Option<Scalar>,
    #[serde(default)]
    pub mock_response: Option<Scalar>,
    #[serde(default)]
    pub drop_params: Option<Scalar>,
    #[serde(default, alias = "vertex_ai_project")]
    pub vertex_project: Option<Scalar>,
    #[serde(default, alias = "vertex_ai_location")]
    pub vertex_location: Option<Scalar>,
    /// A service-account JSON key: a file path, or the JSON itself.
    #[serde(default, alias = "vertex_ai_credentials")]
    pub vertex_credentials: Option<Scalar>,
    #[serde(default)]
    pub aws_access_key_id: Option<Scalar>,
    #[serde(default)]
    pub aws_secret_access_key: Option<Scalar>,
    #[serde(default)]
    pub aws_session_token: Option<Scalar>,
    #[serde(default)]
    pub aws_region_name: Option<Scalar>,
    /// A profile of the shared credentials file (`~/.aws/credentials`).
    #[serde(default)]
    pub aws_profile_name: Option<Scalar>,
    /// Web identity (LiteLLM's names): the OIDC token, the role to assume (its ARN), the
    /// session name, and the STS endpoint to ask.
    #[serde(default)]
    pub aws_web_identity_token: Option<Scalar>,
    #[serde(default)]
    pub aws_role_name: Option<Scalar>,
    #[serde(default)]
    pub aws_session_name: Option<Scalar>,
    #[serde(default)]
    pub aws_sts_endpoint: Option<Scalar>,
    /// Sent as `ExternalId` when `aws_role_name` is assumed (a third party's role).
    #[serde(default)]
    pub aws_external_id: Option<Scalar>,
    #[serde(default)]
    pub aws_bedrock_runtime_endpoint: Option<Scalar>,
    #[serde(default)]
    pub input_cost_per_token: Option<Scalar>,
    #[serde(default)]
    pub output_cost_per_token: Option<Scalar>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawModelInfo {
    #[serde(default)]
    pub id: Option<Scalar>,
    #[serde(default)]
    pub mode: Option<Scalar>,
    #[serde(default)]
    pub base_model: Option<Scalar>,
    #[serde(default)]
    pub max_tokens: Option<Scalar>,
    #[serde(default)]
    pub max_input_tokens: Option<Scalar>,
    #[serde(default)]
    pub max_output_tokens: Option<Scalar>,
    #[serde(default)]
    pub input_cost_per_token: Option<Scalar>,
    #[serde(default)]
    pub output_cost_per_token: Option<Scalar>,
    /// Everything else in `model_info` (more prices, capability flags…) is kept as written.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawGeneralSettings {
    #[serde(default)]
    pub master_key: Option<Scalar>,
    #[serde(default)]
    pub database_url: Option<Scalar>,
    #[serde(default)]
    pub max_request_size_mb: Option<Scalar>,
    #[serde(default)]
    pub litellm_key_header_name: Option<Scalar>,
    #[serde(default)]
    pub background_health_checks: Option<Scalar>,
    #[serde(default)]
    pub health_check_interval: Option<Scalar>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Tollgate's own settings. The format is ours, so unknown keys are errors, not warnings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTollgateSettings {
    /// How long in-flight requests and streams may run after SIGTERM before the process exits.
    #[serde(default)]
    pub drain_timeout: Option<Scalar>,
    /// The SQLite file used when no `database_url` is given (default `tollgate.db` beside the
    /// config file).
    #[serde(default)]
    pub database_path: Option<Scalar>,
    /// How often each replica reads the changes other replicas made to keys, teams, users,
    /// organisations and end users (default 5s).
    #[serde(default)]
    pub store_sync_interval: Option<Scalar>,
    /// How long keys already known keep working while the store cannot be read; after that,
    /// virtual keys are refused with 503 until it can (default 1h).
    #[serde(default)]
    pub store_max_staleness: Option<Scalar>,
    /// Connect timeout for provider connections (default 10s).
    #[serde(default)]
    pub connect_timeout: Option<Scalar>,
    /// Independent HTTP clients per provider host; each holds its own HTTP/2 connection, so
    /// traffic is spread rather than queued behind one connection (default 4).
    #[serde(default)]
    pub upstream_clients: Option<Scalar>,
    /// How long an idle keep-alive connection to a provider is kept (default 90s).
    #[serde(default)]
    pub pool_idle_timeout: Option<Scalar>,
    /// Largest image or document fetched from an http(s) URL for providers that need the
    /// bytes inline (default 20 MB).
    #[serde(default)]
    pub media_max_mb: Option<Scalar>,
    /// Time allowed to fetch one such file (default 30s).
    #[serde(default)]
    pub media_fetch_timeout: Option<Scalar>,
    /// Whether media URLs may point at loopback, private or link-local addresses (default
    /// false: refused, so clients cannot make the gateway reach internal services).
    #[serde(default)]
    pub media_allow_private_networks: Option<Scalar>,
    /// A price map in LiteLLM's JSON format (`model_prices_and_context_window.json`), laid
    /// over the built-in price table.
    #[serde(default)]
    pub pricing_file: Option<Scalar>,
    /// Where spend records wait for the database (default `spend-journal` beside the config
    /// file).
    #[serde(default)]
    pub spend_journal_dir: Option<Scalar>,
    /// How large the journal may grow while the database is away before new requests are
    /// refused rather than served unrecorded (default 1024 MB).
    #[serde(default)]
    pub spend_journal_max_mb: Option<Scalar>,
    /// The status of a request refused for its budget (default 400, as LiteLLM answers).
    #[serde(default)]
    pub budget_exceeded_status: Option<Scalar>,
    /// The share of `max_budget`, in percent, past which an alert fires when an entity has no
    /// `soft_budget` (default 80).
    #[serde(default)]
    pub budget_alert_percent: Option<Scalar>,
    /// Where budget alerts are posted (a Slack incoming webhook, or any URL taking JSON).
    #[serde(default)]
    pub alert_webhook_url: Option<Scalar>,
    /// How long Responses API responses are kept for `previous_response_id` and retrieval
    /// (default 30d, as OpenAI keeps them).
    #[serde(default)]
    pub responses_retention: Option<Scalar>,
    /// What every Redis key Tollgate writes starts with (default `tollgate`).
    #[serde(default)]
    pub redis_key_prefix: Option<Scalar>,
    /// How long a Redis call may take before the replica counts on its own (default 250ms).
    #[serde(default)]
    pub redis_timeout: Option<Scalar>,
}

/// A YAML scalar as written: a number, a boolean or a string (perhaps `os.environ/NAME`).
/// Its meaning (which type, which env var) is resolved during validation, where an error can
/// name the field.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(value.to_owned()))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Scalar, E> {
                i64::try_from(value)
                    .map(Scalar::Integer)
                    .or(Ok(Scalar::Float(value as f64)))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(value))
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(value))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}
