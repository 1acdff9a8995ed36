// The SDK against a real two-node cluster and broker (Tests/Cluster): a
// client subscribed to several endpoints while a producer writes steadily
// over several keys and partitions; the node it is on is killed (-9), later
// started again, and then the other node is killed; meanwhile the client's
// first token expires and the SDK refreshes it in-band through its provider.
// Per endpoint, what the application received must be what the producer
// produced, record by record against its delivery reports: no loss, no
// duplicate, no reorder.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { StreamgateClient } from "../streamgate.js";
import { Cluster, until } from "./cluster.mjs";

const KEYS = ["a", "b", "c", "d", "e", "f"];

/** A tokens file (static-tokens authorizer): a token about to expire, and its successor. */
function tokensFile() {
  const now = Math.floor(Date.now() / 1000);
  const file = path.join(mkdtempSync(path.join(tmpdir(), "streamgate-sdk-")), "tokens.json");
  const entry = (token, expiresAt) => ({ token, subject: "sdk-test", subscribe: ["/**"], publish: ["/**"], expires_at: expiresAt });
  writeFileSync(file, JSON.stringify({ tokens: [entry("first-token-of-the-sdk-test", now + 4), entry("second-token-of-the-sdk-test", now + 3_600)] }));
  return file;
}

test("every message exactly once, in order, across two node kills and a token refresh", { timeout: 120_000 }, async () => {
  const cluster = await Cluster.start({
    nodes: 2,
    partitions: 4,
    overrides: {
      authorization: { plugin: "static-tokens", options: { file: tokensFile() } },
      sessions: { token_expiry_warning_seconds: 3 },
    },
  });
  const tokens = [];
  const client = new StreamgateClient({
    urls: cluster.nodes.map((node) => node.url),
    // The first connect gets the short-lived token; every later call the successor.
    token: async () => {
      tokens.push(tokens.length === 0 ? "first-token-of-the-sdk-test" : "second-token-of-the-sdk-test");
      return tokens.at(-1);
    },
    minReconnectDelayMs: 50,
    maxReconnectDelayMs: 1_000,
    livenessTimeoutMs: 5_000,
  });
  const received = new Map(KEYS.map((key) => [key, []]));
  const events = [];
  client.on("disconnected", (event) => events.push(`disconnected from ${event.url}`));
  client.on("connected", (event) => events.push(`connected to ${event.url} as ${event.subject}`));
  let refreshed = 0;
  client.on("token_refreshed", () => { refreshed += 1; });
  client.on("error", (error) => events.push(`error ${error.code}: ${error.message}`));
  try {
    await client.connect();
    let subscribed = 0;
    for (const key of KEYS) {
      const subscription = client.subscribe(`/${cluster.topic}/${key}`);
      subscription.on("subscribed", () => { subscribed += 1; });
      subscription.on("message", (message) => received.get(key).push([message.seq, message.text()]));
      for (const event of ["gap", "stale_epoch", "retry", "ended"]) {
        subscription.on(event, (detail) => events.push(`${key}: ${event} ${JSON.stringify(detail)}`));
      }
    }
    await until("every subscription", () => subscribed === KEYS.length);
    await cluster.command({ cmd: "produce_start", keys: KEYS, interval_ms: 20 });
    const total = () => [...received.values()].reduce((sum, list) => sum + list.length, 0);
    await until("live messages", () => total() >= 60);
    // The first token expires within 4 s; the gateway warns 3 s before, and
    // the SDK authenticates in-band with the provider's next token.
    await until("the in-band token refresh", () => refreshed === 1, 10_000);
    assert.deepEqual(tokens, ["first-token-of-the-sdk-test", "second-token-of-the-sdk-test"]);

    const recoveries = [];
    for (const round of [0, 1]) {
      const victim = cluster.nodes.findIndex((node) => node.url === client.node);
      assert.ok(victim >= 0, `the client is on a known node (${client.node})`);
      const before = total();
      const victimUrl = client.node;
      const killedAt = performance.now();
      await cluster.command({ cmd: "kill", node: victim });
      await until("a reconnect to the other node", () => client.state === "connected" && client.node !== victimUrl);
      const atReconnect = total();
      await until("a resumed message", () => total() > atReconnect);
      recoveries.push(`kill of node ${victim}: first message from the other node ${(performance.now() - killedAt).toFixed(0)} ms after the kill`);
      await until("more live messages", () => total() > before + 20 * KEYS.length);
      if (round === 0) await cluster.command({ cmd: "start", node: victim });
    }
    const { reports } = await cluster.command({ cmd: "produce_stop" });
    for (const key of KEYS) {
      await until(`every message of ${key}`, () => received.get(key).length >= reports[key].length);
    }
    await sleep(200); // room for a duplicate to show
    for (const key of KEYS) {
      const expected = reports[key].map(([, offset, value]) => [offset, value]);
      assert.deepEqual(received.get(key), expected, `endpoint /${cluster.topic}/${key}`);
    }
    const count = KEYS.reduce((sum, key) => sum + reports[key].length, 0);
    console.log(`failover: ${count} messages on ${KEYS.length} endpoints, each exactly once and in order; ${recoveries.join("; ")}; token refreshed in-band ${refreshed} time(s)`);
    assert.ok(!events.some((event) => / (gap|ended|stale_epoch) |^error /.test(event)), events.join("\n"));
    assert.ok(events.filter((event) => event.startsWith("connected to")).length === 3, events.join("\n"));
  } finally {
    client.close();
    await cluster.stop();
  }
});
