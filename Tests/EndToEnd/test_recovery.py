"""Guaranteed delivery (docs/recovery.md) against the real broker: a client
that loses its connection — or its gateway node — resumes from its last
(epoch, seq) on the same or another node and receives every message it
missed, in order, exactly once, while the producer keeps producing. Each
test compares what the client received with the producer's own record of
what Kafka acknowledged."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import SANITIZED, TANSU_BIN, KafkaProducer, WsClient, run_async, subprocess_env

RATE = 200            # records/s produced, all keys together
WATCHED_SHARE = 4     # one record in four is for the watched key


class SteadyProducer:
    """Produces to `topic` from a thread at `rate` records/s, the watched key
    interleaved with noise keys, and keeps every acknowledged record."""

    def __init__(self, bootstrap: str, topic: str, key: str, rate: int = RATE):
        self.producer = KafkaProducer(bootstrap)
        self.topic, self.key, self.rate = topic, key, rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.count = 0

    def _run(self) -> None:
        batch = max(1, self.rate // 20)
        while not self._stop.is_set():
            started = time.monotonic()
            items = []
            for _ in range(batch):
                key = self.key if self.count % WATCHED_SHARE == 0 else f"noise-{self.count % 7}"
                items.append((key, f"{self.count}:".encode() + os.urandom(24)))
                self.count += 1
            self.producer.produce(self.topic, items)
            time.sleep(max(0.0, 0.05 - (time.monotonic() - started)))

    def start(self) -> "SteadyProducer":
        self._thread.start()
        return self

    def stop(self) -> list:
        """Stops and returns the watched key's records, in offset order."""
        self._stop.set()
        self._thread.join(30)
        records = [p for p in self.producer.delivered if p.key == self.key.encode()]
        self.producer._producer.flush(5)
        return sorted(records, key=lambda p: p.offset)


async def subscribe(client: WsClient, endpoint: str, resume=None, snapshot: bool | None = None) -> dict:
    request = {"type": "subscribe", "endpoint": endpoint}
    if resume is not None:
        request["from"] = {"epoch": resume[0], "seq": resume[1]}
    if snapshot is not None:
        request["snapshot"] = snapshot
    reply = await client.request(request)
    assert reply == {"type": "subscribed", "endpoint": endpoint}, reply
    return reply


async def next_text_of(client: WsClient, kind: str, timeout: float = 15.0) -> dict:
    """The next text frame of type `kind` (others are kept in client.texts)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"{client.name}: no {kind!r} within {timeout}s; texts {client.texts}"
        text = await client.next_text(left)
        if text.get("type") == kind:
            return text


async def receive_until(client: WsClient, last_offset: int, timeout: float = 20.0) -> None:
    """Reads until a delivery with seq >= last_offset arrived."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not client.deliveries or client.deliveries[-1].seq < last_offset:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, (f"{client.name}: last seq {client.deliveries[-1].seq if client.deliveries else None}, "
                          f"waiting for {last_offset}")
        await client.wait_deliveries(len(client.deliveries) + 1, left)


def abort(client: WsClient) -> None:
    """Drops the connection without a close handshake, as a lost network would."""
    client.ws.transport.abort()


def assert_exactly_once(received: list, produced: list, since_seq: int) -> None:
    """`received` (deliveries over every connection, in arrival order) must be
    exactly the produced records with offset >= since_seq, in order."""
    expected = [(p.offset, p.value) for p in produced if p.offset >= since_seq]
    got = [(d.seq, d.payload) for d in received]
    seqs = [s for s, _ in got]
    assert len(seqs) == len(set(seqs)), f"duplicates: {[s for s in seqs if seqs.count(s) > 1][:10]}"
    assert seqs == sorted(seqs), "out of order"
    missing = sorted(set(o for o, _ in expected) - set(seqs))
    assert not missing, f"missing {len(missing)} messages, first {missing[:10]}"
    assert got == expected


