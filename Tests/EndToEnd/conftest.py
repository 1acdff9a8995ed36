"""Shared fixtures of the Streamgate end-to-end suite.

One Tansu broker (Kafka protocol, in-memory storage) serves the whole session;
every test creates its own uniquely named topics and starts its own gateway
process(es), so tests never see each other's records.

Everything here is bounded by timeouts: a broken gateway makes a test fail,
never hang.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LIB = ROOT / ".runtime" / "lib"
TANSU_BIN = Path(os.environ.get("TANSU_BIN", ROOT / ".runtime" / "tansu"))
STREAMGATE_BIN = Path(os.environ.get("STREAMGATE_BIN", ROOT / ".build" / "debug" / "streamgate"))
KOSOKU_BIN = ROOT / ".venv" / "bin" / "kosoku"

# scripts/test --sanitize runs the suite against an AddressSanitizer build:
# slower, and its memory figures are ASan's (quarantine, redzones), not ours.
SANITIZED = os.environ.get("STREAMGATE_SANITIZED") == "1"

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "autobahn: the Autobahn conformance run with kosoku (slow; deselect with -m 'not autobahn')")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item so fixtures can tell, at teardown,
    # whether the test failed (and print the gateway log if so).
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


def _test_failed(request) -> bool:
    node = request.node
    return any(getattr(getattr(node, "rep_" + phase, None), "failed", False) for phase in ("setup", "call"))


# ----------------------------------------------------------------- helpers --

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env() -> dict:
    env = dict(os.environ)
    paths = [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p]
    if str(RUNTIME_LIB) not in paths:
        paths.insert(0, str(RUNTIME_LIB))
    env["LD_LIBRARY_PATH"] = ":".join(paths)
    return env


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"<cannot read {path}: {error}>"
    return "\n".join(text.splitlines()[-lines:])


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


def assert_no_sanitizer_report(log: str) -> None:
    """A gateway built with sanitizers (scripts/test --sanitize) writes its
    reports into its log; any of them fails the test that ran it."""
    for marker in SANITIZER_MARKERS:
        if marker in log:
            start = log.index(marker)
            raise AssertionError(f"sanitizer report in the gateway log:\n{log[max(0, start - 200):start + 6000]}")


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def run_async(coro, timeout: float = 60.0):
    """Runs an async test body with a hard upper bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def deep_merge(base: dict, overrides: dict) -> dict:
    """`overrides` merged into `base`, nested objects key by key; a None
    value removes the key."""
    out = dict(base)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# ------------------------------------------------------------------ broker --

@dataclass
class Broker:
    port: int
    proc: subprocess.Popen
    log_path: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"


_topic_counter = itertools.count(1)


def start_broker(log_path: Path, port: int | None = None) -> Broker:
    """Starts Tansu (memory storage) on a free loopback port, or on `port`
    (a broker that comes back where it was: the chaos suite); stop it with
    stop_broker. Also used outside pytest (Tests/EndToEnd/soak.py)."""
    assert TANSU_BIN.exists(), f"Tansu broker binary not found at {TANSU_BIN}"
    port = port or free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(TANSU_BIN), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=subprocess_env())
    try:
        wait_for_port(port, 10.0, proc)
    except Exception:
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"Tansu did not start:\n{tail(log_path)}")
    return Broker(port=port, proc=proc, log_path=log_path)


def stop_broker(broker: Broker) -> None:
    broker.proc.terminate()
    try:
        broker.proc.wait(3)
    except subprocess.TimeoutExpired:
        broker.proc.kill()
        broker.proc.wait(5)


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    broker = start_broker(tmp_path_factory.mktemp("tansu") / "tansu.log")
    yield broker
    stop_broker(broker)


def make_topic(broker: Broker, base: str, partitions: int = 1) -> str:
    """Creates a new topic named after `base`, unique in the session."""
    base = "".join(c if c.isalnum() else "-" for c in base)[:40]
    name = f"{base}-{next(_topic_counter)}-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [str(TANSU_BIN), "topic", "create", name, "--partitions", str(partitions), "--broker", broker.url],
        capture_output=True, text=True, timeout=30, env=subprocess_env())
    assert result.returncode == 0, f"tansu topic create {name} failed: {result.stdout}{result.stderr}"
    return name


@pytest.fixture
def create_topic(broker, request):
    """create_topic(partitions=1, prefix=None) -> a new, uniquely named topic."""

    def create(partitions: int = 1, prefix: str | None = None) -> str:
        return make_topic(broker, prefix or request.node.name, partitions)

    return create


# ---------------------------------------------------------------- producer --

@dataclass(frozen=True)
class Produced:
    topic: str
    key: bytes | None
    value: bytes
    partition: int
    offset: int
    timestamp_ms: int


