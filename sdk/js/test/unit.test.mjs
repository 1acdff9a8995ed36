// Parts of the SDK that need no gateway: the delivery frame reader, the
// reconnect schedule, and the move off a draining node (a fake WebSocket
// and mocked timers).
import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, parseDelivery, StreamgateClient } from "../streamgate.js";

function frame({ endpoint, epoch, seq, timestamp = -1, flags = 0, payload }) {
  const e = new TextEncoder().encode(endpoint);
  const p = new TextEncoder().encode(epoch);
  const bytes = new Uint8Array(22 + e.length + p.length + payload.length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, 1);
  view.setUint8(1, flags);
  view.setUint16(2, e.length);
  view.setUint16(4, p.length);
  view.setBigUint64(6, BigInt(seq));
  view.setBigInt64(14, BigInt(timestamp));
  bytes.set(e, 22);
  bytes.set(p, 22 + e.length);
  bytes.set(payload, 22 + e.length + p.length);
  return bytes.buffer;
}

test("a delivery frame is read field by field, the payload byte for byte", () => {
  const payload = new Uint8Array([0, 255, 104, 105]);
  const message = parseDelivery(frame({ endpoint: "/scores/nba", epoch: "9f4714b77c2a4c78", seq: 2 ** 40 + 7,
    timestamp: 1_700_000_000_123, flags: 1, payload }));
  assert.equal(message.endpoint, "/scores/nba");
  assert.equal(message.epoch, "9f4714b77c2a4c78");
  assert.equal(message.seq, 2 ** 40 + 7);
  assert.equal(message.timestamp, 1_700_000_000_123);
  assert.equal(message.snapshot, true);
  assert.deepEqual([...message.payload], [0, 255, 104, 105]);
  const text = parseDelivery(frame({ endpoint: "/t/k", epoch: "e", seq: 0, payload: new TextEncoder().encode('{"a":1}') }));
  assert.equal(text.snapshot, false);
  assert.equal(text.timestamp, -1);
  assert.deepEqual(text.json(), { a: 1 });
});

test("a frame that is not a delivery, or is cut short, is ignored", () => {
  assert.equal(parseDelivery(new Uint8Array([2, 0, 0, 0]).buffer), null);
  const whole = new Uint8Array(frame({ endpoint: "/t/k", epoch: "epoch", seq: 1, payload: new Uint8Array() }));
  assert.equal(parseDelivery(whole.slice(0, whole.length - 2).buffer), null);
});

test("reconnect delays grow exponentially to the cap, with full jitter by default", () => {
  const options = { minDelayMs: 100, maxDelayMs: 1_000, jitter: false };
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, options)), [100, 200, 400, 800, 1_000, 1_000]);
  const jittered = { ...options, jitter: true };
  assert.equal(backoffDelay(3, jittered, () => 0), 0);
  assert.equal(backoffDelay(3, jittered, () => 0.5), 400);
  for (let i = 0; i < 1_000; i++) {
    const delay = backoffDelay(20, jittered);
    assert.ok(delay >= 0 && delay <= 1_000);
  }
});

// ------------------------------------------------------ a draining node

/** A fake WebSocket class recording every socket the client opens. */
function fakeWebSocket() {
  const sockets = [];
  class FakeSocket {
    constructor(url, protocol) {
      this.url = url;
      this.protocol = protocol;
      this.readyState = 1;
      this.sent = [];
      this.closed = null;
      sockets.push(this);
    }
    send(text) { this.sent.push(JSON.parse(text)); }
    close(code, reason) { this.closed = { code, reason }; this.readyState = 3; }
    /** A text frame from the gateway. */
    receive(body) { this.onmessage({ data: JSON.stringify(body) }); }
    deliver(delivery) { this.onmessage({ data: frame(delivery) }); }
    welcome() { this.receive({ type: "welcome", protocol: "streamgate.v1", subject: "anonymous", expires_at: null }); }
    /** The gateway (or the network) ends the connection. */
    drop(code, reason = "") { this.readyState = 3; this.onclose({ code, reason }); }
    /** The requests (not pings) sent on this socket. */
    requests() { return this.sent.filter((body) => body.type !== "ping"); }
  }
  return { FakeSocket, sockets };
}

