"""The lease board's robots.txt side: verdicts workers fetched, and the URLs they put back.

A verdict a worker fetched for a task it holds is taken at once (``robots_found``),
before the URL's own answer, so that a probe whose image is slow does not hold its
origin back; an unavailable robots.txt comes with the URL's result and puts the URL
back while it has leases left (``robots_answer``); so does, once a run, a URL whose
``--deadline`` went to its origin's robots.txt (``again``). ``LeaseBoard`` (``leases``)
is the one class using this: the same lock, frontier, leases and host gate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from crawler.master.fencing import Answer
from crawler.master.frontier import FINAL, Frontier
from crawler.master.leasebook import MAX_BATCH, LeaseBook
from crawler.master.politeness import HostGate
from crawler.master.verdicts import KEPT, TRANSIENT, RobotsBoard
from crawler.robotstxt import check_verdict, crawl_delay
from crawler.urls import host_of


class RobotsLeases:
    """What ``LeaseBoard`` does with robots.txt verdicts (its attributes, set there)."""

    robots: RobotsBoard
    _cond: threading.Condition
    _clock: Callable[[], float]
    _frontier: Frontier
    _leases: LeaseBook
    _gate: HostGate
    _attempts: bytearray
    _max_attempts: int
    _user_agent: str
    _again: set[int]  # tasks put back once by ``again``

    def robots_answer(self, task_id: int, worker: str, url: str, verdict: dict) -> bool:
        """Take the robots.txt verdict ``worker`` fetched for ``task_id`` (``url``).

        A transient failure backs the origin off (``RobotsBoard.record``); the URL goes
        back to the frontier (True: no row for this answer) unless its leases are spent
        (False: the answer is final). A kept verdict's Crawl-delay spaces the host, from now;
        the host's tasks that the verdict spares a request are held no longer."""
        with self._cond:
            now = self._clock()
            outcome = self.robots.record(task_id, url, verdict, now)
            deferred = outcome == TRANSIENT and self._defer(task_id, worker, now)
            if outcome != TRANSIENT:
                self._frontier.release_silent(url, now)
            if outcome == KEPT:
                self._gate.probe_answered(host_of(url), crawl_delay(verdict, self._user_agent), now)
            self._cond.notify_all()
            return deferred

    def robots_found(self, worker: str, items: list) -> int:
        """Verdicts ``worker`` fetched for tasks it holds (``[{"id", "verdict"}]``), sent as
        soon as it has them, so that a probe whose image is slow does not hold its origin
        back. Items for tasks it does not hold, or not verdicts, are ignored."""
        taken = 0
        for item in items[:MAX_BATCH]:
            task_id = item.get("id") if isinstance(item, dict) else None
            verdict = check_verdict(item.get("verdict")) if type(task_id) is int else None
            if verdict is None or "unavailable" in verdict:
                continue  # an unavailable robots.txt comes with the URL's result
            with self._cond:
                lease = self._leases.get(task_id)
                if lease is None or lease.worker != worker:
                    continue
                url = self._frontier.url(task_id)
            self.robots_answer(task_id, worker, url, verdict)
            taken += 1
        return taken

    def again(self, task_id: int, worker: str, answer: Answer) -> bool:
        """Put back a URL whose deadline went to its origin's robots.txt, now known: its
        next lease fetches the image alone. Once a run, while it has leases left: True
        (no row for this answer). Its request spaces the host; no backoff, no silence."""
        with self._cond:
            live = self._leases.get(task_id)
            ours = live is not None and (live.worker, live.token) == (worker, answer.token)
            if task_id in self._again or not ours:
                return False  # once a run; the answer of a lease not live: fencing decides
            self._again.add(task_id)
            deferred = self._defer(task_id, worker, self._clock(), answer)
            self._cond.notify_all()
            return deferred

    def _defer(self, task_id: int, worker: str, now: float, answer: Answer | None = None) -> bool:
        if self._frontier.state[task_id] == FINAL or self._attempts[task_id] >= self._max_attempts:
            return False
        lease = self._leases.get(task_id)
        if lease is not None and lease.worker == worker:
            self._leases.drop(task_id)
            self._gate.done(lease.host, answer, now)  # serial 0: spacing, no penalty
            self._frontier.put_back(task_id)
        return True  # else it was handed out again meanwhile: that lease answers for it

    def verdicts(self, ids: list) -> list:
        """The robots.txt verdicts with these ids (``RobotsBoard.verdicts``)."""
        with self._cond:
            return self.robots.verdicts(ids)
