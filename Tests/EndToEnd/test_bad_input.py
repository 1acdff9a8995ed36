"""Hostile and broken clients: bad HTTP, bad WebSocket framing, slow peers.

These speak raw TCP so that they can send what no WebSocket library would.
After every case a well-behaved client on the same gateway must still
subscribe and receive a produced message.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import time

import pytest

from conftest import WsClient, assert_gateway_serves, make_topic, parse_delivery, print_log_on_failure, run_async
from raw_ws import (RawWs, client_frame, close_payload, headers_of, http_exchange, raw_connect, read_to_eof,
                    status_of, upgrade_request)

MAX_MESSAGE_BYTES = 1024
MAX_OUTPUT_BYTES = 65536
HANDSHAKE_TIMEOUT_MS = 500
CLOSE_TIMEOUT_MS = 2000

BAD_INPUT_OVERRIDES = {
    "websocket": {
        "max_message_bytes": MAX_MESSAGE_BYTES,
        "max_output_bytes": MAX_OUTPUT_BYTES,
        "handshake_timeout_ms": HANDSHAKE_TIMEOUT_MS,
        "close_timeout_ms": CLOSE_TIMEOUT_MS,
    },
}


@pytest.fixture(scope="module")
def _shared_bad_gateway(module_gateway_launcher, broker):
    topic = make_topic(broker, "bad-input", partitions=1)
    gw = module_gateway_launcher.start([topic], BAD_INPUT_OVERRIDES)
    gw.topic = topic
    return gw


@pytest.fixture
def bad_gateway(_shared_bad_gateway, request):
    """One gateway for the whole module: every case runs against the gateway
    that survived all the earlier ones."""
    gw = _shared_bad_gateway
    assert gw.proc.poll() is None, f"the gateway died earlier (exit {gw.proc.returncode}):\n{gw.log_tail()}"
    yield gw
    print_log_on_failure(request, gw)


def still_serves(gw, producer):
    run_async(assert_gateway_serves(gw, gw.topic, producer), 30)


# ------------------------------------------------------------- HTTP layer --

GARBAGE = [
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n", id="tls-hello"),
    pytest.param(b"hello there\r\n\r\n", id="words"),
    pytest.param(b"\r\n\r\n", id="empty-head"),
    pytest.param(b"GET /ws\r\nHost: x\r\n\r\n", id="no-version"),
    pytest.param(b"GET /ws HTTP/1.1\nHost: x\n\n\r\n\r\n", id="bare-lf"),
    pytest.param(b"GET /ws HTTP/1.1\r\nno colon here\r\n\r\n", id="header-without-colon"),
    pytest.param(b"GET /ws HTTP/2.0\r\nHost: x\r\n\r\n", id="http2"),
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_handshake_gets_400(bad_gateway, producer, garbage):
    response, closed = http_exchange(bad_gateway.port, garbage)
    assert response.startswith(b"HTTP/1.1 400 "), response[:200]
    assert closed, "the server did not close the connection after its 400"
    still_serves(bad_gateway, producer)


MALFORMED_GET = [
    pytest.param(b"GET ws HTTP/1.1\r\nHost: x\r\n\r\n", id="relative-target"),
    pytest.param(b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n", id="control-char-in-target"),
    pytest.param(b"GET /nowhere HTTP/1.1\r\nno colon here\r\n\r\n", id="bad-header-unknown-path"),
    pytest.param(b"GET /readyz HTTP/1.1\r\nno colon here\r\n\r\n", id="bad-header-readyz"),
    pytest.param(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", id="bad-header-console"),
    pytest.param(b"GET /readyz HTTP/9.9\r\nHost: x\r\n\r\n", id="bad-version-readyz"),
]


@pytest.mark.parametrize("request_head", MALFORMED_GET)
def test_malformed_get_gets_400_whatever_the_path(bad_gateway, producer, request_head):
    """A malformed GET request head gets 400 whatever its path: only a
    well-formed request is routed to a static page, /readyz or 404."""
    response, closed = http_exchange(bad_gateway.port, request_head)
    assert closed
    assert status_of(response) == 400, response.split(b"\r\n", 1)[0]
    still_serves(bad_gateway, producer)


def test_plain_get_without_upgrade_gets_426(bad_gateway, producer):
    request, _ = upgrade_request("/ws", upgrade=False)
    response, closed = http_exchange(bad_gateway.port, request)
    assert status_of(response) == 426, response
    headers = headers_of(response)
    assert headers.get("upgrade", "").lower() == "websocket"
    assert headers.get("sec-websocket-version") == "13"
    assert closed
    still_serves(bad_gateway, producer)


@pytest.mark.parametrize("upgrade", [False, True], ids=["plain", "upgrade"])
def test_unknown_path_gets_404(bad_gateway, producer, upgrade):
    request, _ = upgrade_request("/nowhere", upgrade=upgrade)
    response, closed = http_exchange(bad_gateway.port, request)
    assert status_of(response) == 404, response
    assert closed
    still_serves(bad_gateway, producer)


def test_post_gets_405(bad_gateway, producer):
    body = b'{"type":"subscribe"}'
    request, _ = upgrade_request("/ws", method="POST", extra=f"Content-Length: {len(body)}\r\n")
    response, closed = http_exchange(bad_gateway.port, request + body)
    assert status_of(response) == 405, response
    assert headers_of(response).get("allow") == "GET"
    assert closed
    still_serves(bad_gateway, producer)


@pytest.mark.parametrize("version", ["8", "12", "14", "1 3"])
def test_wrong_websocket_version_gets_426(bad_gateway, producer, version):
    request, _ = upgrade_request("/ws", version=version)
    response, closed = http_exchange(bad_gateway.port, request)
    assert status_of(response) == 426, response
    assert headers_of(response).get("sec-websocket-version") == "13"
    assert closed
    still_serves(bad_gateway, producer)


@pytest.mark.parametrize("key", ["", "short", "!!!!!!!!!!!!!!!!!!!!!!!!"], ids=["empty", "short", "not-base64"])
def test_bad_websocket_key_gets_400(bad_gateway, producer, key):
    request, _ = upgrade_request("/ws", key=key or " ")
    response, closed = http_exchange(bad_gateway.port, request)
    assert status_of(response) == 400, response
    assert closed
    still_serves(bad_gateway, producer)


@pytest.mark.parametrize("complete", [True, False], ids=["complete-head", "unterminated-head"])
def test_oversized_request_head_gets_431(bad_gateway, producer, complete):
    max_header = bad_gateway.config["websocket"]["max_header_bytes"]
    request, _ = upgrade_request("/ws", extra=f"X-Padding: {'a' * (max_header + 100)}\r\n")
    if not complete:
        request = request[:-4]
    response, closed = http_exchange(bad_gateway.port, request)
    assert status_of(response) == 431, response
    assert closed
    still_serves(bad_gateway, producer)


def test_slow_loris_handshake_is_cut_after_timeout(bad_gateway, producer):
    """A request head that trickles in and never ends is dropped once
    handshake_timeout_ms has passed, however busy the peer looks."""
    with raw_connect(bad_gateway.port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed_after = None
        while time.monotonic() - started < 5:
            try:
                sock.sendall(b"X")
                sock.settimeout(0.05)
                if sock.recv(4096) == b"":
                    closed_after = time.monotonic() - started
                    break
            except (socket.timeout, TimeoutError):
                continue
            except (ConnectionResetError, BrokenPipeError):
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "the slow handshake was never cut"
    timeout = HANDSHAKE_TIMEOUT_MS / 1000
    assert timeout * 0.9 <= closed_after <= timeout + 1.0, f"cut after {closed_after:.3f}s, timeout is {timeout}s"
    still_serves(bad_gateway, producer)


def test_idle_connection_without_request_is_cut(bad_gateway, producer):
    with raw_connect(bad_gateway.port) as sock:
        started = time.monotonic()
        data, closed = read_to_eof(sock, 5)
        elapsed = time.monotonic() - started
    assert closed and data == b"", data
    assert elapsed <= HANDSHAKE_TIMEOUT_MS / 1000 + 1.0, elapsed
    still_serves(bad_gateway, producer)


# -------------------------------------------------------- WebSocket layer --

def _oversized_fragments():
    half = MAX_MESSAGE_BYTES // 2 + 10
    return client_frame(0x2, b"a" * half, fin=False) + client_frame(0x0, b"b" * half, fin=True)


PROTOCOL_VIOLATIONS = [
    pytest.param(client_frame(0x1, b'{"type":"subscribe"}', masked=False), 1002, id="unmasked-text"),
    pytest.param(client_frame(0x2, b"\x00" * 10, masked=False), 1002, id="unmasked-binary"),
    pytest.param(client_frame(0x9, b"ping", masked=False), 1002, id="unmasked-ping"),
    pytest.param(client_frame(0x2, b"x" * (MAX_MESSAGE_BYTES + 1)), 1009, id="binary-over-limit"),
    pytest.param(client_frame(0x1, b"x" * (4 * MAX_MESSAGE_BYTES)), 1009, id="text-over-limit"),
    pytest.param(client_frame(0x2, b"", declared_length=1 << 40), 1009, id="declared-1TiB"),
    pytest.param(_oversized_fragments(), 1009, id="fragments-over-limit"),
    pytest.param(client_frame(0x1, b"\xff\xfe\xfd"), 1007, id="invalid-utf8"),
    pytest.param(client_frame(0x1, b'{"a":"\xed\xa0\x80"}'), 1007, id="utf8-surrogate"),
    pytest.param(client_frame(0x1, b'{"a":"\xc3', fin=False) + client_frame(0x0, b'"}'), 1007,
                 id="utf8-split-invalid"),
    pytest.param(client_frame(0x1, b"caf\xc3", fin=True), 1007, id="utf8-truncated-at-fin"),
    pytest.param(client_frame(0x3, b"x"), 1002, id="reserved-opcode-3"),
    pytest.param(client_frame(0x7), 1002, id="reserved-opcode-7"),
    pytest.param(client_frame(0xB, b"x"), 1002, id="reserved-opcode-B"),
    pytest.param(client_frame(0xF), 1002, id="reserved-opcode-F"),
    pytest.param(client_frame(0x1, b"{}", rsv=0x4), 1002, id="rsv1-without-extension"),
    pytest.param(client_frame(0x9, b"p" * 126), 1002, id="control-over-125"),
    pytest.param(client_frame(0x9, b"p", fin=False), 1002, id="fragmented-ping"),
    pytest.param(client_frame(0x0, b"orphan"), 1002, id="continuation-without-start"),
    pytest.param(client_frame(0x1, b"{", fin=False) + client_frame(0x1, b"}"), 1002, id="new-message-mid-fragment"),
    pytest.param(client_frame(0x8, b"\x03"), 1002, id="close-1-byte"),
    pytest.param(client_frame(0x8, close_payload(999)), 1002, id="close-code-999"),
    pytest.param(client_frame(0x8, close_payload(1005)), 1002, id="close-code-1005"),
    pytest.param(client_frame(0x8, close_payload(1000, b"\xff")), 1007, id="close-reason-invalid-utf8"),
]


@pytest.mark.parametrize("data,code", PROTOCOL_VIOLATIONS)
def test_protocol_violation_closes_with_code(bad_gateway, producer, data, code):
    ws = RawWs.open(bad_gateway.port)
    try:
        ws.send(data)
        frames, got = ws.read_until_close()
        assert got == code, f"close code {got}, expected {code} (frames before it: {frames})"
        ws.assert_closed()
    finally:
        ws.close()
    still_serves(bad_gateway, producer)


def test_wellformed_control_frames(bad_gateway, producer):
    """The positive side of the framing rules: pings are answered, masked
    fragmented requests reassembled, and a clean close is echoed."""
    ws = RawWs.open(bad_gateway.port)
    try:
        ws.send(client_frame(0x9, b"are you there"))
        assert ws.read_frame() == (0xA, b"are you there")
        ws.send(client_frame(0xA, b"unsolicited pong"))  # ignored
        endpoint = f"/{bad_gateway.topic}/frag"
        request = json.dumps({"type": "subscribe", "endpoint": endpoint, "id": 1}).encode()
        ws.send(client_frame(0x1, request[:5], fin=False) + client_frame(0x9, b"mid") +
                client_frame(0x0, request[5:12], fin=False) + client_frame(0x0, request[12:]))
        assert ws.read_frame() == (0xA, b"mid")
        opcode, payload = ws.read_frame()
        assert (opcode, json.loads(payload)) == (1, {"type": "subscribed", "endpoint": endpoint, "id": 1})
        report = producer.produce_one(bad_gateway.topic, "frag", b"\x00fragmented\xff")
        opcode, payload = ws.read_frame(10)
        assert opcode == 2
        d = parse_delivery(payload)
        assert (d.endpoint, d.payload, d.seq) == (endpoint, b"\x00fragmented\xff", report.offset)
        ws.send(client_frame(0x8, close_payload(1000, b"bye")))
        frames, code = ws.read_until_close()
        assert (frames, code) == ([], 1000)
        ws.assert_closed()
    finally:
        ws.close()
    still_serves(bad_gateway, producer)


@pytest.fixture
def own_bad_gateway(gateway_factory, create_topic):
    topic = create_topic(partitions=1)
    gw = gateway_factory([topic], BAD_INPUT_OVERRIDES)
    gw.topic = topic
    return gw


def test_every_refused_and_dropped_handshake_is_counted(own_bad_gateway, producer):
    """Each HTTP refusal of a request (400, 404, 405, 426, 431) counts as
    handshakes_rejected and each head not completed in time as
    handshake_timeouts, in the gateway's stop line; a served static path
    and /readyz count as neither."""
    gw = own_bad_gateway
    max_header = gw.config["websocket"]["max_header_bytes"]
    refusals = {
        400: b"hello there\r\n\r\n",
        404: upgrade_request("/nowhere")[0],
        405: upgrade_request("/ws", method="POST")[0],
        426: upgrade_request("/ws", upgrade=False)[0],
        431: upgrade_request("/ws", extra=f"X-Padding: {'a' * (max_header + 100)}\r\n")[0],
    }
    for status, request in refusals.items():
        response, closed = http_exchange(gw.port, request)
        assert status_of(response) == status and closed, (status, response)
    response, _ = http_exchange(gw.port, upgrade_request("/readyz", upgrade=False)[0])
    assert status_of(response) == 200, response
    for _ in range(2):                                       # heads that never end
        with raw_connect(gw.port) as sock:
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            assert read_to_eof(sock, HANDSHAKE_TIMEOUT_MS / 1000 + 3) == (b"", True)
    still_serves(gw, producer)
    gw.stop()
    stopped = [line for line in gw.log().splitlines() if "handshakes_rejected=" in line][-1]
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", stopped)}
    assert counts["handshakes_rejected"] == 5 and counts["handshake_timeouts"] == 2, stopped


def test_slow_consumer_is_closed_with_1008(own_bad_gateway, producer, print_result):
    """A subscriber that stops reading while deliveries pile up is cut off
    with 1008 once its output queue passes max_output_bytes; the stream it
    got up to the close is intact, and everyone else is still served."""
    bad_gateway = own_bad_gateway
    topic = bad_gateway.topic
    flood_endpoint = f"/{topic}/flood"
    slow = RawWs.open(bad_gateway.port, rcvbuf=4096)
    slow.send_text(json.dumps({"type": "subscribe", "endpoint": flood_endpoint, "id": 1}))
    opcode, payload = slow.read_frame()
    assert (opcode, json.loads(payload)) == (1, {"type": "subscribed", "endpoint": flood_endpoint, "id": 1})

    # Far more than max_output_bytes plus every kernel buffer on the way.
    payload_size = 16 * 1024
    count = 640
    items = [("flood", os.urandom(16) * (payload_size // 16)) for _ in range(count)]

    async def flood():
        witness = await WsClient.connect(bad_gateway.ws_url, name="witness")
        await witness.subscribe(f"/{topic}/marker", id=1)
        reports = await asyncio.to_thread(producer.produce, topic, items)
        # Same partition, after the flood: once the witness sees the marker,
        # the gateway has published every flood record.
        marker = await asyncio.to_thread(producer.produce_one, topic, "marker", b"after the flood")
        [d] = await witness.wait_deliveries(1, 20)
        assert (d.payload, d.seq) == (b"after the flood", marker.offset)
        await asyncio.sleep(0.3)  # the slow client may sit on the other loop
        await witness.close()
        return reports

    try:
        reports = run_async(flood(), 60)
        frames, code = slow.read_until_close(20)
        assert code == 1008, f"close code {code} after {len(frames)} deliveries"
        # How many deliveries made it before the cut depends on kernel buffers
        # and on how the loop batched the flood; never all of them.
        assert len(frames) < count, f"{len(frames)} of {count} deliveries before the close"
        for (opcode, payload), report in zip(frames, reports):
            assert opcode == 2
            d = parse_delivery(payload)
            assert (d.endpoint, d.seq) == (flood_endpoint, report.offset)
            assert d.payload == report.value, f"delivery at offset {report.offset} is corrupt"
        slow.send(client_frame(0x8, close_payload(1008)))
        slow.assert_closed(CLOSE_TIMEOUT_MS / 1000 + 3)
        print_result(f"\nslow consumer: cut with 1008 after {len(frames)} of {count} deliveries "
              f"({sum(len(p) for _, p in frames)} bytes)")
    finally:
        slow.close()
    still_serves(bad_gateway, producer)
    assert bad_gateway.stop() == 0
    assert "slow_consumer_closes=1" in bad_gateway.log(), bad_gateway.log_tail()
