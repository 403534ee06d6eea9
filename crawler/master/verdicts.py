"""robots.txt for the whole cluster: one fetch per origin, the verdict shared through the master.

While the master has no verdict for an origin (scheme, host, port), it leases one task of
that origin at a time, the *probe*; its worker fetches robots.txt and reports the verdict
with the task's result (``crawler.robotstxt``). The master keeps it for ``ROBOTS_TTL``
(RFC 9309 2.4: at most 24 hours) and sends its id with every later task of the origin; a
worker asks for verdicts it has not seen (``TaskQueue.robots``). So an origin's
robots.txt is fetched once per cluster, and while it is failing, at most once per
backoff step.

A transient failure (robots.txt unavailable: 5xx, 429, timeout, connection error) is
not kept: the origin is backed off as a host answering 429/503 is (its next probe waits
1 s, then 2, 4, ... up to 5 minutes, or as long as a 429/503's Retry-After asked, RFC
9110 10.2.3) and the ``LeaseBoard`` puts the probe back. After ``ROBOTS_MAX_FAILURES``
such failures in a row the origin is given up for ``GIVE_UP_SECONDS``, and at once, for
as long as it asked (up to ``ROBOTS_TTL``), when it asked for more than 5 minutes (until
2026-12-01 the Retry-After was ignored: asked again after 1, 2, 4 ... s): that verdict is
shared like any other, so the URLs leased meanwhile end as ``blocked`` instead of each
waiting out its own backoff. Not thread-safe on its
own: the ``LeaseBoard`` calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from protego import Protego

from crawler.constants import BACKOFF_START
from crawler.keptrules import KeptRules, robots_bytes
from crawler.master.politeness import BACKOFF_MAX
from crawler.master.verdictstore import VerdictStore
from crawler.robotstxt import ROBOTS_TTL, product_token, rules_of, verdict_body

ROBOTS_MAX_FAILURES = 8  # transient failures in a row (backoffs 1+2+...+64 s) before giving up
GIVE_UP_SECONDS = 300.0  # how long a given-up origin's URLs end blocked without a new probe
KEPT, TRANSIENT, GIVEN_UP = "kept", "transient", "given up"
EVERY_URL = object()  # the blocking rules of a refused or given-up origin: every URL ends
# The master reads an origin's rules for a URL (``silent``) only while that costs little.
# Protego may look at every rule, in Python (~0.1 us each: 40,000 fit in 500 KiB), and
# scans the URL once per wildcard (~0.3 us + 1 us per 300 characters): with 40,000
# wildcards and URLs of 8,000 characters one check took 0.65 s, under the board's lock,
# and no worker got a task meanwhile (a fresh user's robots.txt, 2026-12-01). Its cost
# is estimated in units of ~0.1 us (``silent``); above this (about 1 ms) the
# master leaves the URL to its worker, which reads the same rules in any case.
PRECHECK_COST_MAX = 10_000
# The rules parsed for ``silent`` are kept within ``keptrules``' bounds. Rules dropped
# are not parsed again: a task considered again would pay a parse (~0.2 ms for 1 KB)
# under the board's lock, each time, once more origins than that are in play. Their
# origin's tasks are then paced as if they made a request (the safe side: never unpaced
# by mistake); its worker still reads the rules and blocks them.
RULES = object()  # a verdict whose rules may block a URL: parsed when first needed
DROPPED = object()  # ... and parsed once, then dropped (KeptRules): not read again


def origin_key(url: str) -> str:
    """``scheme://host[:port]`` of a normalised URL (its default port already dropped)."""
    start = url.find("//") + 2
    end = url.find("/", start)
    return url if end < 0 else url[:end]


def _always(task_id: int) -> bool:
    return True


