//! Serving on a socket, and stopping gracefully: on the shutdown signal the listener closes,
//! readiness turns 503, in-flight requests and streams run to completion, and after
//! `drain_timeout` whatever is left is cut off.

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::app::{Gateway, app};
use crate::{health_checks, spend, store_sync};

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
    // Each connection gets a clone of the finished router (one reference count). Served as a
    // plain `Router`, axum rebuilds its route table for every connection: about 37 KB a
    // connection, 4.7 MB of the gateway's heap with 128 clients.
    let service = app(gateway.clone()).into_make_service();
    let server = axum::serve(listener, service).with_graceful_shutdown(signal);
    let drain_deadline = async {
        gateway.draining_started().await;
        tokio::time::sleep(gateway.drain_timeout).await;
    };
    tokio::select! {
        result = server => result,
        () = drain_deadline => {
            tracing::warn!(in_flight = gateway.in_flight(), "drain timeout reached; closing the remaining connections");
            Ok(())
        }
    }
}

/// The gateway's background work, to spawn once per process (not per worker): reading
/// other replicas' changes from the store, and the periodic health checks when
/// `background_health_checks` is on. Runs until dropped.
pub async fn background_tasks(gateway: Arc<Gateway>) {
    let health = async {
        if gateway.health_checks.background {
            let interval = gateway.health_checks.interval;
            health_checks::run_in_background(gateway.clone(), interval).await;
        }
    };
    tokio::join!(
        store_sync::run(gateway.clone()),
        spend::run_flusher(gateway.clone()),
        health
    );
}
