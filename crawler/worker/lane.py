"""The queue of leased tasks a worker's download threads take from, and its *room*: how
many more tasks a thread would start at once (threads waiting, less tasks queued).

The master leases a task of a host whose requests must be spaced (``--host-delay``, a
Crawl-delay, a 429/503 backoff) only into that room (``frontier.Frontier.take``). A
task queued behind others starts when a thread is free, however late: its request then
reached the host together with the next one, which the master had leased a spacing
later, to an idle thread here or on another worker. The leases were spaced; the
requests were not.
"""

from __future__ import annotations

import queue
import threading

from crawler.protocol import Task


class TaskLane:
    """``SimpleQueue`` of tasks (None: a thread's signal to end) that counts its waiters."""

    def __init__(self) -> None:
        # SimpleQueue: implemented in C, so a put or a get costs no Python-level lock and
        # condition (queue.Queue's), which 16 threads paid several times per URL.
        self._queue: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._idle = 0  # threads waiting in get()
        self._lock = threading.Lock()

    def put(self, task: Task | None) -> None:
        self._queue.put(task)

    def get(self) -> Task | None:
        """The next task, waiting for one as an idle thread."""
        with self._lock:
            self._idle += 1
        try:
            return self._queue.get()
        finally:
            with self._lock:
                self._idle -= 1

    def get_nowait(self) -> Task | None:
        """The next task; raises ``queue.Empty`` when none is queued."""
        return self._queue.get_nowait()

    def room(self) -> int:
        """Tasks that a thread would start as soon as they arrive."""
        return max(0, self._idle - self._queue.qsize())
