"""Downloading one URL with requests: timeouts, a total deadline, retries, redirects, a size cap.

``fetch`` (and ``fetch_text``, its variant for robots.txt, with the same deadline,
retries, guard and redirect checks) is the one place where requests' and urllib3's
exceptions are turned into the crawler's own (``exceptions.FetchFailure`` and
subclasses, by ``failures.convert``), each carrying the manifest status it stands for.
Nothing the server says is trusted: Content-Length is only used to refuse early, never
to size a buffer or to accept a short body; every redirect target is validated
(http/https only, no loops, the address guard again: ``redirects.Trail``; robots.txt,
by the caller's ``admit``: ``targetrobots``).

The per-URL deadline (``deadline``) covers connects, retries, redirects and the body:
the session clamps every hop's timeouts and retry pauses to the time left, and here the
socket's timeout is lowered to the time left before each read (when that is shorter),
so a server that trickles a byte a second cannot hold a thread past it. The body of an
answer that is not kept (a redirect's, an error page) is read off too, within a small
bound (``keepalive``), so that the connection serves the next request to that host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import requests
import urllib3.exceptions as u3

from crawler.config import Policy
from crawler.constants import OVERLOADED
from crawler.exceptions import (
    ConnectionFailure,
    HTTPStatusFailure,
    PrivateAddress,
    RedirectFailure,
    TimeoutFailure,
    TooLarge,
    URLFailure,
)
from crawler.worker import deadline
from crawler.worker.codings import coded_bound, decoded_codings, undecodable, unfinished_coding
from crawler.worker.failures import convert, wire_text
from crawler.worker.handshake import CertificateRefused
from crawler.worker.keepalive import CHUNK, bound_read, drain
from crawler.worker.netguard import BlockedAddressError
from crawler.worker.redirects import Trail

_T = TypeVar("_T")


@dataclass(frozen=True)
class Download:
    body: bytes  # empty for a 304 answer to a conditional request
    http_status: int
    final_url: str
    content_type: str | None
    attempts: int
    etag: str | None = None
    last_modified: str | None = None
    robots_tags: tuple[str, ...] = ()  # every X-Robots-Tag header of the answer, as sent
    retry_after: float | None = None  # seconds a 429/503 answer asked for (fetch_text's)

    @property
    def not_modified(self) -> bool:
        return self.http_status == 304


def fetch(
    session: requests.Session,
    url: str,
    policy: Policy,
    headers: dict[str, str] | None = None,
    admit: Callable[[str], None] | None = None,
) -> Download:
    """Download ``url`` into memory, or raise a FetchFailure naming the status.

    With conditional ``headers``, a 304 answer is a ``Download`` with an empty body.
    ``admit(target)`` is called before each redirect target is asked for (robots.txt:
    ``pipeline``); the URLFailure it raises ends the fetch, with the requests sent so far.
    """
    return _bounded(
        policy, lambda tally: _follow(session, url, policy, headers, tally, admit=admit)
    )


def fetch_text(
    session: requests.Session, url: str, policy: Policy, max_bytes: int, max_redirects: int
) -> Download:
    """Get a small text resource (robots.txt): its final answer (status, body, and for a
    429/503 the Retry-After asked for, in seconds).

    Same deadline, retries, address guard and redirect checks as ``fetch`` (up to
    ``max_redirects`` hops), but any final status is an answer, not a failure: a
    non-2xx status comes with an empty body. A body longer than ``max_bytes`` is cut
    there (the caller parses what fits). Failing to get an answer at all (timeout,
    connection error, refused address or redirect) raises the FetchFailure ``fetch``
    would raise.
    """
    return _bounded(
        policy,
        lambda tally: _follow(
            session,
            url,
            policy,
            {"Accept": "text/plain, */*;q=0.5"},
            tally,
            text_limit=max_bytes,
            max_redirects=max_redirects,
        ),
    )


def _bounded(policy: Policy, attempt: Callable[[list[int]], _T]) -> _T:
    """Run ``attempt`` under the per-URL deadline; every failure becomes a FetchFailure."""
    deadline.start(policy.deadline)
    # [requests sent so far, 1 while the current hop's answer (already counted) is read]
    tally = [0, 0]
    try:
        return attempt(tally)
    except (URLFailure, requests.exceptions.RequestException, u3.HTTPError) as exc:
        failure, cause = _failure(exc, policy, tally), exc
    except (BlockedAddressError, CertificateRefused) as exc:  # this hop sent nothing
        blocked = isinstance(exc, BlockedAddressError)  # else refused in the TLS handshake
        failure = PrivateAddress(str(exc)) if blocked else ConnectionFailure(str(exc))
        failure.attempts, cause = tally[0], exc
    finally:
        deadline.stop()
    failure.final_url = deadline.clock.hop  # whose answer (or silence) it was: politeness
    # Raised from what it was (not ``from None``): ``failures.host_trouble`` finds this
    # host's own shortage there. Until 2026-12-03 a connect short of descriptors was the
    # origin's ``connection_error`` (a resource-limits trial's).
    raise failure from (None if cause is failure else cause)


def _failure(exc: Exception, policy: Policy, tally: list[int]) -> URLFailure:
    if isinstance(exc, URLFailure):
        exc.attempts = tally[0]
        return exc
    failure = convert(exc, policy)
    failure.attempts = tally[0] + (0 if tally[1] else _tries_in_error(exc))
    return failure


def _follow(  # noqa: PLR0913  (fetch and fetch_text differ in the keyword-only two)
    session: requests.Session,
    url: str,
    policy: Policy,
    headers: dict[str, str] | None,
    tally: list[int],
    *,
    text_limit: int | None = None,  # fetch_text: keep any status, cut the body there
    max_redirects: int | None = None,
    admit: Callable[[str], None] | None = None,  # fetch: see there
) -> Download:
    trail = Trail(session, url)
    hops = policy.max_redirects if max_redirects is None else max_redirects
    timeout = (policy.connect_timeout, policy.read_timeout)
    for hop in range(hops + 1):
        tally[1] = 0
        if hop and admit is not None:
            admit(url)
        with deadline.get(session, url, headers, timeout) as resp:
            tally[0] += _attempts(resp)
            tally[1] = 1
            deadline.clock.failed_tries = 0
            ok = 200 <= resp.status_code < 300
            if not ok:  # a redirect's body, an error page, a 304's: not kept (keepalive)
                drain(resp.raw, deadline.remaining())
            if resp.is_redirect:
                url = trail.follow(url, resp)
                continue
            asked = deadline.server_wait(resp.headers) if resp.status_code in OVERLOADED else None
            if text_limit is not None:
                body = _read_body(resp, policy, text_limit, cut=True) if ok else b""
            elif ok:
                body = _read_capped(resp, policy)
            elif resp.status_code == 304 and headers:
                body = b""
            else:
                reason = f"HTTP {resp.status_code} {wire_text(resp.reason)}".strip()
                raise HTTPStatusFailure(reason, http_status=resp.status_code, retry_after=asked)
            return Download(
                body,
                resp.status_code,
                url,
                _header(resp, "Content-Type"),
                tally[0],
                _header(resp, "ETag"),
                _header(resp, "Last-Modified"),
                tuple(resp.raw.headers.getlist("X-Robots-Tag")),
                asked,
            )
    raise RedirectFailure(f"more than {hops} redirects")


def _read_capped(resp: requests.Response, policy: Policy) -> bytes:
    """The body, capped at max_bytes as it arrives, decoded. Content-Length is only an
    early hint, and only without Transfer-Encoding (RFC 9112 6.3: then it must be
    ignored); of a content-coded body it is the coded size, which may be larger than
    the decoded one (gzip grows noise a little): such a body is refused early only past
    what any coding of max_bytes can take (``codings.coded_bound``). Until 2026-12-01 a
    12,420-byte PNG served gzip-coded in 12,443 bytes was ``too_large`` under
    ``--max-bytes 12420`` (a fresh user's)."""
    declared = resp.headers.get("Content-Length", "")
    chunked = "Transfer-Encoding" in resp.headers
    codings = decoded_codings(resp.headers)
    most = coded_bound(policy.max_bytes, codings)
    if not chunked and declared.isdigit() and int(declared) > most:
        coded = f" coded as {', '.join(codings)} (at most {most} bytes)" if codings else ""
        raise TooLarge(f"Content-Length {declared} exceeds max_bytes {policy.max_bytes}{coded}")
    return _read_body(resp, policy, policy.max_bytes, cut=False)


def _read_body(resp: requests.Response, policy: Policy, limit: int, *, cut: bool) -> bytes:
    """The body, read under the deadline; past ``limit`` bytes: TooLarge, or ``cut`` there.
    A body in a coding that cannot be decoded (or in more than urllib3 undoes) is a
    ConnectionFailure, not its raw bytes (they were "not_image", with no word of the
    coding): nothing asked for it, since requests' Accept-Encoding names only the codings
    urllib3 decodes."""
    why = undecodable(resp.headers)
    if why is not None:
        raise ConnectionFailure(f"body could not be decoded ({why})")
    chunks: list[bytes] = []  # joined once at the end: a body read in one chunk is not copied
    size, late = 0, _late(resp, policy, deadline_cut=True)
    sock = getattr(getattr(resp.raw, "connection", None), "sock", None)
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:  # with the answer's status: the host answered (master.fencing)
            raise late
        if sock is not None:
            bound_read(sock, min(policy.read_timeout, remaining))
        chunk = _read1(resp, policy, stalled=policy.read_timeout < remaining)
        if not chunk:
            if deadline.remaining() <= 0:  # maybe the watchdog's shutdown, not the end
                raise late
            cut_in = unfinished_coding(resp.raw)
            if cut_in is not None:
                raise ConnectionFailure(f"body cut short: it ends inside its {cut_in} stream")
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            if cut:
                return b"".join(chunks)[:limit]
            raise TooLarge(f"body exceeds max_bytes {limit}")


def _read1(resp: requests.Response, policy: Policy, *, stalled: bool) -> bytes:
    """At most one receive of the body, decoded. A timeout while reading it comes after
    the answer's head, so it keeps the answer's status: the host answered, and a body
    slower than the deadline (or stalled past ``--read-timeout``: ``stalled``, that bound
    was the shorter) is the link's or the deadline's, not a silence of the host
    (``master.fencing.Answer``). Whatever the framing: until 2026-12-01 only a body the
    connection's close ends kept it; the watchdog's shutdown of a ``Content-Length`` or
    chunked body is urllib3's "Connection broken" (and a read timeout at the deadline a
    ``ReadTimeoutError``), and such rows lost their status, so a slow link's host was
    backed off as silent (a fresh user's)."""
    try:
        return resp.raw.read1(CHUNK, decode_content=True)  # one recv at most: see docstring
    except u3.HTTPError as exc:
        timed_out = isinstance(exc, u3.ReadTimeoutError)
        if deadline.remaining() <= 0 or (timed_out and not stalled):
            raise _late(resp, policy, deadline_cut=True) from None
        if timed_out:
            raise _late(resp, policy, deadline_cut=False) from None
        raise  # a broken body: convert's, as before the deadline


def _late(resp: requests.Response, policy: Policy, *, deadline_cut: bool) -> TimeoutFailure:
    """The failure of a body that did not come in time, with its answer's status."""
    if deadline_cut:
        words = f"deadline of {policy.deadline:g} s exceeded while reading"
    else:
        words = f"read timeout of {policy.read_timeout:g} s exceeded while reading"
    return TimeoutFailure(words, http_status=resp.status_code)


def _tries_in_error(exc: Exception) -> int:
    """Requests behind a failed hop: urllib3 gives up with MaxRetryError after all retries."""
    if isinstance(exc, deadline.DeadlineBeforeSend):
        return 0  # the deadline ran out before this hop was sent
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, u3.MaxRetryError):
        return getattr(deadline.clock, "failed_tries", 0)
    return 1


def _header(resp: requests.Response, name: str) -> str | None:
    """A header value fit to be recorded and sent back later: short, printable ASCII."""
    value = resp.headers.get(name)
    if not value or len(value) > 256 or not value.isascii() or not value.isprintable():
        return None
    return value


def _attempts(resp: requests.Response) -> int:
    """Requests made for this hop: one, plus urllib3's retries."""
    retries = getattr(resp.raw, "retries", None)
    return 1 + len(getattr(retries, "history", ()) or ())
