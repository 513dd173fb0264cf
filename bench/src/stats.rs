//! Percentile summaries of latency samples (microseconds).

use serde_json::{Value, json};

/// Nearest-rank percentile of an ascending slice; `None` when empty.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    // Nearest rank: the smallest value with at least p% of samples at or below it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.saturating_sub(1).min(sorted.len() - 1);
    sorted.get(idx).copied()
}

/// `{count, min, p50, p90, p99, p999, max, mean}` of samples in microseconds.
/// Sorts `samples` in place.
pub fn summary(samples: &mut [u64]) -> Value {
    samples.sort_unstable();
    if samples.is_empty() {
        return json!({ "count": 0 });
    }
    let sum: u128 = samples.iter().map(|&v| u128::from(v)).sum();
    let mean = sum as f64 / samples.len() as f64;
    json!({
        "count": samples.len(),
        "min": samples.first(),
        "p50": percentile(samples, 50.0),
        "p90": percentile(samples, 90.0),
        "p99": percentile(samples, 99.0),
        "p999": percentile(samples, 99.9),
        "max": samples.last(),
        "mean": (mean * 10.0).round() / 10.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 99.9), Some(7));
    }

    #[test]
    fn summary_fields() {
        let mut v = vec![5, 1, 3, 2, 4];
        let s = summary(&mut v);
        assert_eq!(s["count"], 5);
        assert_eq!(s["min"], 1);
        assert_eq!(s["p50"], 3);
        assert_eq!(s["max"], 5);
        assert_eq!(s["mean"], 3.0);
        assert_eq!(summary(&mut [])["count"], 0);
    }
}
