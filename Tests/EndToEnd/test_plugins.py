"""Plugins loaded at run time: the example out-of-tree authorizer in
plugins/ApiKeyAuthorizer is built as a dynamic library on its own (it sees
only the plugin API) and loaded by the gateway from the `plugins` list of its
configuration, without rebuilding the gateway."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from conftest import ROOT, STREAMGATE_BIN, WsClient, run_async, subprocess_env

def build_plugin(name: str) -> Path:
    """Builds plugins/<name> on its own and returns its library."""
    package = ROOT / "plugins" / name
    build = subprocess.run(["swift", "build", "--package-path", str(package)], capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    bin_path = subprocess.run(["swift", "build", "--package-path", str(package), "--show-bin-path"],
                              capture_output=True, text=True, timeout=120).stdout.strip()
    library = Path(bin_path) / f"lib{name}.so"
    assert library.exists(), library
    return library


@pytest.fixture(scope="module")
def api_key_plugin() -> Path:
    return build_plugin("ApiKeyAuthorizer")


@pytest.fixture(scope="module")
def dotted_key_plugin() -> Path:
    return build_plugin("DottedKeyMapper")


async def connect_with_key(url: str, key: str | None):
    headers = {"X-API-Key": key} if key else {}
    return await connect(url, additional_headers=headers, open_timeout=5, ping_interval=None)


def test_an_out_of_tree_authorizer_is_loaded_by_path_and_used(gateway_factory, create_topic, producer,
                                                               api_key_plugin, print_result):
    topic = create_topic()
    gw = gateway_factory([topic], {
        "plugins": [str(api_key_plugin)],
        "authorization": [{"plugin": "api-key", "options": {"keys": {
            "key-for-the-scoreboard": {"subject": "scoreboard", "subscribe": [f"/{topic}/scores/*"]}}}}],
    })

    async def body():
        ws = await connect_with_key(gw.ws_url, "key-for-the-scoreboard")
        client = WsClient(ws, "scoreboard")
        welcome = await client.next_text(5)
        await client.subscribe(f"/{topic}/scores/nba")
        denied = await client.request({"type": "subscribe", "endpoint": f"/{topic}/other"})
        import asyncio
        report = await asyncio.to_thread(producer.produce_one, topic, "scores/nba", b"101-99")
        [d] = await client.wait_deliveries(1, 10)
        await client.close()
        bad = await connect_with_key(gw.ws_url, "not-a-key")
        error = json.loads(await bad.recv())
        await bad.wait_closed()
        return welcome, denied, d, report, error, bad.close_code

    welcome, denied, d, report, error, code = run_async(body(), 30)
    assert welcome["subject"] == "scoreboard"
    assert denied["code"] == "forbidden"
    assert (d.seq, d.payload) == (report.offset, b"101-99")
    assert error["code"] == "unauthorized" and "unknown API key" in error["message"] and code == 1008
    assert "api-key authorizer: 1 keys" in gw.log()
    print_result(f"plugin {api_key_plugin.name} loaded at run time: API-key identities, rights and refusals")


def test_an_authorizer_reads_any_header_and_cookie_of_the_upgrade(gateway_factory, create_topic, api_key_plugin):
    """Plugin API 2.1: the upgrade request's headers and cookies reach the
    authorizer, so the example plugin reads its key from a header of its
    choosing or from a cookie (as a browser sends it) with no change to the
    gateway."""
    topic = create_topic()
    gw = gateway_factory([topic], {
        "plugins": [str(api_key_plugin)],
        "authorization": [{"plugin": "api-key", "options": {
            "header": "X-Board-Key", "cookie": "sg_key",
            "keys": {"k-header": {"subject": "by-header"}, "k-cookie": {"subject": "by-cookie"}}}}],
    })

    async def welcome(headers: dict) -> tuple[dict, int | None]:
        ws = await connect(gw.ws_url, additional_headers=headers, open_timeout=5, ping_interval=None)
        first = json.loads(await ws.recv())
        if first["type"] == "welcome":
            await ws.close()
        else:
            await ws.wait_closed()
        return first, ws.close_code

    async def body():
        return (await welcome({"X-Board-Key": "k-header"}),
                await welcome({"Cookie": "theme=dark; sg_key=k-cookie"}),
                await welcome({"Cookie": "sg_key=forged"}),
                await welcome({"X-API-Key": "k-header"}))

    by_header, by_cookie, forged, other_header = run_async(body(), 30)
    assert by_header[0]["subject"] == "by-header"
    assert by_cookie[0]["subject"] == "by-cookie"
    assert forged[0]["code"] == "unauthorized" and forged[1] == 1008
    # Only the configured header counts: an X-API-Key nobody accepts is refused.
    assert other_header[0]["code"] == "unauthorized" and other_header[1] == 1008


def check_config(tmp_path, config: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "gw.json"
    path.write_text(json.dumps(config))
    return subprocess.run([str(STREAMGATE_BIN), "check-config", str(path)], capture_output=True, text=True,
                          env=subprocess_env(), timeout=60)


def test_a_plugin_that_cannot_be_used_is_a_start_up_error_naming_the_file(tmp_path, api_key_plugin):
    source = {"plugin": "generator", "options": {}}
    missing = check_config(tmp_path, {"plugins": ["/nonexistent/libNothing.so"], "source": source})
    assert missing.returncode == 2
    assert "plugins[0]" in missing.stderr and "/nonexistent/libNothing.so" in missing.stderr
    not_a_plugin = api_key_plugin.parent / "libStreamgatePluginAPI.so"
    wrong = check_config(tmp_path, {"plugins": [str(not_a_plugin)], "source": source})
    assert wrong.returncode == 2
    assert str(not_a_plugin) in wrong.stderr and "streamgate_plugin_register" in wrong.stderr
    twice = check_config(tmp_path, {"plugins": [str(api_key_plugin), str(api_key_plugin)], "source": source})
    assert twice.returncode == 2 and "plugins[1]" in twice.stderr and "already taken" in twice.stderr
    bad_options = check_config(tmp_path, {"plugins": [str(api_key_plugin)], "source": source,
                                          "authorization": {"plugin": "api-key", "options": {"keys": {}}}})
    assert bad_options.returncode == 2 and "authorization.options.keys" in bad_options.stderr
    good = check_config(tmp_path, {"plugins": [str(api_key_plugin)], "source": source,
                                   "authorization": {"plugin": "api-key", "options": {"keys": {"k": {}}}}})
    assert good.returncode == 0, good.stderr


def test_an_out_of_tree_mapper_gives_endpoints_its_own_scheme(gateway_factory, create_topic, producer,
                                                              dotted_key_plugin):
    import asyncio

    topic = create_topic()
    gw = gateway_factory([topic], {"plugins": [str(dotted_key_plugin)],
                                   "mapping": {"plugin": "dotted-key", "options": {"prefix": "/api"}}})

    async def body():
        client = await WsClient.connect(gw.ws_url, name="mapped")
        await client.subscribe(f"/api/{topic}/live/nba")
        bad = await client.request({"type": "subscribe", "endpoint": f"/{topic}/live"})
        report = await asyncio.to_thread(producer.produce_one, topic, "live.nba", b"tip-off")
        [d] = await client.wait_deliveries(1, 10)
        await client.close()
        return bad, d, report

    bad, d, report = run_async(body(), 30)
    assert bad["code"] == "invalid_endpoint" and "/api/" in bad["message"]
    assert (d.endpoint, d.seq, d.payload) == (f"/api/{topic}/live/nba", report.offset, b"tip-off")


@pytest.mark.parametrize("major,minor", [(1, 4), (2, 1)])
def test_a_plugin_built_against_another_api_version_is_refused(tmp_path, major, minor):
    """A library standing in for a plugin built against another plugin API:
    its entry point answers that version, and the gateway refuses it by name.
    Another minor too: the API is not built with library evolution, so a
    minor version apart may lay its types out differently (rebuild it)."""
    source = tmp_path / "old.c"
    source.write_text(f"int streamgate_plugin_register(void *entry) {{ (void)entry; return {major} * 1000 + {minor}; }}\n")
    library = tmp_path / "libOldPlugin.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True, timeout=60)
    result = check_config(tmp_path, {"plugins": [str(library)], "source": {"plugin": "generator", "options": {}}})
    assert result.returncode == 2
    assert str(library) in result.stderr and f"plugin API {major}.{minor}" in result.stderr
    assert "this gateway has 2.3" in result.stderr and "rebuild" in result.stderr