const MOVING = { type: "moving", reason: "draining", reconnect_within_ms: 2_000, message: "this node is shutting down" };
const settle = () => new Promise((resolve) => setImmediate(resolve)); // the client's microtasks (token, promises)

/** A client on a fake WebSocket with mocked timers, connected (welcomed) to its first URL. */
async function connectedClient(t, options = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_000_000 });
  const { FakeSocket, sockets } = fakeWebSocket();
  const client = new StreamgateClient({ urls: ["ws://node-a/ws", "ws://node-b/ws", "ws://node-c/ws"],
    WebSocket: FakeSocket, minReconnectDelayMs: 5_000, maxReconnectDelayMs: 5_000, jitter: false,
    livenessTimeoutMs: 3_600_000, ...options }); // no liveness reconnect within a test's ticks
  const events = [];
  for (const event of ["moving", "disconnected", "connected", "state"]) client.on(event, (detail) => events.push([event, detail]));
  const connected = client.connect();
  await settle();
  assert.equal(sockets.length, 1);
  sockets[0].welcome();
  await connected;
  t.after(() => client.close());
  return { client, sockets, events };
}

test("moving: the move waits a delay drawn from the client's randomness, within the window, receiving meanwhile", async (t) => {
  const draws = [];
  const { client, sockets, events } = await connectedClient(t, { random: () => { draws.push(0.25); return 0.25; } });
  const [old] = sockets;
  const seqs = [];
  const subscription = client.subscribe("/t/k");
  subscription.on("message", (message) => seqs.push(message.seq));
  old.receive({ type: "subscribed", endpoint: "/t/k", id: old.requests().at(-1).id });
  old.deliver({ endpoint: "/t/k", epoch: "E", seq: 10, payload: new Uint8Array() });

  old.receive(MOVING);
  assert.deepEqual(draws, [0.25], "one draw from options.random");
  assert.deepEqual(events.filter(([event]) => event === "moving"),
    [["moving", { url: "ws://node-a/ws", reconnectWithinMs: 2_000, delayMs: 500 }]]);
  t.mock.timers.tick(499);
  await settle();
  // Still on the draining node: it delivers, and it takes requests.
  assert.equal(client.state, "connected");
  assert.equal(old.closed, null);
  assert.equal(sockets.length, 1);
  old.deliver({ endpoint: "/t/k", epoch: "E", seq: 11, payload: new Uint8Array() });
  client.subscribe("/t/other");
  assert.equal(old.requests().at(-1).endpoint, "/t/other", "a request made during the delay goes to the draining node");
  old.receive({ type: "subscribed", endpoint: "/t/other", id: old.requests().at(-1).id });
  assert.deepEqual(seqs, [10, 11]);

  t.mock.timers.tick(1);
  await settle();
  assert.deepEqual(old.closed, { code: 1000, reason: "moving" });
  assert.equal(sockets.length, 2, "connected at once: no back-off (minReconnectDelayMs is 5 s)");
  assert.equal(sockets[1].url, "ws://node-b/ws");
  assert.equal(client.node, "ws://node-b/ws");
  // A late frame from the old node is not delivered.
  old.deliver({ endpoint: "/t/k", epoch: "E", seq: 12, payload: new Uint8Array() });
  sockets[1].welcome();
  await settle();
  assert.equal(client.state, "connected");
  const resumes = sockets[1].requests();
  assert.deepEqual(resumes.map(({ type, endpoint, from }) => ({ type, endpoint, from })), [
    { type: "subscribe", endpoint: "/t/k", from: { epoch: "E", seq: 11 } },
    { type: "subscribe", endpoint: "/t/other", from: undefined },
  ]);
  assert.deepEqual(seqs, [10, 11]);
  assert.deepEqual(events.filter(([event]) => event !== "state").map(([event, detail]) => `${event} ${detail.url}`), [
    "connected ws://node-a/ws", "moving ws://node-a/ws", "disconnected ws://node-a/ws", "connected ws://node-b/ws",
  ]);
  assert.deepEqual(events.find(([event]) => event === "disconnected")[1], { url: "ws://node-a/ws", code: 1000, reason: "moving" });
});

