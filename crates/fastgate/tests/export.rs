//! `GET /admin/api/logs/export`: CSV, JSON and NDJSON parsed back and compared with
//! `GET /admin/api/logs`; filters, BOM, bodies, errors, and a download that spans
//! several database chunks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, DEFAULT_ROUTES, Harness};
use serde_json::{Map, Value, json};

const FORMULA: &str = "=cmd|' /C calc'!A0";
const BODY_COLUMNS: [&str; 4] = [
    "request_headers",
    "response_headers",
    "request_body",
    "response_body",
];

/// What a CSV cell holds for a JSON value of `GET /admin/api/logs`.
fn csv_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn lean(mut record: Value) -> Value {
    let obj = record.as_object_mut().unwrap();
    for c in BODY_COLUMNS {
        obj.remove(c);
    }
    record
}

async fn listed(h: &Harness, filters: &str) -> Vec<Value> {
    let limit = if filters.contains("limit=") {
        ""
    } else {
        "limit=1000&"
    };
    let v: Value = h
        .admin_get(&format!("/admin/api/logs?{limit}{filters}"))
        .await
        .json()
        .await
        .unwrap();
    v["data"].as_array().unwrap().clone()
}

/// The export's bytes, after checking the download headers.
async fn export(h: &Harness, query: &str) -> Vec<u8> {
    let resp = h
        .admin_get(&format!("/admin/api/logs/export?{query}"))
        .await;
    assert_eq!(resp.status(), 200, "{query}");
    let ext = if query.contains("format=ndjson") {
        "ndjson"
    } else if query.contains("format=json") {
        "json"
    } else {
        "csv"
    };
    let disposition = resp.headers()["content-disposition"].to_str().unwrap();
    let name = disposition
        .strip_prefix("attachment; filename=\"fastgate-logs-")
        .and_then(|rest| rest.strip_suffix(&format!(".{ext}\"")))
        .unwrap_or_else(|| panic!("{disposition}"));
    assert_eq!(name.len(), 16, "{disposition}");
    assert!(
        name.ends_with('Z') && name.as_bytes()[8] == b'T',
        "{disposition}"
    );
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let want = match ext {
        "csv" => "text/csv; charset=utf-8",
        "json" => "application/json",
        _ => "application/x-ndjson",
    };
    assert_eq!(ctype, want);
    resp.bytes().await.unwrap().to_vec()
}

