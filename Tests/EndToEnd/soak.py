"""The soak (scripts/soak; not run in CI): release gateway nodes under a
mixed load for --minutes, every delivery of the well-behaved clients
checked byte for byte, the gateways' memory watched.

Load, all against loopback:
- a steady keyed producer on a 3-partition topic (churn.KeyedProducer) and
  40 resumable clients x 4 endpoints that drop connections, resubscribe and
  move between nodes all the time (churn.churn), checked by churn.Ledger;
- a bulk topic: one endpoint receiving 64 KiB records at 1 MiB/s, read by
  slow readers (at half that) and never-reading subscribers (SO_RCVBUF 4
  KiB), so the slow-consumer cap (websocket.max_output_bytes: 2 s of bulk
  traffic) closes connections with output queued. Few, large records, a
  modest checked rate and both producers batching for --linger-ms on
  purpose: Tansu (memory storage, no retention) spends CPU on every fetch in
  proportion to the number of batches the partition holds — measured with
  3 followers and 100 records/s each in its own batch, its CPU went 21 %,
  38 %, 52 % over the first minute (flat 4 % with no follower; 11-13 % with
  100 ms batches). Records in batches of their own saturated it within 5-10
  minutes, and resumes read from Kafka then timed out (first record after
  5-18 s): the broker's limit, not the gateway's;
- abuse: garbage handshakes, unmasked and oversized frames, slow-loris
  handshakes, connections reset while the gateway writes to them;
- node B keeps a small cache (5 s: longer absences read Kafka); A and C hold
  writes 20 ms (websocket.min_write_delay_ms); every --kill-every seconds B or
  C (alternately) is killed with SIGKILL and restarted cold on its port, its
  clients resuming elsewhere. A is never killed: its memory is judged over
  the whole run.

Fails on: any crash (a node exiting other than by our kill, or not 0 on
SIGTERM at the end), crash or sanitizer text in a log, any anomaly of the
ledger (byte mismatch, duplicate, reorder, loss, refused resume, gap or
stale_epoch notice, unexpected close), a broker log that differs from the
producer's acknowledgements, or memory growth: for each gateway process with
at least 6 RSS samples after --warmup seconds, the highest sample of the last
third must not exceed 1.5x the highest of the first third.

The raw-socket load runs in threads with blocking sockets (raw_ws), the
clients in one asyncio loop.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

MIB = 1 << 20


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--out", type=Path, help="write the summary as JSON here")
    p.add_argument("--bin", required=True, help="the gateway binary (scripts/soak builds the release one)")
    p.add_argument("--dir", type=Path, help="logs and configurations (default: a new /tmp/streamgate-soak-*)")
    p.add_argument("--clients", type=int, default=40)
    p.add_argument("--keys", type=int, default=64)
    p.add_argument("--rate", type=float, default=100, help="checked records/s")
    p.add_argument("--bulk-rate", type=float, default=16, help="bulk records/s")
    p.add_argument("--bulk-bytes", type=int, default=65536, help="bytes per bulk record")
    p.add_argument("--linger-ms", type=int, default=200,
                   help="the producers' linger.ms (fewer, larger batches: Tansu's fetch cost grows with their number)")
    p.add_argument("--kill-every", type=float, help="seconds between kills (default: a third of the run, 40-180 s)")
    p.add_argument("--warmup", type=float, default=60, help="seconds of a process's life its RSS is not judged")
    p.add_argument("--seed", type=int, default=int(time.time()))
    return p.parse_args()


# ------------------------------------------------------------ the cluster --

class Cluster:
    """The named nodes; a node restarts on its own port with its own
    configuration; every incarnation's log is kept for the final scan."""

    def __init__(self, launcher, topics: list[str], configs: dict[str, dict]):
        from churn import Node

        self.launcher, self.topics, self.configs = launcher, topics, configs
        self.nodes = [Node(name, launcher.start(topics, cfg)) for name, cfg in configs.items()]
        self.incarnations = [(n.name, n.gateway) for n in self.nodes]

    def restart(self, node) -> None:
        cfg = dict(self.configs[node.name], listen={"port": node.gateway.port})
        node.gateway = self.launcher.start(self.topics, cfg)
        node.killed = False
        self.incarnations.append((node.name, node.gateway))


