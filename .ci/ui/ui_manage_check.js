// Browser checks of the admin UI's management pages (routes, upstreams and
// credentials, rules, models), in Debian's Chromium driven by playwright-core.
// FASTGATE_URL, FASTGATE_KEY (a gateway key) and FASTGATE_ADMIN_TOKEN name a running
// gateway in demo form (run.sh). SHOTS: where screenshots go. UI_ASSETS: a folder to
// serve the UI's script and style from instead of the binary's (to try an edit
// without rebuilding). Exits non-zero with the reason on the first failure; every
// wait is bounded.
//
// The demo has no upstream with credentials, so the check makes one through the admin
// API: `ui-loop`, whose base URL is the gateway itself. A request sent through it
// reaches the gateway with the provider key as its bearer token, which the gateway
// refuses (401): that answer is what fires the check's rule.
"use strict";

const { chromium } = require("playwright-core");
const fs = require("fs");
const path = require("path");

const url = process.env.FASTGATE_URL;
const key = process.env.FASTGATE_KEY;
const token = process.env.FASTGATE_ADMIN_TOKEN;
const shots = process.env.SHOTS || fs.mkdtempSync("/tmp/fastgate-ui-");
const assets = process.env.UI_ASSETS;
const XSS = "<img src=x onerror=alert(1)>";
const SECRET = "sk-ui-check-never-shown-" + Date.now() + "-Zq9";
const T = { timeout: 10000 };
const checks = [];

function fail(msg) { throw new Error("UI check failed: " + msg); }
function ok(msg) { checks.push(msg); }

