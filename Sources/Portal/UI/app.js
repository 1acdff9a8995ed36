// The Streamgate Portal's web UI: one ES module, no build step, no
// dependencies. It talks to the portal's REST API (/api/v1, same origin) and,
// in the test console, to the gateways through the JavaScript SDK the portal
// serves at /sdk/streamgate.js.
//
// Rules this file keeps:
// - Every string from the server reaches the DOM through textContent (the
//   `h` helper below), never innerHTML: an API description cannot inject markup.
// - The page's Content-Security-Policy forbids inline scripts and handlers:
//   all handlers are attached with addEventListener.
// - The session token lives in sessionStorage (gone with the tab) and only
//   ever travels in the Authorization header, never in a URL.
// - Tokens minted here are kept in memory only (the portal shows them once).

// ------------------------------------------------------------------ state --

const SESSION_KEY = "streamgate.portal.session";
const DEFAULT_PARAM_VALUE = "example";

const state = {
  /** {token, username, role, expires_at} of the logged-in user, or null. */
  session: loadSession(),
  /** Where to go after logging in (the page asked for before the login). */
  next: null,
  /** A message for the login view (why the user is back there). */
  loginNotice: null,
  /** The gateways' WebSocket URLs (from GET /api/v1/config, or as the user edited them). */
  gatewayUrls: null,
  /** "portal" when /api/v1/config said, "guess" when it did not answer, "edited" after the user changed them. */
  gatewayUrlsSource: null,
  /** API name -> the token the console and the snippets use (minted here, or pasted). Memory only. */
  workingTokens: new Map(),
  /** "api|path|param" -> the value the console and the snippets put in for {param}. */
  paramValues: new Map(),
  /** The snippets' language: chosen once, for every endpoint. */
  snippetLanguage: "js",
};

function loadSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
    return session && typeof session.token === "string" ? session : null;
  } catch {
    return null;
  }
}

function saveSession(session) {
  state.session = session;
  if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION_KEY);
}

const isAdmin = () => state.session?.role === "admin";

// -------------------------------------------------------------------- DOM --

/**
 * Creates an element. `props`: `class`, `text`, `on<event>` (a function,
 * attached with addEventListener), `dataset`, `value`/`checked`/`disabled`/...
 * (set as properties), anything else as an attribute. Children are nodes or
 * strings (always text nodes: never parsed as HTML).
 */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [key, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (key === "class") el.className = v;
    else if (key === "text") el.textContent = v;
    else if (key === "dataset") Object.assign(el.dataset, v);
    else if (key === "value") value = v; // after the children: a <select> needs its options first
    else if (key.startsWith("on") && typeof v === "function") el.addEventListener(key.slice(2), v);
    // Properties; `checked` and `selected` stay attributes, so that form.reset() comes back to them.
    else if (["disabled", "hidden", "required", "readOnly", "multiple"].includes(key)) el[key] = true;
    else el.setAttribute(key, v === true ? "" : String(v));
  }
  append(el, children);
  if (value !== undefined) el.value = value;
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let uniqueIds = 0;
const nextId = (prefix = "f") => `${prefix}${++uniqueIds}`;

/**
 * A labelled form control. `name` (optional) is the API's field name, kept
 * as data-field: an error that names the field is shown next to it.
 */
function field(label, control, { hint, name, wide } = {}) {
  control.id ||= nextId();
  if (name) control.dataset.field = name;
  const hintEl = hint ? h("small", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: wide ? "field wide" : "field" }, h("label", { for: control.id }, label), control, hintEl);
}

function button(label, onclick, { kind = "secondary", type = "button", ...props } = {}) {
  return h("button", { type, class: `btn ${kind}`, onclick, ...props }, label);
}

function link(label, hash, props = {}) {
  return h("a", { href: `#${hash}`, ...props }, label);
}

