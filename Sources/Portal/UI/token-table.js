// The searchable table of tokens (one API's or all), with their status and,
// for admins, revoking.

import { h, field, button, link, toast } from "./dom.js";
import { formatTime, relativeTime } from "./format.js";
import { isAdmin } from "./state.js";
import { call } from "./rest.js";
import { errorBox, showError, clearErrors } from "./forms.js";

/**
 * A searchable token table (`?q=` matches subject, id and description).
 * `reload()` fetches again; revoking is for admins.
 */
export function tokenTable({ api, apis } = {}) {
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
