"""Opt-out signals: robots.txt (RFC 9309) per origin.

robots.txt is fetched once per origin (scheme, host, port) for the whole cluster: the
master hands each task the id of its origin's verdict when one is known
(``crawler.robotstxt``), and the worker asks the master for verdicts it has not seen
(``RobotsCache.learn``). A task without one is the origin's *probe*: the master leases
one such task per origin at a time, this worker fetches robots.txt for it (with a
session that does not retry: the master's backoff is the retry) and reports the verdict
with the URL's result, for the master to keep and share. A verdict this worker fetched
is also kept here, until ``ROBOTS_TTL``. A redirect target's origin is read the same
way, its robots.txt fetched by this worker (``targetrobots``).

What an answer means (RFC 9309, section 2.3.1):

- 2xx: the rules are parsed by Protego and applied to our product token;
- 4xx (404 and 401/403 too) and redirects that cannot be followed (a loop, more than
  ``ROBOTS_MAX_REDIRECTS``, not http(s), a refused address): no rules, all allowed;
- 5xx, 429, a timeout, a connection error: *unavailable*, a transient failure. The URL
  is reported ``blocked`` ("robots.txt unavailable: ...") with the verdict, and the
  master backs the origin off and puts the URL back, until its attempts are spent;
- the origin's own address refused by ``--block-private``: ``private_address``, with
  ``attempts`` 0 (nothing was sent), as the download would have been.

The X-Robots-Tag response header: ``xrobots``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from protego import Protego

from crawler.config import Policy
from crawler.exceptions import (
    Blocked,
    FetchFailure,
    PrivateAddress,
    RedirectFailure,
    TimeoutFailure,
    URLFailure,
)
from crawler.keptrules import KeptRules, robots_bytes
from crawler.robotstxt import (
    ROBOTS_MAX_BYTES,
    ROBOTS_MAX_REDIRECTS,
    ROBOTS_TTL,
    answer_verdict,
    product_token,
    rules_of,
)
from crawler.urls import Origin, origin_of, robots_url
from crawler.worker import deadline
from crawler.worker.failures import host_trouble
from crawler.worker.fetch import fetch_text

# Seconds a redirect target's unavailable robots.txt (5xx, 429, timeout, connection
# error) answers for that origin's next targets without a request, or as long as its
# Retry-After asked, up to HELD_MAX: the master's backoff is for listed origins only, and
# each URL redirected there asked again at once (a review's: 16 requests in 20 ms).
HELD_FOR = 30.0
HELD_MAX = 300.0
# Bytes of robots.txt behind the verdicts a worker keeps, at least: a batch of tasks (up
# to twice its threads) may bring as many verdicts, each up to ROBOTS_MAX_BYTES, learned
# together, so the bound grows with --threads (``RobotsCache``): a verdict dropped before
# its task ran was fetched again (a review's: 65 of 128 at 64 threads).
VERDICT_BYTES = 32 << 20
# ... and behind the rules it keeps parsed: twice the master's (``keptrules``), since
# every URL a worker fetches reads its origin's rules (a working set past the bound is
# parsed again for each URL: 1.3 ms a check for 8 KiB files, a review's); about 100 MB
# of Protego for ordinary files, up to ~300 MB were each rule a wildcard.
RULES_BYTES = 8 << 20


@dataclass(frozen=True)
class Rules:
    """What one verdict means for our downloads."""

    parser: Protego | None = None  # None: no rules for us, everything allowed
    unavailable: str | None = None  # a transient failure: nothing allowed now
    refused: str | None = None  # the origin's own address failed the guard


def rules_from(verdict: dict[str, Any]) -> Rules:
    if "refused" in verdict:
        return Rules(refused=str(verdict["refused"]))
    if "unavailable" in verdict:
        return Rules(unavailable=str(verdict["unavailable"]))
    return Rules(parser=rules_of(verdict))


class RobotsCache:
    """robots.txt verdicts for one worker run; thread-safe, one fetch per origin at a time.

    What it keeps is bounded (``keptrules``): verdicts, by the master's verdict id or by
    the origin this worker fetched robots.txt for, up to ``VERDICT_BYTES`` of robots.txt
    (more with many threads), and their rules, parsed once when they come, up to
    ``RULES_BYTES``. A rule set dropped is parsed again from its verdict, by one thread;
    a verdict dropped is asked of the master again (``knows``), and the robots.txt of a
    probe's origin is fetched again. Until
    2026-12-02 every verdict stayed, parsed, for the run: 33 KB an origin for a 1 KB
    robots.txt, a worker growing from 55 to 154 MB over 3,000 origins
    (``bench/worker_origins.py``)."""

    def __init__(self, policy: Policy, threads: int = 16) -> None:
        """``threads``: the worker's download threads (what it may hold at once)."""
        self._policy = policy
        self._lock = threading.Lock()
        # verdict id (the master's) or origin (fetched here) -> (kept until, verdict)
        self._verdicts: KeptRules[int | Origin, tuple[float, dict[str, Any]]]
        self._verdicts = KeptRules(max_bytes=max(VERDICT_BYTES, 3 * threads * ROBOTS_MAX_BYTES))
        # ... -> (kept until, its rules, verdict): the rules in use
        self._rules: KeptRules[int | Origin, tuple[float, Rules, dict[str, Any]]]
        self._rules = KeptRules(max_bytes=RULES_BYTES)
        self._pending: dict[Origin, threading.Event] = {}  # origins being fetched right now
        self._parsing: dict[int | Origin, threading.Event] = {}  # rules being parsed again
        # origin -> (until, rules, verdict) of its robots.txt found unavailable (HELD_FOR)
        self._held: KeptRules[Origin, tuple[float, Rules, dict[str, Any]]] = KeptRules()

    def learn(self, verdict_id: int, verdict: dict[str, Any]) -> None:
        """Keep a verdict the master shared (``robotstxt.check_verdict`` checked it),
        parsed here, once, before the threads whose tasks need it ask (a review's:
        parsed by each of them at once, 16 threads took 2.2 s for a 500 KiB file)."""
        self._keep(verdict_id, math.inf, rules_from(verdict), verdict)

    def knows(self, verdict_id: int) -> bool:
        with self._lock:
            return verdict_id in self._verdicts or verdict_id in self._rules

    def check(
        self, url: str, verdict_id: int | None, session: requests.Session, what: str = ""
    ) -> tuple[dict[str, Any] | None, URLFailure | None]:
        """(the verdict fetched for this URL, to report; the failure that ends the URL).

        With a ``verdict_id`` this worker knows, nothing is fetched; otherwise the origin's
        robots.txt is fetched with ``session`` (by one thread; others asking wait for it).
        ``what``: the URL's part in its fetch, named in the failure ("": the task's URL;
        else a redirect target's, which an unavailable robots.txt held answers too).
        TimeoutFailure when the URL's deadline ran out waiting for another thread's fetch.
        """
        kept = self._kept(verdict_id) if verdict_id is not None else None
        report = None
        if kept is not None:
            rules = kept[0]
        else:
            rules, report = self.rules_for(url, session, held=bool(what))
        failure: URLFailure
        if rules.refused is not None:
            failure = PrivateAddress(rules.refused)
        elif rules.unavailable is not None:
            failure = Blocked(f"robots.txt unavailable: {rules.unavailable}{what and f' ({what})'}")
        elif rules.parser is not None and not rules.parser.can_fetch(url, self._token):
            failure = Blocked(f"robots.txt disallows {what or 'this URL'} for {self._token}")
        else:
            return report, None
        failure.attempts = 0  # no request was made for the URL itself
        return report, failure

    @property
    def _token(self) -> str:
        return product_token(self._policy.user_agent)

    def rules_for(
        self, url: str, session: requests.Session, held: bool = False
    ) -> tuple[Rules, dict[str, Any]]:
        """The rules of ``url``'s origin and their verdict, fetched now unless kept here
        (or, ``held``, found unavailable within HELD_FOR: a redirect target's)."""
        origin = origin_of(url)
        while True:
            with self._lock:
                down = self._held.get(origin) if held else None
                if down is not None and down[0][0] > time.monotonic():
                    return down[0][1], down[0][2]
                known = self._kept_entry(origin)
                pending = None if known else self._pending.get(origin)
                mine = not known and pending is None
                if mine:
                    pending = self._pending[origin] = threading.Event()
            if known:
                kept = self._kept(origin)
                if kept is not None:
                    return kept
                continue  # expired or dropped in between: fetched in its turn
            assert pending is not None
            if not mine:
                # The fetching thread gives up at its URL's deadline, this one at its own
                # (a redirect target's waiter may have come late in its URL). A transient
                # answer is not kept, so this thread then fetches in its turn.
                if not pending.wait(_time_left()):
                    words = f"deadline of {self._policy.deadline:g} s exceeded"
                    raise TimeoutFailure(f"{words} waiting for robots.txt")
                continue
            try:
                verdict = load_verdict(robots_url(origin), session, self._policy)
                rules = rules_from(verdict)
                if "unavailable" not in verdict:
                    self._keep(origin, time.monotonic() + ROBOTS_TTL, rules, verdict)
                else:
                    self._hold(origin, rules, verdict)
                return rules, verdict
            finally:
                with self._lock:
                    del self._pending[origin]
                pending.set()

    def _kept_entry(self, key: int | Origin) -> bool:
        """Is a verdict of ``key`` kept and current? (Under the lock.)"""
        found = self._rules.get(key) or self._verdicts.get(key)
        return found is not None and found[0][0] > time.monotonic()

    def _kept(self, key: int | Origin) -> tuple[Rules, dict[str, Any]] | None:
        """The rules and verdict kept for ``key``, parsed again (by one thread) if the
        rules were dropped; None if neither is kept (or it expired)."""
        while True:
            with self._lock:
                kept = self._verdicts.get(key)  # recently used too, for ``knows``
                found = self._rules.get(key) or kept
                if found is None or found[0][0] <= time.monotonic():
                    return None
                if len(found[0]) == 3:
                    return found[0][1], found[0][2]
                waiting = self._parsing.get(key)
                if waiting is None:
                    self._parsing[key] = threading.Event()
            verdict = found[0][1]
            if waiting is not None:  # another thread parses it: its rules (ours on a timeout)
                if waiting.wait(_time_left()):
                    continue
                return rules_from(verdict), verdict
            return self._parse_again(key, found[0]), verdict

    def _parse_again(self, key: int | Origin, entry: tuple[float, dict[str, Any]]) -> Rules:
        try:
            rules = rules_from(entry[1])  # outside the lock: up to ~0.1 s for 500 KiB
            with self._lock:  # unless a fresher verdict came meanwhile (a review's)
                now = self._verdicts.get(key)
                if now is not None and now[0] is entry:
                    self._rules.put(key, (entry[0], rules, entry[1]), robots_bytes(entry[1]))
            return rules
        finally:
            with self._lock:
                self._parsing.pop(key).set()

    def _hold(self, origin: Origin, rules: Rules, verdict: dict[str, Any]) -> None:
        asked = float(verdict.get("retry_after") or 0.0)
        until = time.monotonic() + min(max(HELD_FOR, asked), HELD_MAX)
        with self._lock:
            self._held.put(origin, (until, rules, verdict), 0)

    def _keep(
        self, key: int | Origin, expires: float, rules: Rules, verdict: dict[str, Any]
    ) -> None:
        size = robots_bytes(verdict)
        with self._lock:
            self._verdicts.put(key, (expires, verdict), size)
            self._rules.put(key, (expires, rules, verdict), size)


