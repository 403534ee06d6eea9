"""The lease board's clock: monotonic time during which the master was running.

A lease expires when its holder has not renewed it (nor answered) for ``--lease-seconds``
of this clock. While the master process itself does not run (SIGSTOP, the machine
suspended, a host frozen for a snapshot), no worker can renew anything: that time is not
counted. Until 2026-12-01 a master stopped for longer than a lease expired, on waking,
every lease whose renewal or answer was still waiting in its sockets, before reading
them: with ``--max-attempts 1`` URLs already answered ended ``worker_lost``, their images
on disk and named by no row (a fresh user's, SIGSTOP for 12 s).

A jump of more than ``STALL`` seconds between two reads is taken for such a stop: the
master loop reads the clock at least every 0.5 s (``run.TICK``), and the server threads
at every call. A loop held up longer by its own work (a slow fsync) counts as stopped
too, which only lets leases run that long more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

STALL = 5.0  # seconds between two reads of the clock beyond which the master was stopped


class LiveClock:
    """A callable clock (seconds, monotonic) that leaves out the times the process was
    stopped. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last = clock()
        self._stopped = 0.0  # seconds left out so far

    def __call__(self) -> float:
        with self._lock:
            now = self._clock()
            if now - self._last > STALL:
                self._stopped += now - self._last
            self._last = max(self._last, now)
            return now - self._stopped

    @property
    def stopped(self) -> float:
        """Seconds left out so far (the master was not running)."""
        return self._stopped