function toast(text, kind = "ok") {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

/** "2026-12-03 09:37" in local time, from Unix seconds. */
function formatTime(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "in 23 h", "5 min ago": how far a Unix time is from now. */
function relativeTime(seconds) {
  const delta = seconds - Date.now() / 1000;
  const abs = Math.abs(delta);
  const [n, unit] = abs < 90 ? [abs, "s"] : abs < 5400 ? [abs / 60, "min"] : abs < 129600 ? [abs / 3600, "h"] : [abs / 86400, "d"];
  const text = `${Math.round(n)} ${unit}`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

function clockTime(date) {
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

// ------------------------------------------------------------- REST API --

/** A refused REST call: the portal's {"error": {"code", "message", "field"}}. */
class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field ?? null;
  }
}

/**
 * Calls the portal's REST API; resolves with the JSON body (null for 204),
 * throws an ApiError. A 401 on anything but the login means the session is
 * gone: the user is sent back to the login view.
 */
async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.session) headers.Authorization = `Bearer ${state.session.token}`;
  let response;
  try {
    response = await fetch(path, { method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, "network", `The portal did not answer (${error.message}).`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const e = data?.error;
    if (response.status === 401 && path !== "/api/v1/login") sessionEnded();
    throw new ApiError(response.status, e?.code ?? `http_${response.status}`,
      e?.message ?? `${method} ${path} answered ${response.status} ${response.statusText}`.trim(), e?.field);
  }
  return data;
}

/** The session expired or was ended elsewhere: back to the login, then back here. */
function sessionEnded() {
  if (!state.session) return;
  saveSession(null);
  state.loginNotice = "Your session has ended. Log in again to continue.";
  state.next = currentPath();
  go("/login");
}

/** The gateways' WebSocket URLs: what the portal says, else a guess the user can edit. */
async function gatewayUrls() {
  if (state.gatewayUrls) return state.gatewayUrls;
  try {
    const config = await call("GET", "/api/v1/config");
    if (Array.isArray(config?.gateway_urls) && config.gateway_urls.length > 0) {
      state.gatewayUrls = config.gateway_urls.map(String);
      state.gatewayUrlsSource = "portal";
    }
  } catch (error) {
    if (error.status === 401) throw error;
  }
  if (!state.gatewayUrls) {
    state.gatewayUrls = [`${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:8080/ws`];
    state.gatewayUrlsSource = "guess";
  }
  return state.gatewayUrls;
}

// ---------------------------------------------------------- form errors --

/** An empty error box for a form; `showError` fills it. */
function errorBox() {
  return h("div", { class: "form-error", role: "alert", tabindex: "-1", hidden: true });
}

/**
 * Shows an error in `box`: its message, and the field it names; the control
 * of that field inside `scope` (found by data-field) is marked and focused.
 */
function showError(box, error, scope) {
  clearErrors(box, scope);
  box.append(h("strong", {}, error.code && error.code !== "local" ? `${error.code}: ` : "", error.message));
  if (error.field) box.append(h("div", { class: "error-field" }, "Field: ", h("code", {}, error.field)));
  box.hidden = false;
  const control = scope && error.field ? findField(scope, error.field) : null;
  if (control) {
    control.setAttribute("aria-invalid", "true");
    control.closest(".field, fieldset")?.append(h("small", { class: "field-error" }, error.message));
    (control.matches("input, select, textarea, button") ? control : control.querySelector("input, select, textarea"))?.focus();
  } else {
    box.focus();
  }
}

function clearErrors(box, scope) {
  box.replaceChildren();
  box.hidden = true;
  if (!scope) return;
  for (const el of scope.querySelectorAll(".field-error")) el.remove();
  for (const el of scope.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/** The control for `name` (`endpoints[1].key`), else for its parent (`subscribe[0]` -> `subscribe`). */
function findField(scope, name) {
  while (name) {
    const el = scope.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (el) return el;
    const shorter = name.replace(/(\[\d+\]|\.[^.[\]]*)$/, "");
    if (shorter === name) return null;
    name = shorter;
  }
  return null;
}

/** An error the UI finds before asking the server, shown the same way. */
const localError = (message, field) => new ApiError(0, "local", message, field);

/**
 * Runs a form's submit: disables its submit button meanwhile and shows any
 * error in the form's box.
 */
function onSubmit(form, box, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    clearErrors(box, form);
    // Busy while the portal works (a login's password hash takes a moment).
    if (submit) {
      submit.disabled = true;
      submit.classList.add("busy");
      submit.setAttribute("aria-busy", "true");
    }
    try {
      await action();
    } catch (error) {
      showError(box, error, form);
    } finally {
      if (submit) {
        submit.disabled = false;
        submit.classList.remove("busy");
        submit.removeAttribute("aria-busy");
      }
    }
  });
}

// ----------------------------------------------------------------- router --

const main = document.getElementById("app");
const topbar = document.getElementById("topbar");
let renderCount = 0;
let leaving = [];

const routes = [
  { pattern: /^\/login$/, view: viewLogin },
  { pattern: /^\/apis$/, view: viewApiList },
  { pattern: /^\/apis\/new$/, view: () => viewApiForm(null) },
  { pattern: /^\/apis\/([^/]+)\/edit$/, view: (m) => viewApiForm(decodeURIComponent(m[1])) },
  {
    pattern: /^\/apis\/([^/]+)(?:\/(overview|tokens|console|snippets))?$/,
    view: (m, view) => viewApi(decodeURIComponent(m[1]), m[2] ?? "overview", view),
  },
  { pattern: /^\/tokens$/, view: viewTokens },
  { pattern: /^\/keys$/, view: viewKeys },
  { pattern: /^\/users$/, view: viewUsers },
];

const currentPath = () => location.hash.replace(/^#/, "") || "/apis";

function go(path) {
  if (currentPath() === path && location.hash) render();
  else location.hash = `#${path}`;
}

/** Renders the view of the current hash. Views are async; a slower, older one is dropped. */
async function render() {
  for (const cleanup of leaving.splice(0)) {
    try { cleanup(); } catch { /* the view is gone anyway */ }
  }
  const ticket = ++renderCount;
  const path = currentPath();
  if (!state.session && path !== "/login") {
    state.next = path;
    return go("/login");
  }
  if (state.session && path === "/login") return go(state.next ?? "/apis");
  renderTopbar(path);
  const view = { onLeave: (fn) => leaving.push(fn), stale: () => ticket !== renderCount };
  const route = routes.find((r) => r.pattern.test(path));
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    const node = route ? await route.view(path.match(route.pattern), view) : notFound(path);
    if (view.stale()) return;
    main.replaceChildren(node);
    // Move focus into the new view (its first field when it asks for one, else
    // its heading), so keyboard and screen-reader users follow.
    const target = main.querySelector("[data-autofocus]") ?? main.querySelector("h1");
    if (target && !main.contains(document.activeElement)) {
      if (target.tagName === "H1") target.setAttribute("tabindex", "-1");
      target.focus({ preventScroll: true });
    }
  } catch (error) {
    if (view.stale() || !state.session) return;
    main.replaceChildren(h("section", { class: "card" }, h("h1", {}, "Something went wrong"),
      h("p", { class: "form-error" }, `${error.code ?? "error"}: ${error.message}`), link("Back to the APIs", "/apis")));
  }
}

function notFound(path) {
  return h("section", { class: "card" }, h("h1", {}, "No such page"), h("p", {}, `Nothing lives at ${path}.`), link("Back to the APIs", "/apis"));
}

function renderTopbar(path) {
  if (!state.session) {
    topbar.hidden = true;
    topbar.replaceChildren();
    return;
  }
  const item = (label, hash) => link(label, hash, { "aria-current": path === hash || path.startsWith(`${hash}/`) ? "page" : null });
  topbar.hidden = false;
  topbar.replaceChildren(
    h("a", { class: "brand", href: "#/apis" }, h("span", { class: "logo", "aria-hidden": "true" }, "◆"), "Streamgate Portal"),
    h("nav", { "aria-label": "Main" }, item("APIs", "/apis"), item("Tokens", "/tokens"), item("Signing keys", "/keys"),
      isAdmin() ? item("Users", "/users") : null),
    h("div", { class: "who" },
      h("span", { id: "whoami" }, state.session.username),
      h("span", { class: `badge role-${state.session.role}` }, state.session.role),
      button("Log out", logout, { id: "logout" })),
  );
}

async function logout() {
  try { await call("POST", "/api/v1/logout"); } catch { /* the session is dropped here either way */ }
  saveSession(null);
  state.workingTokens.clear();
  state.loginNotice = "You are logged out.";
  state.next = null;
  go("/login");
}

// ------------------------------------------------------------------ login --

function viewLogin() {
  const username = h("input", { autocomplete: "username", required: true, "data-autofocus": true });
  const password = h("input", { type: "password", autocomplete: "current-password", required: true });
  const box = errorBox();
  const form = h("form", { class: "card login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Streamgate Portal"),
    h("p", { class: "muted" }, "Define streaming APIs on Kafka, mint tokens, and try them live."),
    state.loginNotice ? h("p", { class: "notice" }, state.loginNotice) : null,
    field("Username", username, { name: "username" }),
    field("Password", password, { name: "password" }),
    box,
    h("div", { class: "actions" }, button("Log in", null, { kind: "primary", type: "submit", id: "login-submit" })));
  onSubmit(form, box, async () => {
    const reply = await call("POST", "/api/v1/login", { username: username.value.trim(), password: password.value });
    saveSession({ token: reply.token, username: reply.username, role: reply.role, expires_at: reply.expires_at });
    state.loginNotice = null;
    const next = state.next && state.next !== "/login" ? state.next : "/apis";
    state.next = null;
    go(next);
  });
  return h("div", { class: "center" }, form);
}

// ------------------------------------------------------------- API list --

async function viewApiList() {
  const { apis } = await call("GET", "/api/v1/apis");
  const head = h("div", { class: "page-head" },
    h("div", {}, h("h1", {}, "APIs"),
      h("p", { class: "muted" }, "Each API maps WebSocket endpoints to Kafka topics and keys; gateways following this portal serve them.")),
    isAdmin() ? h("div", { class: "actions" }, link("Define an API", "/apis/new", { class: "btn primary", id: "new-api" })) : null);
  if (apis.length === 0) {
    return h("div", {}, head, h("section", { class: "card empty" },
      h("p", {}, "No API is defined yet."),
      isAdmin()
        ? h("p", {}, link("Define your first API", "/apis/new", { class: "btn primary" }), " — a name and one or more endpoints is all it takes.")
        : h("p", { class: "muted" }, "An administrator defines APIs; you can view them here.")));
  }
  const rows = apis.map((api) => h("tr", {},
    h("td", {}, link(api.name, `/apis/${encodeURIComponent(api.name)}`, { class: "strong" })),
    h("td", {}, api.version),
    h("td", {}, h("ul", { class: "plain" }, api.endpoints.map((e) => h("li", {}, h("code", {}, e.path), " ", actionBadges(e.actions))))),
    h("td", {}, api.description || h("span", { class: "muted" }, "—")),
    h("td", {}, api.owner || h("span", { class: "muted" }, "—"))));
  return h("div", {}, head, h("section", { class: "card flush" }, h("table", { class: "table", id: "api-table" },
    h("thead", {}, h("tr", {}, ["Name", "Version", "Endpoints", "Description", "Owner"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows))),
  h("p", { class: "muted small" }, "Everything here can be scripted: the portal's REST API is described by ",
    h("a", { href: "/api/v1/openapi.json" }, "its OpenAPI document"), "."));
}

function actionBadges(actions) {
  return actions.map((a) => h("span", { class: `badge action-${a}` }, a));
}

// ------------------------------------------------------------- API form --

async function viewApiForm(name) {
  if (!isAdmin()) {
    return h("section", { class: "card" }, h("h1", {}, name ? `Edit ${name}` : "Define an API"),
      h("p", {}, "Only administrators define and edit APIs; your role is viewer."), link("Back to the APIs", "/apis"));
  }
  const [{ apis }, existing] = await Promise.all([
    call("GET", "/api/v1/apis"),
    name ? call("GET", `/api/v1/apis/${encodeURIComponent(name)}`) : null,
  ]);
  // Topics other APIs use, offered as suggestions (the portal checks the topic exists in Kafka).
  const topics = [...new Set(apis.flatMap((a) => a.endpoints.map((e) => e.topic)))].sort();
  const datalist = h("datalist", { id: "known-topics" }, topics.map((t) => h("option", { value: t })));

  const nameInput = h("input", { value: existing?.name ?? "", required: true, pattern: "[a-z0-9][a-z0-9-]{0,63}", maxlength: "64",
    placeholder: "live-scores", disabled: Boolean(existing), autocomplete: "off", spellcheck: "false" });
  const version = h("input", { value: existing?.version ?? "1.0.0", placeholder: "1.0.0" });
  const owner = h("input", { value: existing?.owner ?? "", placeholder: "team-scores@example.com" });
  const description = h("input", { value: existing?.description ?? "", placeholder: "What the API streams, for whom." });
  const list = h("div", { class: "endpoint-list" });
  const addEndpoint = (endpoint) => {
    list.append(endpointEditor(endpoint, () => renumber(list)));
    renumber(list);
  };
  for (const endpoint of existing?.endpoints ?? [null]) addEndpoint(endpoint);

  const box = errorBox();
  const form = h("form", { class: "card", id: "api-form", novalidate: true },
    datalist,
    h("div", { class: "grid three" },
      field("Name", nameInput, { name: "name", hint: existing ? "An API is not renamed." : "1–64 of a-z, 0-9 and '-'." }),
      field("Version", version, { name: "version" }),
      field("Owner", owner, { name: "owner", hint: "Optional: a team or contact." }),
      field("Description", description, { name: "description", wide: true })),
    h("h2", {}, "Endpoints"),
    h("p", { class: "muted" }, "A path like ", h("code", {}, "/scores/live/{sport}"), " is what clients subscribe to; ",
      h("code", {}, "{sport}"), " is a whole path segment, put into the Kafka key template (", h("code", {}, "live/{sport}"), ")."),
    list,
    h("div", { class: "actions" }, button("+ Add endpoint", () => {
      addEndpoint(null);
      list.lastElementChild.querySelector("input")?.focus();
    }, { id: "add-endpoint" })),
    box,
    h("div", { class: "actions end" },
      link("Cancel", existing ? `/apis/${encodeURIComponent(existing.name)}` : "/apis", { class: "btn secondary" }),
      button(existing ? "Save changes" : "Create API", null, { kind: "primary", type: "submit", id: "save-api" })));

  onSubmit(form, box, async () => {
    const body = {
      name: existing?.name ?? nameInput.value.trim(), version: version.value.trim() || "1.0.0",
      description: description.value.trim(), owner: owner.value.trim(),
      endpoints: [...list.children].map((editor, i) => editor.read(i)),
    };
    const saved = existing
      ? await call("PUT", `/api/v1/apis/${encodeURIComponent(existing.name)}`, body)
      : await call("POST", "/api/v1/apis", body);
    toast(existing ? `Saved ${saved.name}.` : `Created ${saved.name}. Next: mint a token.`);
    go(existing ? `/apis/${encodeURIComponent(saved.name)}` : `/apis/${encodeURIComponent(saved.name)}/tokens`);
  });

  return h("div", {}, h("div", { class: "page-head" }, h("div", {},
    h("h1", {}, existing ? `Edit ${existing.name}` : "Define an API"),
    h("p", { class: "muted" }, "Gateways following this portal pick the change up at their next poll."))), form);
}

/** Keeps every endpoint editor's legend and data-field names in step with its position. */
function renumber(list) {
  [...list.children].forEach((editor, i) => editor.renumber(i, list.children.length));
}

/** The editor of one endpoint: a fieldset that reads itself back as the API's JSON. */
function endpointEditor(endpoint, onRemove) {
  const text = (value, placeholder, more = {}) =>
    h("input", { value, placeholder, required: true, autocomplete: "off", spellcheck: "false", ...more });
  const path = text(endpoint?.path ?? "", "/scores/live/{sport}");
  const topic = text(endpoint?.topic ?? "", "scores", { list: "known-topics" });
  const key = text(endpoint?.key ?? "", "live/{sport}");
  const subscribe = h("input", { type: "checkbox", checked: !endpoint || endpoint.actions.includes("subscribe") });
  const publish = h("input", { type: "checkbox", checked: Boolean(endpoint?.actions.includes("publish")) });
  const description = h("input", { value: endpoint?.description ?? "", placeholder: "Optional" });
  const schema = h("textarea", { rows: "5", class: "mono", spellcheck: "false", placeholder: '{"type": "object", "properties": {...}}',
    value: endpoint?.schema !== undefined ? JSON.stringify(endpoint.schema, null, 2) : "" });
  const params = h("small", { class: "hint" });

  // Until the user types a key of their own, the key follows the path (same
  // parameters, so valid): one thing less to get right on the first try.
  let keyEdited = Boolean(endpoint);
  const showParams = () => {
    const names = pathParams(path.value);
    params.textContent = names.length ? `Parameters: ${names.map((n) => `{${n}}`).join(", ")}; the key must use the same ones.`
      : path.value.trim() ? "No parameters: the path is one fixed endpoint." : "";
  };
  path.addEventListener("input", () => {
    if (!keyEdited) key.value = path.value.replace(/^\/+/, "");
    showParams();
  });
  key.addEventListener("input", () => { keyEdited = key.value !== ""; });
  showParams();

  const legend = h("legend", {});
  const remove = button("Remove", () => {
    set.remove();
    onRemove();
  }, { kind: "link danger", "aria-label": "Remove this endpoint" });
  const actions = h("fieldset", { class: "inline-choices", tabindex: "-1" }, h("legend", {}, "Actions a token may be given"),
    h("label", {}, subscribe, " subscribe"), h("label", {}, publish, " publish"));
  const set = h("fieldset", { class: "endpoint" }, legend,
    h("div", { class: "grid three" },
      h("div", {}, field("Path", path, { hint: "Starts with '/'; {name} marks a parameter segment." }), params),
      field("Kafka topic", topic, { hint: "Must exist in Kafka." }),
      field("Kafka key template", key, { hint: "Same parameters as the path, each ending its '/'-separated segment: live/{sport}, user-{id}/x." })),
    h("div", { class: "grid endpoint-extra" },
      actions,
      field("Description", description)),
    h("div", { class: "endpoint-foot" },
      h("details", { class: "schema" }, h("summary", {}, "Message JSON Schema (optional)"), field("JSON Schema", schema, { wide: true })),
      remove));

  set.renumber = (i, count) => {
    legend.textContent = `Endpoint ${i + 1}`;
    remove.hidden = count <= 1;
    const names = { path, topic, key, description, schema, actions };
    for (const [n, el] of Object.entries(names)) el.dataset.field = `endpoints[${i}].${n}`;
    subscribe.dataset.field = `endpoints[${i}].actions[subscribe]`;
    publish.dataset.field = `endpoints[${i}].actions[publish]`;
  };
  set.read = (i) => {
    const out = {
      path: path.value.trim(), topic: topic.value.trim(), key: key.value.trim(),
      actions: [subscribe.checked && "subscribe", publish.checked && "publish"].filter(Boolean),
      description: description.value.trim(),
    };
    if (schema.value.trim()) {
      try {
        out.schema = JSON.parse(schema.value);
      } catch (error) {
        set.querySelector("details").open = true;
        throw localError(`The JSON Schema is not valid JSON (${error.message}).`, `endpoints[${i}].schema`);
      }
    }
    return out;
  };
  return set;
}

/** The parameter names of a path template: `/a/{x}/{y}` -> ["x", "y"]. */
function pathParams(path) {
  return [...path.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]);
}

// -------------------------------------------------------------- one API --

const TABS = [["overview", "Overview"], ["tokens", "Tokens"], ["console", "Test console"], ["snippets", "Snippets"]];

async function viewApi(name, tab, view) {
  const api = await call("GET", `/api/v1/apis/${encodeURIComponent(name)}`);
  const base = `/apis/${encodeURIComponent(api.name)}`;
  const tabs = h("nav", { class: "tabs", "aria-label": `${api.name} sections` },
    TABS.map(([id, label]) => link(label, `${base}/${id}`, { id: `tab-${id}`, "aria-current": id === tab ? "page" : null })));
  const body = tab === "tokens" ? await tokensTab(api)
    : tab === "console" ? await consoleTab(api, view)
    : tab === "snippets" ? await snippetsTab(api)
    : overviewTab(api);
  return h("div", {}, apiHeader(api), tabs, h("section", { class: "tab-body", id: `panel-${tab}` }, body));
}

function apiHeader(api) {
  const status = h("span", { class: "muted small", role: "status", "aria-live": "polite" });
  const download = (format) => {
    const path = `/api/v1/apis/${encodeURIComponent(api.name)}/asyncapi.${format}`;
    const filename = `${api.name}-asyncapi.${format}`;
    return h("a", { class: "btn secondary", href: path, download: filename, id: `download-asyncapi-${format}`,
      onclick: (event) => {
        // A plain link would not carry the Authorization header: fetch, then save the Blob.
        event.preventDefault();
        downloadWithSession(path, filename, status);
      } }, `AsyncAPI (${format.toUpperCase()})`);
  };
  const admin = isAdmin() ? [
    link("Edit", `/apis/${encodeURIComponent(api.name)}/edit`, { class: "btn secondary", id: "edit-api" }),
    button("Delete", async () => {
      if (!confirm(`Delete the API ${api.name}? Gateways stop serving its endpoints at their next poll; its tokens stop working.`)) return;
      try {
        await call("DELETE", `/api/v1/apis/${encodeURIComponent(api.name)}`);
        toast(`Deleted ${api.name}.`);
        go("/apis");
      } catch (error) {
        status.textContent = `${error.code}: ${error.message}`;
        status.className = "error-text small";
      }
    }, { kind: "danger", id: "delete-api" }),
  ] : [];
  return h("div", { class: "page-head" },
    h("div", {},
      h("p", { class: "crumbs" }, link("APIs", "/apis"), " / "),
      h("h1", {}, api.name, " ", h("span", { class: "badge version" }, `v${api.version}`)),
      api.description || api.owner ? h("p", {}, api.description,
        api.owner ? h("span", { class: "muted small" }, `${api.description ? " · " : ""}Owner: ${api.owner}`) : null) : null),
    h("div", { class: "actions" }, download("json"), download("yaml"), admin, status));
}

/** GETs `path` with the session and saves the answer as `filename`. */
async function downloadWithSession(path, filename, status) {
  status.className = "muted small";
  status.textContent = `Downloading ${filename}…`;
  try {
    const response = await fetch(path, { headers: { Authorization: `Bearer ${state.session.token}` }, cache: "no-store" });
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try { const e = (await response.json()).error; message = `${e.code}: ${e.message}`; } catch { /* not JSON */ }
      if (response.status === 401) sessionEnded();
      throw new Error(message);
    }
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: filename, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
    status.textContent = `Downloaded ${filename} (${blob.size.toLocaleString()} bytes).`;
    status.dataset.downloaded = filename;
  } catch (error) {
    status.className = "error-text small";
    status.textContent = `Could not download ${filename}: ${error.message}`;
  }
}

function overviewTab(api) {
  const base = `/apis/${encodeURIComponent(api.name)}`;
  const rows = api.endpoints.map((e) => h("tr", {},
    h("td", {}, h("code", {}, e.path)), h("td", {}, h("code", {}, e.topic)), h("td", {}, h("code", {}, e.key)),
    h("td", {}, actionBadges(e.actions)),
    h("td", {}, e.description || h("span", { class: "muted" }, "—"),
      e.schema !== undefined
        ? h("details", {}, h("summary", {}, "JSON Schema"), h("pre", { class: "code small" }, JSON.stringify(e.schema, null, 2)))
        : null)));
  return h("div", {},
    h("section", { class: "card flush" }, h("table", { class: "table", id: "endpoint-table" },
      h("thead", {}, h("tr", {}, ["Path", "Kafka topic", "Key template", "Actions", "Description"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))),
    h("section", { class: "card steps" }, h("h2", {}, "Try it"),
      h("ol", {},
        h("li", {}, link("Mint a token", `${base}/tokens`), " for a client (a subject, rights on these endpoints, an expiry)."),
        h("li", {}, link("Open the test console", `${base}/console`), ": subscribe with the token and watch messages arrive; publish one."),
        h("li", {}, link("Copy a snippet", `${base}/snippets`), " for JavaScript, Swift or Python, with the token filled in."),
        h("li", {}, "Hand out the AsyncAPI document (buttons above) to whoever builds on the API."))));
}

// ----------------------------------------------------------------- tokens --

async function tokensTab(api) {
  const table = tokenTable({ api: api.name });
  const parts = [];
  if (isAdmin()) parts.push(mintForm(api, () => table.reload()));
  else parts.push(h("p", { class: "muted" }, "Only administrators mint tokens. Paste a token you were given in the test console."));
  parts.push(h("h2", {}, `Tokens of ${api.name}`), table);
  await table.reload();
  return h("div", {}, parts);
}

const DAY = 86400;
const EXPIRIES = [["1 hour", 3600], ["1 day", DAY], ["7 days", 7 * DAY], ["30 days", 30 * DAY], ["90 days", 90 * DAY], ["1 year", 365 * DAY]];

/** The mint form; the minted token is shown once, kept in memory for the console and snippets. */
function mintForm(api, onMinted) {
  const subject = h("input", { required: true, placeholder: "alice", autocomplete: "off", spellcheck: "false" });
  const description = h("input", { placeholder: "alice's phone app" });
  const expires = h("select", {}, EXPIRIES.map(([label, s]) => h("option", { value: String(s), selected: s === 86400 }, label)));
  const subscribe = rightsChooser(api, "subscribe");
  const publish = rightsChooser(api, "publish");
  const claims = h("textarea", { rows: "2", class: "mono", placeholder: "tenant=acme", spellcheck: "false" });
  const result = h("div", { id: "minted", "aria-live": "polite" });
  const box = errorBox();
  const form = h("form", { class: "card", id: "mint-form", novalidate: true },
    h("h2", {}, "Mint a token"),
    h("div", { class: "grid three" },
      field("Subject", subject, { name: "subject", hint: "Who the token is for (its sub claim)." }),
      field("Description", description, { name: "description", hint: "Optional; searchable." }),
      field("Expires in", expires, { name: "expires_in" })),
    h("div", { class: "grid two" }, subscribe.element, publish.element),
    h("details", {}, h("summary", {}, "Claims (optional)"),
      field("Claims, one name=value a line", claims, { name: "claims", wide: true,
        hint: "Bound into patterns: a segment {tenant} in a pattern matches only the token's tenant claim." })),
    box,
    h("div", { class: "actions end" }, button("Mint token", null, { kind: "primary", type: "submit", id: "mint-submit" })));

  onSubmit(form, box, async () => {
    const body = {
      subject: subject.value.trim(), description: description.value.trim(), expires_in: Number(expires.value),
      subscribe: subscribe.read(), publish: publish.read(),
    };
    const parsed = parseClaims(claims.value);
    if (Object.keys(parsed).length > 0) body.claims = parsed;
    const minted = await call("POST", `/api/v1/apis/${encodeURIComponent(api.name)}/tokens`, body);
    state.workingTokens.set(api.name, minted.token);
    result.replaceChildren(mintedPanel(api, minted));
    form.reset();
    subscribe.reset();
    publish.reset();
    await onMinted();
    result.querySelector("button")?.focus();
  });
  return h("div", {}, form, result);
}

/** "Rights to subscribe": all endpoints allowing it, chosen patterns, or none. */
function rightsChooser(api, action) {
  const allowing = api.endpoints.filter((e) => e.actions.includes(action));
  const group = nextId("r");
  const radio = (value, label, disabled) => h("label", { class: disabled ? "disabled" : null },
    h("input", { type: "radio", name: group, value, disabled, dataset: { right: `${action}-${value}` } }), ` ${label}`);
  const patterns = h("textarea", { rows: "2", class: "mono", spellcheck: "false",
    placeholder: allowing.length ? allowing.map((e) => e.path.replace(/\{[^}]+\}/g, "*")).join("\n") : "" });
  const patternsField = field("Patterns, one a line", patterns, { wide: true,
    hint: "* is one segment, ** any; {sub} or {claim} must equal the token's subject or claim." });
  const element = h("fieldset", { class: "rights", tabindex: "-1", dataset: { field: action } },
    h("legend", {}, `Rights to ${action}`),
    radio("all", allowing.length ? `Every endpoint that allows ${action} (${allowing.length})` : `No endpoint allows ${action}`,
      allowing.length === 0),
    radio("patterns", "Only endpoints matching patterns", allowing.length === 0),
    radio("none", "None", false),
    patternsField);
  const reset = () => {
    element.querySelector(`input[value=${allowing.length ? "all" : "none"}]`).checked = true;
    patternsField.hidden = true;
  };
  element.addEventListener("change", () => {
    patternsField.hidden = element.querySelector("input[value=patterns]").checked === false;
  });
  reset();
  const read = () => {
    const choice = element.querySelector("input[type=radio]:checked")?.value;
    if (choice === "all") return true;
    if (choice === "none") return false;
    return patterns.value.split("\n").map((l) => l.trim()).filter(Boolean);
  };
  return { element, read, reset };
}

function parseClaims(text) {
  const claims = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw localError(`Line ${i + 1} of the claims is not name=value.`, "claims");
    claims[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return claims;
}

function mintedPanel(api, minted) {
  const base = `/apis/${encodeURIComponent(api.name)}`;
  const tokenText = h("textarea", { class: "mono token-value", id: "minted-token", rows: "3", readOnly: true, value: minted.token,
    "aria-label": "The new token" });
  return h("section", { class: "card minted" },
    h("h2", {}, `Token for ${minted.subject}`),
    h("p", {}, h("strong", {}, "Copy it now: the portal shows it only once. "),
      `Id ${minted.id}, expires ${formatTime(minted.expires_at)} (${relativeTime(minted.expires_at)}).`),
    tokenText,
    h("div", { class: "actions" },
      copyButton(() => minted.token, tokenText, "Copy token"),
      link("Open the test console with it", `${base}/console`, { class: "btn primary", id: "open-console" }),
      link("Snippets with it", `${base}/snippets`, { class: "btn secondary" })));
}

/**
 * A searchable token table (`?q=` matches subject, id and description).
 * `reload()` fetches again; revoking is for admins.
 */
function tokenTable({ api, apis } = {}) {
  const search = h("input", { type: "search", placeholder: "subject, id or description", id: api ? "token-search-api" : "token-search" });
  // On the Tokens page (all APIs), a filter by API.
  const apiFilter = apis ? h("select", { id: "token-api-filter" }, h("option", { value: "" }, "All APIs"),
    apis.map((a) => h("option", { value: a.name }, a.name))) : null;
  const active = h("input", { type: "checkbox" });
  const tbody = h("tbody");
  const box = errorBox();
  const count = h("span", { class: "muted small", "aria-live": "polite" });
  const wrapper = h("div", { class: "token-table" },
    h("div", { class: "toolbar" },
      field("Search tokens", search),
      apiFilter ? field("API", apiFilter) : null,
      h("label", { class: "check" }, active, " Active only"),
      count),
    box,
    h("div", { class: "card flush" }, h("table", { class: "table", id: api ? "api-token-table" : "token-table" },
      h("thead", {}, h("tr", {}, [api ? null : "API", "Subject", "Id", "Rights", "Issued", "Expires", "Status", "Description", ""]
        .filter((t) => t !== null).map((t) => h("th", { scope: "col" }, t)))),
      tbody)));

  let timer;
  const reload = async () => {
    const query = new URLSearchParams();
    const apiName = api ?? apiFilter?.value;
    if (apiName) query.set("api", apiName);
    if (search.value.trim()) query.set("q", search.value.trim());
    if (active.checked) query.set("active", "true");
    try {
      const { tokens } = await call("GET", `/api/v1/tokens?${query}`);
      clearErrors(box);
      tbody.replaceChildren(...tokens.map((t) => tokenRow(t, !api, reload, box)));
      if (tokens.length === 0) {
        tbody.append(h("tr", {}, h("td", { colspan: "9", class: "muted" }, search.value ? "No token matches." : "No token yet.")));
      }
      count.textContent = `${tokens.length} token${tokens.length === 1 ? "" : "s"}`;
    } catch (error) {
      showError(box, error);
    }
  };
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 250);
  });
  active.addEventListener("change", reload);
  apiFilter?.addEventListener("change", reload);
  wrapper.reload = reload;
  return wrapper;
}

/** [status, when]: `active`, `expired` or `revoked`, and since when (for a tooltip). */
function tokenStatus(t) {
  if (t.revoked_at !== null && t.revoked_at !== undefined) return ["revoked", `revoked ${formatTime(t.revoked_at)}`];
  if (t.expires_at <= Date.now() / 1000) return ["expired", `expired ${formatTime(t.expires_at)}`];
  return ["active", `expires ${relativeTime(t.expires_at)}`];
}

function tokenRow(t, showApi, reload, box) {
  const [status, when] = tokenStatus(t);
  const patterns = (action, list) => list.length === 0 ? null
    : h("div", {}, h("span", { class: `badge action-${action}` }, action), " ", list.map((p) => h("code", {}, p)).reduce(joinWith(", "), []));
  const rights = h("div", { class: "rights-list" },
    patterns("subscribe", t.subscribe),
    patterns("publish", t.publish),
    Object.keys(t.claims ?? {}).length ? h("div", { class: "muted small" }, Object.entries(t.claims).map(([k, v]) => `${k}=${v}`).join(", ")) : null);
  const revoke = isAdmin() && status === "active" ? button("Revoke", async () => {
    if (!confirm(`Revoke ${t.subject}'s token ${t.id}? Gateways end its subscriptions at their next poll.`)) return;
    try {
      await call("DELETE", `/api/v1/tokens/${encodeURIComponent(t.id)}`);
      toast(`Revoked ${t.id}.`);
      await reload();
    } catch (error) {
      showError(box, error);
    }
  }, { kind: "danger small", "aria-label": `Revoke token ${t.id}` }) : null;
  return h("tr", { dataset: { tokenId: t.id } },
    showApi ? h("td", { class: "nowrap" }, link(t.api, `/apis/${encodeURIComponent(t.api)}/tokens`)) : null,
    h("td", {}, h("strong", {}, t.subject), h("div", { class: "muted small" }, `by ${t.created_by}`)),
    h("td", { class: "nowrap" }, h("code", { class: "small" }, t.id)),
    h("td", {}, rights),
    h("td", { class: "nowrap" }, formatTime(t.issued_at)),
    h("td", { class: "nowrap", title: relativeTime(t.expires_at) }, formatTime(t.expires_at)),
    h("td", { class: "nowrap" }, h("span", { class: `badge status-${status}`, title: when }, status)),
    h("td", {}, t.description || h("span", { class: "muted" }, "—")),
    h("td", {}, revoke));
}

const joinWith = (separator) => (acc, node) => (acc.length ? [...acc, separator, node] : [node]);

async function viewTokens() {
  const { apis } = await call("GET", "/api/v1/apis");
  const table = tokenTable({ apis });
  await table.reload();
  return h("div", {}, h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Tokens"),
    h("p", { class: "muted" }, "Every token minted, newest first. Mint new ones on an API's Tokens tab."))), table);
}

