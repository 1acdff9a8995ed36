// Parts of the SDK that need no gateway: the delivery frame reader and the
// reconnect schedule.
import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, parseDelivery } from "../streamgate.js";

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
