"""Fan-out of Kafka records to WebSocket subscribers, end to end."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import defaultdict

import pytest
from websockets.exceptions import ConnectionClosed

from conftest import WsClient, assert_gateway_serves, free_port, http_get, run_async

GRACE_S = 0.5


def _payloads(rng: random.Random, count: int) -> list[bytes]:
    """Random binary payloads, with the edge cases first: every byte value,
    empty, and a few 64 KiB payloads."""
    special = [bytes(range(256)), b"", bytes(range(255, -1, -1)) * 4, b"\x00", b"\xff" * 3]
    special += [rng.randbytes(64 * 1024) for _ in range(4)]
    special += [b"\x00" * (64 * 1024)]
    rest = [rng.randbytes(rng.choice([1, 7, 100, 1000, 4096, rng.randrange(0, 3000)])) for _ in range(count - len(special))]
    payloads = special + rest
    rng.shuffle(payloads)
    return payloads


@pytest.mark.parametrize("io_uring", [True, False], ids=["io_uring", "sendmsg"])
def test_fanout_many_clients_many_endpoints(gateway_factory, create_topic, producer, print_result, io_uring):
    topic = create_topic(partitions=4)
    gw = gateway_factory([topic], {"io_uring": io_uring})
    keys = ["live/football", "live/tennis", "k3", "k4/deep/key", "k5", "k6"]
    silent_key = "live/nobody-produces-this"
    # client -> the keys it subscribes to (some clients have two endpoints).
    plan = {
        "c0": ["live/football"],
        "c1": ["live/tennis", "k3"],
        "c2": ["live/football", "k4/deep/key"],
        "c3": ["k5"],
        "c4": ["k6", "live/tennis"],
        "c5": ["k3", "k5"],
        "silent": [silent_key],
    }
    rng = random.Random(20251122)
    payloads = _payloads(rng, 300)
    items = [(rng.choice(keys), payload) for payload in payloads]

    async def body():
        clients = {}
        for name, subs in plan.items():
            client = await WsClient.connect(gw.ws_url, name=name)
            for i, key in enumerate(subs):
                await client.subscribe(f"/{topic}/{key}", id=i + 1)
            clients[name] = client

        started = time.monotonic()
        reports = await asyncio.to_thread(producer.produce, topic, items)
        partitions_of = defaultdict(set)
        for r in reports:
            partitions_of[r.key.decode()].add(r.partition)
        assert all(len(p) == 1 for p in partitions_of.values()), partitions_of
        by_key = defaultdict(list)
        for r in reports:
            by_key[r.key.decode()].append(r)

        expected = {name: [r for r in reports if r.key.decode() in subs] for name, subs in plan.items()}
        await asyncio.gather(*(c.wait_deliveries(len(expected[n]), 20) for n, c in clients.items()))
        elapsed = time.monotonic() - started
        await asyncio.gather(*(c.drain(GRACE_S) for c in clients.values()))

        total = 0
        for name, client in clients.items():
            got = client.deliveries
            assert client.texts[1 + len(plan[name]):] == [], f"{name}: unexpected text frames {client.texts}"
            assert len(got) == len(expected[name]), f"{name}: {len(got)} deliveries, expected {len(expected[name])}"
            per_endpoint = defaultdict(list)
            for d in got:
                assert d.kind == 1 and d.flags == 0, (name, d.kind, d.flags)
                per_endpoint[d.endpoint].append(d)
            assert set(per_endpoint) <= {f"/{topic}/{k}" for k in plan[name]}, (name, set(per_endpoint))
            for key in plan[name]:
                endpoint = f"/{topic}/{key}"
                want = by_key.get(key, [])
                have = per_endpoint.get(endpoint, [])
                assert [d.seq for d in have] == [r.offset for r in want], f"{name} {endpoint}: seq != offsets"
                assert all(a.seq < b.seq for a, b in zip(have, have[1:])), f"{name} {endpoint}: seq not increasing"
                for d, r in zip(have, want):
                    assert d.payload == r.value, f"{name} {endpoint} offset {r.offset}: payload differs"
                    assert d.timestamp_ms == r.timestamp_ms, (name, endpoint, d.timestamp_ms, r.timestamp_ms)
                epochs = {d.epoch for d in have}
                assert len(epochs) <= 1, f"{name} {endpoint}: epochs {epochs}"
                for epoch in epochs:
                    assert len(epoch) == 16 and all(c in "0123456789abcdefABCDEF" for c in epoch), epoch
            total += len(got)
        assert clients["silent"].deliveries == []

        # The same endpoint has the same epoch for every subscriber; endpoints
        # on the same partition share it, other partitions differ.
        epoch_of = {}
        for client in clients.values():
            for d in client.deliveries:
                assert epoch_of.setdefault(d.endpoint, d.epoch) == d.epoch
        epoch_of_partition = {}
        for key, (partition,) in partitions_of.items():
            epoch = epoch_of[f"/{topic}/{key}"]
            assert epoch_of_partition.setdefault(partition, epoch) == epoch
        assert len(set(epoch_of_partition.values())) == len(epoch_of_partition)

        sizes = [len(r.value) for r in reports]
        print_result(f"\nfanout summary ({'io_uring' if io_uring else 'sendmsg'}): {len(reports)} records ({sum(sizes)} bytes, sizes {min(sizes)}..{max(sizes)}) "
              f"on {len(keys)} keys / {len({p for ps in partitions_of.values() for p in ps})} partitions "
              f"-> {len(clients)} clients, {total} deliveries "
              f"({', '.join(f'{n}={len(c.deliveries)}' for n, c in clients.items())}) in {elapsed:.2f}s")
        for client in clients.values():
            await client.close()

    run_async(body(), 90)


def test_unsubscribe_stops_deliveries(gateway_factory, create_topic, producer):
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic])
    endpoint = f"/{topic}/news"

    async def body():
        leaver = await WsClient.connect(gw.ws_url, name="leaver")
        stayer = await WsClient.connect(gw.ws_url, name="stayer")
        await leaver.subscribe(endpoint, id=1)
        await leaver.subscribe(f"/{topic}/other", id=2)
        await stayer.subscribe(endpoint, id=1)

        first = await asyncio.to_thread(producer.produce_one, topic, "news", b"first")
        for client in (leaver, stayer):
            [d] = await client.wait_deliveries(1)
            assert (d.endpoint, d.payload, d.seq) == (endpoint, b"first", first.offset)

        await leaver.unsubscribe(endpoint, id=3)
        second = await asyncio.to_thread(
            producer.produce, topic, [("news", b"second"), ("other", b"still subscribed here")])
        await stayer.wait_deliveries(2)
        assert stayer.deliveries[1].payload == b"second"
        # The other endpoint's record comes after "second" in the same
        # partition, so once it arrived "second" would have arrived too.
        await leaver.wait_deliveries(2)
        await leaver.drain(GRACE_S)
        assert [(d.endpoint, d.payload) for d in leaver.deliveries] == [
            (endpoint, b"first"), (f"/{topic}/other", b"still subscribed here")]
        assert leaver.deliveries[1].seq == second[1].offset

        # Unsubscribing twice (or from something never subscribed) is harmless.
        await leaver.unsubscribe(endpoint, id=4)
        await leaver.unsubscribe(f"/{topic}/never", id=5)
        # Subscribing again resumes deliveries.
        await leaver.subscribe(endpoint, id=6)
        third = await asyncio.to_thread(producer.produce_one, topic, "news", b"third")
        await leaver.wait_deliveries(3)
        assert (leaver.deliveries[2].payload, leaver.deliveries[2].seq) == (b"third", third.offset)
        for client in (leaver, stayer):
            await client.close()

    run_async(body(), 60)


def test_records_without_key_are_not_delivered(gateway_factory, create_topic, producer):
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic])
    endpoint = f"/{topic}/k"

    async def body():
        client = await WsClient.connect(gw.ws_url, name="keyed")
        await client.subscribe(endpoint, id=1)
        items = [("k", b"a"), (None, b"no key"), ("k", b"b"), (b"", b"empty key"), ("k", b"c"), (None, b"")]
        reports = await asyncio.to_thread(producer.produce, topic, items)
        keyed = [r for r in reports if r.key == b"k"]
        # The final unkeyed record comes last in the partition; a marker after
        # it proves the gateway has read past it.
        marker = await asyncio.to_thread(producer.produce_one, topic, "k", b"marker")
        await client.wait_deliveries(len(keyed) + 1)
        await client.drain(GRACE_S)
        got = [(d.payload, d.seq) for d in client.deliveries]
        assert got == [(r.value, r.offset) for r in keyed] + [(b"marker", marker.offset)]
        # The offsets of the skipped records are gaps in seq.
        assert [d.seq for d in client.deliveries] == [0, 2, 4, 6]
        await client.close()

    run_async(body(), 60)


def test_subscribe_replies_and_errors(gateway_factory, create_topic, producer):
    topic = create_topic(partitions=2)
    other_topic = create_topic(partitions=1)  # exists in Kafka but is not served
    gw = gateway_factory([topic])

    async def body():
        client = await WsClient.connect(gw.ws_url, name="errors")

        async def expect_error(message, code, endpoint=None, id=None):
            reply = await client.request(message)
            assert reply["type"] == "error", reply
            assert reply["code"] == code, reply
            assert isinstance(reply["message"], str) and reply["message"], reply
            assert reply.get("endpoint") == endpoint, reply
            assert reply.get("id") == id, reply
            return reply

        await expect_error("this is not json", "bad_request")
        await expect_error("[1, 2, 3]", "bad_request")
        await expect_error('"a string"', "bad_request")
        await expect_error("{}", "bad_request")
        await expect_error({"type": "subscribe", "id": 7}, "bad_request", id=7)
        await expect_error({"type": "subscribe", "endpoint": 5, "id": 8}, "bad_request", id=8)
        await expect_error({"endpoint": f"/{topic}/x", "id": 9}, "bad_request", id=9)
        await expect_error({"type": "retract", "endpoint": f"/{topic}/x", "id": "p"}, "unknown_type", id="p")
        for i, bad in enumerate(["nope", "/scores", f"/{topic}", f"/{topic}/", "/bad topic/x", "", "//x"]):
            await expect_error({"type": "subscribe", "endpoint": bad, "id": 100 + i}, "invalid_endpoint",
                               endpoint=bad, id=100 + i)
        await expect_error({"type": "subscribe", "endpoint": f"/{other_topic}/k", "id": 200}, "unknown_topic",
                           endpoint=f"/{other_topic}/k", id=200)
        await expect_error({"type": "subscribe", "endpoint": "/scores/live/football", "id": 201}, "unknown_topic",
                           endpoint="/scores/live/football", id=201)
        await client.ws.send(b"\x01\x02binary")
        reply = await client.next_text()
        assert reply["type"] == "error" and reply["code"] == "unsupported", reply

        # The connection survived every error: it still subscribes and receives.
        assert await client.request({"type": "subscribe", "endpoint": f"/{topic}/live/football", "id": 1}) == {
            "type": "subscribed", "endpoint": f"/{topic}/live/football", "id": 1}
        assert await client.request({"type": "subscribe", "endpoint": f"/{topic}/k2", "id": "two"}) == {
            "type": "subscribed", "endpoint": f"/{topic}/k2", "id": "two"}
        assert await client.request({"type": "subscribe", "endpoint": f"/{topic}/k3"}) == {
            "type": "subscribed", "endpoint": f"/{topic}/k3"}
        # A repeated subscription is acknowledged but does not double deliveries.
        assert await client.request({"type": "subscribe", "endpoint": f"/{topic}/k2", "id": 3}) == {
            "type": "subscribed", "endpoint": f"/{topic}/k2", "id": 3}
        assert client.deliveries == []

        reports = await asyncio.to_thread(
            producer.produce, topic, [("live/football", b"goal"), ("k2", b"two"), ("k3", b"three")])
        await client.wait_deliveries(3)
        await client.drain(GRACE_S)
        got = sorted((d.endpoint, d.payload, d.seq) for d in client.deliveries)
        assert got == sorted((f"/{topic}/{r.key.decode()}", r.value, r.offset) for r in reports)
        await client.close()

    run_async(body(), 60)


def test_sigterm_closes_clients_with_1001(gateway_factory, create_topic, producer):
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic])

    async def body():
        clients = [await WsClient.connect(gw.ws_url, name=f"c{i}") for i in range(3)]
        for client in clients:
            await client.subscribe(f"/{topic}/k", id=1)
        await assert_gateway_serves(gw, topic, producer)
        gw.send_signal(signal.SIGTERM)
        for client in clients:
            try:
                await client.drain(5)
                await asyncio.wait_for(client.ws.recv(), 5)
            except ConnectionClosed as closed:
                assert closed.rcvd is not None, f"{client.name}: no close frame from the server"
                assert closed.rcvd.code == 1001, closed.rcvd
            else:
                raise AssertionError(f"{client.name}: still open after SIGTERM")

    run_async(body(), 30)
    assert gw.proc.wait(10) == 0, gw.log_tail()
    log = gw.log()
    assert "shutting down" in log and "stopped" in log, log


def test_readiness_console_and_prompt_shutdown(gateway_factory, create_topic):
    gw = gateway_factory([create_topic(partitions=2)])
    status, headers, body = http_get(gw.http_url + "/readyz")
    assert (status, body) == (200, b"ready\n")
    status, headers, body = http_get(gw.http_url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html"), (status, headers)
    assert b"<html" in body.lower()
    started = time.monotonic()
    assert gw.stop(signal.SIGINT) == 0, gw.log_tail()
    assert time.monotonic() - started < 3, f"SIGINT took {time.monotonic() - started:.1f}s"


def test_sigterm_before_source_ready_exits_promptly(gateway_factory):
    """While the Kafka source cannot reach its brokers, /readyz answers 503,
    and SIGTERM still stops the process promptly: the source's blocking
    librdkafka calls have short timeouts and check the stop flag between."""
    unreachable = f"127.0.0.1:{free_port()}"
    gw = gateway_factory(["scores"], {"source": {"options": {
        "brokers": unreachable, "properties": {"reconnect.backoff.ms": "1000", "reconnect.backoff.max.ms": "2000"}}}}, wait_ready=False)
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline and status is None:
        try:
            status, _, body = http_get(gw.http_url + "/readyz", timeout=1)
        except OSError:
            time.sleep(0.05)
    assert status == 503, status
    time.sleep(0.5)
    started = time.monotonic()
    code = gw.stop(signal.SIGTERM, timeout=20)
    elapsed = time.monotonic() - started
    assert code == 0, gw.log_tail()
    assert elapsed < 3, f"SIGTERM took {elapsed:.1f}s to stop a gateway whose source was not ready"


def test_delivery_bigger_than_output_limit_reaches_a_fast_client(gateway_factory, create_topic, producer):
    """A client that reads promptly and has nothing queued gets a record
    whose frame is bigger than websocket.max_output_bytes (here 64 KiB):
    the limit is documented as a bound on queued output for slow clients."""
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic], {"websocket": {"max_output_bytes": 65536}})

    async def body():
        client = await WsClient.connect(gw.ws_url, name="fast")
        await client.subscribe(f"/{topic}/big", id=1)
        payload = bytes(range(256)) * 260  # 66,560 bytes
        report = await asyncio.to_thread(producer.produce_one, topic, "big", payload)
        try:
            [d] = await client.wait_deliveries(1, 10)
        except ConnectionClosed as closed:
            raise AssertionError(f"fast client closed instead of served: {closed.rcvd}")
        assert (d.payload, d.seq) == (payload, report.offset)
        await client.close()

    run_async(body(), 30)


def test_burst_bigger_than_output_limit_reaches_a_fast_client(gateway_factory, create_topic, producer):
    """A client that reads as fast as it can is not closed with 1008 'slow
    consumer' when a burst of records bigger than websocket.max_output_bytes
    reaches its loop in one turn: near the limit the gateway writes to the
    socket before judging, so only bytes the client has not read count."""
    topic = create_topic(partitions=1)
    limit = 65536
    gw = gateway_factory([topic], {"websocket": {"max_output_bytes": limit}})
    payload_size, count = 2048, 400  # 800 KiB in one producer batch, every record far below the limit

    async def body():
        client = await WsClient.connect(gw.ws_url, name="fast")
        await client.subscribe(f"/{topic}/burst", id=1)
        items = [("burst", bytes([i % 256]) * payload_size) for i in range(count)]
        reports = await asyncio.to_thread(producer.produce, topic, items)
        try:
            await client.wait_deliveries(count, 20)
        except ConnectionClosed as closed:
            raise AssertionError(
                f"fast client closed after {len(client.deliveries)} of {count} deliveries: {closed.rcvd}")
        assert [(d.seq, d.payload) for d in client.deliveries] == [(r.offset, r.value) for r in reports]
        await client.close()

    run_async(body(), 60)