// ------------------------------------------------------------ signing keys --

async function viewKeys() {
  const { keys } = await call("GET", "/api/v1/keys");
  const box = errorBox();
  const signing = keys.filter((k) => !k.retired_at && !k.withdrawn_at).at(-1);
  const withdraw = (k) => button("Withdraw", async () => {
    if (!confirm(`Withdraw ${k.id}? Use this when the key leaked: gateways stop trusting it at their next poll, every token it signed is revoked now${k === signing ? ", and a new key signs from now on" : ""}.`)) return;
    try {
      const { revoked_tokens: revoked } = await call("DELETE", `/api/v1/keys/${encodeURIComponent(k.id)}`);
      toast(`Withdrew ${k.id}; ${revoked} token${revoked === 1 ? "" : "s"} revoked.`);
      go("/keys");
    } catch (error) {
      showError(box, error);
    }
  }, { kind: "danger small", "aria-label": `Withdraw key ${k.id}` });
  const status = (k) => k.withdrawn_at ? h("span", { class: "badge status-revoked" }, `withdrawn ${formatTime(k.withdrawn_at)}`)
    : k.retired_at ? h("span", { class: "muted" }, `retired ${formatTime(k.retired_at)}`)
      : h("span", { class: "badge status-active" }, k === signing ? "signing" : "active");
  const rows = keys.slice().reverse().map((k) => h("tr", {},
    h("td", {}, h("code", {}, k.id)), h("td", {}, k.algorithm), h("td", {}, formatTime(k.created_at)),
    h("td", {}, status(k)),
    h("td", {}, k.last_expiry ? formatTime(k.last_expiry) : "—"),
    h("td", {}, isAdmin() && !k.withdrawn_at ? withdraw(k) : null)));
  const rotate = isAdmin() ? button("Rotate signing key", async () => {
    if (!confirm("Rotate the signing key? New tokens are signed with a new key; tokens already minted stay valid until they expire.")) return;
    try {
      const { signing_key: id } = await call("POST", "/api/v1/keys/rotate");
      toast(`Now signing with ${id}.`);
      go("/keys");
    } catch (error) {
      showError(box, error);
    }
  }, { kind: "primary", id: "rotate-key" }) : null;
  return h("div", {},
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Signing keys"),
      h("p", { class: "muted" }, "Tokens are ES256 JWTs. A retired key stays published to gateways until the last token it signed expires.")),
    h("div", { class: "actions" }, rotate)),
    box,
    keys.length === 0 ? h("section", { class: "card empty" }, h("p", {}, "No key yet: the first one is made when the first token is minted."))
      : h("section", { class: "card flush" }, h("table", { class: "table", id: "key-table" },
        h("thead", {}, h("tr", {}, ["Id", "Algorithm", "Created", "Status", "Last token expiry", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows))));
}

