"""A slow image server for the netns test, bound to a given address and logging every client.

``tests/test_netns.py`` runs it inside the image server's network namespace::

    ip netns exec NS python tests/netns_server.py --bind ADDR --port PORT --log FILE

It serves ``image_specs()`` (deterministic Pillow images from ``imageserver.make_image``),
holds every GET for ``--delay`` seconds so that work is in flight when a worker is cut off,
and appends one line ``UNIX_TIME CLIENT_ADDRESS PATH`` per GET to ``--log`` as the request
arrives, so that the test can tell which worker (namespace address) asked for which URL, and
when. It prints
``ready`` on stdout once it is listening. ``imageserver.ImageServer`` always binds loopback,
which is why this small server exists; it reuses the image generation only.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, NamedTuple

sys.path.insert(0, str(Path(__file__).parent))

from imageserver import CONTENT_TYPES, make_image

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")


class ImageSpec(NamedTuple):
    path: str
    fmt: str
    width: int
    height: int
    seed: int


def image_specs(count: int) -> list[ImageSpec]:
    """``count`` small images of mixed formats and sizes, the same on every call."""
    specs = []
    for i in range(count):
        fmt = FORMATS[i % len(FORMATS)]
        ext = {"JPEG": "jpg"}.get(fmt, fmt.lower())
        specs.append(ImageSpec(f"/img/{i:03d}.{ext}", fmt, 48 + 4 * i, 36 + 3 * i, 1000 + i))
    return specs


class Request(NamedTuple):
    time: float  # time.time() when the request arrived
    client: str
    path: str


def read_log(path: Path) -> list[Request]:
    """Every GET logged so far, in arrival order (a torn last line is left out)."""
    if not path.exists():
        return []
    requests = []
    for line in path.read_text(encoding="utf-8").split("\n")[:-1]:  # whole lines only
        fields = line.split(" ")
        if len(fields) == 3:
            requests.append(Request(float(fields[0]), fields[1], fields[2]))
    return requests


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], routes: dict[str, tuple[bytes, str]], delay: float, log: IO
    ) -> None:
        super().__init__(address, _Handler)
        self.routes = routes
        self.delay = delay
        self.log = log
        self.lock = threading.Lock()

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that vanish (a worker cut off the network) are expected; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the per-client log is written by do_GET."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.log.write(f"{time.time():.6f} {self.client_address[0]} {path}\n")
            self.server.log.flush()
        route = self.server.routes.get(path)
        time.sleep(self.server.delay)
        body, content_type = route if route is not None else (b"not found\n", "text/plain")
        self.send_response(200 if route is not None else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            self.close_connection = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    routes = {
        spec.path: (
            make_image(spec.fmt, spec.width, spec.height, spec.seed),
            CONTENT_TYPES[spec.fmt],
        )
        for spec in image_specs(args.count)
    }
    with args.log.open("a", encoding="utf-8") as log:
        server = _Server((args.bind, args.port), routes, args.delay, log)
        print("ready", flush=True)
        try:
            server.serve_forever(poll_interval=0.05)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
