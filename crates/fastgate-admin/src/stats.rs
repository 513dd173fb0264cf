//! `/admin/api/stats/*`: request statistics read from the audit rollups (never
//! from the raw audit rows): a summary of a range, a time series, top lists.
//!
//! `from`/`to` are RFC 3339 times (default: the last 24 hours); the range is
//! widened to whole minutes (whole buckets for a time series). Filters `key`,
//! `route`, `model` and `upstream` are exact matches.

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Duration, Utc};
use fastgate_proxy::AppState;
use fastgate_store::rollups::series_points;
use fastgate_store::{Grain, MAX_SERIES_POINTS, StatsFilter, StatsTotals, TopBy};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::AdminError;

/// Entries of a top list when `limit` is absent, and the most accepted.
const DEFAULT_TOP: u32 = 10;
const MAX_TOP: u32 = 100;
/// The default range: the last 24 hours.
const DEFAULT_HOURS: i64 = 24;
/// Longest filter value accepted.
const MAX_FILTER: usize = 512;

/// The query string of the three endpoints; each ignores what it does not use.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub key: Option<String>,
    pub route: Option<String>,
    pub model: Option<String>,
    pub upstream: Option<String>,
    /// Time series: `minute`, `hour` (default) or `day`.
    pub bucket: Option<String>,
    /// Top lists: `key`, `model`, `route`, `upstream`, `path` or `status`.
    pub by: Option<String>,
    /// Top lists: 1 to 100, default 10.
    pub limit: Option<String>,
}

/// A validated range and filter.
struct Scope {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    filter: StatsFilter,
}

fn parse_time(field: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, AdminError> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| AdminError::field(field, format!("expected an RFC 3339 time: {e}")))
        })
        .transpose()
}

fn filter_value(field: &str, v: Option<&String>) -> Result<Option<String>, AdminError> {
    match v.filter(|s| !s.is_empty()) {
        Some(s) => {
            crate::validate::text(field, s, MAX_FILTER)?;
            Ok(Some(s.clone()))
        }
        None => Ok(None),
    }
}

impl StatsQuery {
    fn scope(&self) -> Result<Scope, AdminError> {
        let to = parse_time("to", self.to.as_deref())?.unwrap_or_else(Utc::now);
        let from = parse_time("from", self.from.as_deref())?
            .unwrap_or_else(|| to - Duration::hours(DEFAULT_HOURS));
        if from >= to {
            return Err(AdminError::field("from", "must be before to"));
        }
        Ok(Scope {
            from,
            to,
            filter: StatsFilter {
                key_id: filter_value("key", self.key.as_ref())?,
                route: filter_value("route", self.route.as_ref())?,
                model: filter_value("model", self.model.as_ref())?,
                upstream: filter_value("upstream", self.upstream.as_ref())?,
            },
        })
    }