// ------------------------------------------------------------------ users --

async function viewUsers() {
  if (!isAdmin()) return h("section", { class: "card" }, h("h1", {}, "Users"), h("p", {}, "Only administrators manage users."));
  const { users } = await call("GET", "/api/v1/users");
  const username = h("input", { required: true, autocomplete: "off", placeholder: "bob", spellcheck: "false" });
  const password = h("input", { type: "password", required: true, autocomplete: "new-password", minlength: "12" });
  const role = h("select", { value: "viewer" }, h("option", { value: "viewer" }, "viewer (read-only)"), h("option", { value: "admin" }, "admin"));
  const box = errorBox();
  const form = h("form", { class: "card", novalidate: true }, h("h2", {}, "Add a user"),
    h("div", { class: "grid three" },
      field("Username", username, { name: "username", hint: "a-z, 0-9, '.', '_', '-'" }),
      field("Password", password, { name: "password", hint: "At least 12 characters." }),
      field("Role", role, { name: "role" })),
    box, h("div", { class: "actions end" }, button("Add user", null, { kind: "primary", type: "submit" })));
  onSubmit(form, box, async () => {
    await call("POST", "/api/v1/users", { username: username.value.trim(), password: password.value, role: role.value });
    toast(`Added ${username.value.trim()}.`);
    go("/users");
  });
  const listBox = errorBox();
  const rows = users.map((u) => h("tr", {}, h("td", {}, u.username), h("td", {}, h("span", { class: `badge role-${u.role}` }, u.role)),
    h("td", {}, u.username === state.session.username ? h("span", { class: "muted small" }, "you") : button("Delete", async () => {
      if (!confirm(`Delete the user ${u.username}?`)) return;
      try {
        await call("DELETE", `/api/v1/users/${encodeURIComponent(u.username)}`);
        go("/users");
      } catch (error) {
        showError(listBox, error);
      }
    }, { kind: "danger small" }))));
  return h("div", {}, h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Users"),
    h("p", { class: "muted" }, "Admins define APIs and mint tokens; viewers only look."))),
  listBox,
  h("section", { class: "card flush" }, h("table", { class: "table" },
    h("thead", {}, h("tr", {}, ["Username", "Role", ""].map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows))),
  form);
}

