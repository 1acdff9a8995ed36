// The Streamgate Portal's web UI: native ES modules, no build step, no
// dependencies. This is the entry point (index.html loads it); it checks the
// stored session and starts the router. The UI talks to the portal's REST API
// (/api/v1, same origin) and, in the test console, to the gateways through the
// JavaScript SDK the portal serves at /sdk/streamgate.js.
//
// Rules every module keeps:
// - Every string from the server reaches the DOM through textContent (the
//   `h` helper of dom.js), never innerHTML: an API description cannot inject markup.
// - The page's Content-Security-Policy forbids inline scripts and handlers:
//   all handlers are attached with addEventListener.
// - The session token lives in sessionStorage (gone with the tab) and only
//   ever travels in the Authorization header, never in a URL.
// - Tokens minted here are kept in memory only (the portal shows them once).
//
// The modules, all in this folder (the portal serves them flat, at /ui/<file>):
// state, nav, rest, dom, format, forms and widgets are shared; router and
// topbar make the shell; view-*.js are the views and tabs, and token-*,
// console-*, endpoint-params, gateway-settings and snippet-text their parts.

import { state, saveSession } from "./state.js";
import { call } from "./rest.js";
import { render } from "./router.js";

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
