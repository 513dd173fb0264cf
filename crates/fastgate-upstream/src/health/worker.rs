//! The health worker: stores state changes and rule events in the database
//! (where the fleet picks them up), sends alerts, writes each credential's
//! counters in batches and reads the fleet's back, and exports the health
//! metrics. One task per instance; nothing here runs on the request path.

use std::sync::Arc;
use std::time::Duration;

use fastgate_store::{CredentialStateRow, CredentialUsageDelta, NewRuleEvent, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::credential::StoredUsage;
use super::registry::{HealthEvent, HealthRegistry, RuleEventRecord, StoredState};
use super::state::{CredentialState, Transition};
use crate::alerts::{AlertEvent, Alerter};

/// Events handled per database round trip at most.
const BATCH: usize = 256;

pub struct HealthWorker {
    pub registry: Arc<HealthRegistry>,
    pub store: Store,
    pub alerter: Option<Alerter>,
    /// Names this instance in `rule_events.instance`.
    pub instance: String,
    pub flush_every: Duration,
}

impl HealthWorker {
    pub fn spawn(
        self,
        mut events: mpsc::Receiver<HealthEvent>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.flush_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    n = events.recv_many(&mut batch, BATCH) => {
                        if n == 0 {
                            break;
                        }
                        self.handle(std::mem::take(&mut batch)).await;
                    }
                    _ = tick.tick() => self.sync_usage().await,
                }
            }
            // What is queued at shutdown is still stored.
            events.close();
            while events.recv_many(&mut batch, BATCH).await > 0 {
                self.handle(std::mem::take(&mut batch)).await;
            }
            self.sync_usage().await;
        })
    }

    async fn handle(&self, events: Vec<HealthEvent>) {
        let mut rule_rows = Vec::new();
        for event in events {
            match event {
                HealthEvent::State(t) => {
                    if let Err(e) = self.store.set_credential_state(&state_row(&t)).await {
                        tracing::warn!(error = %e, upstream = %t.upstream, credential = %t.credential, "storing a credential state failed");
                    }
                }
                HealthEvent::Rule(r) => {
                    self.alert(&r);
                    rule_rows.push(rule_row(&r, &self.instance));
                }
            }
        }
        if !rule_rows.is_empty()
            && let Err(e) = self.store.insert_rule_events(&rule_rows).await
        {
            tracing::warn!(error = %e, events = rule_rows.len(), "storing rule events failed");
        }
    }

    fn alert(&self, r: &RuleEventRecord) {
        let Some(alerter) = &self.alerter else { return };
        if r.alert.is_empty() {
            return;
        }
        alerter.notify(AlertEvent {
            channels: r.alert.clone(),
            rule: Arc::clone(&r.rule),
            upstream: Arc::clone(&r.upstream),
            credential: Arc::clone(&r.credential),
            state_before: r.before.to_string(),
            state_after: r.after.to_string(),
            reason: r.reason.clone(),
            until: r.until_ms.and_then(chrono::DateTime::from_timestamp_millis),
            at: chrono::DateTime::from_timestamp_millis(r.at_ms).unwrap_or_else(chrono::Utc::now),
        });
    }

    /// Write this instance's new counters, read the fleet's, export metrics.
    async fn sync_usage(&self) {
        let day = self.registry.quota_day();
        let deltas: Vec<CredentialUsageDelta> = self
            .registry
            .take_usage()
            .into_iter()
            .map(|(h, d)| CredentialUsageDelta {
                upstream: h.upstream().to_string(),
                credential: h.credential().to_string(),
                requests: d.requests,
                errors: d.errors,
                tokens: d.tokens,
                last_error: d.last_error,
                last_error_at_ms: d.last_error_at_ms,
                last_used_at_ms: d.last_used_at_ms,
                quota_day: day.label.clone(),
            })
            .collect();
        if !deltas.is_empty()
            && let Err(e) = self.store.add_credential_usage(&deltas).await
        {
            tracing::warn!(error = %e, "storing credential counters failed");
        }
        match self.store.list_credential_usage().await {
            Ok(rows) => {
                let usage: Vec<(String, String, StoredUsage)> = rows
                    .into_iter()
                    .map(|r| {
                        let current = r.quota_day == day.label;
                        (
                            r.upstream,
                            r.credential,
                            StoredUsage {
                                requests: r.requests,
                                errors: r.errors,
                                tokens: r.tokens,
                                last_error: r.last_error,
                                last_error_at_ms: r.last_error_at_ms,
                                last_used_at_ms: r.last_used_at_ms,
                                is_current_day: current,
                                day_requests: r.day_requests,
                                day_tokens: r.day_tokens,
                            },
                        )
                    })
                    .collect();
                self.registry.apply_stored_usage(&usage);
            }
            Err(e) => tracing::debug!(error = %e, "reading credential counters failed"),
        }
        export_metrics(&self.registry);
    }
}

