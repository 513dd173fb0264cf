//! Quota periods: `never`, `daily` and `monthly`, in the configured time zone.
//! A period has an id (`all`, `d2026-11-30`, `m2026-11`) under which its usage
//! is counted, and an end (when the quota is available again).

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

    /// Milliseconds from `now_ms` to the period's end; `None` for `never`.
    pub fn remaining_ms(&self, now_ms: i64) -> Option<i64> {
        self.ends_at
            .map(|end| (end.timestamp_millis() - now_ms).max(0))
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
    fn a_day_starting_in_a_dst_gap_still_has_a_start() {
        // America/Santiago skips 00:00–01:00 on its spring-forward day.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let p = Period::at(QuotaPeriod::Daily, ms("2026-09-06T12:00:00Z"), tz);
        assert!(p.starts_at.unwrap() < p.ends_at.unwrap());
    }
}
