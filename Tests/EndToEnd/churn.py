"""Pieces shared by the failover-and-churn test (test_failover_churn.py) and
the soak (soak.py): a steady keyed producer that keeps every acknowledged
record, gateway nodes that can be killed, resumable multi-endpoint clients,
and a checker that holds every delivery against the producer's records,
byte for byte.

Why it is built this way:
- Payloads are a pure function of (key, counter) (`payload_for`), so the
  producer keeps only (partition, offset) -> (key, counter) and the expected
  bytes are regenerated: a 30-minute soak does not hold every payload.
- Deliveries are checked as they arrive (once the producer has the ack of
  their offset), so memory stays flat; what is checked is exactly "the
  concatenation of every connection's deliveries equals the key's records
  from the first one on, in offset order, each byte identical".
- Every anomaly keeps enough context (client, endpoint, node, connection,
  replayed or live) to tell where it came from; integrity findings are
  kept in full, the echoes of one cause (a crashed node's clients) only
  the first few of each kind.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import functools
import json
import random
import re
import signal
import threading
import time
from dataclasses import dataclass

from conftest import Gateway, parse_delivery

# ---------------------------------------------------------------- payloads --

HEADER_RE = re.compile(rb"^SG1 (\S+) (\d+) (\d+)\n")


@functools.lru_cache(maxsize=8192)
def payload_for(key: str, counter: int, sizes: str = "mixed") -> bytes:
    """The value produced as `key`'s `counter`-th record: a header naming
    both, then random bytes seeded by them. "mixed": mostly under 1.5 KB,
    one in ten 4-9 KiB (several TCP segments, several iovecs); a number:
    that many bytes each."""
    rng = random.Random(f"{key}/{counter}")
    if sizes.isdigit():
        length = int(sizes)
    else:
        length = rng.randint(4097, 9000) if rng.random() < 0.1 else rng.randint(0, 1500)
    header = b"SG1 %s %d %d\n" % (key.encode(), counter, length)
    return header + rng.randbytes(max(0, length - len(header)))


def describe_payload(payload: bytes) -> str:
    """What a payload says it is (for mismatch reports)."""
    m = HEADER_RE.match(payload[:200])
    if not m:
        return f"no SG1 header (starts {payload[:24]!r})"
    return f"header says key {m.group(1).decode(errors='replace')} #{int(m.group(2))} length {int(m.group(3))}"


def first_difference(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


# ---------------------------------------------------------------- producer --

class KeyedProducer:
    """Produces to `topic` from its own thread at a steady `rate` (records/s)
    over `keys` (chosen at random), and keeps every acknowledged record:
    (partition, offset) -> (key, counter), each key's offsets in order.
    With track=False it only counts (bulk traffic nobody checks).
    `linger_ms` is librdkafka's linger.ms: how long records wait to share a
    batch (the soak raises it: Tansu's fetches cost more with every batch a
    partition holds)."""

    def __init__(self, bootstrap: str, topic: str, keys: list[str], rate: float, seed: int = 1,
                 sizes: str = "mixed", track: bool = True, linger_ms: int = 5):
        from confluent_kafka import Producer

        self.topic, self.keys, self.rate, self.sizes, self.track = topic, list(keys), rate, sizes, track
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "linger.ms": linger_ms,
            "acks": "all",
            # Idempotent, one request in flight: a retry can neither duplicate
            # a record in the log nor reorder a partition.
            "enable.idempotence": True,
            "max.in.flight.requests.per.connection": 1,
            "message.max.bytes": 8 * 1024 * 1024,
        })
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"producer-{topic}", daemon=True)
        self.counters = {k: 0 for k in self.keys}
        self.records: dict[tuple[int, int], tuple[str, int]] = {}
        self.where: dict[tuple[str, int], tuple[int, int]] = {}   # (key, counter) -> (partition, offset)
        self.key_offsets: dict[str, list[int]] = collections.defaultdict(list)
        self.key_partition: dict[str, int] = {}
        self.acked_max: dict[int, int] = {}
        self.acked = 0
        self.acked_bytes = 0
        self.errors: list[str] = []

    def start(self) -> "KeyedProducer":
        self._thread.start()
        return self

    def _on_delivery(self, key: str, counter: int, size: int):
        def callback(err, msg):
            if err is not None:
                self.errors.append(f"{key}#{counter}: {err}")
                return
            p, o = msg.partition(), msg.offset()
            self.acked += 1
            self.acked_bytes += size
            if not self.track:
                return
            # Record first, high-water mark last: a reader that sees the mark
            # finds every record below it (one partition's acks come in order).
            self.records[(p, o)] = (key, counter)
            self.where[(key, counter)] = (p, o)
            bisect.insort(self.key_offsets[key], o)
            if self.key_partition.setdefault(key, p) != p:
                self.errors.append(f"key {key} in partitions {self.key_partition[key]} and {p}")
            self.acked_max[p] = max(self.acked_max.get(p, -1), o)
        return callback

    def _run(self) -> None:
        started = time.monotonic()
        sent = 0
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * self.rate) - sent
            for _ in range(max(0, due)):
                key = self._rng.choice(self.keys)
                counter = self.counters[key]
                self.counters[key] = counter + 1
                value = payload_for(key, counter, self.sizes)
                while True:
                    try:
                        self._producer.produce(self.topic, key=key.encode(), value=value,
                                               on_delivery=self._on_delivery(key, counter, len(value)))
                        break
                    except BufferError:
                        self._producer.poll(0.05)
                sent += 1
            self._producer.poll(0)
            time.sleep(0.01)

    def stop(self, timeout: float = 30.0) -> None:
        """Stops producing and waits for every acknowledgement."""
        self._stop.set()
        self._thread.join(timeout)
        left = self._producer.flush(timeout)
        if left:
            self.errors.append(f"{left} records unacknowledged after {timeout}s")

    def close(self) -> None:
        self._producer.flush(5)
        del self._producer

    def expected(self, partition: int, offset: int) -> tuple[str, int, bytes] | None:
        rec = self.records.get((partition, offset))
        if rec is None:
            return None
        return rec[0], rec[1], payload_for(rec[0], rec[1], self.sizes)

    def last_offsets(self) -> dict[str, int]:
        return {k: offs[-1] for k, offs in self.key_offsets.items() if offs}


def audit_log(bootstrap: str, producer: KeyedProducer, timeout: float = 60.0) -> list[str]:
    """Reads the whole topic with an independent consumer and compares it with
    the producer's acknowledgements: every acked record at its offset with its
    bytes, and nothing else (a record nobody acked would be a producer retry).
    This separates a broker or producer fault from a gateway one."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"audit-{time.time_ns()}",
                         "enable.auto.commit": False, "fetch.max.bytes": 8 << 20})
    ends = dict(producer.acked_max)
    consumer.assign([TopicPartition(producer.topic, p, 0) for p in ends])
    seen: dict[int, int] = {p: -1 for p in ends}
    matched = 0
    problems: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while any(seen[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 1.0):
                if msg.error():
                    continue
                p, o = msg.partition(), msg.offset()
                seen[p] = max(seen[p], o)
                if o > ends.get(p, -1):
                    continue
                exp = producer.expected(p, o)
                key = (msg.key() or b"").decode(errors="replace")
                if exp is None:
                    problems.append(f"log {p}/{o}: key {key} not acknowledged to the producer "
                                    f"({describe_payload(msg.value() or b'')})")
                elif (exp[0], exp[2]) != (key, msg.value() or b""):
                    problems.append(f"log {p}/{o}: differs from the producer's {exp[0]}#{exp[1]} "
                                    f"({describe_payload(msg.value() or b'')})")
                else:
                    matched += 1
        for p in ends:
            if seen[p] < ends[p]:
                problems.append(f"audit read partition {p} only to {seen[p]} of {ends[p]}")
        if matched != len(producer.records) and not problems:
            problems.append(f"the log holds {matched} of the {len(producer.records)} acknowledged records")
    finally:
        consumer.close()
    return problems


# ------------------------------------------------------------------- nodes --

@dataclass
class Node:
    """One gateway process under a name; `killed` marks connections lost to
    it as expected."""
    name: str
    gateway: Gateway
    killed: bool = False

    @property
    def ws_url(self) -> str:
        return self.gateway.ws_url

    @property
    def alive(self) -> bool:
        return not self.killed and self.gateway.proc.poll() is None

    @property
    def crashed(self) -> bool:
        """Exited without our kill (stopped nodes are not asked)."""
        return not self.killed and self.gateway.proc.poll() is not None

    def kill(self) -> None:
        self.killed = True
        self.gateway.proc.send_signal(signal.SIGKILL)
        self.gateway.proc.wait(10)


class NodeCrashed(Exception):
    pass


def check_nodes(nodes: list[Node]) -> None:
    """Raises NodeCrashed when a node died without our kill: the run stops
    early and reports instead of waiting on clients that cannot resume."""
    crashed = [f"{n.name} (exit {n.gateway.proc.returncode})" for n in nodes if n.crashed]
    if crashed:
        raise NodeCrashed(", ".join(crashed))


# Text a gateway must never log: sanitizer reports (STREAMGATE_BIN may be an
# ASan/UBSan build), the Swift runtime's crash report, and glibc's aborts on
# a corrupted heap ("malloc(): unsorted double linked list corrupted").
CRASH_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "Program crashed", "Fatal error",
                 "malloc(): ", "free(): ", "double free")


