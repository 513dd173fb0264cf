//! Quota periods: `never`, `daily` and `monthly`, in the configured time zone.
//! A period has an id (`all`, `d2026-11-30`, `m2026-11`) under which its usage
//! is counted, and an end (when the quota is available again).

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Datelike, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use fastgate_auth::QuotaPeriod;
use serde::Serialize;

/// One quota period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Period {
    /// Counting id: `all` for `never`, `d2026-11-30`, `m2026-11`.
    pub id: String,
    /// `never`, `daily` or `monthly`.
    #[schema(value_type = String)]
    pub kind: &'static str,
    pub starts_at: Option<DateTime<Utc>>,
    /// When the next period starts; `None` for `never`.
    pub ends_at: Option<DateTime<Utc>>,
}

impl Period {
    /// The period of `kind` that `now_ms` falls in, in `tz`.
    pub fn at(kind: QuotaPeriod, now_ms: i64, tz: Tz) -> Self {
        let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let local = now.with_timezone(&tz).date_naive();
        match kind {
            QuotaPeriod::Never => Self {
                id: "all".into(),
                kind: "never",
                starts_at: None,
                ends_at: None,
            },
            QuotaPeriod::Daily => Self {
                id: format!("d{}", local.format("%Y-%m-%d")),
                kind: "daily",
                starts_at: Some(start_of(local, tz)),
                ends_at: local.succ_opt().map(|d| start_of(d, tz)),
            },
            QuotaPeriod::Monthly => {
                let first = local.with_day(1).unwrap_or(local);
                let next = if first.month() == 12 {
                    NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
                };
                Self {
                    id: format!("m{}", first.format("%Y-%m")),
                    kind: "monthly",
                    starts_at: Some(start_of(first, tz)),
                    ends_at: next.map(|d| start_of(d, tz)),
                }
            }
        }
    }

    /// Is `now_ms` inside this period? (`never` holds every instant.)
    pub fn contains(&self, now_ms: i64) -> bool {
        self.starts_at
            .is_none_or(|s| s.timestamp_millis() <= now_ms)
            && self.ends_at.is_none_or(|e| now_ms < e.timestamp_millis())
    }

    /// Milliseconds from `now_ms` to the period's end; `None` for `never`.
    pub fn remaining_ms(&self, now_ms: i64) -> Option<i64> {
        self.ends_at
            .map(|end| (end.timestamp_millis() - now_ms).max(0))
    }
}

/// The current daily and monthly periods, worked out once per period and zone:
/// [`Period::at`] (the zone's conversion, the id's formatting) cost 2.3k
/// instructions on every request of a key with a quota (callgrind, a32), and a
/// period lasts a day or a month. Lock-free: readers load the last period of the
/// kind; whoever finds it stale (the period or the zone changed) stores the new one.
#[derive(Default)]
pub(crate) struct PeriodCache {
    daily: ArcSwapOption<(Tz, Period)>,
    monthly: ArcSwapOption<(Tz, Period)>,
}

impl PeriodCache {
    /// The same as [`Period::at`].
    pub(crate) fn at(&self, kind: QuotaPeriod, now_ms: i64, tz: Tz) -> Period {
        let slot = match kind {
            QuotaPeriod::Never => return Period::at(kind, now_ms, tz),
            QuotaPeriod::Daily => &self.daily,
            QuotaPeriod::Monthly => &self.monthly,
        };
        if let Some(last) = slot.load().as_deref()
            && last.0 == tz
            && last.1.contains(now_ms)
        {
            return last.1.clone();
        }
        let period = Period::at(kind, now_ms, tz);
        slot.store(Some(Arc::new((tz, period.clone()))));
        period
    }
}

