"""The queue of leased tasks a worker's download threads take from, and its *room*: how
many more tasks a thread would start at once (threads waiting, less tasks queued).

The master leases a task of a host whose requests must be spaced (``--host-delay``, a
Crawl-delay, a 429/503 backoff) only into that room (``frontier.Frontier.take``). A
task queued behind others starts when a thread is free, however late: its request then
reached the host together with the next one, which the master had leased a spacing
later, to an idle thread here or on another worker. The leases were spaced; the
requests were not. A ``get`` that held such a task back for want of room answers at
once (``"room": true``), and the worker asks again as soon as a thread is free: waiting
out the poll instead left threads idle (a run over 100 hosts under ``--host-delay
0.2`` took 26 s instead of 4.5).

A host that answers 429 or 503 (``back_off``) is backed off by the master from then on;
its tasks queued here before that answer are not started but *handed back*
(``handed_back``, released to the master by the comms thread), so that the master's
backoff, and its giving the host up after 8 such answers, reach them too. Before, every
queued URL of such a host was still asked for, each with its retries. So, once, is a
task that reaches it within the answer's Retry-After (1 s without one; a timeout with
no answer too): leased before the master had the answer, it crossed it on the way.
What a host's backoff leaves here is dropped once it can matter no more (its tasks taken,
its hold over): until 2026-12-02 it was kept for the run, ~200 bytes a host backed off.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from crawler import constants as c
from crawler.exceptions import UsageError
from crawler.protocol import Task
from crawler.urls import host_of

T = TypeVar("T")
# Seconds a task may take from the master's lease to this worker, while the 429/503
# answer that held its host was on its way back (a busy master answers in well under).
CROSSING_S = 10.0
PRUNE_AT = 1024  # hosts backed off before the first look for those that can be forgotten


class TaskLane:
    """``SimpleQueue`` of tasks (None: a thread's signal to end) that counts its waiters
    and hands back the tasks of a host backed off after they were queued."""

    def __init__(self) -> None:
        # SimpleQueue: implemented in C, so a put or a get costs no Python-level lock and
        # condition (queue.Queue's), which 16 threads paid several times per URL.
        self._queue: queue.SimpleQueue[tuple[int, Task | None]] = queue.SimpleQueue()
        self._order = itertools.count()  # each put, and each back_off, takes the next
        self._backed_off: dict[str, int] = {}  # host -> tasks put before this are handed back
        self._asked_until: dict[str, float] = {}  # host -> end of its Retry-After (monotonic)
        self._crossed: dict[int, float] = {}  # task id -> the hold it was handed back in
        self.handed_back: queue.SimpleQueue[int] = queue.SimpleQueue()  # task ids
        self._idle = 0  # threads waiting in get()
        self._lock = threading.Lock()
        # Every order up to the watermark is finished: a back-off, or a task taken and
        # checked (``_stale``); those finished above it wait in ``_finished``.
        self._watermark = -1
        self._finished: set[int] = set()
        self._prune_at = PRUNE_AT

    def put(self, task: Task | None) -> None:
        order = next(self._order)
        try:
            self._queue.put((order, task))
        except BaseException:  # MemoryError: an order never taken would hold the watermark
            with self._lock:
                self._finish(order)
            raise

    def get(self) -> Task | None:
        """The next task to start, waiting for one as an idle thread."""
        with self._lock:
            self._idle += 1
        order = None
        try:
            while True:
                order, task = self._queue.get()
                if task is None or not self._stale(order, task):
                    return task
                self.handed_back.put(task.id)
                with self._lock:
                    self._finish(order)
                order = None
        finally:
            with self._lock:
                self._idle -= 1
                if order is not None:
                    self._finish(order)

    def get_nowait(self) -> Task | None:
        """The next task; raises ``queue.Empty`` when none is queued."""
        order, task = self._queue.get_nowait()
        with self._lock:
            self._finish(order)
        return task

    def _finish(self, order: int) -> None:
        """``order`` is finished (under the lock): the watermark moves up past it and
        past every finished order that follows without a gap."""
        self._finished.add(order)
        while self._watermark + 1 in self._finished:
            self._watermark += 1
            self._finished.remove(self._watermark)

    def room(self) -> int:
        """Tasks that a thread would start as soon as they arrive."""
        return max(0, self._idle - self._queue.qsize())

    def back_off(self, host: str, asked: float | None = None) -> None:
        """``host`` answered 429/503 (or not at all): hand back its tasks queued until
        now, and, once each, those that arrive within the ``asked`` seconds of its
        Retry-After (BACKOFF_START without one), at most ``CROSSING_S``: leased before
        the master had that answer, they crossed it on the
        way (a second request 10 ms after a 503 asking for 3 s, in a loaded test run,
        2026-12-01). Longer is the master's to hold: a master that never took the
        answer (a lease already expired: fencing) kept leasing a task this worker
        handed back for the whole Retry-After, a day (a review's)."""
        with self._lock:
            self._backed_off[host] = order = next(self._order)
            self._finish(order)
            # without a Retry-After: the master's first backoff (a fresh user's: the
            # host's next URLs, leased as its 503 was on the way, went 16 ms after it)
            hold, now = asked or c.BACKOFF_START, time.monotonic()
            self._asked_until[host] = now + min(hold, CROSSING_S)
            self._crossed = {i: end for i, end in self._crossed.items() if end > now}
            if len(self._backed_off) >= self._prune_at:
                self._prune(now)

    def _prune(self, now: float) -> None:
        """Forget the hosts whose queued tasks were all taken and whose hold is over;
        look again once as many more were backed off as are left (amortized O(1))."""
        # A host's entry serves the tasks put before its back-off until each was taken
        # and checked: a task taken by one thread may be checked after a later one (two
        # reviews': a bound of the latest task taken, then of those being checked, each
        # forgot a host whose earlier task was still on its way to the check).
        done = self._watermark + 1
        self._backed_off = {h: o for h, o in self._backed_off.items() if o > done}
        self._asked_until = {h: end for h, end in self._asked_until.items() if end > now}
        self._prune_at = max(PRUNE_AT, 2 * len(self._backed_off))

    def _stale(self, order: int, task: Task) -> bool:
        if not self._backed_off and not self._asked_until:
            return False
        host = host_of(task.url)
        # Under the lock: back_off rebuilds these dicts, and a download thread adding to
        # one as it did could end it with "dictionary changed size during iteration".
        with self._lock:
            if order < self._backed_off.get(host, -1):
                return True
            until = self._asked_until.get(host)
            if until is None or time.monotonic() >= until or self._crossed.get(task.id) == until:
                # Once a hold: a task the master leases again at once makes no request (a
                # stored image reused, robots.txt silent), and was handed back over and
                # over, 17,000 round trips a second in a review's simulation.
                return False
            self._crossed[task.id] = until
            return True


def no_answer(row: dict[str, Any]) -> bool:
    """Did the host not answer at all (a timeout before any status)? Such a host is
    backed off as one answering 429/503 is: its queued tasks go back to the master."""
    return row.get("status") == c.TIMEOUT and row.get("http_status") is None


def drained(pending: queue.SimpleQueue[T] | queue.Queue[T]) -> list[T]:
    """Everything ``pending`` holds now, without waiting."""
    items = []
    while True:
        try:
            items.append(pending.get_nowait())
        except queue.Empty:
            return items


def start_threads(
    loop: Callable[[], None], count: int, what: str = "download"
) -> list[threading.Thread]:
    """Start ``count`` threads named ``what-N`` running ``loop`` (daemons: a stop ends
    download threads with a None each on the lane). UsageError, one line, at the
    system's limit on threads (``ulimit -u``): it was a traceback from the worker."""
    threads = [threading.Thread(target=loop, name=f"{what}-{i}", daemon=True) for i in range(count)]
    for started, thread in enumerate(threads):
        try:
            thread.start()
        except RuntimeError as exc:
            why = f"cannot start {what} thread {started + 1} of {count}: {exc}"
            raise UsageError(f"{why}; lower --threads") from None
    return threads
