"""Politeness of requests over many hosts: wall time against the ideal, gaps at the servers.

``python bench/spacing.py --compare-src DIR [--hosts 100] [--per-host 20] [--delay 0.2]``:
one loopback server per host (127.0.0.2, 127.0.0.3, ...: each a host of its own), each
answering a small PNG at once and 404 for robots.txt; a list of ``--per-host`` URLs per
host, interleaved, crawled with ``--host-delay DELAY`` by 1 local worker x 16 threads,
by this checkout and by the one at ``DIR``, interleaved, 2 rounds. The ideal wall time
is ``per_host x delay``. Each run reports its wall time, the smallest gap between two
image requests of one host, and how many gaps fell under 0.8 x the delay.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

HERE = Path(__file__).resolve().parent.parent


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    png: bytes
    starts: defaultdict[str, list[float]]
    lock: threading.Lock

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        robots = self.path.startswith("/robots.txt")
        if not robots:
            with self.server.lock:
                self.server.starts[self.server.server_address[0]].append(time.monotonic())
        body = b"" if robots else self.server.png
        self.send_response(404 if robots else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def one_run(
    servers: list[_Server], src: Path, per_host: int, delay: float, tag: str
) -> dict[str, Any]:
    """Crawl with the crawler at ``src``: seconds, smallest gap, gaps under 0.8 delay."""
    with tempfile.TemporaryDirectory() as scratch:
        listing = Path(scratch) / "list.txt"
        lines = [
            f"http://{s.server_address[0]}:{s.server_address[1]}/{j}.png?{tag}"
            for j in range(per_host)
            for s in servers
        ]
        listing.write_text("\n".join(lines) + "\n")
        for server in servers:
            server.starts.clear()
        env = dict(os.environ, PYTHONPATH=str(src), CRAWLER_AUTHKEY="k" * 32)
        command = [sys.executable, "-m", "crawler.master", str(listing), "--port", "0",
                   "--bind", "127.0.0.1", "--no-block-private", "--local-workers", "1",
                   "--threads", "16", "--host-delay", str(delay), "--output",
                   str(Path(scratch) / "out"), "--no-progress", "--no-report", "-q"]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=src)
        took = time.monotonic() - started
    gaps = [
        b - a
        for server in servers
        for times in server.starts.values()
        for a, b in zip(sorted(times), sorted(times)[1:], strict=False)
    ]
    return {
        "s": round(took, 2),
        "exit": done.returncode,
        "min_gap_s": round(min(gaps), 3) if gaps else None,
        "gaps_under_0.8_delay": sum(g < 0.8 * delay for g in gaps),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--compare-src", type=Path, required=True, help="another checkout")
    p.add_argument("--hosts", type=int, default=100)
    p.add_argument("--per-host", type=int, default=20)
    p.add_argument("--delay", type=float, default=0.2)
    args = p.parse_args()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 90, 200)).save(buf, "PNG")
    servers = []
    for i in range(args.hosts):
        server = _Server((f"127.0.0.{i + 2}", 0), _Handler)
        server.png, server.starts, server.lock = buf.getvalue(), defaultdict(list), threading.Lock()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    ideal = round(args.per_host * args.delay, 3)
    runs: dict[str, Any] = {"ideal_s": ideal, "this": [], "compared": []}
    for n in range(2):
        order = [("this", HERE), ("compared", args.compare_src)]
        for name, src in order if n % 2 == 0 else order[::-1]:
            runs[name].append(one_run(servers, src, args.per_host, args.delay, f"round={n}"))
    for server in servers:
        server.shutdown()
        server.server_close()
    print(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