class RobotsBoard:
    """Verdicts per origin, the probes out now, failures in a row."""

    def __init__(
        self,
        enabled: bool,
        needs: Callable[[int], bool] = _always,
        user_agent: str = "",
        spool: Path | None = None,
    ) -> None:
        """``enabled``: robots.txt is consulted this run; ``needs(task_id)``: the task's
        worker will consult it (False for an image it reuses; a revalidation asks);
        ``user_agent``: the run's, whose product token the rules are read for;
        ``spool``: the folder of the verdicts' spool (``verdictstore``)."""
        self.enabled = enabled
        self._needs = needs
        self._token = product_token(user_agent)
        # verdict id -> (EVERY_URL or RULES, lines, "*" in its robots.txt); absent: a
        # verdict that blocks nothing (no rules, or no Disallow line: the common case)
        self._kinds: dict[int, tuple[object, int, int]] = {}
        self._parsed: KeptRules[int, Protego | None] = KeptRules()  # by verdict id
        self._origins: dict[str, tuple[int, float]] = {}  # origin -> (verdict id, expires)
        self._store = VerdictStore(spool)
        self._next_id = 1
        self._probes: dict[str, int] = {}  # origin -> task id of its probe, out now
        self._probe_of: dict[int, str] = {}
        self._failures: dict[str, int] = {}  # origin -> transient failures in a row
        self._not_before: dict[str, float] = {}  # origin -> earliest time of its next probe

    def admit(self, task_id: int, url: str, now: float) -> bool:
        """May ``task_id`` be leased now? Makes it its origin's probe when it needs one."""
        if not self.enabled or self.verdict_id(url, now) is not None:
            return True
        if not self._needs(task_id):
            return True
        origin = origin_key(url)
        if self._probes.get(origin) == task_id:
            return True  # already its probe (admitted before, then kept or put back)
        if origin in self._probes or now < self._not_before.get(origin, 0.0):
            return False  # a probe is out, or the origin is backed off: wait
        self._probes[origin] = task_id
        self._probe_of[task_id] = origin
        return True

    def silent(self, task_id: int, url: str, now: float) -> bool:
        """Will the worker of ``task_id`` end it without a request, by the origin's verdict:
        robots.txt disallows ``url`` for our token (``worker.robots`` reads the same rules
        the same way), the origin's address was refused, or it was given up? Such a task
        is not held back for its host's spacing: a disallowed URL waited out a Crawl-delay
        of up to a minute, for no request, until 2026-12-01. Cheapest checks first: this
        runs for every task the frontier considers while politeness is active."""
        verdict_id = self.verdict_id(url, now)
        kind = self._kinds.get(verdict_id) if verdict_id is not None else None
        if kind is None:
            return False  # blocks nothing
        if kind[0] is not RULES:  # every URL blocked, or rules no longer at hand
            return kind[0] is EVERY_URL and self._needs(task_id)
        _, lines, wildcards = kind
        if lines + wildcards * (3 + len(url) // 30) > PRECHECK_COST_MAX:
            return False  # too costly to read here (PRECHECK_COST_MAX)
        rules = self._rules_of(verdict_id)
        blocked = isinstance(rules, Protego) and not rules.can_fetch(url, self._token)
        return blocked and self._needs(task_id)

    def blocking(self, url: str, now: float) -> Protego | object | None:
        """The rules of ``url``'s origin that may block a URL: a parser, EVERY_URL (refused
        or given up), or None (no verdict yet, or one that blocks nothing: no rules, or
        no ``Disallow`` line at all, the common case, which is then not parsed; or rules
        parsed once and dropped since: ``KeptRules``)."""
        return self._rules_of(self.verdict_id(url, now))

    def _rules_of(self, verdict_id: int | None) -> Protego | object | None:
        kind = self._kinds.get(verdict_id) if verdict_id is not None else None
        if kind is None or kind[0] is not RULES:
            return EVERY_URL if kind is not None and kind[0] is EVERY_URL else None
        found = self._parsed.get(verdict_id)
        if found is not None:
            return found[0]
        verdict = self._store.get(verdict_id)  # None: unreadable, left to the worker
        rules = None if verdict is None else rules_of(verdict)
        size = 0 if verdict is None else robots_bytes(verdict)
        for dropped in self._parsed.put(verdict_id, rules, size):
            self._mark_dropped(dropped)
        return rules

    def next_ready_in(self, now: float) -> float | None:
        """Seconds until the first backed-off origin may be probed again (None: none is)."""
        waits = [t - now for t in self._not_before.values() if t > now]
        return min(waits) if waits else None

    def held_back(self, now: float) -> int:
        """Origins waiting out a backoff for an unavailable robots.txt (their URLs that
        need its verdict are not leased meanwhile)."""
        return sum(t > now for t in self._not_before.values())

    def verdict_id(self, url: str, now: float) -> int | None:
        """The id of the origin's current verdict, or None (fetch it / not consulted)."""
        if not self.enabled:
            return None
        origin = origin_key(url)
        entry = self._origins.get(origin)
        if entry is None:
            return None
        if entry[1] <= now:  # expired: the next task of the origin fetches it again
            del self._origins[origin]
            self._forget(entry[0])
            return None
        return entry[0]

    def ended(self, task_id: int) -> None:
        """The lease of ``task_id`` ended without a verdict: another task may probe."""
        origin = self._probe_of.pop(task_id, None)
        if origin is not None and self._probes.get(origin) == task_id:
            del self._probes[origin]

    def record(self, task_id: int, url: str, verdict: dict[str, Any], now: float) -> str:
        """Take the verdict a worker fetched for ``task_id`` (``url``); returns KEPT,
        TRANSIENT (unavailable: not kept) or GIVEN_UP (unavailable too often in a row, or
        asked by its Retry-After to wait more than BACKOFF_MAX)."""
        self.ended(task_id)
        origin = origin_key(url)
        ttl = ROBOTS_TTL
        if "unavailable" in verdict:
            failures = self._failures[origin] = self._failures.get(origin, 0) + 1
            penalty = min(BACKOFF_START * 2 ** (failures - 1), BACKOFF_MAX)
            asked = float(verdict.get("retry_after") or 0.0)
            self._not_before[origin] = now + max(penalty, asked)
            if asked <= BACKOFF_MAX and failures < ROBOTS_MAX_FAILURES:
                return TRANSIENT
            ttl = min(max(GIVE_UP_SECONDS, asked), ROBOTS_TTL)
        self._failures.pop(origin, None)
        self._not_before.pop(origin, None)
        old = self._origins.get(origin)
        if old is not None:
            self._forget(old[0])
        self._origins[origin] = (self._next_id, now + ttl)
        self._store.add(self._next_id, verdict)
        if (kind := _kind(verdict)) is not None:
            self._kinds[self._next_id] = kind
        self._next_id += 1
        return GIVEN_UP if "unavailable" in verdict else KEPT

    def _forget(self, verdict_id: int) -> None:
        self._drop_rules(verdict_id)
        self._kinds.pop(verdict_id, None)
        self._store.drop(verdict_id)

    def verdicts(self, ids: list[Any]) -> list[dict[str, Any]]:
        """``[{"id": n, "verdict": {...}}]`` for the ids still kept (others are left out).
        One kept but unreadable (its spool's I/O failed) is left out too, and its rules
        no longer spare a URL its spacing: its worker fetches robots.txt itself, and
        that request must be paced (a review's, 2026-12-02)."""
        found = [(i, self._store.get(i)) for i in ids[:1000] if type(i) is int and i in self._store]
        for verdict_id in [i for i, verdict in found if verdict is None]:
            self._drop_rules(verdict_id)
        return [{"id": i, "verdict": verdict} for i, verdict in found if verdict is not None]

    def _drop_rules(self, verdict_id: int) -> None:
        """Its rules are not read (again): ``KeptRules``, or its spool unreadable."""
        self._parsed.pop(verdict_id)
        self._mark_dropped(verdict_id)

    def _mark_dropped(self, verdict_id: int) -> None:
        if (was := self._kinds.get(verdict_id)) is not None and was[0] is RULES:
            self._kinds[verdict_id] = (DROPPED, was[1], was[2])

    def close(self) -> None:
        """Free the verdicts' spool."""
        self._store.close()


def _kind(verdict: dict[str, Any]) -> tuple[object, int, int] | None:
    """What a verdict may block: every URL (refused, given up), the URLs its rules
    disallow (RULES, with its robots.txt's lines and wildcards: ``silent``'s cost), or
    none (None: a 4xx, no rules, no ``Disallow`` line at all, the common case)."""
    if "status" not in verdict:
        return EVERY_URL, 0, 0
    status = verdict["status"]
    body = verdict_body(verdict) if 200 <= status < 300 else b""
    if b"disallow" not in body.lower():
        return None
    return RULES, body.count(b"\n") + 1, body.count(b"*")
