//! The HTTP clients that carry traffic to providers: hyper's pooled client over rustls (`ring`),
//! HTTP/1.1 and HTTP/2 by ALPN, `TCP_NODELAY`, and an HTTP CONNECT proxy where the standard
//! proxy variables say so.
//!
//! One client keeps one HTTP/2 connection per host, so every stream to that host would queue
//! behind it. A `ClientSet` holds several independent clients and spreads requests across them
//! round-robin: N clients give up to N HTTP/2 connections per host (and N keep-alive pools for
//! HTTP/1.1).
//!
//! Each worker thread runs its own runtime, and a connection is driven by the runtime that
//! opened it; so every worker has its own clients, and a request only ever uses connections of
//! the worker serving it — no cross-thread hand-off per request.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tollgate_core::config::{ConfigError, MediaSettings, UpstreamSettings};

use crate::media::MediaFetcher;
use tollgate_core::worker;

pub(crate) type HttpClient = Client<HttpsConnector<TcpConnector>, Full<Bytes>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Independent clients sharing one configuration, `clients_per_host` for each worker.
#[derive(Debug)]
pub struct ClientSet {
    by_worker: Vec<Vec<HttpClient>>,
    /// How long its clients wait for a connection to be set up.
    pub(crate) connect_timeout: Duration,
}

thread_local! {
    /// Round-robin position of this thread over its worker's clients.
    static TURN: Cell<usize> = const { Cell::new(0) };
}

impl ClientSet {
    /// The calling worker's next client in turn. No shared state: a thread-local counter.
    pub(crate) fn pick(&self) -> &HttpClient {
        let clients = &self.by_worker[worker::current() % self.by_worker.len()];
        let turn = TURN.get();
        TURN.set(turn.wrapping_add(1));
        &clients[turn % clients.len()]
    }
}

/// Which client set a deployment uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    connect_timeout: Duration,
    /// The proxy this destination goes through (from `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`).
    proxy: Option<Uri>,
}

/// Builds client sets at start-up, shared by every deployment with the same connect timeout
/// and proxy.
pub struct ClientPool {
    settings: UpstreamSettings,
    workers: usize,
    tls: rustls::ClientConfig,
    proxies: Matcher,
    sets: Mutex<HashMap<ClientKey, Arc<ClientSet>>>,
}

impl std::fmt::Debug for ClientPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPool")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ClientPool {
    /// `workers`: the worker threads that will send requests (see `worker`).
    pub fn new(
        settings: &UpstreamSettings,
        workers: usize,
        config_file: &Path,
    ) -> Result<Self, ConfigError> {
        let tls = tls_config(settings).map_err(|reason| {
            ConfigError::new(config_file, "litellm_settings.ssl_verify", reason)
        })?;
        Ok(ClientPool {
            settings: settings.clone(),
            workers: workers.max(1),
            tls,
            proxies: Matcher::from_env(),
            sets: Mutex::new(HashMap::new()),
        })
    }

    /// The client that fetches media URLs for providers that need inline bytes.
    pub fn media_fetcher(&self, settings: &MediaSettings) -> MediaFetcher {
        MediaFetcher::new(
            settings,
            self.tls.clone(),
            self.settings.connect_timeout,
            self.workers,
        )
    }

    /// The shared client set for a destination. Called while deployments are built, never per
    /// request.
    pub(crate) fn client_set(
        &self,
        destination: &Uri,
        connect_timeout: Option<Duration>,
    ) -> Arc<ClientSet> {
        let intercept = self.proxies.intercept(destination);
        let key = ClientKey {
            connect_timeout: connect_timeout.unwrap_or(self.settings.connect_timeout),
            proxy: intercept.as_ref().map(|proxy| proxy.uri().clone()),
        };
        let mut sets = self.sets.lock().expect("client pool lock poisoned");
        if let Some(set) = sets.get(&key) {
            return set.clone();
        }
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(key.connect_timeout));
        tcp.set_keepalive(Some(Duration::from_secs(30)));
        let connector = match &intercept {
            None => TcpConnector::Direct(tcp),
            Some(proxy) => {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), tcp);
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                TcpConnector::Tunnel(tunnel)
            }
        };
        let client = || {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(self.tls.clone())
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(connector.clone());
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(self.settings.pool_idle_timeout)
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .build(https)
        };
        let by_worker = (0..self.workers)
            .map(|_| {
                (0..self.settings.clients_per_host)
                    .map(|_| client())
                    .collect()
            })
            .collect();
        let set = Arc::new(ClientSet {
            by_worker,
            connect_timeout: key.connect_timeout,
        });
        sets.insert(key, set.clone());
        set
    }
}

/// TLS for provider connections: Mozilla's roots (as LiteLLM trusts through certifi) plus any
/// configured CA bundle; no verification at all only when `ssl_verify: false`.
fn tls_config(settings: &UpstreamSettings) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("TLS setup failed: {err}"))?;
    if !settings.verify_tls {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &settings.ca_bundle {
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|err| format!("cannot read CA bundle `{}`: {err}", path.display()))?;
        if certificates.is_empty() {
            return Err(format!("`{}` holds no PEM certificates", path.display()));
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|err| {
                format!("`{}` holds an unusable certificate: {err}", path.display())
            })?;
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Plain TCP, or TCP through an HTTP CONNECT proxy; TLS is layered on top by `HttpsConnector`.
#[derive(Debug, Clone)]
pub(crate) enum TcpConnector {
    Direct(HttpConnector),
    Tunnel(Tunnel<HttpConnector>),
}

impl tower_service::Service<Uri> for TcpConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            TcpConnector::Direct(tcp) => tcp.poll_ready(cx).map_err(Into::into),
            TcpConnector::Tunnel(tunnel) => tunnel.poll_ready(cx).map_err(Into::into),
        }
    }

    // Runs once per new connection, not per request, so the box costs nothing that matters.
    fn call(&mut self, destination: Uri) -> Self::Future {
        match self {
            TcpConnector::Direct(tcp) => {
                let connecting = tcp.call(destination);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
            TcpConnector::Tunnel(tunnel) => {
                let connecting = tunnel.call(destination);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
        }
    }
}

/// `ssl_verify: false`: accepts any certificate. Signatures are still checked, so the session
/// is encrypted to whoever holds the presented key — just not authenticated.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A URL the gateway posts notices to (budget alerts), over the providers' HTTP stack.
#[derive(Debug, Clone)]
pub struct Webhook {
    uri: Uri,
    clients: Arc<ClientSet>,
}

/// How long one notice may take to deliver.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

impl ClientPool {
    pub fn webhook(&self, url: &url::Url) -> Result<Webhook, String> {
        let uri =
            Uri::try_from(url.as_str()).map_err(|err| format!("`{url}` is not a URL: {err}"))?;
        Ok(Webhook {
            clients: self.client_set(&uri, None),
            uri,
        })
    }
}

impl Webhook {
    /// Posts `body` as JSON; the error says why it was not taken.
    pub async fn post_json(&self, body: Vec<u8>) -> Result<(), String> {
        let request = http::Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| err.to_string())?;
        let sent = tokio::time::timeout(WEBHOOK_TIMEOUT, self.clients.pick().request(request))
            .await
            .map_err(|_| format!("no answer within {}s", WEBHOOK_TIMEOUT.as_secs()))?
            .map_err(|err| crate::root_cause(&err))?;
        if sent.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", sent.status()))
        }
    }
}