test("moving: the delay is always inside [0, reconnect_within_ms)", async (t) => {
  for (const [draw, delayMs] of [[0, 0], [0.5, 1_000], [0.999_999, 1_999]]) {
    const { sockets, events } = await connectedClient(t, { random: () => draw });
    sockets[0].receive(MOVING);
    assert.equal(events.find(([event]) => event === "moving")[1].delayMs, delayMs);
    t.mock.timers.tick(Math.max(0, delayMs - 1));
    await settle();
    assert.equal(sockets.length, delayMs === 0 ? 2 : 1, `draw ${draw}: not moved before ${delayMs} ms`);
    t.mock.timers.tick(1);
    await settle();
    assert.equal(sockets.length, 2, `draw ${draw}: moved at ${delayMs} ms`);
    t.mock.timers.reset();
  }
});

test("moving: a request in flight is answered on the old connection before it closes; later ones wait for the next", async (t) => {
  const { client, sockets } = await connectedClient(t, { random: () => 0.1 }); // 200 ms
  const [old] = sockets;
  const first = client.publish("/chat/room", "in flight");
  await settle();
  const inFlight = old.requests().at(-1);
  assert.equal(inFlight.payload, "in flight");
  old.receive(MOVING);
  t.mock.timers.tick(200);
  await settle();
  // The delay is over: the old connection waits for its answer, new requests wait for the next one.
  assert.equal(client.state, "reconnecting");
  assert.equal(old.closed, null, "not closed while a publish waits for its answer");
  assert.equal(sockets.length, 1);
  const second = client.publish("/chat/room", "after the delay");
  client.subscribe("/t/late");
  await settle();
  assert.deepEqual(old.requests().map((body) => body.payload ?? body.endpoint), ["in flight"]);

  old.receive({ type: "published", endpoint: "/chat/room", partition: 0, offset: 41, id: inFlight.id });
  assert.deepEqual(await first, { type: "published", endpoint: "/chat/room", partition: 0, offset: 41, id: inFlight.id });
  assert.deepEqual(old.closed, { code: 1000, reason: "moving" });
  await settle();
  assert.equal(sockets.length, 2);
  const next = sockets[1];
  next.welcome();
  await settle();
  const sent = next.requests();
  assert.deepEqual(sent.map((body) => body.payload ?? body.endpoint).sort(), ["/t/late", "after the delay"]);
  const publish = sent.find((body) => body.type === "publish");
  next.receive({ type: "published", endpoint: "/chat/room", partition: 0, offset: 42, id: publish.id });
  assert.equal((await second).offset, 42);
});

test("moving: the wait for answers is bounded by requestTimeoutMs", async (t) => {
  const { client, sockets } = await connectedClient(t, { random: () => 0, requestTimeoutMs: 3_000 });
  const [old] = sockets;
  const unanswered = client.publish("/chat/room", "never answered");
  const rejected = assert.rejects(unanswered, (error) => error.code === "timeout");
  await settle();
  t.mock.timers.tick(1_000);
  old.receive(MOVING);
  t.mock.timers.tick(0);
  await settle();
  assert.equal(old.closed, null);
  t.mock.timers.tick(1_999);
  await settle();
  assert.equal(old.closed, null);
  t.mock.timers.tick(1);
  await rejected;
  assert.deepEqual(old.closed, { code: 1000, reason: "moving" });
  await settle();
  assert.equal(sockets.length, 2);
  assert.equal(sockets[1].url, "ws://node-b/ws");
});

