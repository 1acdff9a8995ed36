"""W3C trace context from producer to client (docs/protocol.md, delivery
frames): with `tracing.propagate` a record's `traceparent` header travels in
its delivery frame — live, from the cache and read again from Kafka — and a
client's publish can set it; without it, frames stay as they were."""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import threading

from conftest import WsClient, run_async

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
SAMPLED_OTHER = "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01"
UNSAMPLED = "00-2af7651916cd43dd8448eb211c80319c-d7ad6b7169203331-00"


def test_a_records_traceparent_reaches_clients_live_replayed_and_published(gateway_factory, create_topic, producer):
    topic = create_topic()
    gw = gateway_factory([topic], {"tracing": {"propagate": True}, "recovery": {"cache": {"max_messages": 2}}})
    endpoint = f"/{topic}/k"

    async def body():
        client = await WsClient.connect(gw.ws_url)
        assert client.welcome.get("trace_context") is True, client.welcome
        await client.subscribe(endpoint)
        reports = await asyncio.to_thread(producer.produce, topic, [
            ("k", b"traced", [("traceparent", TRACE.encode())]),
            ("k", b"untraced"),
            ("k", b"malformed", [("traceparent", b"00-not-a-trace-context")]),
            ("k", b"ff-version", [("traceparent", ("ff" + TRACE[2:]).encode())]),
            ("k", b"other headers", [("x-other", b"1"), ("traceparent", OTHER.encode())]),
        ])
        live = list(await client.wait_deliveries(5))
        # A publish carrying trace context: the record gets the header, so its delivery carries it too.
        published = await client.request({"type": "publish", "endpoint": endpoint, "payload": "from a client",
                                          "traceparent": TRACE, "id": 1})
        assert published["type"] == "published", published
        await client.wait_deliveries(6)
        refused = await client.request({"type": "publish", "endpoint": endpoint, "payload": "x",
                                        "traceparent": "00-zz", "id": 2})
        assert refused["type"] == "error" and refused["code"] == "bad_request", refused
        assert "traceparent" in refused["message"], refused
        await client.unsubscribe(endpoint)

        # Read again: the first record is older than the 2-message cache (from Kafka), the last from the cache.
        resumed = await WsClient.connect(gw.ws_url, name="resumed")
        await resumed.request({"type": "subscribe", "endpoint": endpoint,
                               "from": {"epoch": live[0].epoch, "seq": reports[0].offset - 1}})
        replay = list(await resumed.wait_deliveries(6))
        await client.close()
        await resumed.close()
        return live, client.deliveries[5], replay

    live, from_publish, replay = run_async(body())
    assert [d.traceparent for d in live] == [TRACE, None, None, None, OTHER], live
    assert [d.flags for d in live] == [2, 0, 0, 0, 2]
    assert [d.payload for d in live] == [b"traced", b"untraced", b"malformed", b"ff-version", b"other headers"]
    assert (from_publish.payload, from_publish.traceparent) == (b"from a client", TRACE)
    assert [(d.payload, d.traceparent) for d in replay] == [(d.payload, d.traceparent) for d in live] + [
        (b"from a client", TRACE)]


def test_without_tracing_frames_and_welcome_stay_as_they_were(gateway_factory, create_topic, producer):
    topic = create_topic()
    gw = gateway_factory([topic])
    endpoint = f"/{topic}/k"

    async def body():
        client = await WsClient.connect(gw.ws_url)
        assert "trace_context" not in client.welcome, client.welcome
        await client.subscribe(endpoint)
        await asyncio.to_thread(producer.produce, topic, [("k", b"traced", [("traceparent", TRACE.encode())])])
        # Off: a publish's traceparent is an unknown field, ignored.
        published = await client.request({"type": "publish", "endpoint": endpoint, "payload": "p",
                                          "traceparent": "not checked", "id": 1})
        assert published["type"] == "published", published
        deliveries = await client.wait_deliveries(2)
        await client.close()
        return deliveries

    deliveries = run_async(body())
    assert [(d.flags, d.traceparent, d.payload) for d in deliveries] == [(0, None, b"traced"), (0, None, b"p")]


