"""Whatever bytes a server sends where the crawler reads text: a status, never a bug.

Sweeps over what a server puts on the wire, each answer served by a real HTTP server on
loopback and fetched with the worker's own ``fetch`` (a real session, retries off):

- a redirect's ``Location``, any bytes at all (not UTF-8, controls, CR LF that start
  another header, a host that is no host, a port 0): the redirect is followed (``ok``,
  or the target's own ``http_error``) or refused (``redirect_error``), or the answer is
  no HTTP (``connection_error``); nothing else escapes ``fetch`` (what the worker would
  report as ``worker_error``, a bug);
- a Location's query of any bytes: the target asked for names exactly those bytes;
- whole answers of any bytes (a status line that is none, a reason phrase of any
  bytes): a status, and an error text that is printable and free of urllib3's objects.

No name is ever looked up and nothing is asked of any other port: the worker's
resolver gets a lookup that knows only this test's server (every other host and port
is a DNS failure, a ``connection_error``).
"""

from __future__ import annotations

import http.client
import socket
import string
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import pytest
import requests
import urllib3.exceptions as u3
from hostile import hang, recording
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from imageserver import ImageServer, make_image
from urllib3.connection import HTTPConnection

from crawler.config import Policy
from crawler.exceptions import URLFailure
from crawler.urls import location_text, normalize_url
from crawler.worker.deadline import make_session
from crawler.worker.failures import convert, reason, wire_text
from crawler.worker.fetch import Download, fetch
from crawler.worker.netguard import mount
from crawler.worker.resolver import Resolver
from crawler.worker.robots import load_verdict

POLICY = Policy(deadline=2.0, connect_timeout=1.0, read_timeout=1.0, retries=0, block_private=False)
FOLLOWED = {"ok", "http_error"}  # the target answered: its image, or its 404
STATUSES = FOLLOWED | {"redirect_error", "connection_error"}
NOISE = ("ConnectionPool(", "Connection(host=", " object at 0x")
SWEEP = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Wire:
    """One server: ``/wire/answer`` sends ``answer`` byte for byte, ``/img/ok.jpg`` an
    image, ``/wire/target`` an image recording the request target it was asked for."""

    def __init__(self, server: ImageServer) -> None:
        self.server = server
        self.answer = b""
        self.seen: list[str] = []
        self.port = int(urlsplit(server.base_url).port or 0)
        server.add_handler("/wire/answer", self._send)
        server.add("/img/ok.jpg", make_image("JPEG", 40, 30, seed=61), content_type="image/jpeg")
        jpeg = make_image("JPEG", 40, 30, seed=62)
        server.add_handler("/wire/target", recording(jpeg, "image/jpeg", self.seen))
        self.session = make_session(POLICY, Resolver(self._lookup))

    def _send(self, request: BaseHTTPRequestHandler) -> None:
        request.wfile.write(self.answer)
        request.close_connection = True

    def _lookup(self, host: str, port: int) -> list[Any]:
        if (host, port) != ("127.0.0.1", self.port):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    def redirect(self, location: bytes) -> tuple[str, str, str | None]:
        """(status, error, final URL) of a 302 whose Location field is ``location``."""
        head = b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nConnection: close\r\n"
        return self.fetch(head + b"Location: " + location + b"\r\n\r\n")

    def download(self, answer: bytes) -> Download:
        """What ``fetch`` gets of ``/wire/answer`` answering ``answer``; raises as it does."""
        self.answer, self.seen[:] = answer, []
        return fetch(self.session, self.server.url("/wire/answer"), POLICY)

    def fetch(self, answer: bytes) -> tuple[str, str, str | None]:
        """(status, error, final URL) of ``/wire/answer`` answering ``answer``."""
        try:
            download = self.download(answer)
        except URLFailure as failure:
            return failure.status, str(failure), None
        except Exception as exc:  # what the worker reports as worker_error: a bug
            pytest.fail(f"worker_error: {type(exc).__name__}: {exc} for {answer!r}")
        return "ok", "", download.final_url


@pytest.fixture(scope="module")
def wire() -> Iterator[Wire]:
    with ImageServer() as server:
        yield Wire(server)


def assert_plain(error: str, sent: bytes = b"") -> None:
    """Printable, no urllib3 object, and no byte of ``sent`` shown as a Latin-1 stand-in:
    a character beyond ASCII is there only as the server sent it, in UTF-8."""
    assert error.isprintable(), error
    assert not any(noise in error for noise in NOISE), error
    assert all(ch.isascii() or ch.encode() in sent for ch in error), error


# Pieces a Location is made of: URL syntax, bytes that are not UTF-8, controls, CR LF.
PIECES = st.sampled_from(
    [b"/", b"//", b"?", b"#", b"%", b"%e9", b"\\", b":", b"@", b"[", b"]", b".", b"..",
     b"http:", b"https:", b"127.0.0.1", b":0", b":99999", b"img/ok.jpg", b"wire/answer",
     b"\xe9", b"\xff", b"\xc3\xa9", b"\xed\xa0\x80", b"\xf0\x9f", b"\xc0\xaf", b"\xe2\x80\xa8",
     b" ", b"\t", b"\x00", b"\x7f", b"\r", b"\r\n", b"\r\nLocation: ", b", "]
)  # fmt: skip
LOCATIONS = st.binary(max_size=40) | st.lists(
    PIECES | st.binary(max_size=3) | st.text(max_size=3).map(str.encode), max_size=10
).map(b"".join)
PREFIXES = [b"", b"/img/", b"//127.0.0.1:{port}/", b"http://127.0.0.1:{port}/img/", b"http://"]


