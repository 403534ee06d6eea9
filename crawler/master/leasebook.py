"""The leases outstanding: task id -> ``Lease``, with how many each worker holds.

The count answers, in O(1), whether a worker asking for tasks when none is left to hand
out holds some of the last ones (``LeaseBoard.get``): it then gets its answer at once,
so that its results are not held up behind a wait for tasks that only those results, or
another worker's lost lease, can bring (issue 15: the end of a run).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import ItemsView
from dataclasses import dataclass

MAX_BATCH = 500  # tasks per get(), and a sane cap on what a worker may ask for (or send)


@dataclass
class Lease:
    worker: str
    expires: float  # clock time
    host: str  # "" for a task that makes no request: politeness neither holds nor counts it
    token: int  # the fencing token this lease was handed out with
    serial: int  # HostGate.lease's number: answers to leases older than a backoff are one burst


class LeaseBook:
    """The outstanding leases by task id, counted by worker. Not thread-safe: the board's
    lock guards it."""

    def __init__(self) -> None:
        self._leases: dict[int, Lease] = {}
        self._held: Counter[str] = Counter()

    def get(self, task_id: int) -> Lease | None:
        return self._leases.get(task_id)

    def add(self, task_id: int, lease: Lease) -> None:
        """Record ``lease`` as ``task_id``'s (replacing any it had)."""
        self.drop(task_id)
        self._leases[task_id] = lease
        self._held[lease.worker] += 1

    def drop(self, task_id: int) -> Lease | None:
        """Take ``task_id``'s lease off the book; None when it had none."""
        lease = self._leases.pop(task_id, None)
        if lease is not None:
            self._held[lease.worker] -= 1
        return lease

    def holds(self, worker: str) -> bool:
        """Does ``worker`` hold a lease?"""
        return self._held[worker] > 0

    def items(self) -> ItemsView[int, Lease]:
        return self._leases.items()

    def __len__(self) -> int:
        return len(self._leases)  # a dict's len is atomic: no lock needed for a count
