"""Answers the crawler does not keep are read off within a bound, so that their connection
serves the next request, and never past the bound (``worker.keepalive``).

A sweep over what such an answer can be: a redirect (302, 307), an error page (404,
410), an answer urllib3 retries (500; a 429 or 503 is not retried in the thread but
goes back to the master, so it is an error page here), each with its body framed by Content-Length,
by chunked coding or by the connection's end, empty, small or over ``DRAIN_BYTES``,
sent at once, trickled, or endless. Each is served by a real HTTP server on loopback,
fetched with the worker's own ``fetch`` (a real session), and the server records the
connection (the client's port) each request arrived on. For every case:

- the outcome is what the status says: the redirect's image, or ``http_error`` with
  the server's status, after ``retries + 1`` requests for a retried status;
- a small body, framed, sent at once, is read off and its connection serves the next
  request (before, each redirect hop and each error page cost a new connection, and the
  server saw a reset);
- a body that is too long, too slow, endless or unframed ends with its connection, in
  at most ``DRAIN_SECONDS`` per answer: never past it (before, urllib3's own drain read
  a retried 5xx's endless body for ever, past the per-URL deadline).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hostile import LIMIT, chunks, client_gone
from imageserver import make_image

from crawler.config import Policy
from crawler.exceptions import URLFailure
from crawler.worker.deadline import RETRIED_STATUSES, make_session
from crawler.worker.fetch import fetch
from crawler.worker.keepalive import DRAIN_BYTES, DRAIN_SECONDS
from crawler.worker.resolver import Resolver

RETRIES = 1
POLICY = Policy(deadline=8.0, read_timeout=5.0, retries=RETRIES, backoff=0.01, block_private=False)
STATUSES = (302, 307, 404, 410, 500, 503)
FRAMINGS = ("length", "chunked", "close")
SIZES = {"empty": 0, "small": 2_000, "large": DRAIN_BYTES + 1}
PACES = ("at once", "trickle", "endless")
JPEG = make_image("JPEG", 40, 30, seed=71)
TRICKLE_INTERVAL = 0.2  # seconds between two bytes of a trickled body


class _KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # connections stay open between requests
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        answers = self.server.answers
        answers.record(self)
        with contextlib.suppress(OSError):  # the client went: it may
            (answers.image if self.path == "/img/ok.jpg" else answers.answer)(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    answers: Answers

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that closes with bytes unread is part of the sweep."""


class Answers:
    """One HTTP/1.1 server: ``/answer`` answers as the current case says,
    ``/img/ok.jpg`` is an image. Every request's (path, client port) is recorded."""

    def __init__(self) -> None:
        self.case: tuple[int, str, int, str] = (404, "length", 0, "at once")
        self.seen: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _KeepAliveHandler)
        self.server.answers = self
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def record(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.seen.append((request.path, request.client_address[1]))

    def image(self, request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "image/jpeg")
        request.send_header("Content-Length", str(len(JPEG)))
        request.end_headers()
        request.wfile.write(JPEG)

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        status, framing, size, pace = self.case
        request.send_response(status)
        request.send_header("Content-Type", "text/html")
        if status in (302, 307):
            request.send_header("Location", "/img/ok.jpg")
        body = b"x" * size
        if framing == "length":
            request.send_header("Content-Length", str(10**12 if pace == "endless" else size))
        elif framing == "chunked":
            request.send_header("Transfer-Encoding", "chunked")
        else:
            request.send_header("Connection", "close")
            request.close_connection = True
        request.end_headers()
        _send_body(request, framing, body, pace)


def _send_body(request: BaseHTTPRequestHandler, framing: str, body: bytes, pace: str) -> None:
    """``body`` at ``pace``: at once, a byte per TRICKLE_INTERVAL, or 64 kB blocks without
    end (each until the client goes, LIMIT at most)."""
    frame = chunks if framing == "chunked" else (lambda data: data)
    end = time.monotonic() + LIMIT
    if pace == "at once":
        request.wfile.write(frame(body) + (b"0\r\n\r\n" if framing == "chunked" else b""))
        return
    block = b"x" * (64 * 1024 if pace == "endless" else 1)
    wait = 0.0 if pace == "endless" else TRICKLE_INTERVAL
    request.close_connection = True
    try:
        while time.monotonic() < end and not client_gone(request, wait):
            request.wfile.write(frame(block))
    except OSError:  # the client closed the connection: as it should
        pass


@pytest.fixture(scope="module")
def answers() -> Iterator[Answers]:
    answers = Answers()
    yield answers
    answers.server.shutdown()
    answers.server.server_close()


def _lookup_for(port: int) -> Any:
    def lookup(host: str, asked: int) -> list[Any]:
        if (host, asked) != ("127.0.0.1", port):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", asked))]

    return lookup


def _outcome(answers: Answers) -> tuple[str, int | None, int]:
    """(status, HTTP status, attempts) of fetching ``/answer`` with a new session."""
    session = make_session(POLICY, Resolver(_lookup_for(answers.port)))
    try:
        download = fetch(session, answers.url("/answer"), POLICY)
    except URLFailure as failure:
        return failure.status, failure.http_status, failure.attempts
    finally:
        session.close()
    return "ok", download.http_status, download.attempts


CASES = [
    (status, framing, size, pace)
    for status in STATUSES
    for framing in FRAMINGS
    for size in SIZES
    for pace in PACES
    # An endless body: one size, one status of each kind; a trickled one takes its
    # DRAIN_SECONDS for each answer: one framing, a redirect and a retried status.
    if pace == "at once"
    or (pace == "endless" and size == "small" and status in (302, 404, 500))
    or (pace == "trickle" and size == "small" and framing == "length" and status in (302, 500))
]


@pytest.mark.parametrize(("status", "framing", "size", "pace"), CASES)
def test_an_answer_not_kept_is_read_off_within_the_bound(
    answers: Answers, status: int, framing: str, size: str, pace: str
) -> None:
    answers.case, answers.seen[:] = (status, framing, SIZES[size], pace), []
    started = time.monotonic()
    got = _outcome(answers)
    took = time.monotonic() - started
    redirect, retried = status in (302, 307), status in RETRIED_STATUSES
    not_kept = 1 + (RETRIES if retried else 0)  # answers whose body was not kept
    if redirect:
        assert got == ("ok", 200, 2)
    else:
        assert got == ("http_error", status, not_kept)
    # Each answer not kept is read off in DRAIN_SECONDS at most (plus the retry pause).
    assert took < not_kept * DRAIN_SECONDS + 1.0, (got, took)
    ports = [port for _, port in answers.seen]
    assert len(ports) == (2 if redirect else not_kept), answers.seen
    reusable = framing != "close" and size != "large" and pace == "at once"
    if redirect or retried:  # the next request of the same fetch: on the same connection?
        assert (len(set(ports)) == 1) is reusable, (answers.seen, reusable)


def test_an_error_page_keeps_the_connection_for_the_next_url(answers: Answers) -> None:
    """Ten 404 pages in a row, fetched by one session: one connection, not ten."""
    answers.case, answers.seen[:] = (404, "length", 2_000, "at once"), []
    session = make_session(POLICY, Resolver(_lookup_for(answers.port)))
    try:
        for _ in range(10):
            with pytest.raises(URLFailure) as failure:
                fetch(session, answers.url("/answer"), POLICY)
            assert failure.value.http_status == 404
    finally:
        session.close()
    assert len({port for _, port in answers.seen}) == 1, answers.seen
