"""robots.txt verdicts this worker's threads fetched for the master (probes), on their way.

The master leases one URL of an origin whose robots.txt nobody has fetched yet (a
*probe*) and holds the origin's other URLs until the verdict comes back
(``master.frontier``). While a worker holds a probe, its comms thread asks for tasks
without waiting at the master (none will come for that origin before the verdict) and
waits here instead, where the verdict arrives: sent as soon as a thread found it. Until
2026-12-01 the comms thread waited at the master, 20 ms at a time, and a verdict found
meanwhile waited for that call to end (~10 ms on average, on the way to every origin's
other URLs and to a run's first result: issue 15).
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from crawler.worker.lane import drained


class FoundVerdicts:
    """Verdicts found (``put`` by download threads), taken by the comms thread."""

    def __init__(self) -> None:
        self._pending: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._arrived = threading.Event()

    def put(self, task_id: int, verdict: dict[str, Any]) -> None:
        """A probe's verdict (``robotstxt`` form), for the master."""
        self._pending.put({"id": task_id, "verdict": verdict})
        self._arrived.set()

    def take(self) -> list[dict[str, Any]]:
        """``[{"id": task id, "verdict": {...}}]``: every verdict found since the last take."""
        self._arrived.clear()  # before draining: one put after it wakes the next wait
        return drained(self._pending)

    def wait(self, timeout: float) -> None:
        """Until a verdict is found that no ``take`` has returned, or ``timeout`` s."""
        self._arrived.wait(timeout)