async def drop_and_resume(url: str, endpoint: str, feed: SteadyProducer, received_first: int, offline: float):
    """A client receives `received_first` messages, loses its connection,
    stays away `offline` seconds while `feed` goes on, then resumes from its
    last processed position and reads on until the feed's last record.
    Returns (deliveries before, deliveries after, the replayed reply, the
    feed's records of the key)."""
    first = await WsClient.connect(url, name="before")
    await subscribe(first, endpoint)
    await first.wait_deliveries(received_first, 15)
    last = first.deliveries[-1]
    abort(first)
    await asyncio.sleep(offline)
    second = await WsClient.connect(url, name="after")
    await subscribe(second, endpoint, resume=(last.epoch, last.seq))
    marker = await next_text_of(second, "replayed")
    await asyncio.sleep(1.0)                          # live traffic after the join
    produced = await asyncio.to_thread(feed.stop)
    await receive_until(second, produced[-1].offset)
    await second.close()
    return first.deliveries[: first.deliveries.index(last) + 1], second.deliveries, marker, produced


def test_resume_on_the_same_node_while_messages_keep_flowing(gateway_factory, create_topic, broker, print_result):
    topic = create_topic(partitions=2)
    gw = gateway_factory([topic])
    endpoint = f"/{topic}/watched"
    feed = SteadyProducer(broker.bootstrap, topic, "watched").start()

    # ~50 messages of the key are missed while the client is away.
    body = drop_and_resume(gw.ws_url, endpoint, feed, received_first=20, offline=1.0)
    before, after, marker, produced = run_async(body, 90)
    assert marker["source"] == "cache" and marker["count"] >= 20, marker
    assert_exactly_once(before + after, produced, before[0].seq)
    print_result(f"resume on the same node: {len(before)} before, {marker['count']} replayed from the cache, "
                 f"{len(after) - marker['count']} live after; every message exactly once, in order")


def test_resume_on_another_node_after_kill_9(gateway_factory, create_topic, broker, print_result):
    topic = create_topic(partitions=2)
    node_a = gateway_factory([topic])
    node_b = gateway_factory([topic])
    endpoint = f"/{topic}/watched"
    feed = SteadyProducer(broker.bootstrap, topic, "watched").start()

    async def body():
        client = await WsClient.connect(node_a.ws_url, name="on-a")
        await subscribe(client, endpoint)
        await client.wait_deliveries(20, 15)
        node_a.proc.send_signal(signal.SIGKILL)       # the node dies; the producer goes on
        try:
            await client.drain(2.0)                   # whatever reached the client before the crash
        except Exception:
            pass
        last = client.deliveries[-1]
        await asyncio.sleep(0.5)
        moved = await WsClient.connect(node_b.ws_url, name="on-b")
        await subscribe(moved, endpoint, resume=(last.epoch, last.seq))
        marker = await next_text_of(moved, "replayed")
        await asyncio.sleep(1.0)
        produced = await asyncio.to_thread(feed.stop)
        await receive_until(moved, produced[-1].offset)
        await moved.close()
        return list(client.deliveries), moved.deliveries, marker, produced

    before, after, marker, produced = run_async(body(), 90)
    assert node_a.proc.wait(5) == -signal.SIGKILL
    assert marker["count"] >= 1, marker
    assert_exactly_once(before + after, produced, before[0].seq)
    print_result(f"kill -9 of node A: {len(before)} received on A, {marker['count']} replayed on B "
                 f"({marker['source']}), then live; no loss, no duplicate, no reorder")