test("moving: with one URL the client comes back to it at once; a refusal there backs off from the first step", async (t) => {
  const { sockets } = await connectedClient(t, { urls: "ws://balancer/ws", random: () => 0.5,
    minReconnectDelayMs: 1_000, maxReconnectDelayMs: 60_000 });
  sockets[0].receive(MOVING);
  t.mock.timers.tick(1_000);
  await settle();
  assert.equal(sockets.length, 2);
  assert.equal(sockets[1].url, "ws://balancer/ws");
  // Refused before its welcome (the balancer picked the draining node: 503): the
  // back-off starts from its first step, minReconnectDelayMs.
  sockets[1].drop(1006);
  t.mock.timers.tick(999);
  await settle();
  assert.equal(sockets.length, 2);
  t.mock.timers.tick(1);
  await settle();
  assert.equal(sockets.length, 3);
});

test("moving: a second notice, or the connection lost during the wait, gives one reconnect", async (t) => {
  const { sockets, events } = await connectedClient(t, { random: () => 0.5 }); // 1000 ms
  sockets[0].receive(MOVING);
  t.mock.timers.tick(400);
  sockets[0].receive({ ...MOVING, reconnect_within_ms: 100 });
  t.mock.timers.tick(600);
  await settle();
  assert.equal(sockets.length, 2);
  t.mock.timers.tick(60_000);
  await settle();
  assert.equal(sockets.length, 2, "one move");
  assert.equal(events.filter(([event]) => event === "moving").length, 1);
  sockets[1].welcome();

  // The new node drains too, and drops the connection before the delay ends:
  // the usual reconnect (back-off: 5 s), and no move on top of it.
  sockets[1].receive(MOVING);
  t.mock.timers.tick(500);
  sockets[1].drop(1001, "going away");
  t.mock.timers.tick(4_999);
  await settle();
  assert.equal(sockets.length, 2);
  t.mock.timers.tick(1);
  await settle();
  assert.equal(sockets.length, 3);
  assert.equal(sockets[2].url, "ws://node-c/ws");
  t.mock.timers.tick(60_000);
  await settle();
  assert.equal(sockets.length, 3, "one reconnect");
  // The abandoned move left nothing behind: the next node's notice moves the client.
  sockets[2].welcome();
  sockets[2].receive(MOVING);
  t.mock.timers.tick(1_000);
  await settle();
  assert.equal(sockets.length, 4);
  assert.deepEqual(sockets[2].closed, { code: 1000, reason: "moving" });
  assert.equal(sockets[3].url, "ws://node-a/ws");
});

test("moving: close() during the wait cancels the move", async (t) => {
  const { client, sockets } = await connectedClient(t, { random: () => 0.5 });
  sockets[0].receive(MOVING);
  t.mock.timers.tick(500);
  client.close();
  assert.equal(client.state, "closed");
  assert.deepEqual(sockets[0].closed, { code: 1000, reason: "client closed" });
  t.mock.timers.tick(60_000);
  await settle();
  assert.equal(sockets.length, 1);
  assert.equal(client.state, "closed");

  // Closed while waiting for the answers: the request fails as `closed`, nothing reconnects.
  t.mock.timers.reset();
  const second = await connectedClient(t, { random: () => 0 });
  const pending = second.client.publish("/chat/room", "x");
  await settle();
  second.sockets[0].receive(MOVING);
  t.mock.timers.tick(0);
  await settle();
  second.client.close();
  await assert.rejects(pending, (error) => error.code === "closed");
  t.mock.timers.tick(60_000);
  await settle();
  assert.equal(second.sockets.length, 1);
});

// ------------------------------------------------------- trace context

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/**
 * A delivery frame laid out by hand after docs/protocol.md's table: the
 * 22-byte header, endpoint, epoch, then (flag bit 1) one length byte T and T
 * bytes of trace context, then the payload. `traceLength` overrides T (to
 * build a frame whose trace context claims more bytes than it has).
 */
