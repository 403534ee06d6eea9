"""Downloading one URL with requests: timeouts, a total deadline, retries, redirects, a size cap.

``fetch`` (and ``fetch_text``, its variant for robots.txt, with the same deadline,
retries, guard and redirect checks) is the one place where requests' and urllib3's
exceptions are turned into the crawler's own (``exceptions.FetchFailure`` and
subclasses), each carrying the manifest status it stands for. Nothing the server says
is trusted: Content-Length is only used to refuse early, never to size a buffer or to
accept a short body; every redirect target is validated (http/https only, no loops,
the address guard again).

The per-URL deadline covers connects, retries, redirects and the body: every hop's
timeouts are clamped to the time left, retry pauses too, and the socket's timeout is
reset to the time left before each read, so a server that trickles a byte a second
cannot hold a thread past it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urljoin

import requests
import urllib3.exceptions as u3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from urllib3.util.timeout import Timeout

from crawler.config import Policy
from crawler.exceptions import (
    ConnectionFailure,
    HTTPStatusFailure,
    PrivateAddress,
    RedirectFailure,
    TimeoutFailure,
    TooLarge,
    URLFailure,
)
from crawler.netguard import BlockedAddressError, guard
from crawler.urls import normalize_url

CHUNK = 64 * 1024
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)
RETRY_AFTER_CAP = 30.0  # seconds: a server's Retry-After cannot park a thread for hours

_clock = threading.local()  # .deadline: monotonic time the current thread's URL must end by
_T = TypeVar("_T")


def _remaining() -> float:
    deadline = getattr(_clock, "deadline", None)
    return float("inf") if deadline is None else deadline - time.monotonic()


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

    @property
    def not_modified(self) -> bool:
        return self.http_status == 304


class DeadlineRetry(Retry):
    """urllib3's Retry, with pauses capped by RETRY_AFTER_CAP and by the URL's deadline."""

    def parse_retry_after(self, retry_after: str) -> float:
        return max(0.0, min(super().parse_retry_after(retry_after), RETRY_AFTER_CAP, _remaining()))

    def get_backoff_time(self) -> float:
        return max(0.0, min(super().get_backoff_time(), _remaining()))

    def increment(self, *args: Any, **kwargs: Any) -> Retry:
        _clock.failed_tries = getattr(_clock, "failed_tries", 0) + 1
        wait = self._server_wait(kwargs.get("response"))
        # No time left for another try, or the server asks for a longer pause than we may
        # take: give up now (a status answer is then reported as it is) instead of waiting.
        if _remaining() <= 0 or (wait is not None and wait > min(RETRY_AFTER_CAP, _remaining())):
            url = args[1] if len(args) > 1 else kwargs.get("url")
            raise u3.MaxRetryError(kwargs.get("_pool"), url, u3.TimeoutError("deadline exceeded"))
        return super().increment(*args, **kwargs)

    def _server_wait(self, response: Any) -> float | None:
        """The Retry-After of ``response`` in seconds, uncapped; None if there is none."""
        value = getattr(response, "headers", {}).get("Retry-After")
        if not value or not self.respect_retry_after_header:
            return None
        try:
            return Retry.parse_retry_after(self, value)
        except u3.InvalidHeader:
            return None


class DeadlineTimeout(Timeout):
    """urllib3's Timeout, clamped to the time left whenever urllib3 reads it: on every
    try, including the retries urllib3 makes inside one ``urlopen``."""

    @staticmethod
    def _clamp(value: Any) -> Any:
        if not isinstance(value, (int, float)):
            return value
        return max(0.001, min(value, _remaining()))

    @property
    def connect_timeout(self) -> Any:
        return self._clamp(super().connect_timeout)

    @property
    def read_timeout(self) -> Any:
        return self._clamp(super().read_timeout)

    def clone(self) -> DeadlineTimeout:
        return DeadlineTimeout(connect=self._connect, read=self._read, total=self.total)


class DeadlineAdapter(HTTPAdapter):
    """Clamps each request's connect and read timeouts to the time left before the deadline."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        remaining = _remaining()
        if remaining <= 0:
            raise requests.exceptions.Timeout("deadline exceeded")
        timeout = kwargs.get("timeout")
        if isinstance(timeout, tuple):
            kwargs["timeout"] = DeadlineTimeout(connect=timeout[0], read=timeout[1])
        return super().send(request, *args, **kwargs)