@pytest.mark.parametrize("cached", [5, 0], ids=["5-cached", "no-cache"])
def test_resume_older_than_the_cache_is_read_from_kafka(gateway_factory, create_topic, broker, print_result, cached):
    """With a steady publish rate the cache moves on while Kafka is read: the
    read goes on until it reaches what the cache covers (with no cache at
    all: the live edge), then joins live traffic."""
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic], {"recovery": {"cache": {"max_messages": cached}}})
    endpoint = f"/{topic}/watched"
    feed = SteadyProducer(broker.bootstrap, topic, "watched").start()

    # ~75 missed: far more than the 5 cached.
    body = drop_and_resume(gw.ws_url, endpoint, feed, received_first=10, offline=1.5)
    before, after, marker, produced = run_async(body, 90)
    assert marker["source"] == "kafka" and marker["count"] > 5, marker
    assert_exactly_once(before + after, produced, before[0].seq)
    print_result(f"resume older than the cache ({cached} per endpoint): {marker['count']} replayed from Kafka, then "
                 f"live; exactly once, in order")


def test_a_cold_node_serves_a_resume_from_kafka(gateway_factory, create_topic, broker, producer):
    topic = create_topic(partitions=1)
    endpoint = f"/{topic}/watched"
    node_a = gateway_factory([topic])

    async def receive_some():
        client = await WsClient.connect(node_a.ws_url, name="on-a")
        await subscribe(client, endpoint)
        await asyncio.to_thread(producer.produce, topic, [("watched", f"a{i}".encode()) for i in range(10)])
        await client.wait_deliveries(10, 15)
        await client.close()
        return client.deliveries

    seen = run_async(receive_some(), 30)
    node_a.stop()
    missed = producer.produce(topic, [("watched" if i % 2 else "other", f"m{i}".encode()) for i in range(30)])
    node_b = gateway_factory([topic])                 # starts at the end of the log: an empty cache

    async def resume():
        client = await WsClient.connect(node_b.ws_url, name="on-b")
        await subscribe(client, endpoint, resume=(seen[-1].epoch, seen[-1].seq))
        marker = await next_text_of(client, "replayed")
        await client.wait_deliveries(marker["count"], 10)
        live = await asyncio.to_thread(producer.produce_one, topic, "watched", b"live")
        await receive_until(client, live.offset)
        await client.close()
        return marker, client.deliveries

    marker, deliveries = run_async(resume(), 40)
    assert marker["source"] == "kafka"
    expected = [(p.offset, p.value) for p in producer.delivered if p.key == b"watched" and p.offset > seen[-1].seq]
    assert [(d.seq, d.payload) for d in deliveries] == expected
    assert marker["count"] == 15


def test_a_stale_epoch_is_told_and_delivery_goes_on_live(gateway_factory, create_topic, producer):
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic])
    endpoint = f"/{topic}/k"

    async def body():
        probe = await WsClient.connect(gw.ws_url, name="probe")
        await subscribe(probe, endpoint)
        produced = await asyncio.to_thread(producer.produce_one, topic, "k", b"second")
        [known] = await probe.wait_deliveries(1, 10)
        assert known.seq == produced.offset
        client = await WsClient.connect(gw.ws_url, name="stale")
        await subscribe(client, endpoint, resume=("0123456789abcdef", 3))
        notice = await next_text_of(client, "notice")
        live = await asyncio.to_thread(producer.produce_one, topic, "k", b"third")
        [delivery] = await client.wait_deliveries(1, 10)
        await client.close()
        await probe.close()
        return notice, known, delivery, live

    notice, known, delivery, live = run_async(body(), 40)
    assert notice["code"] == "stale_epoch" and notice["endpoint"] == endpoint
    assert notice["epoch"] == "0123456789abcdef"
    assert notice["current_epoch"] == known.epoch
    assert "epoch" in notice["message"]
    assert (delivery.seq, delivery.payload) == (live.offset, b"third")


