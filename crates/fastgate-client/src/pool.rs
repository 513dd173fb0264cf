//! Idle keep-alive connections, per upstream host.
//!
//! Nothing drives an idle connection: when one is taken out, it is polled once
//! (without a waker) so a close or reset the upstream sent meanwhile is seen,
//! and it is dropped if so or if it waited longer than the idle timeout. A
//! sweeper task (one per pool, started with the first request) closes the
//! expired and dead ones of hosts nobody asks for any more.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use http::HeaderValue;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use crate::RequestBody;
use crate::connect::Stream;

/// What drives a connection: reads and writes its socket.
pub(crate) type Driver = http1::Connection<TokioIo<Stream>, RequestBody>;

/// One upstream connection: the handle requests are sent on, and its driver.
pub(crate) struct Conn {
    pub(crate) sender: http1::SendRequest<RequestBody>,
    pub(crate) driver: Driver,
    idle_since: Instant,
}

impl Conn {
    pub(crate) fn new(sender: http1::SendRequest<RequestBody>, driver: Driver) -> Box<Self> {
        Box::new(Self {
            sender,
            driver,
            idle_since: Instant::now(),
        })
    }

    /// Can another request be sent on it? Polled without a waker: nobody is
    /// waiting on an idle connection.
    pub(crate) fn is_reusable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        !drive(&mut self.driver, &mut cx) && self.sender.is_ready()
    }
}

/// Make what progress the socket allows; `true` once the connection is finished.
pub(crate) fn drive(driver: &mut Driver, cx: &mut Context<'_>) -> bool {
    match Pin::new(driver).poll(cx) {
        Poll::Pending => false,
        Poll::Ready(Ok(())) => true,
        Poll::Ready(Err(e)) => {
            tracing::debug!(error = %e, "upstream connection failed");
            true
        }
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
