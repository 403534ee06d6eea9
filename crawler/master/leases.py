"""Leases: tasks handed to workers under a time limit, answers matched to them.

A task that ``get`` returns is *leased* to the worker that asked, not gone: the lease
is recorded before ``get`` returns, so a worker that dies holding tasks (or while its
``get`` is in flight) loses nothing. A worker renews the leases it holds (heartbeats),
and the answer names those that are no longer its own, so it drops them; an expired
lease goes back to the frontier; a URL leased ``max_attempts`` times without an answer
ends as ``worker_lost``; a stopping worker releases what it never started, at no cost.
Every lease carries a fencing token; which answer may end a URL is ``fencing``'s table.

Server threads (``get``, ``renew``, ``release``, ``verdicts``) and the master loop
(``complete``, ``expire``, ...) share the board: one lock guards the frontier, leases,
per-host gate (``politeness``) and robots.txt verdicts (``verdicts.RobotsBoard``).
"""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crawler.config import HostLimits
from crawler.master.affinity import HostAffinity
from crawler.master.fencing import ANY_SUCCESS, MAX_TOKEN, Answer, accepts
from crawler.master.frontier import FINAL, LEASED, Frontier
from crawler.master.leasebook import MAX_BATCH, Lease, LeaseBook
from crawler.master.politeness import GivenUp, HostGate
from crawler.master.putbacks import PutBacks
from crawler.master.verdicts import RobotsBoard
from crawler.master.workers import WorkerRegistry
from crawler.protocol import MAX_GET_WAIT, Task, encode_task
from crawler.urls import host_of

NO_LIMITS = HostLimits()