def test_a_position_this_node_never_reaches_is_refused_explicitly(gateway_factory, create_topic, producer):
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic], {"recovery": {"replay": {"resume_wait_ms": 500}}})
    endpoint = f"/{topic}/k"

    async def body():
        client = await WsClient.connect(gw.ws_url, name="ahead")
        await subscribe(client, endpoint)
        produced = await asyncio.to_thread(producer.produce_one, topic, "k", b"x")
        [d] = await client.wait_deliveries(1, 10)
        await client.unsubscribe(endpoint)
        await subscribe(client, endpoint, resume=(d.epoch, d.seq + 1_000_000))
        error = await next_text_of(client, "error", 10)
        # The refused subscription is gone: a plain subscribe is accepted afresh.
        await subscribe(client, endpoint)
        await client.close()
        return error, produced

    error, _ = run_async(body(), 40)
    assert error["code"] == "resume_unavailable" and error["endpoint"] == endpoint
    assert "resume_wait_ms" in error["message"]


def test_snapshot_delivers_the_latest_message_first_then_live(gateway_factory, create_topic, producer):
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic])
    endpoint = f"/{topic}/score"

    async def body():
        watcher = await WsClient.connect(gw.ws_url, name="watcher")
        await subscribe(watcher, endpoint)
        reports = await asyncio.to_thread(producer.produce, topic, [("score", f"{i}-0".encode()) for i in range(3)])
        await watcher.wait_deliveries(3, 10)
        late = await WsClient.connect(gw.ws_url, name="late")
        await subscribe(late, endpoint, snapshot=True)
        [snapshot] = await late.wait_deliveries(1, 10)
        live = await asyncio.to_thread(producer.produce_one, topic, "score", b"3-0")
        await late.wait_deliveries(2, 10)
        await late.close()
        await watcher.close()
        return reports, late.deliveries, live

    reports, deliveries, live = run_async(body(), 40)
    snapshot, after = deliveries
    assert snapshot.flags & 1 == 1
    assert (snapshot.seq, snapshot.payload) == (reports[-1].offset, reports[-1].value)
    assert after.flags & 1 == 0
    assert (after.seq, after.payload) == (live.offset, b"3-0")


def test_a_live_subscription_is_told_the_position_live_delivery_starts_after(gateway_factory, create_topic, producer):
    """`live` (docs/protocol.md): the last offset of the endpoint's partition the
    node had consumed, after the snapshot and before any live delivery; none for
    an endpoint the node has nothing cached of."""
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic])
    endpoint = f"/{topic}/k"

    async def body():
        watcher = await WsClient.connect(gw.ws_url, name="watcher")
        await subscribe(watcher, endpoint)
        await subscribe(watcher, f"/{topic}/other")
        reports = await asyncio.to_thread(producer.produce, topic, [("k", b"0"), ("k", b"1"), ("other", b"x")])
        await watcher.wait_deliveries(3, 10)  # the node has consumed all three
        late = await WsClient.connect(gw.ws_url, name="late")
        await subscribe(late, endpoint, snapshot=True)
        live = await next_text_of(late, "live")
        deliveries_before_live = list(late.deliveries)
        fresh = await WsClient.connect(gw.ws_url, name="fresh")
        await subscribe(fresh, f"/{topic}/never-seen")
        after_never_seen = await fresh.request({"type": "ping", "id": "p"})
        produced = await asyncio.to_thread(producer.produce_one, topic, "k", b"2")
        await late.wait_deliveries(2, 10)
        for client in (watcher, late, fresh):
            await client.close()
        return reports, live, deliveries_before_live, after_never_seen, late.deliveries, produced

    reports, live, before, after_never_seen, deliveries, produced = run_async(body(), 40)
    snapshot, after = deliveries
    assert before == [snapshot] and snapshot.flags & 1 == 1, "the snapshot comes before `live`"
    assert (snapshot.seq, snapshot.payload) == (reports[1].offset, b"1")
    # The partition's last consumed offset (a record of another key), not the endpoint's.
    assert live == {"type": "live", "endpoint": endpoint, "epoch": snapshot.epoch, "seq": reports[2].offset}
    assert after_never_seen == {"type": "pong", "id": "p"}, "no `live` for an endpoint with nothing cached"
    assert (after.seq, after.payload) == (produced.offset, b"2") and after.seq > live["seq"]


