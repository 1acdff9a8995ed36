// The users (#/users, admins only): the list, adding and deleting.

import { h, field, button, toast } from "./dom.js";
import { state, isAdmin } from "./state.js";
import { call } from "./rest.js";
import { errorBox, showError, onSubmit } from "./forms.js";
import { go } from "./nav.js";

export async function viewUsers() {
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
