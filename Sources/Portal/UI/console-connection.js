// The test console's connection to the gateways: the JavaScript SDK
// (/sdk/streamgate.js, loaded when first needed), one client, its subscriptions.

import { state } from "./state.js";
import { localError } from "./rest.js";
import { checkUrls } from "./gateway-settings.js";

let sdkModule = null;
/** The SDK, loaded when the console first needs it (the rest of the UI works without it). */
function loadSdk() {
  sdkModule ??= import("/sdk/streamgate.js").catch((error) => {
    sdkModule = null;
    throw localError(`Could not load the JavaScript SDK from /sdk/streamgate.js (${error.message}).`);
  });
  return sdkModule;
}

const PUBLISH_WAIT_MS = 15_000;

/**
 * The console's connection: one SDK client for the current gateway URLs and
 * token, made on first use and made again when either changed. Subscriptions
 * are kept by concrete endpoint.
 */
export class ConsoleConnection {
  constructor(apiName, { onState, onTrouble, log }) {
    this.apiName = apiName;
    this.onState = onState;
    this.onTrouble = onTrouble;
    this.log = log;
    this.client = null;
    this.key = null;
    this.subscriptions = new Map();
  }

  /** The client for the current URLs and token. */
  async ensureClient() {
    const urls = state.gatewayUrls;
    checkUrls(urls);
    const token = (state.workingTokens.get(this.apiName) ?? "").trim();
    if (!token) throw localError("Paste a token, or mint one on the Tokens tab first.", "token");
    const key = JSON.stringify([urls, token]);
    if (this.client && this.key === key && this.client.state !== "closed") return this.client;
    if (this.client) this.log("The token or the gateway URLs changed: connecting again with the new ones.");
    this.close();
    const { StreamgateClient } = await loadSdk();
    const client = new StreamgateClient({ urls, token });
    this.client = client;
    this.key = key;
    // Events of a client that was since replaced are ignored.
    const current = (fn) => (...args) => { if (this.client === client) fn(...args); };
    client.on("state", current((s) => this.onState(s, client.node)));
    client.on("connected", current((e) => this.log(`Connected to ${e.url}${e.subject ? ` as ${e.subject}` : ""}.`, "ok")));
    client.on("disconnected", current((e) => {
      this.log(`Disconnected from ${e.url}: ${e.code}${e.reason ? ` ${e.reason}` : ""}. Retrying…`, "bad");
      // 1006: nothing answered (a wrong URL, a gateway down); 1008: the gateway refused the token.
      // A refusal's `error` came first and says more: it is kept (`weak`).
      this.onTrouble(e.code === 1006 ? `No gateway answers at ${e.url}: check the gateway URLs. Retrying…`
        : `The gateway closed the connection (${e.code}${e.reason ? ` ${e.reason}` : ""}). Retrying…`, { weak: e.code === 1008 });
    }));
    client.on("error", current((e) => {
      this.log(`${e.code}: ${e.message}`, "bad");
      if (e.code === "unauthorized" || e.code === "token_expired") this.onTrouble(`The gateway refuses this token: ${e.message}`);
    }));
    client.connect().catch(() => { /* closed before it connected: the state says so */ });
    this.onState(client.state, client.node);
    return client;
  }

  /** Subscribes to `endpoint`; `handlers` get the SDK's subscription events. Null when already subscribed. */
  async subscribe(endpoint, handlers) {
    const client = await this.ensureClient();
    if (this.subscriptions.has(endpoint)) return null;
    const subscription = client.subscribe(endpoint);
    this.subscriptions.set(endpoint, subscription);
    const current = (fn) => (...args) => { if (this.subscriptions.get(endpoint) === subscription) fn(...args); };
    for (const [event, handler] of Object.entries(handlers)) {
      if (event !== "ended") subscription.on(event, current(handler));
    }
    subscription.on("ended", current((reason) => {
      this.subscriptions.delete(endpoint);
      handlers.ended?.(reason);
    }));
    return subscription;
  }

  /** Publishes a text; the SDK waits for a connection, which a refused token would make forever. */
  async publish(endpoint, text) {
    const client = await this.ensureClient();
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(localError(
        `Not connected within ${PUBLISH_WAIT_MS / 1000} s: check the gateway URLs, the token, and the events.`)), PUBLISH_WAIT_MS);
    });
    try {
      return await Promise.race([client.publish(endpoint, text), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close() {
    const client = this.client;
    this.client = null;
    this.key = null;
    client?.close(); // ends every subscription: their `ended` handlers run now
    this.subscriptions.clear();
    this.onState("idle", "");
  }
}
