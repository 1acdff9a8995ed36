// The login view (#/login).

import { h, field, button } from "./dom.js";
import { state, saveSession } from "./state.js";
import { call } from "./rest.js";
import { errorBox, onSubmit } from "./forms.js";
import { go } from "./nav.js";

export function viewLogin() {
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