def test_bad_resume_requests_get_clear_errors(gateway_factory, create_topic):
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic])
    endpoint = f"/{topic}/k"
    cases = [
        ({"from": {"seq": 3}}, "from.epoch"),
        ({"from": {"epoch": "e", "seq": 1.5}}, "from.seq"),
        ({"from": {"epoch": "e", "seq": -2}}, "from.seq"),
        ({"from": "yesterday"}, "from"),
        ({"snapshot": "yes"}, "snapshot"),
    ]

    async def body():
        client = await WsClient.connect(gw.ws_url, name="bad")
        replies = []
        for extra, _ in cases:
            replies.append(await client.request({"type": "subscribe", "endpoint": endpoint, "id": 7, **extra}))
        await subscribe(client, endpoint)              # the connection stays usable
        await client.close()
        return replies

    for (extra, field), reply in zip(cases, run_async(body(), 30)):
        assert reply["type"] == "error" and reply["code"] == "bad_request", (extra, reply)
        assert f'"{field}"' in reply["message"] and reply["id"] == 7, (extra, reply)


# ------------------------------------------------------------- generator --

def start_generator(gateway_factory, options: dict, recovery: dict):
    source = {"plugin": "generator", "options": {"brokers": None, "topics": None, "properties": None, **options}}
    return gateway_factory([], {"source": source, "recovery": recovery, "event_loops": 1})


def test_a_resume_older_than_the_cache_of_a_source_without_history_gets_a_gap_notice(gateway_factory):
    gw = start_generator(gateway_factory, {"topic": "gen", "keys": 2, "rate_per_key": 100, "payload_bytes": 32},
                         {"cache": {"max_messages": 3}})

    async def body():
        first = await WsClient.connect(gw.ws_url, name="before")
        await subscribe(first, "/gen/k1")
        [d] = (await first.wait_deliveries(1, 10))[:1]
        abort(first)
        await asyncio.sleep(0.5)                       # ~50 records of k1: only 3 cached
        second = await WsClient.connect(gw.ws_url, name="after")
        await subscribe(second, "/gen/k1", resume=(d.epoch, d.seq))
        gap = await next_text_of(second, "notice")
        marker = await next_text_of(second, "replayed")
        await second.wait_deliveries(marker["count"] + 20, 10)
        await second.close()
        return d, gap, marker, second.deliveries

    d, gap, marker, deliveries = run_async(body(), 40)
    assert gap["code"] == "gap" and gap["epoch"] == d.epoch and gap["from_seq"] == d.seq + 1
    assert gap["to_seq"] >= gap["from_seq"] and "no history" in gap["message"]
    assert 1 <= marker["count"] <= 3 and marker["source"] == "cache"
    seqs = [x.seq for x in deliveries]
    assert seqs == sorted(set(seqs)), "duplicates or reordering after the gap"
    assert seqs[0] > gap["to_seq"]
    # k1 is every other record of the partition: nothing after the gap is missing.
    assert all(b - a == 2 for a, b in zip(seqs, seqs[1:])), seqs[:20]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_the_cache_stays_under_its_global_cap_with_many_endpoints(gateway_factory, print_result):
    """2,000 endpoints x 2 records/s of 4 KiB for 5 s (~80 MB produced): with a
    4 MiB cap the cache holds at most 4 MiB, and the process grows by far
    less than the same run without a cap."""
    options = {"topic": "mem", "keys": 2000, "rate_per_key": 2, "payload_bytes": 4096}
    growth = {}
    cache_bytes = {}
    for name, cap in (("capped", 4 << 20), ("uncapped", 1 << 40)):
        gw = start_generator(gateway_factory, options, {"cache": {"max_total_bytes": cap, "max_messages": 1000,
                                                                  "max_bytes": 1 << 30}})
        time.sleep(0.5)
        start = rss_kib(gw.proc.pid)
        time.sleep(5)
        growth[name] = rss_kib(gw.proc.pid) - start
        assert gw.stop() == 0
        stopped = [line for line in gw.log().splitlines() if "cache_bytes=" in line]
        assert stopped, gw.log_tail()
        cache_bytes[name] = int(re.search(r"cache_bytes=(\d+)", stopped[-1]).group(1))
    assert cache_bytes["capped"] <= 4 << 20
    assert cache_bytes["uncapped"] > 40 << 20
    if not SANITIZED:
        # Under AddressSanitizer freed frames wait in its quarantine (up to
        # 256 MB): the process's size says nothing about the cache there.
        assert growth["capped"] * 1024 < 16 << 20, growth
        assert growth["capped"] * 4 < growth["uncapped"], growth
    print_result(f"cache cap 4 MiB, 2,000 endpoints: cache {cache_bytes['capped'] / 2**20:.1f} MiB, RSS +"
                 f"{growth['capped'] / 1024:.1f} MiB (uncapped: cache {cache_bytes['uncapped'] / 2**20:.1f} MiB, "
                 f"RSS +{growth['uncapped'] / 1024:.1f} MiB)")


