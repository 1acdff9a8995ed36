// Defining or editing an API (#/apis/new, #/apis/<name>/edit): its form and
// the editor of each endpoint.

import { h, field, button, link, toast } from "./dom.js";
import { isAdmin } from "./state.js";
import { call, localError } from "./rest.js";
import { errorBox, onSubmit } from "./forms.js";
import { go } from "./nav.js";
import { pathParams } from "./endpoint-params.js";

export async function viewApiForm(name) {
  if (!isAdmin()) {
    return h("section", { class: "card" }, h("h1", {}, name ? `Edit ${name}` : "Define an API"),
      h("p", {}, "Only administrators define and edit APIs; your role is viewer."), link("Back to the APIs", "/apis"));
  }
  const [{ apis }, existing] = await Promise.all([
    call("GET", "/api/v1/apis"),
    name ? call("GET", `/api/v1/apis/${encodeURIComponent(name)}`) : null,
  ]);
  // Topics other APIs use, offered as suggestions (the portal checks the topic exists in Kafka).
  const topics = [...new Set(apis.flatMap((a) => a.endpoints.map((e) => e.topic)))].sort();
  const datalist = h("datalist", { id: "known-topics" }, topics.map((t) => h("option", { value: t })));

  const nameInput = h("input", { value: existing?.name ?? "", required: true, pattern: "[a-z0-9][a-z0-9-]{0,63}", maxlength: "64",
    placeholder: "live-scores", disabled: Boolean(existing), autocomplete: "off", spellcheck: "false" });
  const version = h("input", { value: existing?.version ?? "1.0.0", placeholder: "1.0.0" });
  const owner = h("input", { value: existing?.owner ?? "", placeholder: "team-scores@example.com" });
  const description = h("input", { value: existing?.description ?? "", placeholder: "What the API streams, for whom." });
  const list = h("div", { class: "endpoint-list" });
  const addEndpoint = (endpoint) => {
    list.append(endpointEditor(endpoint, () => renumber(list)));
    renumber(list);
  };
  for (const endpoint of existing?.endpoints ?? [null]) addEndpoint(endpoint);

  const box = errorBox();
  const form = h("form", { class: "card", id: "api-form", novalidate: true },
    datalist,
    h("div", { class: "grid three" },
      field("Name", nameInput, { name: "name", hint: existing ? "An API is not renamed." : "1–64 of a-z, 0-9 and '-'." }),
      field("Version", version, { name: "version" }),
      field("Owner", owner, { name: "owner", hint: "Optional: a team or contact." }),
      field("Description", description, { name: "description", wide: true })),
    h("h2", {}, "Endpoints"),
    h("p", { class: "muted" }, "A path like ", h("code", {}, "/scores/live/{sport}"), " is what clients subscribe to; ",
      h("code", {}, "{sport}"), " is a whole path segment, put into the Kafka key template (", h("code", {}, "live/{sport}"), ")."),
    list,
    h("div", { class: "actions" }, button("+ Add endpoint", () => {
      addEndpoint(null);
      list.lastElementChild.querySelector("input")?.focus();
    }, { id: "add-endpoint" })),
    box,
    h("div", { class: "actions end" },
      link("Cancel", existing ? `/apis/${encodeURIComponent(existing.name)}` : "/apis", { class: "btn secondary" }),
      button(existing ? "Save changes" : "Create API", null, { kind: "primary", type: "submit", id: "save-api" })));

  onSubmit(form, box, async () => {
    const body = {
      name: existing?.name ?? nameInput.value.trim(), version: version.value.trim() || "1.0.0",
      description: description.value.trim(), owner: owner.value.trim(),
      endpoints: [...list.children].map((editor, i) => editor.read(i)),
    };
    const saved = existing
      ? await call("PUT", `/api/v1/apis/${encodeURIComponent(existing.name)}`, body)
      : await call("POST", "/api/v1/apis", body);
    toast(existing ? `Saved ${saved.name}.` : `Created ${saved.name}. Next: mint a token.`);
    go(existing ? `/apis/${encodeURIComponent(saved.name)}` : `/apis/${encodeURIComponent(saved.name)}/tokens`);
  });

  return h("div", {}, h("div", { class: "page-head" }, h("div", {},
    h("h1", {}, existing ? `Edit ${existing.name}` : "Define an API"),
    h("p", { class: "muted" }, "Gateways following this portal pick the change up at their next poll."))), form);
}

