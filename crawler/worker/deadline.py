"""The per-URL deadline, and the requests session of a download thread that keeps it.

``get`` sends one GET through such a session (see its docstring for why not ``Session.get``).

The per-URL deadline covers connects, retries, redirects, the answer's head and the
body: a socket still in use at the deadline is shut down (``watchdog``). ``fetch`` starts
it (``deadline.start``); everything here reads what is left (``remaining``): every
hop's timeouts are clamped to it whenever urllib3 reads them, retry pauses too, and a
server's Retry-After is honoured only up to ``RETRY_AFTER_CAP`` and the time left.
Transient failures (connect, TLS and read errors, 500, 502 and 504 answers) are retried
by urllib3, ``policy.retries`` times at most, with jittered exponential backoff; a 429 or
503 goes to the master at once, which holds the host for all (``LeaseBoard.overloaded``).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from email.utils import mktime_tz, parsedate_tz
from typing import Any

import requests
import urllib3.exceptions as u3
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.hooks import dispatch_hook
from requests.structures import CaseInsensitiveDict
from urllib3.util.retry import Retry
from urllib3.util.timeout import Timeout

from crawler._compat import retry_url, timeout_parts
from crawler.config import Policy
from crawler.constants import RETRY_AFTER_MAX
from crawler.urls import request_target
from crawler.worker.keepalive import drain
from crawler.worker.netguard import mount
from crawler.worker.resolver import Resolver
from crawler.worker.watchdog import WATCHDOG

RETRIED_STATUSES = (500, 502, 504)  # 429/503 (OVERLOADED): the master's to retry
RETRY_AFTER_CAP = 30.0  # seconds: a server's Retry-After cannot park a thread for hours
_PARSER = Retry(0)  # urllib3's Retry-After parser: only its cap is read of it
# urllib3 2.6.3 and later cap a Retry-After at 6 hours by default (2.6.0-2.6.2 have no
# cap, and no such keyword: set, not passed); this run keeps up to RETRY_AFTER_MAX.
_PARSER.retry_after_max = int(RETRY_AFTER_MAX)

# Per download thread: .deadline, the monotonic time its URL must end by (None: none in
# progress); .hop, the URL its fetch asked for last (its failure's host); .failed_tries,
# the tries urllib3 retried since the last answer;
# .last_request, when its URL's latest request went out (None: none yet; ``get`` and
# ``DeadlineRetry.sleep`` set it, ``bound_url`` clears it): the master spaces a host's
# requests from it (master.politeness).
clock = threading.local()


def start(seconds: float) -> None:
    """Start the calling thread's deadline for one fetch, ``seconds`` from now, or at
    the URL's own end (``bound_url``) if that comes first."""
    end, url_end = time.monotonic() + seconds, getattr(clock, "url_end", None)
    clock.deadline = end if url_end is None else min(end, url_end)
    clock.failed_tries, clock.hop = 0, None


def bound_url(seconds: float | None) -> None:
    """Every fetch the calling thread makes for its URL from now on (the origin's
    robots.txt, then the URL) ends within ``seconds`` in all; None: no such bound. Each
    had its own deadline, and a probe's row took up to twice --deadline."""
    clock.url_end = None if seconds is None else time.monotonic() + seconds
    if seconds is not None:
        clock.last_request = None  # a new URL: no request of it yet


def stop() -> None:
    clock.deadline = None
    WATCHDOG.release()


def watch(sock: socket.socket | None) -> None:
    """Have the calling thread's socket shut down at its deadline (``watchdog``)."""
    WATCHDOG.watch(sock, getattr(clock, "deadline", None))


def remaining() -> float:
    """Seconds left before the calling thread's deadline (infinite when none runs)."""
    deadline = getattr(clock, "deadline", None)
    return float("inf") if deadline is None else deadline - time.monotonic()