class RssSampler:
    """VmRSS of every live gateway process every `every` s, by incarnation."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.samples: dict[int, list[tuple[float, int]]] = collections.defaultdict(list)   # pid -> (t, KiB)
        self.names: dict[int, str] = {}
        self.births: dict[int, float] = {}

    def sample(self) -> None:
        now = time.monotonic()
        for node in self.cluster.nodes:
            pid = node.gateway.proc.pid
            try:
                with open(f"/proc/{pid}/status") as f:
                    kib = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            except (OSError, AttributeError):
                continue                       # between a kill and its restart
            self.names[pid] = node.name
            self.births.setdefault(pid, now)
            self.samples[pid].append((now, kib))

    def report(self, warmup: float) -> tuple[dict, list[str]]:
        per_node: dict[str, dict] = {}
        failures = []
        for pid, samples in self.samples.items():
            name = self.names[pid]
            values = [k for _, k in samples]
            entry = per_node.setdefault(name, {"min_mib": 1e9, "max_mib": 0, "processes": []})
            entry["min_mib"] = round(min(entry["min_mib"], min(values) / 1024), 1)
            entry["max_mib"] = round(max(entry["max_mib"], max(values) / 1024), 1)
            entry["last_mib"] = round(values[-1] / 1024, 1)
            judged = [k for t, k in samples if t - self.births[pid] >= warmup]
            verdict = "not judged (fewer than 6 samples after warm-up)"
            if len(judged) >= 6:
                third = len(judged) // 3
                first, last = max(judged[:third]), max(judged[-third:])
                verdict = f"first third max {first / 1024:.1f} MiB, last third max {last / 1024:.1f} MiB"
                if last > 1.5 * first:
                    failures.append(f"RSS of {name} (pid {pid}) grows: {verdict}")
                    verdict += ": GROWS"
            entry["processes"].append({"pid": pid, "samples": len(values), "rule": verdict})
        return per_node, failures


# ------------------------------------------------------- raw-socket load --

class RawLoad:
    """Threads with blocking sockets: slow readers, never-readers, abuse.
    Counts what happened; `unexpected` keeps the first few surprises."""

    def __init__(self, cluster: Cluster, bulk_endpoint: str, bulk_bytes_per_second: float, seed: int):
        self.cluster, self.bulk_endpoint = cluster, bulk_endpoint
        self.bulk_bytes_per_second = bulk_bytes_per_second
        self.stop = threading.Event()
        self.counts = collections.Counter()
        self.unexpected: list[str] = []
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.threads: list[threading.Thread] = []

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def surprise(self, text: str) -> None:
        with self.lock:
            self.counts["unexpected"] += 1
            if len(self.unexpected) < 20:
                self.unexpected.append(text)

    def port(self) -> tuple[int, object] | None:
        alive = [n for n in self.cluster.nodes if n.alive]
        if not alive:
            return None
        node = self.rng.choice(alive)
        return node.gateway.port, node

    def start(self) -> None:
        for i in range(3):
            self._spawn(self.slow_reader, f"slow-{i}")
            self._spawn(self.never_reader, f"never-{i}")
        for i in range(2):
            self._spawn(self.abuser, f"abuse-{i}")

    def _spawn(self, target, name: str) -> None:
        t = threading.Thread(target=self._guard, args=(target,), name=name, daemon=True)
        t.start()
        self.threads.append(t)

    def _guard(self, target) -> None:
        """Runs one worker's cycles; a cycle failing on a live node is a surprise."""
        while not self.stop.is_set():
            picked = self.port()
            if picked is None:
                self.stop.wait(0.5)
                continue
            port, node = picked
            try:
                target(port)
            except Exception as error:
                if node.alive and not self.stop.is_set():
                    self.surprise(f"{target.__name__} on {node.name}: {error!r}")
                else:
                    self.count("cycles_ended_by_a_kill")
                self.stop.wait(0.5)

    def _subscribe_bulk(self, port: int, rcvbuf: int):
        from raw_ws import RawWs

        ws = RawWs.open(port, rcvbuf=rcvbuf)
        ws.send_text(json.dumps({"type": "subscribe", "endpoint": self.bulk_endpoint}))
        return ws

    def slow_reader(self, port: int) -> None:
        """Reads the bulk endpoint at half its rate until the gateway cuts it."""
        rate = self.bulk_bytes_per_second / 2
        ws = self._subscribe_bulk(port, rcvbuf=64 * 1024)
        got, started = 0, time.monotonic()
        try:
            ws.sock.settimeout(1.0)
            while not self.stop.is_set():
                try:
                    chunk = ws.sock.recv(16384)
                except (socket.timeout, TimeoutError):
                    continue
                if not chunk:
                    self.count("slow_reader_cut")
                    break
                got += len(chunk)
                ahead = got / rate - (time.monotonic() - started)
                if ahead > 0:
                    self.stop.wait(ahead)
        except ConnectionResetError:
            self.count("slow_reader_cut")
        finally:
            self.count("slow_reader_bytes", got)
            ws.close()

    def never_reader(self, port: int, hold: float = 15.0) -> None:
        """Subscribes to the bulk endpoint and never reads; after `hold` s
        reads what is left: a connection the gateway cut ends within
        seconds (its FIN waits behind the unsent bytes, so the TCP state
        cannot tell), a live one keeps streaming."""
        from raw_ws import read_to_eof

        ws = self._subscribe_bulk(port, rcvbuf=4096)
        try:
            self.stop.wait(hold)
            _, closed = read_to_eof(ws.sock, 3.0)
            self.count("never_reader_cut" if closed else "never_reader_still_open")
        finally:
            ws.close()

    def abuser(self, port: int) -> None:
        kind = self.rng.choice(["garbage", "unmasked", "oversized", "slow_loris", "reset_mid_write"])
        ok, what = getattr(self, "abuse_" + kind)(port)
        self.count(f"abuse_{kind}")
        if not ok:
            self.surprise(f"abuse {kind} on port {port}: {what}")
        self.stop.wait(self.rng.uniform(0.1, 0.5))

    def abuse_garbage(self, port: int):
        from raw_ws import http_exchange

        response, _ = http_exchange(port, os.urandom(self.rng.randint(1, 300)) + b"\r\n\r\n")
        return response.startswith(b"HTTP/1.1 4"), response[:60]          # 400 (or 431, 405...)

    def abuse_unmasked(self, port: int):
        from raw_ws import RawWs, client_frame

        ws = RawWs.open(port)
        try:
            ws.send(client_frame(0x1, b'{"type": "subscribe"}', masked=False))
            _, code = ws.read_until_close()
            return code == 1002, f"close code {code}"
        finally:
            ws.close()

    def abuse_oversized(self, port: int):
        from raw_ws import RawWs, client_frame

        ws = RawWs.open(port)
        try:
            ws.send(client_frame(0x2, b"", declared_length=8 * MIB))     # header only, far over 64 KiB
            _, code = ws.read_until_close()
            return code == 1009, f"close code {code}"
        finally:
            ws.close()

    def abuse_slow_loris(self, port: int, limit: float = 8.0):
        """A request head sent a line a second: dropped after the handshake timeout (3 s here)."""
        from raw_ws import raw_connect

        sock = raw_connect(port)
        started = time.monotonic()
        try:
            sock.sendall(b"GET /ws HTTP/1.1\r\n")
            sock.settimeout(1.0)
            while time.monotonic() - started < limit:
                try:
                    if sock.recv(4096) == b"":
                        return True, "cut"
                except (socket.timeout, TimeoutError):
                    pass
                except ConnectionResetError:
                    return True, "cut"
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    return True, "cut"
            return False, f"still open after {limit} s"
        finally:
            sock.close()

    def abuse_reset_mid_write(self, port: int):
        """Subscribes to the bulk endpoint, reads a little, then resets the
        connection while the gateway has output queued for it."""
        ws = self._subscribe_bulk(port, rcvbuf=16384)
        want = self.rng.randint(16 * 1024, 256 * 1024)
        got = 0
        ws.sock.settimeout(5)
        while got < want:
            chunk = ws.sock.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.close()
        return got > 0, f"{got} bytes before the reset"


