// The top bar of a logged-in user: the brand, the main navigation, who is
// logged in, and logging out.

import { h, button, link } from "./dom.js";
import { state, saveSession, isAdmin } from "./state.js";
import { call } from "./rest.js";
import { go } from "./nav.js";

const topbar = document.getElementById("topbar");

export function renderTopbar(path) {
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
