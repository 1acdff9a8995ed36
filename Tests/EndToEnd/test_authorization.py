"""Authorization against the real gateway and broker: JWT and static-token
authorizers chosen in the configuration, rights per endpoint and action,
refusals with clear codes, in-band token refresh — while other clients
keep receiving."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

from websockets.asyncio.client import connect

from conftest import WsClient, run_async

SECRET = "a-test-secret-of-at-least-32-bytes!!"
AUDIENCE = "streamgate-tests"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict, secret: str = SECRET, alg: str = "HS256", header_extra: dict | None = None) -> str:
    header = {"alg": alg, "typ": "JWT", **(header_extra or {})}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    if alg == "none":
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return signing_input + "." + b64url(hmac.new(secret.encode(), signing_input.encode(), digest).digest())


def claims(sub: str = "alice", subscribe=(), publish=(), ttl: float = 300, **extra) -> dict:
    now = time.time()
    return {"sub": sub, "exp": int(now + ttl), "aud": AUDIENCE, "iss": "tests", "subscribe": list(subscribe),
            "publish": list(publish), **extra}


def jwt_config(extra_authorizers: list | None = None) -> dict:
    jwt = {"plugin": "jwt", "options": {"keys": [{"alg": "HS256", "secret": SECRET}], "issuer": "tests",
                                        "audience": AUDIENCE, "leeway_seconds": 0}}
    return {"authorization": (extra_authorizers or []) + [jwt]}


async def connect_raw(url: str, token: str | None = None, query: str = "", source: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    extra = {"local_addr": (source, 0)} if source else {}
    return await asyncio.wait_for(
        connect(url + query, additional_headers=headers, max_size=None, open_timeout=5, ping_interval=None, **extra), 10)


async def connect_client(url: str, token: str | None = None, query: str = "", name: str = "client",
                         source: str | None = None) -> WsClient:
    ws = await connect_raw(url, token, query, source)
    client = WsClient(ws, name)
    client.welcome = await client.next_text(5)
    assert client.welcome["type"] == "welcome", client.welcome
    return client


async def refused(url: str, token: str) -> tuple[dict, int, str]:
    """Connects with `token`; returns the error frame and the close code and reason."""
    ws = await connect_raw(url, token)
    error = json.loads(await asyncio.wait_for(ws.recv(), 5))
    try:
        await asyncio.wait_for(ws.recv(), 5)
    except Exception:
        pass
    await ws.wait_closed()
    return error, ws.close_code, ws.close_reason


def test_a_valid_jwt_gives_its_rights_and_nothing_more(gateway_factory, create_topic, producer):
    topic = create_topic()
    gw = gateway_factory([topic], jwt_config())
    token = make_jwt(claims(subscribe=[f"/{topic}/public/**"]))

    async def body():
        client = await connect_client(gw.ws_url, token)
        await client.subscribe(f"/{topic}/public/scores")
        denied = await client.request({"type": "subscribe", "endpoint": f"/{topic}/private/x", "id": 2})
        report = await asyncio.to_thread(producer.produce_one, topic, "public/scores", b"goal")
        [delivery] = await client.wait_deliveries(1, 10)
        await client.close()
        return client.welcome, denied, report, delivery

    welcome, denied, report, delivery = run_async(body(), 30)
    assert welcome["subject"] == "alice" and welcome["expires_at"] > time.time()
    assert denied["type"] == "error" and denied["code"] == "forbidden" and denied["id"] == 2
    assert "alice" in denied["message"] and f"/{topic}/private/x" in denied["message"]
    assert (delivery.seq, delivery.payload) == (report.offset, b"goal")


def test_the_token_may_come_in_the_query_string(gateway_factory, create_topic):
    topic = create_topic()
    gw = gateway_factory([topic], jwt_config())
    token = make_jwt(claims(sub="browser", subscribe=[f"/{topic}/**"]))

    async def body():
        client = await connect_client(gw.ws_url, query=f"?access_token={token}")
        await client.subscribe(f"/{topic}/anything")
        await client.close()
        return client.welcome

    assert run_async(body(), 20)["subject"] == "browser"


def test_bad_tokens_are_refused_while_other_clients_keep_receiving(gateway_factory, create_topic, producer,
                                                                   print_result):
    topic = create_topic()
    gw = gateway_factory([topic], jwt_config())
    good = make_jwt(claims(subscribe=[f"/{topic}/public/**"]))
    bad = {
        "expired": make_jwt(claims(ttl=-5)),
        "forged": make_jwt(claims(), secret="another-secret-of-at-least-32-bytes"),
        "wrong audience": make_jwt(claims(aud="someone-else")),
        "wrong issuer": make_jwt(claims(iss="mallory")),
        "alg none": make_jwt(claims(), alg="none"),
        "other algorithm": make_jwt(claims(), alg="HS512"),
        "not a jwt": "opaque-token-nobody-knows",
        "tampered": (lambda t: t.rsplit(".", 2)[0] + "." + b64url(json.dumps(claims(sub="root", subscribe=["/**"])).encode())
                     + "." + t.rsplit(".", 1)[1])(make_jwt(claims())),
    }

    async def body():
        watcher = await connect_client(gw.ws_url, good, name="watcher")
        await watcher.subscribe(f"/{topic}/public/live")
        outcomes = {}
        for i, (name, token) in enumerate(bad.items()):
            await asyncio.to_thread(producer.produce_one, topic, "public/live", f"m{i}".encode())
            outcomes[name] = await refused(gw.ws_url, token)
        await watcher.wait_deliveries(len(bad), 10)
        await watcher.close()
        return outcomes, watcher.deliveries

    outcomes, deliveries = run_async(body(), 60)
    for name, (error, code, reason) in outcomes.items():
        assert error["type"] == "error" and error["code"] == "unauthorized", (name, error)
        assert code == 1008 and reason == "unauthorized", (name, code, reason)
    assert "expired" in outcomes["expired"][0]["message"]
    assert "audience" in outcomes["wrong audience"][0]["message"]
    assert "issuer" in outcomes["wrong issuer"][0]["message"]
    assert "'none'" in outcomes["alg none"][0]["message"]
    assert "'HS512'" in outcomes["other algorithm"][0]["message"]
    assert [d.payload for d in deliveries] == [f"m{i}".encode() for i in range(len(bad))]
    print_result(f"{len(bad)} bad tokens refused with 1008 (expired, forged, audience, issuer, alg none, other "
                 f"algorithm, unknown, tampered) while a subscriber kept receiving every message")


def test_without_a_token_nothing_is_allowed_until_an_in_band_auth(gateway_factory, create_topic, producer):
    topic = create_topic()
    gw = gateway_factory([topic], jwt_config())

    async def body():
        client = await connect_client(gw.ws_url)
        denied = await client.request({"type": "subscribe", "endpoint": f"/{topic}/public/a"})
        bad = await client.request({"type": "auth", "token": make_jwt(claims(ttl=-5)), "id": "a1"})
        good = await client.request({"type": "auth", "token": make_jwt(claims(sub="bob", subscribe=[f"/{topic}/public/**"])),
                                     "id": "a2"})
        await client.subscribe(f"/{topic}/public/a")
        report = await asyncio.to_thread(producer.produce_one, topic, "public/a", b"after auth")
        [d] = await client.wait_deliveries(1, 10)
        await client.close()
        return client.welcome, denied, bad, good, d, report

    welcome, denied, bad, good, d, report = run_async(body(), 30)
    assert welcome["subject"] == "anonymous" and welcome["expires_at"] is None
    assert denied["code"] == "forbidden" and "no credentials" in denied["message"]
    assert bad["type"] == "error" and bad["code"] == "unauthorized" and bad["id"] == "a1"
    assert good["type"] == "authenticated" and good["subject"] == "bob" and good["id"] == "a2"
    assert (d.seq, d.payload) == (report.offset, b"after auth")


def test_a_refreshed_token_with_fewer_rights_ends_the_subscriptions_it_no_longer_allows(gateway_factory, create_topic,
                                                                                          producer):
    topic = create_topic()
    gw = gateway_factory([topic], jwt_config())
    wide = make_jwt(claims(subscribe=[f"/{topic}/a", f"/{topic}/b"]))
    narrow = make_jwt(claims(subscribe=[f"/{topic}/a"]))

    async def body():
        client = await connect_client(gw.ws_url, wide)
        await client.subscribe(f"/{topic}/a")
        await client.subscribe(f"/{topic}/b")
        await client.ws.send(json.dumps({"type": "auth", "token": narrow}))
        replies = [await client.next_text(5), await client.next_text(5)]
        await asyncio.to_thread(producer.produce, topic, [("b", b"not for you"), ("a", b"still yours")])
        [d] = await client.wait_deliveries(1, 10)
        await client.drain(0.5)
        await client.close()
        return replies, client.deliveries

    replies, deliveries = run_async(body(), 30)
    assert replies[0]["type"] == "authenticated"
    assert replies[1] == {"type": "unsubscribed", "endpoint": f"/{topic}/b",
                          "reason": f"the new token's rights do not include subscribe on /{topic}/b"}
    assert [d.payload for d in deliveries] == [b"still yours"]


def test_authorizers_compose_in_order(gateway_factory, create_topic, tmp_path):
    topic = create_topic()
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [{"token": "service-token-0123456789", "subject": "ingest",
                                              "subscribe": [f"/{topic}/**"], "publish": []}]}))
    gw = gateway_factory([topic], jwt_config([{"plugin": "static-tokens", "options": {"file": str(tokens)}}]))

    async def body():
        service = await connect_client(gw.ws_url, "service-token-0123456789")
        await service.subscribe(f"/{topic}/x")
        person = await connect_client(gw.ws_url, make_jwt(claims(sub="carol")))
        unknown = await refused(gw.ws_url, "service-token-unknown-000")
        await service.close()
        await person.close()
        return service.welcome, person.welcome, unknown

    service, person, (error, code, _) = run_async(body(), 30)
    assert service["subject"] == "ingest" and service["expires_at"] is None
    assert person["subject"] == "carol"
    assert error["code"] == "unauthorized" and code == 1008


def test_a_token_revoked_from_the_tokens_file_is_refused_without_a_restart(gateway_factory, create_topic, tmp_path):
    topic = create_topic()
    tokens = tmp_path / "tokens.json"
    entry = {"token": "revocable-token-0123456789", "subject": "temp", "subscribe": [f"/{topic}/**"]}
    tokens.write_text(json.dumps({"tokens": [entry]}))
    gw = gateway_factory([topic], {"authorization": {"plugin": "static-tokens", "options": {"file": str(tokens)}}})

    async def body():
        first = await connect_client(gw.ws_url, entry["token"])
        await first.close()
        tokens.write_text(json.dumps({"tokens": []}))
        await asyncio.sleep(1.2)                       # the file is checked at most once a second
        return first.welcome, await refused(gw.ws_url, entry["token"])

    welcome, (error, code, _) = run_async(body(), 30)
    assert welcome["subject"] == "temp"
    assert error["code"] == "unauthorized" and code == 1008


def test_requests_sent_before_authentication_ends_are_answered_in_order(gateway_factory, create_topic):
    topic = create_topic()
    gw = gateway_factory([topic], jwt_config())
    token = make_jwt(claims(subscribe=[f"/{topic}/**"]))

    async def body():
        ws = await connect_raw(gw.ws_url, token)
        for i in range(5):                             # sent at once, before the welcome
            await ws.send(json.dumps({"type": "subscribe", "endpoint": f"/{topic}/k{i}", "id": i}))
        texts = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(6)]
        await ws.close()
        return texts

    texts = run_async(body(), 20)
    assert texts[0]["type"] == "welcome"
    assert [(t["type"], t["id"]) for t in texts[1:]] == [("subscribed", i) for i in range(5)]


def test_an_expiring_token_is_warned_then_its_subscriptions_end_until_a_refresh(gateway_factory, create_topic, producer):
    topic = create_topic()
    gw = gateway_factory([topic], {**jwt_config(), "sessions": {"token_expiry_warning_seconds": 2}})
    short = make_jwt(claims(sub="dave", subscribe=[f"/{topic}/**"], ttl=3.5))

    async def body():
        client = await connect_client(gw.ws_url, short)
        await client.subscribe(f"/{topic}/a")
        warning = await client.next_text(4)
        expired = await client.next_text(4)
        ended = await client.next_text(2)
        refused = await client.request({"type": "subscribe", "endpoint": f"/{topic}/a"})
        await asyncio.to_thread(producer.produce_one, topic, "a", b"while expired")
        await client.drain(1.0)
        fresh = await client.request({"type": "auth", "token": make_jwt(claims(sub="dave", subscribe=[f"/{topic}/**"]))})
        await client.subscribe(f"/{topic}/a")
        report = await asyncio.to_thread(producer.produce_one, topic, "a", b"after refresh")
        await client.wait_deliveries(1, 10)
        await client.close()
        return warning, expired, ended, refused, fresh, client.deliveries, report

    warning, expired, ended, refused, fresh, deliveries, report = run_async(body(), 40)
    assert warning["type"] == "token_expiring" and warning["expires_at"] <= time.time() + 5
    assert expired["type"] == "error" and expired["code"] == "token_expired" and "dave" in expired["message"]
    assert ended["type"] == "unsubscribed" and ended["endpoint"] == f"/{topic}/a" and "expired" in ended["reason"]
    assert refused["code"] == "token_expired"
    assert fresh["type"] == "authenticated"
    assert [(d.seq, d.payload) for d in deliveries] == [(report.offset, b"after refresh")]


def test_an_expired_token_closes_the_connection_when_so_configured(gateway_factory, create_topic):
    topic = create_topic()
    gw = gateway_factory([topic], {**jwt_config(), "sessions": {"on_token_expiry": "close",
                                                                 "token_expiry_warning_seconds": 0}})

    async def body():
        ws = await connect_raw(gw.ws_url, make_jwt(claims(ttl=1.5)))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        error = json.loads(await asyncio.wait_for(ws.recv(), 5))
        await ws.wait_closed()
        return welcome, error, ws.close_code, ws.close_reason

    welcome, error, code, reason = run_async(body(), 20)
    assert welcome["type"] == "welcome"
    assert error["code"] == "token_expired"
    assert (code, reason) == (1008, "token expired")


def test_revoking_a_static_token_ends_a_live_connections_subscriptions(gateway_factory, create_topic, producer,
                                                                        tmp_path):
    topic = create_topic()
    tokens = tmp_path / "tokens.json"
    keep = {"token": "kept-token-0123456789", "subject": "kept", "subscribe": [f"/{topic}/**"]}
    drop = {"token": "dropped-token-0123456789", "subject": "dropped", "subscribe": [f"/{topic}/**"]}
    tokens.write_text(json.dumps({"tokens": [keep, drop]}))
    gw = gateway_factory([topic], {"authorization": {"plugin": "static-tokens", "options": {"file": str(tokens)}}})

    async def body():
        kept = await connect_client(gw.ws_url, keep["token"], name="kept")
        dropped = await connect_client(gw.ws_url, drop["token"], name="dropped")
        for c in (kept, dropped):
            await c.subscribe(f"/{topic}/news")
        tokens.write_text(json.dumps({"tokens": [keep]}))
        error = await dropped.next_text(5)
        ended = await dropped.next_text(2)
        report = await asyncio.to_thread(producer.produce_one, topic, "news", b"after revocation")
        await kept.wait_deliveries(1, 10)
        await dropped.drain(1.0)
        await kept.close()
        await dropped.close()
        return error, ended, kept.deliveries, dropped.deliveries, report

    error, ended, kept, dropped, report = run_async(body(), 30)
    assert error["code"] == "unauthorized" and "revoked" in error["message"]
    assert ended["type"] == "unsubscribed" and "revoked" in ended["reason"]
    assert [(d.seq, d.payload) for d in kept] == [(report.offset, b"after revocation")]
    assert dropped == []


# ---------------------------------------------------------------- publish --

def test_a_client_publishes_into_kafka_where_its_token_allows(gateway_factory, create_topic, broker):
    from confluent_kafka import Consumer, TopicPartition

    topic = create_topic(partitions=2)
    gw = gateway_factory([topic], jwt_config())
    writer = make_jwt(claims(sub="writer", subscribe=[f"/{topic}/**"], publish=[f"/{topic}/chat/*"]))

    async def body():
        listener = await connect_client(gw.ws_url, writer, name="listener")
        await listener.subscribe(f"/{topic}/chat/room1")
        client = await connect_client(gw.ws_url, writer, name="writer")
        acks = []
        for i in range(5):                                     # in order, acknowledged in order
            await client.ws.send(json.dumps({"type": "publish", "endpoint": f"/{topic}/chat/room1",
                                             "payload": f"hello {i}", "id": i}))
        while len(acks) < 5:
            acks.append(await client.next_text(10))
        binary = await client.request({"type": "publish", "endpoint": f"/{topic}/chat/room1",
                                       "payload_base64": base64.b64encode(b"\x00\xff raw").decode(), "id": "b"})
        denied = await client.request({"type": "publish", "endpoint": f"/{topic}/news/x", "payload": "no", "id": "d"})
        await listener.wait_deliveries(6, 10)
        await client.close()
        await listener.close()
        return acks, binary, denied, listener.deliveries

    acks, binary, denied, deliveries = run_async(body(), 40)
    assert [a["type"] for a in acks] == ["published"] * 5 and [a["id"] for a in acks] == list(range(5))
    assert len({a["partition"] for a in acks}) == 1
    offsets = [a["offset"] for a in acks]
    assert offsets == sorted(offsets) and len(set(offsets)) == 5
    assert binary["type"] == "published" and binary["offset"] > offsets[-1]
    assert denied["code"] == "forbidden" and "publish" in denied["message"]
    # Subscribers of the endpoint receive the records, seq = the acknowledged offset.
    assert [(d.seq, d.payload) for d in deliveries] == (
        [(a["offset"], f"hello {i}".encode()) for i, a in enumerate(acks)] + [(binary["offset"], b"\x00\xff raw")])
    # An independent consumer finds them in Kafka, with the publisher's headers.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "verify", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, acks[0]["partition"], acks[0]["offset"])])
    records = []
    deadline = time.monotonic() + 15
    while len(records) < 6 and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            records.append(m)
    consumer.close()
    assert [(m.key(), m.value(), m.offset()) for m in records] == (
        [(b"chat/room1", f"hello {i}".encode(), a["offset"]) for i, a in enumerate(acks)]
        + [(b"chat/room1", b"\x00\xff raw", binary["offset"])])
    headers = dict(records[0].headers())
    assert headers["streamgate-subject"] == b"writer" and headers["streamgate-client"].startswith(b"127.0.0.1:")


def test_bad_publishes_get_clear_errors(gateway_factory, create_topic):
    topic = create_topic()
    gw = gateway_factory([topic])                              # allow-all
    cases = [
        ({"endpoint": f"/{topic}/k"}, "bad_request"),
        ({"endpoint": f"/{topic}/k", "payload": "a", "payload_base64": "YQ=="}, "bad_request"),
        ({"endpoint": f"/{topic}/k", "payload_base64": "%%%"}, "bad_request"),
        ({"endpoint": "/no-such-topic-here/k", "payload": "a"}, "unknown_topic"),
        ({"endpoint": "nope", "payload": "a"}, "invalid_endpoint"),
    ]

    async def body():
        client = await connect_client(gw.ws_url)
        replies = [await client.request({"type": "publish", "id": i, **fields}) for i, (fields, _) in enumerate(cases)]
        ok = await client.request({"type": "publish", "endpoint": f"/{topic}/k", "payload": "fine", "id": "ok"})
        await client.close()
        return replies, ok

    replies, ok = run_async(body(), 30)
    for (fields, code), reply in zip(cases, replies):
        assert reply["type"] == "error" and reply["code"] == code, (fields, reply)
    assert ok["type"] == "published"


# ----------------------------------------------------------------- limits --

async def http_status_of_upgrade(url: str, origin: str | None = None, source: str | None = None) -> int:
    """Tries an upgrade (from source address `source`); returns 101 or the HTTP status of the refusal."""
    from websockets.exceptions import InvalidStatus

    extra = {"local_addr": (source, 0)} if source else {}
    try:
        ws = await asyncio.wait_for(connect(url, origin=origin, open_timeout=5, ping_interval=None, **extra), 10)
    except InvalidStatus as error:
        return error.response.status_code
    await ws.close()
    return 101


def test_connection_limits_and_origins_get_clear_http_answers(gateway_factory, create_topic, print_result):
    topic = create_topic()
    gw = gateway_factory([topic], {"limits": {"max_connections": 6, "max_connections_per_address": 3,
                                              "allowed_origins": ["https://app.example.com"]}})

    async def body():
        held = [await connect_client(gw.ws_url) for _ in range(3)]
        from_same = await http_status_of_upgrade(gw.ws_url)
        elsewhere = [await connect_client(gw.ws_url, source="127.0.0.2") for _ in range(3)]
        total = await http_status_of_upgrade(gw.ws_url, source="127.0.0.3")
        await held[0].close()
        await asyncio.sleep(0.3)
        again = await http_status_of_upgrade(gw.ws_url)
        # That connection closed too: its place comes back once the gateway saw the close.
        await asyncio.sleep(0.3)
        good_origin = await http_status_of_upgrade(gw.ws_url, origin="https://app.example.com")
        bad_origin = await http_status_of_upgrade(gw.ws_url, origin="https://evil.example.com")
        for c in held[1:] + elsewhere:
            await c.close()
        return from_same, total, again, good_origin, bad_origin

    from_same, total, again, good_origin, bad_origin = run_async(body(), 30)
    assert from_same == 429 and total == 503
    assert again == 101, "a closed connection gives its place back"
    assert good_origin == 101 and bad_origin == 403
    gw.stop()
    stopped = [line for line in gw.log().splitlines() if "connections_limited=" in line][-1]
    assert "connections_limited=2" in stopped and "origins_refused=1" in stopped, stopped
    print_result("limits: 429 past 3 connections per address, 503 past 6 in total, 403 for a foreign Origin; "
                 "counted in the gateway's stop line")


def test_a_publish_flood_is_rate_limited_while_others_keep_receiving(gateway_factory, create_topic, producer):
    topic = create_topic()
    gw = gateway_factory([topic], {"limits": {"publish_rate_per_second": 20, "publish_burst": 10}})

    async def body():
        watcher = await connect_client(gw.ws_url, name="watcher")
        await watcher.subscribe(f"/{topic}/news")
        flooder = await connect_client(gw.ws_url, name="flooder")
        for i in range(100):
            await flooder.ws.send(json.dumps({"type": "publish", "endpoint": f"/{topic}/flood", "payload": "x", "id": i}))
        replies = []
        while len(replies) < 100:
            replies.append(await flooder.next_text(10))
        report = await asyncio.to_thread(producer.produce_one, topic, "news", b"still flowing")
        [d] = await watcher.wait_deliveries(1, 10)
        await flooder.close()
        await watcher.close()
        return replies, d, report

    replies, d, report = run_async(body(), 40)
    published = [r for r in replies if r["type"] == "published"]
    limited = [r for r in replies if r.get("code") == "rate_limited"]
    assert len(published) + len(limited) == 100
    assert 10 <= len(published) <= 20, len(published)   # the burst, plus what refilled meanwhile
    assert "20 publishes per second" in limited[0]["message"]
    assert (d.seq, d.payload) == (report.offset, b"still flowing")


def test_a_subscribe_flood_is_capped_and_answered_while_others_keep_receiving(gateway_factory, create_topic,
                                                                            producer):
    topic = create_topic()
    gw = gateway_factory([topic], {"limits": {"max_subscriptions_per_connection": 50}})

    async def body():
        watcher = await connect_client(gw.ws_url, name="watcher")
        await watcher.subscribe(f"/{topic}/news")
        client = await connect_client(gw.ws_url, name="flood")
        for i in range(2000):
            await client.ws.send(json.dumps({"type": "subscribe", "endpoint": f"/{topic}/k{i}", "id": i}))
        report = await asyncio.to_thread(producer.produce_one, topic, "news", b"during the flood")
        replies = [await client.next_text(20) for _ in range(2000)]
        [d] = await watcher.wait_deliveries(1, 10)
        await client.close()
        await watcher.close()
        return replies, d, report

    replies, d, report = run_async(body(), 60)
    assert [r["type"] for r in replies[:50]] == ["subscribed"] * 50
    assert {r.get("code") for r in replies[50:]} == {"too_many_subscriptions"}
    assert [r["id"] for r in replies] == list(range(2000))
    assert (d.seq, d.payload) == (report.offset, b"during the flood")
    gw.stop()
    assert "subscriptions_over_limit=1950" in gw.log()


def test_a_slow_loris_handshake_is_dropped_while_others_keep_receiving(gateway_factory, create_topic, producer):
    import socket

    topic = create_topic()
    gw = gateway_factory([topic], {"websocket": {"handshake_timeout_ms": 1000}})

    async def body():
        watcher = await connect_client(gw.ws_url, name="watcher")
        await watcher.subscribe(f"/{topic}/news")
        lorises = []
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", gw.port))
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")   # never finishes its head
            lorises.append(s)
        await asyncio.sleep(1.6)
        closed = 0
        for s in lorises:
            s.settimeout(1)
            try:
                closed += s.recv(1) == b""
            except (ConnectionResetError, socket.timeout):
                closed += 1
            s.close()
        report = await asyncio.to_thread(producer.produce_one, topic, "news", b"unaffected")
        [d] = await watcher.wait_deliveries(1, 10)
        await watcher.close()
        return closed, d, report

    closed, d, report = run_async(body(), 30)
    assert closed == 50
    assert (d.seq, d.payload) == (report.offset, b"unaffected")


# ---------------------------------------------------------------- webhook --

class AuthService:
    """The operator's authorization service: a real HTTP server on loopback."""

    def __init__(self, delay: float = 0.0):
        import http.server
        import threading

        service = self
        self.requests: list[dict] = []
        self.delay = delay
        self.allowed = {"good-token"}

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"   # keep-alive, as a production service would

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                service.requests.append(body)
                time.sleep(service.delay)
                if body.get("token") in service.allowed:
                    answer = {"allow": True, "subject": "hooked", "subscribe": ["/**"], "publish": []}
                else:
                    answer = {"allow": False, "reason": "token not known to the service"}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/authorize"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_webhook_authorizer_asks_caches_and_fails_closed(gateway_factory, create_topic):
    topic = create_topic()
    service = AuthService()
    slow = AuthService(delay=1.0)
    try:
        gw = gateway_factory([topic], {"authorization": {"plugin": "webhook", "options": {
            "url": service.url, "timeout_ms": 3000, "cache_seconds": 60}}})
        gw_slow = gateway_factory([topic], {"authorization": {"plugin": "webhook", "options": {
            "url": slow.url, "timeout_ms": 300}}})
        gw_down = gateway_factory([topic], {"authorization": {"plugin": "webhook", "options": {
            "url": "http://127.0.0.1:9/authorize", "timeout_ms": 300}}})

        async def body():
            first = await connect_client(gw.ws_url, "good-token")
            await first.subscribe(f"/{topic}/anything")
            second = await connect_client(gw.ws_url, "good-token")       # answered from the cache
            denied = await refused(gw.ws_url, "bad-token")
            timed_out = await refused(gw_slow.ws_url, "good-token")
            down = await refused(gw_down.ws_url, "good-token")
            await first.close()
            await second.close()
            return first.welcome, denied, timed_out, down

        welcome, denied, timed_out, down = run_async(body(), 30)
    finally:
        service.close()
        slow.close()
    assert welcome["subject"] == "hooked"
    assert [r["token"] for r in service.requests] == ["good-token", "bad-token"]
    assert service.requests[0]["remote_address"].startswith("127.0.0.1:")
    assert denied[0]["code"] == "unauthorized" and "not known to the service" in denied[0]["message"]
    for error, code, _ in (timed_out, down):
        assert error["code"] == "unauthorized" and code == 1008
        assert "did not answer" in error["message"]


