"""An answer whose head the connection cuts short is no answer (RFC 9112 section 8: an
incomplete message), whatever byte it is cut at.

http.client takes the end of the connection for the blank line that ends a head, so a
status line and some fields followed by the server's FIN were a whole answer with an
empty body: a 200 became ``not_image`` for good (a permanent failure, never retried),
and a robots.txt cut so was an empty one that allows everything. Found by a fresh user
(2026-12-01). Now such an answer is a ``connection_error`` (transient), and a robots.txt
is unavailable (backed off).

Every cut of a real answer's head, served byte for byte by a real HTTP server on
loopback and fetched with the worker's own ``fetch`` (``test_wire_bytes.Wire``).
"""

from __future__ import annotations

import pytest
from imageserver import make_image
from test_wire_bytes import POLICY, Wire, wire

from crawler.worker.robots import load_verdict

__all__ = ["wire"]  # the fixture, shared with test_wire_bytes

PNG = make_image("PNG", 20, 12, seed=7)
HEAD = (
    b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nX-Note: a b\r\n"
    + f"Content-Length: {len(PNG)}\r\n\r\n".encode()
)


@pytest.mark.parametrize("cut", range(len(HEAD)))
def test_a_head_cut_anywhere_is_a_connection_error(wire: Wire, cut: int) -> None:
    status, error, _ = wire.fetch(HEAD[:cut])
    assert status == "connection_error", (cut, error)


def test_the_whole_head_is_an_answer(wire: Wire) -> None:
    assert wire.download(HEAD + PNG).body == PNG


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", b"HTTP/1.1 200 OK\r\n",
     b"HTTP/1.1 200 OK\r\nX-Foo: b", b"HTTP/1.1 200 OK"],
)  # fmt: skip
def test_a_cut_head_says_so_and_a_robots_txt_cut_so_is_unavailable(
    wire: Wire, answer: bytes
) -> None:
    said = "the server closed the connection before the end of the answer's head"
    status, error, _ = wire.fetch(answer)
    assert (status, error) == ("connection_error", f"connection aborted: {said}")
    wire.answer = answer
    verdict = load_verdict(wire.server.url("/wire/answer"), wire.session, POLICY)
    assert verdict == {"unavailable": f"connection aborted: {said}"}
