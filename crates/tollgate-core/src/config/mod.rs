//! Configuration: LiteLLM's proxy `config.yaml`, read as-is, turned into a validated runtime
//! form. Loading (`load`) reads files and YAML; validation (`validate`) gives every value its
//! meaning and names the field when one is wrong.

mod aws;
mod error;
mod load;
mod pricing;
pub mod raw;
mod redis;
mod routing;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use secrecy::SecretString;
use serde_yaml_ng::Mapping;
use tollgate_pricing::{ModelPrice, PriceCatalog};
use url::Url;

pub use aws::AWS_CHAIN_VARIABLES;
pub use error::ConfigError;
pub use load::{load, load_str};
pub use redis::RedisSettings;
pub use routing::{FallbackMap, GroupAlias, RoutingSettings, RoutingStrategy};
pub use validate::DeploymentReader;

use crate::env::Env;
use crate::provider::{ProviderKind, ProviderSpec, WireFormat};

/// How a replica keeps its in-memory copy of the store current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSync {
    /// How often changes made through other replicas are read.
    pub interval: Duration,
    /// How long the copy may go unrefreshed (the store unreachable) before virtual keys are
    /// refused.
    pub max_staleness: Duration,
}

/// Where spend records are kept until the database has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendJournalSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

/// How budgets answer and warn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSettings {
    pub exceeded_status: http::StatusCode,
    pub alert_percent: u64,
}

/// The validated configuration the gateway runs with.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from, for messages.
    pub source: PathBuf,
    pub deployments: Vec<DeploymentConfig>,
    pub master_key: Option<SecretString>,
    /// PostgreSQL (`general_settings.database_url`, else `DATABASE_URL`); the SQLite file at
    /// `database_path` when unset.
    pub database_url: Option<SecretString>,
    pub database_path: PathBuf,
    pub store_sync: StoreSync,
    /// Reads deployments added at run time as `model_list` entries are read.
    pub deployment_reader: DeploymentReader,
    /// An extra header that carries the gateway key (`general_settings.litellm_key_header_name`).
    pub key_header_name: Option<String>,
    pub max_request_body_bytes: usize,
    pub drain_timeout: Duration,
    pub upstream: UpstreamSettings,
    pub media: MediaSettings,
    pub spend_journal: SpendJournalSettings,
    pub budgets: BudgetSettings,
    /// Where alerts are posted, if anywhere.
    pub alert_webhook: Option<Url>,
    /// How long Responses API responses are kept in the store.
    pub responses_retention: Duration,
    /// The Redis through which replicas share rate limits and budgets; `None`: each replica
    /// counts on its own.
    pub redis: Option<RedisSettings>,
    /// The built-in price table, under `tollgate_settings.pricing_file` when one is given.
    pub prices: Arc<PriceCatalog>,
    /// Kept as written for the capabilities that will read them.
    /// Balancing, retries, cooldowns, fallbacks and aliases (`router_settings`).
    pub routing: RoutingSettings,
    pub health_checks: HealthCheckSettings,
    pub router_settings: Mapping,
    pub litellm_settings: Mapping,
    /// Keys accepted but not acted on yet; reported in one start-up warning.
    pub not_implemented: Vec<String>,
    pub env: Env,
}

