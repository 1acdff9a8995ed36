"""Memory safety under the conditions that once crashed the gateway: a
connection destroyed while its loop held its writes (write pacing: a fixed
`websocket.min_write_delay_ms`, or a saturated loop) used to stay on the
loop's write list after it was freed, and the next flush walked freed memory
(`malloc(): unsorted double linked list corrupted`, wrong bytes).

Each test drives the gateway through that life — abuse churn, slow consumers
cut with output queued, connections closing with writes in flight — and
checks that it survives, that well-behaved clients receive every message
byte for byte and in order, and that no sanitizer report appears (the
sanitizer suite runs these against an AddressSanitizer build)."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
import time

from conftest import WsClient, assert_no_sanitizer_report, start_generator_gateway
from raw_ws import RawWs, client_frame, raw_connect, upgrade_request

FILLER = 0x2A  # the generator's payload filler after send time and sequence


def stop_line(tmp_path) -> str:
    return [line for line in (tmp_path / "generator.log").read_text().splitlines() if " stopped" in line][-1]


def stat(line: str, name: str) -> int:
    return int(line.split(f"{name}=")[1].split()[0])


def check_generator_deliveries(deliveries, key: int, keys: int, payload_bytes: int) -> None:
    """Every delivery is the generator's record for `key`, byte for byte, and
    none is missing or repeated between the first and the last."""
    assert deliveries, "no delivery"
    expected_filler = bytes([FILLER]) * (payload_bytes - 16)
    previous = None
    for d in deliveries:
        assert d.endpoint == f"/bench/k{key}", d.endpoint
        assert len(d.payload) == payload_bytes, f"seq {d.seq}: {len(d.payload)} bytes"
        sequence = struct.unpack(">Q", d.payload[8:16])[0]
        assert d.seq == (sequence - 1) * keys + key, f"seq {d.seq} carries the payload of sequence {sequence}"
        assert d.payload[16:] == expected_filler, f"seq {d.seq}: payload bytes differ from the record's"
        if previous is not None:
            assert sequence == previous + 1, f"sequence {previous} then {sequence}: lost, repeated or reordered"
        previous = sequence


# ------------------------------------------------------------------ abuse --

def _subscribe_text(endpoint: str) -> bytes:
    return client_frame(0x1, ('{"type": "subscribe", "endpoint": "%s"}' % endpoint).encode())


def _one_abusive_connection(port: int, kind: int) -> None:
    """Connects, sends something that makes the gateway queue output (and
    often end the connection), waits a moment without reading, and goes."""
    sock = raw_connect(port, rcvbuf=4096, timeout=2)
    try:
        request, _ = upgrade_request("/ws")
        if kind == 0:
            sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        elif kind == 1:
            sock.sendall(request + client_frame(0x1, b"hello", masked=False))   # 1002, then drain
        elif kind == 2:
            sock.sendall(request + _subscribe_text("/bench/k1"))                 # output queued, never read
        elif kind == 3:
            sock.sendall(request + client_frame(0x8, struct.pack(">H", 1000)))  # close handshake
        elif kind == 4:
            sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")               # 400
        else:
            sock.sendall(request[: len(request) // 2])                          # handshake left half done
        time.sleep(0.002)
        if kind % 2:
            # An abortive close (RST) now and then: the gateway sees a write error or a reset.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass  # refused or reset under load: part of the abuse
    finally:
        sock.close()


def churn(port: int, seconds: float, threads: int = 6, pause: float = 0.0) -> int:
    """`threads` threads open and drop abusive connections for `seconds`,
    each waiting `pause` seconds between two; returns how many were made."""
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def worker(index: int) -> None:
        kinds = random.Random(index)
        while time.monotonic() < stop:
            try:
                _one_abusive_connection(port, kinds.randrange(6))
            except OSError:
                time.sleep(0.01)
            counts[index] += 1
            time.sleep(pause)

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 30)
    return sum(counts)


async def receive_during(port: int, endpoint: str, work, readers: int = 1) -> tuple[list[list], object]:
    """`readers` well-behaved subscribers read `endpoint` while `work` runs
    in a thread; returns each one's deliveries and what `work` returned."""
    clients = [await WsClient.connect(f"ws://127.0.0.1:{port}/ws", name=f"steady-{i}") for i in range(readers)]
    for client in clients:
        await client.subscribe(endpoint)
    job = asyncio.ensure_future(asyncio.to_thread(work))

    async def read(client: WsClient) -> None:
        while not job.done():
            try:
                await client.wait_deliveries(len(client.deliveries) + 1, 1.0)
            except TimeoutError:
                pass
        await client.drain(0.5)
        await client.close()

    await asyncio.gather(*(read(c) for c in clients))
    return [c.deliveries for c in clients], job.result()


