//! What an upstream answer does to the credential that got it: the circuit,
//! the error counters, and the rules' (or the built-ins') actions.

use std::sync::Arc;
use std::time::Instant;

use super::circuit::CircuitChange;
use super::credential::CredentialHealth;
use super::registry::{HealthRegistry, Observed, RuleEventRecord, fmt_ms};
use super::state::CredentialState;
use crate::rules::{Firing, Outcome, RuleAction, RuleSet};

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl HealthRegistry {
    /// One upstream answer (or transport error) for `health`'s credential.
    pub fn observe(
        &self,
        rules: &RuleSet,
        health: &Arc<CredentialHealth>,
        outcome: &Outcome<'_>,
    ) -> Observed {
        let now = self.now_ms();
        let settings = self.settings();
        let mut observed = Observed::default();
        let failed = outcome.status.is_none_or(|s| s >= 500);
        if outcome.status.is_none_or(|s| s >= 400) {
            health.record_error(&error_text(outcome), now);
        }
        if failed {
            if let Some(change) = health.circuit().on_failure(now, &settings.circuit) {
                self.circuit_opened(health, change, outcome, now);
                observed.left_rotation = true;
            }
        } else if health.circuit().on_success() == Some(CircuitChange::Closed) {
            tracing::info!(
                upstream = %health.upstream(),
                credential = %health.credential(),
                "credential circuit closed: the trial request succeeded"
            );
        }
        for firing in rules.evaluate(outcome, Instant::now()) {
            observed.firings += 1;
            self.apply_firing(health, &firing, now, &mut observed);
        }
        observed
    }

    fn circuit_opened(
        &self,
        health: &CredentialHealth,
        change: CircuitChange,
        outcome: &Outcome<'_>,
        now: i64,
    ) {
        let (until_ms, what) = match change {
            CircuitChange::Opened { until_ms, failures } => {
                (until_ms, format!("{failures} failures in a row window"))
            }
            CircuitChange::Reopened { until_ms } => (until_ms, "the trial request failed".into()),
            CircuitChange::Closed => return,
        };
        let reason = format!("circuit open until {}: {what}", fmt_ms(until_ms));
        tracing::warn!(
            upstream = %health.upstream(),
            credential = %health.credential(),
            %reason,
            "credential circuit opened"
        );
        let state = health.effective_state(now);
        self.record_rule_event(RuleEventRecord {
            at_ms: now,
            rule: Arc::from("builtin:circuit"),
            upstream: Arc::clone(health.upstream()),
            credential: Arc::clone(health.credential()),
            status: outcome.status,
            excerpt: crate::rules::redact_secrets(&error_text(outcome)),
            action: format!("open circuit until {}", fmt_ms(until_ms)),
            before: state,
            after: state,
            reason,
            until_ms: Some(until_ms),
            alert: Vec::new(),
        });
    }

    fn apply_firing(
        &self,
        health: &CredentialHealth,
        firing: &Firing,
        now: i64,
        observed: &mut Observed,
    ) {
        let before = health.effective_state(now);
        let by = format!("rule:{}", firing.rule);
        let mut actions: Vec<String> = Vec::new();
        let mut alert = Vec::new();
        let mut until = None;
        for action in &firing.actions {
            match action {
                RuleAction::Ban => {
                    if health.effective_state(now) != CredentialState::Banned {
                        self.set_state(health, CredentialState::Banned, &firing.reason, None, &by);
                    }
                    actions.push("ban".into());
                }
                RuleAction::Disable(d) => {
                    let new_until = now.saturating_add(ms(*d));
                    let current = health.effective_state(now);
                    let longer_already = current == CredentialState::Disabled
                        && health.until_ms().is_some_and(|u| u >= new_until);
                    if current != CredentialState::Banned && !longer_already {
                        self.set_state(
                            health,
                            CredentialState::Disabled,
                            &firing.reason,
                            Some(new_until),
                            &by,
                        );
                        until = Some(new_until);
                    }
                    actions.push(format!("disable {}", humantime::format_duration(*d)));
                }
                RuleAction::Alert(channels) => {
                    alert.extend(channels.iter().cloned());
                    let names: Vec<&str> = channels.iter().map(|c| &**c).collect();
                    actions.push(format!("alert {}", names.join(" ")));
                }
                RuleAction::Log => {
                    tracing::warn!(
                        rule = %firing.rule,
                        upstream = %health.upstream(),
                        credential = %health.credential(),
                        status = ?firing.status,
                        reason = %firing.reason,
                        "rule fired"
                    );
                    actions.push("log".into());
                }
            }
        }
        let after = health.effective_state(now);
        if before == CredentialState::Active && after != CredentialState::Active {
            observed.left_rotation = true;
        }
        self.record_rule_event(RuleEventRecord {
            at_ms: now,
            rule: Arc::clone(&firing.rule),
            upstream: Arc::clone(health.upstream()),
            credential: Arc::clone(health.credential()),
            status: firing.status,
            excerpt: firing.excerpt.clone(),
            action: actions.join(", "),
            before,
            after,
            reason: firing.reason.clone(),
            until_ms: until.or_else(|| health.until_ms()),
            alert,
        });
    }
}

