// Prints every message of the endpoints named on the command line, and keeps
// doing so across reconnects and node failover:
//
//   node --experimental-websocket sdk/js/examples/tail.mjs ws://127.0.0.1:8080/ws /scores/live/nba ...
//   STREAMGATE_TOKEN=... (a bearer token, if the gateway asks for one)
//   STREAMGATE_URLS=ws://node1/ws,ws://node2/ws (instead of the first argument, for a cluster)
import { StreamgateClient } from "../streamgate.js";

const args = process.argv.slice(2);
const urls = process.env.STREAMGATE_URLS?.split(",") ?? [args.shift()];
if (!urls[0] || args.length === 0) {
  console.error("usage: tail.mjs WS_URL ENDPOINT...");
  process.exit(2);
}
const client = new StreamgateClient({ urls, token: process.env.STREAMGATE_TOKEN });
client.on("state", (state) => console.error(`[${state}] ${client.node}`));
client.on("error", (error) => console.error(`error ${error.code}: ${error.message}`));
await client.connect();
for (const endpoint of args) {
  const subscription = client.subscribe(endpoint);
  subscription.on("gap", (notice) => console.error(`${endpoint}: ${notice.message}`));
  subscription.on("ended", (reason) => console.error(`${endpoint}: ended (${reason.code}) ${reason.message ?? ""}`));
  (async () => {
    for await (const message of subscription) {
      console.log(`${message.endpoint} #${message.seq} ${message.text()}`);
    }
  })();
}
process.on("SIGINT", () => {
  client.close();
  process.exit(0);
});
