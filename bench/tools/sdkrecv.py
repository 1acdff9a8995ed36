"""Receives a gateway's messages on N connections in one asyncio process,
through the Python SDK (`--mode sdk`) or a bare websockets client that only
subscribes and reads the delivery header (`--mode raw`), so that the SDK's
own cost per message is known (scripts/bench, scenario `sdk`).

Prints READY when every connection is subscribed, waits for GO on stdin,
then measures `--warmup` + `--duration` seconds and prints one JSON line:
messages received in the window, the process's CPU seconds in it, and the
latency percentiles from each message's record timestamp (ms resolution).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk" / "python"))

from streamgate import Client  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

HEADER = struct.Struct(">BBHHQq")


class Window:
    def __init__(self) -> None:
        self.measuring = False
        self.received = 0
        self.latencies_ms: list[float] = []

    def record(self, timestamp_ms: int) -> None:
        if self.measuring:
            self.received += 1
            if self.received % 16 == 0:  # a sample keeps the bookkeeping off the measurement
                self.latencies_ms.append(time.time() * 1000 - timestamp_ms)


async def raw_connection(url: str, endpoint: str, window: Window, ready: asyncio.Event, counter: list) -> None:
    async with connect(url, max_size=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "endpoint": endpoint, "id": 1}))
        async for frame in ws:
            if isinstance(frame, bytes):
                _, _, _, _, _, timestamp = HEADER.unpack_from(frame)
                window.record(timestamp)
            elif '"subscribed"' in frame:
                counter[0] += 1
                if counter[0] == counter[1]:
                    ready.set()


async def sdk_connection(url: str, endpoint: str, window: Window, ready: asyncio.Event, counter: list) -> None:
    client = Client(url)
    await client.connect()
    subscription = client.subscribe(endpoint)

    def subscribed(_reply: dict) -> None:
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()

    subscription.on("subscribed", subscribed)
    async for message in subscription:
        window.record(message.timestamp)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["sdk", "raw"], required=True)
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--target", default="/bench/k%d")
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--duration", type=float, default=6)
    args = parser.parse_args()
    window, ready, counter = Window(), asyncio.Event(), [0, args.connections]
    connection = sdk_connection if args.mode == "sdk" else raw_connection
    tasks = [asyncio.create_task(connection(args.url, args.target % (i % args.endpoints), window, ready, counter))
             for i in range(args.connections)]
    await asyncio.wait_for(ready.wait(), 120)
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.sleep(args.warmup)
    window.measuring, cpu0 = True, cpu_seconds()
    await asyncio.sleep(args.duration)
    window.measuring, cpu1 = False, cpu_seconds()
    latencies = sorted(window.latencies_ms)
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) if latencies else None  # noqa: E731
    print(json.dumps({"mode": args.mode, "connections": args.connections, "received": window.received,
                      "cpu_seconds": round(cpu1 - cpu0, 3),
                      "us_per_message": round((cpu1 - cpu0) / window.received * 1e6, 2) if window.received else None,
                      "p50_ms": pick(0.5), "p99_ms": pick(0.99)}), flush=True)
    for task in tasks:
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
