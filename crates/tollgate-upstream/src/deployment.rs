//! A deployment ready to receive traffic: its URLs and auth headers built once at start-up,
//! so a request only clones them.

use std::path::Path;
use std::sync::Arc;

use http::Uri;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::ExposeSecret;
use tollgate_core::config::{BedrockRoute, ConfigError, DeploymentConfig};
use tollgate_core::endpoint::Operation;
use tollgate_core::provider::{AuthStyle, ProviderKind, WireFormat};
use url::Url;

use crate::aws_sign::AwsSigner;
use crate::client::{ClientPool, ClientSet};
use crate::google_auth::TokenSource;

/// One configured deployment and how to reach it.
#[derive(Debug)]
pub struct Deployment {
    pub config: DeploymentConfig,
    pub(crate) target: Target,
    /// `api_base`'s host (and port), safe to show in headers and logs.
    pub api_base_host: String,
}

#[derive(Debug)]
pub(crate) enum Target {
    Http(Box<HttpTarget>),
    /// Answered in-process by the built-in mock provider.
    Mock,
}

#[derive(Debug)]
pub(crate) struct HttpTarget {
    pub(crate) clients: Arc<ClientSet>,
    /// The URL of each operation the provider serves, indexed by `operation_slot`.
    uris: [Option<Uri>; 5],
    /// Where streamed chat goes, for providers with a separate streaming method (Gemini).
    stream_uri: Option<Uri>,
    /// Content type, auth and organization headers, sent with every request.
    pub(crate) headers: HeaderMap,
    /// OAuth tokens, for providers whose auth header changes over time (Vertex AI); shared
    /// by the models a wildcard deployment serves.
    pub(crate) token_source: Option<Arc<TokenSource>>,
    /// Request signing, for providers that sign each request (Bedrock).
    pub(crate) signer: Option<Arc<AwsSigner>>,
}

fn operation_slot(operation: Operation) -> usize {
    match operation {
        Operation::Chat => 0,
        Operation::Completion => 1,
        Operation::Embedding => 2,
        Operation::CountTokens => 3,
        Operation::Responses => 4,
    }
}

const OPERATIONS: [Operation; 5] = [
    Operation::Chat,
    Operation::Completion,
    Operation::Embedding,
    Operation::CountTokens,
    Operation::Responses,
];

impl HttpTarget {
    pub(crate) fn uri(&self, operation: Operation, stream: bool) -> Option<&Uri> {
        match (&self.stream_uri, operation, stream) {
            (Some(uri), Operation::Chat, true) => Some(uri),
            _ => self.uris[operation_slot(operation)].as_ref(),
        }
    }
}

/// Everything but RFC 3986's unreserved characters is escaped in a path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The version of Anthropic's API the gateway speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

