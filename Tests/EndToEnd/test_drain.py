"""Graceful drain (docs/protocol.md, "Moving to another node"): on SIGTERM a
node refuses new clients, tells the ones it has to move, serves them while
they go, and exits once they left or the grace period ended. These tests
use raw protocol clients, so they see exactly what the node sends; the
SDKs' own tests check that clients act on it without losing a message."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time

from conftest import STREAMGATE_BIN, WsClient, base_config, free_port, http_get, run_async, subprocess_env
from test_operations import scrape, wait_admin

UPGRADE = ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def raw_request(port: int, request: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request.encode())
        return s.recv(4096).decode(errors="replace")


def wait_exit(gw, timeout: float) -> tuple[int, float]:
    """The node's exit code and how long after the call it exited."""
    began = time.monotonic()
    code = gw.proc.wait(timeout)
    return code, time.monotonic() - began


def test_a_draining_node_tells_clients_to_move_serves_them_meanwhile_and_exits_once_they_left(
        gateway_factory, create_topic, producer):
    topic = create_topic()
    admin_port = free_port()
    gw = gateway_factory([topic], {"drain": {"grace_period_ms": 20000, "reconnect_within_ms": 750},
                                   "admin": {"enabled": True, "host": "127.0.0.1", "port": admin_port}})
    admin = f"http://127.0.0.1:{admin_port}"
    wait_admin(admin)

    async def body():
        clients = [await WsClient.connect(gw.ws_url, name=f"c{i}") for i in range(3)]
        subscriber = clients[0]
        await subscriber.subscribe(f"/{topic}/score", id=1)
        await asyncio.to_thread(producer.produce, topic, [("score", b"before")])
        await subscriber.wait_deliveries(1)

        began = time.monotonic()
        gw.send_signal()
        for client in clients:
            moving = await client.next_text(5)
            assert moving == {"type": "moving", "reason": "draining", "reconnect_within_ms": 750,
                              "message": "this node is shutting down: reconnect to another node and resume"}, moving

        # New clients are refused with a reason, and readiness says why.
        refused = await asyncio.to_thread(raw_request, gw.port, UPGRADE)
        assert refused.startswith("HTTP/1.1 503"), refused
        assert "draining" in refused, refused
        assert http_get(gw.http_url + "/readyz")[:3:2] == (503, b"draining\n")
        assert http_get(admin + "/readyz")[:3:2] == (503, b"draining\n")
        metrics = scrape(admin)
        assert metrics["streamgate_draining"] == 1 and metrics["streamgate_ready"] == 0, metrics
        assert metrics['streamgate_connections_refused_total{reason="draining"}'] == 1, metrics
        assert metrics["streamgate_connections_open"] == 3, metrics

        # The clients still there are served: live deliveries and requests.
        await asyncio.to_thread(producer.produce, topic, [("score", b"during")])
        await subscriber.wait_deliveries(2)
        assert [d.payload for d in subscriber.deliveries] == [b"before", b"during"]
        published = await subscriber.request({"type": "publish", "endpoint": f"/{topic}/score", "payload": "p", "id": 9})
        assert published["type"] == "published" and published["id"] == 9, published
        assert (await clients[1].request({"type": "ping", "id": "x"})) == {"type": "pong", "id": "x"}
        assert gw.proc.poll() is None, "the node must wait for its clients"

        # Once they all left, the node exits at once, well before the grace period.
        for client in clients:
            await client.close()
        code, after = await asyncio.to_thread(wait_exit, gw, 15)
        return code, time.monotonic() - began, after

    code, since_signal, after_last_left = run_async(body())
    assert code == 0, gw.log_tail()
    assert since_signal < 15, f"exited {since_signal:.1f} s after SIGTERM: it waited for the grace period"
    assert after_last_left < 3, f"exited {after_last_left:.1f} s after the last client left"
    log = gw.log()
    assert "draining: refusing new connections, told every client to move" in log, log
    assert "drained: every client left" in log, log


def test_clients_that_stay_are_closed_with_1001_when_the_grace_period_ends(gateway_factory, create_topic):
    topic = create_topic()
    gw = gateway_factory([topic], {"drain": {"grace_period_ms": 1500, "reconnect_within_ms": 500}})

    async def body():
        client = await WsClient.connect(gw.ws_url, name="stays")
        began = time.monotonic()
        gw.send_signal()
        moving = await client.next_text(5)
        assert moving["type"] == "moving", moving
        # A client that does not know `moving` stays until the end of the grace period.
        from websockets.exceptions import ConnectionClosed
        try:
            while True:
                await asyncio.wait_for(client.ws.recv(), 10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None, time.monotonic() - began

    code, closed_after = run_async(body())
    assert code == 1001
    assert 1.4 <= closed_after < 6, f"closed {closed_after:.2f} s after SIGTERM, grace period 1.5 s"
    assert gw.proc.wait(10) == 0
    assert "grace period over: closing the connections still open" in gw.log()


def test_without_a_grace_period_the_node_stops_at_once(gateway_factory, create_topic):
    topic = create_topic()
    gw = gateway_factory([topic], {"drain": {"grace_period_ms": 0}})

    async def body():
        client = await WsClient.connect(gw.ws_url, name="c")
        gw.send_signal()
        from websockets.exceptions import ConnectionClosed
        texts = []
        try:
            while True:
                message = await asyncio.wait_for(client.ws.recv(), 10)
                texts.append(message)
        except ConnectionClosed as closed:
            return texts, closed.rcvd.code if closed.rcvd else None

    texts, code = run_async(body())
    assert texts == [], "no moving notice without a drain"
    assert code == 1001
    assert gw.proc.wait(10) == 0
    assert "draining" not in gw.log()


def test_the_drain_settings_are_checked(tmp_path):
    def check(drain: dict) -> subprocess.CompletedProcess:
        config = base_config(8080, "127.0.0.1:9092", ["t"])
        config["drain"] = drain
        path = tmp_path / "c.json"
        path.write_text(json.dumps(config))
        return subprocess.run([str(STREAMGATE_BIN), "check-config", str(path)], capture_output=True, text=True,
                              timeout=30, env=subprocess_env())

    assert check({"grace_period_ms": 30000, "reconnect_within_ms": 10000}).returncode == 0
    too_long = check({"grace_period_ms": 2000, "reconnect_within_ms": 5000})
    assert too_long.returncode == 2 and "drain.reconnect_within_ms" in too_long.stderr, too_long.stderr
    assert "at most drain.grace_period_ms" in too_long.stderr, too_long.stderr
    negative = check({"grace_period_ms": -1})
    assert negative.returncode == 2 and "drain.grace_period_ms" in negative.stderr, negative.stderr
    # The window defaults to 5 s, or to the grace period when that is shorter.
    assert check({"grace_period_ms": 1000}).returncode == 0