def test_a_recreated_topic_has_a_new_epoch_and_old_positions_are_told_stale(gateway_factory, create_topic, broker,
                                                                              producer):
    from confluent_kafka.admin import AdminClient

    topic = create_topic(partitions=1)
    endpoint = f"/{topic}/k"
    first = gateway_factory([topic])

    async def receive_one(gw, payload: bytes):
        client = await WsClient.connect(gw.ws_url, name="reader")
        await subscribe(client, endpoint)
        await asyncio.to_thread(producer.produce_one, topic, "k", payload)
        [d] = await client.wait_deliveries(1, 10)
        await client.close()
        return d

    old = run_async(receive_one(first, b"old log"), 30)
    first.stop()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.delete_topics([topic])[topic].result(10)
    created = subprocess.run([str(TANSU_BIN), "topic", "create", topic, "--partitions", "1", "--broker", broker.url],
                             capture_output=True, text=True, timeout=30, env=subprocess_env())
    assert created.returncode == 0, created.stderr
    second = gateway_factory([topic])
    new = run_async(receive_one(second, b"new log"), 30)
    assert new.epoch != old.epoch, "same epoch for a deleted and re-created topic"

    async def resume():
        client = await WsClient.connect(second.ws_url, name="stale")
        await subscribe(client, endpoint, resume=(old.epoch, old.seq))
        notice = await next_text_of(client, "notice")
        await client.close()
        return notice

    notice = run_async(resume(), 30)
    assert notice["code"] == "stale_epoch" and notice["epoch"] == old.epoch
    assert notice["current_epoch"] == new.epoch


async def first_of_five_then_unsubscribed(client, producer, topic: str, keys: list[str]) -> dict:
    """Subscribes `client` to each key's endpoint, produces 5 records per
    key, waits for all of them, unsubscribes; returns each endpoint's first
    delivery (a resume from it owes the other 4)."""
    for key in keys:
        await subscribe(client, f"/{topic}/{key}")
    await asyncio.to_thread(producer.produce, topic, [(k, f"{k}-{i}".encode()) for i in range(5) for k in keys])
    await client.wait_deliveries(5 * len(keys), 10)
    first = {d.endpoint: d for d in reversed(client.deliveries)}
    for key in keys:
        await client.unsubscribe(f"/{topic}/{key}")
    return first


async def send_resume(client, delivery) -> None:
    """Sends a subscribe resuming after `delivery`, without waiting for the reply."""
    await client.ws.send(json.dumps({"type": "subscribe", "endpoint": delivery.endpoint,
                                     "from": {"epoch": delivery.epoch, "seq": delivery.seq}}))


