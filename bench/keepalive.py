"""Connections kept across redirects and error pages: connections opened and wall time.

``python bench/keepalive.py --compare-src DIR [--rounds 2] [--urls 400]``: a loopback
HTTP/1.1 server answers ``/r/N`` with a 302 to ``/img/N``, ``/img/N`` with a PNG and
``/gone/N`` with a 404 page of 2.2 kB; a list of ``3 x --urls`` URLs (one of each per N)
is crawled by this checkout and by the one at ``DIR`` (e.g. a ``git worktree`` of an
earlier commit), 2 local workers x 8 threads, interleaved, round after round. Each run
reports the connections the server accepted and the wall time.

The server runs twice: with TCP_NODELAY on its sockets, as production servers set it,
and with Python's ``http.server`` defaults, where an answer written in two pieces on a
reused connection meets Nagle's algorithm and the client's delayed ACK (every client
that keeps connections alive does).
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

HERE = Path(__file__).resolve().parent.parent


def _pngs(count: int = 50) -> list[bytes]:
    out = []
    for i in range(count):
        buf = io.BytesIO()
        Image.new("RGB", (64 + i, 48), (i * 5 % 256, 90, 200)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    nodelay = True
    pngs: list[bytes]
    ports: set[int]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Resets by the client are part of what is measured."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def setup(self) -> None:
        super().setup()
        if self.server.nodelay:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self.server.ports.add(self.client_address[1])
        kind, _, rest = self.path.strip("/").partition("/")
        number = rest.split("?")[0]
        if kind == "r":
            body = b"<html>moved</html>" * 20
            self.send_response(302)
            self.send_header("Location", f"/img/{number}")
        elif kind == "img":
            body = self.server.pngs[int(number) % len(self.server.pngs)]
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
        else:
            body = b"<html>not found</html>" * 100
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def one_run(server: _Server, src: Path, urls: int, tag: str) -> dict[str, Any]:
    """Crawl the list with the crawler at ``src``: connections, seconds, exit code."""
    base = f"http://127.0.0.1:{server.server_port}"
    with tempfile.TemporaryDirectory() as scratch:
        listing = Path(scratch) / "list.txt"
        lines = [f"{base}/{k}/{i}?{tag}" for i in range(urls) for k in ("r", "img", "gone")]
        listing.write_text("\n".join(lines) + "\n")
        server.ports.clear()
        env = dict(os.environ, PYTHONPATH=str(src), CRAWLER_AUTHKEY="k" * 32)
        command = [sys.executable, "-m", "crawler.master", str(listing), "--port", "0",
                   "--bind", "127.0.0.1", "--no-block-private", "--local-workers", "2",
                   "--threads", "8", "--output", str(Path(scratch) / "out"), "--no-progress",
                   "--no-report", "-q", "--max-failure-rate", "1"]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=src)
        took = time.monotonic() - started
    return {"connections": len(server.ports), "s": round(took, 2), "exit": done.returncode}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--compare-src", type=Path, required=True, help="another checkout")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--urls", type=int, default=400, help="URLs of each kind")
    args = p.parse_args()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    pngs = _pngs()
    for nodelay in (True, False):
        server = _Server(("127.0.0.1", 0), _Handler)
        server.nodelay, server.pngs, server.ports = nodelay, pngs, set()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        runs: dict[str, list[dict[str, Any]]] = {"this": [], "compared": []}
        for n in range(args.rounds):
            order = [("this", HERE), ("compared", args.compare_src)]
            for name, src in order if n % 2 == 0 else order[::-1]:
                runs[name].append(one_run(server, src, args.urls, f"round={n}"))
        server.shutdown()
        server.server_close()
        results["TCP_NODELAY" if nodelay else "http.server defaults"] = runs
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
