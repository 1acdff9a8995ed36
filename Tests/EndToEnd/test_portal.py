"""The portal end to end: a `streamgate portal` process, real gateways that
follow it through the `portal` mapper and authorizer, and the real broker.

Define an API -> a client with a minted token receives records -> revoke ->
the subscription ends within one poll -> stop the portal -> the gateway keeps
serving from its saved state, and a gateway started while the portal is down
serves from it too."""

import asyncio
import http.client
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import STREAMGATE_BIN, free_port, run_async, subprocess_env, tail
from test_authorization import connect_client

CREDENTIAL = "cluster-credential-e2e-0123456789"
PASSWORD = "portal admin password"
POLL_SECONDS = 0.5


class Portal:
    def __init__(self, directory: Path, brokers: str, extra: dict | None = None):
        self.port = free_port()
        self.directory = directory
        (directory / "cluster.secret").write_text(CREDENTIAL + "\n")
        (directory / "admin.password").write_text(PASSWORD + "\n")
        config = {"listen": {"port": self.port}, "database": "portal.sqlite",
                  "cluster_credential_file": "cluster.secret",
                  "admin": {"username": "admin", "password_file": "admin.password"},
                  "gateway_urls": ["ws://127.0.0.1:1/ws"], "kafka": {"brokers": brokers}} | (extra or {})
        self.config_path = directory / "portal.json"
        self.config_path.write_text(json.dumps(config))
        self.log_path = directory / "portal.log"
        self.proc = None
        self.token = None

    @staticmethod
    def schemathesis() -> Path:
        return Path(__file__).resolve().parents[2] / ".venv" / "bin" / "schemathesis"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Portal":
        self.proc = subprocess.Popen([str(STREAMGATE_BIN), "portal", "--config", str(self.config_path)],
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, env=subprocess_env())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, tail(self.log_path)
            try:
                if self.call("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"portal not up:\n{tail(self.log_path)}")
        status, reply, _ = self.call("POST", "/api/v1/login", {"username": "admin", "password": PASSWORD})
        assert status == 200, reply
        self.token = reply["token"]
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(15) == 0, tail(self.log_path)

    def call(self, method: str, path: str, body=None, token: str | None = None):
        request = urllib.request.Request(self.url + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if token or self.token:
            request.add_header("Authorization", f"Bearer {token or self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                data = response.read()
                return response.status, json.loads(data) if data else None, dict(response.headers)
        except urllib.error.HTTPError as error:
            data = error.read()
            return error.code, json.loads(data) if data else None, dict(error.headers)


@pytest.fixture
def portal(broker, tmp_path):
    portal = Portal(tmp_path, broker.bootstrap).start()
    yield portal
    portal.stop()


async def answer(client, request: dict) -> dict:
    """The reply to `request`, past any `live` notice of an earlier subscribe."""
    reply = await client.request(request)
    while reply["type"] == "live":
        reply = await client.next_text(5)
    return reply


def follow(portal: Portal, state_file: Path) -> dict:
    options = {"url": portal.url, "credential_file": str(portal.directory / "cluster.secret"),
               "state_file": str(state_file), "poll_seconds": POLL_SECONDS}
    return {"mapping": {"plugin": "portal", "options": options},
            "authorization": {"plugin": "portal", "options": options}}


def test_a_gateway_follows_the_portal_and_keeps_serving_without_it(portal, gateway_factory, create_topic, producer,
                                                                   tmp_path, print_result):
    topic = create_topic()
    status, reply, _ = portal.call("POST", "/api/v1/apis", {
        "name": "live-scores", "description": "Live scores", "endpoints": [
            {"path": "/live/{sport}", "topic": topic, "key": "live/{sport}", "actions": ["subscribe", "publish"]}]})
    assert status == 201, reply
    status, alice, _ = portal.call("POST", "/api/v1/apis/live-scores/tokens",
                                   {"subject": "alice", "subscribe": True, "publish": True, "expires_in": 3600})
    assert status == 201, alice
    status, bob, _ = portal.call("POST", "/api/v1/apis/live-scores/tokens",
                                 {"subject": "bob", "subscribe": ["/live/tennis"], "expires_in": 3600})
    assert status == 201, bob

    state_file = tmp_path / "gateway-state.json"
    gw = gateway_factory([topic], follow(portal, state_file))

    async def serve_and_revoke():
        client = await connect_client(gw.ws_url, query=f"?access_token={alice['token']}", name="alice")
        await client.subscribe("/live/tennis")
        refused = await answer(client, {"type": "subscribe", "endpoint": "/dead/tennis"})
        assert refused["type"] == "error" and "no API defines" in refused["message"], refused
        await asyncio.to_thread(producer.produce_one, topic, "live/tennis", b"15-0")
        await asyncio.to_thread(producer.produce_one, topic, "other", b"belongs to no endpoint")
        await asyncio.to_thread(producer.produce_one, topic, "live/tennis", b"30-0")
        published = await answer(client, {"type": "publish", "endpoint": "/live/tennis", "id": 1, "payload": "40-0"})
        assert published["type"] == "published", published
        [*_, last] = await client.wait_deliveries(3)
        assert [d.payload for d in client.deliveries] == [b"15-0", b"30-0", b"40-0"]
        assert {d.endpoint for d in client.deliveries} == {"/live/tennis"}

        # Bob may subscribe to tennis only (his token's pattern, bound by the API).
        bobs = await connect_client(gw.ws_url, query=f"?access_token={bob['token']}", name="bob")
        await bobs.subscribe("/live/tennis")
        no = await answer(bobs, {"type": "subscribe", "endpoint": "/live/golf"})
        assert no["type"] == "error" and no["code"] == "forbidden", no

        # Revoke alice: her subscription ends within one poll.
        revoked_at = time.monotonic()
        status, _, _ = await asyncio.to_thread(portal.call, "DELETE", f"/api/v1/tokens/{alice['id']}")
        assert status == 204
        error = await client.next_text(5)
        while error["type"] == "live":
            error = await client.next_text(5)
        ended = await client.next_text(5)
        took = time.monotonic() - revoked_at
        assert error["code"] == "unauthorized" and "revoked" in error["message"], error
        assert ended["type"] == "unsubscribed" and ended["endpoint"] == "/live/tennis", ended
        await client.close()

        # The portal goes away: the gateway keeps serving, and says so.
        await asyncio.to_thread(portal.stop)
        await asyncio.to_thread(producer.produce_one, topic, "live/tennis", b"game")
        await bobs.wait_deliveries(1)
        assert bobs.deliveries[-1].payload == b"game"
        await bobs.close()
        return took

    took = run_async(serve_and_revoke(), 60)
    # One poll, then the upkeep's once-a-second look at the authorizers, plus slack for a loaded machine.
    assert took < POLL_SECONDS + 1 + 2.5, took
    deadline = time.monotonic() + 10
    while "unreachable" not in gw.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "unreachable" in gw.log() and "keeps serving state revision" in gw.log()

    # A gateway started now, with the portal down, serves from the saved state,
    # with the revocation still in force.
    second = gateway_factory([topic], follow(portal, state_file))
    assert "loaded the saved state" in second.log()

    async def from_saved_state():
        client = await connect_client(second.ws_url, query=f"?access_token={bob['token']}", name="bob-2")
        await client.subscribe("/live/tennis")
        await asyncio.to_thread(producer.produce_one, topic, "live/tennis", b"set")
        await client.wait_deliveries(1)
        assert client.deliveries[0].payload == b"set"
        await client.close()
        from test_authorization import refused
        error, code, _ = await refused(second.ws_url, alice['token'])
        return error, code

    error, code = run_async(from_saved_state(), 30)
    assert code == 1008 and "revoked" in error["message"], (error, code)
    print_result(f"portal: revocation ended the subscription {took * 1000:.0f} ms after the DELETE "
                 f"(poll every {POLL_SECONDS} s); served without the portal from the saved state")


def test_the_portal_asks_kafka_for_topics_and_names_the_field(portal, create_topic):
    topic = create_topic()
    status, reply, _ = portal.call("POST", "/api/v1/apis", {"name": "missing", "endpoints": [
        {"path": "/m/{x}", "topic": "no-such-topic-here", "key": "{x}"}]})
    assert status == 400 and reply["error"]["field"] == "endpoints[0].topic", reply
    assert "exists in Kafka" in reply["error"]["message"]
    status, reply, _ = portal.call("POST", "/api/v1/apis", {"name": "present", "endpoints": [
        {"path": "/m/{x}", "topic": topic, "key": "{x}"}]})
    assert status == 201, reply


def test_the_portal_refuses_a_remote_listener_unless_asked_and_bad_configs_name_the_key(tmp_path, broker):
    portal = Portal(tmp_path, broker.bootstrap, {"listen": {"host": "0.0.0.0", "port": free_port()}})
    result = subprocess.run([str(STREAMGATE_BIN), "portal", "--config", str(portal.config_path)],
                            capture_output=True, text=True, env=subprocess_env(), timeout=30)
    assert result.returncode == 2 and "listen.host" in result.stderr, result.stderr
    config = json.loads(portal.config_path.read_text())
    config["listen"] = {"port": free_port()}
    config["cluster_credential_file"] = "missing.secret"
    portal.config_path.write_text(json.dumps(config))
    result = subprocess.run([str(STREAMGATE_BIN), "portal", "--config", str(portal.config_path)],
                            capture_output=True, text=True, env=subprocess_env(), timeout=30)
    assert result.returncode == 2 and "cluster_credential_file" in result.stderr, result.stderr


ASYNCAPI_SCHEMA = Path(__file__).resolve().parents[2].parent / "shared" / "asyncapi" / "asyncapi-3.0.0.schema.json"


def test_each_api_has_an_asyncapi_document_valid_against_the_3_0_schema_in_json_and_yaml(broker, tmp_path, create_topic):
    import jsonschema
    import yaml

    assert ASYNCAPI_SCHEMA.exists(), f"the AsyncAPI 3.0 JSON Schema is expected at {ASYNCAPI_SCHEMA}"
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    topic = create_topic()
    portal = Portal(tmp_path, broker.bootstrap,
                    {"gateway_urls": ["ws://127.0.0.1:8080/ws", "wss://node2.example:443/ws"]}).start()
    try:
        status, reply, _ = portal.call("POST", "/api/v1/apis", {
            "name": "live-scores", "version": "2.0.0", "owner": "sports \"team\"",
            "description": "Scores: yes\nno\t# not a comment — ünïcode",
            "endpoints": [
                {"path": "/scores/live/{sport}", "topic": topic, "key": "live/{sport}", "actions": ["subscribe"],
                 "description": "Every point", "schema": {"type": "object", "required": ["home", "away"],
                                                         "properties": {"home": {"type": "integer"},
                                                                        "away": {"type": "integer"},
                                                                        # YAML's corners: a key past the
                                                                        # 1024 characters of an implicit
                                                                        # key, characters YAML may not
                                                                        # print, numbers PyYAML must read
                                                                        # as numbers.
                                                                        "k" * 1100: {"type": "string"},
                                                                        "odd": {"type": "string",
                                                                                "description": "\ufffe\uffff\x85\u2028\x7f",
                                                                                "examples": [1e15, 9007199254740993,
                                                                                             12345678901234567890,
                                                                                             1e-7, 2.5e300, -0.5]}}}},
                {"path": "/scores/chat/{sport}/{room}", "topic": topic, "key": "chat/{sport}/{room}",
                 "actions": ["subscribe", "publish"]},
            ]})
        assert status == 201, reply
        status, document, headers = portal.call("GET", "/api/v1/apis/live-scores/asyncapi.json")
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        jsonschema.Draft7Validator(schema).validate(document)
        assert document["info"]["version"] == "2.0.0"
        assert {s["protocol"] for s in document["servers"].values()} == {"ws", "wss"}
        channels = {c["address"]: c for c in document["channels"].values()}
        assert set(channels) == {"/scores/live/{sport}", "/scores/chat/{sport}/{room}"}
        assert set(channels["/scores/chat/{sport}/{room}"]["parameters"]) == {"sport", "room"}
        actions = sorted(o["action"] for o in document["operations"].values())
        assert actions == ["receive", "receive", "send"], "publish only where the endpoint allows it"
        live = document["components"]["messages"]
        assert any(m.get("payload", {}).get("required") == ["home", "away"] for m in live.values())
        assert document["components"]["securitySchemes"]["bearer"]["bearerFormat"] == "JWT"

        request = urllib.request.Request(portal.url + "/api/v1/apis/live-scores/asyncapi.yaml",
                                         headers={"Authorization": f"Bearer {portal.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("application/yaml")
            from_yaml = yaml.safe_load(response.read().decode())
        assert from_yaml == document, "the YAML form is the same document"
        assert portal.call("GET", "/api/v1/apis/nope/asyncapi.json")[0] == 404
    finally:
        portal.stop()


def test_the_portal_serves_https_with_its_own_certificate(broker, tmp_path):
    """listen.tls: the portal itself serves https:// (TLS 1.2+, ALPN http/1.1);
    plain http:// to it gets no answer, and a bad key names the setting."""
    import socket
    import ssl

    from test_tls import client_context, make_certificate

    chain, key = make_certificate(tmp_path, "streamgate-portal")
    portal = Portal(tmp_path, broker.bootstrap)
    config = json.loads(portal.config_path.read_text())
    config["listen"]["tls"] = {"certificate_chain": chain, "private_key": key}
    portal.config_path.write_text(json.dumps(config))
    portal.proc = subprocess.Popen([str(STREAMGATE_BIN), "portal", "--config", str(portal.config_path)],
                                   stdout=open(portal.log_path, "ab"), stderr=subprocess.STDOUT, env=subprocess_env())
    try:
        context = client_context(chain)
        context.set_alpn_protocols(["http/1.1"])
        deadline = time.monotonic() + 30
        while True:
            assert portal.proc.poll() is None, tail(portal.log_path)
            try:
                with socket.create_connection(("127.0.0.1", portal.port), timeout=2) as raw, \
                        context.wrap_socket(raw) as tls:
                    assert tls.selected_alpn_protocol() == "http/1.1" and tls.version() in ("TLSv1.2", "TLSv1.3")
                    break
            except (ConnectionRefusedError, ssl.SSLError):
                assert time.monotonic() < deadline, tail(portal.log_path)
                time.sleep(0.1)
        login = urllib.request.Request(f"https://127.0.0.1:{portal.port}/api/v1/login", method="POST",
                                       data=json.dumps({"username": "admin", "password": PASSWORD}).encode(),
                                       headers={"Content-Type": "application/json"})
        # 30 s, as Portal.call: scrypt checks the password, slow under the sanitizers.
        with urllib.request.urlopen(login, context=client_context(chain), timeout=30) as response:
            assert response.status == 200 and "token" in json.loads(response.read())
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            urllib.request.urlopen(f"http://127.0.0.1:{portal.port}/healthz", timeout=5).read()
        assert f"https://127.0.0.1:{portal.port}" in portal.log_path.read_text()
    finally:
        portal.stop()

    other_chain, other_key = make_certificate(tmp_path, "other")
    config["listen"]["tls"] = {"certificate_chain": chain, "private_key": other_key}
    portal.config_path.write_text(json.dumps(config))
    result = subprocess.run([str(STREAMGATE_BIN), "portal", "--config", str(portal.config_path)], capture_output=True,
                            text=True, timeout=30, env=subprocess_env())
    assert result.returncode != 0 and "listen.tls" in result.stderr, result.stderr
