"""Loopback HTTP server serving real, in-memory generated images for crawler tests.

The server binds to 127.0.0.1 on a random free port, answers GET and HEAD from
a table of routes (static bodies, images generated with Pillow, or arbitrary
handler functions for hostile-server scenarios) and records per-path hit counts
and the peak number of requests served at the same moment.  ``expected`` maps
each image URL to what a correct crawler must record for it.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from PIL import Image

HandlerFn = Callable[[BaseHTTPRequestHandler], None]

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
NOT_FOUND_BODY = b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>"
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Not an image</title></head>"
    b"<body><p>This page only pretends to be a JPEG.</p></body></html>\n"
)


@dataclass(frozen=True)
class Expected:
    """What a correct crawler must record for a served image."""

    sha256: str
    width: int
    height: int
    format: str  # Pillow format name: "JPEG", "PNG", "WEBP", "GIF"
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class Route:
    """A registered path: either a static response or a handler function."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    handler: HandlerFn | None = None


def _frame(width: int, height: int, rng: random.Random) -> Image.Image:
    """One RGB frame: a smooth random colour field plus a little pixel noise."""
    coarse = Image.frombytes("RGB", (8, 6), rng.randbytes(8 * 6 * 3))
    smooth = coarse.resize((width, height), Image.Resampling.BICUBIC)
    noise = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    return Image.blend(smooth, noise, 0.12)


