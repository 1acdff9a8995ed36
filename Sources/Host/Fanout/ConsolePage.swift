/// The console: a small page served by the gateway at `/` that subscribes to
/// endpoints and shows deliveries live (seq, epoch, latency, payload). It
/// decodes the binary delivery frame of docs/protocol.md with a DataView.
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
<script>
const statusEl = document.getElementById("status"), rows = document.getElementById("rows");
const countEl = document.getElementById("count"), subsEl = document.getElementById("subs");
const wanted = new Set(new URLSearchParams(location.search).getAll("endpoint"));
if (wanted.size === 0) ["/scores/live/football", "/scores/live/tennis"].forEach(e => wanted.add(e));
let ws, count = 0;
const decoder = new TextDecoder("utf-8", { fatal: true });
function connect() {
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "__STREAM_PATH__", "streamgate.v1");
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { statusEl.textContent = "open"; statusEl.className = "ok"; wanted.forEach(subscribe); };
  ws.onclose = e => { statusEl.textContent = "closed (" + e.code + "), retrying"; statusEl.className = "bad"; setTimeout(connect, 1000); };
  ws.onmessage = e => typeof e.data === "string" ? control(JSON.parse(e.data)) : delivery(e.data);
}
function subscribe(endpoint) { ws.send(JSON.stringify({ type: "subscribe", endpoint })); }
function control(msg) {
  if (msg.type === "subscribed") { const s = document.createElement("span"); s.textContent = msg.endpoint; subsEl.appendChild(s); }
  if (msg.type === "error") alert(msg.code + ": " + msg.message);
}
function delivery(buf) {
  const v = new DataView(buf), e = v.getUint16(2), p = v.getUint16(4);
  const seq = v.getBigUint64(6), ts = Number(v.getBigInt64(14));
  const bytes = new Uint8Array(buf);
  const endpoint = new TextDecoder().decode(bytes.subarray(22, 22 + e));
  const epoch = new TextDecoder().decode(bytes.subarray(22 + e, 22 + e + p));
  const body = bytes.subarray(22 + e + p);
  let text; try { text = decoder.decode(body); } catch { text = "(" + body.length + " binary bytes)"; }
  const tr = document.createElement("tr");
  for (const cell of [new Date().toLocaleTimeString(), endpoint, seq.toString(), epoch, ts > 0 ? (Date.now() - ts) + " ms" : "", text]) {
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
connect();
</script>
</body>
</html>
"""#
}
