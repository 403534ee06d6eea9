"""The lease board's put-backs: answers that send their URL back to the frontier.

A verdict a worker fetched for a task it holds is taken at once (``robots_found``),
before the URL's own answer, so that a probe whose image is slow does not hold its
origin back; an unavailable robots.txt comes with the URL's result and puts the URL
back while it has leases left (``robots_answer``); so does, once a run, a URL whose
``--deadline`` went to its origin's robots.txt (``again``), and a 429 or 503 while it
has retries left (``overloaded``). ``LeaseBoard`` (``leases``) is the one class using
this: the same lock, frontier, leases and host gate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from crawler.constants import OVERLOADED, TIMEOUT
from crawler.master.fencing import Answer
from crawler.master.frontier import FINAL, Frontier
from crawler.master.leasebook import MAX_BATCH, LeaseBook
from crawler.master.politeness import HostGate
from crawler.master.verdicts import KEPT, TRANSIENT, RobotsBoard
from crawler.robotstxt import check_verdict, crawl_delay
from crawler.urls import host_of


class PutBacks:
    """What ``LeaseBoard`` does with answers that put their URL back (its attributes, set
    there)."""

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
    _retries: int  # times a URL answered 429/503 is put back (--retries)
    _overloads: dict[int, int]  # task -> its 429/503s put back (``overloaded``)
    _sent: dict[int, int]  # task -> requests its answers put back had made

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
        if self._frontier.state[task_id] == FINAL or self._spent(task_id):
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

    def leased_again(
        self, task_id: int, worker: str, url: str, result: dict[str, Any], answer: Answer
    ) -> bool:
        """Does the decoded ``result`` (``protocol.decode_result``; ``answer``: its
        ``Answer.of``) put its URL back in the frontier instead of ending it (True: no row
        for it)? An unavailable robots.txt while the URL has leases left
        (``robots_answer``), once a run a deadline that went to robots.txt (``again``), a
        429/503 while it has retries left (``overloaded``)."""
        verdict = result["robots"]
        if verdict is not None and self.robots_answer(task_id, worker, url, verdict):
            again = True
        elif result["robots_late"] and result["status"] == TIMEOUT:  # said of nothing else
            again = self.again(task_id, worker, answer)
        else:
            again = answer.http_status in OVERLOADED and self.overloaded(task_id, worker, answer)
        if again and result["attempts"]:
            with self._cond:
                self._sent[task_id] = self._sent.get(task_id, 0) + result["attempts"]
        return again

    def overloaded(self, task_id: int, worker: str, answer: Answer) -> bool:
        """A 429 or 503 answered the live lease of ``task_id``: the host gate takes it (a
        backoff, the Retry-After: ``politeness``), so the whole cluster holds the host,
        and the URL goes back to the frontier, leased again once the hold is over, up to
        ``retries`` times (True: no row for this answer). Until 2026-12-02 the worker's
        thread slept out up to 30 s of a Retry-After, and the master learnt of the 429
        only after it: the host's other URLs were asked for meanwhile (a fresh user's)."""
        with self._cond:
            live = self._leases.get(task_id)
            if live is None or (live.worker, live.token) != (worker, answer.token):
                return False  # the answer of a lease not live: fencing decides
            # An unpaced lease (a reuse found no stored file, ...) has no host to hold: put
            # back, it was leased again at once, milliseconds later (a review's).
            spent = self._overloads.get(task_id, 0) >= self._retries or not live.host
            if spent or self._gate.ends_host(live.host, answer, live.serial):
                return False  # no retries left, or none for the host: this answer is the row
            self._overloads[task_id] = self._overloads.get(task_id, 0) + 1
            self._leases.drop(task_id)
            self._gate.done(live.host, answer, self._clock(), live.serial)
            self._frontier.put_back(task_id)
            self._cond.notify_all()
            return True

    def put_backs(self, task_id: int) -> tuple[int, int]:
        """(429/503 answers, requests made) of ``task_id``'s answers put back, now
        forgotten (its row is being written): its ``attempts`` counts those requests.
        Asked of every row; both dicts are written by the master loop alone, the caller's
        thread, so a task with neither entry (nearly all) needs not the board's lock."""
        if task_id not in self._overloads and task_id not in self._sent:
            return 0, 0
        with self._cond:
            return self._overloads.pop(task_id, 0), self._sent.pop(task_id, 0)

    def lost_fields(self, task_id: int) -> dict[str, Any]:
        """The ``worker_lost`` row's fields of a task ``expire`` ended: its leases, those
        lost in words, and the requests of those a 429/503 answered (``put_backs``)."""
        tries = self._attempts[task_id]
        answered, sent = self.put_backs(task_id)
        lost = "once" if tries - answered == 1 else f"{tries - answered} times"
        error = f"handed out {lost} without an answer"
        if answered:
            error += f" ({answered} more answered 429/503)"
        return {"error": error, "leases": tries, "attempts": sent or None}

    def _spent(self, task_id: int) -> bool:
        """Has ``task_id`` used up its leases (--max-attempts)? A lease whose 429/503 put
        the URL back was answered: not one lost. 255, the count's cap, ends it in any case."""
        tries = self._attempts[task_id]
        return tries >= 255 or tries - self._overloads.get(task_id, 0) >= self._max_attempts
