//! # fastgate-routing
//!
//! Path normalisation, path patterns, the compiled route table and the matcher
//! (SPEC §3, THREATS row 14). Pure logic: no I/O, no async.
//!
//! ## Request flow
//!
//! ```text
//! raw path ─ normalize_path ─┬─ is_reserved_path?  -> proxy refuses /admin...
//!                            ├─ auth, limits (same string)
//!                            └─ RouteTable::find ─ Matched / NeedBody / NotFound
//!                                                 └─ RouteMatch::upstream_path
//! ```
//!
//! ## Normalisation ([`normalize_path`])
//!
//! One decoding pass, then dot-segment resolution: `%2E`, `%2F`, `%5C` and unreserved
//! characters are decoded, other escapes are kept with uppercase hex, '\\' is '/',
//! `//` collapses, `.`/`..` are resolved (climbing above the root is an error), and
//! `%00`, control characters and malformed escapes are errors. Two shapes that a
//! server behind the gateway could read differently are refused: a segment that is
//! `.` or `..` once a `;params` suffix is removed (`..;`, `.;x`, `..;jsessionid=1`),
//! and double-encoded input (`%25` followed by two hex digits, `%252e`). Otherwise ';'
//! is an ordinary character. The result is a fixed point of `normalize_path`, so auth, routing,
//! limits and forwarding all see the same path, and `/v1/%2e%2e/admin`,
//! `/a%5c..%5cadmin` and `//admin` all become `/admin`, which [`is_reserved_path`]
//! reports (case-insensitively).
//!
//! ## Patterns ([`PathPattern`])
//!
//! Exact `/a/b`, one segment `/v1/*`, extension `/file/*.json`, parameter
//! `/user/{id}`, and any depth `/api/v2/**` (last segment only; also matches
//! `/api/v2` itself). Patterns must already be in normalised form.
//!
//! ## Precedence (deterministic)
//!
//! Routes are sorted once, at [`RouteTable::build`], by this key (smallest first):
//!
//! 1. `priority` (lower wins);
//! 2. pattern class: exact (only literals) > has `{param}` > has `*` / `*.ext` >
//!    ends with `**` (a pattern's class is that of its loosest segment);
//! 3. more literal segments first;
//! 4. more `*.ext` segments first (so `/f/*.json` beats `/f/*`);
//! 5. longer literal prefix (bytes of the leading literal segments) first;
//! 6. lower `RouteSpec.index` first.
//!
//! `find` walks candidates in that order and returns the first whose method, path,
//! headers and body conditions all hold. Exact routes are looked up in a hash map by
//! path and non-exact routes are bucketed by their first literal segment; the three
//! candidate lists (exact, same first segment, wildcard first segment) are merged by
//! rank, so indexing never changes the outcome of the linear order above.
//!
//! ## Body conditions
//!
//! If the first candidate whose method, path and headers match has body conditions
//! and the body was not loaded, `find` returns [`MatchOutcome::NeedBody`]; the caller
//! parses the body and calls `find` again with [`BodyView::Json`]. The body must be a
//! JSON object whose top-level fields equal the configured values.
//!
//! ## Upstream path ([`RouteMatch::upstream_path`])
//!
//! `target_path` (with `{param}` and `{**}`) wins; otherwise `strip_prefix` removes
//! the pattern's literal prefix (`/openai/**`: `/openai/v1/chat` -> `/v1/chat`,
//! `/openai` -> `/`); otherwise the normalised path is sent unchanged.
//!
//! ## Example
//!
//! ```
//! use fastgate_routing::{BodyView, MatchOutcome, RouteSpec, RouteTable, normalize_path};
//!
//! let table = RouteTable::build(vec![RouteSpec {
//!     name: "openai".into(),
//!     pattern: "/openai/**".into(),
//!     strip_prefix: true,
//!     ..RouteSpec::default()
//! }])?;
//! let path = normalize_path("/openai/x/%2e%2e/v1//chat")?;
//! let headers = http::HeaderMap::new();
//! match table.find(&http::Method::POST, &path, &headers, BodyView::NotLoaded) {
//!     MatchOutcome::Matched(m) => assert_eq!(m.upstream_path(&path), "/v1/chat"),
//!     other => unreachable!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod normalize;
mod pattern;
mod route;
mod table;
mod template;

pub use normalize::{PathError, is_reserved_path, normalize_path};
pub use pattern::{PathPattern, PatternError};
pub use route::{RouteError, RouteSpec};
pub use table::{BodyView, MatchOutcome, RouteMatch, RouteTable};
pub use template::TemplateError;
