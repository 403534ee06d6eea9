"""A body slower than the deadline keeps its answer's status, whatever frames it.

Once an answer's status line and headers arrived, the host has answered: a body that
does not come in time (slower than ``--deadline``, or stalled past ``--read-timeout``)
is the link's or the deadline's, not a silence of the host. Its row keeps the answer's
``http_status``, and the master does not back the host off for it (``fencing.Answer``,
``lane.no_answer``: a ``timeout`` with no status is a silent host).

Until 2026-12-01 that held only for a body the connection's close ends: the deadline's
shutdown of a ``Content-Length`` or chunked body surfaced as urllib3's "Connection
broken", a read timeout at the deadline as its ``ReadTimeoutError``, and either lost
the status; a host of large images on a slow link was backed off to minutes per URL
(a fresh user's, 30 URLs of which 21 were done after 5 minutes).

Swept: every framing (close-delimited, ``Content-Length``, chunked), each plain and
gzip-coded, each with a body that drips or that never starts; served by a real HTTP
server on loopback and fetched with the worker's own ``fetch`` (a real session).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from hostile import LIMIT, client_gone
from imageserver import ImageServer, make_image

from crawler.config import Policy
from crawler.exceptions import TimeoutFailure
from crawler.master.fencing import Answer
from crawler.worker.deadline import make_session
from crawler.worker.fetch import fetch
from crawler.worker.lane import no_answer

PNG = make_image("PNG", 64, 48, seed=7)
DRIP = 0.1  # seconds between two pieces of a dripped body
DEADLINE = 1.0
SLACK = 1.5  # seconds a fetch may overrun its deadline (thread scheduling)
FRAMINGS = ("close", "length", "chunked")
CODINGS = ("identity", "gzip")


def pieces(body: bytes, framing: str) -> list[bytes]:
    """``body`` as it goes on the wire, one piece per drip: a byte, or a chunk of one."""
    if framing == "chunked":
        return [b"1\r\n" + body[i : i + 1] + b"\r\n" for i in range(len(body))] + [b"0\r\n\r\n"]
    return [body[i : i + 1] for i in range(len(body))]


def slow(framing: str, coding: str, *, silent: bool) -> object:
    """A handler: the whole head at once, then the body a piece per DRIP (``silent``:
    not one byte of it) until the client goes."""
    body = gzip.compress(PNG) if coding == "gzip" else PNG
    fields = {"close": "Connection: close", "length": f"Content-Length: {len(body)}",
              "chunked": "Transfer-Encoding: chunked"}  # fmt: skip
    head = "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n" + fields[framing] + "\r\n"
    if coding != "identity":
        head += f"Content-Encoding: {coding}\r\n"

    def handle(request: BaseHTTPRequestHandler) -> None:
        request.wfile.write(head.encode() + b"\r\n")
        end = time.monotonic() + LIMIT
        for piece in [] if silent else pieces(body, framing):
            if time.monotonic() > end or client_gone(request, DRIP):
                break
            request.wfile.write(piece)
        while time.monotonic() < end and not client_gone(request, DRIP):
            pass
        request.close_connection = True

    return handle


@pytest.fixture(scope="module")
def server() -> Iterator[ImageServer]:
    with ImageServer() as running:
        for framing in FRAMINGS:
            for coding in CODINGS:
                for silent in (False, True):
                    path = f"/{framing}/{coding}/{'silent' if silent else 'drip'}.png"
                    running.add_handler(path, slow(framing, coding, silent=silent))  # type: ignore[arg-type]
        yield running


def timed_out(server: ImageServer, path: str, policy: Policy) -> tuple[TimeoutFailure, float]:
    """The failure of fetching ``path`` under ``policy`` (a timeout), and its seconds."""
    start = time.monotonic()
    with pytest.raises(TimeoutFailure) as caught:
        fetch(make_session(policy), server.url(path), policy)
    return caught.value, time.monotonic() - start


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("body", ["drip", "silent"])
def test_a_body_slower_than_the_deadline_keeps_the_answers_status(
    server: ImageServer, framing: str, coding: str, body: str
) -> None:
    policy = Policy(deadline=DEADLINE, read_timeout=10.0, retries=0, block_private=False)
    failure, seconds = timed_out(server, f"/{framing}/{coding}/{body}.png", policy)
    assert str(failure) == f"deadline of {DEADLINE:g} s exceeded while reading", failure
    assert failure.http_status == 200 and failure.attempts == 1, failure
    assert DEADLINE - 0.05 < seconds < DEADLINE + SLACK
    row = {"status": failure.status, "http_status": failure.http_status}
    assert not no_answer(row), row  # the worker hands back none of the host's URLs
    answer = Answer.of(row | {"token": 1, "retry_after": None, "request_age": None})
    assert not answer.timed_out  # and the master backs the host off no more than for a 200


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("coding", CODINGS)
def test_a_body_stalled_past_the_read_timeout_keeps_the_answers_status(
    server: ImageServer, framing: str, coding: str
) -> None:
    policy = Policy(deadline=10.0, read_timeout=0.5, retries=0, block_private=False)
    failure, seconds = timed_out(server, f"/{framing}/{coding}/silent.png", policy)
    assert str(failure) == "read timeout of 0.5 s exceeded while reading", failure
    assert failure.http_status == 200 and failure.attempts == 1, failure
    assert seconds < 0.5 + SLACK