def make_session(policy: Policy) -> requests.Session:
    """A session for one download thread: pooled connections, transient failures retried."""
    retry = DeadlineRetry(
        total=policy.retries,
        connect=policy.retries,
        read=policy.retries,
        status=policy.retries,
        other=0,
        redirect=False,  # fetch() follows redirects itself, checking each target
        allowed_methods=frozenset({"GET"}),
        status_forcelist=TRANSIENT_STATUSES,
        backoff_factor=policy.backoff,
        backoff_jitter=policy.backoff,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer is reported as http_error with its status
    )
    session = requests.Session()
    adapter = DeadlineAdapter(max_retries=retry, pool_connections=16, pool_maxsize=4)
    if policy.block_private:
        guard(adapter)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # no netrc credentials or proxies picked up from the environment
    session.headers["User-Agent"] = policy.user_agent
    session.headers["Accept"] = "image/*,*/*;q=0.5"
    return session


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """Headers that let a server answer 304 for an image we already hold."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def fetch(
    session: requests.Session, url: str, policy: Policy, headers: dict[str, str] | None = None
) -> Download:
    """Download ``url`` into memory, or raise a FetchFailure naming the status.

    With conditional ``headers``, a 304 answer is a ``Download`` with an empty body.
    """
    return _bounded(policy, lambda tally: _follow(session, url, policy, headers, tally))


def fetch_text(
    session: requests.Session, url: str, policy: Policy, max_bytes: int, max_redirects: int
) -> tuple[int, bytes]:
    """Get a small text resource (robots.txt): its final HTTP status and body.

    Same deadline, retries, address guard and redirect checks as ``fetch`` (up to
    ``max_redirects`` hops), but any final status is an answer, not a failure: a
    non-2xx status comes with an empty body. A body longer than ``max_bytes`` is cut
    there (the caller parses what fits). Failing to get an answer at all (timeout,
    connection error, refused address or redirect) raises the FetchFailure ``fetch``
    would raise.
    """
    download = _bounded(
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
    return download.http_status, download.body


def _bounded(policy: Policy, attempt: Callable[[list[int]], _T]) -> _T:
    """Run ``attempt`` under the per-URL deadline; every failure becomes a FetchFailure."""
    _clock.deadline = time.monotonic() + policy.deadline
    tally = [0]  # HTTP requests made so far, counted by _follow
    _clock.failed_tries = 0
    try:
        return attempt(tally)
    except URLFailure as failure:
        failure.attempts = max(1, tally[0])
        raise
    except (requests.exceptions.RequestException, u3.HTTPError) as exc:
        failure = _convert(exc, policy)
        failure.attempts = tally[0] + _tries_in_error(exc, policy)
        raise failure from None
    except BlockedAddressError as exc:
        failure = PrivateAddress(str(exc))
        failure.attempts = tally[0] + 1
        raise failure from None
    finally:
        _clock.deadline = None


def _follow(
    session: requests.Session,
    url: str,
    policy: Policy,
    headers: dict[str, str] | None,
    tally: list[int],
    *,
    text_limit: int | None = None,  # fetch_text: keep any status, cut the body there
    max_redirects: int | None = None,
) -> Download:
    seen = {url}
    hops = policy.max_redirects if max_redirects is None else max_redirects
    for _hop in range(hops + 1):
        with session.get(
            url,
            stream=True,
            allow_redirects=False,
            timeout=(policy.connect_timeout, policy.read_timeout),
            headers=headers,
        ) as resp:
            tally[0] += _attempts(resp)
            _clock.failed_tries = 0
            if resp.is_redirect:
                url = _redirect_target(url, resp.headers["Location"], seen)
                continue
            if text_limit is not None:
                ok = 200 <= resp.status_code < 300
                body = _read_body(resp, policy, text_limit, cut=True) if ok else b""
            elif resp.status_code == 304 and headers:
                body = b""
            elif 200 <= resp.status_code < 300:
                body = _read_capped(resp, policy)
            else:
                reason = f"HTTP {resp.status_code} {_printable(resp.reason)}".strip()
                raise HTTPStatusFailure(reason, http_status=resp.status_code)
            return Download(
                body,
                resp.status_code,
                url,
                _header(resp, "Content-Type"),
                tally[0],
                _header(resp, "ETag"),
                _header(resp, "Last-Modified"),
                tuple(resp.raw.headers.getlist("X-Robots-Tag")),
            )
    raise RedirectFailure(f"more than {hops} redirects")


def _redirect_target(current: str, location: str, seen: set[str]) -> str:
    try:
        target = normalize_url(urljoin(current, location.strip()))
    except ValueError as exc:
        raise RedirectFailure(f"refused redirect target: {exc}") from None
    if target in seen:
        raise RedirectFailure("redirect loop")
    seen.add(target)
    return target


def _read_capped(resp: requests.Response, policy: Policy) -> bytes:
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise TooLarge(f"Content-Length {declared} exceeds max_bytes {policy.max_bytes}")
    return _read_body(resp, policy, policy.max_bytes, cut=False)


def _read_body(resp: requests.Response, policy: Policy, limit: int, *, cut: bool) -> bytes:
    """The body, read under the deadline; past ``limit`` bytes: TooLarge, or ``cut`` there."""
    body = bytearray()
    sock = getattr(getattr(resp.raw, "connection", None), "sock", None)
    while True:
        remaining = _remaining()
        if remaining <= 0:
            raise TimeoutFailure(f"deadline of {policy.deadline:g} s exceeded while reading")
        if sock is not None:
            sock.settimeout(min(policy.read_timeout, remaining))
        chunk = resp.raw.read1(CHUNK, decode_content=True)  # one recv at most: see docstring
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            if cut:
                return bytes(body[:limit])
            raise TooLarge(f"body exceeds max_bytes {limit}")


def _tries_in_error(exc: Exception, policy: Policy) -> int:
    """Requests behind a failed hop: urllib3 gives up with MaxRetryError after all retries."""
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, u3.MaxRetryError):
        return max(1, getattr(_clock, "failed_tries", 1))
    return 1


def _convert(exc: Exception, policy: Policy) -> URLFailure:
    """Map a requests/urllib3 exception to the crawler's failure with the right status."""
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, u3.MaxRetryError) and inner.reason is not None:
        inner = inner.reason  # what the last try ran into, not "retries exhausted"
    if _remaining() <= 0:
        return TimeoutFailure(f"deadline of {policy.deadline:g} s exceeded")
    if isinstance(exc, (requests.exceptions.Timeout, u3.TimeoutError)) or (
        isinstance(inner, u3.TimeoutError) and not isinstance(inner, u3.NewConnectionError)
    ):
        return TimeoutFailure(_reason(exc, "timed out"))
    if isinstance(exc, (u3.ProtocolError, requests.exceptions.ChunkedEncodingError)):
        return ConnectionFailure(
            f"connection broken (body shorter than announced?): {_reason(exc, '')}"
        )
    if isinstance(exc, (u3.DecodeError, requests.exceptions.ContentDecodingError)):
        return ConnectionFailure("body could not be decoded (bad Content-Encoding)")
    if isinstance(exc, (requests.exceptions.InvalidURL, u3.LocationParseError)):
        return ConnectionFailure(f"URL refused by the HTTP client: {_reason(exc, '')}")
    return ConnectionFailure(_reason(exc, type(exc).__name__))


def _header(resp: requests.Response, name: str) -> str | None:
    """A header value fit to be recorded and sent back later: short, printable ASCII."""
    value = resp.headers.get(name)
    if not value or len(value) > 256 or not value.isascii() or not value.isprintable():
        return None
    return value


def _printable(text: str | None) -> str:
    return "".join(ch for ch in (text or "")[:100] if ch.isprintable())


def _attempts(resp: requests.Response) -> int:
    """Requests made for this hop: one, plus urllib3's retries."""
    retries = getattr(resp.raw, "retries", None)
    return 1 + len(getattr(retries, "history", ()) or ())


def _reason(exc: Exception, default: str) -> str:
    """A short reason from a requests/urllib3 exception, without the pool/object noise."""
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", None) or inner or exc
    text = str(reason)
    if "Name or service not known" in text or "NameResolutionError" in text:
        return "host name could not be resolved"
    if "Connection refused" in text:
        return "connection refused"
    return _printable(text[:300]) if text else default
