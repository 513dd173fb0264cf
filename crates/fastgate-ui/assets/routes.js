// FastGate admin UI: the routes page (list with filters, the create/edit form with the
// server's messages by field, toggle, delete, the dry run and the probe). Loaded after
// manage.js, whose shared pieces it uses, and before app.js, which calls the renderer
// registered here. Every value from the API is written as text, never as HTML.
"use strict";

(function () {
  const pages = window.FastGatePages;
  const {
    enc, pill, sourcePill, option, notice, clearStatus, actionButton, confirmed, field,
    checkbox, pre, facts, wideTable, longText, splitList, showFieldError, clearFieldErrors,
    jsonArea, parseObject,
  } = window.FastGateManage;
  // --- routes ----------------------------------------------------------------

  // What the server puts before a field's path: the object's name in place of its
  // list position (`routes[chat].`, `upstreams[openai].credentials[k2].`).
  const ROUTE_PREFIX = /^routes\[[^\]]*\]\./;

  // A route as listed, made into a request body: the listing's extra fields go
  // (values shown as `[redacted]` are restored by the server from the stored route).
  function routeBody(route) {
    const body = JSON.parse(JSON.stringify(route));
    delete body.source;
    delete body.path;
    delete body.methods;
    return body;
  }

  const ROUTE_TEMPLATE = {
    name: "", priority: 100, match: { path: "/", methods: [] }, upstream: "",
    target_path: null, strip_prefix: false, retries: 0, active: true, auth: true,
  };

  function routeInputs(h, upstreams, isNew) {
    const { el, t } = h;
    const upstream = el("select", { id: "rf-upstream" }, ...upstreams.map((n) => option(h, n, n)));
    const f = {
      name: field(h, t("manage.name"), el("input", { id: "rf-name", maxlength: "128", autocomplete: "off" }),
        isNew ? t("manage.name_hint") : null),
      path: field(h, t("manage.route_path"), el("input", { id: "rf-path", placeholder: "/v1/**" }), t("manage.route_path_hint")),
      methods: field(h, t("manage.route_methods"), el("input", { id: "rf-methods", placeholder: "GET, POST" }), t("manage.route_methods_hint")),
      upstream: field(h, t("manage.upstream"), upstream),
      priority: field(h, t("manage.route_priority"), el("input", { id: "rf-priority", type: "number", step: "1" }), t("manage.route_priority_hint")),
      target_path: field(h, t("manage.route_target"), el("input", { id: "rf-target", placeholder: t("manage.optional") })),
      retries: field(h, t("manage.route_retries"), el("input", { id: "rf-retries", type: "number", min: "0", step: "1" })),
      strip_prefix: checkbox(h, "rf-strip", t("manage.route_strip")),
      auth: checkbox(h, "rf-auth", t("manage.route_auth")),
      active: checkbox(h, "rf-active", t("manage.enabled")),
    };
    if (!isNew) f.name.input.disabled = true;
    return f;
  }

  function fillRouteInputs(f, r) {
    const m = r.match || {};
    f.name.input.value = r.name || "";
    f.path.input.value = m.path || "";
    f.methods.input.value = (m.methods || []).join(", ");
    const up = f.upstream.input;
    if (r.upstream && ![...up.options].some((o) => o.value === r.upstream)) {
      up.append(new Option(r.upstream, r.upstream));
    }
    up.value = r.upstream || "";
    f.priority.input.value = r.priority === undefined ? "100" : String(r.priority);
    f.target_path.input.value = r.target_path || "";
    f.retries.input.value = String(r.retries || 0);
    f.strip_prefix.input.checked = !!r.strip_prefix;
    f.auth.input.checked = r.auth !== false;
    f.active.input.checked = r.active !== false;
  }

  function readRouteInputs(f, r) {
    r.name = f.name.input.value.trim();
    r.match = Object.assign({}, r.match || {}, {
      path: f.path.input.value.trim(),
      methods: splitList(f.methods.input.value).map((m) => m.toUpperCase()),
    });
    r.upstream = f.upstream.input.value;
    const prio = f.priority.input.value.trim();
    r.priority = prio === "" ? 100 : Number(prio);
    const target = f.target_path.input.value.trim();
    r.target_path = target === "" ? null : target;
    const retries = f.retries.input.value.trim();
    r.retries = retries === "" ? 0 : Number(retries);
    r.strip_prefix = f.strip_prefix.input.checked;
    r.auth = f.auth.input.checked;
    r.active = f.active.input.checked;
    return r;
  }

  // The create / edit form: the common fields as inputs, the whole route as JSON
  // (kept in step both ways) for every other field.
  function routeForm(h, route, upstreams, done) {
    const { el, t, api } = h;
    const isNew = !route;
    const start = isNew ? Object.assign({}, ROUTE_TEMPLATE, { upstream: upstreams[0] || "" }) : routeBody(route);
    const f = routeInputs(h, upstreams, isNew);
    const json = field(h, t("manage.json_full"), jsonArea(h, "rf-json", start, 16), t("manage.json_hint"));
    const top = el("div", { class: "form-error", id: "rf-error", role: "alert" });
    fillRouteInputs(f, start);
    const current = () => readRouteInputs(f, parseObject(h, json.input.value));
    for (const x of Object.values(f)) {
      x.input.addEventListener("change", () => {
        try { json.input.value = JSON.stringify(current(), null, 2); } catch (_) { /* shown on save */ }
      });
    }
    json.input.addEventListener("change", () => {
      try { json.error.textContent = ""; fillRouteInputs(f, parseObject(h, json.input.value)); } catch (e) { json.error.textContent = e.message; }
    });
    const advanced = el("details", { class: "advanced" }, el("summary", {}, t("manage.advanced")), json.wrap);
    const save = el("button", { type: "submit", class: "primary", id: "rf-save" }, isNew ? t("common.create") : t("manage.save"));
    const cancel = el("button", { type: "button", onclick: () => done(null) }, t("common.cancel"));
    const form = el("form", { class: "card editor", id: "route-form", novalidate: "" },
      el("h2", {}, isNew ? t("manage.route_new") : t("manage.editing") + " " + route.name), top,
      el("div", { class: "form-grid" }, ...[f.name, f.path, f.methods, f.upstream, f.priority, f.target_path, f.retries].map((x) => x.wrap)),
      el("div", { class: "toolbar" }, f.active.wrap, f.auth.wrap, f.strip_prefix.wrap),
      advanced, el("div", { class: "toolbar" }, save, cancel));
    const fields = [["name", f.name], ["match.path", f.path], ["match.methods", f.methods], ["upstream", f.upstream],
      ["priority", f.priority], ["target_path", f.target_path], ["retries", f.retries]];
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearFieldErrors(form);
      top.textContent = "";
      let body;
      try { body = current(); } catch (e) { json.error.textContent = e.message; advanced.open = true; return; }
      try {
        if (isNew) await api("/admin/api/routes", { method: "POST", json: body });
        else await api("/admin/api/routes/" + enc(route.name), { method: "PUT", json: body });
        done(body.name);
      } catch (e) { showFieldError(h, e, fields, json, top, ROUTE_PREFIX); }
    });
    return form;
  }

  // The dry run: what a request would do, nothing sent.
  function routeTester(h) {
    const { el, t, api } = h;
    const methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    const f = {
      method: field(h, t("manage.method"), el("select", { id: "rt-method" }, ...methods.map((m) => option(h, m, m, m === "POST")))),
      path: field(h, t("manage.route_path"), el("input", { id: "rt-path", placeholder: "/v1/chat/completions?x=1" })),
      headers: field(h, t("manage.test_headers"), el("textarea", { id: "rt-headers", rows: "3", spellcheck: "false", placeholder: "x-tenant: acme" })),
      body: field(h, t("manage.test_body"), el("textarea", { id: "rt-body", rows: "3", spellcheck: "false", placeholder: "{\"model\": \"demo\"}" })),
    };
    const top = el("div", { class: "form-error", role: "alert" });
    const result = el("div", { id: "rt-result" });
    const form = el("form", { class: "card editor", id: "route-test", novalidate: "" },
      el("h2", {}, t("manage.test_title")), el("p", { class: "muted" }, t("manage.test_hint")), top,
      el("div", { class: "form-grid" }, f.method.wrap, f.path.wrap, f.headers.wrap, f.body.wrap),
      el("div", { class: "toolbar" }, el("button", { type: "submit", class: "primary", id: "rt-run" }, t("manage.test_run"))),
      result);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearFieldErrors(form);
      top.textContent = "";
      const req = { method: f.method.input.value, path: f.path.input.value.trim() };
      const headers = {};
      for (const line of f.headers.input.value.split("\n")) {
        const i = line.indexOf(":");
        if (i > 0) headers[line.slice(0, i).trim()] = line.slice(i + 1).trim();
      }
      if (Object.keys(headers).length) req.headers = headers;
      const bodyText = f.body.input.value.trim();
      if (bodyText) {
        try { req.body = JSON.parse(bodyText); } catch (_) { req.body = bodyText; }
      }
      try {
        result.replaceChildren(dryRunReport(h, await api("/admin/api/routes/test", { method: "POST", json: req })));
      } catch (e) {
        result.replaceChildren();
        showFieldError(h, e, [["method", f.method], ["path", f.path], ["headers", f.headers], ["body", f.body]], null, top, ROUTE_PREFIX);
      }
    });
    return form;
  }

  function headerTable(h, headers) {
    return h.table([
      { label: h.t("manage.header"), key: "name" },
      { label: h.t("manage.value"), key: "value" },
    ], headers || []);
  }

  function dryRunReport(h, r) {
    const { el, t } = h;
    const verdict = r.matched
      ? pill(h, true, t("manage.test_matched") + " " + r.route)
      : pill(h, false, t("manage.test_unmatched"));
    const parts = [el("div", { class: "toolbar" }, verdict), facts(h, [
      [t("manage.route_path"), r.normalized_path],
      [t("manage.upstream"), r.upstream],
      [t("manage.method"), r.method],
      [t("manage.target_url"), r.target_url],
      [t("manage.credential"), r.credential],
      ...(r.matched ? [] : [[t("manage.reason"), r.reason]]),
    ])];
    if (r.matched) {
      parts.push(el("h3", {}, t("manage.sent_headers")), headerTable(h, r.headers));
      parts.push(el("h3", {}, t("manage.sent_body")), r.body === null || r.body === undefined
        ? el("p", { class: "muted" }, t("manage.no_body")) : pre(h, r.body));
    }
    return el("div", { class: "result", id: "rt-report" }, ...parts);
  }

  function probeReport(h, r) {
    const { el, t } = h;
    const status = r.status === null || r.status === undefined ? pill(h, false, t("manage.probe_failed")) : h.statusPill(r.status);
    const headers = Object.entries(r.response_headers || {}).map(([name, value]) => ({ name, value: h.cell(value) }));
    return el("div", { class: "card result", id: "probe-report" },
      el("h2", {}, t("manage.probe_title") + " " + r.route),
      facts(h, [
        [t("manage.status"), status],
        [t("manage.upstream"), r.upstream],
        [t("manage.method"), r.method],
        [t("manage.target_url"), r.target_url],
        [t("manage.duration"), r.duration_ms === null || r.duration_ms === undefined ? null : h.num(r.duration_ms, 1) + " ms"],
        [t("manage.ttfb"), r.ttfb_ms === null || r.ttfb_ms === undefined ? null : h.num(r.ttfb_ms, 1) + " ms"],
        [t("manage.error"), r.error],
      ]),
      el("h3", {}, t("manage.response_headers")), headerTable(h, headers),
      el("h3", {}, t("manage.body_preview")), pre(h, r.body_preview || ""));
  }

  function routeRow(h, r, reload, edit, panel) {
    const { el, t, api } = h;
    const path = "/admin/api/routes/" + enc(r.name);
    const api_ = r.source === "api";
    const buttons = [];
    buttons.push(actionButton(h, api_ ? t("manage.edit") : t("manage.view"), "", async () => edit(r)));
    if (api_) {
      buttons.push(actionButton(h, r.active ? t("manage.disable") : t("manage.enable"), "", async () => {
        const after = await api(path + "/toggle", { method: "POST", json: { active: !r.active } });
        notice(h, (after.active ? t("manage.route_on") : t("manage.route_off")) + ": " + r.name);
      }, reload));
    }
    if (r.active) {
      buttons.push(actionButton(h, t("manage.probe"), "", async () => {
        panel.replaceChildren(el("p", { class: "muted" }, t("common.loading")));
        try {
          panel.replaceChildren(probeReport(h, await api(path + "/probe", { method: "POST" })));
        } catch (e) { panel.replaceChildren(); throw e; }
      }));
    }
    if (api_) {
      buttons.push(actionButton(h, t("manage.delete"), "danger", confirmed(t("manage.confirm_delete") + " " + r.name, async () => {
        await api(path, { method: "DELETE" });
        notice(h, t("manage.deleted") + ": " + r.name);
      }), reload));
    }
    return el("span", { class: "row-actions" }, ...buttons);
  }

  pages.routes = async function routes(h) {
    const { el, t, api } = h;
    let all = [];
    let upstreams = [];
    const search = el("input", { type: "search", id: "route-search", placeholder: t("common.search") });
    const filter = el("select", { id: "route-filter" }, option(h, "all", t("manage.all")),
      option(h, "on", t("manage.enabled")), option(h, "off", t("manage.disabled")));
    const editor = el("div", { id: "route-editor" });
    const panel = el("div", { id: "route-panel" });
    const list = el("div", { id: "route-list" });
    const tester = routeTester(h);
    async function load() {
      const [rs, us] = await Promise.all([api("/admin/api/routes"), api("/admin/api/upstreams")]);
      all = rs.data || [];
      upstreams = (us.data || []).map((u) => u.name);
      render();
    }
    function edit(route) {
      if (route && route.source === "config") {
        editor.replaceChildren(el("div", { class: "card editor" }, el("h2", {}, route.name),
          el("p", { class: "muted" }, t("manage.read_only")), pre(h, routeBody(route)),
          el("button", { type: "button", onclick: () => editor.replaceChildren() }, t("manage.close"))));
      } else {
        editor.replaceChildren(routeForm(h, route, upstreams, async (saved) => {
          editor.replaceChildren();
          if (saved) { notice(h, t("manage.saved") + ": " + saved); await load(); }
        }));
      }
      editor.scrollIntoView({ block: "nearest" });
    }
    function render() {
      const q = search.value.trim().toLowerCase();
      const state = filter.value;
      const rows = all.filter((r) => (state === "all" || (state === "on") === !!r.active)
        && (!q || [r.name, r.path, r.upstream].some((v) => String(v || "").toLowerCase().includes(q))));
      list.replaceChildren(wideTable(h, 900, [
        { label: t("manage.name"), key: "name" },
        { label: t("manage.route_path"), key: "path" },
        { label: t("manage.route_methods"), render: (r) => (r.methods || []).join(", ") || t("manage.any") },
        { label: t("manage.upstream"), key: "upstream" },
        { label: t("manage.route_priority"), key: "priority" },
        { label: t("manage.state"), render: (r) => pill(h, r.active, r.active ? t("manage.enabled") : t("manage.disabled")) },
        { label: t("manage.source"), render: (r) => sourcePill(h, r.source) },
        { label: "", render: (r) => routeRow(h, r, load, edit, panel) },
      ], rows));
    }
    search.addEventListener("input", render);
    filter.addEventListener("change", render);
    const create = el("button", { type: "button", class: "primary", id: "route-new", onclick: () => edit(null) }, t("manage.route_new"));
    h.show(el("div", { class: "toolbar" }, create, search, filter), editor, panel, list, tester);
    try { await load(); } catch (e) { h.fail(e); }
  };
})();
