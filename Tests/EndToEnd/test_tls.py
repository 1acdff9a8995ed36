"""wss:// in the C core (listen.tls): TLS 1.2+ with ALPN http/1.1, every
byte of a fan-out through OpenSSL (large messages, a reader that falls
behind and catches up), a certificate renewed with SIGHUP while connections
stay open, and configuration errors that name the key."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

from conftest import STREAMGATE_BIN, WsClient, base_config, run_async, subprocess_env
from test_operations import scrape, wait_admin


def make_certificate(directory, name: str) -> tuple[str, str]:
    """A self-signed P-256 certificate for 127.0.0.1 with `name` as its common name."""
    chain, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(chain), "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return str(chain), str(key)


def client_context(cafile: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = False  # the certificate names the IP; the CA check is what matters here
    return context


def peer_common_name(port: int, cafile: str, alpn: list[str] | None = None) -> tuple[str, str | None, str]:
    context = client_context(cafile)
    if alpn:
        context.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            subject = dict(item[0] for item in tls.getpeercert()["subject"])
            return subject["commonName"], tls.selected_alpn_protocol(), tls.version()


async def connect_wss(url: str, cafile: str, name: str = "client") -> WsClient:
    from websockets.asyncio.client import connect

    ws = await asyncio.wait_for(connect(url, ssl=client_context(cafile), max_size=None, open_timeout=5,
                                        ping_interval=None), 10)
    client = WsClient(ws, name)
    client.welcome = await client.next_text(5)
    assert client.welcome["type"] == "welcome", client.welcome
    return client


def hang_up_and_wait_for(gw, log_line: str) -> None:
    """SIGHUP, then wait until the gateway logs what it made of it."""
    gw.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while log_line not in gw.log():
        assert time.monotonic() < deadline, gw.log_tail()
        time.sleep(0.05)


@pytest.fixture
def certificates(tmp_path):
    first = make_certificate(tmp_path, "streamgate-first")
    second = make_certificate(tmp_path, "streamgate-second")
    served = tmp_path / "served.pem", tmp_path / "served.key"
    served[0].write_bytes(open(first[0], "rb").read())
    served[1].write_bytes(open(first[1], "rb").read())
    os.chmod(served[1], 0o600)
    return {"first": first, "second": second, "served": (str(served[0]), str(served[1]))}


def test_wss_delivers_every_byte_and_a_renewed_certificate_is_served_on_sighup(
        gateway_factory, create_topic, producer, certificates, free_admin_port):
    topic = create_topic()
    chain, key = certificates["served"]
    gw = gateway_factory([topic], {"listen": {"tls": {"certificate_chain": chain, "private_key": key}},
                                   "admin": {"enabled": True, "host": "127.0.0.1", "port": free_admin_port}})
    admin = f"http://127.0.0.1:{free_admin_port}"
    wait_admin(admin)
    url = f"wss://127.0.0.1:{gw.port}/ws"
    first_ca, second_ca = certificates["first"][0], certificates["second"][0]
    assert "websocket=wss://" in gw.log()

    # TLS 1.2 or 1.3, ALPN http/1.1 when asked; a client offering only h2 is refused.
    name, alpn, version = peer_common_name(gw.port, first_ca, ["http/1.1"])
    assert (name, alpn) == ("streamgate-first", "http/1.1") and version in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLError):
        peer_common_name(gw.port, first_ca, ["h2"])
    assert version == "TLSv1.3"
    tls12 = client_context(first_ca)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as raw, tls12.wrap_socket(raw) as tls:
        assert tls.version() == "TLSv1.2" and tls.cipher()[0].startswith("ECDHE-"), tls.cipher()
    # Plain HTTP on the TLS port is not served.
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as raw:
        raw.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(5)
        try:
            answer = raw.recv(4096)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"HTTP/1.1"), answer
    with urllib.request.urlopen(f"https://127.0.0.1:{gw.port}/readyz", context=client_context(first_ca), timeout=5) as r:
        assert r.status == 200 and r.read() == b"ready\n"

    big = os.urandom(100_000)
    chunk = os.urandom(10_000)

    async def body():
        client = await connect_wss(url, first_ca, "before")
        await client.subscribe(f"/{topic}/k")
        # A message of several TLS records, then 2 MB to a reader that is not reading yet.
        await asyncio.to_thread(producer.produce, topic, [("k", big)] + [("k", chunk + b"%d" % i) for i in range(200)])
        await asyncio.sleep(1.0)
        deliveries = await client.wait_deliveries(201, 20)
        assert deliveries[0].payload == big
        assert [d.payload for d in deliveries[1:]] == [chunk + b"%d" % i for i in range(200)]
        await asyncio.to_thread(renew)
        # The connection opened before the renewal goes on.
        await asyncio.to_thread(producer.produce, topic, [("k", b"after the renewal")])
        deliveries = await client.wait_deliveries(202, 10)
        assert deliveries[-1].payload == b"after the renewal"
        fresh = await connect_wss(url, second_ca, "after")
        await fresh.close()
        await client.close()

    def renew():
        """The files change, SIGHUP, new connections get the new certificate."""
        chain_path, key_path = certificates["served"]
        with open(chain_path, "wb") as f:
            f.write(open(certificates["second"][0], "rb").read())
        with open(key_path, "wb") as f:
            f.write(open(certificates["second"][1], "rb").read())
        hang_up_and_wait_for(gw, "SIGHUP: TLS certificate reloaded")
        assert peer_common_name(gw.port, second_ca)[0] == "streamgate-second"

    run_async(body())
    chain_path = certificates["served"][0]

    # A broken renewal keeps the certificate that serves.
    with open(chain_path, "w") as f:
        f.write("not a certificate")
    hang_up_and_wait_for(gw, "TLS certificate not reloaded")
    assert peer_common_name(gw.port, second_ca)[0] == "streamgate-second"
    metrics = scrape(admin)
    assert metrics['streamgate_connections_refused_total{reason="tls_handshake"}'] >= 3, metrics
    assert gw.proc.poll() is None


@pytest.fixture
def free_admin_port():
    from conftest import free_port

    return free_port()


def test_tls_settings_are_checked_and_errors_name_the_key(tmp_path, certificates):
    def check(tls: dict) -> subprocess.CompletedProcess:
        config = base_config(8080, "127.0.0.1:9092", ["t"])
        config["listen"]["tls"] = tls
        path = tmp_path / "c.json"
        path.write_text(json.dumps(config))
        return subprocess.run([str(STREAMGATE_BIN), "check-config", str(path)], capture_output=True, text=True,
                              timeout=30, env=subprocess_env())

    chain, key = certificates["first"]
    assert check({"certificate_chain": chain, "private_key": key}).returncode == 0
    missing = check({"certificate_chain": str(tmp_path / "nowhere.pem"), "private_key": key})
    assert missing.returncode == 2 and "listen.tls: cannot load the certificate chain" in missing.stderr, missing.stderr
    mismatched = check({"certificate_chain": chain, "private_key": certificates["second"][1]})
    assert mismatched.returncode == 2 and "does not match" in mismatched.stderr, mismatched.stderr
    half = check({"certificate_chain": chain})
    assert half.returncode == 2 and "listen.tls.private_key" in half.stderr, half.stderr
