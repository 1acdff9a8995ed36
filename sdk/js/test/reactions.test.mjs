// The SDK's documented default reaction to a resume the gateway refuses as
// too large: a `gap` event says messages were skipped, and the subscription
// goes on live (never silently, never stuck). A client whose node dies
// misses more messages than the other node may replay
// (recovery.replay.max_messages: 5) while it waits to reconnect.
import { test } from "node:test";
import assert from "node:assert/strict";
import { StreamgateClient } from "../streamgate.js";
import { Cluster, until } from "./cluster.mjs";

test("a resume too large to replay is a gap event, then live", { timeout: 60_000 }, async () => {
  const cluster = await Cluster.start({ nodes: 2, partitions: 1, overrides: { recovery: { replay: { max_messages: 5 } } } });
  // Reconnects wait 1.5 s: long enough for 20 msgs/s to pile up more than 5 missed messages.
  const client = new StreamgateClient({ urls: cluster.nodes.map((n) => n.url), minReconnectDelayMs: 1_500,
    maxReconnectDelayMs: 1_500, jitter: false });
  const seqs = [];
  const gaps = [];
  const ended = [];
  try {
    await client.connect();
    const subscription = client.subscribe(`/${cluster.topic}/k`);
    subscription.on("message", (message) => seqs.push(message.seq));
    subscription.on("gap", (notice) => gaps.push(notice));
    subscription.on("ended", (reason) => ended.push(reason));
    await new Promise((resolve) => subscription.on("subscribed", resolve));
    await cluster.command({ cmd: "produce_start", keys: ["k"], interval_ms: 50 });
    await until("live messages", () => seqs.length >= 5);
    const victim = cluster.nodes.findIndex((node) => node.url === client.node);
    await cluster.command({ cmd: "kill", node: victim });
    await until("the gap event", () => gaps.length === 1);
    const atGap = seqs.length;
    await until("live messages after the gap", () => seqs.length >= atGap + 5);
    const { reports } = await cluster.command({ cmd: "produce_stop" });
    assert.equal(gaps[0].code, "replay_too_large");
    assert.deepEqual(ended, []);
    // In order, no duplicate; the skipped ones are exactly a run the gap covers.
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `seq ${seqs[i]} after ${seqs[i - 1]}`);
    const produced = reports.k.map(([, offset]) => offset);
    const missing = produced.filter((offset) => offset <= seqs.at(-1) && !seqs.includes(offset));
    assert.ok(missing.length > 5, `more than the replay limit was missed (${missing.length})`);
    const first = missing[0], last = missing.at(-1);
    assert.deepEqual(missing, produced.filter((o) => o >= first && o <= last), "the skipped messages are one run");
  } finally {
    client.close();
    await cluster.stop();
  }
});