class KafkaProducer:
    """A confluent_kafka producer that records every delivery report."""

    def __init__(self, bootstrap: str):
        from confluent_kafka import Producer

        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "acks": "all",
            # One request in flight per partition keeps the log in produce order.
            "max.in.flight.requests.per.connection": 1,
            "message.max.bytes": 8 * 1024 * 1024,
        })
        self.delivered: list[Produced] = []
        self.errors: list[str] = []

    def produce(self, topic: str, items, timeout: float = 30.0) -> list[Produced]:
        """Produces [(key, value), ...] (or (key, value, headers)) in order,
        flushes, and returns their delivery reports in produce order."""
        reports: dict[int, Produced] = {}
        errors: list[str] = []

        def on_delivery(index):
            def callback(err, msg):
                if err is not None:
                    errors.append(f"record {index}: {err}")
                    return
                ts_type, ts = msg.timestamp()
                reports[index] = Produced(
                    topic=msg.topic(), key=msg.key(), value=msg.value() or b"", partition=msg.partition(),
                    offset=msg.offset(), timestamp_ms=ts)
            return callback

        items = list(items)
        for index, (key, value, *headers) in enumerate(items):
            if isinstance(key, str):
                key = key.encode()
            while True:
                try:
                    self._producer.produce(topic, value=value, key=key, headers=headers[0] if headers else None,
                                           on_delivery=on_delivery(index))
                    break
                except BufferError:
                    self._producer.poll(0.05)
            self._producer.poll(0)
        remaining = self._producer.flush(timeout)
        assert remaining == 0, f"{remaining} records still unacknowledged after {timeout}s"
        assert not errors, f"delivery failed: {errors[:5]}"
        assert len(reports) == len(items)
        ordered = [reports[i] for i in range(len(items))]
        self.delivered.extend(ordered)
        return ordered

    def produce_one(self, topic: str, key, value: bytes) -> Produced:
        return self.produce(topic, [(key, value)])[0]


class SteadyProducer:
    """Produces one record per key every interval on a thread of its own
    (value "<key>:<n>"), keeping every delivery report: the ground truth of
    the SDKs' failover tests. `stop()` returns {key: [[partition, offset,
    value], ...]} in produce order."""

    def __init__(self, bootstrap: str, topic: str, keys: list[str], interval_ms: int = 20):
        self.producer = KafkaProducer(bootstrap)
        self.topic = topic
        self.keys = keys
        self.interval = interval_ms / 1000
        self.reports: dict[str, list[list]] = {key: [] for key in keys}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self.stopping.wait(self.interval):
            for report in self.producer.produce(self.topic, [(key, f"{key}:{n}".encode()) for key in self.keys]):
                self.reports[report.key.decode()].append([report.partition, report.offset, report.value.decode()])
            n += 1

    def stop(self) -> dict[str, list[list]]:
        self.stopping.set()
        self.thread.join(60)
        return self.reports


@pytest.fixture
def producer(broker):
    p = KafkaProducer(broker.bootstrap)
    yield p
    p._producer.flush(5)
    # Destroy the client now, while the broker is still up.
    del p._producer
    gc.collect()


# ----------------------------------------------------------------- gateway --

