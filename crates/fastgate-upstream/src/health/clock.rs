//! Time for credential health: a clock that tests can move, and the daily quota
//! day (its label and when it ends) in the configured time zone.

use chrono::{Datelike, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

// One clock for every time-driven part of the gateway (limits and health), so a
// test's fake clock moves both.
pub use fastgate_limits::clock::{Clock, FakeClock, SystemClock};

/// When daily quotas reset: an hour of the day in a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySchedule {
    pub tz: Tz,
    pub reset_hour: u8,
}

impl Default for DaySchedule {
    fn default() -> Self {
        Self {
            tz: Tz::UTC,
            reset_hour: 0,
        }
    }
}

/// One quota day: its number (days since 1 CE), its label and when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDay {
    pub number: i64,
    pub label: String,
    pub ends_ms: i64,
}

impl DaySchedule {
    /// From the config's `timezone` name and `health.quota_reset_hour`
    /// (validated; an unknown zone falls back to UTC).
    pub fn new(timezone: &str, reset_hour: u8) -> Self {
        Self {
            tz: timezone.parse().unwrap_or(Tz::UTC),
            reset_hour: reset_hour.min(23),
        }
    }

    /// The quota day `now_ms` falls in: a day runs from `reset_hour` local
    /// time to `reset_hour` the next day.
    pub fn day_at(&self, now_ms: i64) -> QuotaDay {
        let utc = Utc
            .timestamp_millis_opt(now_ms)
            .single()
            .unwrap_or_else(Utc::now);
        let local = utc.with_timezone(&self.tz);
        let shifted = local.naive_local() - Duration::hours(i64::from(self.reset_hour));
        let date = shifted.date();
        let next = date.succ_opt().unwrap_or(date);
        QuotaDay {
            number: i64::from(date.num_days_from_ce()),
            label: date.format("%Y-%m-%d").to_string(),
            ends_ms: self.reset_at(next),
        }
    }

    /// The instant `date` starts: `reset_hour` local time on it (the first
    /// valid instant after a daylight-saving gap).
    fn reset_at(&self, date: NaiveDate) -> i64 {
        let hour = u32::from(self.reset_hour);
        for extra in 0..3 {
            let Some(naive) = date.and_hms_opt((hour + extra).min(23), 0, 0) else {
                continue;
            };
            match self.tz.from_local_datetime(&naive) {
                LocalResult::Single(t) => return t.timestamp_millis(),
                LocalResult::Ambiguous(early, _) => return early.timestamp_millis(),
                LocalResult::None => {}
            }
        }
        // No zone skips three hours: this is not reached; midnight UTC as a floor.
        date.and_hms_opt(0, 0, 0)
            .map_or(0, |n| Utc.from_utc_datetime(&n).timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn utc_midnight_days() {
        let d = DaySchedule::new("UTC", 0).day_at(ms("2026-11-30T23:59:59Z"));
        assert_eq!(d.label, "2026-11-30");
        assert_eq!(d.ends_ms, ms("2026-12-01T00:00:00Z"));
    }

    #[test]
    fn shanghai_reset_at_eight() {
        let s = DaySchedule::new("Asia/Shanghai", 8);
        // 07:59 Shanghai on Dec 1 still belongs to Nov 30's quota day.
        let d = s.day_at(ms("2026-11-30T23:59:00Z"));
        assert_eq!(d.label, "2026-11-30");
        assert_eq!(d.ends_ms, ms("2026-12-01T00:00:00Z"));
        let d2 = s.day_at(ms("2026-12-01T00:00:00Z"));
        assert_eq!(d2.label, "2026-12-01");
        assert_eq!(d2.number, d.number + 1);
    }

    #[test]
    fn dst_day_is_23_hours() {
        let s = DaySchedule::new("Europe/Berlin", 0);
        let d = s.day_at(ms("2026-03-29T12:00:00Z"));
        assert_eq!(d.label, "2026-03-29");
        assert_eq!(d.ends_ms, ms("2026-03-29T22:00:00Z"));
    }

    #[test]
    fn fake_clock_moves_only_when_told() {
        let c = FakeClock::at(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(std::time::Duration::from_secs(2));
        assert_eq!(c.now_ms(), 3_000);
    }
}