// ------------------------------------------- shared: token, URLs, params --

/** The token field of the console and the snippets: prefilled with the token minted here. */
function workingTokenField(api, onChange) {
  const input = h("textarea", { class: "mono token-value", rows: "2", spellcheck: "false", id: "working-token",
    placeholder: "Paste a token (eyJ…), or mint one on the Tokens tab", value: state.workingTokens.get(api.name) ?? "" });
  input.addEventListener("input", () => {
    state.workingTokens.set(api.name, input.value.trim());
    onChange?.();
  });
  const minted = state.workingTokens.has(api.name);
  return field("Token", input, { hint: minted ? "The token minted in this session (kept in memory only)." : "Kept in memory only, never stored." });
}

/** The gateway URLs field, shared by the console and the snippets. */
function gatewayUrlsField(onChange) {
  const input = h("input", { id: "gateway-urls", value: state.gatewayUrls.join(", "), spellcheck: "false", autocomplete: "off" });
  const hint = {
    portal: "From the portal's configuration (gateway_urls). Separate several with commas.",
    guess: "The portal did not say (GET /api/v1/config failed): check this. Separate several with commas.",
    edited: "As you edited them. Separate several with commas.",
  }[state.gatewayUrlsSource];
  input.addEventListener("change", () => {
    const urls = input.value.split(/[\s,]+/).filter(Boolean);
    state.gatewayUrls = urls;
    state.gatewayUrlsSource = "edited";
    onChange?.();
  });
  return field("Gateway URLs", input, { hint, name: "gateway_urls" });
}

