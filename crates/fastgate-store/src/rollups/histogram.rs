//! The fixed latency histogram of the rollups: 24 log-scale buckets from under
//! 1 ms to 60 s and more. Percentiles merge histograms by adding them, so they are
//! exact to the bucket: the bucket reported holds the true percentile.

/// Exclusive upper bounds (ms) of buckets `0..BUCKETS - 1`; the last bucket holds
/// everything from 60 s up. Migration 0008 repeats them in a comment.
pub const BOUNDS_MS: [u64; BUCKETS - 1] = [
    1, 2, 4, 8, 15, 25, 50, 75, 100, 150, 250, 400, 600, 1000, 1500, 2500, 4000, 6000, 10_000,
    15_000, 25_000, 40_000, 60_000,
];

/// Number of buckets (columns `lat_00..lat_23` and `ttfb_00..ttfb_23`).
pub const BUCKETS: usize = 24;

/// A histogram: counts per bucket.
pub type Histogram = [u64; BUCKETS];

/// The bucket of a duration in ms: the first whose bound is above it. Negative
/// values land in the first bucket, NaN in the last (callers pass finite values).
pub fn bucket_of(ms: f64) -> usize {
    BOUNDS_MS
        .iter()
        .position(|&bound| ms < bound as f64)
        .unwrap_or(BUCKETS - 1)
}

/// The bucket holding the nearest-rank percentile `per_mille`/1000 (e.g. 500 for
/// p50, 950 for p95): the first bucket whose running count reaches
/// `ceil(n * per_mille / 1000)`. `None` for an empty histogram.
pub fn percentile_bucket(hist: &Histogram, per_mille: u64) -> Option<usize> {
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return None;
    }
    let rank = (u128::from(n) * u128::from(per_mille))
        .div_ceil(1000)
        .max(1);
    let mut seen = 0u128;
    for (i, &count) in hist.iter().enumerate() {
        seen += u128::from(count);
        if seen >= rank {
            return Some(i);
        }
    }
    Some(BUCKETS - 1)
}

/// How a bucket is reported as one number: its exclusive upper bound in ms, or
/// for the last, open bucket its lower bound (60000: "60 s or more").
pub fn bucket_value_ms(bucket: usize) -> u64 {
    BOUNDS_MS
        .get(bucket)
        .or(BOUNDS_MS.last())
        .copied()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_rise_and_buckets_cover_everything() {
        assert!(BOUNDS_MS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(0.999), 0);
        assert_eq!(bucket_of(1.0), 1);
        assert_eq!(bucket_of(-5.0), 0);
        assert_eq!(bucket_of(f64::NAN), BUCKETS - 1);
        assert_eq!(bucket_of(99.9), 8);
        assert_eq!(bucket_of(100.0), 9);
        assert_eq!(bucket_of(59_999.0), BUCKETS - 2);
        assert_eq!(bucket_of(60_000.0), BUCKETS - 1);
        assert_eq!(bucket_of(1e12), BUCKETS - 1);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut h = [0u64; BUCKETS];
        assert_eq!(percentile_bucket(&h, 500), None);
        h[3] = 1;
        assert_eq!(percentile_bucket(&h, 500), Some(3));
        assert_eq!(percentile_bucket(&h, 950), Some(3));
        // 10 values: p50 is the 5th, p95 the 10th.
        h[3] = 5;
        h[7] = 4;
        h[20] = 1;
        assert_eq!(percentile_bucket(&h, 500), Some(3));
        assert_eq!(percentile_bucket(&h, 950), Some(20));
        h[3] = 4;
        h[7] = 5;
        assert_eq!(percentile_bucket(&h, 500), Some(7));
        assert_eq!(bucket_value_ms(0), 1);
        assert_eq!(bucket_value_ms(BUCKETS - 1), 60_000);
    }
}
