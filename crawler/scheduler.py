"""The master's side of the queues: tasks handed out under leases, results collected.

The objects here live in the master process and are what the registered callables
``get_task_queue``, ``get_result_queue`` and ``get_run_control`` return. Workers reach
them through manager proxies; every method takes and returns plain data (strings,
numbers, lists, dicts) so that the wire format need not be pickle.

A task that ``get`` returns is *leased* to the worker that asked, not gone: the lease
is recorded before ``get`` returns, so a worker that dies holding tasks (or while its
``get`` is in flight) loses nothing. Expired leases go back to the queue; a URL leased
``max_attempts`` times without an answer ends as ``worker_lost``.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crawler.politeness import HostGate, HostLimits, host_of

TODO, LEASED, FINAL = 0, 1, 2  # task states
MAX_BATCH = 500  # tasks per get(), and a sane cap on what a worker may ask for
SCAN_LIMIT = 5000  # tasks one get() may look at (and hold back) before it gives up
NO_LIMITS = HostLimits()
MAX_WAIT = 2.0  # seconds a get() may block on the server: keeps server threads short-lived


@dataclass
class Lease:
    worker: str
    expires: float
    host: str


@dataclass
class WorkerSeen:
    info: dict
    last_seen: float
    told_over: bool = False
    left: bool = False


class TaskBoard:
    """Pending tasks, leases and the run's end, shared by server threads and the master loop.

    Per task it keeps two bytes (state, attempts): tasks are handed out in id order by a
    cursor, so nothing is queued per task except those put back (expired or released).
    """

    def __init__(
        self,
        urls: Sequence[str],
        final: bytearray | None,
        lease_seconds: float,
        max_attempts: int,
        clock: Callable[[], float] = time.monotonic,
        hint: Callable[[int], dict | None] = lambda task_id: None,
        limits: HostLimits = NO_LIMITS,
    ) -> None:
        self._urls = urls
        self._gate = HostGate(limits)
        self._hint = hint
        count = len(urls)
        self._state = bytearray(final) if final is not None else bytearray(count)
        self._todo = self._state.count(TODO)  # tasks waiting to be handed out
        self._cursor = 0  # tasks below it were handed out at least once (or were final)
        self._requeued: deque[int] = deque()  # handed out, then put back
        self._leases: dict[int, Lease] = {}
        self._attempts = bytearray(count)
        self._lease_seconds = lease_seconds
        self._max_attempts = min(max_attempts, 255)
        self._clock = clock
        self._cond = threading.Condition()
        self._over = False
        self._draining = False  # stop handing out work, keep taking answers
        self.workers: dict[str, WorkerSeen] = {}

    # --- called by workers, through the proxies ---
    def get(self, worker: str, max_items: int, timeout: float) -> dict:
        """Lease up to ``max_items`` tasks to ``worker``, waiting up to ``timeout`` for some."""
        deadline = self._clock() + max(0.0, min(float(timeout), MAX_WAIT))
        count = max(1, min(int(max_items), MAX_BATCH))
        with self._cond:
            self._seen(worker)
            while True:
                if self._over:
                    self.workers[worker].told_over = True
                    return {"tasks": [], "over": True}
                if self._draining:
                    return {"tasks": [], "over": False}
                tasks = self._lease(worker, count) if self._todo else []
                remaining = deadline - self._clock()
                if tasks or remaining <= 0:
                    return {"tasks": tasks, "over": False}
                ready_in = self._gate.next_ready_in(self._clock()) if self._todo else None
                self._cond.wait(remaining if ready_in is None else min(remaining, ready_in))

    def renew(self, worker: str, ids: list[int]) -> int:
        """Extend the leases ``worker`` still holds; returns how many were extended."""
        expires = self._clock() + self._lease_seconds
        renewed = 0
        with self._cond:
            self._seen(worker)
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
                    self._put_back(task_id)
                    released += 1
            self._cond.notify_all()
        return released

    def hello(self, worker: str, info: dict) -> None:
        with self._cond:
            self.workers[worker] = WorkerSeen(info, self._clock())

    def bye(self, worker: str) -> None:
        with self._cond:
            if worker in self.workers:
                self.workers[worker].left = True

    # --- called by the master loop ---
    def complete(self, task_id: int, worker: str, http_status: int | None = None) -> bool:
        """Mark ``task_id`` final; False when it already was (a late or repeated answer).

        The first answer wins, whoever holds the lease now: a slow worker whose lease
        expired still delivers a good result, and the copy handed out again is skipped.
        ``http_status`` tells the host gate whether the host is overloaded.
        """
        with self._cond:
            self._seen(worker)
            if self._state[task_id] == FINAL:
                return False
            if self._state[task_id] == TODO:
                self._todo -= 1  # answered late by an earlier holder while it waited
            self._state[task_id] = FINAL
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
                    self._state[task_id] = FINAL
                    lost.append(task_id)
                else:
                    self._put_back(task_id)
            if len(expired) > len(lost):
                self._cond.notify_all()
        return lost

    def attempts(self, task_id: int) -> int:
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
        with self._cond:
            self._draining = True

    def last_activity(self, since: float) -> float:
        """When a worker last called in (``since`` if none has yet)."""
        with self._cond:
            return max([since, *(s.last_seen for s in self.workers.values())])

    def active_workers(self, within: float) -> list[str]:
        now = self._clock()
        with self._cond:
            return [
                w for w, s in self.workers.items() if not s.left and now - s.last_seen <= within
            ]

    def all_told(self, within: float) -> bool:
        """True when every recently seen worker has been told the run is over or has left."""
        now = self._clock()
        with self._cond:
            return all(
                s.told_over or s.left or now - s.last_seen > within for s in self.workers.values()
            )

    def _lease(self, worker: str, count: int) -> list[str]:
        now = self._clock()
        expires = now + self._lease_seconds
        tasks = []
        for task_id, url in self._take(count, now):
            host = host_of(url)
            self._gate.lease(host, now)
            attempt = min(self._attempts[task_id] + 1, 255)
            self._attempts[task_id] = attempt
            self._state[task_id] = LEASED
            self._leases[task_id] = Lease(worker, expires, host)
            task = {"id": task_id, "url": url, "attempt": attempt}
            have = self._hint(task_id)
            if have is not None:
                task["have"] = have
            tasks.append(json.dumps(task))
        return tasks

    def _take(self, count: int, now: float) -> list[tuple[int, str]]:
        """Up to ``count`` tasks to hand out: held-back ones whose host is free now, those
        put back, then the next in order; a task whose host must wait is held back."""
        picked: list[tuple[int, str]] = []
        gate, planned = self._gate, Counter[str]()
        for host, held in gate.ready(now):
            while held and len(picked) < count and self._fits(host, planned, now):
                task_id = held.popleft()
                if self._state[task_id] == TODO:
                    picked.append((task_id, self._urls[task_id]))
                    planned[host] += 1
            if not held:
                del gate.waiting[host]
        while self._requeued and len(picked) < count:
            task_id = self._requeued.popleft()
            if self._state[task_id] == TODO:
                self._consider(task_id, self._urls[task_id], picked, planned, now)
        scanned, total = 0, len(self._state)
        while self._cursor < total and len(picked) < count and scanned < SCAN_LIMIT:
            first = self._cursor
            last = min(total, first + count - len(picked))
            for task_id, url in zip(range(first, last), self._urls_of(first, last), strict=True):
                if self._state[task_id] == TODO:
                    self._consider(task_id, url, picked, planned, now)
            scanned, self._cursor = scanned + last - first, last
        self._todo -= len(picked)
        return picked

    def _consider(
        self, task_id: int, url: str, picked: list, planned: Counter[str], now: float
    ) -> None:
        if not self._gate.active:
            picked.append((task_id, url))
            return
        host = host_of(url)
        if self._fits(host, planned, now):
            picked.append((task_id, url))
            planned[host] += 1
        else:
            self._gate.hold(host, task_id)

    def _fits(self, host: str, planned: Counter[str], now: float) -> bool:
        """May ``host`` take one more lease now, counting those picked in this call?"""
        gate = self._gate
        if not planned[host]:
            return gate.allowed(host, now)
        cap = gate.limits.per_host
        return not gate.spaced(host) and (not cap or gate.leased[host] + planned[host] < cap)

    def _urls_of(self, first: int, last: int) -> list[str]:
        batch = getattr(self._urls, "urls", None)  # TaskStore reads a run of ids at once
        if batch is not None:
            return batch(first, last)
        return [self._urls[i] for i in range(first, last)]

    def _put_back(self, task_id: int) -> None:
        self._state[task_id] = TODO
        self._todo += 1
        self._requeued.append(task_id)

    def _seen(self, worker: str) -> None:
        seen = self.workers.get(worker)
        if seen is None:
            self.workers[worker] = WorkerSeen({}, self._clock())
        else:
            seen.last_seen = self._clock()


class TaskQueue:
    """What ``get_task_queue`` serves: leasing ``get``, ``renew`` (heartbeats), ``release``."""

    def __init__(self, board: TaskBoard) -> None:
        self._board = board

    def get(self, worker: str, max_items: int = 1, timeout: float = 1.0) -> dict:
        return self._board.get(str(worker), max_items, timeout)

    def renew(self, worker: str, ids: list) -> int:
        return self._board.renew(str(worker), list(ids))

    def release(self, worker: str, ids: list) -> int:
        return self._board.release(str(worker), list(ids))


class ResultQueue:
    """What ``get_result_queue`` serves: ``put`` a batch of status strings, one per URL."""

    def __init__(self, inbox: queue.Queue) -> None:
        self._inbox = inbox

    def put(self, worker: str, results: list) -> int:
        self._inbox.put((str(worker), [r for r in results if isinstance(r, str)]))
        return len(results)


class RunControl:
    """What ``get_run_control`` serves: the handshake that hands the run's policy to a worker."""

    def __init__(self, board: TaskBoard, run_info: dict) -> None:
        self._board = board
        self._run_info = run_info

    def hello(self, worker: str, info: dict) -> dict:
        self._board.hello(str(worker), info if isinstance(info, dict) else {})
        return self._run_info

    def bye(self, worker: str) -> bool:
        self._board.bye(str(worker))
        return True
