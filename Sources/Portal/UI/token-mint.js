// Minting a token: the form (subject, rights, expiry, claims) and the panel
// that shows the minted token once.

import { h, field, button, link, nextId } from "./dom.js";
import { formatTime, relativeTime } from "./format.js";
import { state } from "./state.js";
import { call, localError } from "./rest.js";
import { errorBox, onSubmit } from "./forms.js";
import { copyButton } from "./widgets.js";

const DAY = 86400;
const EXPIRIES = [["1 hour", 3600], ["1 day", DAY], ["7 days", 7 * DAY], ["30 days", 30 * DAY], ["90 days", 90 * DAY], ["1 year", 365 * DAY]];

/** The mint form; the minted token is shown once, kept in memory for the console and snippets. */
export function mintForm(api, onMinted) {
  const subject = h("input", { required: true, placeholder: "alice", autocomplete: "off", spellcheck: "false" });
  const description = h("input", { placeholder: "alice's phone app" });
  const expires = h("select", {}, EXPIRIES.map(([label, s]) => h("option", { value: String(s), selected: s === 86400 }, label)));
  const subscribe = rightsChooser(api, "subscribe");
  const publish = rightsChooser(api, "publish");
  const claims = h("textarea", { rows: "2", class: "mono", placeholder: "tenant=acme", spellcheck: "false" });
  const result = h("div", { id: "minted", "aria-live": "polite" });
  const box = errorBox();
  const form = h("form", { class: "card", id: "mint-form", novalidate: true },
    h("h2", {}, "Mint a token"),
    h("div", { class: "grid three" },
      field("Subject", subject, { name: "subject", hint: "Who the token is for (its sub claim)." }),
      field("Description", description, { name: "description", hint: "Optional; searchable." }),
      field("Expires in", expires, { name: "expires_in" })),
    h("div", { class: "grid two" }, subscribe.element, publish.element),
    h("details", {}, h("summary", {}, "Claims (optional)"),
      field("Claims, one name=value a line", claims, { name: "claims", wide: true,
        hint: "Bound into patterns: a segment {tenant} in a pattern matches only the token's tenant claim." })),
    box,
    h("div", { class: "actions end" }, button("Mint token", null, { kind: "primary", type: "submit", id: "mint-submit" })));

  onSubmit(form, box, async () => {
    const body = {
      subject: subject.value.trim(), description: description.value.trim(), expires_in: Number(expires.value),
      subscribe: subscribe.read(), publish: publish.read(),
    };
    const parsed = parseClaims(claims.value);
    if (Object.keys(parsed).length > 0) body.claims = parsed;
    const minted = await call("POST", `/api/v1/apis/${encodeURIComponent(api.name)}/tokens`, body);
    state.workingTokens.set(api.name, minted.token);
    result.replaceChildren(mintedPanel(api, minted));
    form.reset();
    subscribe.reset();
    publish.reset();
    await onMinted();
    result.querySelector("button")?.focus();
  });
  return h("div", {}, form, result);
}

/** "Rights to subscribe": all endpoints allowing it, chosen patterns, or none. */
function rightsChooser(api, action) {
  const allowing = api.endpoints.filter((e) => e.actions.includes(action));
  const group = nextId("r");
  const radio = (value, label, disabled) => h("label", { class: disabled ? "disabled" : null },
    h("input", { type: "radio", name: group, value, disabled, dataset: { right: `${action}-${value}` } }), ` ${label}`);
  const patterns = h("textarea", { rows: "2", class: "mono", spellcheck: "false",
    placeholder: allowing.length ? allowing.map((e) => e.path.replace(/\{[^}]+\}/g, "*")).join("\n") : "" });
  const patternsField = field("Patterns, one a line", patterns, { wide: true,
    hint: "* is one segment, ** any; {sub} or {claim} must equal the token's subject or claim." });
  const element = h("fieldset", { class: "rights", tabindex: "-1", dataset: { field: action } },
    h("legend", {}, `Rights to ${action}`),
    radio("all", allowing.length ? `Every endpoint that allows ${action} (${allowing.length})` : `No endpoint allows ${action}`,
      allowing.length === 0),
    radio("patterns", "Only endpoints matching patterns", allowing.length === 0),
    radio("none", "None", false),
    patternsField);
  const reset = () => {
    element.querySelector(`input[value=${allowing.length ? "all" : "none"}]`).checked = true;
    patternsField.hidden = true;
  };
  element.addEventListener("change", () => {
    patternsField.hidden = element.querySelector("input[value=patterns]").checked === false;
  });
  reset();
  const read = () => {
    const choice = element.querySelector("input[type=radio]:checked")?.value;
    if (choice === "all") return true;
    if (choice === "none") return false;
    return patterns.value.split("\n").map((l) => l.trim()).filter(Boolean);
  };
  return { element, read, reset };
}

function parseClaims(text) {
  const claims = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw localError(`Line ${i + 1} of the claims is not name=value.`, "claims");
    claims[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return claims;
}

function mintedPanel(api, minted) {
  const base = `/apis/${encodeURIComponent(api.name)}`;
  const tokenText = h("textarea", { class: "mono token-value", id: "minted-token", rows: "3", readOnly: true, value: minted.token,
    "aria-label": "The new token" });
  return h("section", { class: "card minted" },
    h("h2", {}, `Token for ${minted.subject}`),
    h("p", {}, h("strong", {}, "Copy it now: the portal shows it only once. "),
      `Id ${minted.id}, expires ${formatTime(minted.expires_at)} (${relativeTime(minted.expires_at)}).`),
    tokenText,
    h("div", { class: "actions" },
      copyButton(() => minted.token, tokenText, "Copy token"),
      link("Open the test console with it", `${base}/console`, { class: "btn primary", id: "open-console" }),
      link("Snippets with it", `${base}/snippets`, { class: "btn secondary" })));
}
