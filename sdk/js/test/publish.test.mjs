// Publishing through the SDK against a real gateway and broker: the promise
// resolves with where the record landed (the seq subscribers see), a refused
// publish rejects with the protocol's error code, and a snapshot subscribe
// gets the latest message first. Without `tracing.propagate` the gateway
// ignores a publish's traceparent and frames no trace context.
import { test } from "node:test";
import assert from "node:assert/strict";
import { StreamgateClient, StreamgateError } from "../streamgate.js";
import { Cluster } from "./cluster.mjs";

test("publish resolves with partition and offset; refusals are typed; snapshot first", { timeout: 60_000 }, async () => {
  const cluster = await Cluster.start({ nodes: 1, partitions: 1 });
  const client = new StreamgateClient({ urls: cluster.nodes[0].url });
  try {
    const welcomes = [];
    client.on("connected", (event) => welcomes.push(event));
    await client.connect();
    assert.equal(welcomes[0].traceContext, false, "no trace_context in welcome");
    const endpoint = `/${cluster.topic}/k`;
    const live = client.subscribe(endpoint);
    await new Promise((resolve) => live.on("subscribed", resolve));
    const first = await client.publish(endpoint, "hello");
    const second = await client.publish(endpoint, new Uint8Array([0, 255]),
      { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" });
    assert.deepEqual([first.partition, first.offset, second.offset], [0, 0, 1]);
    const iterator = live[Symbol.asyncIterator]();
    const messages = [(await iterator.next()).value, (await iterator.next()).value];
    assert.deepEqual(messages.map((m) => [m.seq, [...m.payload]]), [[0, [104, 101, 108, 108, 111]], [1, [0, 255]]]);
    assert.deepEqual(messages.map((m) => m.traceparent), [null, null]);
    await assert.rejects(client.publish("no-slash", "x"), (error) => error instanceof StreamgateError && error.code === "invalid_endpoint");

    // A second client asks for the latest message first.
    const late = new StreamgateClient({ urls: cluster.nodes[0].url });
    await late.connect();
    const snapshot = late.subscribe(endpoint, { snapshot: true });
    const latest = await new Promise((resolve) => snapshot.on("message", resolve));
    assert.equal(latest.snapshot, true);
    assert.equal(latest.seq, 1);
    late.close();
    assert.equal(late.state, "closed");
  } finally {
    client.close();
    await cluster.stop();
  }
});
