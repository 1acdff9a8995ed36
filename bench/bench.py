#!/usr/bin/env python3
"""scripts/bench: Streamgate's benchmarks, side by side in one run.

Runs the scenarios of BENCHMARKS.md, prints a table as it goes, writes
bench/results/<date>.json and bench/results/latest.json, rewrites the table
in BENCHMARKS.md and draws the charts the README shows.

Every system is measured the same way: benchsub processes (bench/tools,
single-threaded C) hold the connections and measure every message; the
server's CPU is utime+stime of its whole process tree from /proc over the
measurement window; the load generator's own CPU is reported beside it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "bench" / "tools"
BIN = ROOT / ".runtime" / "bench"
RESULTS = ROOT / "bench" / "results"
VENV_PY = ROOT / ".venv" / "bin" / "python"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# One benchsub process holds at most ~19,900 sockets here. Latency runs use as few
# processes as possible: every extra busy process on 2 cores adds scheduling
# delay to every system's tail (measured: p99.9 3-4 ms with two processes, ~1 ms
# with one, for Streamgate and bare-send alike). Throughput runs spread the
# receiving work over two processes so that the clients never become the bottleneck.
LATENCY_PER_PROCESS = 18000
PER_PROCESS_CONNECTIONS = 9000
_next_source = 2                      # source addresses 127.0.0.N rotate so TIME_WAIT never piles up on one
HIST_SUB = 1024


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------ processes --

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_with_runtime() -> dict:
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = str(ROOT / ".runtime" / "lib") + ((":" + env["LD_LIBRARY_PATH"]) if env.get("LD_LIBRARY_PATH") else "")
    return env


def process_tree(root: int) -> list[int]:
    """root and all its descendants (nginx workers, socketify threads are one process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(root: int) -> float:
    total = 0.0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_kib(root: int) -> int:
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path
    extra: list = field(default_factory=list)   # helper processes (publishers) stopped with it

    def stop(self) -> None:
        for p in [*self.extra, self.proc]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [*self.extra, self.proc]:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def wait_http(url: str, timeout: float) -> None:
    import ssl

    context = ssl._create_unverified_context() if url.startswith("https") else None  # loopback, self-signed
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready within {timeout}s")


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


# -------------------------------------------------------------- systems --

def streamgate_binary() -> Path:
    out = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True)
    return Path(out.stdout.strip()) / "streamgate"


STREAMGATE_LOOPS = 1   # see BENCHMARKS.md: the load generator needs the other core of this 2-core machine


def start_streamgate(workdir: Path, source: dict, name: str = "streamgate", loops: int = STREAMGATE_LOOPS,
                     io_uring: bool = True, max_write_delay_ms: int | None = None,
                     tls: tuple[str, str] | None = None) -> Server:
    """`tls`: (certificate chain, private key) for a wss:// listener."""
    port = free_port()
    websocket = {"max_output_bytes": 16 << 20}
    if max_write_delay_ms is not None:
        websocket["max_write_delay_ms"] = max_write_delay_ms
    config = {"listen": {"host": "127.0.0.1", "port": port}, "event_loops": loops, "log_level": "warning",
              "io_uring": io_uring,
              "websocket": websocket, "console": {"enabled": False}, "source": source,
              # One client process holds up to 18,000 connections from one address.
              "limits": {"max_connections_per_address": 0}}
    if tls:
        config["listen"]["tls"] = {"certificate_chain": tls[0], "private_key": tls[1]}
    path = workdir / f"{name}-{port}.json"
    path.write_text(json.dumps(config))
    log_path = workdir / f"{name}-{port}.log"
    proc = subprocess.Popen([str(streamgate_binary()), "serve", "--config", str(path)], stdout=open(log_path, "wb"),
                            stderr=subprocess.STDOUT, env=env_with_runtime())
    wait_http(f"{'https' if tls else 'http'}://127.0.0.1:{port}/readyz", 30)
    return Server(name, proc, port, log_path)


def generator_source(keys: int, rate: float, payload: int) -> dict:
    return {"plugin": "generator", "options": {"topic": "bench", "keys": keys, "rate_per_key": rate,
                                               "payload_bytes": payload}}