class OtlpCollector:
    """An OTLP/HTTP collector (JSON encoding) on loopback: keeps every span
    the gateway exports, with its resource's attributes."""

    def __init__(self):
        spans = self.spans = []
        protobuf = self.protobuf = []   # bodies of the default encoding, undecoded
        lock = self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers["Content-Type"] == "application/x-protobuf":
                    with lock:
                        protobuf.append(raw)
                    body = {}
                else:
                    body = json.loads(raw)
                with lock:
                    for resource_spans in body.get("resourceSpans", []):
                        resource = {a["key"]: a["value"] for a in resource_spans["resource"].get("attributes", [])}
                        for scope in resource_spans.get("scopeSpans", []):
                            for span in scope.get("spans", []):
                                spans.append({**span, **ids(span), "resource": resource, "path": self.path,
                                              "auth": self.headers.get("x-collector-key")})
                reply = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def named(self, prefix: str) -> list[dict]:
        with self.lock:
            return [s for s in self.spans if s["name"].startswith(prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def ids(span: dict) -> dict:
    """Trace and span ids as hex. OTLP/JSON asks for hex; swift-otel's JSON
    encoder writes protobuf's default for bytes, base64: accept both."""
    def hex_of(value: str, length: int) -> str:
        if len(value) == length and all(c in "0123456789abcdef" for c in value):
            return value
        return base64.b64decode(value).hex()
    return {key: hex_of(span[key], 32 if key == "traceId" else 16)
            for key in ("traceId", "spanId", "parentSpanId") if span.get(key)}


def attributes(span: dict) -> dict:
    return {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}


def test_exported_spans_follow_a_message_from_producer_through_the_gateway_to_the_client(
        gateway_factory, create_topic, producer):
    collector = OtlpCollector()
    try:
        topic = create_topic()
        gw = gateway_factory([topic], {"tracing": {"propagate": True, "export": {
            "endpoint": collector.url, "protocol": "http/json", "service_name": "streamgate-test",
            "headers": {"x-collector-key": "k-123"}, "schedule_delay_ms": 100}}})
        endpoint = f"/{topic}/k"

        async def body():
            client = await WsClient.connect(gw.ws_url)
            await client.subscribe(endpoint)
            await asyncio.to_thread(producer.produce, topic, [
                ("k", b"traced", [("traceparent", TRACE.encode())]), ("k", b"untraced")])
            await client.wait_deliveries(2)
            published = await client.request({"type": "publish", "endpoint": endpoint, "payload": "from a client",
                                              "traceparent": SAMPLED_OTHER, "id": 1})
            assert published["type"] == "published", published
            unsampled = await client.request({"type": "publish", "endpoint": endpoint, "payload": "not sampled",
                                              "traceparent": UNSAMPLED, "id": 2})
            assert unsampled["type"] == "published", unsampled
            await client.wait_deliveries(4)
            deadline = asyncio.get_running_loop().time() + 15
            while len(collector.named("deliver")) < 2 or not collector.named("publish"):
                assert asyncio.get_running_loop().time() < deadline, (collector.spans, client.deliveries)
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)   # nothing more comes: the untraced record has no span
            await client.close()
            return client.deliveries, published

        deliveries, published = run_async(body(), 40)
    finally:
        collector.close()

    trace_id, producer_span = TRACE.split("-")[1:3]
    other_trace, client_span = SAMPLED_OTHER.split("-")[1:3]
    delivers, [publish] = collector.named("deliver"), collector.named("publish")
    assert len(delivers) == 2, delivers
    by_trace = {s["traceId"]: s for s in delivers}
    first, second = by_trace[trace_id], by_trace[other_trace]

    # The produced record: the gateway's span is the producer's child, and the client gets the span's context.
    assert first["parentSpanId"] == producer_span and first["name"] == f"deliver {topic}"
    assert first["kind"] == 5, first   # SPAN_KIND_CONSUMER
    assert attributes(first) == {
        "messaging.system": "kafka", "messaging.operation.type": "process", "messaging.destination.name": topic,
        "messaging.destination.partition.id": "0", "messaging.kafka.offset": str(deliveries[0].seq),
        "streamgate.endpoint": endpoint}
    assert deliveries[0].traceparent == f"00-{trace_id}-{first['spanId']}-01"
    assert deliveries[1].traceparent is None

    # The client's publish: its span is the client's child, the record carries the span's context,
    # so the record's delivery span is the publish span's child.
    assert publish["traceId"] == other_trace and publish["parentSpanId"] == client_span
    assert publish["kind"] == 4, publish   # SPAN_KIND_PRODUCER
    assert attributes(publish)["messaging.kafka.offset"] == str(published["offset"])
    assert attributes(publish)["streamgate.endpoint"] == endpoint
    assert second["parentSpanId"] == publish["spanId"]
    assert deliveries[2].payload == b"from a client"
    assert deliveries[2].traceparent == f"00-{other_trace}-{second['spanId']}-01"

    # A trace its producer did not sample: the gateway keeps that decision (no span exported, none
    # of the unsampled trace in the collector) and passes the context on, still unsampled.
    unsampled_trace = UNSAMPLED.split("-")[1]
    assert deliveries[3].payload == b"not sampled"
    assert deliveries[3].traceparent.startswith(f"00-{unsampled_trace}-") and deliveries[3].traceparent.endswith("-00")
    assert not [s for s in collector.spans if s["traceId"] == unsampled_trace]

    assert {s["resource"]["service.name"]["stringValue"] for s in collector.spans} == {"streamgate-test"}
    assert {(s["path"], s["auth"]) for s in collector.spans} == {("/v1/traces", "k-123")}


def test_spans_are_exported_as_protobuf_by_default(gateway_factory, create_topic, producer):
    """The default encoding (http/protobuf), without a protobuf decoder here:
    the body is OTLP protobuf that holds the trace's id and the span's name."""
    collector = OtlpCollector()
    try:
        topic = create_topic()
        gw = gateway_factory([topic], {"tracing": {"propagate": True, "export": {
            "endpoint": collector.url, "schedule_delay_ms": 100}}})
        endpoint = f"/{topic}/k"

        async def body():
            client = await WsClient.connect(gw.ws_url)
            await client.subscribe(endpoint)
            await asyncio.to_thread(producer.produce, topic, [("k", b"traced", [("traceparent", TRACE.encode())])])
            [delivery] = await client.wait_deliveries(1)
            deadline = asyncio.get_running_loop().time() + 15
            while not collector.protobuf:
                assert asyncio.get_running_loop().time() < deadline, "no OTLP/protobuf export"
                await asyncio.sleep(0.1)
            await client.close()
            return delivery

        delivery = run_async(body(), 40)
    finally:
        collector.close()
    trace_id, span_id = delivery.traceparent.split("-")[1:3]
    exported = b"".join(collector.protobuf)
    assert bytes.fromhex(trace_id) in exported and f"deliver {topic}".encode() in exported
    assert bytes.fromhex(span_id) in exported
    assert collector.spans == []
