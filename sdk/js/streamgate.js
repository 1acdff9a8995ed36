// Streamgate JavaScript SDK: one dependency-free ES module for browsers and
// Node 20+ (Node's global WebSocket: `node --experimental-websocket` on 20).
//
// A client connects to one of a list of gateway nodes, authenticates with a
// token from a provider, and keeps every subscription going across network
// loss and node failure: it reconnects with exponential backoff and full
// jitter, trying the other nodes, and resumes each subscription from the
// position (epoch, seq) of the last message it delivered, so the application
// sees every message exactly once, in order. A node that drains (`moving`)
// is left the same way, at a moment of the client's choosing and without
// losing a request in flight. Wire protocol: docs/protocol.md.

const KIND_MESSAGE = 1;
const FLAG_SNAPSHOT = 1;
const FLAG_TRACE_CONTEXT = 2;
const HEADER_BYTES = 22;
/** The id of liveness pings: their answers are ignored. */
const PING_ID = "streamgate-sdk-ping";

/** A refused request or a failure the application should know about. */
export class StreamgateError extends Error {
  /**
   * @param {string} code the protocol's error code (`forbidden`, `rate_limited`, ...)
   *   or an SDK one (`disconnected`, `timeout`, `closed`)
   * @param {string} message
   * @param {string} [endpoint]
   */
  constructor(code, message, endpoint) {
    super(message);
    this.name = "StreamgateError";
    this.code = code;
    this.endpoint = endpoint;
  }
}

/** One delivered message. */
export class Message {
  constructor(endpoint, epoch, seq, timestamp, snapshot, payload, traceparent = null) {
    /** The canonical endpoint, e.g. `/scores/live/nba`. */
    this.endpoint = endpoint;
    /** With `seq`, the message's position: opaque, compare for equality. */
    this.epoch = epoch;
    /** The record's Kafka partition offset: increases within an endpoint. */
    this.seq = seq;
    /** The record's timestamp (ms since the Unix epoch), -1 when unknown. */
    this.timestamp = timestamp;
    /** True for the latest message sent first on `snapshot: true`. */
    this.snapshot = snapshot;
    /** The record's value, byte for byte. */
    this.payload = payload;
    /** The record's W3C `traceparent` header when the frame carries one (a
     * gateway with `tracing.propagate`), null otherwise. */
    this.traceparent = traceparent;
  }

  /** The payload as UTF-8 text. */
  text() {
    return new TextDecoder().decode(this.payload);
  }

  /** The payload parsed as JSON. */
  json() {
    return JSON.parse(this.text());
  }
}

/**
 * Reads a binary delivery frame (docs/protocol.md, "delivery"); null when it
 * is not one or is cut short. With flag bit 1, the trace context (one length
 * byte, then the record's `traceparent`) sits between the epoch and the payload.
 */
export function parseDelivery(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < HEADER_BYTES || bytes[0] !== KIND_MESSAGE) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const endpointLength = view.getUint16(2);
  const epochLength = view.getUint16(4);
  const seq = Number(view.getBigUint64(6));
  const timestamp = Number(view.getBigInt64(14));
  const endpointEnd = HEADER_BYTES + endpointLength;
  const epochEnd = endpointEnd + epochLength;
  if (epochEnd > bytes.length) return null;
  const decoder = new TextDecoder();
  let payloadStart = epochEnd;
  let traceparent = null;
  if ((bytes[1] & FLAG_TRACE_CONTEXT) !== 0) {
    if (epochEnd + 1 > bytes.length) return null;
    const traceEnd = epochEnd + 1 + bytes[epochEnd];
    if (traceEnd > bytes.length) return null;
    traceparent = decoder.decode(bytes.subarray(epochEnd + 1, traceEnd));
    payloadStart = traceEnd;
  }
  return new Message(
    decoder.decode(bytes.subarray(HEADER_BYTES, endpointEnd)),
    decoder.decode(bytes.subarray(endpointEnd, epochEnd)),
    seq,
    timestamp,
    (bytes[1] & FLAG_SNAPSHOT) !== 0,
    bytes.subarray(payloadStart),
    traceparent,
  );
}

/** The delay before reconnect attempt `attempt` (0-based): exponential, capped, full jitter. */
export function backoffDelay(attempt, { minDelayMs, maxDelayMs, jitter }, random = Math.random) {
  const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt, 30));
  return jitter ? random() * ceiling : ceiling;
}

