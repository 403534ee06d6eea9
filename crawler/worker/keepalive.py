"""Keeping a connection for the next request: reading off, within a bound, the body of
an answer that is not kept.

urllib3 returns a connection to its pool only once its answer was read to the end;
closing one with bytes unread closes the connection (the server sees a reset), and the
next request to that host pays a new one: a TCP handshake, on HTTPS also TLS. So the
body of a redirect, of an error page (``fetch``) and of an answer urllib3 retries
(a 429 or 5xx, ``deadline.DeadlineRetry``) is read and dropped, up to ``DRAIN_BYTES`` within
``DRAIN_SECONDS``: error pages and redirect bodies are a few kB, and anything larger or
slower costs less as a new connection than as a download nobody keeps.

The bound matters for urllib3's retries: its own ``drain_conn`` reads until the body
ends, so a 503 with an endless body held a download thread for ever, past the per-URL
deadline (now the answer is drained here first, or closed, and urllib3 finds nothing
left to read). requests reads the body of each redirect it follows whole, without a bound
(``Session.resolve_redirects``); the crawler follows redirects itself (``fetch``).
"""

from __future__ import annotations

import contextlib
import socket
import time

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
