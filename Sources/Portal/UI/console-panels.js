// The test console's parts: the live message table, the event log, the
// connection state, and the endpoint picker.

import { h, field, button } from "./dom.js";
import { clockTime } from "./format.js";
import { paramInputs, concreteEndpoint } from "./endpoint-params.js";

const MAX_ROWS = 500;

/** The live message table: newest on top, at most MAX_ROWS kept. */
export function messageList() {
  const tbody = h("tbody", { id: "console-messages" });
  const count = h("span", { class: "badge", id: "console-count" }, "0");
  const empty = h("p", { class: "muted", id: "console-empty" }, "Messages appear here, newest on top, as they are produced to Kafka.");
  let received = 0;
  const clear = () => {
    tbody.replaceChildren();
    received = 0;
    count.textContent = "0";
    empty.hidden = false;
  };
  const add = (message) => {
    received += 1;
    count.textContent = String(received);
    empty.hidden = true;
    let text;
    try { text = message.text(); } catch { text = `<${message.payload.length} bytes>`; }
    const kafkaTime = message.timestamp >= 0 ? `Kafka timestamp ${new Date(message.timestamp).toISOString()}` : null;
    tbody.prepend(h("tr", { class: "fresh" },
      h("td", { class: "nowrap", title: kafkaTime }, clockTime(new Date())),
      h("td", { class: "num" }, String(message.seq)),
      h("td", {}, h("code", {}, message.endpoint)),
      h("td", { class: "payload" }, text.length > 4000 ? `${text.slice(0, 4000)}…` : text)));
    while (tbody.children.length > MAX_ROWS) tbody.lastElementChild.remove();
  };
  const element = h("section", { class: "card" },
    h("div", { class: "section-head" }, h("h2", {}, "Messages ", count), button("Clear", clear, { kind: "secondary small" })),
    empty,
    h("div", { class: "scroll" }, h("table", { class: "table messages" },
      h("colgroup", {}, h("col", { class: "col-time" }), h("col", { class: "col-seq" }), h("col", { class: "col-endpoint" }), h("col")),
      h("thead", {}, h("tr", {}, ["Received", "Seq", "Endpoint", "Payload"].map((t) => h("th", { scope: "col" }, t)))), tbody)));
  return { element, add };
}

/** The console's event log, newest on top. */
export function eventLog() {
  const list = h("ol", { class: "log", id: "console-log", "aria-label": "Connection events" });
  const log = (text, kind = "info") => {
    list.prepend(h("li", { class: kind }, h("time", {}, clockTime(new Date())), " ", text));
    while (list.children.length > 200) list.lastElementChild.remove();
  };
  return { element: h("section", { class: "card" }, h("h2", {}, "Events"), list), log };
}

/**
 * The connection's state, as a coloured badge with the node it is on, and
 * why the gateway last refused or dropped it (until it connects again).
 */
export function connectionState(onDisconnect) {
  const badge = h("span", { class: "conn state-idle", id: "console-state" }, "not connected");
  const node = h("span", { class: "muted small", id: "console-node" });
  const why = h("p", { class: "small error-text", id: "console-why", role: "status" });
  const disconnect = button("Disconnect", onDisconnect, { kind: "secondary small", id: "console-disconnect", disabled: true });
  const show = (s, url) => {
    const active = s !== "idle" && s !== "closed";
    badge.className = `conn state-${s}`;
    badge.textContent = s === "idle" ? "not connected" : s;
    node.textContent = active ? url : "";
    disconnect.disabled = !active;
    if (s === "connected" || s === "idle") why.textContent = "";
  };
  const explain = (text, { weak = false } = {}) => {
    if (!weak || !why.textContent) why.textContent = text;
  };
  return { element: h("div", {}, h("p", { class: "conn-line" }, "Connection: ", badge, " ", node, " ", disconnect), why), show, explain };
}

/** Chooses one of the API's endpoints and fills in its parameters. */
export function endpointPicker(api, onChange) {
  const select = h("select", { id: "console-endpoint" },
    api.endpoints.map((e, i) => h("option", { value: String(i) }, `${e.path}  (${e.actions.join(", ")})`)));
  const params = h("div", { class: "params" });
  const preview = h("code", { id: "console-preview" });
  const selected = () => api.endpoints[Number(select.value)];
  const showPreview = () => {
    // An incomplete endpoint shows as "—"; Subscribe then says which parameter is missing.
    try { preview.textContent = concreteEndpoint(api, selected()); } catch { preview.textContent = "—"; }
  };
  const refresh = () => {
    params.replaceChildren(...paramInputs(api, selected(), showPreview));
    showPreview();
    onChange(selected());
  };
  select.addEventListener("change", refresh);
  return {
    element: h("div", {}, field("Endpoint", select), params, h("p", { class: "small" }, "Endpoint: ", preview)),
    selected, refresh,
    concrete: () => concreteEndpoint(api, selected()),
  };
}
