//! A deployment ready to receive traffic: its URLs and auth headers built once at start-up,
//! so a request only clones them.

use std::path::Path;
use std::sync::Arc;

use http::Uri;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use secrecy::ExposeSecret;
use tollgate_core::config::{ConfigError, DeploymentConfig};
use tollgate_core::endpoint::Endpoint;
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
    chat_completions: Uri,
    completions: Uri,
    embeddings: Uri,
    /// Content type, auth and organization headers, sent with every request.
    pub(crate) headers: HeaderMap,
}

impl HttpTarget {
    pub(crate) fn uri(&self, endpoint: Endpoint) -> &Uri {
        match endpoint {
            Endpoint::ChatCompletions => &self.chat_completions,
            Endpoint::Completions => &self.completions,
            Endpoint::Embeddings => &self.embeddings,
        }
    }
}

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

        let uri_for = |endpoint: Endpoint| -> Result<Uri, ConfigError> {
            endpoint_uri(&config, &api_base, endpoint).map_err(|reason| error("api_base", reason))
        };
        let chat_completions = uri_for(Endpoint::ChatCompletions)?;
        let completions = uri_for(Endpoint::Completions)?;
        let embeddings = uri_for(Endpoint::Embeddings)?;

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("tollgate/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(key) = &config.api_key {
            let (name, value) = match config.provider.auth {
                AuthStyle::Bearer => (AUTHORIZATION, format!("Bearer {}", key.expose_secret())),
                AuthStyle::ApiKeyHeader => (
                    HeaderName::from_static("api-key"),
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

        let clients = pool.client_set(&chat_completions, config.connect_timeout);
        Ok(Deployment {
            config,
            target: Target::Http(Box::new(HttpTarget {
                clients,
                chat_completions,
                completions,
                embeddings,
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

/// The full URL of `endpoint` on this deployment.
fn endpoint_uri(
    config: &DeploymentConfig,
    api_base: &Url,
    endpoint: Endpoint,
) -> Result<Uri, String> {
    let base = api_base.as_str().trim_end_matches('/');
    let text = match config.provider.kind {
        ProviderKind::OpenAiCompatible | ProviderKind::Mock => {
            format!("{base}/{}", endpoint.path())
        }
        ProviderKind::Azure => {
            let api_version = config.api_version.as_deref().unwrap_or_default();
            // An api_base that already points into a deployment is used as given (LiteLLM does).
            if base.contains("/openai/deployments/") {
                format!("{base}/{}?api-version={api_version}", endpoint.path())
            } else if api_version == "v1" {
                // The v1 API takes the deployment from the body's `model` and needs no version.
                format!("{base}/openai/v1/{}", endpoint.path())
            } else if matches!(api_version, "latest" | "preview") {
                format!(
                    "{base}/openai/v1/{}?api-version={api_version}",
                    endpoint.path()
                )
            } else {
                format!(
                    "{base}/openai/deployments/{}/{}?api-version={api_version}",
                    config.model,
                    endpoint.path()
                )
            }
        }
    };
    Uri::try_from(text.as_str()).map_err(|err| format!("`{text}` is not a valid URL: {err}"))
}