class DeadlineRetry(Retry):
    """urllib3's Retry, with pauses capped by RETRY_AFTER_CAP and by the URL's deadline."""

    # urllib3 retries a 413, 429 or 503 that has a Retry-After whatever the forcelist
    # says: none of them here (429/503: the master's, see the module's docstring).
    RETRY_AFTER_STATUS_CODES = frozenset()

    def get_retry_after(self, response: Any) -> float | None:
        """The pause an answer's Retry-After asks for (``server_wait``), capped; None (the
        usual backoff) for one that is neither seconds nor an HTTP date: RFC 9110 section
        10.2.3 gives it no meaning, and urllib3's InvalidHeader made a retried 503 a
        connection_error, never retried."""
        asked = server_wait(getattr(response, "headers", {}))
        return None if asked is None else max(0.0, min(asked, RETRY_AFTER_CAP, remaining()))

    def sleep(self, response: Any = None) -> None:
        super().sleep(response)
        clock.last_request = time.monotonic()  # the retry goes out now

    def get_backoff_time(self) -> float:
        """urllib3's backoff (factor x 2^(n-1) + jitter), from the first retry on: urllib3
        makes the first at once, with no jitter, which after a 429 or 503 was a second
        request to an overloaded host within milliseconds (a fresh user's, 2026-12-01).
        Called for a retry only (``history`` then ends with the failure)."""
        value = super().get_backoff_time()
        if value == 0 and self.history:
            value = self.backoff_factor + random.random() * self.backoff_jitter
        return max(0.0, min(value, self.backoff_max, remaining()))

    def increment(self, *args: Any, **kwargs: Any) -> Retry:
        # Tries whose request went out: a connection that could not be opened (DNS, refused,
        # connect timeout) sent nothing, so it is no attempt.
        if not isinstance(kwargs.get("error"), (u3.NewConnectionError, u3.ConnectTimeoutError)):
            clock.failed_tries = getattr(clock, "failed_tries", 0) + 1
        answer = kwargs.get("response")
        wait = self._server_wait(answer)
        # No time left for another try: the server asks for a longer pause than we may
        # take, or, after a status answer, the backoff may reach the deadline. Give up now
        # (the answer is then reported as it is) instead of sleeping to the deadline for a
        # try that cannot end (a late 503 became a "timeout", and its host was not backed
        # off: a review's). An error with no answer keeps its last try, cut at the deadline.
        if wait:
            late = wait > min(RETRY_AFTER_CAP, remaining())
        else:
            late = answer is not None and self._longest_backoff() >= remaining()
        if remaining() <= 0 or late:
            url = retry_url(args, kwargs)
            raise u3.MaxRetryError(kwargs.get("_pool"), url, u3.TimeoutError("deadline exceeded"))
        retry = super().increment(*args, **kwargs)
        # An answer about to be retried: urllib3's drain_conn, which comes next, reads its
        # body until it ends, with no bound (an endless 503 held the thread for ever).
        if answer is not None and not drain(answer, remaining()):
            answer.close()  # so that drain_conn finds nothing left to read
        return retry

    def _longest_backoff(self) -> float:
        """The longest pause ``get_backoff_time`` would make after this failure (its
        jitter at most)."""
        tries = len(self.history) + 1
        value = self.backoff_factor * 2 ** (tries - 1) + self.backoff_jitter
        return min(value, self.backoff_max)

    def _server_wait(self, response: Any) -> float | None:
        """The Retry-After of ``response`` in seconds, uncapped; None if there is none."""
        if not self.respect_retry_after_header:
            return None
        return server_wait(getattr(response, "headers", {}))