/// The first instant of `date` in `tz` (a day that starts in a DST gap starts
/// at the gap's end; an ambiguous start takes the earlier instant).
fn start_of(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => (1..=3)
            .find_map(|h| {
                tz.from_local_datetime(&(midnight + chrono::Duration::hours(h)))
                    .earliest()
            })
            .map_or_else(
                || Utc.from_utc_datetime(&midnight),
                |t| t.with_timezone(&Utc),
            ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn daily_periods_follow_the_time_zone() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        // 2026-11-29T17:00Z is 01:00 on the 30th in Shanghai.
        let p = Period::at(QuotaPeriod::Daily, ms("2026-11-29T17:00:00Z"), tz);
        assert_eq!(p.id, "d2026-11-30");
        assert_eq!(
            p.starts_at.unwrap().to_rfc3339(),
            "2026-11-29T16:00:00+00:00"
        );
        assert_eq!(p.ends_at.unwrap().to_rfc3339(), "2026-11-30T16:00:00+00:00");
        let utc = Period::at(QuotaPeriod::Daily, ms("2026-11-29T17:00:00Z"), Tz::UTC);
        assert_eq!(utc.id, "d2026-11-29");
        assert_eq!(
            utc.remaining_ms(ms("2026-11-29T17:00:00Z")),
            Some(7 * 3_600_000)
        );
    }

    #[test]
    fn monthly_periods_roll_over_the_year() {
        let p = Period::at(QuotaPeriod::Monthly, ms("2026-12-31T23:59:59Z"), Tz::UTC);
        assert_eq!(p.id, "m2026-12");
        assert_eq!(p.ends_at.unwrap().to_rfc3339(), "2027-01-01T00:00:00+00:00");
        let never = Period::at(QuotaPeriod::Never, 0, Tz::UTC);
        assert_eq!((never.id.as_str(), never.ends_at), ("all", None));
        assert_eq!(never.remaining_ms(5), None);
    }

    #[test]
    fn the_cache_answers_as_period_at_across_boundaries_and_zones() {
        let cache = PeriodCache::default();
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
        // Each step moves across a day, a month or a zone, or stays inside the last
        // period: the cached answer must equal a fresh one every time.
        let steps = [
            ("2026-11-29T15:59:59.999Z", Tz::UTC),
            ("2026-11-29T16:00:00Z", Tz::UTC),
            ("2026-11-29T23:59:59.999Z", Tz::UTC),
            ("2026-11-30T00:00:00Z", Tz::UTC),
            ("2026-11-30T00:00:00Z", shanghai),
            ("2026-11-30T15:59:59.999Z", shanghai),
            ("2026-11-30T16:00:00Z", shanghai),
            ("2026-11-30T23:59:59.999Z", Tz::UTC),
            ("2026-12-01T00:00:00Z", Tz::UTC),
            ("2026-11-30T12:00:00Z", Tz::UTC),
            ("2026-12-31T23:59:59.999Z", Tz::UTC),
            ("2027-01-01T00:00:00Z", Tz::UTC),
        ];
        for kind in [QuotaPeriod::Daily, QuotaPeriod::Monthly, QuotaPeriod::Never] {
            for (at, tz) in steps {
                let now = ms(at);
                let fresh = Period::at(kind, now, tz);
                assert_eq!(cache.at(kind, now, tz), fresh, "{kind:?} at {at} in {tz}");
                assert_eq!(cache.at(kind, now, tz), fresh, "{kind:?} again at {at}");
                assert!(fresh.contains(now));
            }
        }
    }

    #[test]
    fn a_period_holds_its_start_but_not_its_end() {
        let p = Period::at(QuotaPeriod::Daily, ms("2026-11-29T12:00:00Z"), Tz::UTC);
        assert!(p.contains(ms("2026-11-29T00:00:00Z")));
        assert!(!p.contains(ms("2026-11-28T23:59:59.999Z")));
        assert!(!p.contains(ms("2026-11-30T00:00:00Z")));
        assert!(Period::at(QuotaPeriod::Never, 0, Tz::UTC).contains(i64::MIN));
    }

    #[test]
    fn a_day_starting_in_a_dst_gap_still_has_a_start() {
        // America/Santiago skips 00:00–01:00 on its spring-forward day.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let p = Period::at(QuotaPeriod::Daily, ms("2026-09-06T12:00:00Z"), tz);
        assert!(p.starts_at.unwrap() < p.ends_at.unwrap());
    }
}
