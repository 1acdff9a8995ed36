// The tokens views: an API's Tokens tab (mint form and its tokens) and the
// Tokens page of every API (#/tokens).

import { h } from "./dom.js";
import { isAdmin } from "./state.js";
import { call } from "./rest.js";
import { mintForm } from "./token-mint.js";
import { tokenTable } from "./token-table.js";

export async function tokensTab(api) {
  const table = tokenTable({ api: api.name });
  const parts = [];
  if (isAdmin()) parts.push(mintForm(api, () => table.reload()));
  else parts.push(h("p", { class: "muted" }, "Only administrators mint tokens. Paste a token you were given in the test console."));
  parts.push(h("h2", {}, `Tokens of ${api.name}`), table);
  await table.reload();
  return h("div", {}, parts);
}

export async function viewTokens() {
  const { apis } = await call("GET", "/api/v1/apis");
  const table = tokenTable({ apis });
  await table.reload();
  return h("div", {}, h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Tokens"),
    h("p", { class: "muted" }, "Every token minted, newest first. Mint new ones on an API's Tokens tab."))), table);
}
