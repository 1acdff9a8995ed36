"""What operators ask a node on its admin listener: Prometheus metrics that
move with what happened, liveness and readiness."""

from __future__ import annotations

import asyncio
import re
import socket
import time

from conftest import WsClient, free_port, http_get, run_async


def wait_admin(url: str, timeout: float = 10.0) -> None:
    """The admin listener starts beside the clients' port, not before it is
    ready: wait until it answers."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            if http_get(url + "/healthz")[0] == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"the admin listener at {url} did not answer within {timeout} s"
        time.sleep(0.05)


def scrape(url: str) -> dict[str, float]:
    """The samples of a Prometheus text exposition, by name and labels."""
    status, headers, body = http_get(url + "/metrics")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
    samples = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)", line)
        assert match, f"not a sample line: {line!r}"
        samples[match[1]] = float(match[2])
    return samples


def test_metrics_healthz_and_readyz_on_the_admin_listener(gateway_factory, create_topic, producer):
    topic = create_topic()
    admin_port = free_port()
    gw = gateway_factory([topic], {"admin": {"enabled": True, "host": "127.0.0.1", "port": admin_port},
                                   "limits": {"allowed_origins": ["https://app.example.com"]}})
    admin = f"http://127.0.0.1:{admin_port}"
    wait_admin(admin)
    assert http_get(admin + "/readyz")[:3:2] == (200, b"ready\n")
    assert http_get(admin + "/nothing")[0] == 404
    assert http_get(gw.http_url + "/metrics")[0] == 404, "metrics stay off the clients' port"
    # The 404's connection is closed by the client; the node counts it open until it sees the close.
    deadline = time.monotonic() + 5
    while (before := scrape(admin))["streamgate_connections_open"] != 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert before["streamgate_ready"] == 1
    assert before["streamgate_connections_open"] == 0

    async def body():
        client = await WsClient.connect(gw.ws_url, name="c")
        await client.subscribe(f"/{topic}/score", id=1)
        await asyncio.to_thread(producer.produce, topic, [("score", b"1-0"), ("score", b"2-0"), ("other", b"x")])
        await client.wait_deliveries(2)
        published = await client.request({"type": "publish", "endpoint": f"/{topic}/chat", "payload": "hi", "id": "p"})
        assert published["type"] == "published", published
        unresolved = await client.request({"type": "publish", "endpoint": "/", "payload": "x", "id": "u"})
        assert unresolved["type"] == "error", unresolved
        during = scrape(admin)
        # An upgrade with a refused Origin, and a request that is no upgrade.
        refused = await asyncio.to_thread(_raw_request, gw.port,
                                          f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                          f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                                          f"Origin: https://evil.example\r\n\r\n")
        assert refused.startswith("HTTP/1.1 403"), refused
        await client.close()
        return during

    during = run_async(body())
    assert during["streamgate_connections_open"] == 1
    assert during["streamgate_subscriptions"] == 1
    assert during["streamgate_sessions_identified"] == 1
    assert during["streamgate_connections_accepted_total"] >= before["streamgate_connections_accepted_total"] + 1
    assert during["streamgate_records_routed_total"] >= 3
    assert during["streamgate_messages_delivered_total"] >= 2
    assert during["streamgate_bytes_written_total"] > before["streamgate_bytes_written_total"]
    assert during["streamgate_cache_messages"] >= 2
    assert during['streamgate_publishes_total{result="ok"}'] == 1
    assert during['streamgate_publishes_refused_total{reason="unresolved"}'] == 1
    assert during['streamgate_authentications_total{result="welcomed"}'] == 1
    assert during['streamgate_authentications_total{result="refused"}'] == 0
    after = scrape(admin)
    assert after['streamgate_connections_refused_total{reason="origin"}'] == 1
    for name, value in during.items():
        if name.split("{")[0].endswith("_total"):
            assert after[name] >= value, f"{name} went back from {value} to {after[name]}"


def _raw_request(port: int, request: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request.encode())
        return s.recv(4096).decode(errors="replace")


def test_the_admin_listener_is_off_unless_enabled_and_its_port_is_checked(gateway_factory, create_topic, tmp_path):
    import json
    import subprocess

    from conftest import STREAMGATE_BIN, base_config, subprocess_env

    config = base_config(8080, "127.0.0.1:9092", ["t"])
    config["admin"] = {"enabled": True, "port": 8080}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    result = subprocess.run([str(STREAMGATE_BIN), "check-config", str(path)], capture_output=True, text=True,
                            timeout=30, env=subprocess_env())
    assert result.returncode == 2 and "admin.port" in result.stderr, result.stderr

    topic = create_topic()
    gw = gateway_factory([topic])
    assert "admin listening" not in gw.log()


def test_structured_logs_are_one_object_per_line_and_never_hold_a_token(gateway_factory, create_topic, tmp_path):
    """JSON logs at the most verbose level, through accepted, refused, refreshed
    and revoked tokens (header, query parameter, in-band): no token appears."""
    import json
    import time

    from conftest import WsClient
    from websockets.asyncio.client import connect

    topic = create_topic()
    secrets = {"alpha": "tok-alpha-7f3e9c1d2b4a", "beta": "tok-beta-0a1b2c3d4e5f", "forged": "tok-forged-9d8c7b6a5f4e"}
    tokens = tmp_path / "tokens.json"
    entries = [{"token": secrets[name], "subject": name, "subscribe": [f"/{topic}/**"]} for name in ("alpha", "beta")]
    tokens.write_text(json.dumps({"tokens": entries}))
    # A librdkafka secret too (unused with PLAINTEXT, but configured).
    secrets["sasl"] = "kafka-sasl-secret-5e6f7a8b"
    gw = gateway_factory([topic], {"log_level": "trace", "log_format": "json",
                                   "authorization": {"plugin": "static-tokens", "options": {"file": str(tokens)}},
                                   "source": {"options": {"properties": {"sasl.password": secrets["sasl"]}}}})

    async def body():
        by_header = await connect(gw.ws_url, additional_headers={"Authorization": f"Bearer {secrets['alpha']}"})
        by_query = await connect(f"{gw.ws_url}?access_token={secrets['beta']}")
        beta = WsClient(by_query, "beta")
        assert (await beta.next_text())["type"] == "welcome"
        forged = await connect(gw.ws_url, additional_headers={"Authorization": f"Bearer {secrets['forged']}"})
        client = WsClient(by_header, "alpha")
        assert (await client.next_text())["type"] == "welcome"
        await client.subscribe(f"/{topic}/k")
        await by_header.send(json.dumps({"type": "auth", "token": secrets["forged"], "id": 1}))
        await by_header.send(json.dumps({"type": "auth", "token": secrets["beta"], "id": 2}))
        await asyncio.sleep(0.3)
        tokens.write_text(json.dumps({"tokens": [entries[0]]}))  # beta revoked
        revoked = await beta.next_text(5)                         # the file is re-read at most once a second
        assert revoked["code"] == "unauthorized" and "revoked" in revoked["message"], revoked
        for ws in (by_header, by_query, forged):
            await ws.close()

    run_async(body(), 30)
    time.sleep(0.3)
    log = gw.log()
    assert '"level":"trace"' in log or '"level":"debug"' in log, "the most verbose level was on"
    for line in log.splitlines():
        entry = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= set(entry), line
    for name, secret in secrets.items():
        assert secret not in log, f"the {name} token is in the log"


def test_the_example_three_node_cluster_serves_from_every_node(broker, gateway_factory, create_topic, producer):
    """docs/deploy/three-nodes: each node checks, starts (on free ports, against
    the test broker), is ready on its admin listener, and delivers the same
    record to its own client."""
    import json

    import subprocess

    from conftest import ROOT, STREAMGATE_BIN, subprocess_env
    from test_cli import _strip_comments

    topic = create_topic()
    nodes = []
    for n in (1, 2, 3):
        path = ROOT / "docs" / "deploy" / "three-nodes" / f"node-{n}.jsonc"
        checked = subprocess.run([str(STREAMGATE_BIN), "check-config", str(path)], capture_output=True, text=True,
                                 timeout=30, env=subprocess_env())
        assert checked.returncode == 0, checked.stderr
        config = json.loads(_strip_comments(path.read_text()))
        assert config["listen"]["port"] == 8080 + n and config["admin"]["port"] == 9464 + n
        admin_port = free_port()
        config["listen"]["port"] = free_port()
        config["admin"]["port"] = admin_port
        config["source"]["options"].update({"topics": [topic], "brokers": broker.bootstrap})
        gw = gateway_factory([topic], config)
        wait_admin(f"http://127.0.0.1:{admin_port}")
        assert http_get(f"http://127.0.0.1:{admin_port}/readyz")[0] == 200
        nodes.append(gw)
    assert all("level=info" in gw.log() for gw in nodes), "logfmt, as the example says"

    async def body():
        clients = [await WsClient.connect(gw.ws_url, name=f"node{i + 1}") for i, gw in enumerate(nodes)]
        for client in clients:
            await client.subscribe(f"/{topic}/live")
        await asyncio.to_thread(producer.produce, topic, [("live", b"goal")])
        received = [await client.wait_deliveries(1) for client in clients]
        for client in clients:
            await client.close()
        return received

    received = run_async(body())
    assert [r[0].payload for r in received] == [b"goal"] * 3
    assert len({(r[0].epoch, r[0].seq) for r in received}) == 1, "the same position on every node"


def test_the_example_systemd_unit_checks_the_file_it_serves():
    import configparser

    from conftest import ROOT

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(ROOT / "docs" / "deploy" / "streamgate.service")
    service = unit["Service"]
    binary, serve, flag, config = service["ExecStart"].split()
    assert (serve, flag) == ("serve", "--config")
    assert service["ExecStartPre"].split() == [binary, "check-config", config]
    assert service["KillSignal"] == "SIGTERM" and int(service["LimitNOFILE"]) >= 100_000
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_cache_evictions_and_reads_from_kafka_are_counted(gateway_factory, create_topic, producer):
    topic = create_topic()
    admin_port = free_port()
    gw = gateway_factory([topic], {"admin": {"enabled": True, "port": admin_port},
                                   "recovery": {"cache": {"max_messages": 2}}})
    admin = f"http://127.0.0.1:{admin_port}"
    wait_admin(admin)

    async def body():
        live = await WsClient.connect(gw.ws_url, name="live")
        await live.subscribe(f"/{topic}/k")
        await asyncio.to_thread(producer.produce, topic, [("k", f"m{i}".encode()) for i in range(6)])
        first, *_ = await live.wait_deliveries(6)
        late = await WsClient.connect(gw.ws_url, name="late")
        # Resuming after the first record: the cache holds the last two only.
        reply = await late.request({"type": "subscribe", "endpoint": f"/{topic}/k",
                                    "from": {"epoch": first.epoch, "seq": first.seq}})
        assert reply["type"] == "subscribed", reply
        replayed = await late.wait_deliveries(5)
        assert [d.payload for d in replayed] == [f"m{i}".encode() for i in range(1, 6)]
        await live.close()
        await late.close()

    run_async(body())
    samples = scrape(admin)
    assert samples["streamgate_cache_evictions_total"] >= 4
    assert samples["streamgate_cache_messages"] == 2
    assert samples['streamgate_replays_total{result="started"}'] == 1
    assert samples['streamgate_replays_total{result="refused"}'] == 0
    assert samples["streamgate_replay_queue_depth"] == 0


def test_the_loops_report_their_queues_turns_and_the_latency_records_spend_in_the_gateway(
        gateway_factory, create_topic, producer):
    topic = create_topic()
    admin_port = free_port()
    gw = gateway_factory([topic], {"admin": {"enabled": True, "host": "127.0.0.1", "port": admin_port}})
    admin = f"http://127.0.0.1:{admin_port}"
    wait_admin(admin)
    loops = gw.config["event_loops"]
    before = scrape(admin)

    async def body():
        clients = [await WsClient.connect(gw.ws_url, name=f"c{i}") for i in range(4)]
        for client in clients:
            await client.subscribe(f"/{topic}/k")
        await asyncio.to_thread(producer.produce, topic, [("k", b"m%d" % i) for i in range(50)])
        for client in clients:
            await client.wait_deliveries(50)
        for client in clients:
            await client.close()

    run_async(body())
    after = scrape(admin)
    for loop in range(loops):
        label = f'loop="{loop}"'
        assert after[f"streamgate_loop_command_queue_depth{{{label}}}"] >= 0
        assert after[f"streamgate_loop_commands_total{{{label}}}"] > before[f"streamgate_loop_commands_total{{{label}}}"]
        turns = after[f"streamgate_loop_turn_duration_seconds_count{{{label}}}"]
        assert turns > before[f"streamgate_loop_turn_duration_seconds_count{{{label}}}"]
        assert after[f'streamgate_loop_turn_duration_seconds_bucket{{{label},le="+Inf"}}'] == turns
        assert 0 < after[f"streamgate_loop_turn_duration_seconds_sum{{{label}}}"] < turns  # each turn well under 1 s
    # One observation per record and loop with subscribers: the four clients
    # sit on one or both loops, so 50 or 100 observations.
    timed = after["streamgate_delivery_latency_seconds_count"] - before["streamgate_delivery_latency_seconds_count"]
    assert timed in (50, 100), timed
    buckets = sorted(((float(name.split('le="')[1].rstrip('"}')) if "+Inf" not in name else float("inf")), value)
                     for name, value in after.items() if name.startswith("streamgate_delivery_latency_seconds_bucket"))
    assert [b for b, _ in buckets][:3] == [0.00005, 0.0001, 0.00025], buckets
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets are cumulative"
    assert counts[-1] == after["streamgate_delivery_latency_seconds_count"]
    # On an idle loopback machine a record is written within 100 ms of its framing.
    within_100ms = dict(buckets)[0.1]
    assert within_100ms >= 0.95 * counts[-1], buckets


def test_per_partition_progress_lag_and_resumes_by_source_and_result(gateway_factory, create_topic, producer):
    topic = create_topic(partitions=2)
    admin_port = free_port()
    gw = gateway_factory([topic], {"admin": {"enabled": True, "host": "127.0.0.1", "port": admin_port},
                                   "recovery": {"cache": {"max_messages": 3}}})
    admin = f"http://127.0.0.1:{admin_port}"
    wait_admin(admin)
    reports = producer.produce(topic, [(f"k{i % 4}", b"v%d" % i) for i in range(40)])
    last = {}
    count = {}
    for report in reports:
        last[report.partition] = max(last.get(report.partition, -1), report.offset)
        count[report.partition] = count.get(report.partition, 0) + 1

    def caught_up():
        samples = scrape(admin)
        return samples if all(
            samples.get(f'streamgate_source_position{{topic="{topic}",partition="{p}"}}') == last[p] + 1
            for p in last) else None

    import time
    deadline = time.monotonic() + 10
    while not (samples := caught_up()):
        assert time.monotonic() < deadline, "the source positions did not reach the produced offsets"
        time.sleep(0.05)
    for p in last:
        labels = f'{{topic="{topic}",partition="{p}"}}'
        assert samples[f"streamgate_source_records_total{labels}"] == count[p]
        assert samples[f"streamgate_source_log_end_offset{labels}"] == last[p] + 1
        assert samples[f"streamgate_source_lag{labels}"] == 0

    by_key = {}
    for i, report in enumerate(reports):
        by_key.setdefault(f"k{i % 4}", []).append(report)
    k0 = by_key["k0"]
    endpoint = f"/{topic}/k0"

    async def body():
        client = await WsClient.connect(gw.ws_url)
        await client.subscribe(endpoint)
        # Learn the epoch from the live marker; resume within the cache (the
        # last 3 messages), older than it (read from Kafka), and from a stale epoch.
        live = await client.next_text()
        assert live["type"] == "live", live
        epoch = live["epoch"]
        await client.unsubscribe(endpoint)
        for seq in (k0[-2].offset, k0[1].offset):
            await client.request({"type": "subscribe", "endpoint": endpoint, "from": {"epoch": epoch, "seq": seq}})
            while (await client.next_text())["type"] != "replayed":
                pass
            await client.unsubscribe(endpoint)
        await client.request({"type": "subscribe", "endpoint": endpoint, "from": {"epoch": "0000000000000000", "seq": 1}})
        while (await client.next_text())["type"] != "notice":
            pass
        await client.close()

    run_async(body())
    after = scrape(admin)
    assert after['streamgate_resumes_total{source="cache",result="replayed"}'] == 1
    assert after['streamgate_resumes_total{source="kafka",result="replayed"}'] == 1
    assert after['streamgate_resumes_total{source="cache",result="stale_epoch"}'] == 1
    assert after['streamgate_resumes_total{source="kafka",result="failed"}'] == 0
