"""Secrets stay out of configuration files: a JWT secret or a librdkafka
property (sasl.password, ssl.key.password, ...) may be {"env": NAME} or
{"file": PATH} instead of a string (docs/configuration.md, "Secrets").
Errors name the key and the variable or file, never the value, and the
values never reach the log."""

from __future__ import annotations

import json
import subprocess

from conftest import STREAMGATE_BIN, base_config, run_async, subprocess_env
from test_authorization import AUDIENCE, claims, connect_client, make_jwt

FILE_SECRET = "a-jwt-secret-read-from-a-file-0123456789"
ENV_VALUE = "streamgate-client-id-from-the-environment"


def check(tmp_path, config: dict, env: dict | None = None) -> subprocess.CompletedProcess:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    return subprocess.run([str(STREAMGATE_BIN), "check-config", str(path)], capture_output=True, text=True,
                          timeout=30, env={**subprocess_env(), **(env or {})})


def kafka_config(properties: dict) -> dict:
    config = base_config(8080, "127.0.0.1:9092", ["t"])
    config["source"]["options"]["properties"] = properties
    return config


def test_secret_references_are_read_and_their_errors_name_the_source_not_the_value(tmp_path):
    secret_file = tmp_path / "password"
    secret_file.write_text("s3cret-from-file\n")
    ok = check(tmp_path, kafka_config({"sasl.password": {"file": str(secret_file)},
                                       "sasl.username": {"env": "SG_TEST_USER"}}), {"SG_TEST_USER": "alice"})
    assert ok.returncode == 0, ok.stderr

    unset = check(tmp_path, kafka_config({"sasl.password": {"env": "SG_TEST_UNSET_VARIABLE"}}))
    assert unset.returncode == 2
    assert "source.options.properties.sasl.password" in unset.stderr, unset.stderr
    assert "SG_TEST_UNSET_VARIABLE is not set" in unset.stderr, unset.stderr

    missing = check(tmp_path, kafka_config({"sasl.password": {"file": str(tmp_path / "nowhere")}}))
    assert missing.returncode == 2 and f"cannot read the secret file {tmp_path / 'nowhere'}" in missing.stderr, missing.stderr

    shape = check(tmp_path, kafka_config({"sasl.password": {"vault": "x"}}))
    assert shape.returncode == 2 and 'a string, {"env": NAME} or {"file": PATH}' in shape.stderr, shape.stderr

    # A short JWT secret from a file is refused by its length; the value is not shown.
    short = tmp_path / "short"
    short.write_text("tiny-secret")
    config = base_config(8080, "127.0.0.1:9092", ["t"])
    config["authorization"] = {"plugin": "jwt", "options": {"keys": [{"alg": "HS256", "secret": {"file": str(short)}}]}}
    refused = check(tmp_path, config)
    assert refused.returncode == 2, refused.stderr
    assert "authorization.options.keys[0].secret: got (11 bytes), expected at least 32 bytes" in refused.stderr, refused.stderr
    assert "tiny-secret" not in refused.stderr


def test_a_gateway_takes_its_jwt_secret_from_a_file_and_a_property_from_the_environment(
        gateway_factory, create_topic, tmp_path, monkeypatch):
    topic = create_topic()
    secret_file = tmp_path / "jwt-secret"
    secret_file.write_text(FILE_SECRET + "\n")
    monkeypatch.setenv("SG_TEST_CLIENT_ID", ENV_VALUE)
    gw = gateway_factory([topic], {
        "log_level": "trace",
        "authorization": {"plugin": "jwt", "options": {
            "keys": [{"alg": "HS256", "secret": {"file": str(secret_file)}}], "issuer": "tests", "audience": AUDIENCE}},
        "source": {"options": {"properties": {"client.id": {"env": "SG_TEST_CLIENT_ID"}}}},
    })
    token = make_jwt(claims(sub="from-file", subscribe=[f"/{topic}/**"]), secret=FILE_SECRET)

    async def body():
        client = await connect_client(gw.ws_url, token)
        await client.close()
        return client.welcome

    welcome = run_async(body())
    assert welcome["subject"] == "from-file", welcome
    log = gw.log()
    assert FILE_SECRET not in log and ENV_VALUE not in log