class LeaseBoard(PutBacks):
    """Pending tasks, leases and the run's end; per task two bytes (state, attempts)."""

    def __init__(  # noqa: PLR0913  (the board's settings, all from MasterConfig and Plan)
        self,
        urls: Sequence[str],
        final: bytearray | None,
        lease_seconds: float,
        max_attempts: int,
        clock: Callable[[], float] = time.monotonic,
        stored_copy: Callable[[int], dict[str, Any] | None] = lambda task_id: None,
        limits: HostLimits = NO_LIMITS,
        user_agent: str | None = None,
        unpaced: Callable[[int], bool] = lambda task_id: False,
        workers: WorkerRegistry | None = None,
        retries: int = 0,
        spool: Path | None = None,
    ) -> None:
        """``stored_copy(task_id)``: what a worker needs to reuse an earlier run's image
        (``plan.Plan.stored_copy``); ``user_agent``: the run's (None: ``--ignore-robots``);
        ``unpaced(task_id)``: the task makes no request (a reuse): politeness neither holds
        nor counts it, nor does it ask robots.txt; ``workers``: the registry so far;
        ``retries``: times a URL answered 429/503 is leased again (``overloaded``);
        ``spool``: the folder of the robots.txt verdicts' spool (``verdictstore``)."""
        self._gate = HostGate(limits)
        self._user_agent = user_agent or ""
        asks = lambda i: not unpaced(i) or i in self._frontier.rerouted  # noqa: E731
        self.robots = RobotsBoard(user_agent is not None, asks, self._user_agent, spool)
        self._frontier = Frontier(urls, final, self._gate, self.robots, unpaced)
        self._urls = urls  # task id -> URL (the frontier's)
        self._stored_copy = stored_copy
        self._leases = LeaseBook()
        self._attempts = bytearray(len(urls))
        self._tokens = array("H", bytes(2 * len(urls)))  # fencing tokens handed out, a task
        self._lease_seconds = lease_seconds
        self._max_attempts = min(max_attempts, 255)
        self._clock = clock
        self._cond = threading.Condition()
        self._over = self._draining = False  # draining: stop handing out work, take answers
        self.workers = WorkerRegistry(clock) if workers is None else workers
        self._affinity: HostAffinity | None = None  # see prefer_hosts
        self._unleased: list[tuple[int, str, int]] = []  # (id, host, status) of given-up hosts
        self._again: set[int] = set()  # tasks put back once by ``again``
        self._retries = retries
        self._overloads: dict[int, int] = {}  # task -> its 429/503s put back (``overloaded``)
        self._sent: dict[int, int] = {}  # task -> requests its answers put back had made

    # --- called by workers, through the endpoints ---
    def get(self, worker: str, max_items: int, timeout: float, room: int | None = None) -> dict:
        """Lease up to ``max_items`` tasks to ``worker``, ``room`` of them at most (None:
        any) of hosts whose requests are spaced (``worker.lane``), waiting up to ``timeout``
        seconds (at most MAX_GET_WAIT) for some. Returns ``{"tasks": [task messages],
        "over": bool, "room": bool}``; at once with ``"none_left": True`` to a holder of
        leases when all are leased or final, or in a stop (``drain``): its answers first."""
        deadline = self._clock() + max(0.0, min(float(timeout), MAX_GET_WAIT))
        count = max(1, min(int(max_items), MAX_BATCH))
        room = count if room is None else max(0, min(int(room), count))
        frontier = self._frontier
        with self._cond:
            while True:
                self.workers.seen(worker, told_over=self._over)
                holds = self._leases.holds(worker)
                if self._over or (self._draining and (holds or deadline <= self._clock())):
                    # a stop: no work, a wait as any (until 2026-12-02 none: a spin of --grace)
                    return {"tasks": [], "over": self._over, "none_left": holds and not self._over}
                frontier.short_of_room = False  # set by this take: no wait, the worker asks
                left = frontier.todo or self._kept()  # tasks to hand out, now or later
                tasks = self._lease(worker, count, room) if left and not self._draining else []
                if tasks or frontier.short_of_room:
                    return {"tasks": tasks, "over": False, "room": frontier.short_of_room}
                if not left and holds:
                    return {"tasks": [], "over": False, "room": False, "none_left": True}
                if deadline <= self._clock():
                    return {"tasks": [], "over": False, "room": False}
                now = self._clock()
                ready_in = None if self._draining or not frontier.todo else self._next_ready_in(now)
                self._cond.wait(min(deadline - now, ready_in or deadline - now))

    def renew(self, worker: str, ids: list[int]) -> dict:
        """Extend the leases ``worker`` still holds. Returns ``{"renewed": int, "gone":
        [ids]}``: the ids that are no longer ``worker``'s (answered elsewhere, expired and
        handed out again, or never its own), which it should drop."""
        expires = self._clock() + self._lease_seconds
        renewed, gone = 0, []
        self.workers.seen(worker)
        with self._cond:
            for task_id in ids:
                lease = self._leases.get(task_id) if isinstance(task_id, int) else None
                if lease is not None and lease.worker == worker:
                    lease.expires = expires
                    renewed += 1
                elif isinstance(task_id, int):
                    gone.append(task_id)
        return {"renewed": renewed, "gone": gone}

    def release(self, worker: str, ids: list[int]) -> int:
        """Take back tasks a stopping worker never started; they cost it no attempt."""
        released = 0
        with self._cond:
            for task_id in ids:
                lease = self._leases.get(task_id) if isinstance(task_id, int) else None
                if lease is not None and lease.worker == worker:
                    self._leases.drop(task_id)
                    self.robots.ended(task_id)
                    self._gate.done(lease.host, None, self._clock())
                    self._attempts[task_id] -= 1
                    self._frontier.put_back(task_id)
                    released += 1
            self._cond.notify_all()
        return released

    # --- called by the master loop ---
    def complete(self, task_id: int, worker: str, answer: Answer = ANY_SUCCESS) -> bool:
        """Mark ``task_id`` final if ``answer`` may end it (``fencing``); False when it is
        ignored: the URL was already final, or a failure came from a holder whose lease is
        not the live one. ``answer`` tells the host gate whether the host is overloaded."""
        self.workers.seen(worker)
        with self._cond:
            if self._frontier.state[task_id] == FINAL:
                return False
            live = self._leases.get(task_id)
            holder, token = (live.worker, live.token) if live is not None else (None, None)
            if not accepts(answer, worker, holder, token):
                return False
            self._frontier.finish(task_id)
            lease = self._leases.drop(task_id)
            self.robots.ended(task_id)
            if lease is not None:
                self._gate.done(lease.host, answer, self._clock(), lease.serial)
                if self._gate.active or self.robots.enabled:
                    self._cond.notify_all()  # the host (or origin) may take another lease now
            return True

    def _next_ready_in(self, now: float) -> float | None:
        """Seconds until a held-back host or backed-off origin may take a lease again."""
        times = [t for t in (self._gate.next_ready_in(now), self.robots.next_ready_in(now)) if t]
        return min(times) if times else None

    def expire(self) -> list[int]:
        """Requeue expired leases; return the ids that had no attempts left (now final, lost)."""
        now = self._clock()
        lost: list[int] = []
        with self._cond:
            expired = [t for t, lease in self._leases.items() if lease.expires <= now]
            for task_id in expired:
                lease = self._leases.drop(task_id)
                if lease is not None:  # it is: ``expired`` was taken under the same lock
                    self._gate.done(lease.host, None, now)
                self.robots.ended(task_id)
                if self._spent(task_id):
                    self._frontier.finish(task_id)
                    lost.append(task_id)
                else:
                    self._frontier.put_back(task_id)
            if len(expired) > len(lost):
                self._cond.notify_all()
        return lost

    def take_given_up(self) -> list[tuple[int, str, GivenUp]]:
        """(id, host, why) of tasks ended unleased, their host given up."""
        with self._cond:
            taken, self._unleased = self._unleased, []
        return taken

    def attempts(self, task_id: int) -> int:
        return self._attempts[task_id]  # how many times it was leased: the row's ``leases``

    def robots_held_back(self) -> int:
        """Origins held back for an unavailable robots.txt (``RobotsBoard.held_back``)."""
        with self._cond:
            return self.robots.held_back(self._clock())

    def leased(self) -> int:
        return len(self._leases)  # no lock needed for a count

    def finish(self) -> None:
        """The run is over: every get() from now on says so. (The verdicts' spool stays
        open: a late worker may still ask for one; it goes with the process.)"""
        with self._cond:
            self._over = True
            self._cond.notify_all()

    def drain(self) -> None:
        """Stop handing out work (a stop was asked for); answers are still taken."""
        with self._cond:
            self._draining = True

    # --- host affinity (per-host stores) ---
    def prefer_hosts(self, wanted: Callable[[int], str | None], wait: float) -> None:
        """Lease a task whose stored file only one host holds (``wanted(task_id)``, its
        ``--host-id``) to a worker of that host, or to any once none came for ``wait`` s."""
        self._affinity = HostAffinity(self._urls, self.workers, wanted, wait, self._clock())

    def _kept(self) -> int:
        return self._affinity.pending if self._affinity is not None else 0

    def _lease(self, worker: str, count: int, room: int) -> list[str]:
        now = self._clock()
        expires = now + self._lease_seconds
        tasks = []
        if self._affinity is None:
            picked = self._frontier.take(count, now, room)
        else:
            picked = self._affinity.pick(self._frontier, worker, count, now, room)
        for task_id, url in picked:
            host = "" if self._frontier.unpaced(task_id, url, now) else host_of(url)
            if host in self._gate.given_up:  # final now, unleased: ``take_given_up``
                self._frontier.state[task_id] = FINAL
                self.robots.ended(task_id)
                self._unleased.append((task_id, host, self._gate.given_up[host]))
                continue
            # "": no request (a reuse, or robots.txt blocks it): not paced, not counted
            serial = self._gate.lease(host, now) if host else 0
            attempt = min(self._attempts[task_id] + 1, 255)
            self._attempts[task_id] = attempt
            token = self._tokens[task_id] = min(self._tokens[task_id] + 1, MAX_TOKEN)
            self._frontier.state[task_id] = LEASED
            self._leases.add(task_id, Lease(worker, expires, host, token, serial))
            task = Task(task_id, url, attempt, token=token, robots=self.robots.verdict_id(url, now))
            tasks.append(encode_task(task, self._stored_copy(task_id)))
        return tasks
