"""Hostile web servers for crawler tests: one handler per misbehaviour, on an ImageServer.

Every handler here writes a whole (mis)response itself, through the
``BaseHTTPRequestHandler`` the ImageServer hands it. None of them can keep a server
thread busy for ever: each loop is bounded (``LIMIT`` seconds or a byte budget) and
stops as soon as the client goes away, so a crawler that does give up is what ends
them, and a crawler that does not is caught by the test's own timeouts.

``register_web_cases`` puts every case on one server and returns a ``HostileSite``:
the list lines to crawl (name -> line, some of them not plain URLs: a raw IRI with a
space, a 4000-character query) and what the server recorded while serving them.
"""

from __future__ import annotations

import gzip
import itertools
import select
import socket
import struct
import threading
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote

from imageserver import CONTENT_TYPES, HTML_PAGE, ImageServer, expected_for, make_image

Handler = Callable[[BaseHTTPRequestHandler], None]

LIMIT = 30.0  # seconds any hostile handler may hold a connection, whatever the client does
TRICKLE_INTERVAL = 0.5  # seconds between two bytes of a trickled body
ENDLESS_BUDGET = 64 * 1024 * 1024  # bytes an "endless" body sends before giving up
SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480">'
    b'<rect width="640" height="480" fill="red"/></svg>\n'
)


