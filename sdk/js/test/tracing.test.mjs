// W3C trace context through the SDK against a real gateway with
// `tracing.propagate` and a broker: a publish's traceparent becomes the
// record's header and comes back in the delivery frame (live and replayed),
// a record without one is delivered without, a malformed one is refused,
// and `welcome` announces it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { StreamgateClient, StreamgateError } from "../streamgate.js";
import { Cluster, until } from "./cluster.mjs";

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";

test("tracing.propagate: a published traceparent comes back on the delivered message", { timeout: 60_000 }, async () => {
  const cluster = await Cluster.start({ nodes: 1, partitions: 1, overrides: { tracing: { propagate: true } } });
  const client = new StreamgateClient({ urls: cluster.nodes[0].url });
  const clients = [client];
  try {
    const welcomes = [];
    client.on("connected", (event) => welcomes.push(event));
    await client.connect();
    assert.equal(welcomes.length, 1);
    assert.equal(welcomes[0].traceContext, true, "welcome announces trace_context");

    const endpoint = `/${cluster.topic}/k`;
    const live = client.subscribe(endpoint);
    const received = [];
    live.on("message", (message) => received.push(message));
    await new Promise((resolve) => live.on("subscribed", resolve));

    const traced = await client.publish(endpoint, "traced", { traceparent: TRACEPARENT });
    const plain = await client.publish(endpoint, "plain");
    const tracedBytes = await client.publish(endpoint, new Uint8Array([0, 255]), { traceparent: OTHER });
    // Straight to Kafka, no headers at all.
    const produced = await cluster.command({ cmd: "produce", key: "k", value: "from kafka" });
    assert.deepEqual([traced.offset, plain.offset, tracedBytes.offset, produced.offset], [0, 1, 2, 3]);
    await assert.rejects(client.publish(endpoint, "bad", { traceparent: "not-a-trace-context" }),
      (error) => error instanceof StreamgateError && error.code === "bad_request");

    await until("four live messages", () => received.length >= 4);
    const expected = [
      [0, TRACEPARENT, [..."traced"].map((c) => c.charCodeAt(0))],
      [1, null, [..."plain"].map((c) => c.charCodeAt(0))],
      [2, OTHER, [0, 255]],
      [3, null, [..."from kafka"].map((c) => c.charCodeAt(0))],
    ];
    assert.deepEqual(received.map((m) => [m.seq, m.traceparent, [...m.payload]]), expected);

    // A replay from the beginning frames the same records the same way.
    const late = new StreamgateClient({ urls: cluster.nodes[0].url });
    clients.push(late);
    await late.connect();
    const replay = late.subscribe(endpoint, { from: { epoch: received[0].epoch, seq: -1 } });
    const replayed = [];
    replay.on("message", (message) => replayed.push(message));
    await until("four replayed messages", () => replayed.length >= 4);
    assert.deepEqual(replayed.map((m) => [m.seq, m.traceparent, [...m.payload]]), expected);

    // The snapshot (the latest message) of a traced record carries it too.
    await client.publish(endpoint, "last", { traceparent: TRACEPARENT });
    await until("the fifth message live (the node has it)", () => received.length >= 5);
    const third = new StreamgateClient({ urls: cluster.nodes[0].url });
    clients.push(third);
    await third.connect();
    const snapshot = third.subscribe(endpoint, { snapshot: true });
    const latest = await new Promise((resolve) => snapshot.on("message", resolve));
    assert.deepEqual([latest.snapshot, latest.seq, latest.traceparent, latest.text()], [true, 4, TRACEPARENT, "last"]);
  } finally {
    for (const c of clients) c.close();
    await cluster.stop();
  }
});
