#!/usr/bin/env python3
"""benchconsume — the broker's own latency: a plain Kafka consumer, no gateway.

Reads every partition of a topic from its end (no consumer group, like the
gateway's `kafka` source) and times each record benchpub produced: payloads
start with the send time (8 bytes, big-endian ns since the Unix epoch). After
`--warmup` seconds it measures for `--duration` seconds and prints one JSON
object: received, latency percentiles and max in milliseconds, and its own
CPU seconds. Run beside the gateway on the same topic, it shows how much of
the end-to-end latency is the broker's (scripts/bench, reference shape).
"""
import argparse
import json
import math
import resource
import struct
import sys
import time

from confluent_kafka import OFFSET_END, Consumer, TopicPartition


def percentile(sorted_values: list, q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", default="bench")
    parser.add_argument("--warmup", type=float, default=4)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--wait-go", action="store_true",
                        help="print READY once positioned, then start the clock at a GO line on stdin")
    args = parser.parse_args()

    # The same fetch settings as the gateway's kafka source, so the two compare.
    consumer = Consumer({"bootstrap.servers": args.brokers, "group.id": "benchconsume",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 50, "enable.partition.eof": False})
    metadata = consumer.list_topics(args.topic, timeout=10)
    partitions = sorted(metadata.topics[args.topic].partitions)
    consumer.assign([TopicPartition(args.topic, p, OFFSET_END) for p in partitions])
    if args.wait_go:
        print("READY", flush=True)
        sys.stdin.readline()

    start = time.monotonic()
    measure_from, measure_until = start + args.warmup, start + args.warmup + args.duration
    latencies_ms: list[float] = []
    while (now := time.monotonic()) < measure_until:
        for record in consumer.consume(num_messages=10_000, timeout=0.05):
            if record.error() or len(record.value() or b"") < 8:
                continue
            if now >= measure_from:
                sent_ns = struct.unpack_from(">Q", record.value())[0]
                latencies_ms.append((time.time_ns() - sent_ns) / 1e6)
    consumer.close()
    latencies_ms.sort()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "received": len(latencies_ms), "window_seconds": args.duration,
        "p50_ms": round(percentile(latencies_ms, 0.5), 3), "p90_ms": round(percentile(latencies_ms, 0.9), 3),
        "p99_ms": round(percentile(latencies_ms, 0.99), 3), "p999_ms": round(percentile(latencies_ms, 0.999), 3),
        "max_ms": round(latencies_ms[-1], 3) if latencies_ms else 0.0,
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
    }), flush=True)


if __name__ == "__main__":
    main()
