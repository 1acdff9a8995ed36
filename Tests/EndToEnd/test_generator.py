"""The `generator` source (benchmarks' broker-free feed): records enter the
fan-out by the same path as Kafka records, at the configured rate, with the
documented payload layout (send time, per-key sequence), numbered like one
Kafka partition (seq = offset across all keys)."""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import time

from conftest import STREAMGATE_BIN, WsClient, start_generator_gateway, subprocess_env


def test_generator_feeds_subscribers_at_its_rate_with_the_documented_payload(tmp_path):
    proc, port = start_generator_gateway(
        tmp_path, {"topic": "bench", "keys": 20, "rate_per_key": 50, "payload_bytes": 100})

    async def body():
        client = await WsClient.connect(f"ws://127.0.0.1:{port}/ws", name="gen")
        await client.subscribe("/bench/k7", id=1)
        started = time.monotonic()
        deliveries = await client.wait_deliveries(50, 10)
        elapsed = time.monotonic() - started
        await client.close()
        return deliveries, elapsed

    try:
        deliveries, elapsed = asyncio.run(body())
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert elapsed < 2.5, f"50 records of one key at 50/s took {elapsed:.2f}s"
    now_ns = time.time_ns()
    for previous, d in zip(deliveries, deliveries[1:]):
        # 20 keys spread evenly: the partition's offsets advance by 20 between two records of one key.
        assert d.seq == previous.seq + 20
        assert struct.unpack(">Q", d.payload[8:16])[0] == struct.unpack(">Q", previous.payload[8:16])[0] + 1
    for d in deliveries:
        assert d.endpoint == "/bench/k7"
        assert len(d.payload) == 100
        sent_ns, sequence = struct.unpack(">QQ", d.payload[:16])
        assert d.seq == (sequence - 1) * 20 + 7  # key k7's records are offsets 7, 27, 47, ...
        assert 0 <= now_ns - sent_ns < 30e9
        assert abs(d.timestamp_ms - sent_ns // 1_000_000) <= 1


def test_generator_options_are_validated_by_name(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"source": {"plugin": "generator", "options": {"rate_per_key": -1}}}))
    result = subprocess.run([str(STREAMGATE_BIN), "check-config", str(config)], capture_output=True, text=True,
                            env=subprocess_env(), timeout=30)
    assert result.returncode == 2
    assert "source.options.rate_per_key" in result.stderr
