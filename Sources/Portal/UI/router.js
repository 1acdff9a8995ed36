// The router: which view renders for the location hash (#/apis, #/keys, ...),
// rendered into <main> with the top bar; a view left runs its cleanups.

import { h, link } from "./dom.js";
import { state } from "./state.js";
import { currentPath, go, setRenderer } from "./nav.js";
import { renderTopbar } from "./topbar.js";
import { viewLogin } from "./view-login.js";
import { viewApiList } from "./view-api-list.js";
import { viewApiForm } from "./view-api-form.js";
import { viewApi } from "./view-api.js";
import { viewTokens } from "./view-tokens.js";
import { viewKeys } from "./view-keys.js";
import { viewUsers } from "./view-users.js";

const main = document.getElementById("app");

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

/** Renders the view of the current hash. Views are async; a slower, older one is dropped. */
export async function render() {
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

setRenderer(render);
