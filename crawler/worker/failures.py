"""requests' and urllib3's exceptions as the crawler's own, with texts fit for a manifest.

``convert`` maps an exception of a download to the ``FetchFailure`` (and so the status)
it stands for; ``fetch`` calls it at its one boundary. Every error text built here is
short, printable text without the client's internals:

- urllib3 prefixes its messages with the pool or connection object
  (``ResolvedHTTPConnectionPool(host=..., port=...): ``, ``<...HTTPConnection object at
  0x...>: ``): removed wherever they occur (``_NOISE``);
- text that came from the server (a reason phrase, a status line that is not one) is
  the wire's bytes, decoded as Latin-1 by http.client: ``wire_text`` reads them as UTF-8
  where they are UTF-8 and escapes the rest (``\\xff``), as it escapes control characters;
- an answer that is not HTTP at all (an HTTP/0.9-style body, an SSH banner) is said so,
  with its first bytes escaped.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import re

import requests
import urllib3.exceptions as u3

from crawler._compat import MalformedChunk
from crawler.config import Policy
from crawler.exceptions import ConnectionFailure, TimeoutFailure, URLFailure, causes
from crawler.terminal import printable
from crawler.worker import deadline
from crawler.worker.handshake import tls_words

# urllib3's prefixes naming its pool or connection object (``HTTPConnectionPool(host=...,
# port=...): ``, ``GuardedHTTPConnection(host=..., port=...): ``, and the reprs of
# either, ``<... object at 0x...>`` or ``<HTTPConnection(...) at 0x...>`` in 2.x).
_NOISE = re.compile(
    r"\w*HTTPS?Connection(?:Pool)?\([^()]*\):\s*"
    r"|<[\w.]+ object at 0x[0-9a-f]+>:\s*|<\w+\([^()]*\) at 0x[0-9a-f]+>:?\s*"
)
REASON_CHARS = 300  # an error text's reason, at most
EXCERPT_BYTES = 24  # bytes of a non-HTTP answer quoted in its error


def wire_text(text: str | None, limit: int = 100) -> str:
    """``text`` (bytes from the wire that http.client decoded as Latin-1) as printable
    text: valid UTF-8 read as UTF-8, every other byte and every control or otherwise
    unprintable character escaped (``\\xff``, ``\\r``, ``\\u2028``); at most ``limit``
    characters before escaping. Text that cannot have been decoded so is only escaped."""
    text = (text or "")[:limit]
    with contextlib.suppress(UnicodeEncodeError):  # above U+00FF: text, not Latin-1 bytes
        text = text.encode("latin-1").decode("utf-8", errors="backslashreplace")
    return printable(text)


def clean(text: str, limit: int = REASON_CHARS) -> str:
    """An error text without urllib3's pool and connection prefixes, made printable."""
    return wire_text(_NOISE.sub("", text), limit)


def convert(exc: Exception, policy: Policy) -> URLFailure:
    """Map a requests/urllib3 exception to the crawler's failure with the right status."""
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, u3.MaxRetryError) and inner.reason is not None:
        inner = inner.reason  # what the last try ran into, not "retries exhausted"
    if isinstance(inner, u3.NameResolutionError):  # our resolver's message: "DNS: ..."
        return ConnectionFailure(clean(str(inner.__cause__ or "DNS: lookup failed")))
    if deadline.remaining() <= 0:
        return TimeoutFailure(f"deadline of {policy.deadline:g} s exceeded")
    if isinstance(exc, (requests.exceptions.Timeout, u3.TimeoutError)) or (
        isinstance(inner, u3.TimeoutError) and not isinstance(inner, u3.NewConnectionError)
    ):
        return TimeoutFailure(reason(exc, "timed out"))
    return ConnectionFailure(_broken(exc, inner))