def stop_and_check(proc, tmp_path) -> str:
    assert proc.poll() is None, f"the gateway died (exit {proc.returncode}):\n{(tmp_path / 'generator.log').read_text()[-4000:]}"
    proc.terminate()
    assert proc.wait(20) == 0, (tmp_path / "generator.log").read_text()[-4000:]
    assert_no_sanitizer_report((tmp_path / "generator.log").read_text())
    return stop_line(tmp_path)


def test_connections_ending_while_their_writes_are_held(tmp_path, print_result):
    """The reproduction of the crash: writes held 50 ms on two loops while
    thousands of connections end (protocol errors, resets, handshakes left
    half done, plain GETs) with output queued."""
    keys = 10
    proc, port = start_generator_gateway(
        tmp_path, {"keys": keys, "rate_per_key": 10, "payload_bytes": 64},
        {"event_loops": 2, "websocket": {"min_write_delay_ms": 50, "handshake_timeout_ms": 500}})
    try:
        [deliveries], made = asyncio.run(asyncio.wait_for(
            receive_during(port, "/bench/k3", lambda: churn(port, 8.0)), 90))
    finally:
        line = stop_and_check(proc, tmp_path)
    check_generator_deliveries(deliveries, 3, keys, 64)
    assert len(deliveries) >= 50, f"{len(deliveries)} deliveries in ~8 s at 10/s"
    assert stat(line, "protocol_errors") >= 50, line
    print_result(f"held writes (50 ms) and {made} abusive connections ending: the gateway lives; "
                 f"a subscriber got {len(deliveries)} messages, all byte-exact and in order")


def test_a_saturated_loop_ending_connections_while_writes_are_held(tmp_path, print_result):
    """The default configuration: a million records a second saturate loop
    0, which then holds its writes (adaptive pacing) while connections end."""
    keys = 1000
    proc, port = start_generator_gateway(
        tmp_path, {"keys": keys, "rate_per_key": 100, "payload_bytes": 16},
        {"event_loops": 1, "websocket": {"handshake_timeout_ms": 500},
         "recovery": {"cache": {"max_total_bytes": 8 << 20}}})
    try:
        # Few, paced abusers, so the loop gets the CPU it needs to count as saturated.
        [deliveries], made = asyncio.run(asyncio.wait_for(
            receive_during(port, "/bench/k7", lambda: churn(port, 8.0, threads=2, pause=0.005)), 90))
    finally:
        line = stop_and_check(proc, tmp_path)
    check_generator_deliveries(deliveries, 7, keys, 16)
    assert stat(line, "delayed_write_periods") >= 1, f"the loop never held its writes: {line}"
    print_result(f"saturated loop holding writes ({stat(line, 'delayed_write_periods')} periods), {made} abusive "
                 f"connections ending: a subscriber got {len(deliveries)} messages, all byte-exact and in order")


# ---------------------------------------------------------- slow consumers --