# ---------------------------------------------------------------- the run --

def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (the broker's load is
    printed with the progress: when Tansu saturates, resumes read from
    Kafka time out, and the log should say why)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(args, cluster: Cluster, producer, bulk, ledger, topic: str, raw: RawLoad, rss: RssSampler,
              events: dict, broker_pid: int) -> bool:
    from churn import (ResumableClient, assign_endpoints, churn, evacuate, log_problems, park, settle_periodically,
                       wait_caught_up)

    rng = random.Random(args.seed)
    nodes = cluster.nodes
    keys = producer.keys
    duration = args.minutes * 60
    kill_every = args.kill_every or min(180.0, max(40.0, duration / 3))
    clients = [ResumableClient(f"c{i:02d}", eps, ledger, home=nodes[i % len(nodes)], nodes=nodes).start()
               for i, eps in enumerate(assign_endpoints(topic, keys, args.clients, 4, rng))]
    background = [asyncio.create_task(settle_periodically(ledger))]

    async def sample_rss():
        while True:
            rss.sample()
            await asyncio.sleep(10)

    async def watch_for_crashes():
        """A node that exits without our kill is a crash: record its log, restart it."""
        while True:
            await asyncio.sleep(1)
            for node in nodes:
                if node.crashed:
                    log = node.gateway.log()
                    events["crashes"].append({"node": node.name, "exit": node.gateway.proc.returncode,
                                              "log": str(node.gateway.log_path),
                                              "excerpt": (log_problems(node.name, log) or [log[-3000:]])[0][:6000]})
                    print(f"[soak] CRASH of {node.name} (exit {node.gateway.proc.returncode}), restarting", flush=True)
                    await asyncio.to_thread(cluster.restart, node)

    async def kill_and_restart():
        victims = itertools.cycle([n for n in nodes if n.name != "A"])
        while True:
            await asyncio.sleep(kill_every)
            node = next(victims)
            if not node.alive:
                continue
            evacuate(clients, node, [n for n in nodes if n is not node and n.alive], rng)
            node.kill()
            events["kills"].append({"node": node.name, "at_s": round(time.monotonic() - started, 1),
                                    "exit": node.gateway.proc.returncode})
            print(f"[soak] {time.monotonic() - started:6.0f}s kill -9 {node.name}", flush=True)
            await asyncio.sleep(2)                       # its clients resume elsewhere meanwhile
            # A quarter of the clients leave now and resume on the restarted
            # (cold) node: what they missed is read from Kafka.
            ready = park(rng.sample([c for c in clients if not c.busy], len(clients) // 4), rng)
            await asyncio.sleep(1)
            try:
                await asyncio.to_thread(cluster.restart, node)
            finally:                                     # a failed restart must not strand them
                ready.set_result(node if node.alive else rng.choice([n for n in nodes if n.alive]))

    async def progress():
        broker_cpu = process_cpu_seconds(broker_pid)
        while True:
            await asyncio.sleep(30)
            s = ledger.summary()
            cpu, broker_cpu = broker_cpu, process_cpu_seconds(broker_pid)
            print(f"[soak] {time.monotonic() - started:6.0f}s checked {s['deliveries_checked']} deliveries "
                  f"({s['bytes_checked'] / MIB:.0f} MiB), resumes {s['resumes']}, anomalies {s['anomalies'] or 0}, "
                  f"broker CPU {100 * (broker_cpu - cpu) / 30:.0f} %, raw {dict(raw.counts)}", flush=True)

    started = time.monotonic()
    producer.start()
    bulk.start()
    raw.start()
    background += [asyncio.create_task(f()) for f in (sample_rss, watch_for_crashes, kill_and_restart, progress)]
    try:
        events["churn_events"] = await churn(clients, nodes, duration, rng, every=0.25, long_away_share=0.1,
                                             long_away=(6.0, 9.0))
    finally:
        for task in background[1:]:
            task.cancel()
        raw.stop.set()
        await asyncio.to_thread(lambda: [t.join(15) for t in raw.threads])
        await asyncio.to_thread(producer.stop)
        await asyncio.to_thread(bulk.stop)
        caught_up = await wait_caught_up(ledger, producer.last_offsets(), 60)
        for c in clients:
            await c.stop()
        background[0].cancel()
    return caught_up


def stop_on_signals() -> None:
    """SIGTERM or SIGINT (Ctrl-C) ends the run at once: every child process
    (the gateways, the broker) is killed and the soak exits 130/143 without
    a summary, so a soak stopped early leaves nothing running. (Unwinding
    the asyncio run and its threads instead can take minutes, or hang.)"""
    def stop(signum, frame):
        me = str(os.getpid())
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                if parent == me:
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, IndexError, ValueError):
                pass
        print(f"\n[soak] stopped by signal {signum}: gateways and broker killed, no summary", flush=True)
        os._exit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def main() -> int:
    args = parse_args()
    stop_on_signals()
    os.environ["STREAMGATE_BIN"] = str(Path(args.bin).resolve())   # read by conftest at import
    sys.path.insert(0, str(HERE))
    from churn import KeyedProducer, Ledger, audit_log, format_summary, log_problems, stop_line_stats
    from conftest import GatewayLauncher, make_topic, start_broker, stop_broker

    workdir = args.dir or Path(f"/tmp/streamgate-soak-{time.strftime('%Y%m%d-%H%M%S')}")
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"[soak] {args.minutes} min, gateway {os.environ['STREAMGATE_BIN']}, seed {args.seed}, logs in {workdir}",
          flush=True)
    broker = start_broker(workdir / "tansu.log")
    cluster = None
    try:
        topic = make_topic(broker, "soak", 3)
        bulk_topic = make_topic(broker, "bulk", 1)
        bulk_bytes_per_second = args.bulk_rate * args.bulk_bytes
        # The cap holds 2 s of bulk traffic: never-readers are cut within
        # seconds, slow readers (half the rate) within a few more.
        common = {"websocket": {"max_output_bytes": max(65536, int(2 * bulk_bytes_per_second)),
                                "handshake_timeout_ms": 3000},
                  "recovery": {"cache": {"max_age_ms": 20000}}}
        from conftest import deep_merge
        configs = {
            "A": deep_merge(common, {"websocket": {"min_write_delay_ms": 20}}),
            # A small cache: resumes after more than 5 s away read Kafka (and
            # every resume on a node just restarted cold). Not smaller: each
            # read from Kafka costs Tansu far more than a real broker, and
            # with a 1.5 s cache the reads alone saturated it within minutes.
            "B": deep_merge(common, {"recovery": {"cache": {"max_messages": 50, "max_bytes": 65536,
                                                            "max_age_ms": 5000}}}),
            "C": deep_merge(common, {"websocket": {"min_write_delay_ms": 20}}),
        }
        cluster = Cluster(GatewayLauncher(broker, workdir), [topic, bulk_topic], configs)
        producer = KeyedProducer(broker.bootstrap, topic, [f"user/{i:03d}" for i in range(args.keys)], args.rate,
                                 seed=args.seed, linger_ms=args.linger_ms)
        bulk = KeyedProducer(broker.bootstrap, bulk_topic, ["firehose"], args.bulk_rate, sizes=str(args.bulk_bytes),
                             track=False, linger_ms=args.linger_ms)
        ledger = Ledger(producer)
        raw = RawLoad(cluster, f"/{bulk_topic}/firehose", bulk_bytes_per_second, args.seed)
        rss = RssSampler(cluster)
        events = {"kills": [], "crashes": []}
        started = time.monotonic()
        caught_up = asyncio.run(run(args, cluster, producer, bulk, ledger, topic, raw, rss, events,
                                    broker.proc.pid))
        ledger.finish()
        log_audit = audit_log(broker.bootstrap, producer, timeout=300)
        duration = time.monotonic() - started

        # The end: every node stops on SIGTERM with 0 and its stop line.
        exits, stop_lines = {}, {}
        for node in cluster.nodes:
            try:
                exits[node.name] = node.gateway.stop()
            except AssertionError:
                exits[node.name] = "hung"
            stop_lines[node.name] = stop_line_stats(node.gateway.log())
        log_findings = [p for name, gw in cluster.incarnations for p in log_problems(name, gw.log())]
        rss_report, rss_failures = rss.report(args.warmup)
        summary = ledger.summary()
        failures = []
        if events["crashes"]:
            failures.append(f"{len(events['crashes'])} crashes")
        if any(code != 0 for code in exits.values()):
            failures.append(f"exit statuses at the end: {exits}")
        if log_findings:
            failures.append(f"{len(log_findings)} crash/sanitizer reports in gateway logs")
        if not ledger.ok or not caught_up:
            failures.append(f"ledger anomalies {summary['anomalies']}" + ("" if caught_up else ", not caught up"))
        if log_audit:
            failures.append(f"the broker log differs from the producer's acknowledgements ({len(log_audit)})")
        if producer.errors or bulk.errors:
            failures.append(f"producer errors {(producer.errors + bulk.errors)[:3]}")
        failures += rss_failures
        result = {
            "verdict": "pass" if not failures else "fail",
            "failures": failures,
            "duration_s": round(duration, 1),
            "seed": args.seed,
            "gateway": os.environ["STREAMGATE_BIN"],
            "records_produced": producer.acked,
            "bulk_records_produced": bulk.acked,
            "bulk_mib_produced": round(bulk.acked_bytes / MIB, 1),
            **{k: summary[k] for k in ("deliveries_checked", "bytes_checked", "owed", "received", "connections",
                                       "resumes", "replayed_messages", "resumes_by_node", "anomalies", "details")},
            "caught_up": caught_up,
            "churn_events": events.get("churn_events"),
            "kills": events["kills"],
            "crashes": len(events["crashes"]),
            "crash_reports": events["crashes"] + [{"log_finding": f[:6000]} for f in log_findings],
            "slow_consumer_closes": sum(s.get("slow_consumer_closes", 0) for s in stop_lines.values()),
            "stop_lines": stop_lines,
            "exits": exits,
            "rss": rss_report,
            "raw_load": dict(raw.counts),
            "raw_load_unexpected": raw.unexpected,
            "broker_log_audit": log_audit[:20] or "matches the producer's acknowledgements",
            "logs": str(workdir),
        }
        print_summary(result, format_summary(summary))
        if args.out:
            args.out.write_text(json.dumps(result, indent=2))
            print(f"[soak] summary written to {args.out}")
        return 0 if not failures else 1
    finally:
        if cluster is not None:
            for node in cluster.nodes:
                if node.gateway.proc.poll() is None:
                    node.gateway.proc.kill()
        stop_broker(broker)