fn ndjson(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Requests whose audit records carry commas, quotes, line breaks, non-ASCII and
/// formulas in the path, query, model, user agent and key name.
async fn make_requests(h: &Harness) -> String {
    let (_, key) = h.create_key(json!({ "name": FORMULA })).await;
    let (_, other) = h.create_key(json!({ "name": "Zhang, \"San\" 张三" })).await;
    let chat = [
        ("gpt,\"4\"\r\nnext", key.as_str()),
        ("模型-ünï", other.as_str()),
        (FORMULA, key.as_str()),
    ];
    for (model, k) in chat {
        let resp = h
            .http
            .post(h.url("/v1/chat/completions?a=1,2&b=\"q\""))
            .bearer_auth(k)
            .header("user-agent", FORMULA)
            .json(
                &json!({ "model": model, "messages": [{"role": "user", "content": "a,\"b\"\nc"}] }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let resp = h
        .http
        .get(h.url("/v1/models/路径,\"x\"?q=@SUM(1)"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success() || resp.status() == 404);
    let resp = h.http.get(h.url("/v1/models")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    h.server().flush_audit().await;
    key
}

async fn export_matches_the_list(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = make_requests(&h).await;
    let all = listed(&h, "").await;
    assert_eq!(all.len(), 5);
    let lean_all: Vec<Value> = all.iter().cloned().map(lean).collect();

    // NDJSON and JSON: the same objects, same order, without the bodies.
    let rows = ndjson(&export(&h, "format=ndjson").await);
    assert_eq!(rows, lean_all);
    let rows: Vec<Value> = serde_json::from_slice(&export(&h, "format=json").await).unwrap();
    assert_eq!(rows, lean_all);
    assert_eq!(
        rows[2]["key_name"], FORMULA,
        "JSON values are never altered"
    );

    // With bodies: exactly the listed records; the captured headers are redacted.
    let full = export(&h, "format=ndjson&bodies=true").await;
    assert_eq!(ndjson(&full), all);
    let text = String::from_utf8(full.clone()).unwrap();
    assert!(!text.contains(&key), "the gateway key never appears");
    assert!(!text.contains("sk-provider-secret-1"));
    let chat = ndjson(&full)
        .into_iter()
        .find(|r| r["model"] == FORMULA)
        .unwrap();
    let headers: Value = serde_json::from_str(chat["request_headers"].as_str().unwrap()).unwrap();
    assert_eq!(headers["authorization"], "[redacted]", "{headers}");
    let body = chat["request_body"].as_str().unwrap();
    assert!(body.contains(r#""content":"a,\"b\"\nc""#), "{body}");

    // CSV: header row, CRLF, every cell as listed (formulas guarded).
    let bytes = export(&h, "format=csv").await;
    assert!(
        !bytes.starts_with(&[0xEF, 0xBB, 0xBF]),
        "no BOM unless asked"
    );
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.ends_with("\r\n"));
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header.len(), 28);
    assert!(!header.iter().any(|c| BODY_COLUMNS.contains(&c.as_str())));
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), all.len());
    for (row, rec) in records.iter().zip(&all) {
        let obj: &Map<String, Value> = rec.as_object().unwrap();
        assert_eq!(obj.len(), 32);
        for (i, column) in header.iter().enumerate() {
            let got = row.get(i).unwrap();
            match &obj[column] {
                // The client's JSON parser may round the last digit of a float:
                // compare floats as numbers.
                Value::Number(n) if n.is_f64() => {
                    let (got, want) = (got.parse::<f64>().unwrap(), n.as_f64().unwrap());
                    assert!(
                        (got - want).abs() <= want.abs() * 1e-12,
                        "{column}: {got} {want}"
                    );
                }
                v => assert_eq!(got, csv_cell(v), "{column}"),
            }
        }
    }
    let col = |column: &str| header.iter().position(|c| c == column).unwrap();
    let row_of = |model: &str| all.iter().position(|r| r["model"] == model).unwrap();
    let cell = |row: usize, column: &str| records[row].get(col(column)).unwrap().to_owned();
    assert_eq!(cell(0, "status_code"), "401", "newest first");
    let (formula, cjk, gpt) = (
        row_of(FORMULA),
        row_of("模型-ünï"),
        row_of("gpt,\"4\"\r\nnext"),
    );
    assert!(formula > 0 && cjk > formula && gpt > cjk, "request order");
    assert_eq!(cell(formula, "key_name"), format!("'{FORMULA}"));
    assert_eq!(cell(formula, "model"), format!("'{FORMULA}"));
    assert_eq!(cell(formula, "user_agent"), format!("'{FORMULA}"));
    assert_eq!(cell(formula, "query"), "a=1,2&b=%22q%22");
    assert_eq!(cell(cjk, "key_name"), "Zhang, \"San\" 张三");
    assert_eq!(cell(cjk, "model"), "模型-ünï");
    assert_eq!(cell(gpt, "model"), "gpt,\"4\"\r\nnext");
    // RFC 4180 in the raw bytes: quotes doubled inside a quoted field.
    assert!(text.contains("\"Zhang, \"\"San\"\" 张三\""), "{text}");
    assert!(text.contains("\"gpt,\"\"4\"\"\r\nnext\""), "{text}");

    // BOM on request; bodies add four columns.
    let bytes = export(&h, "format=csv&bom=true&bodies=true").await;
    assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]));
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    assert_eq!(reader.headers().unwrap().len(), 32);
    assert_eq!(&reader.headers().unwrap()[0], "request_id");
    assert_eq!(reader.records().count(), 5);
    h.stop().await;
}
both_backends!(export_matches_the_list, export_matches_the_list);

async fn export_filters_and_errors(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    make_requests(&h).await;
    for filters in [
        "route=chat",
        "status=401",
        "error=true",
        "path=/v1/chat",
        "status_min=200&status_max=299&order=asc",
        "limit=2",
        "limit=2&offset=1&order=asc",
        "from=2999-01-01T00:00:00Z",
    ] {
        let want: Vec<Value> = listed(&h, filters).await.into_iter().map(lean).collect();
        let got = ndjson(&export(&h, &format!("format=ndjson&{filters}")).await);
        assert_eq!(got, want, "{filters}");
    }
    assert_eq!(
        ndjson(&export(&h, "format=ndjson&route=chat").await).len(),
        3
    );
    // No row: a header alone, an empty array, nothing.
    let none = "from=2999-01-01T00:00:00Z";
    let csv = export(&h, &format!("format=csv&{none}")).await;
    assert_eq!(csv.iter().filter(|b| **b == b'\n').count(), 1);
    assert_eq!(export(&h, &format!("format=json&{none}")).await, b"[]\n");
    assert!(
        export(&h, &format!("format=ndjson&{none}"))
            .await
            .is_empty()
    );

    for (query, field) in [
        (
            "format=xlsx",
            "format: expected csv, json or ndjson, got 'xlsx'",
        ),
        ("format=json&bom=true", "bom: "),
        ("format=csv&order=up", "order: "),
        ("format=csv&from=yesterday", "from: "),
    ] {
        let resp = h
            .admin_get(&format!("/admin/api/logs/export?{query}"))
            .await;
        assert_eq!(resp.status(), 400, "{query}");
        let v: Value = resp.json().await.unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(field), "{query}: {msg}");
    }
    let resp = h
        .http
        .get(h.url("/admin/api/logs/export?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = h
        .http
        .get(h.url("/admin/api/logs/export?format=csv"))
        .bearer_auth("not-the-admin-token-0123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // The detail route still answers for ids.
    let resp = h.admin_get("/admin/api/logs/no-such-id").await;
    assert_eq!(resp.status(), 404);
    h.stop().await;
}
both_backends!(export_filters_and_errors, export_filters_and_errors);

/// More rows than one database chunk (1000): every row comes out once, in order.
async fn export_spans_many_chunks(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let store = fastgate_store::Store::connect(&h.database_url, 2)
        .await
        .unwrap();
    // Recent, so retention leaves them alone.
    let base = chrono::Utc::now() - chrono::Duration::hours(1);
    let rows: Vec<_> = (0..2500)
        .map(|i| fastgate_audit::AuditRecord {
            request_id: format!("seed-{i:05}"),
            client_request_id: None,
            key_id: None,
            key_name: Some(format!("k{}", i % 7)),
            source: None,
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            query: None,
            route: Some("seed".into()),
            upstream: None,
            credential: None,
            target_url: None,
            status_code: 200,
            request_time: base + chrono::Duration::milliseconds(i / 2),
            ttfb_ms: None,
            duration_ms: 1.0,
            request_bytes: 1,
            response_bytes: 2,
            user_agent: None,
            client_ip: None,
            is_stream: false,
            stream_chunks: 0,
            model: None,
            tokens_in: None,
            tokens_out: None,
            tokens_estimated: false,
            cost: None,
            error_message: None,
            request_headers: None,
            response_headers: None,
            request_body: Some("x".into()),
            response_body: None,
        })
        .collect();
    store.insert_audit_batch(&rows).await.unwrap();
    store.close().await;

    let got = ndjson(&export(&h, "format=ndjson&route=seed&order=asc").await);
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..2500).map(|i| format!("seed-{i:05}")).collect();
    assert_eq!(ids, want);
    // With bodies (100 rows a chunk) and as CSV.
    let got = ndjson(&export(&h, "format=ndjson&route=seed&bodies=true").await);
    assert_eq!(got.len(), 2500);
    assert_eq!(got[0]["request_id"], "seed-02499");
    assert_eq!(got[0]["request_body"], "x");
    let csv = export(&h, "format=csv&route=seed&limit=1234").await;
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    assert_eq!(reader.records().count(), 1234);
    h.stop().await;
}
both_backends!(export_spans_many_chunks, export_spans_many_chunks);
