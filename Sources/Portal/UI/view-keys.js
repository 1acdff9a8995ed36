// The signing keys (#/keys): their status, rotating, and withdrawing a leaked key.

import { h, button, toast } from "./dom.js";
import { formatTime } from "./format.js";
import { isAdmin } from "./state.js";
import { call } from "./rest.js";
import { errorBox, showError } from "./forms.js";
import { go } from "./nav.js";

export async function viewKeys() {
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
