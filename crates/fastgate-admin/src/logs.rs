//! `/admin/api/logs`: query the audit log with filters and paging; detail by id.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use fastgate_audit::{AuditFilter, SortOrder};
use fastgate_proxy::AppState;
use serde::Deserialize;

use crate::error::AdminError;

/// Query string of `GET /admin/api/logs`. All filters are optional and ANDed.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub key_id: Option<String>,
    /// The client's `X-Request-Id` (many records may share one).
    pub client_request_id: Option<String>,
    pub route: Option<String>,
    pub upstream: Option<String>,
    pub status: Option<u16>,
    pub status_min: Option<u16>,
    pub status_max: Option<u16>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub stream: Option<bool>,
    pub model: Option<String>,
    pub error: Option<bool>,
    /// RFC 3339 timestamps.
    pub from: Option<String>,
    pub to: Option<String>,
    /// `desc` (newest first, default) or `asc`.
    pub order: Option<String>,
}

fn parse_time(field: &str, v: Option<String>) -> Result<Option<DateTime<Utc>>, AdminError> {
    v.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| AdminError::BadRequest(format!("{field}: expected RFC 3339 time: {e}")))
    })
    .transpose()
}

fn cap(field: &str, v: Option<String>) -> Result<Option<String>, AdminError> {
    if let Some(s) = &v {
        crate::validate::text(field, s, 512)?;
    }
    Ok(v)
}

impl LogQuery {
    pub fn into_filter(self) -> Result<AuditFilter, AdminError> {
        let order = match self.order.as_deref() {
            None | Some("desc") => SortOrder::Desc,
            Some("asc") => SortOrder::Asc,
            Some(o) => {
                return Err(AdminError::BadRequest(format!(
                    "order: expected asc or desc, got '{o}'"
                )));
            }
        };
        Ok(AuditFilter {
            from: parse_time("from", self.from)?,
            to: parse_time("to", self.to)?,
            key_id: cap("key_id", self.key_id)?,
            client_request_id: cap("client_request_id", self.client_request_id)?,
            route: cap("route", self.route)?,
            upstream: cap("upstream", self.upstream)?,
            status: self.status,
            status_min: self.status_min,
            status_max: self.status_max,
            method: cap("method", self.method.map(|m| m.to_ascii_uppercase()))?,
            path_prefix: cap("path", self.path)?,
            is_stream: self.stream,
            model: cap("model", self.model)?,
            has_error: self.error,
            limit: Some(self.limit.unwrap_or(100).clamp(1, 1000)),
            offset: self.offset,
            order,
        })
    }
}

#[utoipa::path(
    operation_id = "logs_query",
    get,
    path = "/admin/api/logs",
    tag = "logs",
    summary = "Query the audit log",
    params(LogQuery),
    responses(
        (status = 200, description = "Matching records.", body = crate::schemas::LogList),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn query(
    State(state): State<AppState>,
    Query(q): Query<LogQuery>,
) -> Result<impl IntoResponse, AdminError> {
    let filter = q.into_filter()?;
    let rows = state.store().query_audit(&filter).await?;
    Ok(Json(serde_json::json!({
        "object": "list",
        "data": rows,
        "limit": filter.limit,
        "offset": filter.offset.unwrap_or(0),
    })))
}

#[utoipa::path(
    operation_id = "logs_detail",
    get,
    path = "/admin/api/logs/{id}",
    tag = "logs",
    summary = "Show one audit record",
    params(("id" = String, Path, description = "The record's `request_id`.")),
    responses(
        (status = 200, description = "The record.", body = fastgate_audit::AuditRecord),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such record.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    crate::validate::name("id", &id, crate::validate::MAX_NAME)?;
    let rec = state
        .store()
        .get_audit(&id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("log '{id}'")))?;
    Ok(Json(rec))
}
