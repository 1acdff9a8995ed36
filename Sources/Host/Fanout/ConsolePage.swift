/// The console: a small page served by the gateway at `/` that subscribes to
/// endpoints and shows deliveries live (seq, epoch, latency, payload),
/// through the JavaScript SDK the gateway serves beside it
/// (`/sdk/streamgate.js`), so it survives reconnects like any SDK user.
enum ConsolePage {
    static func html(streamPath: String) -> String {
        template.replacingOccurrences(of: "__STREAM_PATH__", with: streamPath)
    }

    private static let template = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Streamgate console</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1d2330; background: #f6f7f9; }
  h1 { font-size: 1.4em; margin: 0 0 .2em; }
  .muted { color: #667; }
  form { margin: 1em 0; display: flex; gap: .5em; }
  input { flex: 1; max-width: 28em; padding: .4em; font: inherit; }
  button { padding: .4em 1em; font: inherit; }
  #subs span { display: inline-block; background: #dde6f7; border-radius: 1em; padding: .1em .7em; margin: .2em; }
  table { border-collapse: collapse; width: 100%; background: white; }
  th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #e3e5ea; font-family: ui-monospace, monospace; font-size: 13px; }
  th { background: #eef0f4; font-family: system-ui, sans-serif; }
  #status.ok { color: #15803d; } #status.bad { color: #b91c1c; }
</style>
</head>
<body>
<h1>Streamgate console</h1>
<div class="muted">Subscribe to endpoints (<code>/topic/key</code>) and watch Kafka records arrive live.
  Connection: <b id="status">connecting…</b> · messages: <b id="count">0</b></div>
<form id="form"><input id="endpoint" placeholder="/scores/live/football" value="/scores/live/football">
  <button>Subscribe</button></form>
<div id="subs"></div>
<table><thead><tr><th>time</th><th>endpoint</th><th>seq</th><th>epoch</th><th>latency</th><th>payload</th></tr></thead>
<tbody id="rows"></tbody></table>
<script type="module">
// The page uses the JavaScript SDK this gateway serves: it reconnects by
// itself and resumes every subscription where it left off.
import { StreamgateClient } from "/sdk/streamgate.js";
const statusEl = document.getElementById("status"), rows = document.getElementById("rows");
const countEl = document.getElementById("count"), subsEl = document.getElementById("subs");
const wanted = new Set(new URLSearchParams(location.search).getAll("endpoint"));
if (wanted.size === 0) ["/scores/live/football", "/scores/live/tennis"].forEach(e => wanted.add(e));
let count = 0;
const decoder = new TextDecoder("utf-8", { fatal: true });
const client = new StreamgateClient({ urls: (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "__STREAM_PATH__" });
client.on("state", state => { statusEl.textContent = state; statusEl.className = state === "connected" ? "ok" : "bad"; });
client.on("error", error => alert(error.code + ": " + error.message));
function subscribe(endpoint) {
  const subscription = client.subscribe(endpoint);
  subscription.on("subscribed", reply => {
    if ([...subsEl.children].some(s => s.textContent === reply.endpoint)) return;
    const s = document.createElement("span"); s.textContent = reply.endpoint; subsEl.appendChild(s);
  });
  subscription.on("ended", reason => { if (reason.code !== "closed") alert(endpoint + ": " + reason.code + " " + (reason.message ?? "")); });
  subscription.on("gap", notice => alert(endpoint + ": " + notice.message));
  subscription.on("message", show);
}
function show(message) {
  let text; try { text = decoder.decode(message.payload); } catch { text = "(" + message.payload.length + " binary bytes)"; }
  const tr = document.createElement("tr");
  const latency = message.timestamp > 0 ? (Date.now() - message.timestamp) + " ms" : "";
  for (const cell of [new Date().toLocaleTimeString(), message.endpoint, String(message.seq), message.epoch, latency, text]) {
    const td = document.createElement("td"); td.textContent = cell; tr.appendChild(td);
  }
  rows.prepend(tr);
  while (rows.children.length > 200) rows.lastChild.remove();
  countEl.textContent = ++count;
}
document.getElementById("form").onsubmit = ev => {
  ev.preventDefault();
  const endpoint = document.getElementById("endpoint").value.trim();
  if (endpoint && !wanted.has(endpoint)) { wanted.add(endpoint); subscribe(endpoint); }
};
wanted.forEach(subscribe);
client.connect();
</script>
</body>
</html>
"""#
}