/// Read the stored states into the registry (start-up, and each time the
/// fleet changed one).
pub async fn load_states(
    registry: &HealthRegistry,
    store: &Store,
) -> Result<(), fastgate_store::StoreError> {
    let rows = store.list_credential_states().await?;
    let states: Vec<StoredState> = rows
        .into_iter()
        .filter_map(|r| {
            Some(StoredState {
                state: CredentialState::parse(&r.state)?,
                upstream: r.upstream,
                credential: r.credential,
                reason: r.reason,
                since_ms: r.since_ms,
                until_ms: r.until_ms,
                changed_by: r.changed_by,
            })
        })
        .collect();
    registry.apply_stored_states(&states);
    Ok(())
}

fn state_row(t: &Transition) -> CredentialStateRow {
    CredentialStateRow {
        upstream: t.upstream.to_string(),
        credential: t.credential.to_string(),
        state: t.after.to_string(),
        reason: t.reason.clone(),
        since_ms: t.since_ms,
        until_ms: t.until_ms,
        changed_by: t.changed_by.clone(),
        updated_at_ms: t.since_ms,
    }
}

fn rule_row(r: &RuleEventRecord, instance: &str) -> NewRuleEvent {
    NewRuleEvent {
        at_ms: r.at_ms,
        rule: r.rule.to_string(),
        upstream: r.upstream.to_string(),
        credential: r.credential.to_string(),
        status: r.status,
        excerpt: r.excerpt.clone(),
        action: r.action.clone(),
        state_before: r.before.to_string(),
        state_after: r.after.to_string(),
        instance: instance.to_string(),
    }
}

/// Credential state and circuit gauges, selections and errors counters.
pub fn export_metrics(registry: &HealthRegistry) {
    let now = registry.now_ms();
    let day = registry.quota_day().number;
    for h in registry.all() {
        let status = h.status(now, day);
        let labels = [
            ("upstream", h.upstream().to_string()),
            ("credential", h.credential().to_string()),
        ];
        for s in [
            CredentialState::Active,
            CredentialState::Disabled,
            CredentialState::Banned,
            CredentialState::Exhausted,
        ] {
            let mut l = labels.to_vec();
            l.push(("state", s.to_string()));
            metrics::gauge!("fastgate_credential_state", &l).set(if status.state == s {
                1.0
            } else {
                0.0
            });
        }
        let circuit = match status.circuit {
            super::CircuitState::Closed => 0.0,
            super::CircuitState::HalfOpen => 1.0,
            super::CircuitState::Open => 2.0,
        };
        metrics::gauge!("fastgate_credential_circuit", &labels).set(circuit);
        metrics::gauge!("fastgate_credential_in_flight", &labels).set(f64::from(status.in_flight));
        metrics::counter!("fastgate_credential_selections_total", &labels)
            .absolute(status.requests);
        metrics::counter!("fastgate_credential_errors_total", &labels).absolute(status.errors);
    }
}
