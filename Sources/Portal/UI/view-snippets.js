// An API's Snippets tab: one card per endpoint with its code in the language
// chosen, the token, the gateway URLs and the parameters filled in.

import { h, button, link } from "./dom.js";
import { state } from "./state.js";
import { gatewayUrls, workingTokenField, gatewayUrlsField } from "./gateway-settings.js";
import { paramInputs, concreteEndpoint } from "./endpoint-params.js";
import { actionBadges, copyButton } from "./widgets.js";
import { SNIPPETS } from "./snippet-text.js";

const LANGUAGES = [["js", "JavaScript"], ["swift", "Swift"], ["python", "Python"]];
const TOKEN_PLACEHOLDER = "PASTE-A-TOKEN-HERE";

export async function snippetsTab(api) {
  await gatewayUrls();
  const cards = h("div", { class: "snippets" });
  const renderAll = () => {
    for (const card of cards.children) card.refresh();
  };
  for (const endpoint of api.endpoints) cards.append(snippetCard(api, endpoint, renderAll));
  const missing = h("p", { class: "notice", hidden: Boolean(state.workingTokens.get(api.name)) },
    "No token yet: the snippets say ", h("code", {}, TOKEN_PLACEHOLDER), ". Mint one on the ",
    link("Tokens tab", `/apis/${encodeURIComponent(api.name)}/tokens`), ", or paste one above.");
  return h("div", {},
    h("section", { class: "card" }, h("h2", {}, "Filled into every snippet"),
      h("div", { class: "grid two" }, workingTokenField(api, () => {
        missing.hidden = Boolean(state.workingTokens.get(api.name));
        renderAll();
      }), gatewayUrlsField(renderAll)), missing),
    cards);
}

/** One endpoint's snippet; `onLanguage` re-renders every card in the language chosen. */
function snippetCard(api, endpoint, onLanguage) {
  const code = h("pre", { class: "code snippet", tabindex: "0" });
  const tabs = h("div", { class: "lang-tabs", role: "group", "aria-label": "Language" });
  const copy = copyButton(() => code.textContent, code, "Copy", "primary");
  const refresh = () => {
    let target;
    try { target = concreteEndpoint(api, endpoint); } catch { target = endpoint.path; }
    const context = {
      api, endpoint, target, urls: state.gatewayUrls,
      token: state.workingTokens.get(api.name) || TOKEN_PLACEHOLDER, origin: location.origin,
    };
    const language = state.snippetLanguage;
    code.textContent = SNIPPETS[language](context);
    code.dataset.language = language;
    for (const b of tabs.children) b.setAttribute("aria-pressed", String(b.dataset.language === language));
  };
  for (const [id, label] of LANGUAGES) {
    tabs.append(button(label, () => {
      state.snippetLanguage = id;
      onLanguage();
    }, { kind: "tab", dataset: { language: id } }));
  }
  const card = h("section", { class: "card snippet-card", dataset: { path: endpoint.path } },
    h("div", { class: "section-head" }, h("h2", {}, h("code", {}, endpoint.path), " ", actionBadges(endpoint.actions)),
      h("div", { class: "snippet-tools" }, tabs, copy)),
    h("div", { class: "params inline" }, paramInputs(api, endpoint, refresh)),
    code);
  card.refresh = refresh;
  refresh();
  return card;
}
