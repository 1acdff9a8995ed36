"""Write pacing (websocket.max_write_delay_ms / min_write_delay_ms): a loop
that keeps up writes every message the turn it is published; a loop held to
a write delay, or saturated, writes each connection at most once per delay,
so several messages share one write — none lost, none reordered."""

from __future__ import annotations

import asyncio
import struct
import time

from conftest import SANITIZED, WsClient, start_generator_gateway


def stop_line(tmp_path) -> str:
    return [line for line in (tmp_path / "generator.log").read_text().splitlines() if " stopped" in line][-1]


async def receive_for(port: int, endpoint: str, seconds: float) -> tuple[list, list[float], list[int]]:
    """Deliveries of `endpoint` for `seconds`, with the monotonic arrival time
    of each and its latency in ns (arrival wall clock - the generator's send time)."""
    client = await WsClient.connect(f"ws://127.0.0.1:{port}/ws", name="pacing")
    await client.subscribe(endpoint)
    arrivals, latencies = [], []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            await client.wait_deliveries(len(client.deliveries) + 1, 2)
        except TimeoutError:
            break
        arrivals.append(time.monotonic())
        latencies.append(time.time_ns() - struct.unpack(">Q", client.deliveries[-1].payload[:8])[0])
    closing = time.monotonic()
    await client.close()
    assert time.monotonic() - closing < 3, "the close handshake is not held back"
    return client.deliveries, arrivals, latencies


def groups(arrivals: list[float], gap: float) -> list[list[float]]:
    """Arrivals split wherever `gap` seconds or more passed between two."""
    out = [[arrivals[0]]]
    for previous, now in zip(arrivals, arrivals[1:]):
        if now - previous >= gap:
            out.append([])
        out[-1].append(now)
    return out


def assert_in_order(deliveries, step: int) -> None:
    for previous, d in zip(deliveries, deliveries[1:]):
        assert d.seq == previous.seq + step, f"seq {previous.seq} then {d.seq}: lost or reordered"


def test_a_loop_that_keeps_up_writes_each_message_when_it_is_published(tmp_path):
    proc, port = start_generator_gateway(tmp_path, {"topic": "bench", "keys": 20, "rate_per_key": 50,
                                                    "payload_bytes": 64})
    try:
        deliveries, arrivals, latencies = asyncio.run(receive_for(port, "/bench/k7", 2.0))
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert len(deliveries) >= 80, len(deliveries)  # 50/s for 2 s
    assert_in_order(deliveries, 20)
    # One message per 20 ms: each arrives on its own.
    assert len(groups(arrivals, 0.008)) >= 0.9 * len(arrivals), "messages were held and arrived together"
    assert sorted(latencies)[len(latencies) // 2] < 50e6, "median latency under light load"
    assert "delayed_write_periods=0" in stop_line(tmp_path)


def test_a_fixed_write_delay_batches_each_connections_messages_without_loss(tmp_path):
    proc, port = start_generator_gateway(
        tmp_path, {"topic": "bench", "keys": 20, "rate_per_key": 50, "payload_bytes": 64},
        {"websocket": {"min_write_delay_ms": 300, "max_write_delay_ms": 0}})
    try:
        deliveries, arrivals, latencies = asyncio.run(receive_for(port, "/bench/k7", 3.2))
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert len(deliveries) >= 120, len(deliveries)  # 50/s for 3 s, the last batch perhaps still held
    assert_in_order(deliveries, 20)
    batches = groups(arrivals, 0.15)
    # A write every 300 ms: ~10 batches of ~15 messages instead of 150 single arrivals.
    assert 7 <= len(batches) <= 13, [len(b) for b in batches]
    assert sum(len(b) for b in batches[1:-1]) / max(1, len(batches) - 2) >= 10, [len(b) for b in batches]
    for previous, batch in zip(batches, batches[1:]):
        assert batch[0] - previous[-1] >= 0.2, "batches are a write delay apart"
    assert max(latencies) >= 200e6, "messages waited for their connection's next write"
    assert max(latencies) < 1500e6
    assert "delayed_write_periods=" in stop_line(tmp_path)
    assert "delayed_write_periods=0 " not in stop_line(tmp_path), stop_line(tmp_path)


def test_a_saturated_loop_delays_its_writes_and_still_delivers_everything_in_order(tmp_path):
    # A million records a second saturates one loop (the generator runs on it):
    # the loop starts holding writes, and the subscriber's messages come in batches.
    proc, port = start_generator_gateway(
        tmp_path, {"topic": "bench", "keys": 1000, "rate_per_key": 1000, "payload_bytes": 16},
        {"recovery": {"cache": {"max_total_bytes": 8 << 20}}})
    try:
        # A sanitizer build generates and fans out several times slower: give it longer.
        deliveries, arrivals, latencies = asyncio.run(receive_for(port, "/bench/k7", 12.0 if SANITIZED else 4.0))
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
    assert len(deliveries) >= 100, len(deliveries)
    assert_in_order(deliveries, 1000)
    assert len(groups(arrivals, 0.005)) < len(arrivals) / 2, "a saturated loop writes messages together"
    line = stop_line(tmp_path)
    periods = int(line.split("delayed_write_periods=")[1].split()[0])
    assert periods >= 1, line
