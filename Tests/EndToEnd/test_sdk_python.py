"""The Python SDK (sdk/python, the working tree's copy) against real gateway
nodes and the broker: publish with typed results and errors, and the
failover test every SDK passes — a client subscribed to several endpoints
while a producer writes steadily over several keys and partitions; the node
it is on is killed (-9), started again, then the other node is killed; its
first token expires meanwhile and is refreshed in-band through the provider.
Per endpoint the messages must be exactly the producer's, record by record."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
import zipfile

from conftest import ROOT, SteadyProducer, run_async

sys.path.insert(0, str(ROOT / "sdk" / "python"))

from streamgate import Client, StreamgateError, backoff_delay, parse_delivery  # noqa: E402

KEYS = ["a", "b", "c", "d", "e", "f"]


async def until(what: str, condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def tokens_file(tmp_path) -> str:
    now = int(time.time())
    entry = lambda token, expires: {"token": token, "subject": "python-sdk", "subscribe": ["/**"],  # noqa: E731
                                    "publish": ["/allowed/**"], "expires_at": expires}
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": [entry("first-token-of-the-python-sdk", now + 4),
                                           entry("second-token-of-the-python-sdk", now + 3600)]}))
    return str(path)


def test_every_message_exactly_once_across_two_node_kills_and_a_token_refresh(broker, create_topic, gateway_factory,
                                                                              tmp_path, print_result):
    topic = create_topic(partitions=4)
    overrides = {"authorization": {"plugin": "static-tokens", "options": {"file": tokens_file(tmp_path)}},
                 "sessions": {"token_expiry_warning_seconds": 3}}
    nodes = [gateway_factory([topic], overrides) for _ in range(2)]
    ports = [node.port for node in nodes]

    async def body():
        tokens: list[str] = []

        async def provider() -> str:
            tokens.append("first-token-of-the-python-sdk" if not tokens else "second-token-of-the-python-sdk")
            return tokens[-1]

        client = Client([node.ws_url for node in nodes], token=provider, min_reconnect_delay=0.05,
                        max_reconnect_delay=1.0, liveness_timeout=5.0)
        received = {key: [] for key in KEYS}
        events: list[str] = []
        refreshed = []
        client.on("token_refreshed", lambda: refreshed.append(time.monotonic()))
        client.on("error", lambda error: events.append(f"error {error.code}"))
        client.on("connected", lambda event: events.append(f"connected {event['url']}"))
        await client.connect()
        subscribed = []
        for key in KEYS:
            subscription = client.subscribe(f"/{topic}/{key}")
            subscription.on("subscribed", lambda reply: subscribed.append(reply))
            subscription.on("message", lambda m, key=key: received[key].append([m.seq, m.text()]))
            for event in ("gap", "stale_epoch", "retry", "ended"):
                subscription.on(event, lambda detail, event=event, key=key: events.append(f"{key}: {event} {detail}"))
        await until("every subscription", lambda: len(subscribed) == len(KEYS))
        producer = SteadyProducer(broker.bootstrap, topic, KEYS)
        total = lambda: sum(len(r) for r in received.values())  # noqa: E731
        recoveries = []
        try:
            await until("live messages", lambda: total() >= 60)
            await until("the in-band token refresh", lambda: len(refreshed) == 1, 10)
            assert tokens == ["first-token-of-the-python-sdk", "second-token-of-the-python-sdk"]
            for round_ in (0, 1):
                on = client.node
                victim = next(i for i, node in enumerate(nodes) if node.ws_url == on)
                killed_at = time.monotonic()
                nodes[victim].proc.send_signal(signal.SIGKILL)
                nodes[victim].proc.wait(10)
                await until("a reconnect elsewhere", lambda: client.state == "connected" and client.node != on)
                at_reconnect = total()
                await until("a resumed message", lambda: total() > at_reconnect)
                recoveries.append(f"{(time.monotonic() - killed_at) * 1000:.0f} ms")
                await until("more live messages", lambda: total() > at_reconnect + 20 * len(KEYS))
                if round_ == 0:
                    restart = {**overrides, "listen": {"host": "127.0.0.1", "port": ports[victim]}}
                    nodes[victim] = await asyncio.to_thread(gateway_factory, [topic], restart)
        finally:
            reports = await asyncio.to_thread(producer.stop)
        for key in KEYS:
            await until(f"every message of {key}", lambda key=key: len(received[key]) >= len(reports[key]))
        await asyncio.sleep(0.2)
        # A publish the token's rights do not allow is a typed refusal.
        try:
            await client.publish(f"/{topic}/x", "not allowed here")
            refusal = None
        except StreamgateError as error:
            refusal = error
        seen = list(events)  # before close() ends the subscriptions
        await client.close()
        return received, reports, seen, recoveries, refusal

    received, reports, events, recoveries, refusal = run_async(body(), 120)
    for key in KEYS:
        assert received[key] == [[offset, value] for _, offset, value in reports[key]], key
    assert not [e for e in events if " gap " in e or " ended " in e or "stale_epoch" in e or e.startswith("error")], events
    assert sum(e.startswith("connected") for e in events) == 3, events
    assert refusal is not None and refusal.code == "forbidden"
    count = sum(len(r) for r in reports.values())
    print_result(f"python sdk: {count} messages on {len(KEYS)} endpoints exactly once and in order across two node "
                 f"kills and a token refresh; first message from the other node {', '.join(recoveries)} after each kill")


def test_publish_returns_where_the_record_landed(broker, create_topic, gateway_factory):
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic])

    async def body():
        async with Client(gw.ws_url) as client:
            subscription = client.subscribe(f"/{topic}/k")
            await until("subscribed", lambda: subscription.canonical is not None)
            first = await client.publish(f"/{topic}/k", "hello")
            second = await client.publish(f"/{topic}/k", b"\x00\xff")
            messages = [await anext(subscription), await anext(subscription)]
            try:
                await client.publish("no-slash", "x")
                error = None
            except StreamgateError as e:
                error = e
            return first, second, messages, error

    first, second, messages, error = run_async(body(), 30)
    assert (first.partition, first.offset, second.offset) == (0, 0, 1)
    assert [(m.seq, m.payload) for m in messages] == [(0, b"hello"), (1, b"\x00\xff")]
    assert error is not None and error.code == "invalid_endpoint"


def test_frames_and_backoff_without_a_gateway():
    import struct
    frame = struct.pack(">BBHHQq", 1, 1, 4, 2, 2**40, 1_700_000_000_000) + b"/t/kE1" + b"\x00payload"
    message = parse_delivery(frame)
    assert (message.endpoint, message.epoch, message.seq, message.snapshot, message.payload) == \
        ("/t/k", "E1", 2**40, True, b"\x00payload")
    assert parse_delivery(frame[:24]) is None and parse_delivery(b"\x02" + frame[1:]) is None
    assert [backoff_delay(n, 0.1, 1.0, jitter=False) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff_delay(3, 0.1, 1.0, rand=lambda: 0.5) == 0.4
    assert all(0 <= backoff_delay(40, 0.1, 1.0) <= 1.0 for _ in range(1000))


def test_the_package_installs_with_pip_and_ships_its_types(tmp_path):
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "sdk" / "python", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                             str(source)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    [wheel] = list(tmp_path.glob("streamgate-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "streamgate/py.typed" in names and "streamgate/client.py" in names