@dataclass
class Gateway:
    port: int
    config: dict
    config_path: Path
    log_path: Path
    proc: subprocess.Popen
    _log_file: object = field(repr=False, default=None)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.config['websocket']['path']}"

    @property
    def echo_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.config['echo']['path']}"

    @property
    def http_url(self) -> str:
        scheme = "https" if self.config["listen"].get("tls") else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def topics(self) -> list[str]:
        return self.config["source"]["options"]["topics"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)

    def send_signal(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Signals the gateway and waits for it; kills it after `timeout`."""
        self.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"gateway did not exit within {timeout}s of {sig!r}:\n{self.log_tail()}")
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None


def http_get(url: str, timeout: float = 2.0) -> tuple[int, dict, bytes]:
    """GET `url`; https:// without checking the certificate (the TLS tests
    check it themselves: this only asks a gateway how it is)."""
    import ssl

    context = ssl._create_unverified_context() if url.startswith("https://") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def base_config(port: int, brokers: str, topics: list[str]) -> dict:
    return {
        "listen": {"host": "127.0.0.1", "port": port},
        "event_loops": 2,
        "websocket": {
            "path": "/ws", "max_message_bytes": 65536, "max_output_bytes": 4194304, "max_header_bytes": 8192,
            "handshake_timeout_ms": 10000, "close_timeout_ms": 2000,
        },
        "echo": {"enabled": True, "path": "/echo", "max_message_bytes": 16778240},
        "console": {"enabled": True},
        "log_level": "info",
        "authorization": {"plugin": "allow-all"},
        "mapping": {"plugin": "topic-key"},
        "source": {"plugin": "kafka", "options": {"brokers": brokers, "topics": topics, "properties": {}}},
        # Stopped at once, as before draining existed: most tests leave clients
        # connected, which a drain would wait for. The drain tests turn it on.
        "drain": {"grace_period_ms": 0},
    }


class GatewayLauncher:
    """Starts gateway processes and stops them all at the end."""

    def __init__(self, broker: Broker, directory: Path):
        assert STREAMGATE_BIN.exists(), f"gateway binary not found at {STREAMGATE_BIN} (set STREAMGATE_BIN)"
        self.broker = broker
        self.directory = directory
        self.started: list[Gateway] = []
        self._counter = itertools.count(1)

    def start(self, topics: list[str], overrides: dict | None = None, wait_ready: bool = True) -> Gateway:
        n = next(self._counter)
        port = free_port()
        config = deep_merge(base_config(port, self.broker.bootstrap, list(topics)), overrides or {})
        port = config["listen"]["port"]               # an override may name the port (a restart on the same one)
        config_path = self.directory / f"gateway{n}.json"
        config_path.write_text(json.dumps(config, indent=2))
        log_path = self.directory / f"gateway{n}.log"
        log_file = open(log_path, "wb")
        proc = subprocess.Popen(
            [str(STREAMGATE_BIN), "serve", "--config", str(config_path)],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=subprocess_env())
        gw = Gateway(port=port, config=config, config_path=config_path, log_path=log_path, proc=proc,
                     _log_file=log_file)
        self.started.append(gw)
        if wait_ready:
            wait_ready_or_fail(gw)
        return gw

    def stop_all(self, print_logs: bool) -> None:
        problems = []
        for gw in self.started:
            try:
                gw.stop()
            except AssertionError as error:
                problems.append(str(error))
            try:
                assert_no_sanitizer_report(gw.log())
            except AssertionError as error:
                problems.append(f"{gw.log_path}: {error}")
            if print_logs:
                print(f"\n----- gateway log {gw.log_path} (last 60 lines) -----\n{gw.log_tail()}", file=sys.stdout)
        assert not problems, "\n".join(problems)


def wait_ready_or_fail(gw: Gateway, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        if gw.proc.poll() is not None:
            raise AssertionError(f"gateway exited with {gw.proc.returncode} during startup:\n{gw.log_tail()}")
        try:
            status, _, _ = http_get(gw.http_url + "/readyz", timeout=1.0)
        except OSError:
            status = None
        if status == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"gateway not ready after {timeout}s (last /readyz: {status}):\n{gw.log_tail()}")


@pytest.fixture
def gateway_factory(broker, tmp_path, request):
    """start(topics, overrides=None) -> a running, ready Gateway.

    The configuration is written to tmp_path; stdout and stderr go to a log
    file whose tail is printed at teardown if the test failed."""
    launcher = GatewayLauncher(broker, tmp_path)
    yield launcher.start
    launcher.stop_all(print_logs=_test_failed(request))


@pytest.fixture(scope="module")
def module_gateway_launcher(broker, tmp_path_factory):
    """A launcher whose gateways live for a whole module (see print_log_on_failure)."""
    launcher = GatewayLauncher(broker, tmp_path_factory.mktemp("gateways"))
    yield launcher
    launcher.stop_all(print_logs=False)


def print_log_on_failure(request, gw: Gateway) -> None:
    if _test_failed(request):
        print(f"\n----- gateway log {gw.log_path} (last 60 lines) -----\n{gw.log_tail()}", file=sys.stdout)


# ------------------------------------------------------- protocol helpers --

HEADER = struct.Struct(">BBHHQq")


@dataclass(frozen=True)
class Delivery:
    kind: int
    flags: int
    endpoint: str
    epoch: str
    seq: int
    timestamp_ms: int
    payload: bytes
    traceparent: str | None = None


def start_generator_gateway(tmp_path: Path, options: dict, overrides: dict | None = None
                            ) -> tuple[subprocess.Popen, int]:
    """A gateway on one loop fed by the `generator` source (no broker); its
    log, stop line included, goes to tmp_path / "generator.log"."""
    port = free_port()
    config = tmp_path / "generator.json"
    config.write_text(json.dumps(deep_merge({"listen": {"port": port}, "event_loops": 1,
                                             "source": {"plugin": "generator", "options": options}},
                                            overrides or {})))
    log = open(tmp_path / "generator.log", "wb")
    proc = subprocess.Popen([str(STREAMGATE_BIN), "serve", "--config", str(config)], stdout=log,
                            stderr=subprocess.STDOUT, env=subprocess_env())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError((tmp_path / "generator.log").read_text())


def parse_delivery(frame: bytes) -> Delivery:
    assert len(frame) >= HEADER.size, f"delivery frame of {len(frame)} bytes is shorter than its header"
    kind, flags, e_len, p_len, seq, ts = HEADER.unpack_from(frame)
    start = HEADER.size
    assert len(frame) >= start + e_len + p_len, "delivery frame shorter than its endpoint and epoch"
    endpoint = frame[start:start + e_len].decode("utf-8")
    epoch = frame[start + e_len:start + e_len + p_len].decode("ascii")
    rest = start + e_len + p_len
    traceparent = None
    if flags & 2:  # trace context: one length byte, then the traceparent
        t_len = frame[rest]
        traceparent = frame[rest + 1:rest + 1 + t_len].decode("ascii")
        rest += 1 + t_len
    return Delivery(kind, flags, endpoint, epoch, seq, ts, bytes(frame[rest:]), traceparent)


class WsClient:
    """A protocol v1 client on the websockets asyncio API. Binary frames are
    parsed as deliveries and kept in order; text frames are JSON replies."""

    def __init__(self, ws, name: str = "client"):
        self.ws = ws
        self.name = name
        self.deliveries: list[Delivery] = []
        self.texts: list[dict] = []
        self.welcome: dict = {}

    @classmethod
    async def connect(cls, url: str, name: str = "client") -> "WsClient":
        from websockets.asyncio.client import connect

        ws = await asyncio.wait_for(
            connect(url, max_size=None, open_timeout=5, close_timeout=2, ping_interval=None), 10)
        client = cls(ws, name)
        welcome = await client.next_text(5)
        assert welcome["type"] == "welcome" and welcome["protocol"] == "streamgate.v1", welcome
        client.welcome = welcome
        return client

    async def _recv(self, timeout: float):
        message = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(message, bytes):
            self.deliveries.append(parse_delivery(message))
            return None
        return json.loads(message)

    async def next_text(self, timeout: float = 5.0) -> dict:
        """The next text (control) frame; deliveries arriving first are kept."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no text frame within {timeout}s")
            reply = await self._recv(left)
            if reply is not None:
                self.texts.append(reply)
                return reply

    async def request(self, message, timeout: float = 5.0) -> dict:
        await self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))
        return await self.next_text(timeout)

    async def subscribe(self, endpoint: str, id=None) -> dict:
        return await self._control("subscribe", "subscribed", endpoint, id)

    async def unsubscribe(self, endpoint: str, id=None) -> dict:
        return await self._control("unsubscribe", "unsubscribed", endpoint, id)

    async def _control(self, kind: str, reply_type: str, endpoint: str, id) -> dict:
        """Sends a subscribe/unsubscribe and asserts the exact acknowledgement."""
        request = {"type": kind, "endpoint": endpoint}
        expected = {"type": reply_type, "endpoint": endpoint}
        if id is not None:
            request["id"] = expected["id"] = id
        reply = await self.request(request)
        assert reply == expected, f"{self.name}: {kind} {endpoint}: {reply}"
        return reply

    async def wait_deliveries(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Waits until at least `count` deliveries arrived (text frames that
        arrive meanwhile are kept in self.texts)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.deliveries) < count:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(
                    f"{self.name}: {len(self.deliveries)} of {count} deliveries after {timeout}s")
            reply = await self._recv(left)
            if reply is not None:
                self.texts.append(reply)
        return self.deliveries

    async def drain(self, grace: float) -> None:
        """Reads whatever else arrives within `grace` seconds."""
        deadline = asyncio.get_running_loop().time() + grace
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            try:
                reply = await self._recv(left)
            except (TimeoutError, asyncio.TimeoutError):
                return
            if reply is not None:
                self.texts.append(reply)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception:
            pass


async def assert_gateway_serves(gw: Gateway, topic: str, producer: KafkaProducer, timeout: float = 10.0) -> None:
    """A fresh client subscribes to a fresh key of `topic` and receives one
    produced message byte for byte."""
    key = f"probe/{uuid.uuid4().hex[:12]}"
    endpoint = f"/{topic}/{key}"
    client = await WsClient.connect(gw.ws_url, name="probe")
    try:
        await client.subscribe(endpoint, id="probe")
        payload = os.urandom(64) + b"probe"
        report = await asyncio.to_thread(producer.produce_one, topic, key, payload)
        [delivery] = await client.wait_deliveries(1, timeout)
        assert delivery.endpoint == endpoint
        assert delivery.payload == payload
        assert delivery.seq == report.offset
    finally:
        await client.close()


@pytest.fixture
def print_result(capsys):
    """Prints a result line to the terminal even though pytest captures output:
    the numbers a run measures (Autobahn counts, fan-out totals) belong in its log."""
    def emit(text: str) -> None:
        with capsys.disabled():
            print(text, flush=True)
    return emit
