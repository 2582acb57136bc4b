//! Serving on a socket, and stopping gracefully: on the shutdown signal the listener closes,
//! readiness turns 503, in-flight requests and streams run to completion, and after
//! `drain_timeout` whatever is left is cut off.

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::app::{Gateway, app};
use crate::health_checks;

/// Serves until `shutdown` resolves and the drain completes (or times out).
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        // Small writes (SSE events) must leave at once, not wait for Nagle's ACK timer.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "could not set TCP_NODELAY on an accepted connection");
        }
    });
    let draining = gateway.clone();
    let signal = async move {
        shutdown.await;
        draining.start_draining();
    };
    let server = axum::serve(listener, app(gateway.clone())).with_graceful_shutdown(signal);
    let health_checks = gateway.health_checks.background.then(|| {
        let checks =
            health_checks::run_in_background(gateway.clone(), gateway.health_checks.interval);
        AbortOnDrop(tokio::spawn(checks))
    });
    let drain_deadline = async {
        gateway.draining_started().await;
        tokio::time::sleep(gateway.drain_timeout).await;
    };
    let result = tokio::select! {
        result = server => result,
        () = drain_deadline => {
            tracing::warn!(in_flight = gateway.in_flight(), "drain timeout reached; closing the remaining connections");
            Ok(())
        }
    };
    drop(health_checks);
    result
}

/// Stops the background health checks when serving ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