def log_problems(name: str, text: str) -> list[str]:
    out = []
    for marker in CRASH_MARKERS:
        i = text.find(marker)
        if i >= 0:
            excerpt = text[max(0, i - 300):i + 3000]
            # The Swift backtrace lists every thread: show the one that crashed.
            crashed = re.search(r"\n(Thread \d+ .*crashed:\n(?:.*\n){1,8})", text)
            if crashed:
                excerpt += "\n...\n" + crashed.group(1)
            out.append(f"{name}: log contains {marker!r}:\n{excerpt}")
    return out


def stop_line_stats(text: str) -> dict[str, int]:
    """The counters of the gateway's last "stopped" line (Sources/Host/Gateway.swift)."""
    lines = [line for line in text.splitlines() if " stopped" in line and "messages_delivered=" in line]
    if not lines:
        return {}
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}


# ----------------------------------------------------------------- checker --

@dataclass
class Tag:
    """Where a delivery came from."""
    node: str
    conn: int
    phase: str          # "live", or "replay" (between a resume's subscribed and replayed)

    def __str__(self) -> str:
        return f"{self.node}#{self.conn}/{self.phase}"


class Stream:
    """One (client, endpoint): its deliveries over all its connections,
    checked in arrival order against the key's records."""

    def __init__(self, ledger: "Ledger", client: str, endpoint: str, key: str):
        self.ledger, self.client, self.endpoint, self.key = ledger, client, endpoint, key
        self.pending: collections.deque = collections.deque()
        self.position: tuple[str, int] | None = None     # last delivery processed (what a client resumes from)
        self.last_seq: int | None = None                  # last checked delivery in the key's order
        self.index = -1                                   # its index in the key's offsets
        self.start: int | None = None
        self.received = 0
        self.recent: collections.deque = collections.deque(maxlen=64)   # (seq, tag) for duplicate context
        # Protocol state, set by the client's reader.
        self.accepting = False
        self.phase = "live"

    def add(self, seq: int, epoch: str, payload: bytes, tag: Tag) -> None:
        self.received += 1
        self.position = (epoch, seq)
        self.pending.append((seq, epoch, payload, tag))
        self.settle()

    def settle(self, final: bool = False) -> None:
        producer = self.ledger.producer
        while self.pending:
            seq, epoch, payload, tag = self.pending[0]
            partition = producer.key_partition.get(self.key)
            if not final and (partition is None or seq > producer.acked_max.get(partition, -1)):
                return          # its record (or the ones before it) not acknowledged yet
            self.pending.popleft()
            self.ledger.check(self, seq, epoch, payload, tag, partition)

    def owed(self) -> int:
        offsets = self.ledger.producer.key_offsets.get(self.key, [])
        return 0 if self.start is None else len(offsets) - bisect.bisect_left(offsets, self.start)


