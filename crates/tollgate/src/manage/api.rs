//! A small client for a running gateway's management API: JSON in, JSON out, the key as a
//! Bearer token, errors in the API's own words.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Api {
    base: String,
    api_key: Option<String>,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Api {
    pub fn new(url: &str, api_key: Option<String>) -> Result<Api, String> {
        let base = url.trim_end_matches('/').to_owned();
        base.parse::<Uri>()
            .ok()
            .filter(|uri| uri.scheme().is_some() && uri.host().is_some())
            .ok_or_else(|| format!("`{url}` is not a URL like http://127.0.0.1:4000"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| format!("TLS setup failed: {err}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Api {
            base,
            api_key,
            http: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, String> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let mut request = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::ACCEPT, "application/json");
        if let Some(key) = &self.api_key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|err| format!("cannot build a request to {url}: {err}"))?;
        let response = tokio::time::timeout(TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| format!("{url} did not answer within {TIMEOUT:?}"))?
            .map_err(|err| format!("cannot reach {url}: {}", with_causes(&err)))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|err| format!("{url}: the answer broke off: {err}"))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if status.is_success() {
            Ok(value)
        } else {
            Err(failure(status, &value))
        }
    }
}

/// An error and what caused it ("client error (Connect): Connection refused").
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}

/// A refused call as the API explained it.
fn failure(status: StatusCode, body: &Value) -> String {
    let message = body["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| body.to_string());
    match body["error"]["param"].as_str() {
        Some(param) => format!("{status}: {message} (param: {param})"),
        None => format!("{status}: {message}"),
    }
}