def _with_mode(frame: Image.Image, fmt: str, rng: random.Random) -> Image.Image:
    """Give PNG an alpha gradient and GIF a palette; others stay RGB."""
    if fmt == "PNG":
        alpha = Image.linear_gradient("L").resize(frame.size).rotate(rng.choice((0, 90)))
        frame = frame.convert("RGBA")
        frame.putalpha(alpha.point(lambda v: 64 + v * 3 // 4))
    elif fmt == "GIF":
        frame = frame.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return frame


def make_image(fmt: str, width: int, height: int, seed: int = 0, frames: int = 1) -> bytes:
    """Encode a deterministic image; ``frames > 1`` gives an animated GIF/WebP."""
    fmt = fmt.upper()
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"unsupported format {fmt!r}")
    if frames > 1 and fmt not in ("GIF", "WEBP"):
        raise ValueError(f"{fmt} cannot be animated")
    rng = random.Random(seed)
    images = [_with_mode(_frame(width, height, rng), fmt, rng) for _ in range(frames)]
    buf = io.BytesIO()
    opts: dict[str, object] = {"quality": 85} if fmt in ("JPEG", "WEBP") else {}
    if frames > 1:
        opts.update(save_all=True, append_images=images[1:], duration=100, loop=0)
    images[0].save(buf, format=fmt, **opts)
    return buf.getvalue()


def expected_for(body: bytes) -> Expected:
    """Describe ``body`` the way a crawler should: hash, Pillow format and size."""
    with Image.open(io.BytesIO(body)) as img:
        width, height, fmt = img.width, img.height, str(img.format)
    return Expected(hashlib.sha256(body).hexdigest(), width, height, fmt, body)


class _Handler(BaseHTTPRequestHandler):
    """Dispatches each request to the owning ImageServer's route table."""

    server: _HTTPServer

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self.server.owner._serve(self)

    def do_HEAD(self) -> None:
        self.server.owner._serve(self)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # many concurrent crawler connections
    owner: ImageServer

    def handle_error(self, request: object, client_address: object) -> None:
        """Client disconnects (e.g. crawler timeouts) are expected; stay quiet."""


class ImageServer:
    """Threaded loopback HTTP server with a mutable route table."""

    def __init__(self) -> None:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._hits: dict[str, int] = {}
        self._in_flight = 0
        self.max_concurrent = 0
        self.expected: dict[str, Expected] = {}
        host, port = self._httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._aliases: list[tuple[_HTTPServer, threading.Thread]] = []

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="imageserver",
                daemon=True,
            )
            self._thread.start()
        return self

    def alias(self, address: str) -> str:
        """Serve the same routes on another loopback ``address`` too (127.0.0.2, ...:
        another host to the crawler's politeness); returns its base URL. Call it after
        ``start``; ``stop`` ends it."""
        httpd = _HTTPServer((address, 0), _Handler)
        httpd.owner = self
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"imageserver-{address}", daemon=True)  # fmt: skip
        thread.start()
        self._aliases.append((httpd, thread))
        return f"http://{address}:{httpd.server_address[1]}"

    def stop(self) -> None:
        for httpd, thread in self._aliases:
            httpd.shutdown()
            thread.join(timeout=5)
            httpd.server_close()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- routes --------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def _register(self, path: str, route: Route) -> str:
        url = self.url(path)
        with self._lock:
            self._routes[urlsplit(url).path] = route
        return url

    def add(
        self,
        path: str,
        body: bytes,
        *,
        status: int = 200,
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> str:
        """Register a static response; returns the full URL."""
        route = Route(body, status, content_type, dict(headers or {}), delay)
        return self._register(path, route)

    def add_image(
        self,
        path: str,
        fmt: str,
        width: int,
        height: int,
        seed: int = 0,
        frames: int = 1,
    ) -> str:
        """Register a generated image and remember its Expected record."""
        body = make_image(fmt, width, height, seed, frames)
        url = self.add(path, body, content_type=CONTENT_TYPES[fmt.upper()])
        self.expected[url] = expected_for(body)
        return url

    def add_handler(self, path: str, fn: HandlerFn) -> str:
        """Register arbitrary behaviour: ``fn`` writes the whole response."""
        return self._register(path, Route(handler=fn))

    # -- statistics ----------------------------------------------------------
    def hits(self, path: str) -> int:
        """Number of GET requests for ``path`` (query string ignored)."""
        with self._lock:
            return self._hits.get(urlsplit(self.url(path)).path, 0)

    def total_hits(self) -> int:
        with self._lock:
            return sum(self._hits.values())

    def reset_stats(self) -> None:
        with self._lock:
            self._hits.clear()
            self.max_concurrent = self._in_flight

    # -- request handling (runs in server threads) ---------------------------
    def _enter(self, handler: BaseHTTPRequestHandler, path: str) -> Route | None:
        with self._lock:
            if handler.command == "GET":
                self._hits[path] = self._hits.get(path, 0) + 1
            self._in_flight += 1
            self.max_concurrent = max(self.max_concurrent, self._in_flight)
            return self._routes.get(path)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        route = self._enter(handler, urlsplit(handler.path).path)
        try:
            if route is None:
                route = Route(NOT_FOUND_BODY, 404, "text/html; charset=utf-8")
            if route.handler is not None:
                route.handler(handler)
            else:
                _send_static(handler, route)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
        finally:
            self._leave()


def _send_static(handler: BaseHTTPRequestHandler, route: Route) -> None:
    if route.delay:
        time.sleep(route.delay)
    handler.send_response(route.status)
    handler.send_header("Content-Type", route.content_type)
    handler.send_header("Content-Length", str(len(route.body)))
    for name, value in route.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(route.body)


def truncated(body: bytes, fraction: float = 0.6) -> bytes:
    """The first ``fraction`` of ``body`` (a transfer cut short upstream)."""
    return body[: int(len(body) * fraction)]


def standard_routes(server: ImageServer) -> dict[str, str]:
    """Register the standard fixture set on ``server``; returns name -> URL."""
    urls = {
        "jpeg": server.add_image("/img/photo.jpg", "JPEG", 640, 480, seed=1),
        "jpeg_small": server.add_image("/img/thumb.jpg", "JPEG", 64, 64, seed=2),
        "png": server.add_image("/img/alpha.png", "PNG", 300, 200, seed=3),
        "webp": server.add_image("/img/photo.webp", "WEBP", 320, 240, seed=4),
        "gif": server.add_image("/img/still.gif", "GIF", 100, 80, seed=5),
        "gif_animated": server.add_image("/img/anim.gif", "GIF", 120, 90, 6, frames=3),
        "webp_animated": server.add_image("/img/anim.webp", "WEBP", 120, 90, 7, frames=3),
        "not_found": server.url("/img/missing.jpg"),
    }
    jpeg = make_image("JPEG", 800, 600, seed=8)
    urls["html_as_jpg"] = server.add("/page.jpg", HTML_PAGE, content_type="image/jpeg")
    urls["truncated_jpeg"] = server.add(
        "/img/truncated.jpg", truncated(jpeg), content_type="image/jpeg"
    )
    urls["redirect"] = server.add(
        "/go/alpha.png", b"", status=302, headers={"Location": urls["png"]}
    )
    urls["empty"] = server.add("/img/empty.png", b"", content_type="image/png")
    urls["text"] = server.add(
        "/img/notes.png", b"just some text, not a PNG\n", content_type="text/plain"
    )
    return urls


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    """Answer ``status`` with ``body`` and ``headers`` (and its Content-Length)."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    if status != 304:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if body and handler.command != "HEAD":
        handler.wfile.write(body)