def test_one_connection_cannot_run_more_than_two_replays_at_once(gateway_factory, create_topic, producer):
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic], {"recovery": {"cache": {"max_messages": 0}}})   # every resume reads Kafka
    keys = ["a", "b", "c"]

    async def body():
        client = await WsClient.connect(gw.ws_url, name="greedy")
        first = await first_of_five_then_unsubscribed(client, producer, topic, keys)
        for key in keys:                                  # three resumes in one burst
            await send_resume(client, first[f"/{topic}/{key}"])
        outcomes = []
        while len(outcomes) < 3:
            text = await client.next_text(15)
            if text["type"] in ("replayed", "error"):
                outcomes.append(text)
        await client.close()
        return outcomes

    outcomes = run_async(body(), 40)
    replayed = [o for o in outcomes if o["type"] == "replayed"]
    refused = [o for o in outcomes if o["type"] == "error"]
    assert len(replayed) == 2 and all(o["source"] == "kafka" and o["count"] == 4 for o in replayed), outcomes
    assert len(refused) == 1 and refused[0]["code"] == "replay_failed", outcomes
    assert "already has 2 resumes" in refused[0]["message"]


def test_a_resume_sent_the_moment_another_ends_finds_its_slot_free(gateway_factory, create_topic, producer):
    """`replayed` (and `replay_failed`) invite the client to resume again:
    the connection's replay slot is given back before they are sent, so a
    resume sent as soon as one arrives is never refused for want of a slot
    (it was, while the finished read was still closing its Kafka consumer)."""
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic], {"recovery": {"cache": {"max_messages": 0}}})   # every resume reads Kafka
    keys = [f"k{i}" for i in range(6)]

    async def body():
        client = await WsClient.connect(gw.ws_url, name="eager")
        first = await first_of_five_then_unsubscribed(client, producer, topic, keys)
        waiting = [first[f"/{topic}/{key}"] for key in keys]

        async def resume_next():
            await send_resume(client, waiting.pop(0))

        await resume_next()                       # both slots busy ...
        await resume_next()
        outcomes = []
        while len(outcomes) < len(keys):
            text = await client.next_text(15)
            if text["type"] in ("replayed", "error"):
                outcomes.append(text)
                if waiting:                       # ... and each outcome frees one: use it at once
                    await resume_next()
        await client.close()
        return outcomes

    outcomes = run_async(body(), 60)
    assert [o["type"] for o in outcomes] == ["replayed"] * len(keys), outcomes
    assert all(o["source"] == "kafka" and o["count"] == 4 for o in outcomes), outcomes
    assert sorted(o["endpoint"] for o in outcomes) == sorted(f"/{topic}/{k}" for k in keys)


def test_a_replay_from_kafka_paces_itself(gateway_factory, create_topic, producer):
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic], {"recovery": {"cache": {"max_messages": 0},
                                                "replay": {"max_records_per_second": 100}}})
    endpoint = f"/{topic}/watched"

    async def body():
        client = await WsClient.connect(gw.ws_url, name="paced")
        await subscribe(client, endpoint)
        items = [("watched" if i % 4 == 0 else "noise", f"{i}".encode()) for i in range(200)]
        reports = await asyncio.to_thread(producer.produce, topic, items)
        await client.wait_deliveries(50, 10)
        first = client.deliveries[0]
        await client.unsubscribe(endpoint)
        started = time.monotonic()
        await subscribe(client, endpoint, resume=(first.epoch, first.seq))
        marker = await next_text_of(client, "replayed", 20)
        elapsed = time.monotonic() - started
        await client.close()
        return reports, first, marker, elapsed

    reports, first, marker, elapsed = run_async(body(), 40)
    assert marker["source"] == "kafka" and marker["count"] == 49, marker
    read = reports[-1].offset - first.seq          # records of the partition the replay read
    assert elapsed >= 0.8 * read / 100, f"{read} records at 100/s took {elapsed:.2f}s"
