//! Thresholds, cooldowns, order, the state map under growth and threads.

use super::*;

#[test]
fn threshold_counts_within_the_window() {
    let rules = threshold_rule(3, "60s", None);
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    let e = status(500);
    assert!(fire(&rules, &e, t0).is_empty());
    assert!(fire(&rules, &e, t0 + 10 * s).is_empty());
    // A non-matching answer neither counts nor resets.
    assert!(fire(&rules, &status(200), t0 + 11 * s).is_empty());
    assert_eq!(fire(&rules, &e, t0 + 59 * s), ["r"]);
    // Fired: the window starts over.
    assert!(fire(&rules, &e, t0 + 60 * s).is_empty());
    assert!(fire(&rules, &e, t0 + 61 * s).is_empty());
    assert_eq!(fire(&rules, &e, t0 + 62 * s), ["r"]);

    // Spread wider than the window: the oldest hits fall out.
    let rules = threshold_rule(3, "60s", None);
    for k in 0..10 {
        assert!(fire(&rules, &e, t0 + k * 40 * s).is_empty(), "hit {k}");
    }
    // Counted per credential.
    let rules = threshold_rule(2, "60s", None);
    assert!(fire(&rules, &e, t0).is_empty());
    assert!(fire(&rules, &e.clone().at("openai-main", "k2"), t0).is_empty());
    assert_eq!(fire(&rules, &e, t0 + s), ["r"]);
}

#[test]
fn cooldown_ignores_matches_then_lets_the_rule_fire_again() {
    let rules = threshold_rule(2, "60s", Some("5m"));
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    let e = status(500);
    assert!(fire(&rules, &e, t0).is_empty());
    assert_eq!(fire(&rules, &e, t0 + s), ["r"]);
    // During the cooldown matches do not count towards the next firing.
    for k in 2..10 {
        assert!(fire(&rules, &e, t0 + k * s).is_empty());
    }
    assert!(fire(&rules, &e, t0 + 301 * s).is_empty());
    assert_eq!(fire(&rules, &e, t0 + 302 * s), ["r"]);

    let every = threshold_rule(1, "60s", Some("10s"));
    assert_eq!(fire(&every, &e, t0), ["r"]);
    assert!(fire(&every, &e, t0 + 9 * s).is_empty());
    assert_eq!(fire(&every, &e, t0 + 10 * s), ["r"]);
}

#[test]
fn rules_fire_in_order_and_each_once() {
    let rules = set(r#"
- name: second-is-first
  when: { status: 429 }
  actions: [ { disable: 1m } ]
- name: off
  enabled: false
  when: { status: 429 }
  actions: [ { ban: true } ]
- name: quota
  when: { body_contains: quota }
  actions: [ { log: true } ]
"#);
    assert_eq!(rules.len(), 2);
    assert_eq!(
        fire(&rules, &status(429).body("quota"), Instant::now()),
        ["second-is-first", "quota"]
    );
}

#[test]
fn idle_state_is_swept_when_the_map_grows() {
    let rules = threshold_rule(2, "60s", Some("2m"));
    let t0 = Instant::now();
    let names: Vec<&'static str> = (0..state::SWEEP_ABOVE)
        .map(|i| &*Box::leak(format!("c{i}").into_boxed_str()))
        .collect();
    for name in &names {
        assert!(fire(&rules, &status(500).at("u", name), t0).is_empty());
    }
    // c0 fires at 30 s, so it is in cooldown (to 150 s) and must outlive the sweep.
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    assert_eq!(fire(&rules, &status(500).at("u", "c0"), at(30)), ["r"]);
    assert_eq!(rules.state.len(), state::SWEEP_ABOVE);
    // One entry more, after the others went idle (kept 120 s): swept.
    assert!(fire(&rules, &status(500).at("u", "new"), at(140)).is_empty());
    assert_eq!(rules.state.len(), 2);
    // c0's cooldown survived: ignored until 150 s, then counted afresh.
    assert!(fire(&rules, &status(500).at("u", "c0"), at(145)).is_empty());
    assert!(fire(&rules, &status(500).at("u", "c0"), at(150)).is_empty());
    assert_eq!(fire(&rules, &status(500).at("u", "c0"), at(151)), ["r"]);
}

#[test]
fn concurrent_hits_fire_exactly_once() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RuleSet>();
    let rules = threshold_rule(100, "1h", Some("1h"));
    let t0 = Instant::now();
    let fired = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for k in 0..50 {
                    let n = rules
                        .evaluate(&status(500).outcome(), t0 + Duration::from_millis(k))
                        .len();
                    fired.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(fired.into_inner(), 1);
}
