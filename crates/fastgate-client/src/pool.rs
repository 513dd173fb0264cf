//! Idle keep-alive connections, per upstream host.
//!
//! Nobody reads an idle connection: when one is taken out, it is polled once
//! (without a waker) so a close or reset the upstream sent meanwhile is seen,
//! and it is dropped if so or if it waited longer than the idle timeout. A
//! sweeper task (one per pool, started with the first request) closes the
//! expired and dead ones of hosts nobody asks for any more.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::HeaderValue;
use tokio::io::{AsyncRead, ReadBuf};

use crate::connect::Stream;

/// First read size of a connection: an answer head and a streamed event fit.
const READ_SIZE: usize = 4096;
/// Reads that fill the buffer double the next one, up to this (large bodies).
const MAX_READ_SIZE: usize = 64 * 1024;
/// Less room than this left in the read buffer: make room first.
const MIN_SPARE: usize = 512;

/// One upstream connection: its socket and what was read but not consumed.
pub(crate) struct Conn {
    pub(crate) io: Stream,
    pub(crate) read_buf: BytesMut,
    read_size: usize,
    idle_since: Instant,
}

impl Conn {
    pub(crate) fn new(io: Stream) -> Box<Self> {
        Box::new(Self {
            io,
            read_buf: BytesMut::new(),
            read_size: READ_SIZE,
            idle_since: Instant::now(),
        })
    }

    /// Can another request be sent on it? Nothing may be left unread, and the
    /// socket (polled without a waker: nobody waits on an idle connection)
    /// must have nothing to say: a close, a reset or stray bytes end it.
    pub(crate) fn is_reusable(&mut self) -> bool {
        if !self.read_buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        Pin::new(&mut self.io)
            .poll_read(&mut cx, &mut probe)
            .is_pending()
    }

    /// Read what the socket has into the read buffer; `Ok(0)` at its end. The
    /// buffer's room is reused once what was taken from it is dropped.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read_buf.capacity() - self.read_buf.len() < MIN_SPARE {
            self.read_buf.reserve(self.read_size);
        }
        let room = self.read_buf.capacity() - self.read_buf.len();
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.io),
            cx,
            &mut self.read_buf
        ))?;
        if n == room && self.read_size < MAX_READ_SIZE {
            self.read_size *= 2;
        }
        Poll::Ready(Ok(n))
    }
}

/// Where a request goes: the pool's host list is keyed by it.
pub(crate) struct HostKey<'a> {
    pub(crate) tls: bool,
    pub(crate) host: &'a str,
    pub(crate) port: u16,
}

impl HostKey<'_> {
    /// The `Host` header for this host: its name, and its port unless it is
    /// the scheme's default. `None` when the name cannot be a header value.
    pub(crate) fn host_header(&self) -> Option<HeaderValue> {
        let default_port = if self.tls { 443 } else { 80 };
        let value = if self.port == default_port {
            HeaderValue::from_str(self.host)
        } else {
            HeaderValue::from_str(&format!("{}:{}", self.host, self.port))
        };
        value.ok()
    }
}

/// What [`Pool::checkout`] found for a host.
pub(crate) struct Checkout {
    /// Names the host for good (see [`Pool::checkin`]).
    pub(crate) slot: usize,
    /// Its most recent idle connection that is still usable.
    pub(crate) conn: Option<Box<Conn>>,
    /// Its `Host` header, made once per host rather than per request.
    pub(crate) host_header: Option<HeaderValue>,
}

struct Host {
    tls: bool,
    host: Box<str>,
    port: u16,
    host_header: Option<HeaderValue>,
    /// Oldest first; requests take the newest (the least likely to have been
    /// closed by the upstream's own idle timeout). Boxed: a connection moves
    /// from here to a request and its body and back, one pointer each time.
    #[allow(clippy::vec_box, reason = "connections move out of the list and back")]
    idle: Vec<Box<Conn>>,
}

pub(crate) struct Pool {
    /// Hosts are only ever added, so an index into this list names one for
    /// good (a response body keeps it to put its connection back). Few hosts
    /// per client: a linear scan, no key to allocate per request.
    hosts: Mutex<Vec<Host>>,
    max_idle: usize,
    idle_timeout: Duration,
    sweeper: AtomicBool,
}

impl Pool {
    pub(crate) fn new(max_idle: usize, idle_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            hosts: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
            sweeper: AtomicBool::new(false),
        })
    }

    fn hosts(&self) -> MutexGuard<'_, Vec<Host>> {
        // A panic elsewhere cannot leave a list of idle connections inconsistent.
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The host's slot and `Host` header, and its most recent idle connection
    /// that is still usable.
    pub(crate) fn checkout(self: &Arc<Self>, key: &HostKey<'_>) -> Checkout {
        self.start_sweeper();
        let mut stale = Vec::new();
        let mut hosts = self.hosts();
        let slot = match hosts
            .iter()
            .position(|h| h.port == key.port && h.tls == key.tls && *h.host == *key.host)
        {
            Some(slot) => slot,
            None => {
                hosts.push(Host {
                    tls: key.tls,
                    host: key.host.into(),
                    port: key.port,
                    host_header: key.host_header(),
                    idle: Vec::new(),
                });
                hosts.len() - 1
            }
        };
        let mut found = None;
        let mut host_header = None;
        if let Some(host) = hosts.get_mut(slot) {
            host_header.clone_from(&host.host_header);
            while let Some(mut conn) = host.idle.pop() {
                if conn.idle_since.elapsed() > self.idle_timeout {
                    // The newest is too old: so are all the others.
                    stale.push(conn);
                    stale.append(&mut host.idle);
                    break;
                }
                if conn.is_reusable() {
                    found = Some(conn);
                    break;
                }
                stale.push(conn);
            }
        }
        drop(hosts);
        // Closing sockets happens outside the lock.
        drop(stale);
        Checkout {
            slot,
            conn: found,
            host_header,
        }
    }

    /// Keep `conn` for a later request to the host in `slot`, if there is room.
    pub(crate) fn checkin(&self, slot: usize, mut conn: Box<Conn>) {
        conn.idle_since = Instant::now();
        let mut hosts = self.hosts();
        let refused = match hosts.get_mut(slot) {
            Some(host) if host.idle.len() < self.max_idle => {
                host.idle.push(conn);
                None
            }
            _ => Some(conn),
        };
        drop(hosts);
        drop(refused);
    }

    pub(crate) fn idle_count(&self) -> usize {
        self.hosts().iter().map(|h| h.idle.len()).sum()
    }

    /// Drop idle connections that expired or that the upstream closed.
    fn sweep(&self) {
        let mut closed = Vec::new();
        let mut hosts = self.hosts();
        for host in hosts.iter_mut() {
            let mut kept = Vec::with_capacity(host.idle.len());
            for mut conn in host.idle.drain(..) {
                if conn.idle_since.elapsed() <= self.idle_timeout && conn.is_reusable() {
                    kept.push(conn);
                } else {
                    closed.push(conn);
                }
            }
            host.idle = kept;
        }
        drop(hosts);
        drop(closed);
    }

    fn start_sweeper(self: &Arc<Self>) {
        if self.sweeper.load(Ordering::Relaxed) || self.sweeper.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.sweeper.store(false, Ordering::Release);
            return;
        };
        let pool: Weak<Self> = Arc::downgrade(self);
        let every =
            (self.idle_timeout / 2).clamp(Duration::from_millis(50), Duration::from_secs(30));
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(pool) = pool.upgrade() else {
                    return;
                };
                pool.sweep();
            }
        });
    }
}
