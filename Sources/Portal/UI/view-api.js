// One API (#/apis/<name>/<tab>): its header (AsyncAPI downloads, edit,
// delete), its tabs, and the Overview tab.

import { h, button, link, toast } from "./dom.js";
import { state, isAdmin } from "./state.js";
import { call, sessionEnded } from "./rest.js";
import { go } from "./nav.js";
import { actionBadges } from "./widgets.js";
import { tokensTab } from "./view-tokens.js";
import { consoleTab } from "./view-console.js";
import { snippetsTab } from "./view-snippets.js";

const TABS = [["overview", "Overview"], ["tokens", "Tokens"], ["console", "Test console"], ["snippets", "Snippets"]];

export async function viewApi(name, tab, view) {
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