/** A tiny event emitter: `on` returns a function that removes the listener. */
class Emitter {
  #listeners = new Map();

  on(event, listener) {
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(listener);
    return () => this.#listeners.get(event)?.delete(listener);
  }

  /** How many listeners `event` has. */
  listenerCount(event) {
    return this.#listeners.get(event)?.size ?? 0;
  }

  emit(event, ...args) {
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        listener(...args);
      } catch (error) {
        queueMicrotask(() => { throw error; });
      }
    }
  }
}

/**
 * One endpoint's subscription. Messages arrive as `message` events and, when
 * iterated (`for await (const m of subscription)`), through the iterator;
 * until one or the other is there, they wait (none is lost to a late
 * iterator), and with only `message` listeners none is kept.
 * Events: `message`, `subscribed`, `replayed`, `gap`, `stale_epoch`, `retry`,
 * `ended` (the gateway ended it: rights or credentials; or `unsubscribe`).
 */
export class Subscription extends Emitter {
  #client;
  #queue = [];
  #waiting = [];
  #iterated = false;

  constructor(client, endpoint, options) {
    super();
    this.#client = client;
    /** The endpoint as asked for; `canonical` once the gateway answered. */
    this.endpoint = endpoint;
    this.canonical = null;
    /** The last delivered position `{epoch, seq}` (or the one resumed from). */
    this.position = options.from ?? null;
    this.snapshot = !!options.snapshot && !options.from;
    /** True once `unsubscribe` was called or the gateway ended it. */
    this.ended = false;
    /** Why the gateway ended it, while it waits to be resumed (token expiry). */
    this.suspended = null;
  }

  /** Stops the subscription (the gateway is told when connected). */
  unsubscribe() {
    this.#client._unsubscribe(this);
  }

