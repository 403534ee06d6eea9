"""How long a worker's comms thread waits, and for what.

Every get and every put costs both processes CPU: two XML-RPC messages, and on the
master a journal write and fsync, the report's and the progress's updates, about 0.6 ms
a put besides its rows. So while every download thread is busy, results are gathered
into one put (``gather``): up to ``GATHER`` seconds, until half the threads' worth is
ready, or at once when a thread has nothing to do (its next task comes with the next
get, which follows the put). At 5 ms a put carried ~3 rows and the master took 10 % of
a 2-core run's CPU; a fixed 50 ms made a worker of 1-8 threads on fast downloads up to
twice as slow, its threads idle until the wait ran out (a review's, 2026-12-02).

A get that gave no task (``after_get``): a spaced host's task waits for a thread to be
free ("room"); with none left to hand out ("none_left", the end of a run) the master has
nothing before this worker's own results, so it waits for one of them. When it holds
none, the master's count of its leases still holds its last put's, not taken in yet, or
a result the master refused (its lease then lasts until it expires): it asks again
after ``POLL_PROBE``, then twice as long each time, up to ``POLL_BUSY``.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from crawler.worker.found import FoundVerdicts
from crawler.worker.lane import TaskLane, drained

POLL_BUSY = 0.2  # seconds a get() may wait while this worker still holds work
POLL_IDLE = 2.0  # ... and while it holds none
POLL_PROBE = 0.02  # ... while it holds a probe: here, waiting for its verdict (found.py)
GATHER = 0.05  # seconds results gather at most, every thread busy: one put for all
GATHER_STEP = 0.005  # ... looking this often whether to stop


class Pacing:
    """The comms thread's waits, over the worker's queues of results (``done``) and
    tasks (``lane``); a stop ends a gather or a pause at once, a result's wait within
    its 0.2 s at most."""

    def __init__(
        self,
        done: queue.Queue[dict],
        lane: TaskLane,
        stop: threading.Event,
        found: FoundVerdicts,
        threads: int,
    ) -> None:
        self._done, self._lane, self._stop, self._found = done, lane, stop, found
        self._enough = max(1, threads // 2)  # rows worth a put of their own
        self.gather_s = GATHER  # seconds a gather lasts at most
        self._retry = POLL_PROBE
        self._first: list[dict] = []  # the result a wait took out of ``done``

    def wait_for_result(self, timeout: float) -> None:
        """Until a result is ready, ``timeout`` seconds at most. ``done`` is a
        ``queue.Queue``: a ``SimpleQueue``'s ``get`` with a timeout, interrupted by a
        signal once its time was up, waited for good (CPython 3.11 and 3.12,
        ``Modules/_queuemodule.c``: the time left, negative, is "no limit"); a worker
        stopped with SIGTERM on a loaded machine took its stop only when its next result
        came, starting queued downloads meanwhile (until 2026-12-02)."""
        if not self._first:
            try:
                self._first.append(self._done.get(timeout=timeout))
            except queue.Empty:
                return

    def results(self) -> list[dict]:
        """Every result ready, in the order they came (until 2026-12-02 the one a wait
        took went behind the others: the manifest's order, which decides which of two rows
        with the same bytes is the first, ``same_content_as``, was not the threads')."""
        rows, self._first = self._first, []
        return rows + drained(self._done)

    def gather(self) -> None:
        """More results for the next put: see the module's docstring."""
        deadline = time.monotonic() + self.gather_s
        while len(self._first) + self._done.qsize() < self._enough and not self._lane.room():
            left = deadline - time.monotonic()
            if left <= 0 or self._stop.wait(min(left, GATHER_STEP)):
                return

    def after_get(self, answer: dict[str, Any], holds: bool, probing: bool) -> None:
        """After a get's ``answer``: ``holds``, does this worker hold leases; ``probing``,
        does it fetch a robots.txt whose verdict the master awaits (see found.py)."""
        if answer.get("tasks"):
            self._retry = POLL_PROBE
            return
        if probing:
            self._found.wait(POLL_PROBE)
        none_left = answer.get("none_left") is True
        if answer.get("room") or (none_left and holds):
            self._retry = POLL_PROBE
            self.wait_for_result(POLL_BUSY)
        elif none_left:
            self._stop.wait(self._retry)
            self._retry = min(2 * self._retry, POLL_BUSY)
