//! Opening a connection: name lookup, TCP (no delay, keep-alive probes), TLS
//! with ALPN `http/1.1` for `https`, all within the connect timeout.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::ClientError;
use crate::pool::{Conn, HostKey};

/// TCP keep-alive probes on upstream sockets: a peer that vanished without a
/// word (a NAT dropped the flow) is found out while the connection sits idle.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

pub(crate) struct Connector {
    timeout: Duration,
    tls: TlsConnector,
}

impl Connector {
    pub(crate) fn new(timeout: Duration, roots: rustls::RootCertStore) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            timeout,
            tls: TlsConnector::from(Arc::new(tls)),
        })
    }

    pub(crate) async fn connect(&self, key: &HostKey<'_>) -> Result<Box<Conn>, ClientError> {
        match tokio::time::timeout(self.timeout, self.open(key)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Connect(format!(
                "connect to {}:{} timed out after {:?}",
                key.host, key.port, self.timeout
            ))),
        }
    }

    async fn open(&self, key: &HostKey<'_>) -> Result<Box<Conn>, ClientError> {
        let tcp = tcp_connect(key.host, key.port).await?;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an upstream socket");
        }
        let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
        if let Err(e) = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive) {
            tracing::debug!(error = %e, "cannot set TCP keep-alive on an upstream socket");
        }
        let stream = if key.tls {
            let name = ServerName::try_from(bare_host(key.host).to_owned())
                .map_err(|e| ClientError::connect("invalid TLS server name", &e))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| ClientError::connect("TLS handshake failed", &e))?;
            Stream::Tls(Box::new(tls))
        } else {
            Stream::Plain(tcp)
        };
        Ok(Conn::new(stream))
    }
}

/// The host without IPv6 brackets (`[::1]` → `::1`).
fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Connect to the first address of `host` that answers.
async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, ClientError> {
    let bare = bare_host(host);
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| ClientError::connect(&format!("cannot resolve {bare}"), &e))?
            .collect(),
    };
    let mut last: Option<io::Error> = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => ClientError::connect(&format!("tcp connect to {host}:{port}"), &e),
        None => ClientError::Connect(format!("{bare} resolved to no address")),
    })
}

/// A plain or TLS upstream socket.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
