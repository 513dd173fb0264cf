//! `GET /admin/api/logs/export`: the filtered audit log as a CSV, JSON or NDJSON
//! download, streamed from the database chunk by chunk (`Store::export_audit`), so
//! the memory held is one chunk whatever the number of rows.
//!
//! CSV is written by the `csv` crate (RFC 4180 quoting: fields holding a comma,
//! quote, CR or LF are quoted and quotes doubled; CRLF line ends). What is ours:
//! the optional UTF-8 BOM (Excel reads BOM-less CSV in the local code page), and
//! the formula guard of [`guard_formula`], which no CSV library does because it is
//! a spreadsheet concern, not a CSV one.

use std::borrow::Cow;
use std::error::Error as StdError;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use fastgate_audit::AuditRecord;
use fastgate_proxy::AppState;
use fastgate_store::AuditExport;
use http::{HeaderValue, header};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::AdminError;
use crate::logs::LogQuery;

/// Rows per chunk when bodies are exported (each may hold two captured bodies
/// and two header maps, so fewer rows keep a chunk small).
const BODY_CHUNK_ROWS: u32 = 100;

/// The export's own options; the filters are those of [`LogQuery`].
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ExportOptions {
    /// `csv` (default), `json` or `ndjson`.
    pub format: Option<String>,
    /// CSV only: start with a UTF-8 byte order mark (for Excel).
    pub bom: Option<bool>,
    /// Add the captured request/response headers and bodies.
    pub bodies: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
    Ndjson,
}

impl Format {
    fn parse(v: Option<&str>) -> Result<Self, AdminError> {
        match v {
            None | Some("csv") => Ok(Self::Csv),
            Some("json") => Ok(Self::Json),
            Some("ndjson") => Ok(Self::Ndjson),
            Some(other) => Err(AdminError::field(
                "format",
                format!(
                    "expected csv, json or ndjson, got '{}'",
                    other.escape_debug()
                ),
            )),
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Ndjson => "ndjson",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Json => "application/json",
            Self::Ndjson => "application/x-ndjson",
        }
    }
}

/// The columns of an export, in order: every field of [`AuditRecord`] as
/// `GET /admin/api/logs` names it. The last four only with `bodies=true`.
pub(crate) const COLUMNS: [&str; 32] = [
    "request_id",
    "client_request_id",
    "request_time",
    "method",
    "path",
    "query",
    "status_code",
    "key_id",
    "key_name",
    "source",
    "route",
    "upstream",
    "credential",
    "target_url",
    "model",
    "is_stream",
    "stream_chunks",
    "ttfb_ms",
    "duration_ms",
    "request_bytes",
    "response_bytes",
    "tokens_in",
    "tokens_out",
    "tokens_estimated",
    "cost",
    "user_agent",
    "client_ip",
    "error_message",
    "request_headers",
    "response_headers",
    "request_body",
    "response_body",
];
/// How many of [`COLUMNS`] are exported without `bodies=true`.
const LEAN_COLUMNS: usize = 28;