/// One `model_list` entry: a model a client can ask for by `model_name`, served by a provider.
#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    /// `model_info.id`, or a stable id derived from the deployment when none is given.
    pub id: String,
    /// The name clients send as `model`.
    pub model_name: String,
    pub provider: &'static ProviderSpec,
    /// The provider's own name for the model (the part after `provider/`).
    pub model: String,
    /// Where requests go; `None` only for the in-process mock.
    pub api_base: Option<Url>,
    pub api_key: Option<SecretString>,
    pub api_version: Option<String>,
    /// OpenAI organization, sent as `OpenAI-Organization`.
    pub organization: Option<String>,
    /// The whole exchange, response body included.
    pub timeout: Duration,
    /// Until the first byte of a streamed response.
    pub stream_timeout: Duration,
    /// The longest silence between two chunks of a stream, once it has started.
    pub stream_idle_timeout: Duration,
    /// Establishing a connection (Tollgate's own `connect_timeout`; the global default when unset).
    pub connect_timeout: Option<Duration>,
    pub max_retries: Option<u32>,
    /// How long this deployment is left out after failing; the router's when unset.
    pub cooldown_time: Option<Duration>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub weight: Option<f64>,
    pub order: Option<u32>,
    /// A fixed answer instead of calling the provider (LiteLLM's `mock_response`).
    pub mock_response: Option<String>,
    /// Whether streams to this deployment get `stream_options.include_usage` injected.
    pub inject_stream_usage: bool,
    /// Parameters the provider cannot take are dropped instead of refused with a 400
    /// (`drop_params`, per deployment or in `litellm_settings`).
    pub drop_params: bool,
    /// Responses API requests go to the provider's own `/responses` rather than through chat.
    pub responses_api: bool,
    /// Vertex AI deployments: where they run and how they authenticate.
    pub vertex: Option<VertexConfig>,
    /// Bedrock deployments: region, credentials, route.
    pub bedrock: Option<BedrockConfig>,
    pub model_info: ModelInfo,
    /// What a token costs here: the price table's entry for the model, under `model_info`'s
    /// prices. `None` when neither prices it.
    pub price: Option<Arc<ModelPrice>>,
    /// Where `price` came from, for the models a wildcard deployment serves.
    pub prices: Arc<PriceCatalog>,
}

impl DeploymentConfig {
    /// Whether `model_name` is a wildcard pattern (`openai/*`, `*`), served for every
    /// requested model it matches through `for_model`.
    pub fn is_wildcard(&self) -> bool {
        self.model_name.contains('*')
    }

    /// This wildcard deployment made concrete for `requested`, a name its `model_name`
    /// matched with `captures`: each `*` of `model` filled in turn (a Bedrock model so
    /// filled may name its route, `converse/…` or `invoke/…`).
    pub fn for_model(&self, requested: &str, captures: &[&str]) -> DeploymentConfig {
        let mut config = self.clone();
        config.model_name = requested.to_owned();
        config.model = crate::wildcard::fill(&self.model, captures);
        if let Some(bedrock) = &mut config.bedrock
            && let Some((route, model)) = BedrockRoute::split(&config.model)
        {
            bedrock.route = route;
            config.model = model.to_owned();
        }
        // The wildcard's own prices (if any) were checked when it was read.
        config.price = pricing::deployment_price(
            &self.prices,
            self.provider.prefix,
            &config.model,
            &self.model_info,
        )
        .unwrap_or_else(|_| self.price.clone());
        config
    }

