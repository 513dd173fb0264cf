//! fastgate-ui: the admin web UI at `/admin/ui`, served by the binary, offline (every
//! asset embedded, no CDN), in English and Chinese.
//!
//! - Sign-in with the admin token (a form, or a `?token=` link that redirects at once so
//!   the token leaves the address bar) sets a stateless session cookie
//!   ([`session`]); the admin API accepts that cookie too, with CSRF protection
//!   ([`session::authorize`]).
//! - Pages are server-rendered shells ([`pages`]) filled by one small script from the
//!   admin API; every response carries a strict Content-Security-Policy
//!   (`default-src 'self'`, no inline script) and is never cached by proxies.

pub mod i18n;
mod i18n_manage;
pub mod pages;
mod reference;
pub mod session;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use fastgate_proxy::AppState;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use i18n::Lang;
use pages::{PAGES, PageContext};

/// The policy every UI response carries: only this origin's script, style and images
/// (plus `data:` images for charts), no framing, no plugins, forms post only here.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                       base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The embedded assets: (file name, content type, content). The page loads the
/// scripts in this order: manage.js and routes.js (shared pieces first), keys.js, then
/// app.js, which calls the page renderers the others registered.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("../assets/app.js")),
    ("manage.js", JS, include_str!("../assets/manage.js")),
    ("routes.js", JS, include_str!("../assets/routes.js")),
    ("keys.js", JS, include_str!("../assets/keys.js")),
    ("app.css", CSS, include_str!("../assets/app.css")),
];

/// The UI's routes, to be nested at `/admin/ui` in a router whose state is [`AppState`].
/// `openapi` gives the admin API's OpenAPI document, rendered at
/// `/api-reference`. It is asked for when the page is, not here: building the
/// document takes megabytes the gateway should not hold from its start.
pub fn router(openapi: fn() -> std::sync::Arc<serde_json::Value>) -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(switch_lang))
        .route("/assets/{name}", get(asset))
        .route("/api-reference", reference::route(openapi))
        .route("/{page}", get(show_page))
        .layer(middleware::from_fn(security_headers))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn admin_token(state: &AppState) -> String {
    state.inner().admin_token.expose().to_owned()
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it browsers send `Origin: null` on the pages' own form
    // posts, which the same-origin check must refuse. `same-origin` still sends
    // nothing to other sites.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

fn html(status: StatusCode, markup: maud::Markup) -> Response {
    let mut resp = (status, markup.into_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn to_login() -> Response {
    Redirect::to("/admin/ui/login").into_response()
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    render(&state, &headers, "dashboard")
}

async fn show_page(
    State(state): State<AppState>,
    Path(page): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !PAGES.iter().any(|(p, _)| *p == page) {
        return (StatusCode::NOT_FOUND, "no such page").into_response();
    }
    render(&state, &headers, &page)
}

fn render(state: &AppState, headers: &HeaderMap, page: &str) -> Response {
    let Some(session) = session::from_headers(&admin_token(state), headers, now_secs()) else {
        return to_login();
    };
    let config = state.inner().config.load();
    let cx = PageContext {
        lang: Lang::of(headers),
        csrf: &session.csrf_token(),
        timezone: &config.timezone.0,
    };
    html(StatusCode::OK, pages::page(&cx, page))
}

#[derive(Deserialize)]
struct LoginQuery {
    token: Option<String>,
}

/// The sign-in form, or with `?token=` a sign-in that redirects to the dashboard (so
/// the token does not stay in the address bar or the history entry's URL).
async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    match q.token {
        Some(token) => sign_in(&state, &headers, &token),
        None => html(StatusCode::OK, pages::sign_in(Lang::of(&headers), false)),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    if !session::same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site sign-in refused").into_response();
    }
    sign_in(&state, &headers, &form.token)
}

fn sign_in(state: &AppState, headers: &HeaderMap, token: &str) -> Response {
    use subtle::ConstantTimeEq;
    let expected = admin_token(state);
    let ok = !expected.is_empty() && bool::from(token.trim().as_bytes().ct_eq(expected.as_bytes()));
    if !ok {
        return html(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Lang::of(headers), true),
        );
    }
    let cookie = session::issue(&expected, now_secs())
        .and_then(|v| session::set_cookie(&v, is_https(headers)));
    let Some(cookie) = cookie else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot start a session").into_response();
    };
    let mut resp = Redirect::to("/admin/ui").into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    resp
}

fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// Sign-out: a same-origin form carrying the page's CSRF token.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LogoutForm>,
) -> Response {
    let token = admin_token(&state);
    let valid = session::from_headers(&token, &headers, now_secs())
        .is_some_and(|s| s.csrf_token() == form.csrf);
    if !valid || !session::same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "sign-out refused: stale page").into_response();
    }
    let mut resp = to_login();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    resp
}

#[derive(Deserialize)]
struct LangQuery {
    next: Option<String>,
}

/// The language switch: a cookie for a year, then back to the page it came from.
async fn switch_lang(Path(code): Path<String>, Query(q): Query<LangQuery>) -> Response {
    let Some(lang) = Lang::parse(&code) else {
        return (StatusCode::NOT_FOUND, "no such language").into_response();
    };
    let next = q
        .next
        .filter(|n| PAGES.iter().any(|(p, _)| p == n))
        .map_or_else(|| "/admin/ui".to_owned(), |n| format!("/admin/ui/{n}"));
    let mut resp = Redirect::to(&next).into_response();
    let cookie = format!(
        "{}={}; Path=/admin; SameSite=Strict; Max-Age=31536000",
        i18n::COOKIE,
        lang.code()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn asset(Path(name): Path<String>) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut resp = (*body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    resp
}
