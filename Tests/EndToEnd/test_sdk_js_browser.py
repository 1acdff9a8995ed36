"""The JavaScript SDK in a real browser (headless Debian chromium, driven by
selenium and chromium-driver): a page imports sdk/js/streamgate.js, connects
to two gateway nodes and subscribes to several endpoints while a producer
writes steadily; the node the page is on is killed (-9). Every endpoint's
messages must arrive exactly once and in order, checked record by record
against the producer's delivery reports."""

from __future__ import annotations

import functools
import http.server
import shutil
import signal
import threading
import time

import pytest

from conftest import ROOT, SteadyProducer, free_port, http_get

KEYS = ["a", "b", "c", "d"]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def static_server():
    """Serves sdk/js over HTTP on loopback (a page loads modules from a server, not from file://)."""
    handler = functools.partial(QuietHandler, directory=str(ROOT / "sdk" / "js"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not shutil.which("chromedriver") or not shutil.which("chromium"):
        pytest.fail("chromium and chromium-driver are needed (scripts/setup installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def test_the_gateway_serves_the_sdk_module(create_topic, gateway_factory):
    gw = gateway_factory([create_topic()])
    status, headers, body = http_get(gw.http_url + "/sdk/streamgate.js")
    assert status == 200
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Access-Control-Allow-Origin"] == "*"  # a page of any origin may import it
    assert body == (ROOT / "sdk" / "js" / "streamgate.js").read_bytes()


def wait_for(browser, what: str, script: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.execute_script(script)
        if value:
            return value
        time.sleep(0.02)
    events = browser.execute_script("return window.events")
    raise AssertionError(f"timed out waiting for {what}; page events: {events}")


def test_a_page_using_the_sdk_survives_a_node_kill(broker, create_topic, gateway_factory, static_server, browser,
                                                   print_result):
    topic = create_topic(partitions=4)
    nodes = [gateway_factory([topic]) for _ in range(2)]
    endpoints = [f"/{topic}/{key}" for key in KEYS]
    urls = ",".join(node.ws_url for node in nodes)
    # The page comes from another origin and imports the SDK from a gateway, as an app would.
    sdk = f"{nodes[0].http_url}/sdk/streamgate.js"
    browser.get(f"{static_server}/test/browser.html?urls={urls}&endpoints={','.join(endpoints)}&sdk={sdk}")
    wait_for(browser, "every subscription", f"return window.subscribed === {len(KEYS)}")
    total = "return Object.values(window.received).reduce((n, list) => n + list.length, 0)"
    producer = SteadyProducer(broker.bootstrap, topic, KEYS)
    try:
        wait_for(browser, "live messages", f"{total} >= 40")
        on = browser.execute_script("return window.client.node")
        victim = next(node for node in nodes if node.ws_url == on)
        killed_at = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        wait_for(browser, "a reconnect to the other node",
                 f"return window.client.state === 'connected' && window.client.node !== {on!r}")
        at_reconnect = browser.execute_script(total)
        wait_for(browser, "a resumed message", f"{total} > {at_reconnect}")
        recovered_ms = (time.monotonic() - killed_at) * 1000
        wait_for(browser, "more live messages", f"{total} > {at_reconnect} + 40")
    finally:
        reports = producer.stop()
    for key, endpoint in zip(KEYS, endpoints):
        wait_for(browser, f"every message of {endpoint}",
                 f"return window.received[{endpoint!r}].length >= {len(reports[key])}")
    time.sleep(0.2)
    received = browser.execute_script("return window.received")
    for key, endpoint in zip(KEYS, endpoints):
        assert received[endpoint] == [[offset, value] for _, offset, value in reports[key]], endpoint
    events = browser.execute_script("return window.events")
    assert not [e for e in events if any(word in e for word in (": gap", ": ended", ": stale_epoch", "error "))], events
    count = sum(len(r) for r in reports.values())
    print_result(f"browser (headless chromium): {count} messages on {len(KEYS)} endpoints exactly once and in order "
                 f"across a node kill; first message from the other node {recovered_ms:.0f} ms after the kill")