  /** @internal */
  _deliver(message) {
    if (this.position && message.epoch === this.position.epoch && message.seq <= this.position.seq) return;
    this.position = { epoch: message.epoch, seq: message.seq };
    this.emit("message", message);
    if (!this.#iterated && this.listenerCount("message") > 0) return;
    const next = this.#waiting.shift();
    if (next) next({ value: message, done: false });
    else this.#queue.push(message);
  }

  /** @internal The gateway's `live` position: live delivery starts after it. Kept as
   * the resume position while nothing later was delivered, so a failover before
   * the first message still resumes exactly. */
  _goLive(epoch, seq) {
    const p = this.position;
    if (!p || p.epoch !== epoch || seq > p.seq) this.position = { epoch, seq };
  }

  /** @internal */
  _end(reason) {
    if (this.ended) return;
    this.ended = true;
    this.emit("ended", reason);
    for (const next of this.#waiting.splice(0)) next({ value: undefined, done: true });
  }

  [Symbol.asyncIterator]() {
    this.#iterated = true;
    return {
      next: () => {
        if (this.#queue.length > 0) return Promise.resolve({ value: this.#queue.shift(), done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.#waiting.push(resolve));
      },
      return: () => {
        this.unsubscribe();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

const DEFAULTS = {
  minReconnectDelayMs: 100,
  maxReconnectDelayMs: 10_000,
  jitter: true,
  livenessTimeoutMs: 15_000,
  requestTimeoutMs: 10_000,
  retryResumeDelayMs: 500,
};

/**
 * A connection to a Streamgate cluster. Events: `state` (`connecting`,
 * `connected`, `reconnecting`, `closed`), `connected` ({url, subject,
 * expiresAt, traceContext}: traceContext, the node's deliveries may carry
 * trace context),
 * `disconnected` ({url, code, reason}), `moving` ({url, reconnectWithinMs,
 * delayMs}: the node is draining, the client moves after `delayMs`),
 * `token_refreshed`, `error` (a StreamgateError not tied to a request).
 */
export class StreamgateClient extends Emitter {
  #options;
  #urls;
  #nodeIndex;
  #WebSocket;
  #random;
  #socket = null;
  #state = "idle";
  #attempt = 0;
  #reconnectTimer = null;
  #livenessTimer = null;
  #lastHeard = 0;
  #nextId = 1;
  #pending = new Map();
  #subscriptions = new Map();
  #connectedWaiters = [];
  #closed = false;
  #onlineListener = null;
  /** A move off a draining node: {socket, url, timer, leaving}, or null. */
  #move = null;

  /**
   * @param {object} options
   * @param {string[] | string} options.urls the nodes' WebSocket URLs (`ws://host:port/ws`)
   * @param {string | (() => string | Promise<string>)} [options.token] a token, or a provider
   *   called at every connect, on `token_expiring` and after `token_expired`
   * @param {Function} [options.WebSocket] a WebSocket constructor (default: the global one)
   * @param {() => number} [options.random] uniform in [0, 1) (default: Math.random): draws
   *   the reconnect jitter and the moment of a move off a draining node
   */
  constructor(options) {
    super();
    this.#options = { ...DEFAULTS, ...options };
    this.#urls = Array.isArray(options.urls) ? [...options.urls] : [options.urls];
    if (this.#urls.length === 0) throw new StreamgateError("bad_options", "urls: give at least one gateway URL");
    this.#nodeIndex = 0;
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.#random = options.random ?? Math.random;
    if (!this.#WebSocket) {
      throw new StreamgateError("bad_options",
        "no WebSocket: on Node 20 run with --experimental-websocket, or pass options.WebSocket");
    }
  }

  /** `idle`, `connecting`, `connected`, `reconnecting` or `closed`. */
  get state() { return this.#state; }

  /** The URL of the node this client is connected (or connecting) to. */
  get node() { return this.#urls[this.#nodeIndex]; }

  /** Starts connecting; resolves once the first node welcomed the client. */
  connect() {
    if (this.#state === "idle") {
      this.#watchOnline();
      this.#open();
    }
    return this.#whenConnected();
  }

  /**
   * Subscribes to an endpoint; returns at once. `options.from` resumes after
   * a position `{epoch, seq}`; `options.snapshot` asks for the latest
   * message first. The subscription survives reconnects and node failover.
   */
  subscribe(endpoint, options = {}) {
    const existing = this.#subscriptions.get(endpoint);
    if (existing && !existing.ended) return existing;
    const subscription = new Subscription(this, endpoint, options);
    this.#subscriptions.set(endpoint, subscription);
    if (this.#state === "connected") this.#sendSubscribe(subscription);
    return subscription;
  }

  /**
   * Publishes `payload` (a string, or bytes) to an endpoint; resolves with
   * `{endpoint, partition, offset}` once Kafka acknowledged it, rejects with
   * a StreamgateError (`forbidden`, `rate_limited`, `publish_failed`, ...;
   * `disconnected` if the connection was lost before the answer: the record
   * may or may not have been produced). `options.traceparent`, a W3C trace
   * context, becomes the record's `traceparent` header on a gateway with
   * `tracing.propagate` (which refuses a malformed one with `bad_request`)
   * and is ignored by others.
   */
  async publish(endpoint, payload, options = {}) {
    const request = { type: "publish", endpoint };
    if (typeof payload === "string") request.payload = payload;
    else request.payload_base64 = toBase64(payload);
    if (options?.traceparent != null) request.traceparent = options.traceparent;
    await this.#whenConnected();
    return this.#request(request);
  }

  /** Closes the connection for good; subscriptions end. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelMove();
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#livenessTimer);
    this.#unwatchOnline();
    this.#failPending(new StreamgateError("closed", "the client was closed"));
    for (const waiter of this.#connectedWaiters.splice(0)) waiter.reject(new StreamgateError("closed", "the client was closed"));
    for (const subscription of this.#subscriptions.values()) subscription._end({ code: "closed" });
    this.#subscriptions.clear();
    const socket = this.#socket;
    this.#socket = null;
    if (socket) socket.close(1000, "client closed");
    this.#setState("closed");
  }

  // ----------------------------------------------------------- connection

  async #open() {
    if (this.#closed) return;
    this.#setState(this.#attempt === 0 && this.#state === "idle" ? "connecting" : "reconnecting");
    let url = this.#urls[this.#nodeIndex];
    try {
      const token = await this.#token();
      if (token) url += (url.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(token);
    } catch (error) {
      this.emit("error", new StreamgateError("token_provider", `the token provider failed: ${error?.message ?? error}`));
      return this.#scheduleReconnect();
    }
    if (this.#closed) return;
    let socket;
    try {
      socket = new this.#WebSocket(url, "streamgate.v1");
    } catch (error) {
      return this.#scheduleReconnect();
    }
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    this.#lastHeard = Date.now();
    socket.onmessage = (event) => {
      if (socket !== this.#socket) return;
      this.#lastHeard = Date.now();
      if (typeof event.data === "string") this.#onText(event.data);
      else this.#onBinary(event.data);
    };
    socket.onclose = (event) => {
      if (socket !== this.#socket) return;
      this.#lost(event.code, event.reason);
    };
    socket.onerror = () => {};
    this.#startLiveness(socket);
  }

  /** The connection is gone: fail what waited on it, try the next node. */
  #lost(code, reason) {
    const url = this.#urls[this.#nodeIndex];
    this.#cancelMove(); // the reconnect below is the only one
    this.#socket = null;
    clearInterval(this.#livenessTimer);
    this.#failPending(new StreamgateError("disconnected", `the connection to ${url} was lost (${code})`));
    if (this.#closed) return;
    const wasConnected = this.#state === "connected";
    this.emit("disconnected", { url, code, reason });
    this.#setState("reconnecting");
    if (wasConnected) this.#attempt = 0;
    this.#nodeIndex = (this.#nodeIndex + 1) % this.#urls.length;
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    if (this.#closed) return;
    const delay = backoffDelay(this.#attempt, {
      minDelayMs: this.#options.minReconnectDelayMs,
      maxDelayMs: this.#options.maxReconnectDelayMs,
      jitter: this.#options.jitter,
    }, this.#random);
    this.#attempt += 1;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => this.#open(), delay);
  }

  /** A client-side liveness check: a ping when quiet, a reconnect when silent. */
  #startLiveness(socket) {
    clearInterval(this.#livenessTimer);
    const timeout = this.#options.livenessTimeoutMs;
    this.#livenessTimer = setInterval(() => {
      if (socket !== this.#socket) return;
      const quiet = Date.now() - this.#lastHeard;
      if (quiet > timeout) {
        this.#socket = null;
        try { socket.close(4000, "liveness timeout"); } catch { /* already closing */ }
        this.#lost(4000, "no frame from the gateway within livenessTimeoutMs");
      } else if (quiet > timeout / 3 && socket.readyState === 1) {
        // Answered by `pong` (by an `unknown_type` error from gateways older
        // than the ping request): any answer is a frame, which is all this needs.
        socket.send(JSON.stringify({ type: "ping", id: PING_ID }));
      }
    }, Math.max(50, timeout / 6));
  }

  #watchOnline() {
    if (typeof globalThis.addEventListener !== "function" || typeof globalThis.navigator === "undefined") return;
    this.#onlineListener = () => {
      if (this.#state !== "reconnecting" || this.#socket) return;
      clearTimeout(this.#reconnectTimer);
      this.#attempt = 0;
      this.#open();
    };
    globalThis.addEventListener("online", this.#onlineListener);
  }

  #unwatchOnline() {
    if (this.#onlineListener) globalThis.removeEventListener("online", this.#onlineListener);
  }

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.emit("state", state);
  }

  #whenConnected() {
    if (this.#state === "connected") return Promise.resolve();
    if (this.#closed) return Promise.reject(new StreamgateError("closed", "the client was closed"));
    return new Promise((resolve, reject) => this.#connectedWaiters.push({ resolve, reject }));
  }

  async #token() {
    const token = this.#options.token;
    return typeof token === "function" ? await token() : token;
  }

  // ----------------------------------------------------- a draining node

  /**
   * The node is draining (docs/protocol.md, "Moving to another node"). The
   * client moves after a delay drawn uniformly from the node's window, so
   * that the node's clients spread their reconnections over it instead of
   * arriving at the other nodes at once; until then this connection serves
   * as before (deliveries, requests). A second notice changes nothing: one
   * move is under way.
   */
  #moving(notice) {
    const socket = this.#socket;
    if (!socket || this.#move) return;
    const reconnectWithinMs = Math.max(0, Number(notice.reconnect_within_ms) || 0);
    const delayMs = Math.floor(this.#random() * reconnectWithinMs);
    const url = this.node;
    this.#move = { socket, url, leaving: false, timer: setTimeout(() => this.#leave(), delayMs) };
    this.emit("moving", { url, reconnectWithinMs, delayMs });
  }

  /**
   * The move's delay is over: new requests wait for the next connection (as
   * while reconnecting), and this one is left once the requests already sent
   * on it are answered. The draining node still answers them, so a publish
   * in flight gets its `published` rather than a `disconnected` that would
   * leave its fate unknown.
   */
  #leave() {
    const move = this.#move;
    if (!move || move.socket !== this.#socket) return;
    move.leaving = true;
    this.#setState("reconnecting");
    this.#leaveWhenAnswered();
  }

  /**
   * Called whenever a request is settled: the last answer (or timeout, so the
   * wait is bounded by requestTimeoutMs) on a connection being left ends it.
   * The next node is tried at once, with no back-off: nothing failed, and the
   * delay was drawn already. Subscriptions resume on its `welcome` from their
   * positions, as after a lost connection.
   */
  #leaveWhenAnswered() {
    const move = this.#move;
    if (!move?.leaving || this.#pending.size > 0) return;
    this.#move = null;
    this.#socket = null; // its close event and any late frame are ignored
    clearInterval(this.#livenessTimer);
    try { move.socket.close(1000, "moving"); } catch { /* already closing */ }
    this.emit("disconnected", { url: move.url, code: 1000, reason: "moving" });
    this.#attempt = 0;
    this.#nodeIndex = (this.#nodeIndex + 1) % this.#urls.length;
    clearTimeout(this.#reconnectTimer);
    this.#open();
  }

  /** Forgets a move not yet done: the connection was lost, or the client closed. */
  #cancelMove() {
    if (!this.#move) return;
    clearTimeout(this.#move.timer);
    this.#move = null;
  }

  // -------------------------------------------------------------- frames

  #onBinary(data) {
    const message = parseDelivery(data);
    if (!message) return;
    const subscription = this.#byCanonical(message.endpoint);
    if (subscription) subscription._deliver(message);
  }

  #byCanonical(endpoint) {
    const direct = this.#subscriptions.get(endpoint);
    if (direct && !direct.ended) return direct;
    for (const subscription of this.#subscriptions.values()) {
      if (subscription.canonical === endpoint && !subscription.ended) return subscription;
    }
    return null;
  }

  #onText(text) {
    let reply;
    try {
      reply = JSON.parse(text);
    } catch {
      return;
    }
    if (reply.id === PING_ID) return;
    const pending = reply.id !== undefined ? this.#pending.get(reply.id) : undefined;
    if (pending) {
      this.#pending.delete(reply.id);
      clearTimeout(pending.timer);
      if (reply.type === "error") pending.reject(new StreamgateError(reply.code, reply.message, reply.endpoint));
      else pending.resolve(reply);
      this.#leaveWhenAnswered();
      return;
    }
    switch (reply.type) {
      case "welcome": return this.#welcomed(reply);
      case "replayed": return this.#byCanonical(reply.endpoint)?.emit("replayed", reply);
      case "live": return this.#byCanonical(reply.endpoint)?._goLive(reply.epoch, reply.seq);
      case "notice": return this.#notice(reply);
      case "unsubscribed": return this.#endedByGateway(reply);
      case "token_expiring": return this.#refreshToken();
      case "moving": return this.#moving(reply);
      case "error": return this.#unsolicitedError(reply);
      default: return; // pong, and replies to requests that timed out
    }
  }

  #welcomed(welcome) {
    this.#attempt = 0;
    this.#setState("connected");
    this.emit("connected", {
      url: this.node, subject: welcome.subject, expiresAt: welcome.expires_at, traceContext: welcome.trace_context === true,
    });
    for (const waiter of this.#connectedWaiters.splice(0)) waiter.resolve();
    // A new connection came with the provider's current token: subscriptions a
    // token expiry suspended resume with the others.
    for (const subscription of this.#subscriptions.values()) {
      subscription.suspended = null;
      if (!subscription.ended) this.#sendSubscribe(subscription);
    }
  }

  #sendSubscribe(subscription) {
    const request = { type: "subscribe", endpoint: subscription.endpoint };
    if (subscription.position) request.from = { epoch: subscription.position.epoch, seq: subscription.position.seq };
    else if (subscription.snapshot) request.snapshot = true;
    this.#request(request).then(
      (reply) => {
        subscription.canonical = reply.endpoint;
        subscription.snapshot = false;
        subscription.emit("subscribed", reply);
      },
      (error) => {
        if (error.code === "disconnected" || error.code === "closed") return; // resubscribed on the next node
        this.#subscriptions.delete(subscription.endpoint);
        subscription._end({ code: error.code, message: error.message });
      },
    );
  }

  /** Notices about a resume: surfaced as events; delivery goes on. */
  #notice(notice) {
    const subscription = this.#byCanonical(notice.endpoint);
    if (!subscription) return;
    if (notice.code === "gap") subscription.emit("gap", notice);
    else if (notice.code === "stale_epoch") subscription.emit("stale_epoch", notice);
  }

  /**
   * An error with no request id: a resume that did not come to be (after
   * its `subscribed`), or the connection's credentials ended.
   */
  #unsolicitedError(reply) {
    const error = new StreamgateError(reply.code, reply.message, reply.endpoint);
    const subscription = this.#byCanonical(reply.endpoint);
    switch (reply.code) {
      case "replay_too_large":
        // Default reaction: go on live, and say that messages were skipped.
        if (!subscription) break;
        subscription.emit("gap", { code: "replay_too_large", endpoint: reply.endpoint, message: reply.message });
        subscription.position = null;
        return this.#retrySubscribe(subscription, 0);
      case "resume_unavailable":
      case "replay_failed":
        // Default reaction: resume again after a while (the node catches up,
        // or its reads are free again).
        if (!subscription) break;
        subscription.emit("retry", error);
        return this.#retrySubscribe(subscription, this.#options.retryResumeDelayMs * (0.5 + this.#random()));
      case "token_expired":
      case "unauthorized":
        // The subscriptions end next (`unsubscribed` with a reason): keep
        // them to resume once a new token is accepted.
        this.#suspendAll(reply.code);
        this.emit("error", error);
        return this.#refreshToken();
      default:
        break;
    }
    this.emit("error", error);
  }

  #retrySubscribe(subscription, delay) {
    setTimeout(() => {
      if (!subscription.ended && this.#state === "connected") this.#sendSubscribe(subscription);
    }, delay);
  }

  #suspendAll(reason) {
    for (const subscription of this.#subscriptions.values()) {
      if (!subscription.ended) subscription.suspended = reason;
    }
  }

  /** An `unsubscribed` with a reason: the gateway ended a subscription. */
  #endedByGateway(reply) {
    const subscription = this.#byCanonical(reply.endpoint);
    if (!subscription || subscription.suspended) return; // resumed after the new token
    this.#subscriptions.delete(subscription.endpoint);
    subscription._end({ code: "revoked", message: reply.reason });
  }

  /** Asks the provider for a new token and authenticates in-band. */
  async #refreshToken() {
    if (typeof this.#options.token !== "function") return;
    // Leaving a draining node: the next connection asks the provider anyway,
    // and its `welcome` resumes what a token expiry suspended.
    if (this.#state !== "connected") return;
    let token;
    try {
      token = await this.#token();
    } catch (error) {
      return this.emit("error", new StreamgateError("token_provider", `the token provider failed: ${error?.message ?? error}`));
    }
    try {
      await this.#request({ type: "auth", token });
    } catch (error) {
      return this.emit("error", error);
    }
    this.emit("token_refreshed");
    for (const subscription of this.#subscriptions.values()) {
      if (subscription.suspended && !subscription.ended) {
        subscription.suspended = null;
        this.#sendSubscribe(subscription);
      }
    }
  }

  _unsubscribe(subscription) {
    if (subscription.ended) return;
    this.#subscriptions.delete(subscription.endpoint);
    subscription._end({ code: "unsubscribed" });
    if (this.#state === "connected") this.#request({ type: "unsubscribe", endpoint: subscription.endpoint }).catch(() => {});
  }

  // ------------------------------------------------------------ requests

  #request(body) {
    const socket = this.#socket;
    if (!socket || this.#state !== "connected") {
      return Promise.reject(new StreamgateError("disconnected", "not connected"));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new StreamgateError("timeout", `no answer to ${body.type} within ${this.#options.requestTimeoutMs} ms`));
        this.#leaveWhenAnswered();
      }, this.#options.requestTimeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      socket.send(JSON.stringify({ ...body, id }));
    });
  }

  #failPending(error) {
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.reject(error);
    }
  }
}

function toBase64(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = "";
  for (let i = 0; i < view.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, view.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
