#!/usr/bin/env python3
"""The uWebSockets peer (PyPI socketify): a client connecting to ws://HOST:PORT/<topic>
is subscribed to <topic>; a timer publishes K topics x rate with uWS's native
publish, the same schedule and payload layout as Streamgate's generator.

socketify's default App.run() spins the loop (a whole core at any load), so
this runs libuv's blocking loop directly, as the anchors measured it.

    uws_app.py PORT KEYS RATE_PER_KEY PAYLOAD_BYTES [PREFIX]

With UWS_TLS_CERT and UWS_TLS_KEY set it serves wss:// (uWS's SSL app).
"""
import os
import signal
import struct
import sys
import time

from socketify import App, AppListenOptions, AppOptions, CompressOptions, OpCode

port, keys, rate, payload_bytes = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
prefix = sys.argv[5] if len(sys.argv) > 5 else "/bench/k"
topics = [f"{prefix}{i}" for i in range(1, keys + 1)]
filler = b"*" * (payload_bytes - 16)
sequence = [0] * keys
total_rate = rate * keys
state = {"sent": 0, "start": None}
app = App(AppOptions(cert_file_name=os.environ["UWS_TLS_CERT"], key_file_name=os.environ["UWS_TLS_KEY"])
          if os.environ.get("UWS_TLS_CERT") else None)


def upgrade(res, req, context):
    key = req.get_header("sec-websocket-key")
    protocol = req.get_header("sec-websocket-protocol")
    extensions = req.get_header("sec-websocket-extensions")
    res.upgrade(key, protocol, extensions, context, req.get_url())


def on_open(ws):
    ws.subscribe(ws.get_user_data())


def publish_due(_):
    now = time.monotonic()
    if state["start"] is None:
        state["start"] = now
    due = int((now - state["start"]) * total_rate)
    sent = state["sent"]
    while sent < due:
        i = sent % keys
        sequence[i] += 1
        app.publish(topics[i], struct.pack(">QQ", time.time_ns(), sequence[i]) + filler, OpCode.BINARY)
        sent += 1
    state["sent"] = sent


app.ws("/*", {"compression": CompressOptions.DISABLED, "max_payload_length": 16 * 1024,
              "idle_timeout": 0, "max_backpressure": 16 * 1024 * 1024,
              "upgrade": upgrade, "open": on_open})
app.listen(AppListenOptions(port=port, host="127.0.0.1"), lambda config: print(f"uws listening on {port}", flush=True))
if app._ws_factory is not None:
    app._ws_factory.populate()
timer = app.loop.uv_loop.create_timer(1, 1, publish_due, None)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
app.loop.uv_loop.run()
