//! Alerts: tell people when a credential changes state (`alerts:` channels).
//!
//! [`Alerter::notify`] is called where a rule fires or a credential is disabled by
//! hand; it never waits and never fails its caller. It checks each named channel,
//! applies the channel's `min_interval` per (channel, upstream, credential, rule),
//! and queues the event on a bounded queue. One background task (see `sender`)
//! formats each message for its platform (see `format`), POSTs it with retries,
//! and counts the outcome. Webhook URLs and signing secrets carry tokens: they
//! never reach logs, `Debug` output or statistics.

mod format;
mod sender;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use fastgate_config::{AlertConfig, AlertKind, Secret};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use sender::SendOptions;

/// A credential state change to tell the channels in `channels` about.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AlertEvent {
    /// Names of the `alerts[]` channels to notify.
    pub channels: Vec<Arc<str>>,
    /// The rule that changed the state (`builtin:auth`, `manual`, a configured rule).
    pub rule: Arc<str>,
    pub upstream: Arc<str>,
    pub credential: Arc<str>,
    /// `active`, `disabled`, `banned` or `exhausted`.
    pub state_before: String,
    pub state_after: String,
    /// Why, already redacted (e.g. `429 insufficient_quota`).
    pub reason: String,
    /// When the credential comes back by itself, if it does.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Counters since start: totals, and per channel for the channels configured now.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AlertStats {
    /// Messages the platform accepted.
    pub sent: u64,
    /// Messages given up after the last attempt (or refused outright).
    pub failed: u64,
    /// Events skipped because the same alert went out within `min_interval`.
    pub rate_limited: u64,
    /// Events dropped: queue full, sender stopped, or channel removed before sending.
    pub dropped: u64,
    /// Events naming a channel that is not configured.
    pub unknown_channel: u64,
    /// By channel name.
    pub channels: BTreeMap<String, ChannelStats>,
}

/// Counters of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ChannelStats {
    pub kind: AlertKind,
    pub sent: u64,
    pub failed: u64,
    pub rate_limited: u64,
    pub dropped: u64,
}

/// Sends alerts in the background; cheap to clone (all clones share one queue).
#[derive(Clone)]
pub struct Alerter {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Job>,
}

impl fmt::Debug for Alerter {
    /// Channel names only: URLs and secrets carry tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let channels = self.shared.channels();
        let mut names: Vec<&str> = channels.keys().map(|n| &**n).collect();
        names.sort_unstable();
        f.debug_struct("Alerter")
            .field("channels", &names)
            .field(
                "queued",
                &(self.queue.max_capacity() - self.queue.capacity()),
            )
            .finish()
    }
}

impl Alerter {
    /// Start the background sender (one tokio task) for these channels; it stops when
    /// `cancel` fires, finishing nothing more than the request in progress (alerts
    /// still queued are counted as dropped). Call inside a tokio runtime.
    pub fn start(channels: &[AlertConfig], cancel: CancellationToken) -> (Self, JoinHandle<()>) {
        Self::start_with(channels, cancel, SendOptions::default())
    }

    pub(crate) fn start_with(
        channels: &[AlertConfig],
        cancel: CancellationToken,
        options: SendOptions,
    ) -> (Self, JoinHandle<()>) {
        let shared = Arc::new(Shared {
            channels: RwLock::new(Arc::new(build_channels(channels, &HashMap::new()))),
            recent: Mutex::new(HashMap::new()),
            totals: Totals::default(),
        });
        let (queue, jobs) = mpsc::channel(options.queue_capacity.max(1));
        let task = tokio::spawn(sender::run(Arc::clone(&shared), jobs, cancel, options));
        (Self { shared, queue }, task)
    }

    /// Replace the channel set after a config reload. Channels not present any more
    /// are dropped (with their pending rate limits); counters of names kept go on.
    pub fn update(&self, channels: &[AlertConfig]) {
        let mut slot = self
            .shared
            .channels
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let next = Arc::new(build_channels(channels, &slot));
        self.shared
            .recent_lock()
            .retain(|key, _| next.contains_key(&key.channel));
        *slot = next;
    }

    /// Queue an alert for each of `event.channels`; never blocks, never fails the
    /// caller. Unknown channels, rate-limited repeats and a full queue are counted
    /// and skipped.
    pub fn notify(&self, event: AlertEvent) {
        let channels = self.shared.channels();
        let event = Arc::new(event);
        let mut seen = HashSet::with_capacity(event.channels.len());
        for name in &event.channels {
            if !seen.insert(name) {
                continue;
            }
            let Some(channel) = channels.get(name) else {
                tracing::debug!(channel = %name, rule = %event.rule, "alert for an unknown channel skipped");
                self.shared
                    .totals
                    .unknown_channel
                    .fetch_add(1, Ordering::Relaxed);
                suppressed_metric(name, "unknown_channel");
                continue;
            };
            self.enqueue(channel, &event);
        }
    }

