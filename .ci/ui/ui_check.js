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
  await page.fill("#key-search", "ui-check");
  const rows = await page.$$eval("main table tbody tr", (trs) => trs.map((tr) => tr.textContent));
  if (rows.length !== 1 || !rows[0].includes("ui-check")) fail("search for ui-check gave " + JSON.stringify(rows));
  await page.fill("#key-search", "");
  const before = await page.$$eval("main table tbody tr", (trs) => trs.length);
  await page.click("main table tbody tr:last-child .row-actions button:not(.danger)");
  const rotated = (await (await page.waitForSelector("#new-key", { timeout: 10000 })).textContent()).trim();
  if (!rotated.startsWith("fg_") || rotated === secret) fail("rotation showed no new secret");
  const after = await page.$$eval("main table tbody tr", (trs) => trs.length);
  if (after !== before) fail("rotation changed the number of keys");
  ok(`keys (${lang}): a new key shown once, a hostile name shown as text, search, rotate`);
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
  await ctx.close();
  ok("phone (390 px, zh-CN): no horizontal overflow, Chinese by default");
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
      const expected = u.pathname === "/admin/ui/login" && r.status() === 401; // the wrong token
      if (r.status() >= 400 && !expected) problems.push(`HTTP ${r.status()} for ${u.pathname}${u.search}`);
    });
    await signIn(page);
    await dashboard(page, "en");
    await keys(page, "en");
    await logs(page, "en");
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

main().catch((e) => { console.error(e.message || e); process.exit(1); });