def _time_left() -> float | None:
    """Seconds left before the calling thread's deadline; None when none runs."""
    left = deadline.remaining()
    return None if left == float("inf") else max(0.0, left)


def load_verdict(url: str, session: requests.Session, policy: Policy) -> dict[str, Any]:
    """Fetch the robots.txt at ``url``: its verdict (see ``crawler.robotstxt``)."""
    try:
        answer = fetch_text(session, url, policy, ROBOTS_MAX_BYTES, ROBOTS_MAX_REDIRECTS)
    except PrivateAddress as failure:
        if failure.attempts == 0:  # refused before anything was sent: the origin itself
            return {"refused": str(failure)}
        return answer_verdict(0, b"")  # a redirect to a refused address: cannot be followed
    except RedirectFailure:
        return answer_verdict(0, b"")  # RFC 9309 2.3.1.2: treated as unavailable (4xx)
    except FetchFailure as failure:  # timeout, connection error
        if host_trouble(failure) is not None:  # this host's shortage: no verdict of the
            raise  # origin's, shared with the cluster (the URL fails as the host's trouble)
        return {"unavailable": str(failure)}
    status = answer.http_status
    if status >= 500 or status == 429:
        asked = answer.retry_after  # the master holds the origin that long
        if asked is None:
            return {"unavailable": f"HTTP {status}"}
        return {"unavailable": f"HTTP {status}, Retry-After {asked:.0f} s", "retry_after": asked}
    return answer_verdict(status, answer.body)
