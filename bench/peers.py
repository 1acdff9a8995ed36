"""Peers for the throughput scenario, each started here on loopback and fed
the same workload as Streamgate (K channels x rate, same payload layout) by a
direct publisher: uWebSockets (socketify, native publish from a timer in the
server process), nginx + nchan, NATS (websocket listener) and mosquitto (MQTT
over WebSocket), the last three fed by benchfeed over their own protocol.
Installed on demand (Debian packages, PyPI socketify)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench import BIN, ROOT, VENV_PY, Load, Server, free_port, log, wait_port

APT = {"nchan": ["nginx", "libnginx-mod-nchan"], "nats": ["nats-server"], "mosquitto": ["mosquitto"],
       "uwebsockets": ["libuv1"]}


def ensure_installed(name: str) -> None:
    missing = [p for p in APT.get(name, []) if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode]
    if missing:
        log(f"  installing {' '.join(missing)}")
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, capture_output=True,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    if name == "uwebsockets" and subprocess.run([str(VENV_PY), "-c", "import socketify"], capture_output=True).returncode:
        log("  installing socketify")
        subprocess.run([str(VENV_PY), "-m", "pip", "install", "-q", "socketify"], check=True)


def start_feed(mode: str, port: int, k: int, rate: float, payload: int, prefix: str, workdir: Path) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "benchfeed"), "--mode", mode, "--port", str(port), "--channels", str(k),
                             "--rate-per-channel", str(rate), "--payload-bytes", str(payload), "--prefix", prefix],
                            stdout=open(workdir / f"benchfeed-{mode}.log", "wb"), stderr=subprocess.STDOUT)


def start_uwebsockets(k, rate, payload, workdir, tls: tuple[str, str] | None = None) -> Server:
    """`tls`: (certificate, key): uWebSockets' own TLS (its SSL app, OpenSSL)."""
    ensure_installed("uwebsockets")
    port = free_port()
    log_path = workdir / f"uws-{port}.log"
    env = dict(os.environ, **({"UWS_TLS_CERT": tls[0], "UWS_TLS_KEY": tls[1]} if tls else {}))
    proc = subprocess.Popen([str(VENV_PY), str(Path(__file__).parent / "peers" / "uws_app.py"), str(port), str(k),
                             str(rate), str(payload)], stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=env)
    wait_port(port, 20)
    return Server("uwebsockets", proc, port, log_path)


def start_nchan(k, rate, payload, workdir) -> Server:
    ensure_installed("nchan")
    port = free_port()
    prefix = workdir / "nginx"
    for sub in ("", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(f"""
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
worker_processes 2;
worker_rlimit_nofile 20000;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 19000; }}
http {{
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 3600s;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport;
        location ~ ^/sub/(.+)$ {{ nchan_subscriber websocket; nchan_channel_id $1; }}
        location ~ ^/pub/(.+)$ {{ nchan_publisher; nchan_channel_id $1;
                                  nchan_message_buffer_length 1; nchan_message_timeout 10s; }}
    }}
}}
""")
    proc = subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                            stdout=open(workdir / "nginx.out", "wb"), stderr=subprocess.STDOUT)
    wait_port(port, 10)
    feed = start_feed("http", port, k, rate, payload, "/pub/k", workdir)
    return Server("nchan", proc, port, workdir / "nginx.out", [feed])


def start_nats(k, rate, payload, workdir) -> Server:
    ensure_installed("nats")
    tcp, ws = free_port(), free_port()
    conf = workdir / "nats.conf"
    conf.write_text(f'listen: "127.0.0.1:{tcp}"\nmax_payload: 1048576\n'
                    f'websocket {{ listen: "127.0.0.1:{ws}"\n no_tls: true }}\n')
    proc = subprocess.Popen(["nats-server", "-c", str(conf)], stdout=open(workdir / "nats.log", "wb"),
                            stderr=subprocess.STDOUT)
    wait_port(ws, 10)
    feed = start_feed("nats", tcp, k, rate, payload, "bench.k", workdir)
    return Server("nats", proc, ws, workdir / "nats.log", [feed])


def start_mosquitto(k, rate, payload, workdir) -> Server:
    ensure_installed("mosquitto")
    tcp, ws = free_port(), free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"allow_anonymous true\nmax_queued_messages 100000\n"
                    f"listener {tcp} 127.0.0.1\nsocket_domain ipv4\n"
                    f"listener {ws} 127.0.0.1\nsocket_domain ipv4\nprotocol websockets\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=open(workdir / "mosquitto.log", "wb"),
                            stderr=subprocess.STDOUT)
    wait_port(ws, 10)
    feed = start_feed("mqtt", tcp, k, rate, payload, "bench/k", workdir)
    return Server("mosquitto", proc, ws, workdir / "mosquitto.log", [feed])


def systems(name: str, k: int, rate: float, payload: int, workdir: Path):
    if name == "uwebsockets":
        yield ("uwebsockets", lambda: start_uwebsockets(k, rate, payload, workdir), Load("raw", "/bench/k%d", ""))
    elif name == "nchan":
        yield ("nchan", lambda: start_nchan(k, rate, payload, workdir), Load("raw", "/sub/k%d", ""))
    elif name == "nats":
        yield ("nats", lambda: start_nats(k, rate, payload, workdir), Load("nats", "/", "bench.k%d"))
    elif name == "mosquitto":
        yield ("mosquitto", lambda: start_mosquitto(k, rate, payload, workdir), Load("mqtt", "/", "bench/k%d"))
    else:
        raise SystemExit(f"unknown peer {name!r}: expected uwebsockets, nchan, nats or mosquitto")
