//! A TCP proxy a test can cut: put between the gateway and its database, it makes the
//! database "go down" (every connection dropped, new ones refused) and come back, without
//! touching the database itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub struct TcpProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accepting: AbortHandle,
}

#[derive(Default)]
struct State {
    cut: AtomicBool,
    connections: Mutex<Vec<AbortHandle>>,
}

impl TcpProxy {
    /// Forwards connections on a new local port to `target`.
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State::default());
        let shared = state.clone();
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if shared.cut.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let forward = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                shared
                    .connections
                    .lock()
                    .expect("proxy lock")
                    .push(forward.abort_handle());
            }
        })
        .abort_handle();
        TcpProxy {
            addr,
            state,
            accepting,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        for connection in self.state.connections.lock().expect("proxy lock").drain(..) {
            connection.abort();
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}
