"""W3C trace context from producer to client (docs/protocol.md, delivery
frames): with `tracing.propagate` a record's `traceparent` header travels in
its delivery frame — live, from the cache and read again from Kafka — and a
client's publish can set it; without it, frames stay as they were."""

from __future__ import annotations

import asyncio

from conftest import WsClient, run_async

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


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