function checkUrls(urls) {
  if (urls.length === 0) throw localError("Give at least one gateway URL (ws://host:port/ws).", "gateway_urls");
  const bad = urls.find((u) => !/^wss?:\/\/[^\s]+$/.test(u));
  if (bad) throw localError(`${bad} is not a ws:// or wss:// URL.`, "gateway_urls");
}

const paramKey = (api, endpoint, name) => `${api.name}|${endpoint.path}|${name}`;

/** Inputs for the {params} of an endpoint's path, remembered per API and endpoint. */
function paramInputs(api, endpoint, onChange) {
  return pathParams(endpoint.path).map((name) => {
    const key = paramKey(api, endpoint, name);
    const input = h("input", { value: state.paramValues.get(key) ?? DEFAULT_PARAM_VALUE, spellcheck: "false", autocomplete: "off",
      dataset: { param: name } });
    const remember = () => {
      state.paramValues.set(key, input.value);
      onChange?.();
    };
    input.addEventListener("input", remember);
    input.addEventListener("change", remember);
    return field(`{${name}}`, input, { hint: "One path segment.", name: `param.${name}` });
  });
}

/** The endpoint's path with its parameters filled in; throws when one is empty or not one segment. */
function concreteEndpoint(api, endpoint) {
  return endpoint.path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name) => {
    const value = (state.paramValues.get(paramKey(api, endpoint, name)) ?? DEFAULT_PARAM_VALUE).trim();
    if (!value || value.includes("/")) throw localError(`Give {${name}} a value: one path segment, no '/'.`, `param.${name}`);
    return value;
  });
}

// ----------------------------------------------------------- test console --

let sdkModule = null;
/** The SDK, loaded when the console first needs it (the rest of the UI works without it). */
function loadSdk() {
  sdkModule ??= import("/sdk/streamgate.js").catch((error) => {
    sdkModule = null;
    throw localError(`Could not load the JavaScript SDK from /sdk/streamgate.js (${error.message}).`);
  });
  return sdkModule;
}

const MAX_ROWS = 500;
const PUBLISH_WAIT_MS = 15_000;

/**
 * The console's connection: one SDK client for the current gateway URLs and
 * token, made on first use and made again when either changed. Subscriptions
 * are kept by concrete endpoint.
 */
class ConsoleConnection {
  constructor(apiName, { onState, onTrouble, log }) {
    this.apiName = apiName;
    this.onState = onState;
    this.onTrouble = onTrouble;
    this.log = log;
    this.client = null;
    this.key = null;
    this.subscriptions = new Map();
  }

  /** The client for the current URLs and token. */
  async ensureClient() {
    const urls = state.gatewayUrls;
    checkUrls(urls);
    const token = (state.workingTokens.get(this.apiName) ?? "").trim();
    if (!token) throw localError("Paste a token, or mint one on the Tokens tab first.", "token");
    const key = JSON.stringify([urls, token]);
    if (this.client && this.key === key && this.client.state !== "closed") return this.client;
    if (this.client) this.log("The token or the gateway URLs changed: connecting again with the new ones.");
    this.close();
    const { StreamgateClient } = await loadSdk();
    const client = new StreamgateClient({ urls, token });
    this.client = client;
    this.key = key;
    // Events of a client that was since replaced are ignored.
    const current = (fn) => (...args) => { if (this.client === client) fn(...args); };
    client.on("state", current((s) => this.onState(s, client.node)));
    client.on("connected", current((e) => this.log(`Connected to ${e.url}${e.subject ? ` as ${e.subject}` : ""}.`, "ok")));
    client.on("disconnected", current((e) => {
      this.log(`Disconnected from ${e.url}: ${e.code}${e.reason ? ` ${e.reason}` : ""}. Retrying…`, "bad");
      // 1006: nothing answered (a wrong URL, a gateway down); 1008: the gateway refused the token.
      // A refusal's `error` came first and says more: it is kept (`weak`).
      this.onTrouble(e.code === 1006 ? `No gateway answers at ${e.url}: check the gateway URLs. Retrying…`
        : `The gateway closed the connection (${e.code}${e.reason ? ` ${e.reason}` : ""}). Retrying…`, { weak: e.code === 1008 });
    }));
    client.on("error", current((e) => {
      this.log(`${e.code}: ${e.message}`, "bad");
      if (e.code === "unauthorized" || e.code === "token_expired") this.onTrouble(`The gateway refuses this token: ${e.message}`);
    }));
    client.connect().catch(() => { /* closed before it connected: the state says so */ });
    this.onState(client.state, client.node);
    return client;
  }

  /** Subscribes to `endpoint`; `handlers` get the SDK's subscription events. Null when already subscribed. */
  async subscribe(endpoint, handlers) {
    const client = await this.ensureClient();
    if (this.subscriptions.has(endpoint)) return null;
    const subscription = client.subscribe(endpoint);
    this.subscriptions.set(endpoint, subscription);
    const current = (fn) => (...args) => { if (this.subscriptions.get(endpoint) === subscription) fn(...args); };
    for (const [event, handler] of Object.entries(handlers)) {
      if (event !== "ended") subscription.on(event, current(handler));
    }
    subscription.on("ended", current((reason) => {
      this.subscriptions.delete(endpoint);
      handlers.ended?.(reason);
    }));
    return subscription;
  }

