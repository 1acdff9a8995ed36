// What the test console and the snippets connect with: the gateways'
// WebSocket URLs (from the portal, else a guess) and the working token, and
// their fields.

import { h, field } from "./dom.js";
import { state } from "./state.js";
import { call, localError } from "./rest.js";

/** The gateways' WebSocket URLs: what the portal says, else a guess the user can edit. */
export async function gatewayUrls() {
  if (state.gatewayUrls) return state.gatewayUrls;
  try {
    const config = await call("GET", "/api/v1/config");
    if (Array.isArray(config?.gateway_urls) && config.gateway_urls.length > 0) {
      state.gatewayUrls = config.gateway_urls.map(String);
      state.gatewayUrlsSource = "portal";
    }
  } catch (error) {
    if (error.status === 401) throw error;
  }
  if (!state.gatewayUrls) {
    state.gatewayUrls = [`${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:8080/ws`];
    state.gatewayUrlsSource = "guess";
  }
  return state.gatewayUrls;
}

/** The token field of the console and the snippets: prefilled with the token minted here. */
export function workingTokenField(api, onChange) {
  const input = h("textarea", { class: "mono token-value", rows: "2", spellcheck: "false", id: "working-token",
    placeholder: "Paste a token (eyJ…), or mint one on the Tokens tab", value: state.workingTokens.get(api.name) ?? "" });
  input.addEventListener("input", () => {
    state.workingTokens.set(api.name, input.value.trim());
    onChange?.();
  });
  const minted = state.workingTokens.has(api.name);
  return field("Token", input, { hint: minted ? "The token minted in this session (kept in memory only)." : "Kept in memory only, never stored." });
}

/** The gateway URLs field, shared by the console and the snippets. */
export function gatewayUrlsField(onChange) {
  const input = h("input", { id: "gateway-urls", value: state.gatewayUrls.join(", "), spellcheck: "false", autocomplete: "off" });
  const hint = {
    portal: "From the portal's configuration (gateway_urls). Separate several with commas.",
    guess: "The portal did not say (GET /api/v1/config failed): check this. Separate several with commas.",
    edited: "As you edited them. Separate several with commas.",
  }[state.gatewayUrlsSource];
  input.addEventListener("change", () => {
    const urls = input.value.split(/[\s,]+/).filter(Boolean);
    state.gatewayUrls = urls;
    state.gatewayUrlsSource = "edited";
    onChange?.();
  });
  return field("Gateway URLs", input, { hint, name: "gateway_urls" });
}

export function checkUrls(urls) {
  if (urls.length === 0) throw localError("Give at least one gateway URL (ws://host:port/ws).", "gateway_urls");
  const bad = urls.find((u) => !/^wss?:\/\/[^\s]+$/.test(u));
  if (bad) throw localError(`${bad} is not a ws:// or wss:// URL.`, "gateway_urls");
}
