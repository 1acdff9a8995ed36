"""The Python SDK (sdk/python, the working tree's copy) against real gateway
nodes and the broker: publish with typed results and errors, and the
failover test every SDK passes — a client subscribed to several endpoints
while a producer writes steadily over several keys and partitions; the node
it is on is killed (-9), started again, then the other node is killed; its
first token expires meanwhile and is refreshed in-band through the provider.
Per endpoint the messages must be exactly the producer's, record by record.
A draining node (SIGTERM) moves its clients to the other node with the same
guarantee, publishes included; stand-in nodes on loopback check the SDK's
side of a move (the delay, a request in flight, one move per notice)."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

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


TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_frames_with_trace_context_without_a_gateway():
    # Laid out field by field as docs/protocol.md's delivery table says: kind, flags, E, P, seq, timestamp,
    # endpoint, epoch, then with flag bit 1 a length byte T and T bytes of traceparent, then the payload.
    endpoint, epoch, payload = "/t/k".encode(), b"9f4714b77c2a4c78", b"{\"score\": 3}"

    def frame(flags: int, trace: bytes | None, body: bytes = payload) -> bytes:
        head = bytes([1, flags]) + len(endpoint).to_bytes(2, "big") + len(epoch).to_bytes(2, "big") + \
            (1041).to_bytes(8, "big") + (1_700_000_000_123).to_bytes(8, "big", signed=True) + endpoint + epoch
        assert len(head) == 22 + len(endpoint) + len(epoch)
        return head + (bytes([len(trace)]) + trace if trace is not None else b"") + body

    plain = parse_delivery(frame(0, None))
    assert (plain.endpoint, plain.epoch, plain.seq, plain.timestamp, plain.snapshot, plain.payload,
            plain.traceparent) == ("/t/k", "9f4714b77c2a4c78", 1041, 1_700_000_000_123, False, payload, None)
    traced = parse_delivery(frame(2, TRACE.encode()))
    assert (traced.endpoint, traced.epoch, traced.seq, traced.snapshot, traced.payload, traced.traceparent) == \
        ("/t/k", "9f4714b77c2a4c78", 1041, False, payload, TRACE)
    assert traced.json() == {"score": 3}  # the trace context is not part of the payload
    # With the snapshot bit too; an empty payload; a payload that looks like trace context stays payload.
    both = parse_delivery(frame(3, TRACE.encode(), b""))
    assert (both.snapshot, both.traceparent, both.payload) == (True, TRACE, b"")
    assert parse_delivery(frame(0, None, bytes([55]) + TRACE.encode())).traceparent is None
    # Cut short inside the trace context: no length byte, or fewer bytes than T says. Malformed, like a frame
    # cut inside the endpoint or epoch.
    full = frame(2, TRACE.encode(), b"")
    epoch_end = 22 + len(endpoint) + len(epoch)
    assert parse_delivery(full) is not None and len(full) == epoch_end + 1 + len(TRACE)
    for cut in range(epoch_end, len(full)):
        assert parse_delivery(full[:cut]) is None, cut
    assert parse_delivery(full[:epoch_end - 1]) is None
    # Without flag bit 1 the same bytes after the epoch are payload: the flag alone decides.
    assert parse_delivery(bytes([1, 0]) + full[2:]).payload == bytes([len(TRACE)]) + TRACE.encode()


def test_trace_context_through_a_real_gateway(create_topic, gateway_factory, producer):
    """With tracing on, a record's traceparent header reaches the SDK's message and a publish's traceparent
    becomes the record's header; with tracing off (the default) the gateway ignores it."""
    topic_on, topic_off = create_topic(prefix="sdk-py-trace-on"), create_topic(prefix="sdk-py-trace-off")
    traced_gw = gateway_factory([topic_on], {"tracing": {"propagate": True}})
    plain_gw = gateway_factory([topic_off])

    async def run(gw, topic):
        client = Client(gw.ws_url)
        connected: list[dict] = []
        client.on("connected", connected.append)
        await client.connect()
        try:
            endpoint = f"/{topic}/k"
            subscription = client.subscribe(endpoint)
            await until("subscribed", lambda: subscription.canonical is not None)
            await asyncio.to_thread(producer.produce, topic, [
                ("k", b"produced traced", [("traceparent", TRACE.encode())]),
                ("k", b"produced plain"),
            ])
            published = await client.publish(endpoint, "published traced", traceparent=TRACE)
            plain = await client.publish(endpoint, b"published plain")
            messages = [await asyncio.wait_for(anext(subscription), 10) for _ in range(4)]
            try:
                await client.publish(endpoint, "x", traceparent="00-zz")
                refusal = None
            except StreamgateError as error:
                refusal = error
            return connected, published, plain, messages, refusal
        finally:
            await client.close()

    async def body():
        return await run(traced_gw, topic_on), await run(plain_gw, topic_off)

    on, off = run_async(body(), 60)
    connected, published, plain, messages, refusal = on
    assert [event["trace_context"] for event in connected] == [True]
    assert [(m.payload, m.traceparent) for m in messages] == [
        (b"produced traced", TRACE), (b"produced plain", None), (b"published traced", TRACE),
        (b"published plain", None)]
    assert [m.seq for m in messages[2:]] == [published.offset, plain.offset]
    assert refusal is not None and refusal.code == "bad_request", refusal
    connected, published, plain, messages, refusal = off
    assert [event["trace_context"] for event in connected] == [False]
    assert [(m.payload, m.traceparent) for m in messages] == [
        (b"produced traced", None), (b"produced plain", None), (b"published traced", None),
        (b"published plain", None)]
    assert [m.seq for m in messages[2:]] == [published.offset, plain.offset]
    assert refusal is None  # without tracing the field is ignored, malformed or not


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