/// One line saying how an attempt failed (status and body start, or the
/// transport error), secrets redacted.
fn error_text(outcome: &Outcome<'_>) -> String {
    let text = match (outcome.status, outcome.error) {
        (Some(status), _) => {
            let body = outcome
                .body
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned())
                .unwrap_or_default();
            format!("{status} {}", body.trim())
        }
        (None, Some(e)) => e.to_string(),
        (None, None) => "no answer".to_string(),
    };
    crate::rules::redact_secrets(text.trim())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::Duration;

    use super::*;
    use crate::health::{Clock, FakeClock, HealthEvent, HealthSettings};

    fn rules(yaml: &str) -> RuleSet {
        let cfg = fastgate_config::load_str(yaml, &|_| None).unwrap();
        RuleSet::compile(&cfg.rules, &cfg.health).unwrap()
    }

    fn answer(status: u16, body: &'static [u8]) -> Outcome<'static> {
        Outcome {
            upstream: "up",
            credential: "a",
            status: Some(status),
            headers: None,
            body: Some(body),
            latency: Duration::from_millis(5),
            error: None,
        }
    }

    const UPSTREAM: &str =
        "upstreams: [ { name: up, kind: openai, base_url: \"http://127.0.0.1:9\" } ]\n";

    #[test]
    fn a_builtin_401_disables_for_an_hour_with_the_providers_message() {
        let clock = FakeClock::at(1_000_000);
        let (reg, mut rx) =
            HealthRegistry::with_clock(HealthSettings::default(), Arc::new(clock.clone()));
        let a = reg.credential("up", "a", &Default::default(), 1);
        let body = br#"{"error":{"message":"Invalid API key sk-abcdefghijklmnopqrstuvwx","type":"invalid_request_error"}}"#;
        let seen = reg.observe(&rules(UPSTREAM), &a, &answer(401, body));
        assert!(seen.left_rotation);
        assert_eq!(a.effective_state(clock.now_ms()), CredentialState::Disabled);
        assert_eq!(a.until_ms(), Some(1_000_000 + 3_600_000));
        let HealthEvent::State(t) = rx.try_recv().unwrap() else {
            panic!("state first")
        };
        assert!(t.reason.contains("Invalid API key"), "{}", t.reason);
        assert!(
            !t.reason.contains("sk-abcdefghijklmnopqrstuvwx"),
            "{}",
            t.reason
        );
        let HealthEvent::Rule(r) = rx.try_recv().unwrap() else {
            panic!("then the event")
        };
        assert_eq!(&*r.rule, "builtin:auth");
        assert_eq!(r.action, "disable 1h");
        assert_eq!(
            (r.before, r.after),
            (CredentialState::Active, CredentialState::Disabled)
        );
        clock.advance(Duration::from_secs(3600));
        assert_eq!(a.effective_state(clock.now_ms()), CredentialState::Active);
    }

    #[test]
    fn a_ban_is_not_shortened_and_a_longer_disable_is_kept() {
        let yaml = format!(
            "{UPSTREAM}rules:\n\
             - {{ name: short, when: {{ status: 500 }}, actions: [ {{ disable: 1m }} ] }}\n\
             - {{ name: long, when: {{ status: 502 }}, actions: [ {{ disable: 1h }} ] }}\n\
             - {{ name: gone, when: {{ status: 451 }}, actions: [ {{ ban: true }} ] }}\n"
        );
        let set = rules(&yaml);
        let clock = FakeClock::at(0);
        let (reg, _rx) =
            HealthRegistry::with_clock(HealthSettings::default(), Arc::new(clock.clone()));
        let a = reg.credential("up", "a", &Default::default(), 1);
        reg.observe(&set, &a, &answer(502, b""));
        reg.observe(&set, &a, &answer(500, b""));
        assert_eq!(
            a.until_ms(),
            Some(3_600_000),
            "the shorter disable keeps the longer one"
        );
        reg.observe(&set, &a, &answer(451, b""));
        assert_eq!(a.effective_state(0), CredentialState::Banned);
        reg.observe(&set, &a, &answer(500, b""));
        assert_eq!(a.effective_state(0), CredentialState::Banned, "a ban stays");
        clock.advance(Duration::from_secs(7200));
        assert_eq!(a.effective_state(clock.now_ms()), CredentialState::Banned);
    }

    #[test]
    fn transport_errors_count_and_open_the_circuit() {
        let clock = FakeClock::at(0);
        let (reg, mut rx) =
            HealthRegistry::with_clock(HealthSettings::default(), Arc::new(clock.clone()));
        let a = reg.credential("up", "a", &Default::default(), 1);
        let failure = Outcome {
            status: None,
            body: None,
            error: Some("connection refused"),
            ..answer(0, b"")
        };
        for _ in 0..5 {
            reg.observe(&RuleSet::empty(), &a, &failure);
        }
        assert_eq!(a.circuit().state(), crate::health::CircuitState::Open);
        let status = a.status(clock.now_ms(), 0);
        assert_eq!(status.errors, 5);
        assert_eq!(status.last_error.as_deref(), Some("connection refused"));
        let HealthEvent::Rule(r) = rx.try_recv().unwrap() else {
            panic!("circuit event")
        };
        assert_eq!(&*r.rule, "builtin:circuit");
        // A success in half-open closes it.
        clock.advance(Duration::from_secs(30));
        let settings = reg.settings();
        assert!(a.claim(clock.now_ms(), 0, &settings.circuit));
        reg.observe(&RuleSet::empty(), &a, &answer(200, b"{}"));
        assert_eq!(a.circuit().state(), crate::health::CircuitState::Closed);
    }
}
