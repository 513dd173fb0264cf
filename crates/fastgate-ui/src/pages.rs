//! The pages' HTML (maud: every interpolated value is escaped). A page is a shell —
//! navigation, language switch, sign-out form — whose `<main>` the page's script fills
//! from the admin API; the script and the dictionary it uses are data of the page
//! (`data-*` attributes and a JSON block), so the Content-Security-Policy can forbid
//! every inline script.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::i18n::Lang;

/// The pages of the navigation, in order: (path segment, dictionary key).
pub const PAGES: &[(&str, &str)] = &[
    ("dashboard", "nav.dashboard"),
    ("keys", "nav.keys"),
    ("routes", "nav.routes"),
    ("upstreams", "nav.upstreams"),
    ("models", "nav.models"),
    ("rules", "nav.rules"),
    ("logs", "nav.logs"),
    ("settings", "nav.settings"),
    ("events", "nav.events"),
];

/// What every signed-in page needs.
pub struct PageContext<'a> {
    pub lang: Lang,
    pub csrf: &'a str,
    /// The configured IANA time zone, for the times the script shows.
    pub timezone: &'a str,
}

fn head(lang: Lang, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="same-origin";
            title { (title) " · " (lang.t("app.title")) }
            // No favicon request: `/favicon.ico` is the proxy's (it would ask for a key).
            link rel="icon" href="data:,";
            link rel="stylesheet" href="/admin/ui/assets/app.css";
        }
    }
}

/// The dictionary as a JSON data block. `</` cannot occur in it unescaped: `<` is
/// written as `\u003c`, so no string in it can close the element.
fn dictionary(lang: Lang) -> Markup {
    let json = lang.dictionary_json().replace('<', "\\u003c");
    html! { script type="application/json" id="fg-i18n" { (PreEscaped(json)) } }
}

/// A signed-in page: `page` is one of [`PAGES`].
pub fn page(cx: &PageContext<'_>, page: &str) -> Markup {
    let lang = cx.lang;
    let title = PAGES
        .iter()
        .find(|(p, _)| *p == page)
        .map_or("", |(_, key)| lang.t(key));
    let other = match lang {
        Lang::En => "zh",
        Lang::Zh => "en",
    };
    html! {
        (DOCTYPE)
        html lang=(lang.html_lang()) {
            (head(lang, title))
            body data-page=(page) data-csrf=(cx.csrf) data-tz=(cx.timezone) data-lang=(lang.code()) {
                header.top {
                    a.brand href="/admin/ui" { "FastGate" }
                    nav.nav {
                        @for (p, key) in PAGES {
                            a href={ "/admin/ui/" (p) } class=[(*p == page).then_some("active")] {
                                (lang.t(key))
                            }
                        }
                    }
                    div.actions {
                        a href="/admin/ui/api-reference" { (lang.t("nav.api")) }
                        a.lang href={ "/admin/ui/lang/" (other) "?next=" (page) } { (lang.t("lang.switch")) }
                        form method="post" action="/admin/ui/logout" {
                            input type="hidden" name="csrf" value=(cx.csrf);
                            button type="submit" { (lang.t("nav.signout")) }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    p.muted id="status" { (lang.t("common.loading")) }
                    div id="content" {}
                }
                (dictionary(lang))
                script src="/admin/ui/assets/manage.js" {}
                script src="/admin/ui/assets/routes.js" {}
                script src="/admin/ui/assets/keys.js" {}
                script src="/admin/ui/assets/app.js" {}
            }
        }
    }
}

/// The sign-in page; `wrong`: the previous attempt's token was refused.
pub fn sign_in(lang: Lang, wrong: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.html_lang()) {
            (head(lang, lang.t("signin.title")))
            body.signin {
                main.card {
                    h1 { "FastGate" }
                    form method="post" action="/admin/ui/login" {
                        label for="token" { (lang.t("signin.token")) }
                        input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                        @if wrong {
                            p.error role="alert" { (lang.t("signin.wrong")) }
                        }
                        button type="submit" { (lang.t("signin.submit")) }
                    }
                    p.muted { (lang.t("signin.hint")) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_no_inline_script_runs() {
        let cx = PageContext {
            lang: Lang::En,
            csrf: "\"><img src=x onerror=alert(1)>",
            timezone: "Asia/Shanghai",
        };
        let html = page(&cx, "keys").into_string();
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&quot;&gt;&lt;img"), "{html}");
        // Only the external scripts and the JSON data block.
        assert_eq!(html.matches("<script").count(), 5, "{html}");
        assert!(html.contains(r#"<script src="/admin/ui/assets/routes.js">"#));
        assert!(html.contains(r#"<script src="/admin/ui/assets/keys.js">"#));
        assert!(html.contains(r#"<script type="application/json" id="fg-i18n">"#));
        assert!(html.contains(r#"<script src="/admin/ui/assets/manage.js">"#));
        assert!(html.contains(r#"<script src="/admin/ui/assets/app.js">"#));
        assert!(html.contains(r#"data-tz="Asia/Shanghai""#));
        assert!(html.contains(r#"class="active""#));
    }

    #[test]
    fn chinese_pages() {
        let cx = PageContext {
            lang: Lang::Zh,
            csrf: "t",
            timezone: "UTC",
        };
        let html = page(&cx, "logs").into_string();
        assert!(html.contains(r#"lang="zh-CN""#));
        assert!(html.contains("日志"));
        assert!(html.contains("/admin/ui/lang/en?next=logs"));
        assert!(
            sign_in(Lang::Zh, true)
                .into_string()
                .contains("该令牌不是管理令牌")
        );
    }
}