function tracedFrame({ endpoint, epoch, seq, flags, trace, traceLength, payload }) {
  const bytes = [1, flags, endpoint.length >> 8, endpoint.length & 0xff, epoch.length >> 8, epoch.length & 0xff];
  for (let shift = 56n; shift >= 0n; shift -= 8n) bytes.push(Number((BigInt(seq) >> shift) & 0xffn)); // seq
  bytes.push(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff); // timestamp -1
  for (const text of [endpoint, epoch]) for (const c of text) bytes.push(c.charCodeAt(0)); // ASCII here
  if (trace !== undefined) {
    bytes.push(traceLength ?? trace.length);
    for (const c of trace) bytes.push(c.charCodeAt(0));
  }
  bytes.push(...payload);
  return new Uint8Array(bytes);
}

test("a frame with flag bit 1 carries its trace context between the epoch and the payload", () => {
  const bytes = tracedFrame({ endpoint: "/t/k", epoch: "epoch", seq: 42, flags: 0b10, trace: TRACEPARENT, payload: [0, 55, 255] });
  // The layout itself, by offset: T at 22+E+P, the payload after the T bytes.
  assert.equal(bytes.length, 22 + 4 + 5 + 1 + 55 + 3);
  assert.equal(bytes[31], 55);
  const message = parseDelivery(bytes.buffer);
  assert.equal(message.traceparent, TRACEPARENT);
  assert.deepEqual([...message.payload], [0, 55, 255], "the trace context is not part of the payload");
  assert.equal(message.endpoint, "/t/k");
  assert.equal(message.epoch, "epoch");
  assert.equal(message.seq, 42);
  assert.equal(message.timestamp, -1);
  assert.equal(message.snapshot, false, "bit 1 is not the snapshot flag");

  // Both flags: a snapshot with trace context; and an empty payload right after it.
  const both = parseDelivery(tracedFrame({ endpoint: "/t/k", epoch: "e", seq: 1, flags: 0b11, trace: TRACEPARENT, payload: [] }));
  assert.equal(both.snapshot, true);
  assert.equal(both.traceparent, TRACEPARENT);
  assert.equal(both.payload.length, 0);
  // A Uint8Array view into a larger buffer (not at offset 0) reads the same.
  const inner = tracedFrame({ endpoint: "/t/k", epoch: "e", seq: 7, flags: 0b10, trace: TRACEPARENT, payload: [104, 105] });
  const outer = new Uint8Array(inner.length + 10);
  outer.set(inner, 5);
  const viewed = parseDelivery(outer.subarray(5, 5 + inner.length));
  assert.equal(viewed.traceparent, TRACEPARENT);
  assert.equal(viewed.text(), "hi");
});

test("a frame without flag bit 1 has no trace context: its payload is read whole", () => {
  // A payload that would look like a trace context if bit 1 were misread.
  const payload = [3, 97, 98, 99, 100];
  const message = parseDelivery(tracedFrame({ endpoint: "/t/k", epoch: "e", seq: 3, flags: 0b01, payload }));
  assert.equal(message.traceparent, null);
  assert.equal(message.snapshot, true);
  assert.deepEqual([...message.payload], payload);
  assert.equal(parseDelivery(tracedFrame({ endpoint: "/t/k", epoch: "e", seq: 3, flags: 0, payload: [] })).traceparent, null);
});

test("a frame whose trace context runs past its end is malformed and ignored", () => {
  const whole = tracedFrame({ endpoint: "/t/k", epoch: "e", seq: 5, flags: 0b10, trace: TRACEPARENT, payload: [] });
  assert.equal(parseDelivery(whole).traceparent, TRACEPARENT, "the uncut frame is fine");
  assert.equal(parseDelivery(whole.slice(0, whole.length - 1)), null, "one trace byte missing");
  assert.equal(parseDelivery(whole.slice(0, 22 + 4 + 1 + 1)), null, "only the length byte");
  assert.equal(parseDelivery(whole.slice(0, 22 + 4 + 1)), null, "bit 1 set, no length byte");
  // T larger than what follows, even with bytes after it (a payload's worth).
  const long = tracedFrame({ endpoint: "/t/k", epoch: "e", seq: 5, flags: 0b10, trace: "00-ab", traceLength: 200, payload: [1, 2, 3] });
  assert.equal(parseDelivery(long), null);
  // T exactly the rest of the frame: a message with an empty payload.
  const exact = tracedFrame({ endpoint: "/t/k", epoch: "e", seq: 5, flags: 0b10, trace: "00-ab", traceLength: 8, payload: [1, 2, 3] });
  const read = parseDelivery(exact);
  assert.equal(read.traceparent, "00-ab\x01\x02\x03");
  assert.equal(read.payload.length, 0);
});

