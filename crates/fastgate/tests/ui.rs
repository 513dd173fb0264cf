//! The admin web UI over HTTP: sign-in (form and `?token=` link), the session cookie's
//! flags, the admin API reached with that cookie (CSRF and same-origin enforced),
//! sign-out, languages, the security headers and the embedded assets. What a browser
//! does with the pages is checked by the browser tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{ADMIN_TOKEN, Backend, Harness};
use serde_json::{Value, json};

const CONFIG: &str = "routes: []\n";

/// An `application/x-www-form-urlencoded` body of one field.
fn form(name: &str, value: &str) -> String {
    let mut out = format!("{name}=");
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn location(resp: &reqwest::Response) -> &str {
    resp.headers()["location"].to_str().unwrap()
}

/// `fg_session=…` from a response's Set-Cookie.
fn session_cookie(resp: &reqwest::Response) -> String {
    let set = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("fg_session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(set.contains(flag), "{set}");
    }
    set.split(';').next().unwrap().to_string()
}

fn csp_ok(resp: &reqwest::Response) {
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
}

/// The CSRF token a signed-in page embeds.
fn csrf_of(html: &str) -> String {
    let start = html.find("data-csrf=\"").unwrap() + "data-csrf=\"".len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_string()
}

/// A GET carrying the session cookie.
async fn get(h: &Harness, client: &reqwest::Client, path: &str, cookie: &str) -> reqwest::Response {
    client
        .get(h.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// [`get`]'s body.
async fn get_text(h: &Harness, client: &reqwest::Client, path: &str, cookie: &str) -> String {
    get(h, client, path, cookie).await.text().await.unwrap()
}

async fn sign_in(h: &Harness, client: &reqwest::Client) -> String {
    let resp = client
        .post(h.url("/admin/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("token", ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/admin/ui");
    session_cookie(&resp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sessions_and_sign_out() {
    let h = Harness::start(Backend::Sqlite, CONFIG).await;
    let client = browser();

    // Signed out: every page leads to the sign-in form.
    let resp = client.get(h.url("/admin/ui")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/admin/ui/login");
    let resp = client.get(h.url("/admin/ui/keys")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let resp = client.get(h.url("/admin/ui/login")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    csp_ok(&resp);
    let html = resp.text().await.unwrap();
    assert!(html.contains(r#"name="token""#) && html.contains(r#"type="password""#));

    // A wrong token: 401, the form again with the reason, no cookie.
    let resp = client
        .post(h.url("/admin/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("token", "not-the-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("That token is not the admin token.")
    );

    // The right one: a session.
    let cookie = sign_in(&h, &client).await;
    let resp = get(&h, &client, "/admin/ui", &cookie).await;
    assert_eq!(resp.status(), 200);
    csp_ok(&resp);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    assert!(html.contains(r#"data-page="dashboard""#), "{html}");
    assert!(html.contains(r#"<script src="/admin/ui/assets/app.js">"#));
    assert!(
        !html.contains(ADMIN_TOKEN),
        "the token never reaches a page"
    );
    for page in [
        "keys",
        "routes",
        "upstreams",
        "models",
        "rules",
        "logs",
        "settings",
        "events",
    ] {
        let resp = get(&h, &client, &format!("/admin/ui/{page}"), &cookie).await;
        assert_eq!(resp.status(), 200, "{page}");
        let html = resp.text().await.unwrap();
        assert!(html.contains(&format!(r#"data-page="{page}""#)), "{page}");
    }
    let resp = get(&h, &client, "/admin/ui/nope", &cookie).await;
    assert_eq!(resp.status(), 404);

    // A forged or altered cookie is no session.
    let forged = format!("{cookie}x");
    let resp = client
        .get(h.url("/admin/ui"))
        .header("cookie", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);

    // Sign-out needs the page's token; then the cookie is cleared.
    let html = get_text(&h, &client, "/admin/ui/keys", &cookie).await;
    let csrf = csrf_of(&html);
    let resp = client
        .post(h.url("/admin/ui/logout"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("csrf", "stale"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = client
        .post(h.url("/admin/ui/logout"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("csrf", &csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cleared = resp.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("fg_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_link_leaves_the_address_bar_at_once() {
    let h = Harness::start(Backend::Sqlite, CONFIG).await;
    let client = browser();
    let resp = client
        .get(h.url(&format!("/admin/ui/login?token={ADMIN_TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/admin/ui", "the token is not carried on");
    let cookie = session_cookie(&resp);
    let resp = get(&h, &client, "/admin/ui", &cookie).await;
    assert_eq!(resp.status(), 200);
    let resp = client
        .get(h.url("/admin/ui/login?token=wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_takes_the_session_with_csrf_and_same_origin() {
    let h = Harness::start(Backend::Sqlite, CONFIG).await;
    let client = browser();
    let cookie = sign_in(&h, &client).await;
    let html = get_text(&h, &client, "/admin/ui/keys", &cookie).await;
    let csrf = csrf_of(&html);

    // Reading needs only the cookie.
    let resp = get(&h, &client, "/admin/api/keys", &cookie).await;
    assert_eq!(resp.status(), 200);

    // A change without the token: 403, and nothing created.
    let body = json!({ "name": "<img src=x onerror=alert(1)>" });
    let resp = client
        .post(h.url("/admin/api/keys"))
        .header("cookie", &cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-CSRF-Token")
    );
    // From another site, even with the token: 403.
    let resp = client
        .post(h.url("/admin/api/keys"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let list: Value = h.admin_get("/admin/api/keys").await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");

    // Same origin with the token: created.
    let origin = h.url("").trim_end_matches('/').to_string();
    let resp = client
        .post(h.url("/admin/api/keys"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("origin", origin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let created: Value = resp.json().await.unwrap();
    assert!(created["key"].as_str().unwrap().starts_with("fg_"));

    // Pages never carry stored values: the hostile name reaches the browser only as
    // JSON data, which the page's script writes as text.
    let html = get_text(&h, &client, "/admin/ui/keys", &cookie).await;
    assert!(!html.contains("onerror"), "{html}");

    // The bearer token still works, and no cookie at all is still 401.
    assert_eq!(h.admin_get("/admin/api/keys").await.status(), 200);
    let resp = client.get(h.url("/admin/api/keys")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // A cookie made for another admin token is no session.
    let resp = client
        .get(h.url("/admin/api/keys"))
        .header(
            "cookie",
            "fg_session=99999999999.AAAAAAAAAAAAAAAAAAAAAA.AAAA",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn languages_and_assets() {
    let h = Harness::start(Backend::Sqlite, CONFIG).await;
    let client = browser();
    let resp = client
        .get(h.url("/admin/ui/login"))
        .header("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")
        .send()
        .await
        .unwrap();
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(r#"lang="zh-CN""#) && html.contains("管理令牌"),
        "{html}"
    );
    let cookie = sign_in(&h, &client).await;
    // The switch sets a cookie and goes back to the page it came from.
    let resp = client
        .get(h.url("/admin/ui/lang/zh?next=logs"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/admin/ui/logs");
    let lang = resp.headers()["set-cookie"].to_str().unwrap();
    assert!(lang.starts_with("fg_lang=zh"), "{lang}");
    let html = client
        .get(h.url("/admin/ui/logs"))
        .header("cookie", format!("{cookie}; fg_lang=zh"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("日志") && html.contains(r#"data-lang="zh""#));
    // An unknown page to go back to is not followed.
    let resp = client
        .get(h.url("/admin/ui/lang/en?next=//evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&resp), "/admin/ui");

    for (path, ty) in [
        ("/admin/ui/assets/app.js", "text/javascript"),
        ("/admin/ui/assets/app.css", "text/css"),
        ("/admin/ui/assets/manage.js", "text/javascript"),
        ("/admin/ui/assets/keys.js", "text/javascript"),
        ("/admin/ui/assets/routes.js", "text/javascript"),
    ] {
        let resp = client.get(h.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        csp_ok(&resp);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(ty)
        );
        // The SVG namespace is a name, not a fetch.
        let text = resp
            .text()
            .await
            .unwrap()
            .replace("http://www.w3.org/2000/svg", "");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{path}: no remote asset"
        );
    }
    let missing = client
        .get(h.url("/admin/ui/assets/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404, "only the embedded assets are served");
    for path in [
        "/admin/ui/assets/app.js",
        "/admin/ui/assets/keys.js",
        "/admin/ui/assets/manage.js",
        "/admin/ui/assets/routes.js",
    ] {
        let js = client
            .get(h.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !js.contains("innerHTML"),
            "{path}: values are written as text only"
        );
    }
    h.stop().await;
}