/// `'` before a text cell that a spreadsheet would run as a formula: one starting
/// with `=`, `+`, `-`, `@`, TAB or CR (OWASP's CSV injection list). Only text
/// cells are guarded; numbers the export writes itself are never negative.
pub(crate) fn guard_formula(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// One CSV cell of a JSON value: empty for null, guarded text, numbers and
/// booleans as JSON writes them.
fn csv_cell(v: Option<&Value>) -> Cow<'_, str> {
    match v {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) => guard_formula(s),
        Some(Value::Bool(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

/// Turns chunks of records into the bytes of one format.
struct Encoder {
    format: Format,
    bom: bool,
    bodies: bool,
    started: bool,
    /// JSON: an element was written (the next one needs a comma).
    wrote_element: bool,
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl Encoder {
    fn new(format: Format, bom: bool, bodies: bool) -> Self {
        Self {
            format,
            bom,
            bodies,
            started: false,
            wrote_element: false,
        }
    }

    fn columns(&self) -> &'static [&'static str] {
        if self.bodies {
            &COLUMNS
        } else {
            &COLUMNS[..LEAN_COLUMNS]
        }
    }

    /// BOM, CSV header row or `[`, once, before anything else.
    fn start(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError> {
        if std::mem::replace(&mut self.started, true) {
            return Ok(());
        }
        match self.format {
            Format::Csv => {
                if self.bom {
                    out.extend_from_slice("\u{FEFF}".as_bytes());
                }
                let mut w = csv_writer(std::mem::take(out));
                w.write_record(self.columns())?;
                *out = w.into_inner().map_err(|e| e.into_error())?;
            }
            Format::Json => out.push(b'['),
            Format::Ndjson => {}
        }
        Ok(())
    }

    /// The record as the JSON object `GET /admin/api/logs` shows, without the
    /// headers and bodies unless they were asked for.
    fn object(&self, r: &AuditRecord) -> Result<Map<String, Value>, BoxError> {
        let Value::Object(mut obj) = serde_json::to_value(r)? else {
            return Err("an audit record did not serialize as an object".into());
        };
        if !self.bodies {
            for column in &COLUMNS[LEAN_COLUMNS..] {
                obj.remove(*column);
            }
        }
        Ok(obj)
    }

    fn rows(&mut self, rows: &[AuditRecord]) -> Result<Bytes, BoxError> {
        let mut out = Vec::with_capacity(rows.len() * 256);
        self.start(&mut out)?;
        if self.format == Format::Csv {
            return self.csv_rows(out, rows).map(Bytes::from);
        }
        for r in rows {
            let obj = self.object(r)?;
            match self.format {
                Format::Csv => {}
                Format::Json => {
                    out.extend_from_slice(if self.wrote_element { b",\n" } else { b"\n" });
                    serde_json::to_writer(&mut out, &obj)?;
                    self.wrote_element = true;
                }
                Format::Ndjson => {
                    serde_json::to_writer(&mut out, &obj)?;
                    out.push(b'\n');
                }
            }
        }
        Ok(Bytes::from(out))
    }

    /// CSV rows appended to `out`.
    fn csv_rows(&self, out: Vec<u8>, rows: &[AuditRecord]) -> Result<Vec<u8>, BoxError> {
        let mut w = csv_writer(out);
        for r in rows {
            let obj = self.object(r)?;
            for column in self.columns() {
                w.write_field(csv_cell(obj.get(*column)).as_bytes())?;
            }
            // An empty record ends the one the fields started.
            w.write_record(None::<&[u8]>)?;
        }
        Ok(w.into_inner().map_err(|e| e.into_error())?)
    }

    /// What ends the document (`]` for JSON).
    fn finish(&mut self) -> Result<Bytes, BoxError> {
        let mut out = Vec::new();
        self.start(&mut out)?;
        if self.format == Format::Json {
            out.extend_from_slice(if self.wrote_element { b"\n]\n" } else { b"]\n" });
        }
        Ok(Bytes::from(out))
    }
}

/// An RFC 4180 writer appending to `out`: fields quoted only when they hold a
/// comma, a quote, CR or LF; CRLF line ends.
fn csv_writer(out: Vec<u8>) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out)
}

/// The state of a download: the walk, the encoder, a chunk read ahead.
struct Feed {
    export: AuditExport,
    encoder: Encoder,
    ahead: Option<Vec<AuditRecord>>,
    finished: bool,
}

/// The next body frame: a chunk of rows, then the end of the document, then none.
/// A database error mid-way ends the body with an error, so the client sees a
/// broken transfer rather than a file that looks complete.
async fn next_frame(mut feed: Feed) -> Option<(Result<Bytes, BoxError>, Feed)> {
    if feed.finished {
        return None;
    }
    let chunk = match feed.ahead.take() {
        Some(rows) => Ok(Some(rows)),
        None => feed.export.next_chunk().await,
    };
    let frame = match chunk {
        Ok(Some(rows)) => feed.encoder.rows(&rows),
        Ok(None) => {
            feed.finished = true;
            feed.encoder.finish()
        }
        Err(e) => {
            tracing::error!(error = %e, "log export: database error mid-way; download cut");
            feed.finished = true;
            Err(Box::new(e) as BoxError)
        }
    };
    if frame.is_err() {
        feed.finished = true;
    }
    Some((frame, feed))
}

/// `GET /admin/api/logs/export?format=csv|json|ndjson&bom=&bodies=&<logs filters>`.
/// `limit` caps the whole export (default: every matching row); `offset` skips
/// rows at its start.
#[utoipa::path(
    operation_id = "export_export",
    get,
    path = "/admin/api/logs/export",
    tag = "logs",
    summary = "Export the audit log",
    description = "The `logs` filters select the rows; `limit` caps the whole export (default: every matching row).",
    params(ExportOptions, crate::logs::LogQuery),
    responses(
        (status = 200, description = "A download (`Content-Disposition: attachment`), streamed.", content((String = "text/csv"), (Vec<fastgate_audit::AuditRecord> = "application/json"), (String = "application/x-ndjson"))),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    Query(options): Query<ExportOptions>,
    Query(mut query): Query<LogQuery>,
) -> Result<Response, AdminError> {
    let format = Format::parse(options.format.as_deref())?;
    let bodies = options.bodies.unwrap_or(false);
    let bom = options.bom.unwrap_or(false);
    if bom && format != Format::Csv {
        return Err(AdminError::field("bom", "only applies to format=csv"));
    }
    let limit = query.limit.take();
    let mut filter = query.into_filter()?;
    filter.limit = limit;
    let mut walk = state.store().export_audit(filter).with_bodies(bodies);
    if bodies {
        walk = walk.with_chunk_rows(BODY_CHUNK_ROWS);
    }
    // The first chunk is read before answering: a database that is down gets its
    // proper status (503) instead of a 200 whose body breaks at once.
    let ahead = walk.next_chunk().await?;
    let feed = Feed {
        export: walk,
        encoder: Encoder::new(format, bom, bodies),
        finished: false,
        ahead: Some(ahead.unwrap_or_default()),
    };
    let body = Body::from_stream(futures_util::stream::unfold(feed, next_frame));
    let file = format!(
        "attachment; filename=\"fastgate-logs-{}.{}\"",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        format.extension()
    );
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&file) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(id: &str) -> AuditRecord {
        AuditRecord {
            request_id: id.into(),
            client_request_id: None,
            key_id: Some("k1".into()),
            key_name: Some("=cmd|' /C calc'!A0".into()),
            source: None,
            method: "POST".into(),
            path: "/v1/a,b\"c\"".into(),
            query: Some("q=line1\r\nline2".into()),
            route: Some("路由".into()),
            upstream: None,
            credential: None,
            target_url: None,
            status_code: 401,
            request_time: chrono::DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            ttfb_ms: None,
            duration_ms: 1.5,
            request_bytes: 10,
            response_bytes: 0,
            user_agent: Some("@SUM(1+1)".into()),
            client_ip: Some("-2+3".into()),
            is_stream: false,
            stream_chunks: 0,
            model: Some("+x".into()),
            tokens_in: Some(7),
            tokens_out: None,
            tokens_estimated: true,
            cost: Some(0.25),
            error_message: Some("\tboom".into()),
            request_headers: Some(r#"{"authorization":"[redacted]"}"#.into()),
            response_headers: None,
            request_body: Some("{\"a\":1}".into()),
            response_body: None,
        }
    }

    fn encode(format: Format, bom: bool, bodies: bool, rows: &[AuditRecord]) -> Vec<u8> {
        let mut enc = Encoder::new(format, bom, bodies);
        let mut out = enc.rows(rows).unwrap().to_vec();
        out.extend_from_slice(&enc.finish().unwrap());
        out
    }

    #[test]
    fn guards_cells_a_spreadsheet_would_run() {
        for bad in [
            "=1+1",
            "+1",
            "-1",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "=cmd|' /C calc'!A0",
        ] {
            assert_eq!(guard_formula(bad), format!("'{bad}"), "{bad:?}");
        }
        for fine in ["", "a=1", "/v1/x", "1-2", " =x", "'=x", "路由"] {
            assert_eq!(guard_formula(fine), fine, "{fine:?}");
        }
        assert_eq!(csv_cell(Some(&Value::Null)), "");
        assert_eq!(csv_cell(None), "");
        assert_eq!(csv_cell(Some(&serde_json::json!(-1.5))), "-1.5");
        assert_eq!(csv_cell(Some(&serde_json::json!(true))), "true");
        assert_eq!(csv_cell(Some(&serde_json::json!("-1.5"))), "'-1.5");
    }

    #[test]
    fn columns_are_every_field_of_the_record() {
        let v = serde_json::to_value(record("x")).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut cols = COLUMNS.to_vec();
        keys.sort_unstable();
        cols.sort_unstable();
        assert_eq!(keys, cols);
        assert_eq!(
            &COLUMNS[LEAN_COLUMNS..],
            [
                "request_headers",
                "response_headers",
                "request_body",
                "response_body"
            ]
        );
    }

    #[test]
    fn csv_quotes_as_rfc_4180_with_crlf() {
        let out = encode(Format::Csv, false, false, &[record("r1")]);
        let text = String::from_utf8(out).unwrap();
        let (header, rest) = text.split_once("\r\n").unwrap();
        assert_eq!(header, COLUMNS[..LEAN_COLUMNS].join(","));
        assert!(!text.contains("request_body"));
        assert!(text.ends_with("\r\n"));
        // Quotes doubled, the comma and the line break quoted, formulas guarded.
        assert!(rest.contains(r#","/v1/a,b""c""","#), "{rest}");
        assert!(rest.contains(",\"q=line1\r\nline2\","), "{rest}");
        assert!(rest.contains(",'=cmd|' /C calc'!A0,"), "{rest}");
        assert!(rest.ends_with(",'\tboom\r\n"), "{rest}");
        assert!(rest.contains("2023-11-14T22:13:20.123Z"), "{rest}");
        assert!(!text.starts_with('\u{FEFF}'));

        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        let cell = |name: &str| {
            let i = COLUMNS.iter().position(|c| *c == name).unwrap();
            row.get(i).unwrap().to_owned()
        };
        assert_eq!(cell("path"), "/v1/a,b\"c\"");
        assert_eq!(cell("query"), "q=line1\r\nline2");
        assert_eq!(cell("route"), "路由");
        assert_eq!(cell("key_name"), "'=cmd|' /C calc'!A0");
        assert_eq!(cell("user_agent"), "'@SUM(1+1)");
        assert_eq!(cell("client_ip"), "'-2+3");
        assert_eq!(cell("model"), "'+x");
        assert_eq!(cell("status_code"), "401");
        assert_eq!(cell("duration_ms"), "1.5");
        assert_eq!(cell("tokens_out"), "");
        assert_eq!(cell("tokens_estimated"), "true");
    }

    #[test]
    fn csv_bom_and_bodies_on_request() {
        let out = encode(Format::Csv, true, true, &[record("r1")]);
        assert!(out.starts_with(&[0xEF, 0xBB, 0xBF]));
        let text = String::from_utf8(out[3..].to_vec()).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(reader.headers().unwrap().len(), 32);
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(row.get(28).unwrap(), r#"{"authorization":"[redacted]"}"#);
        assert_eq!(row.get(30).unwrap(), "{\"a\":1}");
        assert_eq!(row.get(31).unwrap(), "");
        // No rows at all: the header alone.
        let empty = encode(Format::Csv, false, false, &[]);
        assert_eq!(
            String::from_utf8(empty).unwrap(),
            format!("{}\r\n", COLUMNS[..LEAN_COLUMNS].join(","))
        );
    }

    #[test]
    fn json_and_ndjson_keep_values_unguarded() {
        let rows = [record("r1"), record("r2")];
        let out = encode(Format::Json, false, false, &rows);
        let v: Vec<Value> = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1]["request_id"], "r2");
        assert_eq!(v[0]["key_name"], "=cmd|' /C calc'!A0");
        assert!(v[0].get("request_body").is_none());
        assert_eq!(v[0].as_object().unwrap().len(), LEAN_COLUMNS);
        assert_eq!(encode(Format::Json, false, false, &[]), b"[]\n");

        let out = encode(Format::Ndjson, false, true, &rows);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let first: AuditRecord = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first, rows[0]);
        assert!(encode(Format::Ndjson, false, false, &[]).is_empty());
    }

    #[test]
    fn unknown_format_is_named() {
        let err = Format::parse(Some("xlsx")).unwrap_err().to_string();
        assert_eq!(err, "format: expected csv, json or ndjson, got 'xlsx'");
        assert_eq!(Format::parse(None).unwrap(), Format::Csv);
    }
}