impl Deployment {
    /// Resolves a deployment's URLs and headers. `entry` says where it was given, for error
    /// messages: `model_list[3]` of `file`, or empty for one given to the management API.
    pub fn build(
        config: DeploymentConfig,
        entry: &str,
        pool: &ClientPool,
        file: &Path,
    ) -> Result<Self, ConfigError> {
        let field = |name: &str| match entry {
            "" => format!("litellm_params.{name}"),
            entry => format!("{entry}.litellm_params.{name}"),
        };
        let error = |name: &str, reason: String| ConfigError::new(file, field(name), reason);
        let Some(api_base) = config.api_base.clone() else {
            return Ok(Deployment {
                config,
                target: Target::Mock,
                api_base_host: "mock".to_owned(),
            });
        };
        let api_base_host = match api_base.port() {
            Some(port) => format!("{}:{port}", api_base.host_str().unwrap_or_default()),
            None => api_base.host_str().unwrap_or_default().to_owned(),
        };

        let (uris, stream_uri) =
            operation_uris(&config, &api_base).map_err(|reason| error("api_base", reason))?;

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("tollgate/", env!("CARGO_PKG_VERSION"))),
        );
        let token_source = match &config.vertex {
            Some(vertex) => Some(Arc::new(
                TokenSource::new(&vertex.credentials, pool, config.connect_timeout)
                    .map_err(|reason| error("vertex_credentials", reason))?,
            )),
            None => None,
        };
        // Bedrock signs each request, unless a Bedrock API key (bearer) is configured.
        let signer = match (&config.bedrock, &config.api_key) {
            (Some(bedrock), None) => match &bedrock.credentials {
                Some(source) => {
                    let signer =
                        AwsSigner::new(source, &bedrock.region, pool, config.connect_timeout)
                            .map_err(|reason| error("aws_access_key_id", reason))?;
                    tracing::info!(deployment = %config.id, model = %config.model_name, credentials = %source, "Bedrock requests are signed");
                    Some(Arc::new(signer))
                }
                None => None,
            },
            _ => None,
        };
        if config.provider.kind == ProviderKind::Anthropic {
            headers.insert(
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static(ANTHROPIC_VERSION),
            );
        }
        if let Some(key) = &config.api_key {
            let (name, value) = match config.provider.auth {
                AuthStyle::Bearer => (AUTHORIZATION, format!("Bearer {}", key.expose_secret())),
                AuthStyle::ApiKeyHeader => (
                    HeaderName::from_static("api-key"),
                    key.expose_secret().to_owned(),
                ),
                AuthStyle::XApiKey => (
                    HeaderName::from_static("x-api-key"),
                    key.expose_secret().to_owned(),
                ),
                AuthStyle::GoogApiKey => (
                    HeaderName::from_static("x-goog-api-key"),
                    key.expose_secret().to_owned(),
                ),
                // A configured key on Vertex is a ready access token (LiteLLM allows it too);
                // on Bedrock, a Bedrock API key.
                AuthStyle::GoogleOAuth | AuthStyle::AwsSigV4 => {
                    (AUTHORIZATION, format!("Bearer {}", key.expose_secret()))
                }
            };
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                error(
                    "api_key",
                    "contains characters not allowed in an HTTP header".into(),
                )
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(organization) = &config.organization {
            let value = HeaderValue::from_str(organization).map_err(|_| {
                error(
                    "organization",
                    "contains characters not allowed in an HTTP header".into(),
                )
            })?;
            headers.insert(HeaderName::from_static("openai-organization"), value);
        }

        let any_uri = uris.iter().flatten().next().cloned().unwrap_or_default();
        let clients = pool.client_set(&any_uri, config.connect_timeout);
        Ok(Deployment {
            config,
            target: Target::Http(Box::new(HttpTarget {
                clients,
                uris,
                stream_uri,
                headers,
                token_source,
                signer,
            })),
            api_base_host,
        })
    }

    /// This wildcard deployment serving one concrete model (`config`, from
    /// `DeploymentConfig::for_model`): its URLs built for that model; connections, headers
    /// and credentials shared with the wildcard. Errs when the model makes no valid URL.
    pub fn for_model(&self, config: DeploymentConfig) -> Result<Deployment, String> {
        let target = match &self.target {
            Target::Mock => Target::Mock,
            Target::Http(http) => {
                let api_base = config
                    .api_base
                    .as_ref()
                    .ok_or("an HTTP deployment without an api_base")?;
                let (uris, stream_uri) = operation_uris(&config, api_base)?;
                Target::Http(Box::new(HttpTarget {
                    clients: http.clients.clone(),
                    uris,
                    stream_uri,
                    headers: http.headers.clone(),
                    token_source: http.token_source.clone(),
                    signer: http.signer.clone(),
                }))
            }
        };
        Ok(Deployment {
            config,
            target,
            api_base_host: self.api_base_host.clone(),
        })
    }

    /// `text` with this deployment's provider key masked, for anything that echoes provider
    /// output back to clients or logs.
    pub fn redact(&self, text: &str) -> String {
        match &self.config.api_key {
            Some(key) if key.expose_secret().len() >= 4 && text.contains(key.expose_secret()) => {
                text.replace(key.expose_secret(), "[REDACTED]")
            }
            _ => text.to_owned(),
        }
    }
}

/// The URL of every operation the deployment serves, and of streamed chat when it differs.
fn operation_uris(
    config: &DeploymentConfig,
    api_base: &Url,
) -> Result<([Option<Uri>; 5], Option<Uri>), String> {
    let mut uris: [Option<Uri>; 5] = Default::default();
    for operation in OPERATIONS {
        uris[operation_slot(operation)] =
            operation_uri(config, api_base, operation, false).transpose()?;
    }
    let stream_uri = operation_uri(config, api_base, Operation::Chat, true)
        .transpose()?
        .filter(|uri| Some(uri) != uris[operation_slot(Operation::Chat)].as_ref());
    Ok((uris, stream_uri))
}

