"""A kept connection the server closes just as the next request goes out on it.

A server closes an idle keep-alive connection when its own timeout comes; a client that
takes the connection from its pool a moment before the close arrives sends its request
into it and reads the FIN (``RemoteDisconnected``) or, when its bytes crossed the close,
an RST (``ConnectionResetError``). Nothing of an answer came, so RFC 9112 section 9.3.1
lets the client send a GET again on a new connection. The crawler's suite saw this as a
flaky test (a robots.txt "unavailable" as "Remote end closed connection without
response"); in a crawl it cost a retry, and under ``--retries 0`` the URL failed.

Here a raw socket server on loopback answers the first request of each connection and
then, per case, closes (FIN) or resets (RST) the connection when the next request comes:
the race, made certain. The worker's own ``fetch`` with a real session must then get the
image, with one attempt counted, over a second connection; a new connection closed so
is the server's answer (``connection_error``, sent once), and a kept connection the
deadline's watchdog shut is a ``timeout``, not sent again.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest
from hostile import raw_server
from imageserver import make_image

from crawler.config import Policy
from crawler.exceptions import URLFailure
from crawler.worker.deadline import make_session
from crawler.worker.fetch import fetch

PNG = make_image("PNG", 20, 12, seed=9)
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
    + f"Content-Length: {len(PNG)}\r\n\r\n".encode()
    + PNG
)
LIMIT = 10.0  # seconds a connection is kept at most, whatever the client does


class ClosingServer:
    """Answers the first ``answered`` requests of each connection, then ends it as
    ``how`` says when the next request has come: "fin", "rst", or "hang" (no answer)."""

    def __init__(self, how: str, answered: int = 1) -> None:
        self.how, self.answered = how, answered
        self.connections, self.requests = 0, 0
        self.sock = raw_server(self._serve)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self, conn: socket.socket) -> None:
        self.connections += 1
        conn.settimeout(LIMIT)
        with conn:
            for served in range(self.answered + 1):
                if not self._read_request(conn):
                    return
                self.requests += 1
                if served < self.answered:
                    conn.sendall(ANSWER)
            if self.how == "rst":  # close with data unread: the kernel sends an RST
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif self.how == "hang":
                time.sleep(LIMIT)

    @staticmethod
    def _read_request(conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                chunk = conn.recv(4096)
            except OSError:
                return False
            if not chunk:
                return False
            data += chunk
        return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server_of() -> Iterator[type[ClosingServer]]:
    made: list[ClosingServer] = []

    def make(how: str, answered: int = 1) -> ClosingServer:
        made.append(ClosingServer(how, answered))
        return made[-1]

    yield make  # type: ignore[misc]
    for server in made:
        server.close()


def policy(retries: int, deadline: float = 5.0) -> Policy:
    return Policy(
        deadline=deadline, connect_timeout=2.0, read_timeout=3.0, retries=retries,
        backoff=0.01, block_private=False,
    )  # fmt: skip


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("how", ["fin", "rst"])
def test_a_kept_connection_closed_at_the_request_is_replaced(
    server_of: type[ClosingServer], how: str, retries: int
) -> None:
    server = server_of(how)
    session = make_session(policy(retries))
    for path in ("/first.png", "/second.png", "/third.png"):
        download = fetch(session, server.url + path, policy(retries))
        assert download.body == PNG
        assert download.attempts == 1  # the lost request was never the server's
    # each request after the first went out on a kept connection, then on a new one
    assert (server.connections, server.requests) == (3, 5)


def test_a_new_connection_closed_at_the_request_is_the_answer(
    server_of: type[ClosingServer],
) -> None:
    server = server_of("fin", answered=0)
    session = make_session(policy(0))
    with pytest.raises(URLFailure) as failure:
        fetch(session, server.url + "/a.png", policy(0))
    assert failure.value.status == "connection_error"
    assert "Remote end closed connection without response" in str(failure.value)
    assert (server.connections, server.requests) == (1, 1)  # sent once, never again


def test_a_kept_connection_shut_at_the_deadline_is_not_replaced(
    server_of: type[ClosingServer],
) -> None:
    server = server_of("hang")
    session = make_session(policy(0, deadline=1.0))
    assert fetch(session, server.url + "/first.png", policy(0, deadline=1.0)).body == PNG
    with pytest.raises(URLFailure) as failure:
        fetch(session, server.url + "/second.png", policy(0, deadline=1.0))
    assert failure.value.status == "timeout"
    assert (server.connections, server.requests) == (1, 2)
