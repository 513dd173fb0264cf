//! A loopback TCP proxy in front of the test Redis, so that a test can take
//! Redis away from one gateway instance without touching the machine's Redis.
//!
//! `cut` turns it into a black hole, as a network partition would: forwarded
//! connections stop carrying bytes but stay open, and new connections are
//! accepted and never answered. Nothing is refused, so the gateway sees
//! timeouts, the hard case. `restore` closes the connections held during the
//! cut (the client must reconnect) and forwards new ones again.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Cut,
    /// The proxy was dropped: every connection closes.
    Closed,
}

pub struct RedisProxy {
    pub port: u16,
    mode: watch::Sender<Mode>,
    accept: JoinHandle<()>,
}

impl RedisProxy {
    /// A proxy on a new loopback port, forwarding to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> RedisProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, upstream, Mode::Forward)
    }

    /// A proxy on a given loopback port (one a test reserved and released).
    pub async fn start_on(port: u16, upstream: &str) -> RedisProxy {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("cannot bind the released port {port} again: {e}"));
        Self::serve(listener, upstream, Mode::Forward)
    }

    fn serve(listener: TcpListener, upstream: &str, mode: Mode) -> RedisProxy {
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = watch::channel(mode);
        let upstream = upstream.to_string();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(connection(client, upstream.clone(), rx.clone()));
            }
        });
        RedisProxy {
            port,
            mode: tx,
            accept,
        }
    }

    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    pub fn restore(&self) {
        self.mode.send_replace(Mode::Forward);
    }
}

impl Drop for RedisProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.mode.send_replace(Mode::Closed);
    }
}

async fn connection(mut client: TcpStream, upstream: String, mut mode: watch::Receiver<Mode>) {
    let now = *mode.borrow_and_update();
    if now == Mode::Closed {
        return;
    }
    if now == Mode::Forward {
        let dial = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&upstream));
        let Ok(Ok(mut server)) = dial.await else {
            return;
        };
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
            changed = mode.wait_for(|m| *m != Mode::Forward) => {
                if changed.map_or(true, |m| *m == Mode::Closed) {
                    return;
                }
            }
        }
        // Cut: the server side goes; the client side stays open and silent.
    }
    hold(&mut client, &mut mode).await;
}

/// Swallows what the client sends until the cut ends; then the connection
/// closes (dropped), so the client has to open a new one.
async fn hold(client: &mut TcpStream, mode: &mut watch::Receiver<Mode>) {
    let mut sink = [0u8; 4096];
    loop {
        tokio::select! {
            n = client.read(&mut sink) => {
                if matches!(n, Ok(0) | Err(_)) {
                    return;
                }
            }
            _ = mode.wait_for(|m| *m != Mode::Cut) => return,
        }
    }
}
