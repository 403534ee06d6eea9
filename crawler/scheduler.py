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
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TODO, LEASED, FINAL = 0, 1, 2  # task states
MAX_BATCH = 500  # tasks per get(), and a sane cap on what a worker may ask for
MAX_WAIT = 2.0  # seconds a get() may block on the server: keeps server threads short-lived


@dataclass
class Lease:
    worker: str
    expires: float


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
    ) -> None:
        self._urls = urls
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
        with self._cond:
            self._seen(worker)
            while not self._todo and not self._over:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._over:
                self.workers[worker].told_over = True
                return {"tasks": [], "over": True}
            if self._draining:
                return {"tasks": [], "over": False}
            return {
                "tasks": self._lease(worker, max(1, min(int(max_items), MAX_BATCH))),
                "over": False,
            }

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
    def complete(self, task_id: int, worker: str) -> bool:
        """Mark ``task_id`` final; False when it already was (a late or repeated answer).

        The first answer wins, whoever holds the lease now: a slow worker whose lease
        expired still delivers a good result, and the copy handed out again is skipped.
        """
        with self._cond:
            self._seen(worker)
            if self._state[task_id] == FINAL:
                return False
            if self._state[task_id] == TODO:
                self._todo -= 1  # answered late by an earlier holder while it waited
            self._state[task_id] = FINAL
            self._leases.pop(task_id, None)
            return True

    def expire(self) -> list[int]:
        """Requeue expired leases; return the ids that had no attempts left (now final, lost)."""
        now = self._clock()
        lost: list[int] = []
        with self._cond:
            expired = [t for t, lease in self._leases.items() if lease.expires <= now]
            for task_id in expired:
                del self._leases[task_id]
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
        ids = self._take(count)
        expires = self._clock() + self._lease_seconds
        tasks = []
        for task_id, url in zip(ids, self._urls_of(ids), strict=True):
            attempt = min(self._attempts[task_id] + 1, 255)
            self._attempts[task_id] = attempt
            self._state[task_id] = LEASED
            self._leases[task_id] = Lease(worker, expires)
            task = {"id": task_id, "url": url, "attempt": attempt}
            have = self._hint(task_id)
            if have is not None:
                task["have"] = have
            tasks.append(json.dumps(task))
        return tasks

    def _take(self, count: int) -> list[int]:
        """Up to ``count`` ids to hand out: those put back first, then the next in order."""
        ids: list[int] = []
        while self._requeued and len(ids) < count:
            task_id = self._requeued.popleft()
            if self._state[task_id] == TODO:
                ids.append(task_id)
        state, total = self._state, len(self._state)
        while self._cursor < total and len(ids) < count:
            if state[self._cursor] == TODO:
                ids.append(self._cursor)
            self._cursor += 1
        self._todo -= len(ids)
        return ids

    def _urls_of(self, ids: list[int]) -> list[str]:
        batch = getattr(self._urls, "urls", None)  # TaskStore reads a run of ids at once
        if batch is not None and ids and ids[-1] - ids[0] == len(ids) - 1:
            return batch(ids[0], ids[-1] + 1)
        return [self._urls[i] for i in ids]

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