@SWEEP
@given(prefix=st.sampled_from(PREFIXES), rest=LOCATIONS)
@example(prefix=b"/img/", rest=b"caf\xe9.jpg")
@example(prefix=b"", rest=b"/img\xc3\xa9?x=\xff")
@example(prefix=b"//", rest=b"ex\xe9ample.test/x.jpg")
@example(prefix=b"", rest=b"http://[::1")
@example(prefix=b"", rest=b"/img/ok.jpg\r\nLocation: /img/other.jpg")
@example(prefix=b"http://127.0.0.1:{port}/img/", rest=b"\xff\xfe")
def test_any_location_bytes_end_in_a_status(wire: Wire, prefix: bytes, rest: bytes) -> None:
    location = prefix.replace(b"{port}", str(wire.port).encode()) + rest
    status, error, final = wire.redirect(location)
    event(status)  # --hypothesis-show-statistics: how the sweep's Locations ended
    assert status in STATUSES, (location, status, error)
    assert_plain(error, location)
    if final is not None:
        assert final.isascii() and final.isprintable() and normalize_url(final) == final


QUERY_BYTES = st.binary(min_size=1, max_size=30).filter(
    lambda b: not any(c <= 0x20 or c in b"#%" for c in b)
)


@SWEEP
@given(QUERY_BYTES)
@example(b"x=\xff")
@example(b"q=caf\xe9&r=\xc3\xa9")
@example(b"\xed\xa0\x80\xf0\x9f\x98")
def test_a_location_query_asks_for_exactly_its_bytes(wire: Wire, query: bytes) -> None:
    """UTF-8 or not, the target asked for is the Location's bytes, percent-encoded."""
    status, error, final = wire.redirect(b"/wire/target?" + query)
    assert (status, error) == ("ok", ""), query
    (asked,) = wire.seen  # urllib3 may encode some more ("[" as %5B): same bytes
    assert final is not None and urlsplit(final).path == "/wire/target"
    assert unquote_to_bytes(urlsplit(final).query) == query
    assert unquote_to_bytes(asked.partition("?")[2]) == query


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (b"/img/caf\xe9.jpg", "/img/caf%E9.jpg"),  # Latin-1
        (b"/img\xc3\xa9?x=\xff", "/imgé?x=%FF"),  # UTF-8, then a stray byte
        (b"/a\xed\xa0\x80b", "/a%ED%A0%80b"),  # an encoded surrogate is no UTF-8
        (b"/a\xc0\xafb", "/a%C0%AFb"),  # nor is an overlong "/"
        (b"/\xe5\x9b\xbe\xff", "/图%FF"),
        (b"/ok.jpg", "/ok.jpg"),
    ],
)
def test_location_text_reads_utf8_and_escapes_other_bytes(location: bytes, expected: str) -> None:
    """UTF-8 stays text (the URL parser encodes it later); any other byte is %XX."""
    assert location_text(location) == expected


@given(st.binary(max_size=60))
def test_location_text_is_total_and_keeps_every_byte(field: bytes) -> None:
    """Any bytes give text (no lone surrogate left) naming exactly those bytes."""
    text = location_text(field)
    text.encode("utf-8")  # raises on a lone surrogate
    assert unquote_to_bytes(text) == unquote_to_bytes(field)


@pytest.mark.parametrize(
    ("location", "status", "error"),
    [
        (b"//ex\xe9ample.test/x.jpg", "redirect_error", "host or port is not valid"),
        (b"http://[::1", "redirect_error", "host or port is not valid"),
        (b"http://127.0.0.1:0/x.jpg", "redirect_error", "port 0"),
        (b"/img/ok.jpg\r\nLocation: /img/other.jpg", "redirect_error", "several Location"),
        (b"/img/ok.jpg\r\nLocation: /img/ok.jpg", "ok", ""),  # the same twice: one
        (b"/img/ok.jpg, /img/other.jpg", "http_error", "HTTP 404"),  # one value, a comma
    ],
)
def test_location_cases(wire: Wire, location: bytes, status: str, error: str) -> None:
    got, text, _ = wire.redirect(location)
    assert got == status and error in text, text


def test_a_redirects_body_is_never_read(wire: Wire) -> None:
    """requests' Session.send read a redirect's whole body into memory (past max_bytes)."""
    sent = [0]

    def endless_redirect(request: BaseHTTPRequestHandler) -> None:
        request.wfile.write(b"HTTP/1.1 302 Found\r\nLocation: /img/ok.jpg\r\n\r\n")
        block = bytes(64 * 1024)
        try:
            while sent[0] < 256 * 1024 * 1024:
                request.wfile.write(block)
                sent[0] += len(block)
        except OSError:  # the client closed: it stopped reading, as it should
            pass
        request.close_connection = True

    url = wire.server.add_handler("/wire/endless-redirect", endless_redirect)
    download = fetch(wire.session, url, POLICY)
    assert download.final_url == wire.server.url("/img/ok.jpg")
    assert sent[0] < 32 * 1024 * 1024  # socket buffers, not the body (256 MiB before)


