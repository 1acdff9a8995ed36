"""A local Streamgate cluster for the SDKs' tests, driven over stdin/stdout.

Starts a Tansu broker, a topic with several partitions and N gateway nodes
(the same launcher as the end-to-end suite), prints one JSON line describing
them, then answers one JSON command per input line with one JSON line:

    {"cmd": "produce_start", "keys": ["a", "b"], "interval_ms": 20}
        a steady producer: every interval one record per key, value "<key>:<n>"
    {"cmd": "produce_stop"}  -> {"ok": true, "reports": {"<key>": [[partition, offset, value], ...]}}
        stops it; every record's delivery report, in produce order per key
    {"cmd": "produce", "key": "k", "value": "v"} -> {"ok": true, "partition": p, "offset": o}
    {"cmd": "kill", "node": 0}   kill -9 of that node
    {"cmd": "start", "node": 0}  starts it again on its port, answers once it is ready
    {"cmd": "drain", "node": 0}  SIGTERM: the node drains (tells its clients to move, waits for
                                 them up to drain.grace_period_ms) and exits; answers once it
                                 exited: {"ok": true, "exit_code": 0, "exited_after_ms": 812}
    {"cmd": "pause", "node": 0}  SIGSTOP: the node keeps its connections but answers nothing
    {"cmd": "resume", "node": 0} SIGCONT
    {"cmd": "quit"}              stops everything (also on end of input); the last line,
                                 {"ok": false, "error": ...}, names any sanitizer report
                                 in a gateway's log (scripts/test --sanitize)

Used by sdk/js/test (node --test) and meant for the other SDKs' failover
tests too: the cluster and the producer's ground truth live here, in one
place, and the SDK under test only connects, subscribes and compares.

    .venv/bin/python Tests/Cluster/cluster.py --nodes 2 --partitions 4 [--overrides '{"recovery": ...}']
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "EndToEnd"))

from conftest import (GatewayLauncher, KafkaProducer, SteadyProducer, assert_no_sanitizer_report,  # noqa: E402
                      make_topic, start_broker, stop_broker, wait_ready_or_fail)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--overrides", default="{}", help="JSON merged into every node's configuration")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="streamgate-cluster-"))
    broker = start_broker(directory / "tansu.log")
    launcher = GatewayLauncher(broker, directory)
    overrides = json.loads(args.overrides)
    steady: SteadyProducer | None = None
    single: KafkaProducer | None = None
    try:
        topic = make_topic(broker, "sdk", partitions=args.partitions)
        nodes = [launcher.start([topic], overrides) for _ in range(args.nodes)]
        ports = [gw.port for gw in nodes]
        print(json.dumps({"topic": topic, "broker": broker.bootstrap, "directory": str(directory),
                          "nodes": [{"url": gw.ws_url, "port": gw.port} for gw in nodes]}), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            command = json.loads(line)
            cmd = command["cmd"]
            answer: dict = {"ok": True}
            if cmd == "produce_start":
                steady = SteadyProducer(broker.bootstrap, topic, command["keys"], command.get("interval_ms", 20))
            elif cmd == "produce_stop":
                answer["reports"] = steady.stop() if steady else {}
                steady = None
            elif cmd == "produce":
                single = single or KafkaProducer(broker.bootstrap)
                report = single.produce_one(topic, command["key"], command["value"].encode())
                answer.update(partition=report.partition, offset=report.offset)
            elif cmd == "kill":
                gw = nodes[command["node"]]
                gw.proc.send_signal(signal.SIGKILL)
                gw.proc.wait(10)
            elif cmd == "drain":
                gw = nodes[command["node"]]
                began = time.monotonic()
                gw.proc.send_signal(signal.SIGTERM)
                exit_code = gw.proc.wait(command.get("timeout_s", 120))
                answer.update(exit_code=exit_code, exited_after_ms=round((time.monotonic() - began) * 1000))
            elif cmd in ("pause", "resume"):
                nodes[command["node"]].proc.send_signal(signal.SIGSTOP if cmd == "pause" else signal.SIGCONT)
            elif cmd == "start":
                i = command["node"]
                merged = {**overrides, "listen": {"host": "127.0.0.1", "port": ports[i]}}
                nodes[i] = launcher.start([topic], merged, wait_ready=False)
                wait_ready_or_fail(nodes[i])
            elif cmd == "quit":
                break
            else:
                answer = {"ok": False, "error": f"unknown command {cmd!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        if steady:
            steady.stop()
        for gw in launcher.started:
            if gw.proc.poll() is None:
                gw.proc.send_signal(signal.SIGCONT)  # a paused node could not act on SIGTERM
                gw.proc.send_signal(signal.SIGTERM)
                try:
                    # A node drains first (drain.grace_period_ms in the overrides, 0 by default).
                    gw.proc.wait(10 + gw.config.get("drain", {}).get("grace_period_ms", 0) / 1000)
                except Exception:
                    gw.proc.kill()
        stop_broker(broker)
    problems = []
    for gw in launcher.started:
        try:
            assert_no_sanitizer_report(gw.log())
        except AssertionError as error:
            problems.append(f"{gw.log_path}: {error}")
    print(json.dumps({"ok": not problems, "error": "\n".join(problems)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