class Ledger:
    """Every stream's check, and every anomaly found, with its context."""

    # Details kept per kind: data-integrity findings in full, the rest (often
    # the echo of one cause, like a crashed node's clients) only the first few.
    INTEGRITY = ("mismatch", "duplicate", "reorder", "foreign", "epoch")

    def __init__(self, producer: KeyedProducer, max_details: int = 8, max_integrity_details: int = 200):
        self.producer = producer
        self.streams: list[Stream] = []
        self.epochs: dict[str, int] = {}                  # epoch -> partition
        self.max_details, self.max_integrity_details = max_details, max_integrity_details
        self.checked = 0
        self.bytes_checked = 0
        self.counts = collections.Counter()               # anomaly kind -> count
        self.details: list[str] = []                      # the first anomalies of each kind, in full
        self.resumes = collections.Counter()              # "cache"/"kafka" -> replayed markers
        self.replayed_messages = collections.Counter()    # source -> messages replayed
        self.resume_nodes = collections.Counter()         # (node, source) -> markers
        self.connections = 0

    def stream(self, client: str, endpoint: str, key: str) -> Stream:
        s = Stream(self, client, endpoint, key)
        self.streams.append(s)
        return s

    def problem(self, kind: str, text: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= (self.max_integrity_details if kind in self.INTEGRITY else self.max_details):
            self.details.append(f"{kind}: {text}")

    def check(self, s: Stream, seq: int, epoch: str, payload: bytes, tag: Tag, key_partition: int | None) -> None:
        where = f"{s.client} {s.endpoint} seq {seq} epoch {epoch} via {tag}"
        if key_partition is None:
            self.problem("foreign", f"{where}: no record of key {s.key} was acknowledged")
            return
        # The epoch names the partition: the first time it is seen, by the key's.
        partition = self.epochs.setdefault(epoch, key_partition)
        if partition != key_partition:
            self.problem("epoch", f"{where}: epoch already seen for partition {partition}, key is in {key_partition}")
        offsets = self.producer.key_offsets[s.key]
        i = bisect.bisect_left(offsets, seq)
        of_key = i < len(offsets) and offsets[i] == seq
        if not of_key:
            self.problem("foreign", f"{where}: offset {seq} holds no record of key {s.key} "
                                    f"(the log has {self._at(partition, seq)})")
        elif s.last_seq is None:
            s.start, s.last_seq, s.index = seq, seq, i
        elif seq <= s.last_seq:
            earlier = [str(t) for q, t in s.recent if q == seq]
            kind = "duplicate" if earlier or seq == s.last_seq else "reorder"
            self.problem(kind, f"{where}: after seq {s.last_seq}; earlier copy via {earlier or '?'}")
        else:
            if i > s.index + 1:
                lost = offsets[s.index + 1:i]
                self.problem("lost", f"{where}: {len(lost)} records of the key skipped before it: {lost[:8]}"
                                     f"{' ...' if len(lost) > 8 else ''} (previous delivery seq {s.last_seq})")
            s.last_seq, s.index = seq, i
        s.recent.append((seq, tag))
        self.checked += 1
        expected = self.producer.expected(partition, seq)
        if expected is None:
            return                                   # already reported as foreign
        _, _, want = expected
        self.bytes_checked += len(payload)
        if payload != want:
            at = first_difference(payload, want)
            self.problem("mismatch", f"{where}: payload differs from the producer's {expected[0]}#{expected[1]} at "
                                     f"{partition}/{seq}: expected {len(want)} bytes, got {len(payload)}, first "
                                     f"difference at byte {at} (expected {want[at:at + 8].hex() or 'end'}, got "
                                     f"{payload[at:at + 8].hex() or 'end'}); got {describe_payload(payload)}"
                                     f"{self._locate(payload)}")

    def _at(self, partition: int, offset: int) -> str:
        rec = self.producer.records.get((partition, offset))
        return f"{rec[0]}#{rec[1]}" if rec else "no acknowledged record"

    def _locate(self, payload: bytes) -> str:
        """Where the delivered bytes really belong, when they are a whole record."""
        m = HEADER_RE.match(payload[:200])
        if not m:
            return ""
        key, counter = m.group(1).decode(errors="replace"), int(m.group(2))
        at = self.producer.where.get((key, counter))
        if at is None:
            return "; no such record was acknowledged"
        same = payload == payload_for(key, counter, self.producer.sizes)
        return f"; those are {'exactly' if same else 'a corrupted copy of'} the record at {at[0]}/{at[1]}"

    def finish(self) -> None:
        """After the producer stopped and clients caught up: check what is
        left, then every record a stream is still owed is lost."""
        for s in self.streams:
            s.settle(final=True)
            offsets = self.producer.key_offsets.get(s.key, [])
            if s.start is None:
                if offsets:
                    self.problem("lost", f"{s.client} {s.endpoint}: no delivery at all ({len(offsets)} records)")
                continue
            tail = offsets[s.index + 1:]
            if tail:
                self.problem("lost", f"{s.client} {s.endpoint}: the last {len(tail)} records never arrived "
                                     f"(last delivery seq {s.last_seq}, key's last offset {offsets[-1]})")

    def caught_up(self, last_offsets: dict[str, int]) -> bool:
        return all(s.position is not None and s.position[1] >= last_offsets.get(s.key, -1)
                   for s in self.streams)

    @property
    def ok(self) -> bool:
        return not self.counts

    def summary(self) -> dict:
        return {
            "streams": len(self.streams),
            "deliveries_checked": self.checked,
            "bytes_checked": self.bytes_checked,
            "owed": sum(s.owed() for s in self.streams),
            "received": sum(s.received for s in self.streams),
            "connections": self.connections,
            "resumes": dict(self.resumes),
            "replayed_messages": dict(self.replayed_messages),
            "resumes_by_node": {f"{n}/{src}": c for (n, src), c in sorted(self.resume_nodes.items())},
            "anomalies": dict(self.counts),
            "details": list(self.details),
        }


# ------------------------------------------------------------------ client --

class ConnectionLost(Exception):
    pass


class ResumableClient:
    """A protocol v1 client subscribed to several endpoints, that survives
    its connection: on a drop (ours, or its node's death) it reconnects to
    `home` and resumes every endpoint from its last (epoch, seq).

    One task (`run`) owns the connection and executes commands one at a
    time ("move" to a node, "resubscribe" an endpoint, "stop"); a reader task
    per connection feeds deliveries to the ledger and answers the waiting
    requests. Resumes run one at a time per connection: the gateway allows
    at most two reads from Kafka per connection, and frees a slot only after
    the replayed marker is queued, so two in flight could be refused."""

    def __init__(self, name: str, endpoints: dict[str, str], ledger: Ledger, home: Node, nodes: list[Node]):
        self.name = name
        self.nodes = nodes              # shared with the orchestrator: where to go when home is gone
        self.ledger = ledger
        self.streams = {ep: ledger.stream(name, ep, key) for ep, key in endpoints.items()}
        self.home = home
        self.node: Node | None = None
        self.ws = None
        self.serial = 0
        self._reader: asyncio.Task | None = None
        self._dropping = False
        self._ids = 0
        self._replies: dict[int, asyncio.Future] = {}
        self._outcomes: dict[str, asyncio.Future] = {}
        self._commands: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None
        self.busy = False
        self.gave_up = False            # no node to resume on: waits for a "move" or "stop"

    # -- commands (from the orchestrator) --

    def start(self) -> "ResumableClient":
        self.task = asyncio.create_task(self.run(), name=self.name)
        return self

    def move(self, node: "Node | asyncio.Future", offline: float = 0.0) -> None:
        """Drop the connection (transport abort), stay away `offline` s, resume on
        `node` (or on the node a future yields: the client stays away until then)."""
        self._commands.put_nowait(("move", (node, offline)))

    def resubscribe(self, endpoint: str, offline: float = 0.0) -> None:
        """Unsubscribe `endpoint`, wait, subscribe again from its last position."""
        self._commands.put_nowait(("resubscribe", (endpoint, offline)))

    async def stop(self) -> None:
        self._commands.put_nowait(("stop", None))
        if self.task:
            try:
                await asyncio.wait_for(self.task, 30)
            except Exception as error:
                self.ledger.problem("connection", f"{self.name} did not stop cleanly: {error!r}")

    @property
    def endpoints(self) -> list[str]:
        return list(self.streams)

    # -- the connection owner --

    async def run(self) -> None:
        while True:
            if self.ws is None and not self.gave_up:
                await self._connect_until_done()
            kind, arg = await self._commands.get()
            self.busy = True
            try:
                if kind == "stop":
                    await self._drop(abort=False)
                    return
                if kind == "lost":
                    if arg == self.serial:
                        await self._drop()
                elif kind == "move":
                    node, offline = arg
                    await self._drop()
                    await asyncio.sleep(offline)
                    if isinstance(node, asyncio.Future):
                        node = await node
                    self.home = node
                    self.gave_up = False
                elif kind == "resubscribe":
                    await self._resubscribe(*arg)
            except Exception as error:   # ConnectionLost, websockets' ConnectionClosed, OSError, timeouts
                await self._drop()           # the next turn reconnects and resumes
                self._note_loss(f"during {kind}: {error!r}")
            finally:
                self.busy = False

    def _note_loss(self, text: str) -> None:
        if self.node is not None and not self.node.killed:
            self.ledger.problem("connection", f"{self.name} on {self.node.name}: {text}")

    async def _connect_until_done(self, timeout: float = 30.0) -> None:
        """Connects and resumes, retrying; gives up (an anomaly) after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.home.alive:
                # Killed after a move there was decided, or crashed (then
                # nobody names another home): take any live node.
                alive = [n for n in self.nodes if n.alive]
                if alive:
                    self.home = random.choice(alive)
            try:
                await self._connect(self.home)
                return
            except Exception as error:
                await self._drop()
                if time.monotonic() > deadline:
                    self.ledger.problem("connection", f"{self.name}: gave up resuming on {self.home.name}: {error!r}")
                    self.gave_up = True
                    return
                if self.home.alive:
                    self._note_loss(f"resume on {self.home.name} failed: {error!r}")
                await asyncio.sleep(0.2)

    async def _connect(self, node: Node) -> None:
        from websockets.asyncio.client import connect

        ws = await asyncio.wait_for(
            connect(node.ws_url, max_size=None, open_timeout=5, close_timeout=2, ping_interval=None), 10)
        try:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert welcome.get("type") == "welcome", welcome
        except BaseException:
            ws.transport.abort()
            raise
        self.ws, self.node = ws, node
        self.serial += 1
        self.ledger.connections += 1
        self._dropping = False
        self._reader = asyncio.create_task(self._read(ws, self.serial, node))
        for endpoint in self.streams:
            await self._subscribe(endpoint)

    async def _drop(self, abort: bool = True) -> None:
        """Ends the current connection (abort: no close handshake, as a lost
        network) and waits until its reader has processed its last frame, so
        the positions are final before any resume."""
        ws, reader = self.ws, self._reader
        self.ws, self._reader = None, None
        self._dropping = True
        if ws is not None:
            if abort:
                ws.transport.abort()
            else:
                try:
                    await asyncio.wait_for(ws.close(), 5)
                except Exception:
                    ws.transport.abort()
        if reader is not None:
            try:
                await asyncio.wait_for(reader, 10)
            except Exception:
                pass
        for s in self.streams.values():
            s.accepting = False

    async def _request(self, message: dict, timeout: float = 15.0) -> dict:
        if self.ws is None:
            raise ConnectionLost("not connected")
        self._ids += 1
        rid = message["id"] = self._ids
        future = asyncio.get_running_loop().create_future()
        self._replies[rid] = future
        await self.ws.send(json.dumps(message))
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._replies.pop(rid, None)

    async def _subscribe(self, endpoint: str, attempts: int = 3) -> None:
        """Subscribes, from the last position when there is one; waits for
        the resume's outcome. A refused resume is an anomaly; it is retried
        so that the rest of the run still checks something."""
        s = self.streams[endpoint]
        for _ in range(attempts):
            request = {"type": "subscribe", "endpoint": endpoint}
            outcome = None
            if s.position is not None:
                request["from"] = {"epoch": s.position[0], "seq": s.position[1]}
                outcome = asyncio.get_running_loop().create_future()
                self._outcomes[endpoint] = outcome
            reply = await self._request(request)
            if reply.get("type") != "subscribed":
                self._outcomes.pop(endpoint, None)
                self.ledger.problem("protocol", f"{self.name} {endpoint} on {self.node.name}: {reply}")
                await asyncio.sleep(0.5)
                continue
            if outcome is None:
                return
            try:
                result = await asyncio.wait_for(outcome, 30)
            finally:
                self._outcomes.pop(endpoint, None)
            if result.get("type") == "replayed":
                return
            if result.get("type") == "notice":
                return                          # stale_epoch: live delivery goes on (the notice is an anomaly)
            await asyncio.sleep(0.5)            # an error: not subscribed; resume again
        self.ledger.problem("protocol", f"{self.name} {endpoint}: no resume after {attempts} attempts")

    async def _resubscribe(self, endpoint: str, offline: float) -> None:
        s = self.streams[endpoint]
        if self.ws is None or not s.accepting:
            return
        reply = await self._request({"type": "unsubscribe", "endpoint": endpoint})
        if reply.get("type") != "unsubscribed":
            self.ledger.problem("protocol", f"{self.name} unsubscribe {endpoint}: {reply}")
        await asyncio.sleep(offline)
        await self._subscribe(endpoint)

    # -- the reader --

    async def _read(self, ws, serial: int, node: Node) -> None:
        closed = None
        try:
            while True:
                message = await ws.recv()
                if isinstance(message, bytes):
                    self._on_delivery(message, serial, node)
                else:
                    self._on_text(json.loads(message), serial, node)
        except Exception as error:
            closed = error
        finally:
            lost = ConnectionLost(f"connection {node.name}#{serial} ended: {closed!r}")
            for future in list(self._replies.values()) + list(self._outcomes.values()):
                if not future.done():
                    future.set_exception(lost)
                    future.exception()       # whoever waits gets it; unawaited, it is not "never retrieved"
            for s in self.streams.values():
                s.accepting = False
            if not self._dropping and serial == self.serial:
                # Not our doing: the node died (expected only if we killed it) or closed us.
                if not node.killed:
                    code = getattr(getattr(closed, "rcvd", None), "code", None)
                    self.ledger.problem("connection", f"{self.name}: {node.name}#{serial} closed by the gateway "
                                                      f"(close code {code}): {closed!r}")
                self._commands.put_nowait(("lost", serial))

    def _on_delivery(self, frame: bytes, serial: int, node: Node) -> None:
        d = parse_delivery(frame)
        s = self.streams.get(d.endpoint)
        if s is None:
            self.ledger.problem("protocol", f"{self.name}: delivery for {d.endpoint}, not subscribed by this client")
            return
        if not s.accepting:
            self.ledger.problem("protocol", f"{self.name} {d.endpoint} seq {d.seq} via {node.name}#{serial}: "
                                            f"delivery while not subscribed")
        if d.kind != 1 or d.flags != 0:
            self.ledger.problem("protocol", f"{self.name} {d.endpoint} seq {d.seq}: kind {d.kind} flags {d.flags}")
        s.add(d.seq, d.epoch, d.payload, Tag(node.name, serial, s.phase))

    def _on_text(self, text: dict, serial: int, node: Node) -> None:
        kind = text.get("type")
        endpoint = text.get("endpoint")
        s = self.streams.get(endpoint) if endpoint else None
        if kind == "subscribed" and s is not None:
            s.accepting = True
            s.phase = "replay" if endpoint in self._outcomes else "live"
        elif kind == "unsubscribed" and s is not None:
            s.accepting = False
            s.phase = "live"
        elif kind == "replayed" and s is not None:
            s.phase = "live"
            self.ledger.resumes[text["source"]] += 1
            self.ledger.replayed_messages[text["source"]] += text["count"]
            self.ledger.resume_nodes[(node.name, text["source"])] += 1
        elif kind == "notice":
            # gap / stale_epoch: legitimate protocol, but impossible here (Kafka keeps everything).
            self.ledger.problem("notice", f"{self.name} on {node.name}#{serial}: {text}")
            if text.get("code") == "stale_epoch" and s is not None:
                s.phase = "live"
        elif kind == "error":
            self.ledger.problem("resume" if "id" not in text else "protocol",
                                f"{self.name} on {node.name}#{serial}: {text}")
            if s is not None and "id" not in text:
                s.accepting = False
        # Resolve whoever waits for this frame: a reply by id, a resume outcome by endpoint.
        rid = text.get("id")
        if rid is not None and rid in self._replies:
            future = self._replies[rid]
            if not future.done():
                future.set_result(text)
        elif endpoint in self._outcomes and (kind == "replayed" or kind == "error"
                                             or (kind == "notice" and text.get("code") == "stale_epoch")):
            future = self._outcomes[endpoint]
            if not future.done():
                future.set_result(text)


# ------------------------------------------------------------ orchestration --

def assign_endpoints(topic: str, keys: list[str], clients: int, per_client: int, rng: random.Random
                     ) -> list[dict[str, str]]:
    """`per_client` distinct keys per client, every key used about equally."""
    out = []
    deck: list[str] = []
    for _ in range(clients):
        chosen: list[str] = []
        while len(chosen) < per_client:
            if not deck:
                deck = list(keys)
                rng.shuffle(deck)
            k = deck.pop()
            if k not in chosen:
                chosen.append(k)
        out.append({f"/{topic}/{k}": k for k in chosen})
    return out


async def churn(clients: list[ResumableClient], nodes: list[Node], seconds: float, rng: random.Random,
                every: float = 0.1, move_share: float = 0.5, long_away_share: float = 0.0,
                long_away: tuple[float, float] = (2.0, 4.0)) -> int:
    """For `seconds`: every `every` s one client either drops its connection
    and resumes on a random live node after up to 0.6 s away (`long_away`
    seconds for `long_away_share` of them: older than a small cache), or unsubscribes
    one endpoint and resubscribes from its position after up to 0.3 s.
    Returns the number of events."""
    events = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [n for n in nodes if n.alive]
        idle = [c for c in clients if not c.busy and c._commands.empty()]
        if alive and idle:
            c = rng.choice(idle)
            if rng.random() < move_share:
                away = rng.uniform(*long_away) if rng.random() < long_away_share else rng.uniform(0, 0.6)
                c.move(rng.choice(alive), offline=away)
            else:
                c.resubscribe(rng.choice(c.endpoints), offline=rng.uniform(0, 0.3))
            events += 1
        await asyncio.sleep(every)
    return events


def park(clients: list[ResumableClient], rng: random.Random) -> asyncio.Future:
    """The clients drop their connections now and resume on the node the
    returned future is given: started after they left, that node must read
    what they missed from Kafka (its cache begins at its start)."""
    ready = asyncio.get_running_loop().create_future()
    for c in clients:
        c.move(ready, offline=rng.uniform(0, 0.3))
    return ready


def evacuate(clients: list[ResumableClient], dying: Node, targets: list[Node], rng: random.Random) -> int:
    """Before `dying` is killed: its clients' reconnects go to `targets`."""
    moved = 0
    for c in clients:
        if c.home is dying:
            c.home = rng.choice(targets)
            moved += 1
    return moved


async def wait_caught_up(ledger: Ledger, last_offsets: dict[str, int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ledger.caught_up(last_offsets):
            return True
        await asyncio.sleep(0.2)
    return ledger.caught_up(last_offsets)


async def settle_periodically(ledger: Ledger, every: float = 1.0) -> None:
    """Checks deliveries that arrived before their record's acknowledgement."""
    while True:
        await asyncio.sleep(every)
        for s in ledger.streams:
            s.settle()


def format_summary(summary: dict) -> str:
    lines = [f"streams {summary['streams']}, deliveries checked {summary['deliveries_checked']} "
             f"({summary['bytes_checked'] / 2**20:.1f} MiB of payload), owed {summary['owed']}, "
             f"received {summary['received']}, connections {summary['connections']}",
             f"resumes by source {summary['resumes']} (messages replayed {summary['replayed_messages']}), "
             f"by node {summary['resumes_by_node']}",
             f"anomalies {summary['anomalies'] or 'none'}"]
    lines += [f"  {d}" for d in summary["details"]]
    return "\n".join(lines)
