// FastGate admin UI: fills the page's <main> from the admin API.
// Every value from the API is written with textContent (never as HTML), so a key
// name or a request body holding markup is shown, never run.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;
  const csrf = body.dataset.csrf;
  const tz = body.dataset.tz || "UTC";
  const lang = body.dataset.lang === "zh" ? "zh-CN" : "en";
  const dict = JSON.parse(document.getElementById("fg-i18n").textContent);
  const t = (k) => dict[k] || k;
  const content = document.getElementById("content");
  const status = document.getElementById("status");

  // --- helpers -------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  async function api(path, opts) {
    const o = Object.assign({ credentials: "same-origin", headers: {} }, opts || {});
    if (o.method && o.method !== "GET") o.headers["X-CSRF-Token"] = csrf;
    if (o.json !== undefined) {
      o.headers["Content-Type"] = "application/json";
      o.body = JSON.stringify(o.json);
    }
    const resp = await fetch(path, o);
    // A caller that needs a response header (e.g. X-Total-Count) passes onHeaders.
    if (o.onHeaders) o.onHeaders(resp.headers);
    if (resp.status === 401) { window.location.href = "/admin/ui/login"; throw new Error("signed out"); }
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
    if (!resp.ok) {
      const msg = data && data.error ? (data.error.message || JSON.stringify(data.error)) : resp.status;
      const err = new Error(String(msg));
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  const timeFmt = new Intl.DateTimeFormat(lang, {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  function when(v) {
    if (v === null || v === undefined || v === "") return "—";
    const d = new Date(typeof v === "number" ? v : String(v));
    return isNaN(d.getTime()) ? String(v) : timeFmt.format(d);
  }
  // Wall-clock times in the configured zone (data-tz), as <input type="datetime-local">
  // shows them, to and from UTC instants.
  const wallFmt = new Intl.DateTimeFormat("en-US", {
    timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  function tzOffsetMs(ms) {
    const p = Object.fromEntries(wallFmt.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
    const wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
    return wall - Math.floor(ms / 1000) * 1000;
  }
  // "2026-11-30T08:00" in the configured zone → RFC 3339 UTC; null when malformed.
  function fromWall(v) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(String(v || "").trim());
    if (!m) return null;
    const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
    const first = wall - tzOffsetMs(wall);
    return new Date(wall - tzOffsetMs(first)).toISOString();
  }
  // An instant → "YYYY-MM-DDTHH:MM" in the configured zone ("" when absent).
  function toWall(v) {
    const ms = v ? Date.parse(String(v)) : NaN;
    return isNaN(ms) ? "" : new Date(ms + tzOffsetMs(ms)).toISOString().slice(0, 16);
  }
  function num(v, digits) {
    if (v === null || v === undefined) return "—";
    return Number(v).toLocaleString(lang, { maximumFractionDigits: digits === undefined ? 0 : digits });
  }
  function show(...nodes) { content.replaceChildren(...nodes); status.textContent = ""; }
  function fail(e) { status.textContent = t("common.error") + ": " + e.message; status.className = "error"; }
  function cell(v) {
    if (v === null || v === undefined) return "—";
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  }
  function table(columns, rows, onClick) {
    const head = el("tr", {}, ...columns.map((c) => el("th", {}, c.label)));
    const trs = rows.map((r) => {
      const tr = el("tr", onClick ? { class: "clickable" } : {},
        ...columns.map((c) => el("td", {}, c.render ? c.render(r) : cell(r[c.key]))));
      if (onClick) tr.addEventListener("click", () => onClick(r));
      return tr;
    });
    if (!rows.length) trs.push(el("tr", {}, el("td", { colspan: String(columns.length) }, t("common.none"))));
    return el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...trs)));
  }
  function card(label, value) {
    return el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value));
  }
  function statusPill(code) {
    return el("span", { class: "pill " + (code >= 400 ? "bad" : "ok") }, code);
  }

  // --- pages ---------------------------------------------------------------
  // A 24-hour trend as an SVG bar chart drawn here (no chart library): requests per
  // hour, the error part of each bar in red, hour labels every 6 bars.
  function trendChart(points, label, id) {
    label = label || t("dash.trend");
    const NS = "http://www.w3.org/2000/svg";
    const w = 720, h = 180, pad = 24;
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("class", "chart");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    const max = Math.max(1, ...points.map((p) => p.requests));
    const bw = (w - pad) / Math.max(1, points.length);
    const hourFmt = new Intl.DateTimeFormat(lang, { timeZone: tz, hour: "2-digit", hourCycle: "h23" });
    points.forEach((p, i) => {
      const x = pad + i * bw;
      const total = ((h - pad) * p.requests) / max;
      const errs = ((h - pad) * (p.errors ? p.errors.total : 0)) / max;
      for (const [cls, height] of [["bar", total], ["bar err", errs]]) {
        if (height <= 0) continue;
        const r = document.createElementNS(NS, "rect");
        r.setAttribute("x", String(x + 1));
        r.setAttribute("y", String(h - pad - height));
        r.setAttribute("width", String(Math.max(1, bw - 2)));
        r.setAttribute("height", String(height));
        r.setAttribute("class", cls);
        const title = document.createElementNS(NS, "title");
        title.textContent = `${when(p.start)}: ${p.requests} / ${p.errors ? p.errors.total : 0}`;
        r.append(title);
        svg.append(r);
      }
      if (i % 6 === 0) {
        const label = document.createElementNS(NS, "text");
        label.setAttribute("x", String(x + 2));
        label.setAttribute("y", String(h - 6));
        label.textContent = hourFmt.format(new Date(p.start));
        svg.append(label);
      }
    });
    const top = document.createElementNS(NS, "text");
    top.setAttribute("x", "0");
    top.setAttribute("y", "12");
    top.textContent = String(max);
    svg.append(top);
    return el("div", Object.assign({ class: "card chart-card" }, id ? { id } : {}),
      el("div", { class: "label" }, label), svg);
  }

  function topList(title, items, label) {
    return el("div", { class: "card" }, el("div", { class: "label" }, title),
      items.length ? el("ol", { class: "top" }, ...items.map((it) =>
        el("li", {}, el("span", {}, label(it)), el("span", { class: "muted" }, " " + num(it.requests)))))
        : el("p", { class: "muted" }, t("common.none")));
  }

  // Provider credentials out of rotation now (of all known), linked to the upstreams page.
  function credentialsCard(s) {
    const bad = Number(s.credentials_not_active || 0);
    const c = card(t("dash.credentials_not_active"),
      s.credentials_not_active === undefined ? "—" : num(bad) + " / " + num(s.credentials));
    c.id = "card-credentials";
    if (bad > 0) c.classList.add("warn");
    c.append(el("a", { href: "/admin/ui/upstreams", class: "muted small" }, t("dash.see_upstreams")));
    return c;
  }

  async function dashboard() {
    const toolbar = el("div", { class: "toolbar" });
    const auto = el("input", { type: "checkbox", id: "autorefresh" });
    auto.checked = true;
    toolbar.append(el("button", { onclick: () => load() }, t("common.refresh")),
      el("label", {}, auto, " ", t("common.autorefresh")));
    const cards = el("div", { class: "cards" });
    const trend = el("div");
    const tops = el("div", { class: "cards" });
    const latest = el("div");
    async function load() {
      try {
        const [s, series, models, keysTop, routesTop, statuses, logs] = await Promise.all([
          api("/admin/api/stats/summary"),
          api("/admin/api/stats/timeseries?bucket=hour"),
          api("/admin/api/stats/top?by=model&limit=5"),
          api("/admin/api/stats/top?by=key&limit=5"),
          api("/admin/api/stats/top?by=route&limit=5"),
          api("/admin/api/stats/top?by=status&limit=5"),
          api("/admin/api/logs?limit=10"),
        ]);
        cards.replaceChildren(
          card(t("dash.requests"), num(s.requests)),
          card(t("dash.success"), s.success_rate === null ? "—" : num(s.success_rate * 100, 1) + "%"),
          card(t("dash.latency"), s.latency_ms.avg === null ? "—"
            : num(s.latency_ms.avg, 1) + " / " + num(s.latency_ms.p95) + " ms"),
          card(t("dash.tokens"), num(s.tokens_in) + " / " + num(s.tokens_out)),
          card(t("dash.cost"), "$" + num(s.cost, 4)),
          card(t("dash.active_keys"), num(s.active_keys)),
          credentialsCard(s));
        trend.replaceChildren(trendChart(series.points || []));
        tops.replaceChildren(
          topList(t("dash.top_models"), models.items || [], (it) => it.value || "—"),
          topList(t("dash.top_keys"), keysTop.items || [], (it) => it.key_name || it.value || "—"),
          topList(t("dash.top_routes"), routesTop.items || [], (it) => it.value || "—"),
          topList(t("dash.statuses"), statuses.items || [], (it) => it.value || "—"));
        latest.replaceChildren(el("h2", {}, t("dash.latest")), logTable(logs.data || []));
        status.textContent = "";
      } catch (e) { fail(e); }
    }
    show(toolbar, cards, trend, tops, latest);
    await load();
    setInterval(() => { if (auto.checked) load(); }, 30000);
  }

  function logTable(rows) {
    return table([
      { label: t("logs.time"), render: (r) => when(r.request_time) },
      { label: t("logs.method"), key: "method" },
      { label: t("logs.path"), key: "path" },
      { label: t("logs.status"), render: (r) => statusPill(r.status_code) },
      { label: t("logs.model"), key: "model" },
      { label: t("logs.key"), key: "key_name" },
      { label: t("logs.duration"), render: (r) => num(r.duration_ms, 1) + " ms" },
    ], rows, (r) => { window.location.href = "/admin/ui/logs#" + encodeURIComponent(r.request_id); });
  }

  async function logs() {
    const limit = 50;
    let offset = 0;
    const detail = el("div");
    const list = el("div");
    const prev = el("button", { onclick: () => { offset = Math.max(0, offset - limit); load(); } }, t("common.prev"));
    const next = el("button", { onclick: () => { offset += limit; load(); } }, t("common.next"));
    const exports = ["csv", "json", "ndjson"].map((f) =>
      el("a", { class: "button", href: "/admin/api/logs/export?format=" + f + (f === "csv" ? "&bom=true" : "") },
        t("logs.export") + " " + f.toUpperCase()));
    async function open(id) {
      try {
        const r = await api("/admin/api/logs/" + encodeURIComponent(id));
        detail.replaceChildren(el("h2", {}, t("common.details") + " " + id), el("pre", {}, JSON.stringify(r, null, 2)));
      } catch (e) { fail(e); }
    }
    // Filters, as the logs API and the export take them.
    // from/to are wall times in the configured zone, sent as UTC instants.
    const keySelect = el("select", { id: "f-key", "aria-label": t("logs.key") }, el("option", { value: "" }, t("logs.any_key")));
    const filters = {
      status_min: el("input", { type: "number", min: "100", max: "599", placeholder: t("logs.status_min"), id: "f-status" }),
      model: el("input", { placeholder: t("logs.model"), id: "f-model" }),
      path: el("input", { placeholder: t("logs.path"), id: "f-path" }),
      key_id: keySelect,
      route: el("input", { placeholder: t("logs.route"), id: "f-route" }),
      upstream: el("input", { placeholder: t("logs.upstream"), id: "f-upstream" }),
      from: el("input", { type: "datetime-local", id: "f-from", title: t("logs.from") + " (" + tz + ")" }),
      to: el("input", { type: "datetime-local", id: "f-to", title: t("logs.to") + " (" + tz + ")" }),
    };
    function query() {
      const q = new URLSearchParams();
      for (const [k, input] of Object.entries(filters)) {
        const v = input.value.trim();
        if (!v) continue;
        if (k === "from" || k === "to") { const at = fromWall(v); if (at) q.set(k, at); } else q.set(k, v);
      }
      return q;
    }
    async function loadKeyOptions() {
      try {
        const all = (await api("/admin/api/keys")).data || [];
        keySelect.append(...all.map((k) => el("option", { value: k.id }, (k.name || k.id) + " (" + (k.prefix || "") + "…)")));
      } catch (e) { fail(e); }
    }
    function updateExports() {
      for (const a of exports) {
        const u = new URL(a.getAttribute("href"), window.location.origin);
        const q = query();
        q.set("format", u.searchParams.get("format"));
        if (u.searchParams.get("bom")) q.set("bom", "true");
        a.setAttribute("href", "/admin/api/logs/export?" + q.toString());
      }
    }
    const labelled = (text, input) => el("label", { class: "field" }, el("span", { class: "muted" }, text), input);
    const filterForm = el("form", { class: "toolbar", id: "log-filters" },
      filters.status_min, filters.model, filters.path, filters.key_id, filters.route, filters.upstream,
      labelled(t("logs.from"), filters.from), labelled(t("logs.to"), filters.to),
      el("span", { class: "muted small" }, tz),
      el("button", { type: "submit", class: "primary" }, t("common.search")),
      el("button", { type: "reset" }, t("logs.clear")));
    filterForm.addEventListener("reset", () => setTimeout(() => { offset = 0; updateExports(); load(); }, 0));
    filterForm.addEventListener("submit", (ev) => { ev.preventDefault(); offset = 0; updateExports(); load(); });
    async function load() {
      try {
        const q = query();
        q.set("limit", String(limit));
        q.set("offset", String(offset));
        const data = (await api("/admin/api/logs?" + q.toString())).data || [];
        list.replaceChildren(table([
          { label: t("logs.time"), render: (r) => when(r.request_time) },
          { label: t("logs.method"), key: "method" },
          { label: t("logs.path"), key: "path" },
          { label: t("logs.status"), render: (r) => statusPill(r.status_code) },
          { label: t("logs.model"), key: "model" },
          { label: t("logs.key"), key: "key_name" },
          { label: t("logs.duration"), render: (r) => num(r.duration_ms, 1) + " ms" },
        ], data, (r) => open(r.request_id)));
        prev.disabled = offset === 0;
        next.disabled = data.length < limit;
        pageInfo.textContent = data.length ? (offset + 1) + "–" + (offset + data.length) : "";
        status.textContent = "";
      } catch (e) { fail(e); }
    }
    const pageInfo = el("span", { class: "muted", id: "log-page" });
    show(filterForm, el("div", { class: "toolbar" }, prev, next, pageInfo, ...exports), detail, list);
    await Promise.all([load(), loadKeyOptions()]);
    if (window.location.hash.length > 1) await open(decodeURIComponent(window.location.hash.slice(1)));
  }

  // Pages without their own editor yet: the API's list, read-only.
  function listPage(path) {
    return async function () {
      try {
        const v = await api(path);
        const rows = Array.isArray(v) ? v : (v && (v.data || v.events || v.rules)) || [];
        const keysOf = rows.length ? Object.keys(rows[0]).slice(0, 8) : [];
        show(table(keysOf.map((k) => ({ label: k, key: k })), rows));
      } catch (e) { fail(e); }
    };
  }

  async function settings() {
    try { show(el("pre", {}, JSON.stringify(await api("/admin/api/config"), null, 2))); } catch (e) { fail(e); }
  }

  const pages = {
    dashboard, logs, settings,
    routes: listPage("/admin/api/routes"),
    upstreams: listPage("/admin/api/upstreams"),
    models: listPage("/admin/api/models"),
    rules: listPage("/admin/api/rules"),
    events: listPage("/admin/api/admin-events"),
  };
  // The management pages' script (manage.js, loaded before this one) registers its
  // page renderers in `window.FastGatePages` and receives these helpers.
  const shared = { el, api, t, when, num, show, fail, cell, table, card, statusPill, csrf, tz, lang, content, status,
    trendChart, fromWall, toWall };
  for (const [name, make] of Object.entries(window.FastGatePages || {})) pages[name] = () => make(shared);
  (pages[page] || (() => show(el("p", {}, t("soon")))))();
})();