/** Keeps every endpoint editor's legend and data-field names in step with its position. */
function renumber(list) {
  [...list.children].forEach((editor, i) => editor.renumber(i, list.children.length));
}

/** The editor of one endpoint: a fieldset that reads itself back as the API's JSON. */
function endpointEditor(endpoint, onRemove) {
  const text = (value, placeholder, more = {}) =>
    h("input", { value, placeholder, required: true, autocomplete: "off", spellcheck: "false", ...more });
  const path = text(endpoint?.path ?? "", "/scores/live/{sport}");
  const topic = text(endpoint?.topic ?? "", "scores", { list: "known-topics" });
  const key = text(endpoint?.key ?? "", "live/{sport}");
  const subscribe = h("input", { type: "checkbox", checked: !endpoint || endpoint.actions.includes("subscribe") });
  const publish = h("input", { type: "checkbox", checked: Boolean(endpoint?.actions.includes("publish")) });
  const description = h("input", { value: endpoint?.description ?? "", placeholder: "Optional" });
  const schema = h("textarea", { rows: "5", class: "mono", spellcheck: "false", placeholder: '{"type": "object", "properties": {...}}',
    value: endpoint?.schema !== undefined ? JSON.stringify(endpoint.schema, null, 2) : "" });
  const params = h("small", { class: "hint" });

  // Until the user types a key of their own, the key follows the path (same
  // parameters, so valid): one thing less to get right on the first try.
  let keyEdited = Boolean(endpoint);
  const showParams = () => {
    const names = pathParams(path.value);
    params.textContent = names.length ? `Parameters: ${names.map((n) => `{${n}}`).join(", ")}; the key must use the same ones.`
      : path.value.trim() ? "No parameters: the path is one fixed endpoint." : "";
  };
  path.addEventListener("input", () => {
    if (!keyEdited) key.value = path.value.replace(/^\/+/, "");
    showParams();
  });
  key.addEventListener("input", () => { keyEdited = key.value !== ""; });
  showParams();

  const legend = h("legend", {});
  const remove = button("Remove", () => {
    set.remove();
    onRemove();
  }, { kind: "link danger", "aria-label": "Remove this endpoint" });
  const actions = h("fieldset", { class: "inline-choices", tabindex: "-1" }, h("legend", {}, "Actions a token may be given"),
    h("label", {}, subscribe, " subscribe"), h("label", {}, publish, " publish"));
  const set = h("fieldset", { class: "endpoint" }, legend,
    h("div", { class: "grid three" },
      h("div", {}, field("Path", path, { hint: "Starts with '/'; {name} marks a parameter segment." }), params),
      field("Kafka topic", topic, { hint: "Must exist in Kafka." }),
      field("Kafka key template", key, { hint: "Same parameters as the path, each ending its '/'-separated segment: live/{sport}, user-{id}/x." })),
    h("div", { class: "grid endpoint-extra" },
      actions,
      field("Description", description)),
    h("div", { class: "endpoint-foot" },
      h("details", { class: "schema" }, h("summary", {}, "Message JSON Schema (optional)"), field("JSON Schema", schema, { wide: true })),
      remove));

  set.renumber = (i, count) => {
    legend.textContent = `Endpoint ${i + 1}`;
    remove.hidden = count <= 1;
    const names = { path, topic, key, description, schema, actions };
    for (const [n, el] of Object.entries(names)) el.dataset.field = `endpoints[${i}].${n}`;
    subscribe.dataset.field = `endpoints[${i}].actions[subscribe]`;
    publish.dataset.field = `endpoints[${i}].actions[publish]`;
  };
  set.read = (i) => {
    const out = {
      path: path.value.trim(), topic: topic.value.trim(), key: key.value.trim(),
      actions: [subscribe.checked && "subscribe", publish.checked && "publish"].filter(Boolean),
      description: description.value.trim(),
    };
    if (schema.value.trim()) {
      try {
        out.schema = JSON.parse(schema.value);
      } catch (error) {
        set.querySelector("details").open = true;
        throw localError(`The JSON Schema is not valid JSON (${error.message}).`, `endpoints[${i}].schema`);
      }
    }
    return out;
  };
  return set;
}