    /// The format this deployment's endpoint speaks: mostly the provider's; Vertex AI serves
    /// Claude in Anthropic's format, and Bedrock's `invoke/` route serves Claude natively.
    pub fn wire_format(&self) -> WireFormat {
        match self.provider.kind {
            ProviderKind::OpenAiCompatible | ProviderKind::Azure | ProviderKind::Mock => {
                WireFormat::OpenAi
            }
            ProviderKind::Anthropic => WireFormat::Anthropic,
            ProviderKind::Gemini => WireFormat::Gemini,
            ProviderKind::Cohere => WireFormat::Cohere,
            ProviderKind::Vertex if self.model.starts_with("claude") => WireFormat::Anthropic,
            ProviderKind::Vertex => WireFormat::Gemini,
            ProviderKind::Bedrock => match &self.bedrock {
                Some(bedrock) if bedrock.route == BedrockRoute::Invoke => WireFormat::Anthropic,
                _ => WireFormat::BedrockConverse,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct BedrockConfig {
    /// `aws_region_name`, else the region in a model ARN, `AWS_REGION_NAME`, `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, or `us-west-2`.
    pub region: String,
    /// Where the signing credentials come from; `None` when a Bedrock API key (`api_key`) is
    /// used instead.
    pub credentials: Option<AwsCredentialSource>,
    pub route: BedrockRoute,
}

/// Keys that sign requests as they are: an access key, its secret and, for temporary keys,
/// the session token.
#[derive(Debug, Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

/// Where a Bedrock deployment's signing keys come from: the first source of the AWS default
/// credential chain that the deployment's params or the environment name, chosen at load.
/// The last three give temporary keys, fetched on first use and refreshed before they expire.
#[derive(Debug, Clone)]
pub enum AwsCredentialSource {
    /// Keys known at load. `origin` says where they were found, for logs: the config, the
    /// `AWS_*` variables, or a profile of the shared credentials file.
    Static {
        keys: AwsCredentials,
        origin: String,
    },
    /// STS `AssumeRoleWithWebIdentity` with an OIDC token (EKS IAM roles for service accounts).
    WebIdentity(WebIdentity),
    /// The ECS task role or EKS Pod Identity endpoint, with its `Authorization` value if any.
    Container {
        uri: Url,
        authorization: Option<SecretSource>,
    },
    /// The EC2 instance metadata service (IMDSv2) at `endpoint`.
    InstanceMetadata { endpoint: Url },
    /// A profile's `credential_process`: a command that prints keys as JSON, run again before
    /// they expire. `origin` names the profile and its file.
    Process { command: String, origin: String },
    /// STS `AssumeRole` (`aws_role_name`), signed with the keys another source gives.
    AssumeRole(Box<AssumeRole>),
}

#[derive(Debug, Clone)]
pub struct AssumeRole {
    /// Whose keys sign the `AssumeRole` call.
    pub source: AwsCredentialSource,
    pub role_arn: String,
    pub session_name: String,
    pub sts_endpoint: Url,
    /// `aws_external_id`, when the role's trust policy asks for one.
    pub external_id: Option<String>,
    /// The region the call is signed for (the deployment's, as the endpoint's).
    pub region: String,
}

#[derive(Debug, Clone)]
pub struct WebIdentity {
    pub role_arn: String,
    pub session_name: String,
    pub token: SecretSource,
    /// Where `AssumeRoleWithWebIdentity` goes: `https://sts.{region}.amazonaws.com/` unless
    /// `aws_sts_endpoint` or `AWS_ENDPOINT_URL_STS` say otherwise.
    pub sts_endpoint: Url,
}

/// A secret given as it is, or as a file read again each time it is needed (the tokens
/// Kubernetes projects into pods are rotated in place).
#[derive(Debug, Clone)]
pub enum SecretSource {
    Value(SecretString),
    File(PathBuf),
}

impl std::fmt::Display for AwsCredentialSource {
    /// Which source, without any secret: for start-up logs and error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AwsCredentialSource::Static { origin, .. } => write!(f, "static keys ({origin})"),
            AwsCredentialSource::WebIdentity(identity) => write!(
                f,
                "web identity: role {} through STS at {}",
                identity.role_arn,
                identity.sts_endpoint.host_str().unwrap_or_default()
            ),
            AwsCredentialSource::Container { uri, .. } => write!(
                f,
                "container credentials at {}",
                uri.host_str().unwrap_or_default()
            ),
            AwsCredentialSource::InstanceMetadata { endpoint } => write!(
                f,
                "EC2 instance metadata at {}",
                endpoint.host_str().unwrap_or_default()
            ),
            // The command may carry arguments that are secrets: only where it is set.
            AwsCredentialSource::Process { origin, .. } => {
                write!(f, "the credential_process of {origin}")
            }
            AwsCredentialSource::AssumeRole(assume) => write!(
                f,
                "role {} assumed through STS at {} with {}",
                assume.role_arn,
                assume.sts_endpoint.host_str().unwrap_or_default(),
                assume.source
            ),
        }
    }
}

/// Which Bedrock API serves chat: `bedrock/converse/<id>` or `bedrock/invoke/<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BedrockRoute {
    /// The Converse API, for every model (the default).
    Converse,
    /// InvokeModel with the model's native body: Anthropic's Messages format.
    Invoke,
}

impl BedrockRoute {
    /// The route a model id names, and the id without it; `None` when it names none.
    pub fn split(model: &str) -> Option<(BedrockRoute, &str)> {
        if let Some(rest) = model.strip_prefix("invoke/") {
            Some((BedrockRoute::Invoke, rest))
        } else {
            model
                .strip_prefix("converse/")
                .map(|rest| (BedrockRoute::Converse, rest))
        }
    }
}

#[derive(Debug, Clone)]
pub struct VertexConfig {
    /// `vertex_project`; when unset, the credentials' project or `VERTEXAI_PROJECT`.
    pub project: String,
    /// `vertex_location` (default `us-central1`); `global` uses the global endpoint.
    pub location: String,
    pub credentials: GoogleCredentials,
}

/// How a Vertex deployment obtains its OAuth access tokens.
#[derive(Debug, Clone)]
pub enum GoogleCredentials {
    /// A service-account key: signs a JWT and exchanges it at `token_uri`.
    ServiceAccount {
        client_email: String,
        private_key_id: Option<String>,
        /// PKCS#8 PEM.
        private_key: SecretString,
        token_uri: String,
    },
    /// `gcloud auth application-default login` credentials: a refresh token.
    AuthorizedUser {
        client_id: String,
        client_secret: SecretString,
        refresh_token: SecretString,
        token_uri: String,
    },
    /// No key given: the metadata server of the VM / pod the gateway runs on
    /// (`GCE_METADATA_HOST` moves it, as in Google's own libraries).
    MetadataServer { token_uri: String },
    /// Workload identity federation (`external_account`): a token from outside Google (a
    /// Kubernetes service account's, another cloud's) exchanged at Google's STS, then, when
    /// `impersonation_url` is given, for a service account's token.
    ExternalAccount {
        audience: String,
        subject_token_type: String,
        /// Google's STS (`token_url`).
        token_uri: String,
        subject_token: SubjectToken,
        impersonation_url: Option<String>,
    },
}

/// Where an `external_account`'s subject token is read, again at each exchange (such tokens
/// are rotated in place).
#[derive(Debug, Clone)]
pub struct SubjectToken {
    pub source: SubjectTokenSource,
    /// `format.subject_token_field_name` when the source answers JSON; the whole text otherwise.
    pub json_field: Option<String>,
}

#[derive(Debug, Clone)]
pub enum SubjectTokenSource {
    File(PathBuf),
    Url {
        url: String,
        headers: Vec<(String, String)>,
    },
}

/// Deployment probes (`general_settings`): `GET /health` runs them on demand; with
/// `background_health_checks`, they run every `health_check_interval` and a failing probe
/// cools its deployment down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSettings {
    pub background: bool,
    pub interval: Duration,
}

/// `model_info`: what the config says about a model beyond how to reach it.
#[derive(Debug, Default, Clone)]
pub struct ModelInfo {
    pub mode: Option<String>,
    pub base_model: Option<String>,
    pub max_tokens: Option<u64>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    /// Every other `model_info` key, as written.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// How the gateway connects to providers (`tollgate_settings`).
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    /// Independent clients (and so HTTP/2 connections) per provider host.
    pub clients_per_host: usize,
    pub pool_idle_timeout: Duration,
    /// `false` only when `ssl_verify: false`: provider certificates are not checked.
    pub verify_tls: bool,
    /// Extra CA certificates (PEM) trusted for provider TLS.
    pub ca_bundle: Option<PathBuf>,
}

/// Fetching http(s) media for providers that need the bytes inline (Bedrock, Gemini).
#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub max_bytes: usize,
    pub timeout: Duration,
    pub allow_private_networks: bool,
}

impl Config {
    /// The distinct `model_name`s, in config order.
    pub fn model_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for deployment in &self.deployments {
            if !names.contains(&deployment.model_name.as_str()) {
                names.push(&deployment.model_name);
            }
        }
        names
    }
}
