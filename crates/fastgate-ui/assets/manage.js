// FastGate admin UI: the management pages (routes, upstreams and credentials, rules).
// Loaded before app.js; registers page renderers that app.js calls with its shared
// helpers (`el`, `api`, `t`, `when`, `show`, `fail`, `table`, ...). Every value from
// the API is written with textContent, never as HTML.
"use strict";

window.FastGatePages = window.FastGatePages || {};
