// FastGate admin UI: the keys page — search and paging done by the server, create
// (the secret shown once), edit limits / quotas / scopes / expiry, usage per key
// (an SVG chart drawn here), revoke, rotate, and batch revoke / enable / disable.
// Loaded before app.js; registers its renderer in `window.FastGatePages`, which
// app.js calls with its shared helpers. Every value from the API is written with
// textContent, never as HTML.
"use strict";

window.FastGatePages = window.FastGatePages || {};

window.FastGatePages.keys = async function keysPage(ui) {
  const { el, api, t, when, num, show, fail, table, card, trendChart, fromWall, toWall, status } = ui;
  const PAGE = 20;
  let offset = 0;
  let total = 0;
  let rows = [];
  const selected = new Set();
  const keyPath = (id) => "/admin/api/keys/" + encodeURIComponent(id);

  const secret = el("div");
  const panel = el("div", { id: "key-panel" });
  const list = el("div");
  const batchResult = el("p", { class: "muted", id: "batch-result", role: "status" });
  const name = el("input", { placeholder: t("keys.name"), maxlength: "128" });
  const form = el("form", { class: "toolbar" }, name,
    el("button", { class: "primary", type: "submit" }, t("keys.new")));
  const search = el("input", { type: "search", id: "key-search", placeholder: t("common.search") });
  const prev = el("button", { id: "keys-prev", onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, t("common.prev"));
  const next = el("button", { id: "keys-next", onclick: () => { offset += PAGE; load(); } }, t("common.next"));
  const pageInfo = el("span", { class: "muted", id: "keys-page" });

  // A secret (new or rotated) is shown once, with a copy button.
  function reveal(created) {
    const copy = el("button", {}, t("common.copy"));
    copy.addEventListener("click", async () => {
      await navigator.clipboard.writeText(created.key);
      copy.textContent = t("common.copied");
    });
    secret.replaceChildren(el("p", {}, t("keys.once")),
      el("div", { class: "toolbar" }, el("code", { class: "secret", id: "new-key" }, created.key), copy));
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      reveal(await api("/admin/api/keys", { method: "POST", json: { name: name.value } }));
      name.value = "";
      await load();
    } catch (e) { fail(e); }
  });
  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { offset = 0; load(); }, 250);
  });

  function action(label, cls, run) {
    return el("button", { class: cls, onclick: async (ev) => {
      ev.stopPropagation();
      try { await run(); await load(); } catch (e) { fail(e); }
    } }, label);
  }

  // --- batch -----------------------------------------------------------------
  async function batch(kind) {
    const ids = [...selected];
    if (!ids.length) { batchResult.textContent = t("keys.select_first"); return; }
    try {
      const r = await api("/admin/api/keys/batch", { method: "POST", json: { ids, action: kind } });
      const failed = (r.data || []).filter((x) => !x.ok)
        .map((x) => x.id + ": " + (x.error ? x.error.message : "?"));
      batchResult.textContent = t("keys.batch_done") + " " + num(r.succeeded)
        + (failed.length ? "; " + t("keys.batch_failed") + " " + failed.join("; ") : "");
      selected.clear();
      await load();
    } catch (e) { batchResult.textContent = e.message; }
  }
  const batchBar = el("div", { class: "toolbar", id: "batch-bar" },
    el("button", { class: "danger", id: "batch-revoke", onclick: () => batch("revoke") }, t("keys.batch_revoke")),
    el("button", { id: "batch-enable", onclick: () => batch("enable") }, t("keys.batch_enable")),
    el("button", { id: "batch-disable", onclick: () => batch("disable") }, t("keys.batch_disable")),
    batchResult);

  // --- edit ------------------------------------------------------------------
  // Numbers as typed: an empty field is "no limit" (null), anything else is sent as
  // a number when it is one, so the server's own message explains a bad value.
  function numberOrNull(input) {
    const v = input.value.trim();
    if (!v) return null;
    const n = Number(v);
    return Number.isFinite(n) ? n : v;
  }
  function listOf(input) {
    return input.value.split(",").map((s) => s.trim()).filter(Boolean);
  }
  function field(labelText, input, hint) {
    return el("label", { class: "field" }, el("span", {}, labelText), input,
      hint ? el("span", { class: "muted small" }, hint) : null);
  }
  function edit(k) {
    const numberInput = (id, v) => el("input", { type: "number", id, min: "1", step: "any", value: v === null || v === undefined ? "" : String(v) });
    const limits = k.limits || {};
    const quota = k.quota || {};
    const f = {
      name: el("input", { id: "edit-name", value: k.name || "", maxlength: "128" }),
      routes: el("input", { id: "edit-routes", value: (k.allowed_routes || []).join(", ") }),
      models: el("input", { id: "edit-models", value: (k.allowed_models || []).join(", ") }),
      rpm: numberInput("edit-rpm", limits.requests_per_minute),
      rpd: numberInput("edit-rpd", limits.requests_per_day),
      tpm: numberInput("edit-tpm", limits.tokens_per_minute),
      conc: numberInput("edit-concurrent", limits.max_concurrent),
      qreq: numberInput("edit-quota-requests", quota.requests),
      qtok: numberInput("edit-quota-tokens", quota.tokens),
      qcost: numberInput("edit-quota-cost", quota.cost),
      period: el("select", { id: "edit-quota-period" },
        ...["never", "daily", "monthly"].map((p) => el("option", { value: p }, t("keys.period_" + p)))),
      expires: el("input", { type: "datetime-local", id: "edit-expires", value: toWall(k.expires_at) }),
    };
    f.period.value = quota.period || "never";
    const error = el("p", { class: "error", id: "edit-error", role: "alert" });
    const saved = el("p", { class: "ok", id: "edit-saved", role: "status" });
    // novalidate: a refused value is explained by the server's own message.
    const editForm = el("form", { id: "key-edit", class: "card edit", novalidate: "" },
      el("h2", {}, t("keys.edit") + ": " + (k.name || k.id)),
      el("div", { class: "grid" },
        field(t("keys.name"), f.name),
        field(t("keys.expires") + " (" + ui.tz + ")", f.expires),
        field(t("keys.allowed_routes"), f.routes, t("keys.list_hint")),
        field(t("keys.allowed_models"), f.models, t("keys.list_hint"))),
      el("h3", {}, t("keys.limits")),
      el("div", { class: "grid" },
        field(t("keys.rpm"), f.rpm), field(t("keys.rpd"), f.rpd),
        field(t("keys.tpm"), f.tpm), field(t("keys.concurrent"), f.conc)),
      el("h3", {}, t("keys.quota")),
      el("div", { class: "grid" },
        field(t("keys.quota_requests"), f.qreq), field(t("keys.quota_tokens"), f.qtok),
        field(t("keys.quota_cost"), f.qcost), field(t("keys.period"), f.period)),
      el("p", { class: "muted small" }, t("keys.empty_unlimited")),
      error, saved,
      el("div", { class: "toolbar" },
        el("button", { type: "submit", class: "primary" }, t("common.save")),
        el("button", { type: "button", onclick: () => panel.replaceChildren() }, t("common.cancel"))));
    editForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      saved.textContent = "";
      const body = {
        name: f.name.value.trim(),
        allowed_routes: listOf(f.routes),
        allowed_models: listOf(f.models),
        limits: {
          requests_per_minute: numberOrNull(f.rpm), requests_per_day: numberOrNull(f.rpd),
          tokens_per_minute: numberOrNull(f.tpm), max_concurrent: numberOrNull(f.conc),
        },
        quota: {
          requests: numberOrNull(f.qreq), tokens: numberOrNull(f.qtok),
          cost: numberOrNull(f.qcost), period: f.period.value,
        },
      };
      const exp = f.expires.value.trim();
      if (exp && exp !== toWall(k.expires_at)) {
        const at = fromWall(exp);
        if (!at) { error.textContent = t("keys.bad_time"); return; }
        body.expires_at = at;
      }
      try {
        k = await api(keyPath(k.id), { method: "PATCH", json: body });
        saved.textContent = t("keys.saved");
        await load();
      } catch (e) { error.textContent = e.message; }
    });
    panel.replaceChildren(editForm);
    f.name.focus();
  }

  // --- usage -----------------------------------------------------------------
  async function usage(k) {
    panel.replaceChildren(el("p", { class: "muted" }, t("common.loading")));
    try {
      const [u, series] = await Promise.all([
        api(keyPath(k.id) + "/usage"),
        api("/admin/api/stats/timeseries?bucket=hour&key=" + encodeURIComponent(k.id)),
      ]);
      const used = u.used || {};
      const rem = u.remaining || {};
      const quota = u.quota || {};
      const of = (v, cap, digits) => num(v, digits) + (cap === null || cap === undefined ? "" : " / " + num(cap, digits));
      const history = (u.history || []).map((h) => ({ period: h.period, requests: h.requests, tokens: h.tokens, cost: h.cost }));
      panel.replaceChildren(el("div", { class: "card edit", id: "key-usage" },
        el("h2", {}, t("keys.usage") + ": " + (k.name || k.id)),
        el("div", { class: "cards" },
          card(t("keys.used_requests"), of(used.requests, quota.requests)),
          card(t("keys.used_tokens"), of(used.tokens, quota.tokens)),
          card(t("keys.used_cost"), "$" + of(used.cost, quota.cost, 4)),
          card(t("keys.period"), (u.period && u.period.id) || t("keys.period_" + (quota.period || "never"))),
          card(t("keys.remaining"), [rem.requests, rem.tokens].every((v) => v === null || v === undefined)
            && (rem.cost === null || rem.cost === undefined) ? "∞"
            : [rem.requests, rem.tokens].map((v) => (v === null || v === undefined ? "∞" : num(v))).join(" / ")
              + (rem.cost === null || rem.cost === undefined ? "" : " / $" + num(rem.cost, 4)))),
        trendChart(series.points || [], t("keys.usage_chart"), "key-usage-chart"),
        history.length ? table([
          { label: t("keys.period"), key: "period" },
          { label: t("dash.requests"), render: (h) => num(h.requests) },
          { label: t("keys.used_tokens"), render: (h) => num(h.tokens) },
          { label: t("dash.cost"), render: (h) => "$" + num(h.cost, 4) },
        ], history) : null,
        el("div", { class: "toolbar" },
          el("button", { type: "button", id: "usage-refresh", onclick: () => usage(k) }, t("common.refresh")),
          el("button", { type: "button", onclick: () => panel.replaceChildren() }, t("common.cancel")))));
    } catch (e) { panel.replaceChildren(el("p", { class: "error" }, e.message)); }
  }

  // --- list ------------------------------------------------------------------
  async function load() {
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    if (search.value.trim()) q.set("search", search.value.trim());
    try {
      rows = (await api("/admin/api/keys?" + q.toString(), {
        onHeaders: (h) => { total = Number(h.get("X-Total-Count") || 0); },
      })).data || [];
      if (!rows.length && offset > 0 && total > 0) { offset = Math.max(0, total - PAGE); return load(); }
      render();
      status.textContent = "";
    } catch (e) { fail(e); }
  }
  function render() {
    const all = el("input", { type: "checkbox", id: "keys-all", "aria-label": t("keys.select_all") });
    all.checked = rows.length > 0 && rows.every((k) => selected.has(k.id));
    all.addEventListener("change", () => {
      for (const k of rows) { if (all.checked) selected.add(k.id); else selected.delete(k.id); }
      render();
    });
    const pick = (k) => {
      const box = el("input", { type: "checkbox", class: "key-pick", "aria-label": k.name || k.id });
      box.checked = selected.has(k.id);
      box.addEventListener("change", () => { if (box.checked) selected.add(k.id); else selected.delete(k.id); });
      return box;
    };
    list.replaceChildren(table([
      { label: all, render: pick },
      { label: t("keys.name"), key: "name" },
      { label: t("keys.prefix"), render: (k) => (k.prefix || "") + "…" },
      { label: t("keys.status"), render: (k) => el("span", { class: "pill " + (k.is_active ? "ok" : "bad") },
        k.is_active ? t("keys.active") : (k.revoked_at ? t("keys.revoked") : t("keys.disabled"))) },
      { label: t("keys.limits"), render: (k) => limitsText(k) },
      { label: t("keys.created"), render: (k) => when(k.created_at) },
      { label: t("keys.expires"), render: (k) => when(k.expires_at) },
      { label: "", render: (k) => el("span", { class: "row-actions" },
        action(t("keys.edit"), "act-edit", async () => edit(k)),
        action(t("keys.usage"), "act-usage", async () => usage(k)),
        k.is_active ? action(t("keys.rotate"), "act-rotate", async () =>
          reveal(await api(keyPath(k.id) + "/rotate", { method: "POST" }))) : null,
        k.is_active
          ? action(t("common.revoke"), "danger act-revoke", () => api(keyPath(k.id), { method: "DELETE" }))
          : action(t("keys.enable"), "act-enable", () => api(keyPath(k.id), { method: "PATCH", json: { is_active: true } }))) },
    ], rows));
    prev.disabled = offset === 0;
    next.disabled = offset + rows.length >= total;
    pageInfo.textContent = total ? (offset + 1) + "–" + (offset + rows.length) + " / " + total : "";
  }
  function limitsText(k) {
    const l = k.limits || {};
    const q = k.quota || {};
    const parts = [];
    if (l.requests_per_minute) parts.push(num(l.requests_per_minute) + " " + t("keys.per_min"));
    if (l.requests_per_day) parts.push(num(l.requests_per_day) + " " + t("keys.per_day"));
    if (l.tokens_per_minute) parts.push(num(l.tokens_per_minute) + " tok " + t("keys.per_min"));
    if (l.max_concurrent) parts.push("≤" + num(l.max_concurrent) + " " + t("keys.concurrent_short"));
    if (q.requests || q.tokens || q.cost) parts.push(t("keys.quota") + " (" + t("keys.period_" + (q.period || "never")) + ")");
    return parts.length ? parts.join(", ") : "—";
  }

  show(el("div", { class: "toolbar" }, form, search), secret, panel, batchBar,
    el("div", { class: "toolbar" }, prev, next, pageInfo), list);
  await load();
};