def server_wait(headers: Any) -> float | None:
    """Seconds an answer's ``Retry-After`` asks for (RFC 9110 10.2.3: delay-seconds or an
    HTTP-date; a date past is 0), at most RETRY_AFTER_MAX; None when it has none or one
    that is neither (which RFC 9110 gives no meaning).

    An HTTP-date is read against the same answer's ``Date`` (RFC 9110 6.6.1: when the
    server sent it, by the server's clock), when that is a valid date too, not against
    this host's clock: a worker whose clock was an hour behind read a date 25 s ahead
    as 3,625 s and gave the host up for the run (a fresh user's, 2026-12-01)."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        asked = float(_PARSER.parse_retry_after(value))
        if not value.strip().isdigit():
            asked = _from_date(value, headers.get("Date"), asked)
    except (u3.InvalidHeader, OverflowError, ValueError):
        return None
    return max(0.0, min(asked, RETRY_AFTER_MAX))


def _from_date(value: str, date: str | None, by_our_clock: float) -> float:
    """Seconds from the answer's ``Date`` to the HTTP-date ``value``; ``by_our_clock``
    (urllib3's reading, from now) when the answer has no valid ``Date``."""
    sent = parsedate_tz(date) if date else None
    until = parsedate_tz(value)
    if sent is None or until is None:
        return by_our_clock
    return float(mktime_tz(until) - mktime_tz(sent))


class DeadlineTimeout(Timeout):
    """urllib3's Timeout, clamped to the time left whenever urllib3 reads it: on every
    try, including the retries urllib3 makes inside one ``urlopen``."""

    @staticmethod
    def _clamp(value: Any) -> Any:
        if not isinstance(value, (int, float)):
            return value
        return max(0.001, min(value, remaining()))

    @property
    def connect_timeout(self) -> Any:
        return self._clamp(super().connect_timeout)

    @property
    def read_timeout(self) -> Any:
        return self._clamp(super().read_timeout)

    def clone(self) -> DeadlineTimeout:
        connect, read = timeout_parts(self)
        return DeadlineTimeout(connect=connect, read=read, total=self.total)


class DeadlineBeforeSend(requests.exceptions.Timeout):
    """The deadline ran out before a hop's request was sent (so it is not an attempt)."""


class DeadlineAdapter(HTTPAdapter):
    """Clamps each request's connect and read timeouts to the time left before the deadline."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        timeout = kwargs.get("timeout")  # (the deadline's end before a send: ``get``)
        if isinstance(timeout, tuple):
            kwargs["timeout"] = DeadlineTimeout(connect=timeout[0], read=timeout[1])
        return super().send(request, *args, **kwargs)


def get(
    session: requests.Session,
    url: str,
    headers: dict[str, str] | None,
    timeout: tuple[float, float],
) -> requests.Response:
    """``session.get(url, stream=True, allow_redirects=False, ...)``, sent straight to the
    session's adapter: the session's headers, cookies, hooks, proxies and TLS settings are
    used as they are (it never trusts the environment: ``make_session``), and cookies the
    answer sets are kept, as ``Session.send`` keeps them.

    Not ``Session.request``: its settings merges (each an isinstance check against a
    runtime Protocol in requests 2.34) cost about a third of the client's CPU per request.
    Not ``Session.send`` either: even with ``allow_redirects=False`` it prepares the next
    hop of a redirect (``Response.next``), which reads the redirect's whole body into
    memory, past ``max_bytes`` and the deadline's reach, and raises whatever its reading
    of ``Location`` runs into (``UnicodeDecodeError`` for a byte that is not UTF-8,
    ``ValueError`` for ``http://[::1``). ``fetch`` reads ``Location`` itself."""
    if remaining() <= 0:  # before ``hop``: a target never asked is charged nothing
        raise DeadlineBeforeSend("deadline exceeded")
    clock.last_request, clock.hop = time.monotonic(), url
    merged = session.headers
    if headers:
        merged = CaseInsensitiveDict(session.headers)
        merged.update(headers)
    prepared = requests.PreparedRequest()
    prepared.prepare(
        method="GET",
        url=request_target(url),
        headers=merged,
        cookies=session.cookies,
        hooks=session.hooks,
    )
    adapter = session.get_adapter(url)
    resp = adapter.send(
        prepared,
        stream=True,
        timeout=timeout,
        verify=session.verify,
        cert=session.cert,
        proxies=session.proxies,
    )
    resp = dispatch_hook("response", prepared.hooks, resp)
    extract_cookies_to_jar(session.cookies, prepared, resp.raw)
    return resp


def make_session(policy: Policy, resolver: Resolver | None = None) -> requests.Session:
    """A session for one download thread: pooled connections, transient failures retried,
    names resolved by ``resolver`` (the worker's, shared by its threads; default: a new one)."""
    retry = DeadlineRetry(
        total=policy.retries,
        connect=policy.retries,
        read=policy.retries,
        status=policy.retries,
        other=policy.retries,  # a TLS error before the head (a handshake's: ``handshake``)
        redirect=False,  # fetch() follows redirects itself, checking each target
        allowed_methods=frozenset({"GET"}),
        status_forcelist=RETRIED_STATUSES,
        backoff_factor=policy.backoff,
        backoff_jitter=policy.backoff,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer is reported as http_error with its status
    )
    session = requests.Session()
    adapter = DeadlineAdapter(max_retries=retry, pool_connections=16, pool_maxsize=4)
    mount(adapter, resolver or Resolver(), policy.block_private, watch, remaining)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False  # no netrc credentials or proxies picked up from the environment
    session.headers["User-Agent"] = policy.user_agent
    session.headers["Accept"] = "image/*,*/*;q=0.5"
    return session
