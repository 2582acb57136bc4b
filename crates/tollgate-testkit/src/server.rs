//! A running mock provider: its socket (plain or TLS), what it recorded, and how to stop it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::faults::Faults;
use crate::recorder::{RecordedRequest, Recorder};

/// A running mock provider; stops when dropped.
pub struct MockProvider {
    addr: SocketAddr,
    recorder: Arc<Recorder>,
    /// Failures to inject (see `faults`): healthy until told otherwise.
    pub faults: Arc<Faults>,
    tls_ca_pem: Option<String>,
    _stop: oneshot::Sender<()>,
}

impl MockProvider {
    /// Serves `app` on `address`, over TLS (HTTP/2 by ALPN, a fresh CA) when `tls`.
    pub(crate) async fn spawn(
        app: Router,
        recorder: Arc<Recorder>,
        address: &str,
        tls: bool,
    ) -> Self {
        let faults = Arc::new(Faults::default());
        let app = app.layer(axum::middleware::from_fn_with_state(
            (faults.clone(), recorder.clone()),
            crate::faults::inject,
        ));
        let listener = TcpListener::bind(address)
            .await
            .expect("mock provider binds");
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let tls_ca_pem = if tls {
            let (ca_pem, server_config) = crate::tls::localhost_certificate();
            tokio::spawn(crate::tls::serve(listener, server_config, app, stopped));
            Some(ca_pem)
        } else {
            tokio::spawn(async move {
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let _ = axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            });
            None
        };
        MockProvider {
            addr,
            recorder,
            faults,
            tls_ca_pem,
            _stop: stop,
        }
    }

    /// The PEM of the CA that issued the mock's certificate, when it serves HTTPS.
    pub fn tls_ca_pem(&self) -> Option<&str> {
        self.tls_ca_pem.as_deref()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL an OpenAI-compatible deployment's `api_base` points at (`…/v1`).
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.root_url())
    }

    /// The root URL, for providers whose `api_base` has no `/v1` (Anthropic, Azure, Ollama).
    pub fn root_url(&self) -> String {
        match self.tls_ca_pem {
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://{}", self.addr),
        }
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.recorder.requests()
    }

    pub fn last_request(&self) -> RecordedRequest {
        self.requests().pop().expect("the mock received a request")
    }

    /// Requests abandoned by the caller before the mock finished answering.
    pub fn cancelled(&self) -> usize {
        self.recorder.cancelled()
    }

    /// Waits until at least `count` requests were cancelled; false on timeout.
    pub async fn wait_for_cancelled(&self, count: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.recorder.changed.notified();
            if self.cancelled() >= count {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.cancelled() >= count;
            }
        }
    }
}