/// The full URL of `operation` on this deployment (streamed or not); `None` when the provider
/// has no such operation.
fn operation_uri(
    config: &DeploymentConfig,
    api_base: &Url,
    operation: Operation,
    stream: bool,
) -> Option<Result<Uri, String>> {
    let base = api_base.as_str().trim_end_matches('/');
    let text = match config.provider.kind {
        ProviderKind::OpenAiCompatible | ProviderKind::Mock => {
            format!("{base}/{}", operation.openai_path()?)
        }
        ProviderKind::Azure => {
            let path = operation.openai_path()?;
            let api_version = config.api_version.as_deref().unwrap_or_default();
            // An api_base that already points into a deployment is used as given (LiteLLM does).
            if operation == Operation::Responses {
                // The Responses API names the deployment in the body's `model`.
                let root = base.split("/openai/").next().unwrap_or(base);
                // Dated versions before the Responses preview (2025-03-01) do not have it;
                // the v1 API does, with or without a version.
                if matches!(api_version, "" | "v1" | "latest" | "preview")
                    || api_version < "2025-03-01"
                {
                    format!("{root}/openai/v1/responses")
                } else {
                    format!("{root}/openai/responses?api-version={api_version}")
                }
            } else if base.contains("/openai/deployments/") {
                format!("{base}/{path}?api-version={api_version}")
            } else if api_version == "v1" {
                // The v1 API takes the deployment from the body's `model` and needs no version.
                format!("{base}/openai/v1/{path}")
            } else if matches!(api_version, "latest" | "preview") {
                format!("{base}/openai/v1/{path}?api-version={api_version}")
            } else {
                format!(
                    "{base}/openai/deployments/{}/{path}?api-version={api_version}",
                    config.model
                )
            }
        }
        ProviderKind::Anthropic => {
            // LiteLLM's `api_base` for anthropic/ is the root `/v1/messages` goes under; some
            // configs give `…/v1` or the full endpoint instead.
            let root = base
                .trim_end_matches("/v1/messages")
                .trim_end_matches("/v1");
            match operation {
                Operation::Chat => format!("{root}/v1/messages"),
                Operation::CountTokens => format!("{root}/v1/messages/count_tokens"),
                Operation::Completion | Operation::Embedding | Operation::Responses => {
                    return None;
                }
            }
        }
        ProviderKind::Cohere => {
            // LiteLLM's `api_base` for Cohere is the chat endpoint itself; the root is kept.
            let root = ["/v2/chat", "/v1/chat", "/v2", "/v1"]
                .iter()
                .find_map(|suffix| base.strip_suffix(suffix))
                .unwrap_or(base);
            match operation {
                Operation::Chat => format!("{root}/v2/chat"),
                Operation::Embedding => format!("{root}/v2/embed"),
                Operation::Completion | Operation::CountTokens | Operation::Responses => {
                    return None;
                }
            }
        }
        ProviderKind::Gemini => {
            let model = config.model.trim_start_matches("models/");
            let method = gemini_method(operation, stream)?;
            format!("{base}/models/{model}:{method}")
        }
        ProviderKind::Bedrock => {
            let bedrock = config.bedrock.as_ref()?;
            // The model id is one path segment: ARNs' `:` and `/` are escaped.
            let model = utf8_percent_encode(&config.model, PATH_SEGMENT);
            let action = match (operation, bedrock.route, stream) {
                (Operation::Chat, BedrockRoute::Converse, false) => "converse",
                (Operation::Chat, BedrockRoute::Converse, true) => "converse-stream",
                (Operation::Chat, BedrockRoute::Invoke, true) => "invoke-with-response-stream",
                (Operation::Chat | Operation::Embedding, _, _) => "invoke",
                (Operation::Completion | Operation::CountTokens | Operation::Responses, _, _) => {
                    return None;
                }
            };
            format!("{base}/model/{model}/{action}")
        }
        ProviderKind::Vertex => {
            let vertex = config.vertex.as_ref()?;
            // An api_base naming the project path already (a private endpoint) is kept as is.
            let root = if base.contains("/projects/") {
                base.to_owned()
            } else {
                format!(
                    "{base}/v1/projects/{}/locations/{}",
                    vertex.project, vertex.location
                )
            };
            match config.wire_format() {
                WireFormat::Anthropic => match operation {
                    Operation::Chat if stream => format!(
                        "{root}/publishers/anthropic/models/{}:streamRawPredict",
                        config.model
                    ),
                    Operation::Chat => format!(
                        "{root}/publishers/anthropic/models/{}:rawPredict",
                        config.model
                    ),
                    Operation::CountTokens => {
                        format!("{root}/publishers/anthropic/models/count-tokens:rawPredict")
                    }
                    Operation::Completion | Operation::Embedding | Operation::Responses => {
                        return None;
                    }
                },
                _ => {
                    let method = match operation {
                        // Vertex's text-embedding models answer `:predict`.
                        Operation::Embedding => "predict",
                        _ => gemini_method(operation, stream)?,
                    };
                    format!("{root}/publishers/google/models/{}:{method}", config.model)
                }
            }
        }
    };
    Some(Uri::try_from(text.as_str()).map_err(|err| format!("`{text}` is not a valid URL: {err}")))
}

/// The Gemini method serving `operation` (the same names on the Gemini API and Vertex AI).
fn gemini_method(operation: Operation, stream: bool) -> Option<&'static str> {
    Some(match operation {
        Operation::Chat if stream => "streamGenerateContent?alt=sse",
        Operation::Chat => "generateContent",
        Operation::Embedding => "batchEmbedContents",
        Operation::CountTokens => "countTokens",
        Operation::Completion | Operation::Responses => return None,
    })
}