def _slow_reader(port: int, keys: int, payload_bytes: int, bytes_per_second: int, seconds: float, out: list) -> None:
    """Reads the endpoint at a fixed pace until the gateway cuts it or time
    is up; every message it did get must be exact. Appends (deliveries,
    close code or None)."""
    from conftest import parse_delivery

    ws = RawWs.open(port, rcvbuf=16384)
    ws.send(_subscribe_text("/bench/k1"))
    deliveries, code = [], None
    deadline = time.monotonic() + seconds
    read = 0
    started = time.monotonic()
    try:
        while time.monotonic() < deadline:
            opcode, payload = ws.read_frame(timeout=5)
            if opcode == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                break
            if opcode == 0x2:
                deliveries.append(parse_delivery(payload))
            read += len(payload)
            ahead = read / bytes_per_second - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    except (EOFError, ConnectionResetError):
        code = "eof"
    finally:
        ws.close()
    out.append((deliveries, code))


def test_slow_consumers_are_cut_with_output_queued_while_others_get_every_byte(tmp_path, print_result):
    """4 KiB records at ~2 MB/s to one endpoint with 300 subscribers that
    never read (small receive buffers) and 6 that read at 0.5-1 MB/s: the
    output cap cuts them (close 1008, then destroyed at the close timeout
    with output still queued and writes held), some reset their connections
    meanwhile, and two fast readers still get every message exactly."""
    keys, payload_bytes = 1, 4096
    proc, port = start_generator_gateway(
        tmp_path, {"keys": keys, "rate_per_key": 500, "payload_bytes": payload_bytes},
        {"event_loops": 2,
         "websocket": {"max_output_bytes": 262144, "close_timeout_ms": 300, "min_write_delay_ms": 20}})
    never_reading: list[RawWs] = []
    try:
        for _ in range(300):
            ws = RawWs.open(port, rcvbuf=4096)
            ws.send(_subscribe_text("/bench/k1"))
            never_reading.append(ws)
        slow: list = []
        readers = [threading.Thread(target=_slow_reader, args=(port, keys, payload_bytes, rate, 8.0, slow), daemon=True)
                   for rate in (500_000, 600_000, 700_000, 800_000, 900_000, 1_000_000)]
        for r in readers:
            r.start()

        def reset_while_receiving() -> int:
            # Subscribers that read for a moment, then reset their connection
            # while the gateway holds output for them (written every 20 ms,
            # queued every 2 ms): destroyed while on the write list.
            stop = time.monotonic() + 6.0
            resets = [0] * 4

            def worker(index: int) -> None:
                pace = random.Random(index)
                while time.monotonic() < stop:
                    ws = RawWs.open(port, rcvbuf=16384)
                    ws.send(_subscribe_text("/bench/k1"))
                    until = time.monotonic() + pace.uniform(0.05, 0.3)
                    try:
                        while time.monotonic() < until:
                            ws.read_frame(timeout=2)
                    except (TimeoutError, EOFError, OSError):
                        pass
                    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    ws.close()
                    resets[index] += 1

            workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(4)]
            for w in workers:
                w.start()
            for w in workers:
                w.join(30)
            return sum(resets)

        fast, resets = asyncio.run(asyncio.wait_for(
            receive_during(port, "/bench/k1", reset_while_receiving, readers=2), 120))
        for r in readers:
            r.join(30)
    finally:
        for ws in never_reading:
            ws.close()
        line = stop_and_check(proc, tmp_path)
    for deliveries in fast:
        check_generator_deliveries(deliveries, 1, keys, payload_bytes)
        assert len(deliveries) >= 1000, f"a fast reader got only {len(deliveries)} messages in ~7 s at 500/s"
    assert len(slow) == 6
    for deliveries, code in slow:
        if deliveries:
            check_generator_deliveries(deliveries, 1, keys, payload_bytes)
        assert code in (1008, None, "eof"), code
    cut = stat(line, "slow_consumer_closes")
    assert cut >= 150, f"only {cut} slow consumers cut: {line}"
    print_result(f"slow consumers: {cut} cut with output queued, {sum(1 for _, c in slow if c == 1008)} of 6 slow "
                 f"readers closed with 1008 after exact deliveries; fast readers got "
                 f"{', '.join(str(len(d)) for d in fast)} messages ({resets} subscribers reset while receiving), all byte-exact and in order")
