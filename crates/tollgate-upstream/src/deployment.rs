//! A deployment ready to receive traffic: its URLs and auth headers built once at start-up,
//! so a request only clones them.

use std::path::Path;
use std::sync::Arc;

use http::Uri;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use secrecy::ExposeSecret;
use tollgate_core::config::{ConfigError, DeploymentConfig};
use tollgate_core::endpoint::Operation;
use tollgate_core::provider::{AuthStyle, ProviderKind};
use url::Url;

use crate::client::{ClientPool, ClientSet};

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
    uris: [Option<Uri>; 4],
    /// Content type, auth and organization headers, sent with every request.
    pub(crate) headers: HeaderMap,
}

fn operation_slot(operation: Operation) -> usize {
    match operation {
        Operation::Chat => 0,
        Operation::Completion => 1,
        Operation::Embedding => 2,
        Operation::CountTokens => 3,
    }
}

const OPERATIONS: [Operation; 4] = [
    Operation::Chat,
    Operation::Completion,
    Operation::Embedding,
    Operation::CountTokens,
];

impl HttpTarget {
    pub(crate) fn uri(&self, operation: Operation) -> Option<&Uri> {
        self.uris[operation_slot(operation)].as_ref()
    }
}

/// The version of Anthropic's API the gateway speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

impl Deployment {
    /// Resolves a deployment's URLs and headers. `index` is its position in `model_list` of
    /// `file`, for error messages.
    pub fn build(
        config: DeploymentConfig,
        index: usize,
        pool: &ClientPool,
        file: &Path,
    ) -> Result<Self, ConfigError> {
        let field = |name: &str| format!("model_list[{index}].litellm_params.{name}");
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

        let mut uris: [Option<Uri>; 4] = Default::default();
        for operation in OPERATIONS {
            uris[operation_slot(operation)] = operation_uri(&config, &api_base, operation)
                .transpose()
                .map_err(|reason| error("api_base", reason))?;
        }

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("tollgate/", env!("CARGO_PKG_VERSION"))),
        );
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
                headers,
            })),
            api_base_host,
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

/// The full URL of `operation` on this deployment; `None` when the provider has no such
/// operation.
fn operation_uri(
    config: &DeploymentConfig,
    api_base: &Url,
    operation: Operation,
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
            if base.contains("/openai/deployments/") {
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
                Operation::Completion | Operation::Embedding => return None,
            }
        }
    };
    Some(Uri::try_from(text.as_str()).map_err(|err| format!("`{text}` is not a valid URL: {err}")))
}