  /** Publishes a text; the SDK waits for a connection, which a refused token would make forever. */
  async publish(endpoint, text) {
    const client = await this.ensureClient();
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(localError(
        `Not connected within ${PUBLISH_WAIT_MS / 1000} s: check the gateway URLs, the token, and the events.`)), PUBLISH_WAIT_MS);
    });
    try {
      return await Promise.race([client.publish(endpoint, text), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close() {
    const client = this.client;
    this.client = null;
    this.key = null;
    client?.close(); // ends every subscription: their `ended` handlers run now
    this.subscriptions.clear();
    this.onState("idle", "");
  }
}

/** The live message table: newest on top, at most MAX_ROWS kept. */
function messageList() {
  const tbody = h("tbody", { id: "console-messages" });
  const count = h("span", { class: "badge", id: "console-count" }, "0");
  const empty = h("p", { class: "muted", id: "console-empty" }, "Messages appear here, newest on top, as they are produced to Kafka.");
  let received = 0;
  const clear = () => {
    tbody.replaceChildren();
    received = 0;
    count.textContent = "0";
    empty.hidden = false;
  };
  const add = (message) => {
    received += 1;
    count.textContent = String(received);
    empty.hidden = true;
    let text;
    try { text = message.text(); } catch { text = `<${message.payload.length} bytes>`; }
    const kafkaTime = message.timestamp >= 0 ? `Kafka timestamp ${new Date(message.timestamp).toISOString()}` : null;
    tbody.prepend(h("tr", { class: "fresh" },
      h("td", { class: "nowrap", title: kafkaTime }, clockTime(new Date())),
      h("td", { class: "num" }, String(message.seq)),
      h("td", {}, h("code", {}, message.endpoint)),
      h("td", { class: "payload" }, text.length > 4000 ? `${text.slice(0, 4000)}…` : text)));
    while (tbody.children.length > MAX_ROWS) tbody.lastElementChild.remove();
  };
  const element = h("section", { class: "card" },
    h("div", { class: "section-head" }, h("h2", {}, "Messages ", count), button("Clear", clear, { kind: "secondary small" })),
    empty,
    h("div", { class: "scroll" }, h("table", { class: "table messages" },
      h("colgroup", {}, h("col", { class: "col-time" }), h("col", { class: "col-seq" }), h("col", { class: "col-endpoint" }), h("col")),
      h("thead", {}, h("tr", {}, ["Received", "Seq", "Endpoint", "Payload"].map((t) => h("th", { scope: "col" }, t)))), tbody)));
  return { element, add };
}

/** The console's event log, newest on top. */
function eventLog() {
  const list = h("ol", { class: "log", id: "console-log", "aria-label": "Connection events" });
  const log = (text, kind = "info") => {
    list.prepend(h("li", { class: kind }, h("time", {}, clockTime(new Date())), " ", text));
    while (list.children.length > 200) list.lastElementChild.remove();
  };
  return { element: h("section", { class: "card" }, h("h2", {}, "Events"), list), log };
}

/**
 * The connection's state, as a coloured badge with the node it is on, and
 * why the gateway last refused or dropped it (until it connects again).
 */
function connectionState(onDisconnect) {
  const badge = h("span", { class: "conn state-idle", id: "console-state" }, "not connected");
  const node = h("span", { class: "muted small", id: "console-node" });
  const why = h("p", { class: "small error-text", id: "console-why", role: "status" });
  const disconnect = button("Disconnect", onDisconnect, { kind: "secondary small", id: "console-disconnect", disabled: true });
  const show = (s, url) => {
    const active = s !== "idle" && s !== "closed";
    badge.className = `conn state-${s}`;
    badge.textContent = s === "idle" ? "not connected" : s;
    node.textContent = active ? url : "";
    disconnect.disabled = !active;
    if (s === "connected" || s === "idle") why.textContent = "";
  };
  const explain = (text, { weak = false } = {}) => {
    if (!weak || !why.textContent) why.textContent = text;
  };
  return { element: h("div", {}, h("p", { class: "conn-line" }, "Connection: ", badge, " ", node, " ", disconnect), why), show, explain };
}

/** Chooses one of the API's endpoints and fills in its parameters. */
function endpointPicker(api, onChange) {
  const select = h("select", { id: "console-endpoint" },
    api.endpoints.map((e, i) => h("option", { value: String(i) }, `${e.path}  (${e.actions.join(", ")})`)));
  const params = h("div", { class: "params" });
  const preview = h("code", { id: "console-preview" });
  const selected = () => api.endpoints[Number(select.value)];
  const showPreview = () => {
    // An incomplete endpoint shows as "—"; Subscribe then says which parameter is missing.
    try { preview.textContent = concreteEndpoint(api, selected()); } catch { preview.textContent = "—"; }
  };
  const refresh = () => {
    params.replaceChildren(...paramInputs(api, selected(), showPreview));
    showPreview();
    onChange(selected());
  };
  select.addEventListener("change", refresh);
  return {
    element: h("div", {}, field("Endpoint", select), params, h("p", { class: "small" }, "Endpoint: ", preview)),
    selected, refresh,
    concrete: () => concreteEndpoint(api, selected()),
  };
}

async function consoleTab(api, view) {
  await gatewayUrls();
  const messages = messageList();
  const events = eventLog();
  const connState = connectionState(() => connection.close());
  const connection = new ConsoleConnection(api.name, { onState: connState.show, onTrouble: connState.explain, log: events.log });
  view.onLeave(() => connection.close());

  const box = errorBox();
  const chips = h("ul", { class: "chips", id: "console-subscriptions", "aria-label": "Subscriptions" });
  const payload = h("textarea", { id: "console-payload", rows: "3", value: "hello from the portal", spellcheck: "false" });
  const publishResult = h("p", { class: "small", id: "console-publish-result", role: "status" });
  const publishNote = h("span", { class: "muted small" });
  const picker = endpointPicker(api, (endpoint) => {
    const allowed = endpoint.actions.includes("publish");
    publishButton.disabled = !allowed;
    publishNote.textContent = allowed ? "" : "This endpoint does not allow publish.";
  });

  const subscribe = async () => {
    if (!picker.selected().actions.includes("subscribe")) throw localError("This endpoint does not allow subscribe.");
    const endpoint = picker.concrete();
    const status = h("span", { class: "chip-state" }, "subscribing…");
    const chip = h("li", { class: "chip", dataset: { endpoint } }, h("code", {}, endpoint), " ", status);
    const subscription = await connection.subscribe(endpoint, {
      subscribed: (reply) => {
        status.textContent = "subscribed";
        chip.classList.add("live");
        events.log(`Subscribed to ${reply.endpoint}.`, "ok");
      },
      message: messages.add,
      replayed: (r) => events.log(`${endpoint}: replayed ${r.count} from ${r.source}; live now.`),
      gap: (n) => events.log(`${endpoint}: gap: ${n.message}`, "bad"),
      stale_epoch: (n) => events.log(`${endpoint}: ${n.message}`, "bad"),
      retry: (e) => events.log(`${endpoint}: ${e.code}: ${e.message}; retrying.`, "bad"),
      ended: (reason) => {
        chip.remove();
        events.log(...endedText(endpoint, reason));
      },
    });
    if (!subscription) return events.log(`Already subscribed to ${endpoint}.`);
    chip.append(button("×", () => subscription.unsubscribe(), { kind: "link small", "aria-label": `Unsubscribe from ${endpoint}` }));
    chips.append(chip);
  };

  const publish = async () => {
    const endpoint = picker.concrete();
    publishResult.className = "small muted";
    publishResult.textContent = `Publishing to ${endpoint}…`;
    try {
      const reply = await connection.publish(endpoint, payload.value);
      publishResult.className = "small ok-text";
      publishResult.textContent = `Published to ${reply.endpoint ?? endpoint}: partition ${reply.partition}, offset ${reply.offset}.`;
      events.log(`Published to ${endpoint} (offset ${reply.offset}).`, "ok");
    } catch (error) {
      publishResult.className = "small error-text";
      publishResult.textContent = `${error.code && error.code !== "local" ? `${error.code}: ` : ""}${error.message}`;
    }
  };

  /** Runs a console action; a missing token or a bad parameter shows in the box, by its field. */
  const run = (action) => async () => {
    clearErrors(box, panel);
    try {
      await action();
    } catch (error) {
      showError(box, error, panel);
    }
  };
  const publishButton = button("Publish", run(publish), { kind: "secondary", id: "console-publish" });

  const tokenField = workingTokenField(api);
  tokenField.querySelector("textarea").dataset.field = "token";
  // The connection on top (full width); below, the controls beside the live output.
  const panel = h("div", { class: "console-page" },
    h("section", { class: "card connect", "aria-label": "Connection" },
      h("div", { class: "grid connect-grid" }, tokenField, h("div", {}, gatewayUrlsField(), connState.element))),
    h("div", { class: "console" },
      h("div", { class: "console-controls" },
        h("section", { class: "card" }, h("h2", {}, "Subscribe"),
          picker.element, box,
          h("div", { class: "actions" }, button("Subscribe", run(subscribe), { kind: "primary", id: "console-subscribe" })),
          chips),
        h("section", { class: "card" }, h("h2", {}, "Publish a test message"),
          field("Message (text)", payload),
          h("div", { class: "actions" }, publishButton, publishNote), publishResult)),
      h("div", { class: "console-output" }, messages.element, events.element)));
  picker.refresh();
  return panel;
}

/** What the event log says when a subscription ends: [text, kind]. */
function endedText(endpoint, reason) {
  if (reason.code === "unsubscribed" || reason.code === "closed") return [`${endpoint}: unsubscribed.`, "info"];
  // A new API reaches the gateways at their next poll of the portal.
  const hint = reason.code === "invalid_endpoint" ? " (A new or changed API reaches the gateways at their next poll: try again in a moment.)" : "";
  return [`${endpoint}: ended (${reason.code})${reason.message ? `: ${reason.message}` : ""}.${hint}`, "bad"];
}

// --------------------------------------------------------------- snippets --

const LANGUAGES = [["js", "JavaScript"], ["swift", "Swift"], ["python", "Python"]];
const TOKEN_PLACEHOLDER = "PASTE-A-TOKEN-HERE";

async function snippetsTab(api) {
  await gatewayUrls();
  const cards = h("div", { class: "snippets" });
  const renderAll = () => {
    for (const card of cards.children) card.refresh();
  };
  for (const endpoint of api.endpoints) cards.append(snippetCard(api, endpoint, renderAll));
  const missing = h("p", { class: "notice", hidden: Boolean(state.workingTokens.get(api.name)) },
    "No token yet: the snippets say ", h("code", {}, TOKEN_PLACEHOLDER), ". Mint one on the ",
    link("Tokens tab", `/apis/${encodeURIComponent(api.name)}/tokens`), ", or paste one above.");
  return h("div", {},
    h("section", { class: "card" }, h("h2", {}, "Filled into every snippet"),
      h("div", { class: "grid two" }, workingTokenField(api, () => {
        missing.hidden = Boolean(state.workingTokens.get(api.name));
        renderAll();
      }), gatewayUrlsField(renderAll)), missing),
    cards);
}

/** One endpoint's snippet; `onLanguage` re-renders every card in the language chosen. */
function snippetCard(api, endpoint, onLanguage) {
  const code = h("pre", { class: "code snippet", tabindex: "0" });
  const tabs = h("div", { class: "lang-tabs", role: "group", "aria-label": "Language" });
  const copy = copyButton(() => code.textContent, code, "Copy", "primary");
  const refresh = () => {
    let target;
    try { target = concreteEndpoint(api, endpoint); } catch { target = endpoint.path; }
    const context = {
      api, endpoint, target, urls: state.gatewayUrls,
      token: state.workingTokens.get(api.name) || TOKEN_PLACEHOLDER, origin: location.origin,
    };
    const language = state.snippetLanguage;
    code.textContent = SNIPPETS[language](context);
    code.dataset.language = language;
    for (const b of tabs.children) b.setAttribute("aria-pressed", String(b.dataset.language === language));
  };
  for (const [id, label] of LANGUAGES) {
    tabs.append(button(label, () => {
      state.snippetLanguage = id;
      onLanguage();
    }, { kind: "tab", dataset: { language: id } }));
  }
  const card = h("section", { class: "card snippet-card", dataset: { path: endpoint.path } },
    h("div", { class: "section-head" }, h("h2", {}, h("code", {}, endpoint.path), " ", actionBadges(endpoint.actions)),
      h("div", { class: "snippet-tools" }, tabs, copy)),
    h("div", { class: "params inline" }, paramInputs(api, endpoint, refresh)),
    code);
  card.refresh = refresh;
  refresh();
  return card;
}

/** A Copy button: the clipboard API, else the text is selected for Ctrl+C. */
function copyButton(getText, element, label, kind = "secondary") {
  const b = button(label, async () => {
    const text = getText();
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied ✓";
    } catch {
      // No clipboard (plain http on another host, or denied): select the text.
      if (element instanceof HTMLTextAreaElement || element instanceof HTMLInputElement) element.select();
      else window.getSelection().selectAllChildren(element);
      let copied = false;
      try { copied = document.execCommand("copy"); } catch { copied = false; }
      b.textContent = copied ? "Copied ✓" : "Selected: press Ctrl+C";
    }
    setTimeout(() => { b.textContent = label; }, 2500);
  }, { kind: `${kind} copy` });
  return b;
}

// Literals for each language: JSON's string escapes are valid JavaScript and Python.
const jsString = (s) => JSON.stringify(s);
const pyString = (s) => JSON.stringify(s);
function swiftString(s) {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === "\\" || ch === "\"") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return `"${out}"`;
}