# ------------------------------------------------------------------- building blocks
def client_gone(request: BaseHTTPRequestHandler, wait: float) -> bool:
    """Wait up to ``wait`` seconds; True once the client has closed its end."""
    sock: socket.socket = request.connection
    try:
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def head(
    request: BaseHTTPRequestHandler,
    status: int = 200,
    content_type: str | None = "image/jpeg",
    length: int | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Status line and headers only: the body (or the lack of one) is the caller's."""
    request.send_response(status)
    if content_type is not None:
        request.send_header("Content-Type", content_type)
    if length is not None:
        request.send_header("Content-Length", str(length))
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.end_headers()


def respond(
    request: BaseHTTPRequestHandler,
    body: bytes,
    content_type: str | None = "image/jpeg",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> None:
    """A complete, honest response (with a correct Content-Length)."""
    head(request, status, content_type, len(body), headers)
    request.wfile.write(body)


# ------------------------------------------------------------------------- handlers
def trickle(declared: int, interval: float = TRICKLE_INTERVAL) -> Handler:
    """Announce ``declared`` bytes, then one byte every ``interval`` s until the client goes."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        head(request, content_type="image/jpeg", length=declared)
        request.wfile.write(b"\xff")
        end = time.monotonic() + LIMIT
        while time.monotonic() < end and not client_gone(request, interval):
            request.wfile.write(b"\xd8")

    return handle


def hang() -> Handler:
    """Accept the request and never answer; give up when the client closes (or after LIMIT)."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        end = time.monotonic() + LIMIT
        while time.monotonic() < end and not client_gone(request, 0.2):
            pass
        request.close_connection = True

    return handle


def endless(content_type: str = "image/jpeg", chunk: int = 64 * 1024, status: int = 200) -> Handler:
    """An answer (a 200 unless ``status``) with no Content-Length whose body never ends
    (until the client goes)."""
    block = b"\xff\xd8\xff\xe0" + bytes(chunk - 4)

    def handle(request: BaseHTTPRequestHandler) -> None:
        head(request, status, content_type=content_type)
        sent, end = 0, time.monotonic() + LIMIT
        try:
            while sent < ENDLESS_BUDGET and time.monotonic() < end:
                request.wfile.write(block)
                sent += len(block)
        except OSError:  # BrokenPipe / reset: the client stopped reading, as it should
            pass
        request.close_connection = True

    return handle


def short_body(body: bytes, declared: int, sent: int) -> Handler:
    """Announce ``declared`` bytes, send the first ``sent`` of ``body``, then close."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        head(request, content_type="image/jpeg", length=declared)
        request.wfile.write(body[:sent])
        request.close_connection = True

    return handle


def lying_length(body: bytes, declared: int, content_type: str = "image/png") -> Handler:
    """A whole, small image announced with a Content-Length of ``declared`` bytes."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        head(request, content_type=content_type, length=declared)
        request.wfile.write(body)
        request.close_connection = True

    return handle


def redirect(location: str, status: int = 302) -> Handler:
    def handle(request: BaseHTTPRequestHandler) -> None:
        respond(
            request, b"", content_type="text/html", status=status, headers={"Location": location}
        )

    return handle


def serve(body: bytes, content_type: str | None, headers: dict[str, str] | None = None) -> Handler:
    """An honest response with the given (possibly lying) Content-Type and extra headers."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        respond(request, body, content_type, headers=headers)

    return handle


def statuses_then(
    failures: list[tuple[int, dict[str, str]]],
    body: bytes,
    content_type: str,
    times: list[float] | None = None,
) -> Handler:
    """Answer each of ``failures`` (status, headers) once, in order, then ``body`` for
    good; the time of each request (monotonic) is appended to ``times``."""
    lock = threading.Lock()
    left = list(failures)

    def handle(request: BaseHTTPRequestHandler) -> None:
        with lock:
            if times is not None:
                times.append(time.monotonic())
            failure = left.pop(0) if left else None
        if failure is None:
            respond(request, body, content_type)
        else:
            status, headers = failure
            respond(request, b"try again later\n", "text/plain", status, headers)

    return handle


def always(status: int, headers: dict[str, str] | None = None) -> Handler:
    def handle(request: BaseHTTPRequestHandler) -> None:
        respond(request, b"unavailable\n", "text/plain", status, headers)

    return handle


def recording(body: bytes, content_type: str, seen: list[str]) -> Handler:
    """Serve ``body``, appending the raw request target (as sent on the wire) to ``seen``."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        seen.append(request.path)
        respond(request, body, content_type)

    return handle


def drop() -> Handler:
    """Read the request, then close without a word."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        request.close_connection = True

    return handle


def oversized_headers(line_bytes: int, count: int) -> Handler:
    """Answer 200 with ``count`` extra headers, one of them ``line_bytes`` long: more than
    the HTTP client reads (a header line over 64 KiB, or over 100 headers)."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "image/jpeg")
        request.send_header("X-Long", "a" * line_bytes)
        for n in range(count):
            request.send_header(f"X-Many-{n}", "b")
        request.send_header("Content-Length", "0")
        request.end_headers()
        request.close_connection = True

    return handle


def not_http() -> Handler:
    """Answer with something that is not HTTP at all, then close."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        request.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n")
        request.close_connection = True

    return handle


def no_status_line(body: bytes) -> Handler:
    """Answer with ``body`` alone, as an HTTP/0.9 server would: no status line, no headers."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        request.wfile.write(body)
        request.close_connection = True

    return handle


def raw(head_bytes: bytes, body: bytes = b"") -> Handler:
    """Write ``head_bytes`` (status line and headers, no blank line) and ``body`` as they
    are, byte for byte, then close: for what BaseHTTPRequestHandler would not send."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        request.wfile.write(head_bytes + b"\r\nConnection: close\r\n\r\n" + body)
        request.close_connection = True

    return handle


def chunks(data: bytes, size: int = 400) -> bytes:
    """``data`` in chunked transfer coding (RFC 9112 7.1), without the last chunk."""
    return b"".join(
        b"%x\r\n" % len(data[i : i + size]) + data[i : i + size] + b"\r\n"
        for i in range(0, len(data), size)
    )


# ---------------------------------------------------------------------------- bodies
def bomb_png(width: int, height: int, seed: int = 0) -> bytes:
    """A real 16x16 PNG whose IHDR claims ``width`` x ``height`` (CRC recomputed: it parses)."""
    png = bytearray(make_image("PNG", 16, 16, seed=seed))
    assert png[12:16] == b"IHDR"
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes after a JPEG signature, gzipped (a few KiB on the wire)."""
    return gzip.compress(b"\xff\xd8\xff\xe0" + bytes(size), compresslevel=9)


# ------------------------------------------------------------------------ the site
@dataclass
class HostileSite:
    """What ``register_web_cases`` set up: list lines by case name, and server records."""

    server: ImageServer
    lines: dict[str, str] = field(default_factory=dict)  # case -> the line written in the list
    urls: dict[str, str] = field(default_factory=dict)  # case -> the URL the crawler should use
    final: dict[str, str] = field(default_factory=dict)  # case -> where an ok download ends
    bodies: dict[str, bytes] = field(default_factory=dict)  # case -> bytes an ok row must store
    paths: dict[str, str] = field(default_factory=dict)  # case -> path the server must be asked
    seen: dict[str, list[str]] = field(default_factory=dict)  # case -> request targets recorded
    hops: dict[str, list[str]] = field(default_factory=dict)  # case -> every path it asks for
    times: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    evil_names: list[str] = field(default_factory=list)  # file names a header tried to plant

    def add(self, name: str, path: str, handler: Handler, line: str | None = None) -> str:
        url = self.server.add_handler(path, handler)
        self.urls[name] = url
        self.lines[name] = line or url
        self.paths[name] = path
        return url

    def requests(self, name: str) -> int:
        """GETs the server saw for case ``name``, over all the paths its redirects lead to."""
        return sum(self.server.hits(path) for path in self.hops.get(name, [self.paths[name]]))

    def expect_image(self, name: str, body: bytes, final: str | None = None) -> None:
        self.bodies[name] = body
        self.final[name] = final or self.urls[name]
        self.server.expected[self.final[name]] = expected_for(body)


def register_web_cases(server: ImageServer, *, max_redirects: int) -> HostileSite:
    """Put every hostile-web case on ``server`` (a run with ``--retries 0``).

    The cases assume a policy like ``--deadline 3 --read-timeout 2 --max-bytes 200000
    --max-pixels 4000000 --min-width 16 --min-height 16`` and ``--max-redirects`` as given.
    """
    site = HostileSite(server)
    jpeg = make_image("JPEG", 320, 240, seed=11)
    png = make_image("PNG", 64, 48, seed=12)
    assert len(jpeg) > 10_000, "the short-body case needs a JPEG of more than 10000 bytes"

    # Slow or endless servers: the per-URL deadline and the size cap end these.
    site.add("trickle", "/slow/trickle.jpg", trickle(declared=100_000))  # under the size cap
    site.add("hang", "/slow/hang.jpg", hang())
    site.add("endless", "/big/endless.jpg", endless())
    site.add("short_body", "/cut/short.jpg", short_body(jpeg, declared=10_000, sent=5_000))
    site.add("lying_length", "/big/lying.png", lying_length(png, declared=1_000_000_000))
    gzipped = serve(gzip_bomb(20_000_000), "image/jpeg", {"Content-Encoding": "gzip"})
    site.add("gzip_bomb", "/big/gzip.jpg", gzipped)
    site.add("not_http", "/odd/not-http.jpg", not_http())
    site.add("header_line", "/odd/header-line.jpg", oversized_headers(70_000, 0))
    site.add("header_count", "/odd/header-count.jpg", oversized_headers(10, 150))

    # Bodies that are not (acceptable) raster images, whatever they are labelled.
    site.add("bomb_huge", "/img/bomb-huge.png", serve(bomb_png(100_000, 100_000), "image/png"))
    site.add("bomb_over", "/img/bomb-over.png", serve(bomb_png(3_000, 2_000), "image/png"))
    site.add("svg", "/img/vector.svg", serve(SVG, "image/svg+xml"))
    site.add("html_as_image", "/img/page.jpg", serve(HTML_PAGE, "image/jpeg"))
    site.add("empty", "/img/empty.jpg", serve(b"", "image/jpeg"))
    site.add("tiny", "/img/tiny.png", serve(make_image("PNG", 8, 8, seed=13), "image/png"))

    # Real images with lying or hostile headers: accepted, judged by their bytes.
    site.add("png_as_html", "/img/really-png.html", serve(png, "text/html"))
    site.expect_image("png_as_html", png)
    site.add("jpeg_as_png", "/img/really-jpeg.png", serve(jpeg, "image/png"))
    site.expect_image("jpeg_as_png", jpeg)
    evil = f"crawler-evil-{uuid.uuid4().hex[:12]}.sh"
    site.evil_names.append(evil)
    disposition = f"attachment; filename=\"../../../../tmp/{evil}\"; filename*=UTF-8''{evil}"
    disposed = make_image("GIF", 40, 30, seed=14)
    attached = serve(disposed, "image/gif", {"Content-Disposition": disposition})
    site.add("disposition", "/img/attach.gif", attached)
    site.expect_image("disposition", disposed)
    gif = make_image("GIF", 48, 36, seed=15, frames=4)
    site.add("animated_gif", "/img/anim.gif", serve(gif, CONTENT_TYPES["GIF"]))
    site.expect_image("animated_gif", gif)

    # Redirects: loops, chains, and targets that are not http(s).
    a, b = "/loop/a.png", "/loop/b.png"
    site.add("redirect_loop", a, redirect(server.url(b)))
    server.add_handler(b, redirect(server.url(a)))
    site.hops["redirect_loop"] = [a, b]
    hops = [f"/chain/long/{i}.png" for i in range(max_redirects + 2)]
    for here, there in itertools.pairwise(hops):
        server.add_handler(here, redirect(there))  # relative Location: resolved by the crawler
    server.add_handler(hops[-1], serve(png, "image/png"))
    site.add("redirect_too_many", hops[0], redirect(hops[1]))
    site.hops["redirect_too_many"] = hops
    fits = [f"/chain/fits/{i}.png" for i in range(max_redirects + 1)]
    for here, there in itertools.pairwise(fits):
        server.add_handler(here, redirect(server.url(there), status=301))
    site.add("redirect_max", fits[0], redirect(server.url(fits[1]), status=301))
    site.hops["redirect_max"] = fits
    server.add_handler(fits[-1], serve(png, "image/png"))
    site.expect_image("redirect_max", png, final=server.url(fits[-1]))
    site.add("redirect_file", "/go/passwd.png", redirect("file:///etc/passwd"))
    site.add("redirect_ftp", "/go/ftp.png", redirect("ftp://127.0.0.1/pub/image.png"))
    creds = server.url("/img/anim.gif").replace("http://", "http://user:secret@")
    site.add("redirect_credentials", "/go/creds.png", redirect(creds))
    site.add("redirect_no_location", "/go/nowhere.png", lambda r: respond(r, b"", None, 302))

    # Unusual but valid URLs.
    iri_path = "/bilder/straße ü.png"
    wire_path = quote(iri_path.encode("utf-8"), safe="/")
    seen: list[str] = []
    site.seen["non_ascii"] = seen
    umlaut = make_image("PNG", 30, 20, seed=16)
    site.add("non_ascii", wire_path, recording(umlaut, "image/png", seen))
    site.lines["non_ascii"] = server.base_url + iri_path  # the raw IRI, space and all
    site.expect_image("non_ascii", umlaut)
    long_query = "q=" + "x" * 4000 + "&sig=" + "0123456789abcdef" * 4
    long_seen: list[str] = []
    site.seen["long_url"] = long_seen
    long_body = make_image("JPEG", 40, 40, seed=17)
    url = site.add("long_url", "/img/long.jpg", recording(long_body, "image/jpeg", long_seen))
    site.urls["long_url"] = site.lines["long_url"] = f"{url}?{long_query}"
    site.expect_image("long_url", long_body)
    register_framing_cases(site)
    register_location_cases(site)
    return site


def register_framing_cases(site: HostileSite) -> None:
    """Field cases 07, 08 and 13 (``shared/cases``), their bytes made here: a raw UTF-8
    Location, chunked bodies with a Content-Length, chunked bodies that end badly."""
    server = site.server
    jpeg = make_image("JPEG", 200, 150, seed=41)
    for name, target, sent in (
        ("utf8_location", "/图片/фото café.jpg", "raw"),
        ("utf8_location_encoded", "/图片/фото café 2.jpg", "encoded"),  # the control
    ):
        encoded = quote(target)  # what a browser asks for after the redirect
        seen: list[str] = []
        site.seen[name] = seen
        server.add_handler(encoded, recording(jpeg, "image/jpeg", seen))
        location = target.encode() if sent == "raw" else encoded.encode()
        moved = raw(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nLocation: " + location)
        site.add(name, f"/old-photo-{sent}.jpg", moved)
        site.hops[name] = [f"/old-photo-{sent}.jpg", encoded]
        site.expect_image(name, jpeg, final=server.url(encoded))

    png = make_image("PNG", 300, 200, seed=42)
    head_te = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked"
    whole = chunks(png, 500) + b"0\r\n\r\n"
    site.add("chunked_only", "/te/chunked-only.png", raw(head_te, whole))
    site.expect_image("chunked_only", png)
    for name, declared in (("chunked_cl_small", 10), ("chunked_cl_huge", 10**12)):
        both = raw(head_te + b"\r\nContent-Length: %d" % declared, whole)
        site.add(name, f"/te/{name}.png", both)
        site.expect_image(name, png)
    site.add("no_last_chunk", "/te/no-last-chunk.png", raw(head_te, chunks(png)))
    bad = chunks(png[:800]) + b"zz\r\n" + png[800:]
    site.add("bad_chunk_size", "/te/bad-chunk-size.png", raw(head_te, bad))


def register_location_cases(site: HostileSite) -> None:
    """Location bytes that are not UTF-8 (followed, each stray byte percent-encoded as it
    is; refused in a host), several Location headers, and an answer with no status line."""
    server = site.server
    jpeg = make_image("JPEG", 120, 90, seed=43)
    for name, location, target in (
        ("latin1_location", b"/img/caf\xe9.jpg", "/img/caf%E9.jpg"),
        ("mixed_location", b"/img\xc3\xa9?x=\xff", "/img%C3%A9?x=%FF"),
        ("same_two_locations", b"/img/twice.jpg\r\nLocation: /img/twice.jpg", "/img/twice.jpg"),
    ):
        path = target.partition("?")[0]
        server.add_handler(path, serve(jpeg, "image/jpeg"))
        moved = raw(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nLocation: " + location)
        site.add(name, f"/moved/{name}.jpg", moved)
        site.hops[name] = [f"/moved/{name}.jpg", path]
        site.expect_image(name, jpeg, final=server.url(target))
    elsewhere = server.url("/img/elsewhere.jpg").encode()
    for never in ("/img/first.jpg", "/img/elsewhere.jpg"):  # neither may be asked for
        server.add_handler(never, serve(jpeg, "image/jpeg"))
    for name, location in (
        ("bad_host_location", b"//ex\xe9ample.test/x.jpg"),
        ("two_locations", b"/img/first.jpg\r\nLocation: " + elsewhere),
        ("port0_location", b"http://127.0.0.1:0/x.jpg"),
    ):
        moved = raw(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nLocation: " + location)
        site.add(name, f"/moved/{name}.jpg", moved)
    site.add("http09", "/odd/http09.jpg", no_status_line(jpeg))


def register_retry_cases(server: ImageServer) -> HostileSite:
    """Transient failures, for a run with ``--retries 2 --deadline 3``. Each 429/503 case
    is on a loopback address of its own (``ImageServer.alias``): the master backs a host
    off for each such answer, doubling, and the cases on one host waited a minute."""
    site = HostileSite(server)
    png = make_image("PNG", 50, 40, seed=21)
    once = statuses_then([(429, {"Retry-After": "1"})], png, "image/png", site.times["429_once"])
    site.add("429_once", "/busy/429.png", once)
    site.expect_image("429_once", png)
    jpeg = make_image("JPEG", 60, 40, seed=22)
    twice = statuses_then([(503, {}), (503, {})], jpeg, "image/jpeg")
    alias = server.alias("127.0.0.2")
    site.add("503_twice", "/busy/503-twice.jpg", twice, alias + "/busy/503-twice.jpg")
    site.urls["503_twice"] = alias + "/busy/503-twice.jpg"
    site.expect_image("503_twice", jpeg)
    alias = server.alias("127.0.0.3")
    site.add("503_forever", "/busy/503.png", always(503), alias + "/busy/503.png")
    # An endless body: read off within a bound (keepalive), the URL leased again.
    alias = server.alias("127.0.0.4")
    endless_503 = endless("text/html", status=503)
    site.add("503_endless", "/busy/503-endless.png", endless_503, alias + "/busy/503-endless.png")
    # On a host of its own (a second name of the server): an hour's Retry-After gives its
    # host up for the run (politeness), which would end the other cases unfetched.
    hour = server.url("/busy/hour.png").replace("127.0.0.1", "localhost", 1)
    site.add("retry_after_hour", "/busy/hour.png", always(503, {"Retry-After": "3600"}), hour)
    site.add("404", "/busy/gone.png", always(404))
    site.add("dropped", "/busy/dropped.png", drop())
    return site


def register_deadline_cases(server: ImageServer) -> HostileSite:
    """Silent servers, for a run whose retries could outlast the deadline (``--retries 3``)."""
    site = HostileSite(server)
    site.add("hang", "/slow/hang.jpg", hang())
    return site


def raw_server(serve: Callable[[socket.socket], None], address: str = "127.0.0.1") -> socket.socket:
    """A socket listening on ``address`` (a loopback one; any free port) that gives every
    connection to ``serve`` in a thread of its own; closing it ends the accepting."""
    listener = socket.create_server((address, 0), backlog=64)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener
