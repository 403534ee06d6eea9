"""A failure names the hop it happened at (``final_url``): the master charges that hop's
host with a 429/503 or a timeout (``master.politeness``), not the listed host that
redirected there, and never a target that was not asked at all.

Each case is a real fetch (the worker's own session) against raw loopback servers: the
listed host on 127.0.0.1, the redirect's target on 127.0.0.2.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
from hostile import raw_server

from crawler.config import Policy
from crawler.exceptions import URLFailure
from crawler.worker.deadline import make_session
from crawler.worker.fetch import fetch

POLICY = Policy(deadline=0.8, read_timeout=1.0, retries=0, block_private=False)  # < a drain (1 s)
Serve = Callable[[socket.socket], None]


def listening(address: str, serve: Serve) -> Iterator[tuple[int, list[bytes]]]:
    """A server on ``address`` (a free port) giving each connection to ``serve``; yields
    (port, the first bytes of each request it got)."""
    seen: list[bytes] = []

    def record(conn: socket.socket) -> None:
        seen.append(conn.recv(4096)[:60])
        serve(conn)

    server = raw_server(record, address)
    try:
        yield server.getsockname()[1], seen
    finally:
        server.close()


def answer(head: str, body: bytes = b"", stall: float = 0.0) -> Serve:
    def serve(conn: socket.socket) -> None:
        conn.sendall(head.encode() + b"\r\n\r\n" + body)
        time.sleep(stall)
        conn.close()

    return serve


@pytest.fixture
def target() -> Iterator[tuple[int, list[bytes]]]:
    """The redirect's target, 127.0.0.2, answering 503."""
    busy = answer("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 3")
    yield from listening("127.0.0.2", busy)


def outcome(port: int) -> URLFailure:
    session = make_session(POLICY)
    try:
        with pytest.raises(URLFailure) as caught:
            fetch(session, f"http://127.0.0.1:{port}/a.png", POLICY)
    finally:
        session.close()
    return caught.value


@pytest.mark.parametrize(
    ("listed", "status", "at_target"),
    [
        ("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0", "http_error", False),
        ("HTTP/1.1 302 Found\r\nLocation: {target}/b.png\r\nContent-Length: 0", "http_error", True),
        # its body stalls past the deadline: the target is never asked, nor charged
        ("HTTP/1.1 302 Found\r\nLocation: {target}/b.png\r\nContent-Length: 99", "timeout", False),
        # a target that refuses the connection: its failure
        ("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:{closed}/b.png\r\nContent-Length: 0",
         "connection_error", True),
    ],
)  # fmt: skip
def test_a_failure_names_the_hop_it_happened_at(
    target: tuple[int, list[bytes]], listed: str, status: str, at_target: bool
) -> None:
    target_port, asked = target
    with socket.create_server(("127.0.0.2", 0)) as spare:
        closed = spare.getsockname()[1]  # closed below: nothing listens there
    head = listed.format(target=f"http://127.0.0.2:{target_port}", closed=closed)
    for port, _ in listening("127.0.0.1", answer(head, stall=3.0)):
        failure = outcome(port)
        assert failure.status == status, failure
        if at_target:
            assert failure.final_url is not None and "127.0.0.2" in failure.final_url, failure
        else:
            assert failure.final_url == f"http://127.0.0.1:{port}/a.png", failure
            assert asked == [], asked  # the target was not asked