def start_baresend(workdir: Path, keys: int, rate: float, payload: int) -> Server:
    port = free_port()
    log_path = workdir / f"baresend-{port}.log"
    proc = subprocess.Popen([str(BIN / "baresend"), "--port", str(port), "--endpoints", str(keys),
                             "--rate-per-key", str(rate), "--payload-bytes", str(payload - 16)],
                            stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    wait_port(port, 10)
    return Server("bare-send", proc, port, log_path)


# ----------------------------------------------------------- histograms --

def hist_value(index: int) -> int:
    if index < 2 * HIST_SUB:
        return index
    k = (index - 2 * HIST_SUB) // HIST_SUB + 11
    sub = (index - 2 * HIST_SUB) % HIST_SUB + HIST_SUB
    return sub << (k - 10)


def percentiles(hist: dict[int, int], total: int, qs=(0.5, 0.9, 0.99, 0.999)) -> dict[float, float]:
    out, seen, order = {}, 0, sorted(hist)
    targets = sorted(qs)
    ti = 0
    for index in order:
        seen += hist[index]
        while ti < len(targets) and seen >= math.ceil(targets[ti] * total):
            out[targets[ti]] = hist_value(index) / 1e6
            ti += 1
    for q in targets[ti:]:
        out[q] = hist_value(order[-1]) / 1e6 if order else 0.0
    return out


# ---------------------------------------------------------- subscribers --

@dataclass
class Load:
    protocol: str = "streamgate"
    path: str = "/ws"
    target: str = "/bench/k%d"
    tls: bool = False


def run_window(server: Server, load: Load, connections: int, endpoints: int, warmup: float, duration: float,
               workdir: Path, rate_per_endpoint: float | None = None,
               per_process: int = PER_PROCESS_CONNECTIONS, companions: tuple = ()) -> dict:
    """Connects `connections` clients over ceil(n/per_process) benchsub processes,
    then measures one window; returns merged counts, latency and CPU figures."""
    global _next_source
    procs = max(1, math.ceil(connections / per_process))
    sources = []
    for _ in range(procs):
        sources.append(f"127.0.0.{_next_source}")
        _next_source = 2 if _next_source >= 250 else _next_source + 1
    subs = []
    for i in range(procs):
        n = connections // procs + (1 if i < connections % procs else 0)
        out = workdir / f"benchsub-{server.name}-{server.port}-{i}.json"
        cmd = [str(BIN / "benchsub"), "--protocol", load.protocol, "--port", str(server.port),
               "--path", load.path, "--target", load.target, "--connections", str(n), "--endpoints", str(endpoints),
               "--sources", sources[i], "--seed", str(1000 + i), "--warmup", str(warmup),
               "--duration", str(duration), "--connect-timeout", "120", "--wait-go", "--out", str(out)]
        if load.tls:
            cmd.append("--tls")
        subs.append((subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True), out))
    connected, connect_seconds = 0, 0.0
    print(f"    {server.name}: connecting {connections:,} clients ({procs} processes) ...", end="", flush=True)
    for proc, _ in subs:
        line = proc.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError(f"benchsub did not get ready against {server.name}")
        connected += int(line[1])
        connect_seconds = max(connect_seconds, float(line[2]))
    idle_rss = rss_kib(server.proc.pid)
    print(f" {connected:,} in {connect_seconds:.1f} s; warm-up {warmup:g} s, measuring {duration:g} s ...", flush=True)
    for proc in [p for p, _ in subs] + list(companions):  # companions: other measurers sharing the clock
        proc.stdin.write("GO\n")
        proc.stdin.flush()
    time.sleep(warmup)
    cpu0, client_cpu0 = cpu_seconds(server.proc.pid), sum(cpu_seconds(p.pid) for p, _ in subs)
    time.sleep(duration)
    cpu1, client_cpu1 = cpu_seconds(server.proc.pid), sum(cpu_seconds(p.pid) for p, _ in subs)
    rss = rss_kib(server.proc.pid)
    hist: dict[int, int] = {}
    totals = {"received": 0, "missing": 0, "reordered": 0, "closed": 0, "errors": 0, "latency_sum_ns": 0.0,
              "latency_max_ns": 0}
    for proc, out in subs:
        proc.wait(duration + 60)
        result = json.loads(out.read_text())
        for key in totals:
            totals[key] = max(totals[key], result[key]) if key == "latency_max_ns" else totals[key] + result[key]
        for index, count in result["histogram"]:
            hist[index] = hist.get(index, 0) + count
    received = totals["received"]
    server_cpu = cpu1 - cpu0
    p = percentiles(hist, received) if received else {}
    return {
        "clients": connections, "client_processes": procs, "connected": connected, "connect_seconds": round(connect_seconds, 3),
        "connections_per_second": round(connected / connect_seconds, 1) if connect_seconds else None,
        "window_seconds": duration, "delivered": received, "lost": totals["missing"], "reordered": totals["reordered"],
        "closed": totals["closed"], "errors": totals["errors"],
        "server_cpu_seconds": round(server_cpu, 3), "server_cpu_utilization": round(server_cpu / duration, 3),
        "load_generator_cpu_seconds": round(client_cpu1 - client_cpu0, 3),
        "msgs_per_cpu_second": round(received / server_cpu) if server_cpu > 0 else None,
        "delivered_per_second": round(received / duration),
        "expected_per_second": round(connected * rate_per_endpoint) if rate_per_endpoint else None,
        "rate_per_endpoint": rate_per_endpoint, "endpoints": endpoints,
        "mean_ms": round(totals["latency_sum_ns"] / received / 1e6, 3) if received else None,
        "p50_ms": round(p.get(0.5, 0), 3), "p90_ms": round(p.get(0.9, 0), 3), "p99_ms": round(p.get(0.99, 0), 3),
        "p999_ms": round(p.get(0.999, 0), 3), "max_ms": round(totals["latency_max_ns"] / 1e6, 3),
        "server_rss_kib": rss, "server_rss_idle_kib": idle_rss,
        "histogram": sorted(hist.items()),
    }


