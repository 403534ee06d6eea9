"""Leases: tasks handed to workers under a time limit, answers matched to them.

A task that ``get`` returns is *leased* to the worker that asked, not gone: the lease
is recorded before ``get`` returns, so a worker that dies holding tasks (or while its
``get`` is in flight) loses nothing. A worker renews the leases it holds (heartbeats);
an expired lease goes back to the frontier; a URL leased ``max_attempts`` times without
an answer ends as ``worker_lost``. A stopping worker releases what it never started,
at no cost in attempts.

The ``LeaseBoard`` is shared by the server threads (``get``, ``renew``, ``release``,
through ``endpoints``) and the master loop (``complete``, ``expire``): one lock guards
the frontier, the leases and the per-host gate together.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from crawler.config import HostLimits
from crawler.master.affinity import HostAffinity
from crawler.master.frontier import LEASED, Frontier
from crawler.master.politeness import HostGate
from crawler.master.workers import WorkerRegistry
from crawler.protocol import encode_task
from crawler.urls import host_of

MAX_BATCH = 500  # tasks per get(), and a sane cap on what a worker may ask for
NO_LIMITS = HostLimits()
MAX_WAIT = 2.0  # seconds a get() may block on the server: keeps server threads short-lived


@dataclass
class Lease:
    worker: str
    expires: float  # clock time
    host: str


def _no_stored_copy(task_id: int) -> dict[str, Any] | None:
    return None


class LeaseBoard:
    """Pending tasks, leases and the run's end; per task two bytes (state, attempts)."""

    def __init__(  # noqa: PLR0913  (the board's settings, all from MasterConfig and Plan)
        self,
        urls: Sequence[str],
        final: bytearray | None,
        lease_seconds: float,
        max_attempts: int,
        clock: Callable[[], float] = time.monotonic,
        stored_copy: Callable[[int], dict[str, Any] | None] = _no_stored_copy,
        limits: HostLimits = NO_LIMITS,
    ) -> None:
        """``stored_copy(task_id)``: what a worker needs to reuse an earlier run's image
        (``plan.Plan.stored_copy``), sent with the task."""
        self._gate = HostGate(limits)
        self._frontier = Frontier(urls, final, self._gate)
        self._frontier_urls = urls
        self._stored_copy = stored_copy
        self._leases: dict[int, Lease] = {}
        self._attempts = bytearray(len(urls))
        self._lease_seconds = lease_seconds
        self._max_attempts = min(max_attempts, 255)
        self._clock = clock
        self._cond = threading.Condition()
        self._over = False
        self._draining = False  # stop handing out work, keep taking answers
        self.workers = WorkerRegistry(clock)
        self._affinity: HostAffinity | None = None  # see prefer_hosts

    # --- called by workers, through the endpoints ---
    def get(self, worker: str, max_items: int, timeout: float) -> dict:
        """Lease up to ``max_items`` tasks to ``worker``, waiting up to ``timeout`` seconds
        (at most MAX_WAIT) for some. Returns ``{"tasks": [task messages], "over": bool}``."""
        deadline = self._clock() + max(0.0, min(float(timeout), MAX_WAIT))
        count = max(1, min(int(max_items), MAX_BATCH))
        frontier = self._frontier
        with self._cond:
            while True:
                self.workers.seen(worker, told_over=self._over)
                if self._over or self._draining:
                    return {"tasks": [], "over": self._over}
                tasks = self._lease(worker, count) if frontier.todo or self._kept() else []
                remaining = deadline - self._clock()
                if tasks or remaining <= 0:
                    return {"tasks": tasks, "over": False}
                ready_in = self._gate.next_ready_in(self._clock()) if frontier.todo else None
                self._cond.wait(remaining if ready_in is None else min(remaining, ready_in))

    def renew(self, worker: str, ids: list[int]) -> int:
        """Extend the leases ``worker`` still holds; returns how many were extended."""
        expires = self._clock() + self._lease_seconds
        renewed = 0
        self.workers.seen(worker)
        with self._cond:
            for task_id in ids:
                lease = self._leases.get(task_id) if isinstance(task_id, int) else None
                if lease is not None and lease.worker == worker:
                    lease.expires = expires
                    renewed += 1
        return renewed

    def release(self, worker: str, ids: list[int]) -> int:
        """Take back tasks a stopping worker never started; they cost it no attempt."""
        released = 0
        with self._cond:
            for task_id in ids:
                lease = self._leases.get(task_id) if isinstance(task_id, int) else None
                if lease is not None and lease.worker == worker:
                    del self._leases[task_id]
                    self._gate.done(lease.host, None, self._clock())
                    self._attempts[task_id] -= 1
                    self._frontier.put_back(task_id)
                    released += 1
            self._cond.notify_all()
        return released

    # --- called by the master loop ---
    def complete(self, task_id: int, worker: str, http_status: int | None = None) -> bool:
        """Mark ``task_id`` final; False when it already was (a late or repeated answer).

        The first answer wins, whoever holds the lease now: a slow worker whose lease
        expired still delivers a good result, and the copy handed out again is skipped.
        ``http_status`` tells the host gate whether the host is overloaded.
        """
        self.workers.seen(worker)
        with self._cond:
            if not self._frontier.finish(task_id):
                return False
            lease = self._leases.pop(task_id, None)
            if lease is not None:
                self._gate.done(lease.host, http_status, self._clock())
                if self._gate.active:
                    self._cond.notify_all()  # the host may take another lease now
            return True

    def expire(self) -> list[int]:
        """Requeue expired leases; return the ids that had no attempts left (now final, lost)."""
        now = self._clock()
        lost: list[int] = []
        with self._cond:
            expired = [t for t, lease in self._leases.items() if lease.expires <= now]
            for task_id in expired:
                self._gate.done(self._leases.pop(task_id).host, None, now)
                if self._attempts[task_id] >= self._max_attempts:
                    self._frontier.finish(task_id)
                    lost.append(task_id)
                else:
                    self._frontier.put_back(task_id)
            if len(expired) > len(lost):
                self._cond.notify_all()
        return lost

    def attempts(self, task_id: int) -> int:
        """How many times ``task_id`` was leased (the manifest's ``leases``)."""
        return self._attempts[task_id]

    def leased(self) -> int:
        with self._cond:
            return len(self._leases)

    def finish(self) -> None:
        """The run is over: every get() from now on says so."""
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
        self._affinity = HostAffinity(
            self._frontier_urls, self.workers, wanted, wait, self._clock()
        )

    def _kept(self) -> int:
        return self._affinity.pending if self._affinity is not None else 0

    def _pick(self, worker: str, count: int, now: float) -> list[tuple[int, str]]:
        if self._affinity is None:
            return self._frontier.take(count, now)
        return self._affinity.pick(self._frontier, worker, count, now)

    def _lease(self, worker: str, count: int) -> list[str]:
        now = self._clock()
        expires = now + self._lease_seconds
        tasks = []
        for task_id, url in self._pick(worker, count, now):
            host = host_of(url)
            self._gate.lease(host, now)
            attempt = min(self._attempts[task_id] + 1, 255)
            self._attempts[task_id] = attempt
            self._frontier.state[task_id] = LEASED
            self._leases[task_id] = Lease(worker, expires, host)
            tasks.append(encode_task(task_id, url, attempt, self._stored_copy(task_id)))
        return tasks
