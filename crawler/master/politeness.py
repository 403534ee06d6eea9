"""Being a good citizen across the whole cluster: per-host limits decided on the master.

The master knows every lease, so it can cap how many URLs of one host are out at once
(``--per-host``), space the leases of one host (``--host-delay``, or else the
``Crawl-delay`` of its robots.txt), and back off a host that keeps answering 429 or 503, or not
in time (a timeout: its delay doubles, from 1 s up to 5 minutes, and halves again with
each normal answer, down to 0.125 s); a host that answers so ``GIVE_UP_AFTER`` times in a
row is given up for the run. An answer is the host's that gave it: at a redirect's target,
the target's (``done``). An origin whose robots.txt is unavailable is backed off by
``verdicts.RobotsBoard``, the same way, apart from this gate. The answers to requests
already out when a host was backed off are one burst with the answer that backed it off:
they neither double its delay again, nor count in that row, nor relax it (a rate limiter
that refuses 30 requests sent together has answered once, not 30 times; TCP too reduces
its window once per window of losses, RFC 6582). A task whose host is not allowed yet
waits in that host's queue; everything here runs under the ``leases.LeaseBoard``'s lock.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import NamedTuple

from crawler import constants as c
from crawler.config import HostLimits
from crawler.constants import BACKOFF_START, OVERLOADED, RETRY_AFTER_MAX
from crawler.master.fencing import Answer

BACKOFF_MAX = 300.0
BACKOFF_FLOOR = 0.1  # seconds: a backoff relaxed below this is over (0.5, 0.25, 0.125)
# 429/503 answers in a row (backoffs of 1+2+...+64 s between them, about 2 minutes) before a host is
# given up for the run: at 5 minutes a URL, its other URLs would keep a night's run
# open for days. They end unfetched, as transient failures the next run tries again.
GIVE_UP_AFTER = 8


class GivenUp(NamedTuple):
    """Why a host gets no more leases this run: the status its unfetched URLs end with
    (``http_error`` with its last 429/503, or ``timeout``), and in words. Those of a
    host given up for timeouts count as failures tried (an outage: ``closing.alarm``),
    as when each timed out; a review's, 2026-12-01: such a run had exited 0."""

    status: str
    http_status: int | None
    why: str  # after the host's name: "answered 8 requests in a row with 429/503"


def _gave_up(http_status: int | None, timeouts: int, via: str = "") -> GivenUp:
    """A host given up after GIVE_UP_AFTER overloaded answers in a row, ``timeouts`` of
    them timeouts, the last one ``http_status`` (a 429/503) or none (a timeout), the
    last given by ``via`` (a redirect's target; "": the host)."""
    if not timeouts:
        why = f"answered {GIVE_UP_AFTER} requests in a row with 429/503"
    elif timeouts < GIVE_UP_AFTER:
        why = f"answered {GIVE_UP_AFTER} requests in a row with 429/503 or not in time"
    else:
        why = f"answered none of {GIVE_UP_AFTER} requests in a row in time"
    if via:
        why = f"{why} (the last by {via}, where it redirects)"
    if http_status in OVERLOADED:
        return GivenUp(c.HTTP_ERROR, http_status, why)
    return GivenUp(c.TIMEOUT, None, why)


def answered_by(host: str, answer: Answer | None) -> str:
    """The host that gave ``answer`` to a lease of ``host``: a redirect's target, or it."""
    return answer.host if answer is not None and answer.host else host