async function admin(method, p, body) {
  const r = await fetch(url + "/admin/api" + p, {
    method,
    headers: { authorization: "Bearer " + token, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

// Polls `probe` until it returns a truthy value, for at most `ms`.
async function until(what, ms, probe) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) fail("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// The upstream with credentials, a route through it and a rule on its 401s; then one
// request so the rule fires.
async function setup() {
  const up = await admin("POST", "/upstreams", {
    name: "ui-loop", kind: "http", base_url: url,
    credentials: [{ name: "k1", key: "sk-ui-check-loop-key-k1-0001" }],
  });
  if (up.status !== 201) fail("creating upstream ui-loop: " + JSON.stringify(up));
  const route = await admin("POST", "/routes", {
    name: "ui-loop-route", path: "/ui-loop/**", methods: ["GET"], upstream: "ui-loop", strip_prefix: true,
  });
  if (route.status !== 201) fail("creating route ui-loop-route: " + JSON.stringify(route));
  const rule = await admin("POST", "/rules", {
    name: "ui-401", description: "refused " + XSS, upstreams: ["ui-loop"],
    when: { status: [401] }, actions: [{ log: true }],
  });
  if (rule.status !== 201) fail("creating rule ui-401: " + JSON.stringify(rule));
  const r = await fetch(url + "/ui-loop/admin/api/keys", {
    headers: { authorization: "Bearer " + key }, signal: AbortSignal.timeout(10000),
  });
  if (r.status !== 401) fail("the request through ui-loop answered " + r.status + ", expected the gateway's 401");
  await until("the rule event of ui-401", 10000, async () => {
    const ev = await admin("GET", "/rule-events?rule=ui-401");
    return ev.status === 200 && ev.body.data.length > 0;
  });
  ok("setup: upstream ui-loop with a credential, a route through it, rule ui-401 fired");
}

async function signIn(page) {
  await page.goto(url + "/admin/ui/login");
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.waitForURL(url + "/admin/ui", T);
}

// The text of the table row of `scope` whose first cell is `name` (null: none).
async function rowText(page, scope, name) {
  return page.$$eval(scope + " table tbody tr", (trs, n) => {
    const tr = trs.find((r) => r.cells[0] && r.cells[0].textContent === n);
    return tr ? tr.textContent : null;
  }, name);
}

async function clickInRow(page, scope, name, label) {
  const row = page.locator(scope + " table tbody tr").filter({ has: page.locator("td:first-child", { hasText: new RegExp("^" + name + "$") }) });
  await row.locator("button", { hasText: new RegExp("^" + label + "$") }).click(T);
}

async function routes(page) {
  await page.goto(url + "/admin/ui/routes");
  await page.waitForSelector("#route-list table tbody tr", T);
  if (!(await rowText(page, "#route-list", "ui-loop-route"))) fail("the API's route is not listed");
  // Create through the form; a bad path first: its message sits next to the path.
  await page.click("#route-new");
  await page.fill("#rf-name", "ui-route");
  await page.fill("#rf-path", "no-slash");
  await page.fill("#rf-methods", "get, post");
  await page.selectOption("#rf-upstream", "ui-loop");
  await page.click("#rf-save");
  const pathError = page.locator("label.field:has(#rf-path) .field-error");
  await pathError.filter({ hasText: /\S/ }).waitFor(T);
  const message = await pathError.textContent();
  if (!message.includes("match.path")) fail("the path's message does not name the field: " + message);
  if (await page.textContent("#rf-error")) fail("the field's message also went to the form's top");
  await page.screenshot({ path: path.join(shots, "routes-error-en.png"), fullPage: true });
  await page.fill("#rf-path", "/ui-check/**");
  await page.click("#rf-save");
  await page.waitForSelector("#route-form", { state: "detached", ...T });
  await until("ui-route in the list", 10000, () => rowText(page, "#route-list", "ui-route"));
  const created = (await admin("GET", "/routes/ui-route")).body;
  if (created.match.path !== "/ui-check/**" || created.methods.join() !== "GET,POST" || created.upstream !== "ui-loop") {
    fail("the stored route is not what the form said: " + JSON.stringify(created));
  }
  ok("routes: a bad path's message next to the path input (" + message.trim() + "), then created through the form");
  // Edit: the advanced JSON reaches a field without an input (timeout.total).
  await clickInRow(page, "#route-list", "ui-route", "Edit");
  await page.click("details.advanced summary");
  const json = JSON.parse(await page.inputValue("#rf-json"));
  json.timeout = Object.assign({}, json.timeout, { total: "2m" });
  await page.fill("#rf-json", JSON.stringify(json, null, 2));
  await page.click("#rf-save");
  await page.waitForSelector("#route-form", { state: "detached", ...T });
  const edited = (await admin("GET", "/routes/ui-route")).body;
  if (edited.timeout.total !== "2m") fail("the JSON editor's change was not stored: " + JSON.stringify(edited.timeout));
  ok("routes: a field without its own input edited through the JSON editor");
  // The dry run, with markup in a header it shows.
  await page.selectOption("#rt-method", "GET");
  await page.fill("#rt-path", "/ui-check/hello?q=1");
  await page.fill("#rt-headers", "x-probe: " + XSS);
  await page.click("#rt-run");
  const report = await (await page.waitForSelector("#rt-report", T)).textContent();
  if (!report.includes("ui-route") || !report.includes(url + "/ui-check/hello?q=1")) fail("the dry run's report: " + report);
  if (!report.includes(XSS)) fail("the dry run does not show the header's markup as text: " + report);
  await page.screenshot({ path: path.join(shots, "routes-test-en.png"), fullPage: true });
  ok("routes: the dry run shows the matched route, the target URL and the headers");
  // Search and the enabled / disabled filter; toggle off and on.
  await page.fill("#route-search", "ui-route");
  if ((await page.$$("#route-list table tbody tr")).length !== 1) fail("the search did not narrow the list");
  await clickInRow(page, "#route-list", "ui-route", "Disable");
  await until("ui-route disabled", 10000, async () => (await rowText(page, "#route-list", "ui-route") || "").includes("disabled"));
  if ((await admin("GET", "/routes/ui-route")).body.active !== false) fail("the toggle did not switch the route off");
  await page.selectOption("#route-filter", "on");
  if (await rowText(page, "#route-list", "ui-route")) fail("the enabled filter shows a disabled route");
  await page.selectOption("#route-filter", "off");
  if (!(await rowText(page, "#route-list", "ui-route"))) fail("the disabled filter hides the disabled route");
  await clickInRow(page, "#route-list", "ui-route", "Enable");
  await until("ui-route enabled", 10000, async () => (await rowText(page, "#route-list", "ui-route")) === null);
  await page.selectOption("#route-filter", "all");
  ok("routes: search, the enabled/disabled filter, toggled off and on");
  // The probe: a real request through the route (the gateway refuses its key: 401).
  await clickInRow(page, "#route-list", "ui-route", "Probe");
  const probe = await (await page.waitForSelector("#probe-report", T)).textContent();
  if (!probe.includes("401") || !probe.includes(url + "/ui-check/")) fail("the probe's report: " + probe);
  if (probe.includes("sk-ui-check-loop-key")) fail("the probe shows the provider key");
  ok("routes: the probe shows the upstream's status, timings and body");
  // Delete, after the confirmation.
  await clickInRow(page, "#route-list", "ui-route", "Delete");
  await until("ui-route deleted", 10000, async () => (await rowText(page, "#route-list", "ui-route")) === null);
  if ((await admin("GET", "/routes/ui-route")).status !== 404) fail("the route is still stored after delete");
  await page.fill("#route-search", "");
  ok("routes: delete with a confirmation");
}

async function credentials(page) {
  await page.goto(url + "/admin/ui/upstreams");
  const section = "section[data-upstream='ui-loop']";
  await page.waitForSelector(section + " table tbody tr", T);
  const state = async (name) => (await rowText(page, section, name)) || "";
  if (!(await state("k1")).includes("active")) fail("k1 is not shown active: " + (await state("k1")));
  // Disable with a reason holding markup, then enable again.
  await page.fill(section + " .state-reason", "rotating " + XSS);
  await page.fill(section + " .state-until", "2h");
  await clickInRow(page, section, "k1", "Disable");
  await until("k1 disabled", 10000, async () => (await state("k1")).includes("disabled"));
  if (!(await state("k1")).includes("rotating " + XSS)) fail("the reason is not shown as text: " + (await state("k1")));
  const health = (await admin("GET", "/upstreams/ui-loop/credentials")).body.data.find((c) => c.name === "k1").health;
  if (health.state !== "disabled" || !health.until) fail("the credential was not disabled for 2 h: " + JSON.stringify(health));
  // Times in the configured zone (Asia/Shanghai, UTC+8): the hour shown is until's there.
  const shanghai = new Intl.DateTimeFormat("en", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
    .format(new Date(health.until));
  if (!(await state("k1")).includes(shanghai)) fail("until is not shown in the configured time zone (" + shanghai + "): " + (await state("k1")));
  await page.screenshot({ path: path.join(shots, "upstreams-en.png"), fullPage: true });
  await page.fill(section + " .state-reason", "");
  await page.fill(section + " .state-until", "");
  await clickInRow(page, section, "k1", "Enable");
  await until("k1 active", 10000, async () => (await state("k1")).includes("active"));
  ok("credentials: disabled (reason with markup shown as text) and enabled again");
  // A name the server refuses: its message (echoing the markup) next to the name.
  await page.fill(section + " .cred-name", XSS);
  await page.fill(section + " .cred-key", SECRET);
  await page.click(section + " .cred-add button[type=submit]");
  const nameError = page.locator(section + " label.field:has(.cred-name) .field-error");
  await nameError.filter({ hasText: /\S/ }).waitFor(T);
  // Then a good one: the key is sent, and never shown back.
  await page.fill(section + " .cred-name", "k2");
  await page.click(section + " .cred-add button[type=submit]");
  await until("k2 listed", 10000, () => rowText(page, section, "k2"));
  if ((await page.inputValue(section + " .cred-key")) !== "") fail("the key field still holds the key");
  if ((await page.getAttribute(section + " .cred-key", "type")) !== "password") fail("the key field is not a password field");
  const html = await page.content();
  const text = await page.evaluate(() => document.body.innerText);
  if (html.includes(SECRET) || text.includes(SECRET)) fail("the provider key is on the page");
  await page.reload();
  await page.waitForSelector(section + " table tbody tr", T);
  if ((await page.content()).includes(SECRET)) fail("the provider key is on the page after a reload");
  ok("credentials: a refused name's message by its input; a key added and never shown back");
  // An upstream through the JSON editor: refused first (its message in the form), then
  // created, then deleted.
  await page.click("#upstream-new");
  await page.fill("#uf-json", JSON.stringify({ name: "ui-json-up", kind: "http", base_url: "no scheme" }));
  await page.click("#uf-save");
  const upError = page.locator("#upstream-form .field-error");
  await upError.filter({ hasText: /\S/ }).waitFor(T);
  if (!(await upError.textContent()).includes("base_url")) fail("the upstream's refusal: " + (await upError.textContent()));
  await page.fill("#uf-json", JSON.stringify({ name: "ui-json-up", kind: "http", base_url: "http://127.0.0.1:9" }));
  await page.click("#uf-save");
  await page.waitForSelector("section[data-upstream='ui-json-up']", T);
  await page.click("section[data-upstream='ui-json-up'] > .toolbar button.danger");
  await page.waitForSelector("section[data-upstream='ui-json-up']", { state: "detached", ...T });
  if ((await admin("GET", "/upstreams/ui-json-up")).status !== 404) fail("the upstream is still stored after delete");
  ok("upstreams: created through the JSON editor after a refusal, deleted");
}

async function rules(page) {
  await page.goto(url + "/admin/ui/rules");
  await page.waitForSelector("#rule-events table tbody tr", T);
  const events = await page.$$eval("#rule-events table tbody tr", (trs) => trs.map((tr) => tr.textContent));
  if (!events.some((e) => e.includes("ui-401") && e.includes("ui-loop") && e.includes("401"))) {
    fail("the firings list lacks ui-401: " + JSON.stringify(events));
  }
  const row = await rowText(page, "#rule-list", "ui-401");
  if (!row || !row.includes("refused " + XSS)) fail("the rule's description is not shown as text: " + row);
  await clickInRow(page, "#rule-list", "ui-401", "Firings");
  const detail = await (await page.waitForSelector("#rule-detail table tbody tr", T)).textContent();
  if (!detail.includes("ui-loop")) fail("the rule's own firings: " + detail);
  await page.screenshot({ path: path.join(shots, "rules-en.png"), fullPage: true });
  await clickInRow(page, "#rule-list", "ui-401", "Disable");
  await until("ui-401 disabled", 10000, async () => (await rowText(page, "#rule-list", "ui-401") || "").includes("disabled"));
  if ((await admin("GET", "/rules/ui-401")).body.enabled !== false) fail("the rule toggle did not store");
  await clickInRow(page, "#rule-list", "ui-401", "Enable");
  await until("ui-401 enabled", 10000, async () => (await rowText(page, "#rule-list", "ui-401") || "").includes("enabled"));
  // A rule through the JSON editor: a bad action's message, then created.
  await page.click("#rule-new");
  const rule = { name: "ui-json-rule", when: { status: 429 }, actions: [{ disable: "soon" }] };
  await page.fill("#rule-json", JSON.stringify(rule));
  await page.click("#rule-form button[type=submit]");
  const ruleError = page.locator("#rule-form .field-error");
  await ruleError.filter({ hasText: /\S/ }).waitFor(T);
  if (!(await ruleError.textContent()).includes("actions[0].disable")) fail("the rule's refusal: " + (await ruleError.textContent()));
  rule.actions = [{ disable: "5m" }];
  await page.fill("#rule-json", JSON.stringify(rule));
  await page.click("#rule-form button[type=submit]");
  await until("ui-json-rule listed", 10000, () => rowText(page, "#rule-list", "ui-json-rule"));
  ok("rules: the firings list and one rule's firings, a description with markup as text, toggled off and on, one created through the JSON editor");
}

async function models(page) {
  await page.goto(url + "/admin/ui/models");
  await page.waitForSelector("main table tbody tr", T);
  if (!(await rowText(page, "main", "demo"))) fail("the demo model group is not listed");
  await page.screenshot({ path: path.join(shots, "models-en.png"), fullPage: true });
  ok("models: listed");
}

// The pages without their own check here (settings, admin events, the API reference)
// render in both languages: screenshots of them, and the reference lists operations.
async function otherPages(page) {
  for (const lang of ["en", "zh"]) {
    await page.goto(url + "/admin/ui/lang/" + lang + "?next=settings");
    await page.waitForFunction(() => document.getElementById("status").textContent === "" && document.querySelector("main pre"), null, T);
    await page.screenshot({ path: path.join(shots, `settings-${lang}.png`), fullPage: true });
    await page.goto(url + "/admin/ui/events");
    await page.waitForFunction(() => document.getElementById("status").textContent === "", null, T);
    await page.screenshot({ path: path.join(shots, `events-${lang}.png`), fullPage: true });
  }
  await page.goto(url + "/admin/ui/lang/en?next=routes");
  await page.goto(url + "/admin/ui/api-reference");
  const text = await page.textContent("body");
  for (const want of ["/admin/api/keys/batch", "/admin/api/stats/summary", "ErrorBody"]) {
    if (!text.includes(want)) fail(`the API reference lacks ${want}`);
  }
  await page.screenshot({ path: path.join(shots, "api-reference-en.png") });
  ok("settings, admin events (both languages) and the API reference render");
}

async function chinese(page) {
  await page.goto(url + "/admin/ui/lang/zh?next=routes");
  await page.waitForSelector("html[lang='zh-CN'] #route-list table", T);
  const expect = [
    ["routes", ["新建路由", "试运行", "路径", "来源"]],
    ["upstreams", ["凭据", "添加凭据", "提供商密钥", "可用"]],
    ["rules", ["最近触发", "新建规则", "触发记录", "摘录"]],
    ["models", ["部署", "名称"]],
  ];
  for (const [p, words] of expect) {
    await page.goto(url + "/admin/ui/" + p);
    await page.waitForFunction(() => document.getElementById("status").textContent === "" && document.querySelector("main table"), null, T);
    const text = await page.textContent("main");
    const missing = words.filter((w) => !text.includes(w));
    if (missing.length) fail(`the Chinese ${p} page lacks ${missing.join(", ")}`);
    if (/manage\.[a-z_]+/.test(text)) fail(`the ${p} page shows a dictionary key: ${text.match(/manage\.[a-z_]+/)[0]}`);
    await page.screenshot({ path: path.join(shots, `${p}-zh.png`), fullPage: true });
  }
  await page.goto(url + "/admin/ui/lang/en?next=routes");
  ok("Chinese: routes, upstreams, rules and models pages in Chinese");
}

async function phone(browser) {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "zh-CN", isMobile: true });
  const page = await ctx.newPage();
  await serveAssets(page);
  await signIn(page);
  for (const p of ["routes", "upstreams", "rules", "models"]) {
    await page.goto(url + "/admin/ui/" + p);
    await page.waitForFunction(() => document.getElementById("status").textContent === "" && document.querySelector("main table"), null, T);
    if (p === "routes") await page.click("#route-new");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) fail(`the ${p} page is wider than a phone screen by ${overflow} px`);
    await page.screenshot({ path: path.join(shots, `${p}-phone-zh.png`), fullPage: true });
  }
  await ctx.close();
  ok("phone (390 px): routes (with the form), upstreams, rules, models without page-level horizontal overflow");
}

async function serveAssets(page) {
  if (!assets) return;
  await page.route("**/admin/ui/assets/*", (route) => {
    const name = path.basename(new URL(route.request().url()).pathname);
    const type = name.endsWith(".css") ? "text/css" : "text/javascript";
    route.fulfill({ status: 200, contentType: type, body: fs.readFileSync(path.join(assets, name)) });
  });
}

function watch(page, problems) {
  page.on("dialog", (d) => {
    // Deleting asks first; any other dialog (an alert) would be a probe that ran.
    if (d.type() === "confirm") { d.accept(); return; }
    problems.push("a dialog opened: " + d.message());
    d.dismiss();
  });
  page.on("pageerror", (e) => problems.push("script error: " + e));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push("console: " + m.text());
  });
  page.on("response", (r) => {
    const u = new URL(r.url());
    // The refusals the check asks for: a bad route path, credential name, upstream URL
    // and rule action.
    const expected = r.status() === 400 && r.request().method() === "POST"
      && ["/admin/api/routes", "/admin/api/upstreams/ui-loop/credentials", "/admin/api/upstreams", "/admin/api/rules"].includes(u.pathname);
    if (r.status() >= 400 && !expected) problems.push(`HTTP ${r.status()} for ${u.pathname}${u.search}`);
  });
}

async function main() {
  await setup();
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
    const page = await ctx.newPage();
    const problems = [];
    watch(page, problems);
    await serveAssets(page);
    await signIn(page);
    await routes(page);
    await credentials(page);
    await rules(page);
    await models(page);
    await otherPages(page);
    await chinese(page);
    const imgs = await page.$$eval("main img", (is) => is.length);
    if (imgs) fail("an <img> element was made from a value");
    if (problems.length) fail(problems.join("; "));
    ok("no dialog but the delete confirmations (the XSS probes never ran), no script error, no unexpected HTTP error");
    await phone(browser);
  } finally {
    await browser.close();
  }
  for (const c of checks) console.log("ui manage ok:", c);
  console.log("screenshots in", shots);
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });
