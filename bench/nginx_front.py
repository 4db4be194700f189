"""Debian's nginx with the shipped config/nginx/locker-proxy.conf in front of web instances
on this machine, in a folder of its own (tests/test_nginx.py, bench.faults)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def available() -> bool:
    return os.path.exists(NGINX)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(folder: Path, upstream_ports: list[int], port: int | None = None) -> tuple[subprocess.Popen, str]:
    """nginx listening on 127.0.0.1 (``port``, or a free one) in front of the ports given;
    (its process, its base URL). The caller waits for it to answer and ends it."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    servers = " ".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in upstream_ports)
    (folder / "nginx.conf").write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    upstream locker {{ {servers} keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        include {ROOT / "config" / "nginx" / "locker-proxy.conf"};
    }}
}}
""")
    process = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, f"http://127.0.0.1:{port}"