    /// Rate limit and queue in one critical section, so an event the queue refuses
    /// does not hold back the next one.
    fn enqueue(&self, channel: &Arc<Channel>, event: &Arc<AlertEvent>) {
        let key = RateKey {
            channel: Arc::clone(&channel.name),
            upstream: Arc::clone(&event.upstream),
            credential: Arc::clone(&event.credential),
            rule: Arc::clone(&event.rule),
        };
        let now = Instant::now();
        let mut recent = self.shared.recent_lock();
        if recent.get(&key).is_some_and(|until| *until > now) {
            channel
                .counters
                .rate_limited
                .fetch_add(1, Ordering::Relaxed);
            self.shared
                .totals
                .rate_limited
                .fetch_add(1, Ordering::Relaxed);
            suppressed_metric(&channel.name, "rate_limited");
            return;
        }
        let job = Job {
            channel: Arc::clone(&channel.name),
            event: Arc::clone(event),
        };
        match self.queue.try_send(job) {
            Ok(()) => {
                if !channel.min_interval.is_zero() {
                    if recent.len() >= PRUNE_AT {
                        recent.retain(|_, until| *until > now);
                    }
                    recent.insert(key, now + channel.min_interval);
                }
            }
            Err(e) => {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "queue full",
                    mpsc::error::TrySendError::Closed(_) => "sender stopped",
                };
                tracing::warn!(channel = %channel.name, rule = %event.rule, "alert dropped: {why}");
                self.shared.count_dropped(Some(channel));
            }
        }
    }

    /// Counters for tests and the admin API.
    pub fn stats(&self) -> AlertStats {
        let t = &self.shared.totals;
        let channels = self.shared.channels();
        AlertStats {
            sent: t.sent.load(Ordering::Relaxed),
            failed: t.failed.load(Ordering::Relaxed),
            rate_limited: t.rate_limited.load(Ordering::Relaxed),
            dropped: t.dropped.load(Ordering::Relaxed),
            unknown_channel: t.unknown_channel.load(Ordering::Relaxed),
            channels: channels
                .values()
                .map(|c| (c.name.to_string(), c.stats()))
                .collect(),
        }
    }
}

/// Rate-limit entries are pruned of expired ones when the map reaches this size.
const PRUNE_AT: usize = 1024;

/// State shared by the handles and the sender task (which holds no queue sender, so
/// the queue closes when the last handle goes).
struct Shared {
    channels: RwLock<Arc<ChannelMap>>,
    /// Until when each (channel, upstream, credential, rule) stays quiet.
    recent: Mutex<HashMap<RateKey, Instant>>,
    totals: Totals,
}

impl Shared {
    fn channels(&self) -> Arc<ChannelMap> {
        Arc::clone(&self.channels.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn recent_lock(&self) -> std::sync::MutexGuard<'_, HashMap<RateKey, Instant>> {
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count_dropped(&self, channel: Option<&Channel>) {
        self.totals.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(channel) = channel {
            channel.counters.dropped.fetch_add(1, Ordering::Relaxed);
            suppressed_metric(&channel.name, "dropped");
        }
    }
}

type ChannelMap = HashMap<Arc<str>, Arc<Channel>>;

#[derive(Default)]
struct Totals {
    sent: AtomicU64,
    failed: AtomicU64,
    rate_limited: AtomicU64,
    dropped: AtomicU64,
    unknown_channel: AtomicU64,
}

#[derive(Default)]
struct ChannelCounters {
    sent: AtomicU64,
    failed: AtomicU64,
    rate_limited: AtomicU64,
    dropped: AtomicU64,
}

/// One configured channel, ready to send to.
struct Channel {
    name: Arc<str>,
    kind: AlertKind,
    /// `None` when the configured URL is not an http(s) URL (validation refuses
    /// those; a channel built without validation fails its sends instead).
    url: Option<Secret<url::Url>>,
    secret: Option<Secret<String>>,
    min_interval: Duration,
    counters: Arc<ChannelCounters>,
}

impl Channel {
    fn stats(&self) -> ChannelStats {
        let c = &self.counters;
        ChannelStats {
            kind: self.kind,
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("signed", &self.secret.is_some())
            .field("min_interval", &self.min_interval)
            .finish_non_exhaustive()
    }
}

/// Channels from configuration; counters of names already in `previous` carry over.
/// The first of duplicate names wins (validation refuses duplicates).
fn build_channels(configs: &[AlertConfig], previous: &ChannelMap) -> ChannelMap {
    let mut map = ChannelMap::with_capacity(configs.len());
    for c in configs {
        let name: Arc<str> = Arc::from(c.name.as_str());
        if map.contains_key(&name) {
            continue;
        }
        let url = url::Url::parse(c.url.expose())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .map(|mut u| {
                u.set_fragment(None);
                Secret::new(u)
            });
        if url.is_none() {
            tracing::warn!(channel = %name, "alert channel URL is not an http(s) URL; its alerts will fail");
        }
        let counters = previous
            .get(&name)
            .map_or_else(Arc::default, |p| Arc::clone(&p.counters));
        let channel = Channel {
            name: Arc::clone(&name),
            kind: c.kind,
            url,
            secret: c.secret.clone(),
            min_interval: c.min_interval,
            counters,
        };
        map.insert(name, Arc::new(channel));
    }
    map
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RateKey {
    channel: Arc<str>,
    upstream: Arc<str>,
    credential: Arc<str>,
    rule: Arc<str>,
}

/// One message to send: the channel is looked up again when sending, so a reload
/// that replaces its URL applies to alerts already queued.
struct Job {
    channel: Arc<str>,
    event: Arc<AlertEvent>,
}

fn kind_label(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Webhook => "webhook",
        AlertKind::Feishu => "feishu",
        AlertKind::Dingtalk => "dingtalk",
        AlertKind::Wecom => "wecom",
        AlertKind::Slack => "slack",
    }
}

fn suppressed_metric(channel: &Arc<str>, reason: &'static str) {
    metrics::counter!(
        "fastgate_alerts_suppressed_total",
        "channel" => metrics::SharedString::from(Arc::clone(channel)),
        "reason" => reason
    )
    .increment(1);
}
