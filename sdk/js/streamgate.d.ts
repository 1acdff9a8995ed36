// Types of the Streamgate JavaScript SDK (streamgate.js), written by hand.

/** A refused request or a failure the application should know about. */
export class StreamgateError extends Error {
  /** The protocol's error code (`forbidden`, `rate_limited`, `publish_failed`, ...)
   * or an SDK one (`disconnected`, `timeout`, `closed`, `token_provider`, `bad_options`). */
  readonly code: string;
  /** The endpoint the error is about, when there is one. */
  readonly endpoint?: string;
  constructor(code: string, message: string, endpoint?: string);
}

/** Where a message stands in its endpoint's sequence; resume after it with `from`. */
export interface Position {
  /** Opaque: compare for equality only. */
  epoch: string;
  /** The Kafka partition offset of the message. */
  seq: number;
}

/** One delivered message. */
export class Message {
  readonly endpoint: string;
  readonly epoch: string;
  readonly seq: number;
  /** ms since the Unix epoch, -1 when unknown. */
  readonly timestamp: number;
  /** The latest message, sent first because of `snapshot: true`. */
  readonly snapshot: boolean;
  /** The record's value, byte for byte. */
  readonly payload: Uint8Array;
  /** The record's W3C `traceparent` header (e.g. `00-4bf9...4736-00f0...02b7-01`) when the
   * frame carries trace context (a gateway with `tracing.propagate`), null otherwise. */
  readonly traceparent: string | null;
  text(): string;
  json(): unknown;
}

export interface SubscribeOptions {
  /** Resume after this position (every later message, in order, then live). */
  from?: Position;
  /** Deliver the endpoint's latest cached message first (without `from`). */
  snapshot?: boolean;
}

/** What a notice or an SDK reaction says about a subscription. */
export interface SubscriptionNotice {
  code: string;
  endpoint: string;
  message: string;
  epoch?: string;
  current_epoch?: string | null;
  from_seq?: number;
  to_seq?: number;
}

export interface SubscriptionEvents {
  message: (message: Message) => void;
  subscribed: (reply: { endpoint: string }) => void;
  /** A resume's replay is complete: what follows is live. */
  replayed: (reply: { endpoint: string; count: number; source: "cache" | "kafka" }) => void;
  /** Messages were skipped: `gap` notices, and `replay_too_large` (the SDK then goes on live). */
  gap: (notice: SubscriptionNotice) => void;
  /** The position's epoch is not current: delivery goes on live. */
  stale_epoch: (notice: SubscriptionNotice) => void;
  /** A resume was refused for now (`resume_unavailable`, `replay_failed`): the SDK resumes again shortly. */
  retry: (error: StreamgateError) => void;
  /** The subscription is over: unsubscribed, refused, or ended by the gateway (rights). */
  ended: (reason: { code: string; message?: string }) => void;
}

export class Subscription implements AsyncIterable<Message> {
  /** The endpoint as asked for. */
  readonly endpoint: string;
  /** The gateway's canonical name for it, once subscribed. */
  readonly canonical: string | null;
  /** The last delivered position (or the one resumed from). */
  readonly position: Position | null;
  readonly ended: boolean;
  on<E extends keyof SubscriptionEvents>(event: E, listener: SubscriptionEvents[E]): () => void;
  unsubscribe(): void;
  [Symbol.asyncIterator](): AsyncIterator<Message>;
}

export type ClientState = "idle" | "connecting" | "connected" | "reconnecting" | "closed";

export interface ClientEvents {
  state: (state: ClientState) => void;
  /** `traceContext`: the node's `welcome` said deliveries may carry trace context (`tracing.propagate`). */
  connected: (event: { url: string; subject: string; expiresAt: number | null; traceContext: boolean }) => void;
  /** The connection ended: lost (the gateway's close code), or left for another node (1000, `moving`). */
  disconnected: (event: { url: string; code: number; reason: string }) => void;
  /**
   * The node `url` is draining: the client goes on receiving from it for
   * `delayMs` (uniform in [0, reconnectWithinMs)), then waits for the answers
   * to its requests in flight, closes with 1000 `moving` and connects at once
   * to the next node, resuming every subscription from its position.
   */
  moving: (event: { url: string; reconnectWithinMs: number; delayMs: number }) => void;
  token_refreshed: () => void;
  /** A StreamgateError not tied to a request (credentials revoked, a token provider failure, ...). */
  error: (error: StreamgateError) => void;
}

export interface ClientOptions {
  /** The gateway nodes' WebSocket URLs, e.g. `ws://127.0.0.1:8080/ws`: tried in turn. */
  urls: string[] | string;
  /** A token, or a provider called at every connect, on `token_expiring` and after `token_expired`. */
  token?: string | (() => string | Promise<string>);
  /** A WebSocket constructor (default: the global one; Node 20: `--experimental-websocket`). */
  WebSocket?: unknown;
  /** Reconnect delays: exponential from min to max (ms), full jitter unless `jitter: false`. */
  minReconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  jitter?: boolean;
  /** No frame from the gateway for this long (ms; the SDK pings when quiet): reconnect. */
  livenessTimeoutMs?: number;
  /** How long a request waits for its answer (ms). */
  requestTimeoutMs?: number;
  /** Base delay before resuming again after `resume_unavailable` or `replay_failed` (ms). */
  retryResumeDelayMs?: number;
  /** Uniform in [0, 1) (default `Math.random`): draws the reconnect jitter and the moment of a move off a draining node. */
  random?: () => number;
}

export interface PublishOptions {
  /** A W3C trace context (`00-<32 hex>-<16 hex>-<2 hex>`): the record's `traceparent` header on a
   * gateway with `tracing.propagate` (a malformed one is refused with `bad_request`); ignored otherwise. */
  traceparent?: string;
}

export interface Published {
  endpoint: string;
  partition: number;
  /** The seq subscribers see for this message. */
  offset: number;
}

export class StreamgateClient {
  constructor(options: ClientOptions);
  readonly state: ClientState;
  /** The node connected (or being connected) to. */
  readonly node: string;
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  /** Starts connecting; resolves once a node welcomed the client. */
  connect(): Promise<void>;
  subscribe(endpoint: string, options?: SubscribeOptions): Subscription;
  /** Resolves once Kafka acknowledged the record; rejects with a StreamgateError.
   * While the client is between nodes (reconnecting, or leaving a draining one) it waits to be sent. */
  publish(endpoint: string, payload: string | Uint8Array, options?: PublishOptions): Promise<Published>;
  close(): void;
}

/** Reads a binary delivery frame (null when it is not one). */
export function parseDelivery(buffer: ArrayBuffer | Uint8Array): Message | null;

/** The delay before reconnect attempt `attempt` (0-based). */
export function backoffDelay(
  attempt: number,
  options: { minDelayMs: number; maxDelayMs: number; jitter: boolean },
  random?: () => number,
): number;
