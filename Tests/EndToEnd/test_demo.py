"""README command 1, `scripts/demo`, end to end: it starts its own broker,
gateway and producer; the console page it prints shows live deliveries in a
real browser (headless Chromium, read through the DevTools protocol); Ctrl-C
stops everything it started."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect

from conftest import ROOT, free_port, subprocess_env

DEMO = ROOT / "scripts" / "demo"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def wait_for_line(log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not printed within {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


def port_is_open(port: int) -> bool:
    import socket
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


async def first_delivery(ws_url: str, endpoint: str, timeout: float) -> bytes:
    async with connect(ws_url) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "welcome"
        await ws.send(json.dumps({"type": "subscribe", "endpoint": endpoint}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "subscribed"
        frame = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(frame, str):
            # The node has the endpoint cached, so it says where live delivery starts
            # (docs/protocol.md, `live`) before the first delivery.
            notice = json.loads(frame)
            assert notice["type"] == "live" and notice["endpoint"] == endpoint, notice
            frame = await asyncio.wait_for(ws.recv(), timeout)
        assert isinstance(frame, bytes)
        return frame


async def through_the_portal(demo_output: str, portal_port: int, node_port: int) -> dict:
    """Logs in to the demo's portal with the printed password, finds the
    live-scores API, mints a token and receives a live update with it from
    the node that follows the portal; a client without a token is refused."""
    password = next(line.split()[-1] for line in demo_output.splitlines() if "log in as admin" in line)
    portal = f"http://127.0.0.1:{portal_port}"

    def call(method, path, body=None, token=None):
        request = urllib.request.Request(portal + path, method=method, data=json.dumps(body).encode() if body else None,
                                         headers={"Content-Type": "application/json"} | (
                                             {"Authorization": f"Bearer {token}"} if token else {}))
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    session = (await asyncio.to_thread(call, "POST", "/api/v1/login", {"username": "admin", "password": password}))["token"]
    api = await asyncio.to_thread(call, "GET", "/api/v1/apis/live-scores", None, session)
    assert [e["path"] for e in api["endpoints"]] == ["/scores/live/{sport}", "/scores/results"], api
    minted = await asyncio.to_thread(call, "POST", "/api/v1/apis/live-scores/tokens",
                                     {"subject": "demo-test", "subscribe": True}, session)
    async with connect(f"ws://127.0.0.1:{node_port}/ws") as ws:
        refused = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if refused["type"] == "welcome":  # no token: no rights, so the subscribe is refused
            await ws.send(json.dumps({"type": "subscribe", "endpoint": "/scores/live/tennis"}))
            refused = json.loads(await asyncio.wait_for(ws.recv(), 5))
    payload = (await first_delivery(f"ws://127.0.0.1:{node_port}/ws?access_token={minted['token']}",
                                    "/scores/live/tennis", 15))
    e, p = int.from_bytes(payload[2:4], "big"), int.from_bytes(payload[4:6], "big")
    return {"refused": refused, "payload": payload[22 + e + p:]}


async def evaluate_in_page(devtools_port: int, expression: str):
    """Evaluates a JavaScript expression in the browser's page via CDP."""
    with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=5) as response:
        pages = [t for t in json.load(response) if t.get("type") == "page"]
    assert pages, "the browser has no page"
    async with connect(pages[0]["webSocketDebuggerUrl"], max_size=None) as cdp:
        await cdp.send(json.dumps({"id": 1, "method": "Runtime.evaluate",
                                   "params": {"expression": expression, "returnByValue": True}}))
        while True:
            reply = json.loads(await asyncio.wait_for(cdp.recv(), 10))
            if reply.get("id") == 1:
                return reply["result"]["result"].get("value")


def test_demo_serves_live_scores_to_a_browser_and_stops_cleanly(tmp_path, print_result):
    gateway_port, kafka_port, devtools_port, portal_port = free_port(), free_port(), free_port(), free_port()
    while port_is_open(gateway_port + 1):  # the portal-following node's port
        gateway_port = free_port()
    log = tmp_path / "demo.log"
    env = subprocess_env() | {"STREAMGATE_PORT": str(gateway_port), "KAFKA_PORT": str(kafka_port),
                              "PORTAL_PORT": str(portal_port)}
    with open(log, "wb") as out:
        demo = subprocess.Popen([str(DEMO)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    browser = None
    try:
        wait_for_line(log, "Streamgate is running.", 240)
        console_url = next(line.split()[-1] for line in log.read_text().splitlines() if "Console" in line)
        assert console_url.startswith(f"http://127.0.0.1:{gateway_port}/")

        # A WebSocket client gets a live-scores update, framed per docs/protocol.md.
        frame = asyncio.run(first_delivery(f"ws://127.0.0.1:{gateway_port}/ws", "/scores/live/football", 15))
        e, p = int.from_bytes(frame[2:4], "big"), int.from_bytes(frame[4:6], "big")
        assert frame[0] == 1 and frame[22:22 + e] == b"/scores/live/football"
        update = json.loads(frame[22 + e + p:])
        assert set(update) >= {"match", "score", "minute"}

        # The portal has the live-scores API; a token it mints works on the node that follows it.
        portal_deliveries = asyncio.run(through_the_portal(log.read_text(), portal_port, gateway_port + 1))
        assert portal_deliveries["refused"]["code"] in ("forbidden", "unauthorized"), portal_deliveries
        assert set(json.loads(portal_deliveries["payload"])) >= {"match", "score", "minute"}

        # The console page in a real browser shows deliveries arriving.
        assert CHROMIUM, "chromium is not installed (scripts/setup installs it)"
        browser = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'chromium'}", f"--remote-debugging-port={devtools_port}", console_url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline, count, status, rows = time.monotonic() + 30, 0, "", []
        while time.monotonic() < deadline and count < 3:
            time.sleep(1)
            try:
                state = asyncio.run(evaluate_in_page(devtools_port, """({
                    status: document.getElementById('status').textContent,
                    count: Number(document.getElementById('count').textContent),
                    rows: [...document.querySelectorAll('#rows tr td:nth-child(2)')].map(td => td.textContent)})"""))
            except OSError:
                continue  # DevTools not listening yet
            if not state:
                continue  # the page is still loading (the expression threw)
            status, count, rows = state["status"], state["count"], state["rows"]
        assert status == "connected" and count >= 3, (status, count)  # the SDK's state
        assert set(rows) <= {"/scores/live/football", "/scores/live/tennis", "/scores/live/basketball",
                             "/scores/results"}, rows
        print_result(f"\ndemo: console in Chromium showed {count} live deliveries ({sorted(set(rows))})")
    finally:
        if browser:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(10)
        # Ctrl-C: SIGINT to the demo's process group, as a terminal would send.
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise AssertionError(f"the demo did not stop on Ctrl-C:\n{log.read_text()[-2000:]}")
    assert "demo: stopping" in log.read_text()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(map(port_is_open, (gateway_port, kafka_port, portal_port, gateway_port + 1))):
        time.sleep(0.2)
    assert not port_is_open(gateway_port), "the gateway outlived the demo"
    assert not port_is_open(kafka_port), "the broker outlived the demo"
    assert not port_is_open(portal_port), "the portal outlived the demo"
    assert not port_is_open(gateway_port + 1), "the portal-following gateway outlived the demo"