def summarize(system: str, r: dict) -> str:
    return (f"  {system:<22} {r['connected']:>6}/{r['clients']} clients  {r['delivered_per_second']:>8}/s delivered  "
            f"{(r['msgs_per_cpu_second'] or 0):>8} msgs/CPU-s  cpu {r['server_cpu_utilization']:.2f}  "
            f"p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} p99.9 {r['p999_ms']:.2f} max {r['max_ms']:.1f} ms  "
            f"lost {r['lost']} reordered {r['reordered']}"
            + (f"  BEHIND: {r['delivered_per_second'] / r['expected_per_second']:.0%} of the published rate"
               if r.get("expected_per_second") and r["delivered_per_second"] < 0.95 * r["expected_per_second"] else ""))


# ------------------------------------------------------------ scenarios --

@dataclass
class Plan:
    quick: bool
    reference_clients: int
    reference_keys: int
    window: float
    warmup: float
    throughput_clients: int
    throughput_keys: int
    throughput_rate: float
    saturation_rates: list
    connection_counts: list
    payload: int = 512


def make_plan(quick: bool) -> Plan:
    if quick:
        return Plan(True, reference_clients=2000, reference_keys=2000, window=6, warmup=2, throughput_clients=2000,
                    throughput_keys=200, throughput_rate=10, saturation_rates=[10, 40], connection_counts=[1000, 4000])
    return Plan(False, reference_clients=18000, reference_keys=10000, window=20, warmup=4, throughput_clients=10000,
                throughput_keys=1000, throughput_rate=10, saturation_rates=[5, 10, 20, 40],
                connection_counts=[1000, 10000, 18000])