/** Text for a line comment: a line break in an API's version must not end the comment. */
const oneLine = (text) => String(text).replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, " ");

function header(comment, { api, endpoint }) {
  return [`${comment} Streamgate API "${oneLine(api.name)}" ${oneLine(api.version)}, `
    + `endpoint ${oneLine(endpoint.path)} (${endpoint.actions.join(", ")}).`];
}

const SNIPPETS = {
  js(c) {
    const sub = c.endpoint.actions.includes("subscribe");
    const pub = c.endpoint.actions.includes("publish");
    const file = `${c.api.name}.mjs`;
    return [
      ...header("//", c),
      `// Save as ${file}, next to the SDK:  curl -O ${c.origin}/sdk/streamgate.js`,
      `// Run:  node --experimental-websocket ${file}   (Node 20; Node 22+ needs no flag)`,
      `import { StreamgateClient } from "./streamgate.js";`,
      "",
      "const client = new StreamgateClient({",
      `  urls: [${c.urls.map(jsString).join(", ")}],`,
      `  token: ${jsString(c.token)},`,
      "});",
      "client.on(\"state\", (state) => console.error(`[${state}] ${client.node}`));",
      "client.on(\"disconnected\", (e) => console.error(`disconnected: ${e.code} ${e.reason}`));",
      "client.on(\"error\", (error) => console.error(`error ${error.code}: ${error.message}`));",
      "",
      `const endpoint = ${jsString(c.target)}; // ${oneLine(c.endpoint.path)}`,
      ...(sub ? [
        "const subscription = client.subscribe(endpoint);",
        "subscription.on(\"ended\", (reason) => console.error(`ended (${reason.code}) ${reason.message ?? \"\"}`));",
      ] : []),
      "await client.connect();",
      ...(pub ? [
        "",
        "try {",
        `  const published = await client.publish(endpoint, ${jsString("hello from JavaScript")});`,
        "  console.log(`published: partition ${published.partition}, offset ${published.offset}`);",
        "} catch (error) {",
        "  console.error(`publish refused: ${error.code}: ${error.message}`);",
        "}",
      ] : []),
      ...(sub ? [
        "",
        "for await (const message of subscription) {",
        "  console.log(message.seq, message.text());",
        "}",
      ] : []),
      "client.close();",
      "",
    ].join("\n");
  },

  swift(c) {
    const sub = c.endpoint.actions.includes("subscribe");
    const pub = c.endpoint.actions.includes("publish");
    return [
      ...header("//", c),
      "// An executable package using the SDK (Package.swift):",
      "//   platforms: [.macOS(.v15)],",
      "//   dependencies: [.package(url: \"https://github.com/<you>/streamgate\", from: \"...\")],",
      "//   target dependencies: [.product(name: \"StreamgateClient\", package: \"streamgate\")]",
      "// Save as Sources/<target>/main.swift; run: swift run",
      "import StreamgateClient",
      "",
      `let endpoint = ${swiftString(c.target)}  // ${oneLine(c.endpoint.path)}`,
      "let client = try StreamgateClient(configuration: .init(",
      `    urls: [${c.urls.map(swiftString).join(", ")}],`,
      `    token: .fixed(${swiftString(c.token)})))`,
      "",
      "try await withThrowingDiscardingTaskGroup { group in",
      "    group.addTask { try await client.run() }",
      "    group.addTask {",
      "        for await event in client.events {",
      "            if case .disconnected(let url, let code, let reason) = event {",
      "                print(\"disconnected from \\(url): \\(code.map { String($0) } ?? \"-\") \\(reason)\")",
      "            }",
      "        }",
      "    }",
      ...(sub ? ["    let subscription = client.subscribe(endpoint)"] : []),
      ...(pub ? [
        "    do {",
        `        let published = try await client.publish(endpoint, text: ${swiftString("hello from Swift")})`,
        "        print(\"published: partition \\(published.partition), offset \\(published.offset)\")",
        "    } catch {",
        "        print(\"publish refused: \\(error)\")",
        "    }",
      ] : []),
      ...(sub ? [
        "    for try await message in subscription {",
        "        print(message.seq, message.text ?? \"<\\(message.payload.count) bytes>\")",
        "    }",
      ] : []),
      "    await client.close()",
      "}",
      "",
    ].join("\n");
  },

  python(c) {
    const sub = c.endpoint.actions.includes("subscribe");
    const pub = c.endpoint.actions.includes("publish");
    const file = `${c.api.name.replace(/-/g, "_")}.py`;
    return [
      ...header("#", c),
      "# Needs the Python SDK (it brings websockets): pip install ./sdk/python  (from a Streamgate checkout)",
      `# Run:  python ${file}`,
      "import asyncio",
      "",
      pub ? "from streamgate import Client, StreamgateError" : "from streamgate import Client",
      "",
      `URLS = [${c.urls.map(pyString).join(", ")}]`,
      `TOKEN = ${pyString(c.token)}`,
      `ENDPOINT = ${pyString(c.target)}  # ${oneLine(c.endpoint.path)}`,
      "",
      "",
      "async def main() -> None:",
      "    client = Client(URLS, token=TOKEN)",
      "    client.on(\"state\", lambda state: print(f\"[{state}] {client.node}\"))",
      "    client.on(\"disconnected\", lambda e: print(f\"disconnected: {e['code']} {e['reason']}\"))",
      "    await client.connect()",
      "    try:",
      ...(sub ? ["        subscription = client.subscribe(ENDPOINT)"] : []),
      ...(pub ? [
        "        try:",
        `            published = await client.publish(ENDPOINT, ${pyString("hello from Python")})`,
        "            print(f\"published: partition {published.partition}, offset {published.offset}\")",
        "        except StreamgateError as error:",
        "            print(f\"publish refused: {error}\")",
      ] : []),
      ...(sub ? [
        "        async for message in subscription:",
        "            print(message.seq, message.text())",
      ] : []),
      "    finally:",
      "        await client.close()",
      "",
      "",
      "asyncio.run(main())",
      "",
    ].join("\n");
  },
};

// ------------------------------------------------------------------ start --

async function start() {
  window.addEventListener("hashchange", render);
  if (state.session) {
    // The stored session may have expired; /me also refreshes the role.
    try {
      const me = await call("GET", "/api/v1/me");
      saveSession({ ...state.session, username: me.username, role: me.role });
    } catch {
      // A 401 already sent the user to the login view; anything else: carry on, the views report it.
    }
  }
  render();
}

start();
