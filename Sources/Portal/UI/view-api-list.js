// The list of APIs (#/apis).

import { h, link } from "./dom.js";
import { isAdmin } from "./state.js";
import { call } from "./rest.js";
import { actionBadges } from "./widgets.js";

export async function viewApiList() {
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