def scenario_reference(plan: Plan, workdir: Path, peers: list[str]) -> dict:
    log(f"\n[1] reference shape: {plan.reference_keys} endpoints x 1 msg/s, {plan.payload} B, "
        f"{plan.reference_clients} clients, each on one random endpoint")
    out = {}

    def measure(name: str, server: Server, load: Load = Load()) -> None:
        try:
            out[name] = run_window(server, load, plan.reference_clients, plan.reference_keys, plan.warmup,
                                   plan.window, workdir, 1, per_process=LATENCY_PER_PROCESS)
            log(summarize(name, out[name]))
        finally:
            server.stop()

    measure("streamgate (generator)",
            start_streamgate(workdir, generator_source(plan.reference_keys, 1, plan.payload), "streamgate-generator"))
    out["streamgate (kafka)"] = run_kafka_reference(plan, workdir)
    log(summarize("streamgate (kafka, e2e)", out["streamgate (kafka)"]))
    b = out["streamgate (kafka)"]["broker_only"]
    log(f"  {'kafka alone (consumer)':<22} {b['received'] / b['window_seconds']:>23.0f}/s received  "
        f"p50 {b['p50_ms']:.2f} p99 {b['p99_ms']:.2f} p99.9 {b['p999_ms']:.2f} max {b['max_ms']:.1f} ms  "
        f"(the broker's own latency, same records, same window)")
    # The machine's own floor: the same schedule sent with nothing else.
    measure("bare-send", start_baresend(workdir, plan.reference_keys, 1, plan.payload))
    if "uwebsockets" in peers:
        import peers as peer_systems
        for name, start, load in peer_systems.systems("uwebsockets", plan.reference_keys, 1, plan.payload, workdir):
            measure(name, start(), load)
    return out