    fn grain(&self) -> Result<Grain, AdminError> {
        match self.bucket.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(Grain::Hour),
            Some(b) => Grain::parse(b).ok_or_else(|| {
                AdminError::field("bucket", format!("expected minute, hour or day, got {b:?}"))
            }),
        }
    }

    fn top_by(&self) -> Result<TopBy, AdminError> {
        let expected = "expected key, model, route, upstream, path or status";
        match self.by.as_deref().filter(|s| !s.is_empty()) {
            None => Err(AdminError::field("by", format!("required: {expected}"))),
            Some(b) => TopBy::parse(b)
                .ok_or_else(|| AdminError::field("by", format!("{expected}, got {b:?}"))),
        }
    }

    fn limit(&self) -> Result<u32, AdminError> {
        let Some(raw) = self.limit.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(DEFAULT_TOP);
        };
        raw.parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_TOP).contains(n))
            .ok_or_else(|| {
                AdminError::field("limit", format!("expected an integer from 1 to {MAX_TOP}"))
            })
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// USD from nano-USD (display only: `cost_nanos` is the exact figure).
fn usd(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// The figures shared by a summary, a point and a top entry.
fn totals_json(t: &StatsTotals) -> Map<String, Value> {
    let figures = json!({
        "requests": t.requests,
        "success_rate": t.success_rate(),
        "errors": {
            "total": t.errors,
            "4xx": t.status_4xx,
            "5xx": t.status_5xx,
            "gateway": t.gateway_errors,
        },
        "latency_ms": {
            "avg": t.avg_latency_ms(),
            "p50": t.latency_percentile_ms(500),
            "p95": t.latency_percentile_ms(950),
        },
        "ttfb_ms": {
            "avg": t.avg_ttfb_ms(),
            "p50": t.ttfb_percentile_ms(500),
            "p95": t.ttfb_percentile_ms(950),
        },
        "tokens_in": t.tokens_in,
        "tokens_out": t.tokens_out,
        "cost": usd(t.cost_nanos),
        "cost_nanos": t.cost_nanos,
        "streams": t.streams,
    });
    match figures {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The range read: widened to whole `grain` buckets.
fn widened(grain: Grain, scope: &Scope) -> (Option<String>, Option<String>) {
    let at = |ms: i64| DateTime::from_timestamp_millis(ms).map(rfc3339);
    (
        at(grain.floor(scope.from.timestamp_millis())),
        at(grain.ceil(scope.to.timestamp_millis())),
    )
}

fn filters_json(f: &StatsFilter) -> Value {
    json!({ "key": f.key_id, "route": f.route, "model": f.model, "upstream": f.upstream })
}

/// `GET /admin/api/stats/summary`.
#[utoipa::path(
    operation_id = "stats_summary",
    get,
    path = "/admin/api/stats/summary",
    tag = "stats",
    summary = "Figures of a range",
    params(StatsQuery),
    responses(
        (status = 200, description = "The range's figures.", body = crate::schemas::StatsSummary),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn summary(
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Value>, AdminError> {
    let scope = q.scope()?;
    let s = state
        .store()
        .stats_summary(scope.from, scope.to, &scope.filter)
        .await?;
    let mut body = Map::new();
    body.insert("from".into(), rfc3339(s.from).into());
    body.insert("to".into(), rfc3339(s.to).into());
    body.insert("filters".into(), filters_json(&scope.filter));
    body.extend(totals_json(&s.totals));
    body.insert("active_keys".into(), s.active_keys.into());
    let (credentials, not_active) = credential_counts(&state);
    body.insert("credentials".into(), credentials.into());
    body.insert("credentials_not_active".into(), not_active.into());
    Ok(Json(Value::Object(body)))
}

/// Provider credentials known now, and how many of them are out of rotation
/// (disabled, banned or exhausted): the current state, whatever the range.
fn credential_counts(state: &AppState) -> (usize, usize) {
    let reg = state.health();
    let now = reg.now_ms();
    let all = reg.all();
    let not_active = all
        .iter()
        .filter(|h| h.effective_state(now) != fastgate_upstream::CredentialState::Active)
        .count();
    (all.len(), not_active)
}

/// `GET /admin/api/stats/timeseries`.
#[utoipa::path(
    operation_id = "stats_timeseries",
    get,
    path = "/admin/api/stats/timeseries",
    tag = "stats",
    summary = "Figures per bucket",
    params(StatsQuery),
    responses(
        (status = 200, description = "One point per bucket.", body = crate::schemas::StatsTimeseries),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn timeseries(
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Value>, AdminError> {
    let scope = q.scope()?;
    let grain = q.grain()?;
    let points = series_points(grain, scope.from, scope.to);
    if points > MAX_SERIES_POINTS {
        return Err(AdminError::field(
            "bucket",
            format!(
                "a {} series of this range has {points} points, at most {MAX_SERIES_POINTS} \
                 are served: use a coarser bucket or a shorter range",
                grain.as_str()
            ),
        ));
    }
    let series = state
        .store()
        .stats_timeseries(grain, scope.from, scope.to, &scope.filter)
        .await?;
    let (from, to) = widened(grain, &scope);
    let points: Vec<Value> = series
        .iter()
        .map(|p| {
            let mut point = Map::new();
            point.insert("start".into(), rfc3339(p.start).into());
            point.extend(totals_json(&p.totals));
            Value::Object(point)
        })
        .collect();
    Ok(Json(json!({
        "bucket": grain.as_str(),
        "from": from,
        "to": to,
        "filters": filters_json(&scope.filter),
        "points": points,
    })))
}

/// `GET /admin/api/stats/top`.
#[utoipa::path(
    operation_id = "stats_top",
    get,
    path = "/admin/api/stats/top",
    tag = "stats",
    summary = "Top keys, models, routes, upstreams, paths or statuses",
    params(StatsQuery),
    responses(
        (status = 200, description = "The top entries.", body = crate::schemas::StatsTop),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn top(
    State(state): State<AppState>,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Value>, AdminError> {
    let scope = q.scope()?;
    let by = q.top_by()?;
    let limit = q.limit()?;
    let items = state
        .store()
        .stats_top(by, scope.from, scope.to, &scope.filter, limit)
        .await?;
    let items: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut entry = Map::new();
            entry.insert("value".into(), json!(item.value));
            if by == TopBy::Key {
                entry.insert("key_name".into(), json!(item.key_name));
            }
            entry.extend(totals_json(&item.totals));
            Value::Object(entry)
        })
        .collect();
    let (from, to) = widened(Grain::Minute, &scope);
    Ok(Json(json!({
        "by": by.as_str(),
        "from": from,
        "to": to,
        "limit": limit,
        "filters": filters_json(&scope.filter),
        "items": items,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> StatsQuery {
        let s: String = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        serde_urlencoded_like(&s)
    }

    /// Builds the struct as axum's `Query` would (flat string fields).
    fn serde_urlencoded_like(s: &str) -> StatsQuery {
        let map: serde_json::Map<String, Value> = s
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect();
        serde_json::from_value(Value::Object(map)).unwrap_or_default()
    }

    fn message(e: AdminError) -> String {
        e.to_string()
    }

    #[test]
    fn ranges_default_to_the_last_day_and_must_be_ordered() {
        let s = query(&[]).scope().ok();
        let span = s.map(|s| s.to - s.from);
        assert_eq!(span, Some(Duration::hours(24)));
        let bad = query(&[
            ("from", "2026-11-30T10:00:00Z"),
            ("to", "2026-11-30T09:00:00Z"),
        ]);
        assert!(
            bad.scope()
                .err()
                .map(message)
                .is_some_and(|m| m.starts_with("from:"))
        );
        let bad = query(&[("to", "yesterday")]);
        assert!(
            bad.scope()
                .err()
                .map(message)
                .is_some_and(|m| m.starts_with("to:"))
        );
        let ok = query(&[("from", "2026-11-30T10:00:00+08:00"), ("key", "")]);
        let scope = ok.scope().ok();
        assert!(scope.as_ref().is_some_and(|s| s.filter.key_id.is_none()));
    }

    #[test]
    fn bucket_by_and_limit_are_checked_by_name() {
        assert_eq!(query(&[]).grain().ok(), Some(Grain::Hour));
        assert_eq!(query(&[("bucket", "day")]).grain().ok(), Some(Grain::Day));
        let e = query(&[("bucket", "week")]).grain().err().map(message);
        assert!(e.is_some_and(|m| m.starts_with("bucket:")));
        let e = query(&[]).top_by().err().map(message);
        assert!(e.is_some_and(|m| m.starts_with("by: required")));
        assert_eq!(
            query(&[("by", "status")]).top_by().ok(),
            Some(TopBy::Status)
        );
        assert_eq!(query(&[]).limit().ok(), Some(DEFAULT_TOP));
        for bad in ["0", "101", "-1", "ten"] {
            let e = query(&[("limit", bad)]).limit().err().map(message);
            assert!(e.is_some_and(|m| m.starts_with("limit:")), "{bad}");
        }
    }
}