class HostGate:
    """Which hosts may get another lease now; tasks held back, per host."""

    def __init__(self, limits: HostLimits) -> None:
        self.limits = limits
        self.leased: Counter[str] = Counter()
        self._next: dict[str, float] = {}  # host -> earliest time of its next lease
        self._backoff: dict[str, float] = {}  # host -> current penalty delay
        self._floor: dict[str, float] = {}  # host -> its robots.txt Crawl-delay, seconds
        self.waiting: dict[str, deque[int]] = {}  # host -> task ids held back, in order
        self._overloaded: Counter[str] = Counter()  # host -> 429/503 answers in a row
        self._timeouts: Counter[str] = Counter()  # host -> how many of those timed out
        self.given_up: dict[str, GivenUp] = {}  # host -> why it gets no more leases
        self._serial = 0  # leases made so far: each lease's number, in order
        self._penalized: dict[str, int] = {}  # host -> leases made when it was last backed off
        self._asked_until: dict[str, float] = {}  # host -> end of its Retry-After (``_asked``)
        self._via: dict[str, str] = {}  # host -> the host its last redirected answer came from

    def allowed(self, host: str, now: float) -> bool:
        if host in self.given_up:
            return True  # its tasks end at once, unleased (``LeaseBoard``)
        cap = self.limits.per_host
        if cap and self.leased[host] >= cap:
            return False
        for held in (host, self._via.get(host, host)):
            if held in self._asked_until and now >= self._asked_until[held]:
                del self._asked_until[held]  # its Retry-After is over (``active`` again)
        return now >= self._ready_at(host)

    def _ready_at(self, host: str) -> float:
        """When ``host`` may take its next lease: its spacing's time, or later while the
        host its URLs were last redirected to is held (backed off, asked to wait, given up)."""
        at, via = self._next.get(host, 0.0), self._via.get(host)
        if via is not None and (
            via in self._backoff or via in self._asked_until or via in self.given_up
        ):
            at = max(at, self._next.get(via, 0.0))
        return at

    def lease(self, host: str, now: float) -> int:
        """Count a lease of ``host`` made at ``now``; returns its number (for ``done``)."""
        self.leased[host] += 1
        self._serial += 1
        delay = self._spacing(host)
        if delay:
            self._next[host] = now + delay
        return self._serial

    def _spacing(self, host: str) -> float:
        """Seconds between two leases of ``host``: the largest of ``--host-delay``, its
        backoff (or its redirect target's: a review found a host's whole queue sent to
        its target at once, each time the target's hold ended) and its robots.txt
        Crawl-delay (0: not spaced)."""
        backoff = max(self._backoff.get(host, 0.0), self._backoff.get(self._via.get(host, ""), 0.0))
        return max(self.limits.host_delay, backoff, self._floor.get(host, 0.0))

    def done(self, host: str, answer: Answer | None, now: float, serial: int = 0) -> None:
        """A lease of ``host`` (``serial``: its number from ``lease``) ended; the answer's
        HTTP status (if any) adjusts the backoff of the host that gave it, unless the
        lease was made before that host's last backoff (one burst: see the module's
        docstring), and its Retry-After is kept in any case (``_asked``). "" (an unpaced
        lease) counts nothing.

        An answer from another host (a redirect's target, ``Answer.host``) is that host's:
        it backs off, holds or gives up the target; ``host`` waits while its target is
        held (``_via``), and gives up only after GIVE_UP_AFTER such answers in a row. Until
        2026-12-02 the listed host took it all: one that redirects to a CDN was given up
        for the CDN's "Retry-After: 400", its other images unfetched (a fresh user's)."""
        if not host:
            return
        if self.leased[host] > 0:
            self.leased[host] -= 1
        if answer is not None and answer.request_age is not None:
            self._spaced_from(host, now - answer.request_age)
        by = answered_by(host, answer)
        if by != host:  # first: the target's backoff would make its answer part of a burst
            self._via[host] = by
            self._judge(host, answer, now, serial, via=by)
        self._judge(by, answer, now, serial)

    def _judge(
        self, host: str, answer: Answer | None, now: float, serial: int, via: str = ""
    ) -> None:
        """``host`` gave ``answer`` to the lease ``serial``: back it off, or relax it.
        ``via``: it redirected there, and that host gave it: it counts in ``host``'s
        answers in a row, the wait is ``via``'s (``_ready_at``)."""
        http_status = answer.http_status if answer is not None else None
        overloaded = http_status in OVERLOADED and answer is not None
        if overloaded and not via and answer.retry_after is not None:
            self._asked(host, http_status, now, answer.retry_after)
        # A timeout is overload too: a host that accepts and never answers held every
        # download thread of the cluster, its URLs timing out one after the other while
        # no other host got a request for minutes (a fresh user's, 2026-12-01).
        timed_out = answer is not None and answer.timed_out
        burst = serial <= self._penalized.get(via or host, 0)
        if (http_status is None and not timed_out) or burst:
            return
        if overloaded or timed_out:
            if not via:
                self.penalize(host, now)
            self._overloaded[host] += 1
            self._timeouts[host] += timed_out
            if self._overloaded[host] >= GIVE_UP_AFTER:
                self.given_up[host] = _gave_up(http_status, self._timeouts[host], via)
            return
        self._overloaded.pop(host, None)
        self._timeouts.pop(host, None)
        if host in self._backoff:
            # Down to BACKOFF_FLOOR, not off below BACKOFF_START: a host let go at once
            # after one normal answer got every queued URL together, a rate limiter
            # refused the burst, and its URLs spent their retries (a fresh user's).
            relaxed = self._backoff[host] / 2
            if relaxed < BACKOFF_FLOOR:
                del self._backoff[host]
            else:
                self._backoff[host] = relaxed

    def ends_host(self, host: str, answer: Answer, serial: int) -> bool:
        """Would ``done`` give ``host``, or the host that gave this 429/503 (``answer``, to
        a lease ``serial`` of ``host``: a redirect's target), up? Then the answer is its
        URL's row, not a reason to ask again."""
        by = answered_by(host, answer)
        if host in self.given_up or by in self.given_up:
            return True
        if answer.retry_after is not None and answer.retry_after > BACKOFF_MAX:
            return True  # ``_asked``
        counts = serial > self._penalized.get(by, 0)  # not one burst (``done``, ``_judge``)
        in_a_row = max(self._overloaded[host], self._overloaded[by])
        return counts and in_a_row + 1 >= GIVE_UP_AFTER

    def _spaced_from(self, host: str, sent: float) -> None:
        """A request of ``host`` went out at ``sent`` (at the latest: the answer's way here
        only makes it later): its next lease waits the spacing from then, not only from
        the lease. A worker that started a URL late (a busy machine) sent it close to the
        host's next, leased a spacing after the first: 57 ms apart under --host-delay 0.5
        (a fresh user's, 2026-12-01)."""
        delay = self._spacing(host)
        if delay:
            self._next[host] = max(self._next.get(host, 0.0), sent + delay)

    def _asked(self, host: str, http_status: int, now: float, seconds: float) -> None:
        """``host`` answered 429/503 with a Retry-After of ``seconds`` (RFC 9110 10.2.3,
        RFC 6585 4): none of its URLs is leased before then, and one that asks for more
        than BACKOFF_MAX gives the host up for the run, as GIVE_UP_AFTER answers in a row
        do (its URLs end unfetched, transient: the next run tries them). Until 2026-12-01
        the worker waited out up to 30 s of it and the master none: a host asking for an
        hour was asked again within a second, 8 times in 2 minutes."""
        if seconds > BACKOFF_MAX:
            wait = f"{seconds:.0f} s" + (" or more" if seconds >= RETRY_AFTER_MAX else "")
            why = f"asked to wait {wait} (Retry-After), more than {BACKOFF_MAX:.0f}"
            self.given_up[host] = GivenUp(c.HTTP_ERROR, http_status, why)
            # hosts redirecting here wait BACKOFF_MAX, then each URL is asked (``_via``)
            self._next[host] = max(self._next.get(host, 0.0), now + BACKOFF_MAX)
            return
        until = max(self._asked_until.get(host, 0.0), now + seconds)
        # Kept apart from the backoff, which a normal answer relaxes: the gate stays
        # ``active`` until then (a review found a late answer's hold ignored once the
        # host's backoff had relaxed away, with no other limit set).
        self._asked_until[host] = until
        self._next[host] = max(self._next.get(host, 0.0), until)

    def penalize(self, host: str, now: float) -> None:
        """``host`` is overloaded (a 429/503, or a timeout with no answer): back it off."""
        doubled = 2 * self._backoff.get(host, 0.0)
        penalty = self._backoff[host] = min(max(doubled, BACKOFF_START), BACKOFF_MAX)
        self._penalized[host] = self._serial
        self._next[host] = max(self._next.get(host, 0.0), now + penalty)

    def probe_answered(self, host: str, crawl_delay: float | None, now: float) -> None:
        """A robots.txt verdict for ``host`` arrived, with its Crawl-delay for us (None:
        none). The Crawl-delay spaces the host's leases, unless the user set
        ``--host-delay`` (which then applies to every host, this one too).

        The probe's own image is asked for now, after its robots.txt, not when it was
        leased: so the host's next lease waits its spacing from now (it went out at once,
        and two requests reached the host milliseconds apart)."""
        if crawl_delay is not None and not self.limits.host_delay:
            self._floor[host] = crawl_delay
        delay = self._spacing(host)
        if delay:
            self._next[host] = max(self._next.get(host, 0.0), now + delay)

    def spaced(self, host: str) -> bool:
        """True when leases of ``host`` must be spaced in time (a delay, a penalty, its
        redirect target's penalty)."""
        if host in self.given_up:
            return False  # its tasks are not leased: they end at once
        return bool(self._spacing(host))

    def hold(self, host: str, task_id: int) -> None:
        self.waiting.setdefault(host, deque()).append(task_id)

    def ready(self, now: float) -> list[tuple[str, deque[int]]]:
        """Queues of held-back tasks whose host may take a lease now."""
        return [(h, q) for h, q in self.waiting.items() if self.allowed(h, now)]

    def next_ready_in(self, now: float) -> float | None:
        """Seconds until a held-back host's delay runs out (None: only a lease ending helps)."""
        times = [at - now for h in self.waiting if (at := self._ready_at(h)) > now]
        return min(times) if times else None

    @property
    def active(self) -> bool:
        """False while no limit or penalty exists: the board can skip per-host work."""
        limits = self.limits.per_host or self.limits.host_delay
        return bool(limits or self._backoff or self._floor or self._asked_until)
