//! The HTTP clients that carry traffic to providers.
//!
//! One reqwest client keeps one HTTP/2 connection per host, so every stream to that host would
//! queue behind it. The pool holds several independent clients and spreads requests across
//! them round-robin: N clients give up to N HTTP/2 connections per host (and N keep-alive
//! pools for HTTP/1.1).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tollgate_core::config::{ConfigError, UpstreamSettings};

/// Independent clients sharing one configuration.
#[derive(Debug)]
pub struct ClientSet {
    clients: Vec<reqwest::Client>,
    next: AtomicUsize,
}

impl ClientSet {
    /// The next client in turn. Lock-free: one relaxed atomic increment.
    pub fn pick(&self) -> &reqwest::Client {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        &self.clients[index]
    }
}

/// Builds client sets at start-up, one per distinct connect timeout, shared by every
/// deployment with that timeout.
#[derive(Debug)]
pub struct ClientPool {
    settings: UpstreamSettings,
    extra_roots: Vec<reqwest::Certificate>,
    use_env_proxy: bool,
    sets: Mutex<HashMap<Duration, Arc<ClientSet>>>,
}

impl ClientPool {
    pub fn new(
        settings: &UpstreamSettings,
        config_file: &std::path::Path,
    ) -> Result<Self, ConfigError> {
        // reqwest is built without a default crypto provider so that `ring` is used (aws-lc
        // needs cmake); install it once for the process. A second install is a no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let extra_roots = match &settings.ca_bundle {
            None => Vec::new(),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|err| {
                    ConfigError::new(
                        config_file,
                        "litellm_settings.ssl_verify",
                        format!("cannot read CA bundle `{}`: {err}", path.display()),
                    )
                })?;
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| {
                    ConfigError::new(
                        config_file,
                        "litellm_settings.ssl_verify",
                        format!("`{}` is not a PEM CA bundle: {err}", path.display()),
                    )
                })?
            }
        };
        let use_env_proxy = [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
        ]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|value| !value.is_empty()));
        Ok(ClientPool {
            settings: settings.clone(),
            extra_roots,
            use_env_proxy,
            sets: Mutex::new(HashMap::new()),
        })
    }

    /// The shared client set for a connect timeout (the configured default when `None`).
    /// Called while deployments are built, never per request.
    pub fn client_set(&self, connect_timeout: Option<Duration>) -> Result<Arc<ClientSet>, String> {
        let connect_timeout = connect_timeout.unwrap_or(self.settings.connect_timeout);
        let mut sets = self.sets.lock().expect("client pool lock poisoned");
        if let Some(set) = sets.get(&connect_timeout) {
            return Ok(set.clone());
        }
        let clients = (0..self.settings.clients_per_host)
            .map(|_| self.build_client(connect_timeout))
            .collect::<Result<Vec<_>, _>>()?;
        let set = Arc::new(ClientSet {
            clients,
            next: AtomicUsize::new(0),
        });
        sets.insert(connect_timeout, set.clone());
        Ok(set)
    }

    fn build_client(&self, connect_timeout: Duration) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder()
            .tls_backend_rustls()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(self.settings.pool_idle_timeout)
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")));
        if !self.use_env_proxy {
            // Skips a proxy lookup on every request when no proxy is configured.
            builder = builder.no_proxy();
        }
        for root in &self.extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        if !self.settings.verify_tls {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        builder
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))
    }
}
