// FastGate admin UI: the management pages (upstreams and credentials, rules,
// models). Loaded before app.js; registers page renderers that app.js calls with its
// shared helpers (`el`, `api`, `t`, `when`, `show`, `fail`, `table`, ...). Every value
// from the API is written with textContent (through `el`), never as HTML, and never
// as an attribute name.
"use strict";

window.FastGatePages = window.FastGatePages || {};

(function () {
  const pages = window.FastGatePages;
  const enc = encodeURIComponent;

  // --- shared pieces ---------------------------------------------------------

  function pill(h, good, text) {
    return h.el("span", { class: "pill " + (good ? "ok" : "bad") }, text);
  }

  function sourcePill(h, source) {
    return h.el("span", { class: "pill" }, source === "config" ? h.t("manage.source_config") : h.t("manage.source_api"));
  }

  function option(h, value, label, selected) {
    const o = h.el("option", { value }, label);
    if (selected) o.selected = true;
    return o;
  }

  // A success line in the page's status area (errors go there through h.fail).
  function notice(h, text) {
    h.status.textContent = text;
    h.status.className = "notice";
  }

  function clearStatus(h) {
    h.status.textContent = "";
    h.status.className = "muted";
  }

  // A button that runs `run`, shows its error, then calls `after`.
  function actionButton(h, label, cls, run, after, id) {
    const attrs = { type: "button", class: cls || "" };
    if (id) attrs.id = id;
    const b = h.el("button", attrs, label);
    b.addEventListener("click", async (ev) => {
      ev.stopPropagation();
      b.disabled = true;
      try {
        clearStatus(h);
        await run();
        if (after) await after();
      } catch (e) { h.fail(e); } finally { b.disabled = false; }
    });
    return b;
  }

  // Asks first (the browser's own dialog), then runs.
  function confirmed(message, run) {
    return async () => { if (window.confirm(message)) await run(); };
  }

  // A labelled input with a slot for the server's message about that field.
  function field(h, label, input, hint) {
    const error = h.el("div", { class: "field-error", role: "alert" });
    const wrap = h.el("label", { class: "field" }, h.el("span", { class: "field-label" }, label), input,
      hint ? h.el("span", { class: "muted field-hint" }, hint) : null, error);
    return { wrap, input, error };
  }

  function checkbox(h, id, label) {
    const input = h.el("input", { type: "checkbox", id });
    return { wrap: h.el("label", { class: "check" }, input, " ", label), input, error: null };
  }

  function pre(h, value, id) {
    const attrs = id ? { id } : {};
    return h.el("pre", attrs, typeof value === "string" ? value : JSON.stringify(value, null, 2));
  }

  // Label / value pairs; a value may be a node.
  function facts(h, pairs) {
    return h.el("dl", { class: "facts" }, ...pairs.flatMap(([k, v]) =>
      [h.el("dt", {}, k), h.el("dd", {}, v === null || v === undefined || v === "" ? "—" : v)]));
  }

  // A table that keeps its columns readable and scrolls sideways in its frame
  // instead of squeezing them (`min` is its least width in px).
  function wideTable(h, min, columns, rows) {
    const wrap = h.table(columns, rows);
    wrap.classList.add("wide");
    wrap.querySelector("table").style.minWidth = min + "px";
    return wrap;
  }

  // Long free text (a reason, an error, an excerpt) in a cell of a sensible width.
  function longText(h, text) {
    return text === null || text === undefined || text === "" ? "—" : h.el("span", { class: "long" }, text);
  }

  function splitList(text) {
    return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
  }

  // The field an admin API message is about: `routes[chat].match.path: …`,
  // `path: …`, `actions[0].disable: …` → the path before the first ": " with the
  // object prefix (`routes[name].`) taken off; null when the message names no field
  // (`request body: …`, a conflict).
  function messageField(message, prefix) {
    const m = String(message).replace(prefix, "");
    const colon = m.indexOf(": ");
    if (colon <= 0) return null;
    const path = m.slice(0, colon);
    if (!/^[A-Za-z_][A-Za-z0-9_.\-[\]]*$/.test(path)) return null;
    return { path, text: m };
  }

  // Shows `error` next to the field it names (`fields`: [path, field] pairs, the
  // longest match wins; `fallback` for a named field without an input of its own),
  // else at the form's top (`top`).
  function showFieldError(h, error, fields, fallback, top, prefix) {
    const found = messageField(error.message, prefix);
    let target = null;
    if (found) {
      let best = -1;
      for (const [path, f] of fields) {
        const hit = found.path === path || found.path.startsWith(path + ".") || found.path.startsWith(path + "[");
        if (hit && path.length > best) { best = path.length; target = f; }
      }
      if (!target) target = fallback;
    }
    if (target && target.error) {
      target.error.textContent = found.text;
      if (target.input) target.input.setAttribute("aria-invalid", "true");
      const details = target.error.closest("details");
      if (details) details.open = true;
    } else {
      top.textContent = error.message;
    }
  }

  function clearFieldErrors(form) {
    for (const e of form.querySelectorAll(".field-error")) e.textContent = "";
    for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
  }

  // A JSON editor of one object: a textarea that must hold a JSON object.
  function jsonArea(h, id, value, rows) {
    const area = h.el("textarea", { id, rows: String(rows || 14), spellcheck: "false", class: "json" });
    area.value = JSON.stringify(value, null, 2);
    return area;
  }

  function parseObject(h, text) {
    let v;
    try { v = JSON.parse(text); } catch (e) { throw new Error(h.t("manage.json_invalid") + ": " + e.message); }
    if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error(h.t("manage.json_object"));
    return v;
  }

  // The shared pieces, for routes.js (loaded after this script).
  window.FastGateManage = {
    enc, pill, sourcePill, option, notice, clearStatus, actionButton, confirmed, field,
    checkbox, pre, facts, wideTable, longText, splitList, showFieldError, clearFieldErrors,
    jsonArea, parseObject,
  };

  // --- upstreams and credentials -------------------------------------------------

  // What the server puts before a credential field's path.
  const CREDENTIAL_PREFIX = /^(?:upstreams\[[^\]]*\]\.)?credentials\[[^\]]*\]\./;

  function stateGood(state) { return state === "active"; }

  function stateLabel(h, state) {
    if (state === null || state === undefined) return "—";
    const key = "manage.cred_" + state;
    const text = h.t(key);
    return text === key ? String(state) : text;
  }

  function credentialActions(h, upstream, c, controls, reload) {
    const { t, api } = h;
    const base = "/admin/api/upstreams/" + enc(upstream) + "/credentials/" + enc(c.name);
    const state = c.health ? c.health.state : null;
    const set = (target) => async () => {
      const body = { state: target };
      const reason = controls.reason.value.trim();
      if (reason) body.reason = reason;
      const until = controls.until.value.trim();
      if (until && target === "disabled") body.until = until;
      const r = await api(base + "/state", { method: "POST", json: body });
      notice(h, upstream + "/" + c.name + ": " + stateLabel(h, r.health ? r.health.state : target));
    };
    const buttons = [];
    if (state && state !== "active") buttons.push(actionButton(h, t("manage.enable"), "", set("active"), reload));
    if (state !== "disabled") buttons.push(actionButton(h, t("manage.disable"), "", set("disabled"), reload));
    if (state !== "banned") buttons.push(actionButton(h, t("manage.ban"), "danger", set("banned"), reload));
    if (c.source === "api") {
      buttons.push(actionButton(h, t("manage.delete"), "danger", confirmed(t("manage.confirm_delete") + " " + upstream + "/" + c.name, async () => {
        await api(base, { method: "DELETE" });
      }), reload));
    }
    return h.el("span", { class: "row-actions" }, ...buttons);
  }

  function credentialTable(h, upstream, creds, controls, reload) {
    const { el, t, when, num } = h;
    const hp = (c) => c.health || {};
    return wideTable(h, 1280, [
      { label: t("manage.name"), key: "name" },
      { label: t("manage.key_hint"), key: "key_hint" },
      { label: t("manage.weight"), key: "weight" },
      { label: t("manage.state"), render: (c) => c.health
        ? pill(h, stateGood(c.health.state), stateLabel(h, c.health.state)) : el("span", { class: "pill" }, "—") },
      { label: t("manage.reason"), render: (c) => longText(h, hp(c).reason) },
      { label: t("manage.since"), render: (c) => when(hp(c).since) },
      { label: t("manage.until"), render: (c) => when(hp(c).until) },
      { label: t("manage.changed_by"), render: (c) => h.cell(hp(c).changed_by || null) },
      { label: t("manage.counters"), render: (c) => c.health
        ? num(hp(c).requests) + " / " + num(hp(c).errors) + " / " + num(hp(c).tokens) : "—" },
      { label: t("manage.circuit"), render: (c) => h.cell(hp(c).circuit || null) },
      { label: t("manage.last_error"), render: (c) => hp(c).last_error
        ? longText(h, when(hp(c).last_error_at) + " " + hp(c).last_error) : "—" },
      { label: t("manage.last_used"), render: (c) => when(hp(c).last_used_at) },
      { label: t("manage.quota"), render: (c) => hp(c).quota ? quotaText(h, hp(c).quota) : "—" },
      { label: t("manage.source"), render: (c) => sourcePill(h, c.source) },
      { label: "", render: (c) => credentialActions(h, upstream, c, controls, reload) },
    ], creds);
  }

  function quotaText(h, q) {
    const part = (used, limit) => h.num(used) + (limit === null || limit === undefined ? "" : " / " + h.num(limit));
    return h.t("manage.requests") + " " + part(q.requests_today, q.requests_per_day)
      + ", " + h.t("manage.tokens") + " " + part(q.tokens_today, q.tokens_per_day);
  }

  // Adds a provider key. The key field is write-only: a password input, emptied after
  // sending, and never filled from the API (which never returns a key).
  function addCredentialForm(h, upstream, reload) {
    const { el, t, api } = h;
    const id = (s) => "cred-" + s + "-" + upstream;
    const f = {
      name: field(h, t("manage.name"), el("input", { id: id("name"), maxlength: "128", autocomplete: "off", class: "cred-name" })),
      key: field(h, t("manage.key"), el("input", { id: id("key"), type: "password", autocomplete: "new-password", class: "cred-key" })),
      weight: field(h, t("manage.weight"), el("input", { id: id("weight"), type: "number", min: "1", step: "1", value: "1", class: "cred-weight" })),
    };
    const top = el("div", { class: "form-error", role: "alert" });
    const form = el("form", { class: "cred-add", novalidate: "" }, el("h3", {}, t("manage.cred_add")), top,
      el("div", { class: "form-grid" }, f.name.wrap, f.key.wrap, f.weight.wrap),
      el("div", { class: "toolbar" }, el("button", { type: "submit", class: "primary" }, t("manage.cred_add"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearFieldErrors(form);
      top.textContent = "";
      const body = { name: f.name.input.value.trim(), key: f.key.input.value };
      const weight = f.weight.input.value.trim();
      if (weight) body.weight = Number(weight);
      try {
        await api("/admin/api/upstreams/" + enc(upstream) + "/credentials", { method: "POST", json: body });
        f.key.input.value = "";
        notice(h, t("manage.saved") + ": " + upstream + "/" + body.name);
        await reload();
      } catch (e) {
        showFieldError(h, e, [["name", f.name], ["key", f.key], ["weight", f.weight]], null, top, CREDENTIAL_PREFIX);
      }
    });
    return form;
  }

  // The JSON editor of an upstream (new, or an API-managed one). Its keys are not in
  // it: they are added, changed and removed in the credentials table.
  // An object edited as JSON: created with POST on `collection`, replaced with PUT on
  // `collection/name`; the server's refusal is shown under the JSON box.
  // o: { formId, jsonId, saveId?, rows, hint, title, collection, name (null: new), body }.
  function jsonEditor(h, o, done) {
    const { el, t, api } = h;
    const isNew = o.name === null;
    const json = field(h, t("manage.json_full"), jsonArea(h, o.jsonId, o.body, o.rows), t(o.hint));
    const top = el("div", { class: "form-error", role: "alert" });
    const save = { type: "submit", class: "primary" };
    if (o.saveId) save.id = o.saveId;
    const form = el("form", { class: "card editor", id: o.formId, novalidate: "" },
      el("h2", {}, isNew ? t(o.title) : t("manage.editing") + " " + o.name), top, json.wrap,
      el("div", { class: "toolbar" }, el("button", save, isNew ? t("common.create") : t("manage.save")),
        el("button", { type: "button", onclick: () => done(null) }, t("common.cancel"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearFieldErrors(form);
      top.textContent = "";
      try {
        const value = parseObject(h, json.input.value);
        if (isNew) await api(o.collection, { method: "POST", json: value });
        else await api(o.collection + "/" + enc(o.name), { method: "PUT", json: value });
        done(value.name);
      } catch (e) { json.error.textContent = e.message; }
    });
    return form;
  }

  function upstreamEditor(h, upstream, done) {
    let body = { name: "", kind: "openai", base_url: "" };
    if (upstream) {
      body = JSON.parse(JSON.stringify(upstream));
      delete body.source;
      delete body.credentials;
    }
    return jsonEditor(h, {
      formId: "upstream-form", jsonId: "uf-json", saveId: "uf-save", rows: 18,
      hint: "manage.upstream_json_hint", title: "manage.upstream_new",
      collection: "/admin/api/upstreams", name: upstream ? upstream.name : null, body,
    }, done);
  }

  function upstreamSection(h, u, creds, editor, reload) {
    const { el, t, api } = h;
    const controls = {
      reason: el("input", { class: "state-reason", maxlength: "500", placeholder: t("manage.reason_optional") }),
      until: el("input", { class: "state-until", placeholder: t("manage.until_hint") }),
    };
    const head = [el("h2", {}, u.name), sourcePill(h, u.source)];
    if (u.source === "api") {
      head.push(actionButton(h, t("manage.edit"), "", async () => {
        editor.replaceChildren(upstreamEditor(h, u, async (saved) => {
          editor.replaceChildren();
          if (saved) { notice(h, t("manage.saved") + ": " + saved); await reload(); }
        }));
      }));
      head.push(actionButton(h, t("manage.delete"), "danger", confirmed(t("manage.confirm_delete") + " " + u.name, async () => {
        await api("/admin/api/upstreams/" + enc(u.name), { method: "DELETE" });
        notice(h, t("manage.deleted") + ": " + u.name);
      }), reload));
    }
    return el("section", { class: "card upstream", "data-upstream": u.name },
      el("div", { class: "toolbar" }, ...head),
      facts(h, [[t("manage.kind"), u.kind], [t("manage.base_url"), u.base_url]]),
      el("h3", {}, t("manage.credentials")),
      el("div", { class: "toolbar" }, el("span", { class: "muted" }, t("manage.state_hint")), controls.reason, controls.until),
      credentialTable(h, u.name, creds, controls, reload),
      addCredentialForm(h, u.name, reload));
  }

  pages.upstreams = async function upstreams(h) {
    const { el, t, api } = h;
    const editor = el("div", { id: "upstream-editor" });
    const problems = el("div");
    const list = el("div", { id: "upstream-list" });
    async function load() {
      const v = await api("/admin/api/upstreams");
      const ups = v.data || [];
      const creds = await Promise.all(ups.map((u) =>
        api("/admin/api/upstreams/" + enc(u.name) + "/credentials").then((c) => c.data || [], () => [])));
      problems.replaceChildren(...(v.problems || []).map((p) => el("p", { class: "error" }, p)));
      if (v.master_key_id) problems.append(el("p", { class: "muted" }, t("manage.master_key") + ": " + v.master_key_id));
      list.replaceChildren(...(ups.length ? ups.map((u, i) => upstreamSection(h, u, creds[i], editor, load))
        : [el("p", { class: "muted" }, t("common.none"))]));
    }
    const create = el("button", { type: "button", class: "primary", id: "upstream-new", onclick: () => {
      editor.replaceChildren(upstreamEditor(h, null, async (saved) => {
        editor.replaceChildren();
        if (saved) { notice(h, t("manage.saved") + ": " + saved); await load(); }
      }));
    } }, t("manage.upstream_new"));
    h.show(el("div", { class: "toolbar" }, create), editor, problems, list);
    try { await load(); } catch (e) { h.fail(e); }
  };

  // --- rules ------------------------------------------------------------------

  function eventTable(h, events) {
    const { t, when } = h;
    return wideTable(h, 1000, [
      { label: t("manage.time"), render: (e) => when(e.at) },
      { label: t("manage.rule"), key: "rule" },
      { label: t("manage.upstream"), key: "upstream" },
      { label: t("manage.credential"), key: "credential" },
      { label: t("manage.status"), render: (e) => e.status === null || e.status === undefined ? "—" : h.statusPill(e.status) },
      { label: t("manage.action"), key: "action" },
      { label: t("manage.state"), render: (e) => stateLabel(h, e.state_before) + " → " + stateLabel(h, e.state_after) },
      { label: t("manage.excerpt"), render: (e) => e.excerpt ? h.el("span", { class: "long excerpt" }, e.excerpt) : "—" },
    ], events);
  }

  function ruleEditor(h, rule, done) {
    let body = { name: "", description: "", enabled: true, when: { status: [401, 403] }, threshold: { hits: 1, within: "1m" }, actions: [{ log: true }] };
    if (rule) { body = JSON.parse(JSON.stringify(rule)); delete body.source; delete body.recent_events; }
    return jsonEditor(h, {
      formId: "rule-form", jsonId: "rule-json", rows: 14,
      hint: "manage.rule_json_hint", title: "manage.rule_new",
      collection: "/admin/api/rules", name: rule ? rule.name : null, body,
    }, done);
  }

  function ruleActions(h, r, editor, detail, reload) {
    const { t, api } = h;
    const path = "/admin/api/rules/" + enc(r.name);
    const buttons = [actionButton(h, t("manage.firings"), "", async () => {
      const full = await api(path);
      detail.replaceChildren(h.el("div", { class: "card result", id: "rule-detail" },
        h.el("h2", {}, t("manage.firings") + ": " + r.name), eventTable(h, full.recent_events || [])));
    })];
    if (r.source === "api") {
      buttons.push(actionButton(h, r.enabled ? t("manage.disable") : t("manage.enable"), "", async () => {
        await api(path + "/toggle", { method: "POST", json: { enabled: !r.enabled } });
      }, reload));
      buttons.push(actionButton(h, t("manage.edit"), "", async () => {
        editor.replaceChildren(ruleEditor(h, r, async (saved) => {
          editor.replaceChildren();
          if (saved) { notice(h, t("manage.saved") + ": " + saved); await reload(); }
        }));
      }));
      buttons.push(actionButton(h, t("manage.delete"), "danger", confirmed(t("manage.confirm_delete") + " " + r.name, async () => {
        await api(path, { method: "DELETE" });
      }), reload));
    }
    return h.el("span", { class: "row-actions" }, ...buttons);
  }

  pages.rules = async function rules(h) {
    const { el, t, api } = h;
    const editor = el("div", { id: "rule-editor" });
    const detail = el("div");
    const builtin = el("p", { class: "muted" });
    const list = el("div", { id: "rule-list" });
    const events = el("div", { id: "rule-events" });
    const ruleFilter = el("input", { id: "event-rule", placeholder: t("manage.rule") });
    const compact = (v) => v === undefined ? "—" : JSON.stringify(v);
    // Pages of 100, newest first; "Older" asks for the events before the last shown.
    let shown = [];
    let nextBefore = null;
    const older = el("button", { type: "button", id: "events-older" }, t("manage.older"));
    async function loadEvents(more) {
      const q = new URLSearchParams({ limit: "100" });
      if (ruleFilter.value.trim()) q.set("rule", ruleFilter.value.trim());
      if (more && nextBefore !== null) q.set("before", String(nextBefore));
      const v = await api("/admin/api/rule-events?" + q.toString());
      shown = (more ? shown : []).concat(v.data || []);
      nextBefore = v.next_before === undefined ? null : v.next_before;
      older.hidden = nextBefore === null;
      events.replaceChildren(eventTable(h, shown), older);
    }
    older.addEventListener("click", async () => {
      try { await loadEvents(true); } catch (e) { h.fail(e); }
    });
    async function load() {
      const v = await api("/admin/api/rules");
      builtin.textContent = v.builtin_rules ? t("manage.builtin_on") : t("manage.builtin_off");
      list.replaceChildren(wideTable(h, 1000, [
        { label: t("manage.name"), key: "name" },
        { label: t("manage.description"), render: (r) => longText(h, r.description) },
        { label: t("manage.state"), render: (r) => pill(h, r.enabled, r.enabled ? t("manage.enabled") : t("manage.disabled")) },
        { label: t("manage.upstreams"), render: (r) => (r.upstreams || []).join(", ") || t("manage.all") },
        { label: t("manage.when"), render: (r) => el("code", {}, compact(r.when)) },
        { label: t("manage.actions"), render: (r) => el("code", {}, compact(r.actions)) },
        { label: t("manage.source"), render: (r) => sourcePill(h, r.source) },
        { label: "", render: (r) => ruleActions(h, r, editor, detail, load) },
      ], v.data || []));
      await loadEvents(false);
    }
    const filterForm = el("form", { class: "toolbar", id: "event-filter" }, ruleFilter,
      el("button", { type: "submit" }, t("common.search")));
    filterForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try { await loadEvents(false); } catch (e) { h.fail(e); }
    });
    const create = el("button", { type: "button", class: "primary", id: "rule-new", onclick: () => {
      editor.replaceChildren(ruleEditor(h, null, async (saved) => {
        editor.replaceChildren();
        if (saved) { notice(h, t("manage.saved") + ": " + saved); await load(); }
      }));
    } }, t("manage.rule_new"));
    h.show(el("div", { class: "toolbar" }, create, actionButton(h, t("common.refresh"), "", load)), builtin, editor, detail, list,
      el("h2", {}, t("manage.recent_firings")), filterForm, events);
    try { await load(); } catch (e) { h.fail(e); }
  };

  // --- models (read-only) -------------------------------------------------------

  pages.models = async function models(h) {
    const { t, api } = h;
    try {
      const v = await api("/admin/api/models");
      h.show(h.table([
        { label: t("manage.name"), key: "name" },
        { label: t("manage.kind"), key: "kind" },
        { label: t("manage.deployments"), render: (m) => (m.deployments || [])
          .map((d) => d.upstream + " / " + d.model + (d.weight && d.weight !== 1 ? " ×" + d.weight : "")).join(", ") || "—" },
        { label: t("manage.fallbacks"), render: (m) => (m.fallbacks || []).join(", ") || "—" },
        { label: t("manage.source"), render: (m) => sourcePill(h, m.source) },
      ], v.data || []));
    } catch (e) { h.fail(e); }
  };
})();