# ------------------------------------------------------------ draining nodes

class FakeNode:
    """A stand-in gateway on loopback that speaks just enough of protocol v1 for
    the SDK (welcome, subscribed, published after `publish_delay`, deliveries
    and notices sent by the test) and logs what each connection did, and when."""

    def __init__(self, publish_delay: float = 0.0):
        self.publish_delay = publish_delay
        self.connections: list[ServerConnection] = []
        #: (monotonic time, connection index, what, detail)
        self.log: list[tuple[float, int, str, object]] = []
        self._answers: set[asyncio.Task] = set()

    async def __aenter__(self) -> "FakeNode":
        self._server = await serve(self._serve, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/ws"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    def entries(self, what: str) -> list[tuple[float, int, str, object]]:
        return [entry for entry in self.log if entry[2] == what]

    async def send(self, message: dict | bytes, connection: int = -1) -> None:
        await self.connections[connection].send(message if isinstance(message, bytes) else json.dumps(message))

    async def _serve(self, ws: ServerConnection) -> None:
        index = len(self.connections)
        self.connections.append(ws)
        self.log.append((time.monotonic(), index, "open", None))
        await ws.send(json.dumps({"type": "welcome", "protocol": "streamgate.v1", "subject": "anonymous",
                                  "expires_at": None}))
        try:
            async for text in ws:
                request = json.loads(text)
                self.log.append((time.monotonic(), index, request["type"], request))
                if request["type"] == "subscribe":
                    await ws.send(json.dumps({"type": "subscribed", "endpoint": request["endpoint"],
                                              "id": request["id"]}))
                elif request["type"] == "publish":
                    task = asyncio.create_task(self._answer_publish(ws, index, request))
                    self._answers.add(task)
                    task.add_done_callback(self._answers.discard)
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        self.log.append((time.monotonic(), index, "closed", (ws.close_code, ws.close_reason)))

    async def _answer_publish(self, ws: ServerConnection, index: int, request: dict) -> None:
        await asyncio.sleep(self.publish_delay)
        offset = len(self.entries("published"))
        await ws.send(json.dumps({"type": "published", "endpoint": request["endpoint"], "partition": 0,
                                  "offset": offset, "id": request["id"]}))
        self.log.append((time.monotonic(), index, "published", request["payload"]))


def delivery(endpoint: str, epoch: str, seq: int, payload: bytes) -> bytes:
    return struct.pack(">BBHHQq", 1, 0, len(endpoint), len(epoch), seq, -1) + endpoint.encode() + epoch.encode() + \
        payload


def client_tasks(name: str = "Client.") -> list[str]:
    """The SDK's tasks still running (a move waiting for its moment is `Client._move_after`)."""
    return [t.get_coro().__qualname__ for t in asyncio.all_tasks() if not t.done()
            and t.get_coro().__qualname__.startswith(name)]


def moving(window_ms: int) -> dict:
    return {"type": "moving", "reason": "draining", "reconnect_within_ms": window_ms,
            "message": "this node is shutting down: reconnect to another node and resume"}


def test_moving_waits_the_drawn_delay_lets_a_request_in_flight_finish_and_moves_once():
    async def body():
        async with FakeNode(publish_delay=0.4) as a, FakeNode() as b:
            # A back-off would take 5 s: the move must not wait for one.
            client = Client([a.url, b.url], min_reconnect_delay=5.0, jitter=False, rand=lambda: 0.5)
            moves, disconnects, states, received = [], [], [], []
            client.on("moving", moves.append)
            client.on("disconnected", disconnects.append)
            client.on("state", lambda state: states.append((time.monotonic(), state)))
            await client.connect()
            subscription = client.subscribe("/t/k")
            subscription.on("message", lambda m: received.append((m.seq, m.payload)))
            await until("subscribed", lambda: subscription.canonical is not None)
            await a.send(delivery("/t/k", "E1", 3, b"before"))
            await until("a first message", lambda: len(received) == 1)

            noticed_at = time.monotonic()
            await a.send(moving(600))  # rand 0.5: the move begins 300 ms after the notice
            await a.send(moving(40))   # a second notice changes nothing
            await until("the moving event", lambda: moves)
            in_flight = asyncio.ensure_future(client.publish("/t/k", "in flight"))  # answered 400 ms later
            await asyncio.sleep(0.1)
            await a.send(delivery("/t/k", "E1", 4, b"during the wait"))  # still received on the old connection
            await until("the move's beginning", lambda: client.state != "connected")
            later = asyncio.ensure_future(client.publish("/t/k", "after the move began"))  # waits for b
            first, second = await in_flight, await later
            await until("connected to b", lambda: client.state == "connected" and client.node == b.url)
            await asyncio.sleep(0.8)  # past both windows: no second move
            outcome = (client.state, len(a.connections), len(b.connections), len(b.entries("closed")))
            await client.close()
            return noticed_at, moves, disconnects, states, received, first, second, outcome, a.log, b.log

    noticed_at, moves, disconnects, states, received, first, second, outcome, a_log, b_log = run_async(body(), 30)
    at = lambda log, what: [entry for entry in log if entry[2] == what]  # noqa: E731
    assert moves == [{"url": moves[0]["url"], "reconnect_within_ms": 600.0, "delay_ms": 300.0}], moves
    left_at = next(t for t, state in states if t > noticed_at and state == "reconnecting")
    assert 0.29 <= left_at - noticed_at < 0.45, left_at - noticed_at
    # The request in flight was answered by the old node before the client closed it with 1000 "moving".
    [(_, _, _, published_payload)] = at(a_log, "published")
    [(closed_at, _, _, close)] = at(a_log, "closed")
    assert published_payload == "in flight" and (first.offset, second.offset) == (0, 0)
    assert at(a_log, "published")[0][0] <= closed_at and close == (1000, "moving"), a_log
    assert closed_at - noticed_at >= 0.39
    # The publish asked for once the move began waited for the next node.
    assert [r[3]["payload"] for r in at(a_log, "publish")] == ["in flight"]
    assert [r[3]["payload"] for r in at(b_log, "publish")] == ["after the move began"]
    # At once (no 5 s back-off), one connection to b, the subscription resumed after the last delivery.
    [(opened_at, _, _, _)] = at(b_log, "open")
    assert opened_at - closed_at < 1.0
    assert [r[3]["from"] for r in at(b_log, "subscribe")] == [{"epoch": "E1", "seq": 4}]
    assert received == [(3, b"before"), (4, b"during the wait")]
    assert disconnects == [{"url": moves[0]["url"], "code": 1000, "reason": "moving"}]
    assert outcome == ("connected", 1, 1, 0), outcome


def test_a_move_gives_way_to_a_lost_connection_and_to_close():
    async def body():
        async with FakeNode() as a, FakeNode() as b:
            client = Client([a.url, b.url], min_reconnect_delay=0.05, max_reconnect_delay=0.1, rand=lambda: 0.5)
            moves, disconnects = [], []
            client.on("moving", moves.append)
            client.on("disconnected", disconnects.append)
            await client.connect()
            # Lost during the wait: the usual reconnect, and no move after it.
            await a.send(moving(1000))
            await until("the moving event", lambda: len(moves) == 1)
            await asyncio.sleep(0.1)
            await a.connections[0].close(1001, "going away")
            await until("connected to b", lambda: client.state == "connected" and client.node == b.url)
            waiting_moves = client_tasks("Client._move_after")  # the move was dropped with its connection
            await asyncio.sleep(0.8)  # past the move's moment (500 ms after the notice)
            lost = (waiting_moves, len(a.connections), len(b.connections), list(b.log), list(disconnects))
            # close() during the wait: no move, and nothing of the client left running.
            await b.send(moving(1000))
            await until("the second moving event", lambda: len(moves) == 2)
            await asyncio.sleep(0.1)
            await client.close()
            await asyncio.sleep(0)  # the cancelled tasks end
            running = client_tasks()
            await asyncio.sleep(0.8)
            closed = (client.state, len(a.connections), len(b.connections), b.log[-1], running)
            # One URL: the move goes back to it (a load balancer would pick another node).
            single = Client(a.url, rand=lambda: 0.0, min_reconnect_delay=5.0, jitter=False)
            single_moves = []
            single.on("moving", single_moves.append)
            await single.connect()
            await a.send(moving(200))
            await until("a move to the same URL", lambda: len(a.connections) == 3 and single.state == "connected")
            await single.close()
            return moves, lost, closed, single_moves

    moves, lost, closed, single_moves = run_async(body(), 30)
    waiting_moves, a_connections, b_connections, b_log, disconnects = lost
    assert waiting_moves == []
    assert (a_connections, b_connections) == (1, 1) and not [e for e in b_log if e[2] == "closed"], b_log
    assert [d["code"] for d in disconnects] == [1001]
    assert [m["delay_ms"] for m in moves] == [500.0, 500.0]
    state, a_connections, b_connections, last, running = closed
    assert (state, a_connections, b_connections) == ("closed", 1, 1)
    assert last[2:] == ("closed", (1000, "")), last
    assert running == [], running
    assert single_moves == [{"url": single_moves[0]["url"], "reconnect_within_ms": 200.0, "delay_ms": 0.0}]


def test_a_draining_node_moves_its_clients_to_the_other_without_loss(broker, create_topic, gateway_factory,
                                                                    print_result):
    topic = create_topic(partitions=4)
    grace_ms, window_ms = 20000, 1500
    # Publishes go back to back, above the default 100 per second a connection may publish.
    overrides = {"drain": {"grace_period_ms": grace_ms, "reconnect_within_ms": window_ms},
                 "limits": {"publish_rate_per_second": 10000, "publish_burst": 10000}}
    nodes = [gateway_factory([topic], overrides) for _ in range(2)]
    keys = KEYS[:4]
    published_key = "published"  # what one client publishes through the move, which every client subscribes to

    async def body():
        clients = [Client([node.ws_url for node in nodes], min_reconnect_delay=0.05, max_reconnect_delay=1.0,
                          liveness_timeout=5.0) for _ in range(10)]
        received = [{key: [] for key in keys + [published_key]} for _ in clients]
        moves: list[list[dict]] = [[] for _ in clients]
        disconnects: list[list[dict]] = [[] for _ in clients]
        events: list[str] = []
        subscribed = []
        left_at: list[float] = []  # when client 0 began leaving node 0
        clients[0].on("state", lambda state: left_at.append(time.monotonic()) if state == "reconnecting" else None)
        for n, client in enumerate(clients):
            client.on("moving", moves[n].append)
            client.on("disconnected", disconnects[n].append)
            client.on("error", lambda error, n=n: events.append(f"{n}: error {error.code} {error.message}"))
            await client.connect()
            assert client.node == nodes[0].ws_url
            for key in keys + [published_key]:
                subscription = client.subscribe(f"/{topic}/{key}")
                subscription.on("subscribed", subscribed.append)
                subscription.on("message", lambda m, n=n, key=key: received[n][key].append([m.seq, m.text()]))
                for event in ("gap", "stale_epoch", "retry", "ended"):
                    subscription.on(event, lambda detail, e=event, n=n, k=key: events.append(f"{n} {k}: {e} {detail}"))
        await until("every subscription", lambda: len(subscribed) == len(clients) * (len(keys) + 1))

        publishing = True
        published: list[list] = []
        publish_times: list[tuple[float, float]] = []
        publish_failures: list[str] = []

        async def publish_continuously() -> None:
            # One after the other, without a pause: when the client begins to leave, one is in flight.
            n = 0
            while publishing:
                payload = f"published:{n}"
                started = time.monotonic()
                try:
                    result = await clients[0].publish(f"/{topic}/{published_key}", payload)
                    published.append([result.offset, payload])
                    publish_times.append((started, time.monotonic()))
                except StreamgateError as error:
                    publish_failures.append(f"{payload}: {error.code} {error.message}")
                n += 1

        producer = SteadyProducer(broker.bootstrap, topic, keys)
        publisher = asyncio.ensure_future(publish_continuously())
        total = lambda n: sum(len(r) for r in received[n].values())  # noqa: E731
        try:
            # Every subscription has a position before the drain: one that moves before its first message, on
            # an endpoint the node had nothing cached of (no `live`), resumes live (docs/protocol.md, `live`).
            await until("messages of every endpoint on every client",
                        lambda: all(len(r) >= 5 for n in range(len(clients)) for r in received[n].values()))
            before = len(published)
            drained_at = time.monotonic()
            nodes[0].proc.send_signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(nodes[0].proc.wait, grace_ms / 1000 + 10)
            exited_after = time.monotonic() - drained_at
            await until("every client on node 1", lambda: all(c.state == "connected" and c.node == nodes[1].ws_url
                                                              for c in clients), 10)
            at_move = [total(n) for n in range(len(clients))]
            await until("messages from node 1 on every client",
                        lambda: all(total(n) > at_move[n] + 40 for n in range(len(clients))))
            await until("publishes through node 1", lambda: len(published) > before + 20)
        finally:
            publishing = False
            await publisher
            reports = await asyncio.to_thread(producer.stop)
        expected = {key: [[offset, value] for _, offset, value in reports[key]] for key in keys}
        expected[published_key] = published
        complete = lambda: all(len(received[n][key]) >= len(expected[key])  # noqa: E731
                               for n in range(len(clients)) for key in expected)
        try:
            await until("every message on every client", complete)
        except AssertionError:
            pass  # the comparison below shows what is missing
        await asyncio.sleep(0.3)  # anything extra (a duplicate) would arrive now
        seen = list(events)
        for client in clients:
            await client.close()
        # Publishes sent to node 0 before client 0 began to leave it and answered after: in flight at the move.
        across = [times for times in publish_times if times[0] < left_at[0] < times[1]]
        return exit_code, exited_after, received, expected, moves, disconnects, seen, publish_failures, across

    exit_code, exited_after, received, expected, moves, disconnects, events, publish_failures, across = \
        run_async(body(), 120)
    assert exit_code == 0, nodes[0].log_tail()
    # The node exited because its clients had left, long before the grace period ended.
    assert exited_after < window_ms / 1000 + 5, exited_after
    for n in range(len(received)):
        [move] = moves[n]
        assert move["url"] == nodes[0].ws_url and move["reconnect_within_ms"] == window_ms, move
        assert 0 <= move["delay_ms"] < window_ms, move
        assert disconnects[n] == [{"url": nodes[0].ws_url, "code": 1000, "reason": "moving"}], disconnects[n]
        for key, values in expected.items():
            assert received[n][key] == values, (n, key)
    assert len({move["delay_ms"] for [move] in moves}) > 1, "the moves are spread over the window"
    assert publish_failures == [] and len(expected[published_key]) > 20, publish_failures
    # At most one (none when the move began between an answer and the next
    # publish); that one in flight is answered on the old node is checked
    # deterministically by the stand-in node test above.
    assert len(across) <= 1, across
    assert events == [], events
    count = sum(len(values) for values in expected.values())
    delays = sorted(move["delay_ms"] for [move] in moves)
    print_result(f"python sdk drain: {len(received)} clients moved off a draining node (delays {delays[0]:.0f}-"
                 f"{delays[-1]:.0f} ms of a {window_ms} ms window); it exited (code {exit_code}) "
                 f"{exited_after * 1000:.0f} ms after SIGTERM (grace {grace_ms} ms); {count} messages per client "
                 f"({len(expected[published_key])} of them published by one client through the move) exactly once "
                 f"and in order")