# Whole answers: no HTTP at all, or a status line and reason phrase of any bytes.
REASONS = st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b)
ANSWERS = st.binary(max_size=80) | st.builds(
    lambda code, reason: (
        b"HTTP/1.1 %s %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % (code, reason)
    ),
    st.sampled_from([b"200", b"302", b"404", b"418", b"500", b"99", b"abc", b"1000", b""]),
    REASONS,
)


@SWEEP
@given(ANSWERS)
@example(make_image("JPEG", 40, 30, seed=63))  # an HTTP/0.9-style answer: the body alone
@example(b"SSH-2.0-OpenSSH_9.6\r\n")
@example(b"HTTP/1.1 404 Nicht gefunden \xe9\x00\xc3\xa9\r\nContent-Length: 0\r\n\r\n")
def test_any_answer_ends_in_a_status_with_a_plain_error(wire: Wire, answer: bytes) -> None:
    status, error, _ = wire.fetch(answer)
    event(status)
    assert status in STATUSES, (answer, status, error)
    assert_plain(error, answer)


def test_an_answer_without_a_status_line_is_said_so(wire: Wire) -> None:
    status, error, _ = wire.fetch(make_image("JPEG", 40, 30, seed=64))
    assert status == "connection_error"
    assert error.startswith("connection aborted: the server answered without a valid HTTP")
    assert error.isascii() and "\\xff\\xd8\\xff" in error, error


def test_a_reason_phrase_in_utf8_is_read_and_other_bytes_escaped(wire: Wire) -> None:
    answer = b"HTTP/1.1 404 N\xc3\xa3o encontrado \xe9\x01\r\nContent-Length: 0\r\n\r\n"
    assert wire.fetch(answer)[:2] == ("http_error", "HTTP 404 Não encontrado \\xe9\\x01")


def test_a_slow_robots_txt_is_unavailable_in_plain_words(wire: Wire) -> None:
    url = wire.server.add_handler("/slow/robots.txt", hang())
    policy = Policy(deadline=3.0, read_timeout=0.5, retries=0, block_private=False)
    verdict = load_verdict(url, wire.session, policy)
    assert verdict == {"unavailable": "Read timed out. (read timeout=0.5)"}


# Every kind of urllib3 error, with any text, as the crawler's error: plain.
def _pool() -> Any:
    adapter = requests.adapters.HTTPAdapter()
    mount(adapter, Resolver(), block_private=False)
    return adapter.poolmanager.pool_classes_by_scheme["http"]("127.0.0.1", 9)


MESSAGES = st.text(string.printable + "\xe9\xff\x00\u2028图", max_size=40)


@given(MESSAGES, st.sampled_from(["read", "connect", "new", "protocol", "plain"]))
@example("failed to connect: [Errno 113] No route to host", "new")
def test_every_urllib3_error_text_is_plain(message: str, kind: str) -> None:
    pool, conn = _pool(), HTTPConnection("127.0.0.1", 9)
    inner: Exception = {
        "read": lambda: u3.ReadTimeoutError(pool, "/x.jpg", message),
        "connect": lambda: u3.ConnectTimeoutError(conn, message),
        "new": lambda: u3.NewConnectionError(conn, message),
        "protocol": lambda: u3.ProtocolError("Connection aborted.", OSError(message)),
        "plain": lambda: u3.HTTPError(f"{pool}: {message}"),
    }[kind]()
    for exc in (
        requests.exceptions.ConnectionError(u3.MaxRetryError(pool, "/x.jpg", inner)),
        requests.exceptions.ConnectionError(inner),
        inner,
    ):
        failure = convert(exc, POLICY)
        assert_plain(str(failure), message.encode())


@given(st.text(max_size=60))
def test_wire_text_is_printable(text: str) -> None:
    assert wire_text(text, 1000).isprintable()


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            requests.exceptions.ChunkedEncodingError(u3.ProtocolError(
                "Connection broken: IncompleteRead(0 bytes read)", http.client.IncompleteRead(b"")
            )),
            "IncompleteRead(0 bytes read)",
        ),
        (
            requests.exceptions.ConnectionError(u3.ProtocolError(
                "Connection aborted.", ConnectionResetError(104, "Connection reset by peer")
            )),
            "Connection aborted: [Errno 104] Connection reset by peer",
        ),
    ],
)  # fmt: skip
def test_a_message_with_its_cause_is_one_plain_line(error: Exception, said: str) -> None:
    """urllib3's (message, cause) pairs read as their tuple's repr: "connection broken
    (body shorter than announced?): ('Connection broken: IncompleteRead(0 bytes read)',
    IncompleteRead(0 bytes read))" (a fresh user, 2026-12-01)."""
    assert reason(error, "") == said