def run_kafka_reference(plan: Plan, workdir: Path) -> dict:
    kafka_port = free_port()
    broker = subprocess.Popen([str(ROOT / ".runtime" / "tansu"), "broker", "--listener-url", f"tcp://127.0.0.1:{kafka_port}",
                               "--advertised-listener-url", f"tcp://127.0.0.1:{kafka_port}"],
                              stdout=open(workdir / "tansu.log", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_port(kafka_port, 10)
        subprocess.run([str(ROOT / ".runtime" / "tansu"), "topic", "create", "bench", "--partitions", "4", "--broker",
                        f"tcp://127.0.0.1:{kafka_port}"], check=True, capture_output=True, timeout=20)
        gw = start_streamgate(workdir, {"plugin": "kafka", "options": {"brokers": f"127.0.0.1:{kafka_port}",
                                                                       "topics": ["bench"]}}, "streamgate-kafka")
        publisher = subprocess.Popen(
            [str(VENV_PY), str(TOOLS / "benchpub.py"), "--brokers", f"127.0.0.1:{kafka_port}", "--topic", "bench",
             "--keys", str(plan.reference_keys), "--rate-per-key", "1", "--payload-bytes", str(plan.payload)],
            stdout=open(workdir / "benchpub.log", "wb"), stderr=subprocess.STDOUT, env=env_with_runtime())
        gw.extra.append(publisher)
        # The broker's own latency, measured in the same window: a plain consumer of the same topic.
        direct = subprocess.Popen(
            [str(VENV_PY), str(TOOLS / "benchconsume.py"), "--brokers", f"127.0.0.1:{kafka_port}", "--topic", "bench",
             "--warmup", str(plan.warmup), "--duration", str(plan.window), "--wait-go"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env_with_runtime())
        gw.extra.append(direct)
        try:
            if direct.stdout.readline().strip() != "READY":
                raise RuntimeError("benchconsume did not get ready")
            result = run_window(gw, Load(), plan.reference_clients, plan.reference_keys, plan.warmup, plan.window, workdir, 1,
                                per_process=LATENCY_PER_PROCESS, companions=(direct,))
            result["publisher_cpu_seconds_total"] = round(cpu_seconds(publisher.pid), 3)
            result["broker_cpu_seconds_total"] = round(cpu_seconds(broker.pid), 3)
            direct_out, _ = direct.communicate(timeout=plan.warmup + plan.window + 30)
            result["broker_only"] = json.loads(direct_out.strip().splitlines()[-1])
            return result
        finally:
            gw.stop()
    finally:
        broker.terminate()
        broker.wait(10)


def scenario_saturation(plan: Plan, workdir: Path) -> list:
    log(f"\n[2] saturation: {plan.throughput_keys} endpoints, {plan.throughput_clients} clients, "
        f"rate per endpoint raised step by step")
    steps = []
    for rate in plan.saturation_rates:
        gw = start_streamgate(workdir, generator_source(plan.throughput_keys, rate, plan.payload), "streamgate-sat")
        try:
            r = run_window(gw, Load(), plan.throughput_clients, plan.throughput_keys, plan.warmup, plan.window, workdir,
                           rate)
        finally:
            gw.stop()
        r["rate_per_endpoint"] = rate
        steps.append(r)
        log(summarize(f"streamgate @ {rate}/s/endpoint", r))
    return steps


def scenario_connections(plan: Plan, workdir: Path) -> list:
    log("\n[3] connections: gateway memory per idle connection, connections accepted per second")
    rows = []
    for n in plan.connection_counts:
        gw = start_streamgate(workdir, generator_source(1000, 0.001, plan.payload), "streamgate-idle")
        try:
            time.sleep(0.5)
            before = rss_kib(gw.proc.pid)
            r = run_window(gw, Load(), n, 1000, 0.5, 1, workdir)
            per_connection = (r["server_rss_idle_kib"] - before) * 1024 / max(1, r["connected"])
            rows.append({"clients": n, "connected": r["connected"], "rss_before_kib": before,
                         "rss_with_connections_kib": r["server_rss_idle_kib"],
                         "bytes_per_idle_connection": round(per_connection),
                         "connections_per_second": r["connections_per_second"]})
            log(f"  {n:>6} idle clients: {per_connection:7.0f} bytes of gateway RSS each, "
                f"{r['connections_per_second']} connections/s accepted")
        finally:
            gw.stop()
    return rows


def scenario_throughput(plan: Plan, workdir: Path, peers: list[str]) -> dict:
    log(f"\n[4+5] same workload for every system: {plan.throughput_keys} endpoints x {plan.throughput_rate} msg/s, "
        f"{plan.payload} B, {plan.throughput_clients} clients")
    systems = {}
    for name, start, load in systems_for_throughput(plan, workdir, peers):
        try:
            server = start()
        except Exception as error:  # a peer that cannot start is reported, not fatal
            log(f"  {name}: could not start ({error})")
            systems[name] = {"error": str(error)}
            continue
        try:
            r = run_window(server, load, plan.throughput_clients, plan.throughput_keys, plan.warmup, plan.window, workdir,
                           plan.throughput_rate)
            systems[name] = r
            log(summarize(name, r))
        finally:
            server.stop()
    return systems


def systems_for_throughput(plan: Plan, workdir: Path, peers: list[str]):
    k, rate, payload = plan.throughput_keys, plan.throughput_rate, plan.payload
    yield ("streamgate", lambda: start_streamgate(workdir, generator_source(k, rate, payload)), Load())
    # The same gateway with write pacing off: what a saturated loop costs when it writes every turn.
    yield ("streamgate, no write delay", lambda: start_streamgate(workdir, generator_source(k, rate, payload),
                                                                  max_write_delay_ms=0), Load())
    yield ("streamgate, 2 loops", lambda: start_streamgate(workdir, generator_source(k, rate, payload), loops=2), Load())
    yield ("bare-send", lambda: start_baresend(workdir, k, rate, payload), Load())
    try:
        import peers as peer_systems  # bench/peers.py
    except ImportError:
        return
    for name in peers:
        yield from peer_systems.systems(name, k, rate, payload, workdir)


def scenario_tls(plan: Plan, workdir: Path, peers: list[str]) -> dict:
    """What TLS costs per delivery: the throughput workload over ws:// and
    wss:// (a self-signed P-256 certificate, TLS 1.3), alternating, for
    Streamgate and, with the uwebsockets peer, for uWebSockets too."""
    log(f"\n[7] TLS: {plan.throughput_keys} endpoints x {plan.throughput_rate} msg/s, {plan.payload} B, "
        f"{plan.throughput_clients} clients, ws:// and wss://")
    chain, key = str(workdir / "bench-cert.pem"), str(workdir / "bench-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", chain, "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    k, rate, payload = plan.throughput_keys, plan.throughput_rate, plan.payload
    systems = [("streamgate ws", lambda: start_streamgate(workdir, generator_source(k, rate, payload)), Load()),
               # TLS connections are written with one SSL_write each, not in io_uring batches: this
               # row separates what TLS costs from what leaving the batched submission costs.
               ("streamgate ws, sendmsg", lambda: start_streamgate(workdir, generator_source(k, rate, payload),
                                                                   io_uring=False), Load()),
               ("streamgate wss", lambda: start_streamgate(workdir, generator_source(k, rate, payload), tls=(chain, key)),
                Load(tls=True))]
    if "uwebsockets" in peers:
        import peers as peer_systems
        systems += [("uwebsockets ws", lambda: peer_systems.start_uwebsockets(k, rate, payload, workdir),
                     Load("raw", "/bench/k%d", "")),
                    ("uwebsockets wss", lambda: peer_systems.start_uwebsockets(k, rate, payload, workdir, tls=(chain, key)),
                     Load("raw", "/bench/k%d", "", tls=True))]
    rows: dict[str, dict] = {}
    for name, start, load in systems:
        try:
            server = start()
        except Exception as error:  # a peer that cannot start is reported, not fatal
            log(f"  {name}: could not start ({error})")
            rows[name] = {"error": str(error)}
            continue
        try:
            rows[name] = run_window(server, load, plan.throughput_clients, k, plan.warmup, plan.window, workdir, rate)
            log(summarize(name, rows[name]))
        finally:
            server.stop()
    for system in ("streamgate", "uwebsockets"):
        plain, tls = rows.get(f"{system} ws", {}), rows.get(f"{system} wss", {})
        if plain.get("msgs_per_cpu_second") and tls.get("msgs_per_cpu_second"):
            cost = plain["msgs_per_cpu_second"] / tls["msgs_per_cpu_second"]
            rows[f"{system} tls cost"] = {"cpu_per_message_ratio": round(cost, 2),
                                          "p50_ms": [plain["p50_ms"], tls["p50_ms"]],
                                          "p99_ms": [plain["p99_ms"], tls["p99_ms"]]}
            log(f"  {system}: wss:// costs {cost:.2f}x the CPU per delivered message of ws://; "
                f"p50 {plain['p50_ms']:.2f} -> {tls['p50_ms']:.2f} ms, p99 {plain['p99_ms']:.2f} -> {tls['p99_ms']:.2f} ms")
    return rows


# --------------------------------------------------------------- output --

def scenario_sdk(plan: Plan, workdir: Path) -> dict:
    """The Python SDK's own cost: the same connections and messages received
    through the SDK and through a bare websockets client that only reads the
    delivery header, alternating, two rounds each (client CPU per message)."""
    connections, endpoints, rate = (200, 50, 10) if plan.quick else (400, 100, 10)
    log(f"\n[6] SDK: {connections} connections in one Python process, {endpoints} endpoints x {rate} msg/s, "
        f"{plan.payload} B: the Python SDK vs a bare websockets client")
    server = start_streamgate(workdir, generator_source(endpoints, rate, plan.payload), name="streamgate-sdk")
    rows: dict[str, list] = {"raw": [], "sdk": []}
    try:
        for _ in range(2):
            for mode in ("raw", "sdk"):
                proc = subprocess.Popen(
                    [str(ROOT / ".venv/bin/python"), str(Path(__file__).parent / "tools" / "sdkrecv.py"), "--url",
                     f"ws://127.0.0.1:{server.port}/ws", "--mode", mode, "--connections", str(connections),
                     "--endpoints", str(endpoints), "--warmup", str(plan.warmup), "--duration", str(plan.window)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                if proc.stdout.readline().strip() != "READY":
                    raise RuntimeError(f"sdkrecv ({mode}) did not get ready")
                proc.stdin.write("GO\n")
                proc.stdin.flush()
                result = json.loads(proc.stdout.readline())
                proc.wait(30)
                rows[mode].append(result)
                log(f"  python {mode:<4} {result['received'] / plan.window:>8.0f}/s received  "
                    f"{result['us_per_message']:>6} us client CPU per message  "
                    f"p50 {result['p50_ms']} p99 {result['p99_ms']} ms (record timestamp, ms resolution)")
    finally:
        server.stop()
    median = lambda mode: sorted(r["us_per_message"] for r in rows[mode])[len(rows[mode]) // 2]  # noqa: E731
    ratio = median("sdk") / median("raw")
    log(f"  the SDK costs {ratio:.2f}x a bare client's CPU per message")
    return {"connections": connections, "endpoints": endpoints, "rate_per_endpoint": rate, "rounds": rows,
            "sdk_over_raw_cpu_per_message": round(ratio, 2)}


def write_results(results: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
    path = RESULTS / f"{stamp}.json"
    # Compact: the histograms hold thousands of buckets; BENCHMARKS.md is the readable view.
    text = json.dumps(results, separators=(",", ":"))
    path.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    return path


def build_tools() -> None:
    BIN.mkdir(parents=True, exist_ok=True)
    for tool, libs in (("benchsub", ["-lssl", "-lcrypto"]), ("baresend", ["-lssl", "-lcrypto"]), ("benchfeed", [])):
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(BIN / tool), str(TOOLS / f"{tool}.c"), *libs], check=True)
    log("building the gateway (release)")
    subprocess.run(["swift", "build", "-c", "release", "--product", "streamgate"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every scenario at small scale (under 3 minutes)")
    parser.add_argument("--only", action="append",
                        choices=["reference", "saturation", "connections", "throughput", "sdk", "tls"],
                        help="run only these scenarios (repeatable)")
    parser.add_argument("--peers", default="uwebsockets,nchan,nats,mosquitto",
                        help="comma-separated peers for the throughput scenario ('' for none)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write results or BENCHMARKS.md")
    args = parser.parse_args()
    plan = make_plan(args.quick)
    sys.path.insert(0, str(Path(__file__).parent))
    build_tools()
    started = time.monotonic()
    command = "scripts/bench" + (" --quick" if args.quick else "")
    results = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "command": command,
               "quick": args.quick, "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                                                "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
               "payload_bytes": plan.payload, "scenarios": {}}
    chosen = args.only or ["reference", "saturation", "connections", "throughput", "sdk", "tls"]
    with tempfile.TemporaryDirectory(prefix="streamgate-bench-") as tmp:
        workdir = Path(tmp)
        peers = [p for p in args.peers.split(",") if p]
        if "reference" in chosen:
            results["scenarios"]["reference"] = scenario_reference(plan, workdir, peers)
        if "saturation" in chosen:
            results["scenarios"]["saturation"] = scenario_saturation(plan, workdir)
        if "connections" in chosen:
            results["scenarios"]["connections"] = scenario_connections(plan, workdir)
        if "throughput" in chosen:
            results["scenarios"]["throughput"] = scenario_throughput(plan, workdir, peers)
        if "sdk" in chosen:
            results["scenarios"]["sdk"] = scenario_sdk(plan, workdir)
        if "tls" in chosen:
            results["scenarios"]["tls"] = scenario_tls(plan, workdir, peers)
    throughput = results["scenarios"].get("throughput", {})
    if "bare-send" in throughput and "msgs_per_cpu_second" in throughput["bare-send"]:
        results["bare_send_msgs_per_cpu_second"] = throughput["bare-send"]["msgs_per_cpu_second"]
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    log(f"\nfinished in {results['elapsed_seconds']} s")
    import report  # bench/report.py
    log(report.ratios_text(results))
    if not args.no_write:
        path = write_results(results)
        report.update_benchmarks_md(results, ROOT / "BENCHMARKS.md")
        report.draw_charts(results, RESULTS)
        log(f"wrote {path.relative_to(ROOT)}, bench/results/latest.json, BENCHMARKS.md and charts")


if __name__ == "__main__":
    main()