def test_a_silent_connection_is_pinged_then_closed_while_an_answering_one_stays(gateway_factory, create_topic):
    topic = create_topic()
    gw = gateway_factory([topic], {"websocket": {"idle_timeout_ms": 4000}})

    async def body():
        # The websockets client answers pings by itself: it stays. (4 s, not 2: under
        # the sanitizers on a busy machine its pong once took longer than the 1 s a
        # 2 s timeout leaves it.)
        alive = await connect_client(gw.ws_url, name="alive")
        # A raw socket that never answers: pinged at 2 s, closed at 4 s.
        import socket
        silent = socket.create_connection(("127.0.0.1", gw.port))
        silent.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        silent.settimeout(10)
        received = b""
        started = time.monotonic()
        while True:
            chunk = await asyncio.to_thread(silent.recv, 4096)
            if not chunk:
                break
            received += chunk
        elapsed = time.monotonic() - started
        silent.close()
        await alive.subscribe(f"/{topic}/still-here")
        await alive.close()
        return received, elapsed

    received, elapsed = run_async(body(), 30)
    head, _, frames = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    assert b"\x89\x00" in frames, "an idle ping"
    close = frames[frames.index(b"\x88"):]
    assert close[2:4] == (1001).to_bytes(2, "big") and b"idle timeout" in close
    assert 3.5 <= elapsed <= 8, elapsed


def test_the_webhook_can_revoke_live_connections_when_rechecks_are_on(gateway_factory, create_topic, producer):
    topic = create_topic()
    service = AuthService()
    try:
        gw = gateway_factory([topic], {"authorization": {"plugin": "webhook", "options": {
            "url": service.url, "timeout_ms": 3000, "recheck_seconds": 1}}})

        async def body():
            client = await connect_client(gw.ws_url, "good-token")
            await client.subscribe(f"/{topic}/live")
            service.allowed.clear()                        # the operator revokes the token
            error = await next_text_of_type(client, "error", 6)
            ended = await client.next_text(3)
            await asyncio.to_thread(producer.produce_one, topic, "live", b"after revocation")
            await client.drain(1.0)
            await client.close()
            return error, ended, client.deliveries

        error, ended, deliveries = run_async(body(), 30)
    finally:
        service.close()
    assert error["code"] == "unauthorized" and "revoked" in error["message"]
    assert ended["type"] == "unsubscribed" and ended["endpoint"] == f"/{topic}/live"
    assert deliveries == []


async def next_text_of_type(client: WsClient, kind: str, timeout: float) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        text = await client.next_text(max(0.1, deadline - asyncio.get_running_loop().time()))
        if text.get("type") == kind:
            return text
