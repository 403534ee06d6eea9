"""Keeping a connection for the next request: reading off, within a bound, the body of
an answer that is not kept.

urllib3 returns a connection to its pool only once its answer was read to the end;
closing one with bytes unread closes the connection (the server sees a reset), and the
next request to that host pays a new one: a TCP handshake, on HTTPS also TLS. So the
body of a redirect, of an error page (``fetch``) and of an answer urllib3 retries
(a 500, 502 or 504, ``deadline.DeadlineRetry``) is read and dropped, up to ``DRAIN_BYTES`` within
``DRAIN_SECONDS``: error pages and redirect bodies are a few kB, and anything larger or
slower costs less as a new connection than as a download nobody keeps.

The bound matters for urllib3's retries: its own ``drain_conn`` reads until the body
ends, so a 503 with an endless body held a download thread for ever, past the per-URL
deadline (now the answer is drained here first, or closed, and urllib3 finds nothing
left to read). requests reads the body of each redirect it follows whole, without a bound
(``Session.resolve_redirects``); the crawler follows redirects itself (``fetch``).

A kept connection the server closes while it is idle (its keep-alive timeout) may be
taken from the pool just before the close arrives: the request goes out, and the server's
FIN or RST comes back instead of an answer. ``ReplayStale`` sends that request once more
on a new connection, as RFC 9112 section 9.3.1 allows for an idempotent request that got
no part of an answer (browsers and Go's net/http do the same); it is no attempt of the
URL's, since the server never took it up. Until then it cost a retry, and under
``--retries 0`` the URL failed as a ``connection_error``.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from typing import Any

from urllib3.exceptions import HTTPError
from urllib3.response import BaseHTTPResponse

CHUNK = 256 * 1024  # bytes asked of one read; the kernel gives what has arrived
DRAIN_BYTES = 64 * 1024
DRAIN_SECONDS = 1.0


def drain(raw: BaseHTTPResponse, seconds: float = DRAIN_SECONDS) -> bool:
    """Read off and drop what is left of ``raw``'s body, undecoded: at most DRAIN_BYTES
    within ``seconds`` (capped at DRAIN_SECONDS). True when the body was read to its end
    (urllib3 has then put the connection back in its pool). Raises nothing: the answer
    is decided already, and a body that is longer, slower or broken only means that the
    connection is closed with the answer."""
    declared = raw.headers.get("Content-Length", "")
    chunked = "Transfer-Encoding" in raw.headers
    if not chunked and declared.isdigit() and int(declared) > DRAIN_BYTES:
        return False  # announced too long to be worth reading
    sock = getattr(raw.connection, "sock", None) if raw.connection else None
    until = time.monotonic() + min(seconds, DRAIN_SECONDS)
    size = 0
    with contextlib.suppress(HTTPError, OSError, ValueError, RuntimeError):
        while size <= DRAIN_BYTES:
            left = until - time.monotonic()
            if left <= 0:
                return False
            if sock is not None:
                bound_read(sock, left)
            chunk = raw.read1(CHUNK, decode_content=False)
            if not chunk:
                return True
            size += len(chunk)
    return False


def bound_read(sock: socket.socket, limit: float) -> None:
    """Make the socket's next read wait ``limit`` seconds at most. Only a shorter limit
    is set: ``settimeout`` is a system call (the blocking flag), paid per chunk before."""
    current = sock.gettimeout()
    if current is None or current > limit:
        sock.settimeout(limit)


# What reading an answer raises when the server closed the connection instead of answering
# (RemoteDisconnected: nothing came; the others: its RST arrived first).
CLOSED_UNANSWERED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class ReplayStale:
    """A mixin for urllib3's connection pools: a request whose kept connection was closed
    by the server before any of the answer came is sent again, once, on a new connection.
    A new connection that fails so is the server's answer, and goes to urllib3 as before;
    so does a kept one once ``time_left()`` is 0 (the deadline's watchdog shut it)."""

    @staticmethod
    def time_left() -> float:
        """Seconds the request still has (the pool class sets the deadline's)."""
        return float("inf")

    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        kept = getattr(conn, "sock", None) is not None  # connected before: from the pool
        try:
            return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]
        except CLOSED_UNANSWERED:
            if not kept or self.time_left() <= 0:
                raise
        conn.close()  # the next request on it connects anew (urllib3's lazy connect)
        return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]