def print_summary(r: dict, ledger_text: str) -> None:
    print("\n========== soak summary ==========")
    print(f"verdict: {r['verdict'].upper()}" + (f" ({'; '.join(r['failures'])})" if r["failures"] else ""))
    print(f"duration {r['duration_s']} s; records produced {r['records_produced']} checked + "
          f"{r['bulk_records_produced']} bulk ({r['bulk_mib_produced']} MiB)")
    print(ledger_text)
    print(f"churn events {r['churn_events']}; kills {[(k['node'], k['at_s']) for k in r['kills']]}; "
          f"crashes {r['crashes']}")
    print(f"slow-consumer closes (stop lines of the final processes) {r['slow_consumer_closes']}; "
          f"raw load {r['raw_load']}")
    for text in r["raw_load_unexpected"]:
        print(f"  unexpected: {text}")
    for name, entry in r["rss"].items():
        print(f"RSS {name}: min {entry['min_mib']} MiB, max {entry['max_mib']} MiB, last {entry['last_mib']} MiB; "
              + "; ".join(f"pid {p['pid']} ({p['samples']} samples): {p['rule']}" for p in entry["processes"]))
    print(f"exits {r['exits']}; broker log audit: {r['broker_log_audit']}")
    for c in r["crash_reports"]:
        print(json.dumps(c)[:3000])


if __name__ == "__main__":
    sys.exit(main())