test("publish sends options.traceparent as the request's traceparent; without it, no such field", async (t) => {
  const { client, sockets } = await connectedClient(t);
  const [socket] = sockets;
  const answer = (body) => socket.receive({ type: "published", endpoint: body.endpoint, partition: 0, offset: body.id, id: body.id });
  const traced = client.publish("/chat/room", "hi", { traceparent: TRACEPARENT });
  await settle();
  const sent = socket.requests().at(-1);
  assert.deepEqual({ ...sent, id: undefined },
    { type: "publish", endpoint: "/chat/room", payload: "hi", traceparent: TRACEPARENT, id: undefined });
  answer(sent);
  assert.equal((await traced).offset, sent.id);

  const bytes = client.publish("/chat/room", new Uint8Array([0, 255]), { traceparent: TRACEPARENT });
  await settle();
  const sentBytes = socket.requests().at(-1);
  assert.equal(sentBytes.payload_base64, "AP8=");
  assert.equal(sentBytes.traceparent, TRACEPARENT);
  answer(sentBytes);
  await bytes;

  for (const options of [undefined, {}, { traceparent: undefined }, { traceparent: null }]) {
    const plain = options === undefined ? client.publish("/chat/room", "x") : client.publish("/chat/room", "x", options);
    await settle();
    const body = socket.requests().at(-1);
    assert.equal(body.type, "publish");
    assert.ok(!("traceparent" in body), `no traceparent field with options ${JSON.stringify(options)}`);
    answer(body);
    await plain;
  }
});

test("a delivery's trace context reaches the subscriber; welcome's trace_context shows on connected", async (t) => {
  const { client, sockets, events } = await connectedClient(t);
  const [socket] = sockets;
  assert.equal(events.find(([event]) => event === "connected")[1].traceContext, false, "welcome without trace_context");
  const received = [];
  client.subscribe("/t/k").on("message", (message) => received.push(message));
  socket.receive({ type: "subscribed", endpoint: "/t/k", id: socket.requests().at(-1).id });
  socket.onmessage({ data: tracedFrame({ endpoint: "/t/k", epoch: "E", seq: 1, flags: 0b10, trace: TRACEPARENT, payload: [120] }).buffer });
  socket.onmessage({ data: tracedFrame({ endpoint: "/t/k", epoch: "E", seq: 2, flags: 0, payload: [121] }).buffer });
  // Cut short: dropped, and the subscription's position does not move.
  socket.onmessage({ data: tracedFrame({ endpoint: "/t/k", epoch: "E", seq: 3, flags: 0b10, trace: TRACEPARENT, traceLength: 56, payload: [] }).buffer });
  assert.deepEqual(received.map((m) => [m.seq, m.traceparent, m.text()]), [[1, TRACEPARENT, "x"], [2, null, "y"]]);

  // The next connection's welcome announces trace context.
  socket.drop(1006);
  t.mock.timers.tick(5_000);
  await settle();
  sockets[1].receive({ type: "welcome", protocol: "streamgate.v1", subject: "anonymous", expires_at: null, trace_context: true });
  const connected = events.filter(([event]) => event === "connected");
  assert.equal(connected.length, 2);
  assert.deepEqual(connected[1][1], { url: "ws://node-b/ws", subject: "anonymous", expiresAt: null, traceContext: true });
});
