// Browser checks of the admin UI, in Debian's Chromium driven by playwright-core.
// FASTGATE_URL, FASTGATE_KEY (a gateway key) and FASTGATE_ADMIN_TOKEN name a running
// gateway in demo form. SHOTS: where screenshots go (docs/ui to refresh the README's).
// Exits non-zero with the reason on the first failure; every wait is bounded.
"use strict";

const { chromium } = require("playwright-core");
const fs = require("fs");
const path = require("path");

const url = process.env.FASTGATE_URL;
const key = process.env.FASTGATE_KEY;
const token = process.env.FASTGATE_ADMIN_TOKEN;
const shots = process.env.SHOTS || fs.mkdtempSync("/tmp/fastgate-ui-");
const XSS = "<img src=x onerror=alert(1)>";
const checks = [];

function fail(msg) { throw new Error("UI check failed: " + msg); }
function ok(msg) { checks.push(msg); }
// Responses >= 400 the checks provoke on purpose (a bad value's message), by path.
const expectedErrors = new Set();

// The admin API with the admin token (to set up and verify what the UI did).
async function admin(method, p, body) {
  const r = await fetch(url + p, {
    method,
    headers: Object.assign({ authorization: "Bearer " + token },
      body === undefined ? {} : { "content-type": "application/json" }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  return { status: r.status, data };
}
async function createKey(name) {
  const r = await admin("POST", "/admin/api/keys", { name });
  if (r.status !== 201) fail("creating key " + name + ": HTTP " + r.status + " " + JSON.stringify(r.data));
  return r.data;
}
async function chat(secret) {
  const r = await fetch(url + "/v1/chat/completions", {
    method: "POST",
    headers: { authorization: "Bearer " + secret, "content-type": "application/json" },
    body: JSON.stringify({ model: "demo", messages: [{ role: "user", content: "usage check" }] }),
  });
  await r.text();
  return r.status;
}
// Poll `check` (an async predicate) until true or the deadline; fail with `what`.
async function until(what, check, ms) {
  const end = Date.now() + (ms || 15000);
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) fail(what);
    await new Promise((r) => setTimeout(r, 250));
  }
}
async function searchKeys(page, text, rowsExpected) {
  await page.fill("#key-search", text);
  await page.waitForFunction(([q, n]) => {
    const trs = [...document.querySelectorAll("main table tbody tr")];
    return trs.length === n && trs.every((tr) => tr.textContent.toLowerCase().includes(q.toLowerCase()));
  }, [text, rowsExpected], { timeout: 10000 });
}

async function traffic() {
  // Requests to find in the logs, one carrying markup in its body and path query.
  for (const content of ["hello from the browser check", XSS]) {
    const r = await fetch(url + "/v1/chat/completions?probe=" + encodeURIComponent(XSS), {
      method: "POST",
      headers: { authorization: "Bearer " + key, "content-type": "application/json" },
      body: JSON.stringify({ model: "demo", messages: [{ role: "user", content }] }),
    });
    if (r.status !== 200) fail("demo request: HTTP " + r.status);
  }
}

async function signIn(page) {
  await page.goto(url + "/admin/ui");
  if (!page.url().endsWith("/admin/ui/login")) fail("signed out, /admin/ui did not lead to the sign-in form");
  await page.fill("#token", "wrong-token");
  await page.click("button[type=submit]");
  if (!(await page.textContent("p.error"))) fail("a wrong token showed no error");
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.waitForURL(url + "/admin/ui", { timeout: 10000 });
  ok("sign-in: a wrong token refused, the right one reaches the dashboard");
}

async function dashboard(page, lang) {
  await page.waitForSelector(".cards .card", { timeout: 10000 });
  await page.waitForSelector("main table tbody tr", { timeout: 10000 });
  const cards = await page.$$eval(".cards .card", (cs) => cs.length);
  if (cards < 6) fail("dashboard has " + cards + " cards");
  await page.screenshot({ path: path.join(shots, `dashboard-${lang}.png`), fullPage: true });
  ok(`dashboard (${lang}): ${cards} cards and the latest requests`);
}

async function keys(page, lang) {
  await page.goto(url + "/admin/ui/keys");
  await page.waitForSelector("main table", { timeout: 10000 });
  await page.fill("main form input", XSS + " " + lang);
  await page.click("main form button.primary");
  const shown = await page.waitForSelector("#new-key", { timeout: 10000 });
  const secret = (await shown.textContent()).trim();
  if (!secret.startsWith("fg_")) fail("the new key was not shown: " + secret);
  // Shown once: a reload lists the key by its prefix only.
  await page.screenshot({ path: path.join(shots, `keys-${lang}.png`), fullPage: true });
  await page.reload();
  await page.waitForSelector("main table tbody tr", { timeout: 10000 });
  const html = await page.content();
  if (html.includes(secret)) fail("the key's secret is still on the page after a reload");
  const names = await page.$$eval("main td", (tds) => tds.map((td) => td.textContent));
  if (!names.some((n) => n.includes(XSS))) fail("the hostile key name is not shown as text");
  // Search narrows the list; rotating shows a new secret once.
  await searchKeys(page, "ui-check", 1);
  // The new key, found by its hostile name (server-side search).
  await searchKeys(page, XSS + " " + lang, 1);
  const before = await page.$$eval("main table tbody tr", (trs) => trs.length);
  await page.click("main table tbody tr:last-child .row-actions button.act-rotate");
  const rotated = (await (await page.waitForSelector("#new-key", { timeout: 10000 })).textContent()).trim();
  if (!rotated.startsWith("fg_") || rotated === secret) fail("rotation showed no new secret");
  const after = await page.$$eval("main table tbody tr", (trs) => trs.length);
  if (after !== before) fail("rotation changed the number of keys");
  ok(`keys (${lang}): a new key shown once, a hostile name shown as text, search, rotate`);
}

// Edit a key's limit: a bad value shows the server's message, a good one is saved.
async function keyEdit(page) {
  const k = await createKey("ui-edit");
  await page.goto(url + "/admin/ui/keys");
  await page.waitForSelector("main table tbody tr", { timeout: 10000 });
  await searchKeys(page, "ui-edit", 1);
  await page.click("main table tbody tr .act-edit");
  await page.waitForSelector("#key-edit", { timeout: 10000 });
  expectedErrors.add("/admin/api/keys/" + k.id);
  await page.fill("#edit-rpm", "0");
  await page.click("#key-edit button[type=submit]");
  await page.waitForFunction(() => document.getElementById("edit-error").textContent.includes("requests_per_minute"), null, { timeout: 10000 });
  const message = await page.textContent("#edit-error");
  if (!message.includes("at least 1")) fail("the bad limit's message is not the server's: " + message);
  expectedErrors.delete("/admin/api/keys/" + k.id);
  await page.fill("#edit-rpm", "42");
  await page.fill("#edit-models", "demo, gpt-*");
  await page.selectOption("#edit-quota-period", "daily");
  await page.fill("#edit-quota-requests", "1000");
  await page.click("#key-edit button[type=submit]");
  await page.waitForFunction(() => document.getElementById("edit-saved").textContent !== "", null, { timeout: 10000 });
  const stored = (await admin("GET", "/admin/api/keys/" + k.id)).data;
  if (stored.limits.requests_per_minute !== 42) fail("the limit was not saved: " + JSON.stringify(stored.limits));
  if (JSON.stringify(stored.allowed_models) !== JSON.stringify(["demo", "gpt-*"])) fail("models not saved: " + JSON.stringify(stored.allowed_models));
  if (stored.quota.period !== "daily" || stored.quota.requests !== 1000) fail("quota not saved: " + JSON.stringify(stored.quota));
  await page.waitForFunction(() => document.querySelector("main table tbody tr").textContent.includes("42"), null, { timeout: 10000 });
  await page.screenshot({ path: path.join(shots, "key-edit-en.png"), fullPage: true });
  ok("key edit: a zero limit shows the server's message (" + message.trim() + "), 42/min, models and a daily quota saved");
}

// Batch revoke two keys with the checkboxes; the proxy then refuses them.
async function keyBatch(page) {
  const a = await createKey("ui-batch-1");
  const b = await createKey("ui-batch-2");
  for (const k of [a, b]) if ((await chat(k.key)) !== 200) fail("a new key was refused before the batch");
  await page.goto(url + "/admin/ui/keys");
  await page.waitForSelector("main table tbody tr", { timeout: 10000 });
  await searchKeys(page, "ui-batch", 2);
  await page.check("#keys-all");
  await page.click("#batch-revoke");
  await page.waitForFunction(() => /2/.test(document.getElementById("batch-result").textContent), null, { timeout: 10000 });
  await page.waitForFunction(() => [...document.querySelectorAll("main table tbody tr .pill.bad")].length === 2, null, { timeout: 10000 });
  for (const k of [a, b]) {
    const stored = (await admin("GET", "/admin/api/keys/" + k.id)).data;
    if (stored.is_active) fail("batch revoke left " + k.name + " active");
    const status = await chat(k.key);
    if (status !== 401) fail("a batch-revoked key got HTTP " + status);
  }
  const events = (await admin("GET", "/admin/api/admin-events?kind=key&action=revoke")).data.data;
  for (const k of [a, b]) if (!events.some((e) => e.object_name === k.id)) fail("no admin event for " + k.name);
  ok("batch revoke: two keys selected and revoked, refused by the proxy, admin events recorded");
}

// A request made with a key shows in its usage chart (an SVG with a bar).
async function keyUsage(page) {
  const k = await createKey("ui-usage");
  if ((await chat(k.key)) !== 200) fail("the usage key's request failed");
  await page.goto(url + "/admin/ui/keys");
  await page.waitForSelector("main table tbody tr", { timeout: 10000 });
  await searchKeys(page, "ui-usage", 1);
  await page.click("main table tbody tr .act-usage");
  await page.waitForSelector("#key-usage-chart svg", { timeout: 10000 });
  // The statistics are written a moment after the request: refresh until the bar shows.
  await until("the key usage chart shows no bar", async () => {
    if (await page.$("#key-usage-chart svg rect.bar")) return true;
    await page.click("#usage-refresh");
    await page.waitForSelector("#key-usage-chart svg", { timeout: 10000 });
    return false;
  }, 20000);
  const title = await page.textContent("#key-usage-chart svg rect.bar title");
  if (!/: 1 \/ 0$/.test(title)) fail("the usage bar is not one request: " + title);
  await page.screenshot({ path: path.join(shots, "key-usage-en.png"), fullPage: true });
  const used = await page.textContent("#key-usage .cards .card .value");
  if (!used.trim().startsWith("1")) fail("the usage cards show " + used);
  ok("key usage: an SVG bar for the key's one request (" + title + "), used requests " + used.trim());
  return k;
}

// The logs' key and time filters narrow the list; times are the configured zone's.
async function logFilters(page, usageKey) {
  await page.goto(url + "/admin/ui/logs");
  await page.waitForSelector("main table tbody tr.clickable", { timeout: 10000 });
  const all = await page.$$eval("main table tbody tr.clickable", (trs) => trs.length);
  await page.waitForSelector(`#f-key option[value="${usageKey.id}"]`, { state: "attached", timeout: 10000 });
  await page.selectOption("#f-key", usageKey.id);
  await page.click("#log-filters button[type=submit]");
  await page.waitForFunction((n) => {
    const trs = [...document.querySelectorAll("main table tbody tr.clickable")];
    return trs.length > 0 && trs.length < n && trs.every((tr) => tr.textContent.includes("ui-usage"));
  }, all, { timeout: 10000 });
  let href = await page.getAttribute("a[href*='format=json']", "href");
  if (!href.includes("key_id=" + usageKey.id)) fail("the export ignores the key filter: " + href);
  // 2000-01-01 00:00 in Asia/Shanghai is 1999-12-31 16:00 UTC: nothing before it.
  await page.fill("#f-to", "2000-01-01T00:00");
  await page.click("#log-filters button[type=submit]");
  await page.waitForFunction(() => !document.querySelector("main table tbody tr.clickable"), null, { timeout: 10000 });
  href = await page.getAttribute("a[href*='format=json']", "href");
  if (!href.includes("to=1999-12-31T16%3A00%3A00.000Z")) fail("the time filter is not the configured zone's: " + href);
  await page.fill("#f-to", "");
  await page.fill("#f-from", "2000-01-01T00:00");
  await page.click("#log-filters button[type=submit]");
  await page.waitForSelector("main table tbody tr.clickable", { timeout: 10000 });
  await page.click("#log-filters button[type=reset]");
  await page.waitForFunction((n) => document.querySelectorAll("main table tbody tr.clickable").length === n, all, { timeout: 10000 });
  ok("log filters: by key (" + all + " → fewer rows), a time range in Asia/Shanghai empties the list, clear restores it");
}

// A provider credential taken out of rotation shows on the dashboard.
async function credentialsCard(page) {
  const up = await admin("POST", "/admin/api/upstreams", {
    name: "ui-cred", kind: "openai", base_url: "http://127.0.0.1:9",
    credentials: [{ name: "one", key: "sk-ui-check-one-0000" }, { name: "two", key: "sk-ui-check-two-0000" }],
  });
  if (up.status !== 201) fail("creating an upstream: HTTP " + up.status + " " + JSON.stringify(up.data));
  await until("the new credential could not be disabled", async () => {
    const r = await admin("POST", "/admin/api/upstreams/ui-cred/credentials/two/state",
      { state: "disabled", reason: "ui check", until: "1h" });
    return r.status === 200;
  });
  await page.goto(url + "/admin/ui");
  await until("the credentials card does not count the disabled credential", async () => {
    const v = await page.$eval("#card-credentials .value", (e) => e.textContent).catch(() => "");
    if (v.startsWith("1 / ")) return true;
    await page.click("main .toolbar button");
    return false;
  });
  const v = await page.textContent("#card-credentials .value");
  if (!(await page.$("#card-credentials.warn"))) fail("the credentials card is not marked");
  ok("dashboard: credentials not active " + v);
}

async function logs(page, lang) {
  await page.goto(url + "/admin/ui/logs");
  await page.waitForSelector("main table tbody tr.clickable", { timeout: 10000 });
  await page.click("main table tbody tr.clickable");
  const pre = await page.waitForSelector("main pre", { timeout: 10000 });
  const detail = await pre.textContent();
  if (!detail.includes("request_id")) fail("the log detail shows no record");
  if (detail.includes(key)) fail("the gateway key appears in the log detail");
  await page.screenshot({ path: path.join(shots, `logs-${lang}.png`), fullPage: true });
  // Filters: a path no request has leaves the list empty, and the export follows them.
  await page.fill("#f-path", "/no/such/path");
  await page.click("#log-filters button[type=submit]");
  await page.waitForFunction(() => !document.querySelector("main table tbody tr.clickable"), null, { timeout: 10000 });
  const href = await page.getAttribute("a[href*='format=csv']", "href");
  if (!href.includes("path=%2Fno%2Fsuch%2Fpath")) fail("the export link ignores the filters: " + href);
  await page.fill("#f-path", "");
  await page.fill("#f-model", "demo");
  await page.click("#log-filters button[type=submit]");
  await page.waitForSelector("main table tbody tr.clickable", { timeout: 10000 });
  const [download] = await Promise.all([
    page.waitForEvent("download", { timeout: 10000 }),
    page.click("a[href*='format=csv']"),
  ]);
  const file = await download.path();
  const csv = fs.readFileSync(file);
  if (!(csv[0] === 0xef && csv[1] === 0xbb && csv[2] === 0xbf)) fail("the CSV export has no BOM");
  const text = csv.toString("utf8");
  if (!text.includes("/v1/chat/completions")) fail("the CSV export lacks the requests");
  ok(`logs (${lang}): a request's detail, the CSV export (${csv.length} bytes, BOM)`);
}

async function phone(browser) {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "zh-CN", isMobile: true });
  const page = await ctx.newPage();
  await signIn(page);
  await page.waitForSelector(".cards .card", { timeout: 10000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) fail("the dashboard is wider than a phone screen by " + overflow + " px");
  if (!(await page.textContent("nav")).includes("仪表盘")) fail("no Chinese from the browser's language");
  await page.screenshot({ path: path.join(shots, "dashboard-phone-zh.png"), fullPage: true });
  for (const p of ["keys", "logs"]) {
    await page.goto(url + "/admin/ui/" + p);
    await page.waitForSelector("main table", { timeout: 10000 });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (wide > 1) fail("the " + p + " page is wider than a phone screen by " + wide + " px");
  }
  await page.goto(url + "/admin/ui/keys");
  await page.waitForSelector("main table tbody tr .act-edit", { timeout: 10000 });
  await page.click("main table tbody tr .act-edit");
  await page.waitForSelector("#key-edit", { timeout: 10000 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (wide > 1) fail("the key editor is wider than a phone screen by " + wide + " px");
  if (!(await page.textContent("#key-edit")).includes("每分钟请求数")) fail("the key editor is not in Chinese");
  await ctx.close();
  ok("phone (390 px, zh-CN): dashboard, keys, key editor and logs without horizontal overflow, Chinese by default");
}

async function main() {
  await traffic();
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: "en-US", acceptDownloads: true });
    const page = await ctx.newPage();
    const problems = [];
    page.on("dialog", (d) => { problems.push("a dialog opened: " + d.message()); d.dismiss(); });
    page.on("pageerror", (e) => problems.push("script error: " + e));
    // Failed loads are judged by their URL below, not by the console's generic line.
    page.on("console", (m) => {
      if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push("console: " + m.text());
    });
    page.on("response", (r) => {
      const u = new URL(r.url());
      const expected = (u.pathname === "/admin/ui/login" && r.status() === 401) // the wrong token
        || (expectedErrors.has(u.pathname) && r.status() === 400);
      if (r.status() >= 400 && !expected) problems.push(`HTTP ${r.status()} for ${u.pathname}${u.search}`);
    });
    await signIn(page);
    await dashboard(page, "en");
    await keys(page, "en");
    await logs(page, "en");
    await keyEdit(page);
    await keyBatch(page);
    const usageKey = await keyUsage(page);
    await logFilters(page, usageKey);
    await credentialsCard(page);
    // The language switch, then the same pages in Chinese.
    await page.click("a.lang");
    await page.waitForSelector("html[lang='zh-CN']", { timeout: 10000 });
    if (!(await page.textContent("nav")).includes("日志")) fail("the switch did not turn the UI Chinese");
    ok("language switch: English → Chinese");
    await page.goto(url + "/admin/ui");
    await dashboard(page, "zh");
    await keys(page, "zh");
    await logs(page, "zh");
    for (const p of ["routes", "upstreams", "models", "rules", "settings", "events"]) {
      await page.goto(url + "/admin/ui/" + p);
      await page.waitForFunction(() => document.getElementById("status").textContent === "", null, { timeout: 10000 });
    }
    ok("routes, upstreams, models, rules, settings, events pages load");
    // Sign out: the next page asks to sign in again.
    await page.click("header form button[type=submit]");
    await page.waitForURL(url + "/admin/ui/login", { timeout: 10000 });
    await page.goto(url + "/admin/ui/keys");
    if (!page.url().endsWith("/admin/ui/login")) fail("still signed in after signing out");
    ok("sign-out");
    if (problems.length) fail(problems.join("; "));
    ok("no dialog (the XSS probes never ran), no script error, no CSP violation");
    await phone(browser);
  } finally {
    await browser.close();
  }
  for (const c of checks) console.log("ui ok:", c);
  console.log("screenshots in", shots);
}

main().catch((e) => { console.error(e.stack || e.message || e); process.exit(1); });