def _broken(exc: Exception, inner: object) -> str:
    """A connection_error's text: why a download got no status (or lost its body)."""
    last = exc.args[-1] if exc.args else None  # urllib3's ProtocolError: (message, cause)
    if isinstance(exc, u3.ProtocolError) and isinstance(last, MalformedChunk):
        return str(last)  # not short: framed against RFC 9112 7.1
    if isinstance(exc, (u3.ProtocolError, requests.exceptions.ChunkedEncodingError)):
        return f"connection broken (body shorter than announced?): {reason(exc, '')}"
    if isinstance(exc, (u3.DecodeError, requests.exceptions.ContentDecodingError)):
        return "body could not be decoded (bad Content-Encoding)"
    if isinstance(exc, (requests.exceptions.InvalidURL, u3.LocationParseError)):
        return f"URL refused by the HTTP client: {reason(exc, '')}"
    if isinstance(inner, u3.ProtocolError) and len(inner.args) == 2:
        # ("Connection aborted.", the http.client error): not HTTP, no answer, or headers
        # beyond the client's limits (a line over 64 KiB, over 100 headers); said plainly.
        return f"connection aborted: {_aborted(inner.args[1])}"
    tls = next((e for e in (inner, exc) if isinstance(e, u3.SSLError)), None)
    if tls is not None:  # after the handshake (``handshake`` words that one's own)
        return f"TLS error: {tls_words(tls.args[0] if tls.args else tls)}"
    return reason(exc, type(exc).__name__)


def _aborted(cause: object) -> str:
    """Why http.client gave up on an answer, in a line."""
    if isinstance(cause, http.client.BadStatusLine) and not isinstance(
        cause, http.client.RemoteDisconnected
    ):
        # Its text is the line it could not read: the server's bytes, whatever they are.
        first = wire_text(str(cause.args[0] if cause.args else ""), EXCERPT_BYTES)
        return f"the server answered without a valid HTTP status line (it began '{first}')"
    if isinstance(cause, http.client.UnknownProtocol):  # "HTTP/2 200": its text the version
        version = wire_text(str(cause.args[0] if cause.args else ""), EXCERPT_BYTES)
        return f"the server answered in another protocol than HTTP/1.x ('{version}')"
    return clean(str(cause) or type(cause).__name__, 100)


def _said_with_cause(message: str, cause: object) -> str:
    """urllib3's ``("Connection broken: IncompleteRead(0 bytes read)", IncompleteRead(…))``
    as one plain line; its str was the tuple's repr."""
    detail = str(cause)
    text = message if not detail or detail in message else f"{message.rstrip('.:')}: {detail}"
    return text.removeprefix("Connection broken: ")


def reason(exc: Exception, default: str) -> str:
    """A short reason from a requests/urllib3 exception, without the pool/object noise."""
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
    found = getattr(inner, "reason", None) or inner or exc
    args = getattr(found, "args", ())
    # (connection, message): urllib3's ConnectTimeoutError, whose str is the tuple's
    several = isinstance(found, Exception) and len(args) > 1 and isinstance(args[-1], str)
    text = args[-1] if several else str(found)
    if isinstance(found, Exception) and len(args) == 2 and isinstance(args[0], str) and not several:
        text = _said_with_cause(args[0], args[1])  # (message, cause): urllib3's ProtocolError
    if "Name or service not known" in text or "NameResolutionError" in text:
        return "host name could not be resolved"
    if "Connection refused" in text:
        return "connection refused"
    return clean(text) or default


# A worker's own host out of a resource: no fault of the URL's (the errno of each).
_SHORT_OF = {errno.EMFILE: "file descriptors", errno.ENFILE: "file descriptors",
             errno.ENOMEM: "memory", errno.ENOBUFS: "network buffers"}  # fmt: skip


def host_trouble(exc: BaseException) -> tuple[str, bool] | None:
    """(what this worker's host ran out of, in words; whether the worker should stop)
    when ``exc`` or an exception it was raised from (its cause or context) is such a
    shortage; None otherwise. Descriptors and threads are the host's alone: it stops.
    Memory may be the URL's doing too (a large image, within --max-pixels, decoded on a
    small host): the URL fails, transiently, and the worker goes on, so that one image
    cannot stop every worker that tries it in turn. Until 2026-12-01 a valid image
    decoded short of memory was ``corrupt`` for good, a connect short of descriptors the
    origin's ``connection_error``, and a resolver thread that could not start left DNS
    broken for the rest of the run (a fresh user's)."""
    for seen in causes(exc):
        if isinstance(seen, MemoryError):
            return "this worker's host ran out of memory", False
        if isinstance(seen, RuntimeError) and "can't start new thread" in str(seen):
            return "this worker's host could not start a thread (memory or a process limit)", True
        if isinstance(seen, OSError) and seen.errno in _SHORT_OF:
            short_of = _SHORT_OF[seen.errno]  # descriptors: the host's alone, it stops
            stop = seen.errno in (errno.EMFILE, errno.ENFILE)
            return f"this worker's host ran out of {short_of} ({seen.strerror})", stop
    return None
