"""What a worker knows of its own leases, so that it never works on a dead one.

The master answers every renewal with the leases that are no longer this worker's
(answered elsewhere, or expired and handed to another worker). A download thread asks
``may_start`` before it starts a queued task: a task whose lease is gone is dropped, and
so is every task once the master has not confirmed this worker's leases for a whole
lease period (a partition, a frozen process, a dead master): by then they have expired
on the master and been handed out again. A view older than half a lease period makes
the thread ask the comms loop for a renewal first (after a SIGSTOP, say) and wait for it.

A URL can be leased to the same worker twice: its first lease expired while the worker
was frozen, with the download in flight, and the master handed it out again, to this
worker. Leases are therefore told apart by their fencing token (``HeldLeases``), and a
new lease takes its id out of the gone ones (``LeaseView.leased``). Until 2026-12-01
both went by id: the new lease was dropped as gone, unasked, and the stale download's
result ended the renewals of the new one; with ``--max-attempts 2`` such URLs ended
``worker_lost`` without a request (a fresh user's test).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable


class LeaseView:
    """Gone leases and the time of the master's last confirmation; thread-safe."""

    def __init__(self, lease_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._lease = lease_seconds
        self._clock = clock
        self._cond = threading.Condition()
        self._confirmed = clock()  # when the master last confirmed the leases we hold
        self._gone: set[int] = set()
        # (id, fencing token) not started here: the comms loop forgets those leases
        self._dropped: list[tuple[int, int | None]] = []
        self._wanted = False  # a thread waits for a renewal

    def confirm(self, gone: Iterable[int]) -> None:
        """The master renewed our leases just now, except ``gone``."""
        with self._cond:
            self._gone.update(gone)
            self._confirmed = self._clock()
            self._wanted = False
            self._cond.notify_all()

    def leased(self, task_id: int) -> None:
        """The master leased ``task_id`` to us again: a lease of it that went before is
        not this one. (The comms loop asks for tasks and renewals in turn, so a "gone"
        for the old lease always comes before the new lease, never after.)"""
        with self._cond:
            self._gone.discard(task_id)

    def renewal_wanted(self) -> bool:
        with self._cond:
            return self._wanted

    def may_start(self, task_id: int, token: int | None = None) -> bool:
        """True if the task's lease (``token``) is still ours; False: drop it (never
        report it)."""
        with self._cond:
            if self._age() > self._lease / 2:
                self._wanted = True
                self._cond.wait_for(lambda: self._age() <= self._lease / 2, self._lease / 2)
            if task_id in self._gone or self._age() > self._lease:
                self._gone.discard(task_id)
                self._dropped.append((task_id, token))
                return False
            return True

    def expired(self) -> bool:
        """True once the master has not confirmed our leases for a whole lease period: on
        its side each of them has expired (and may be another worker's by now)."""
        with self._cond:
            return self._age() > self._lease

    def take_dropped(self) -> list[tuple[int, int | None]]:
        """(id, token) of the leases threads dropped since the last call (the comms loop
        stops renewing them: ``HeldLeases.forget_dropped``)."""
        with self._cond:
            dropped, self._dropped = self._dropped, []
            return dropped

    def _age(self) -> float:
        return self._clock() - self._confirmed


class HeldLeases(dict[int, int]):
    """The leases a worker holds and has not answered: task id -> fencing token."""

    def forget(self, ids: Iterable[int]) -> None:
        for task_id in ids:
            self.pop(task_id, None)

    def may_start(self, view: LeaseView, task_id: int, token: int | None) -> bool:
        """``view.may_start`` for a queued task, and False for one whose URL was leased
        to us again since (another token held): the new lease is queued behind it and
        is the one to run. Such a stale task is not reported dropped, which would forget
        the new lease. Until 2026-12-01 a worker thawed from SIGSTOP could start a stale
        queued task when the new lease came before a thread reached it: two requests for
        one URL (a loaded test run's)."""
        if self.get(task_id, token) != token:
            return False
        return view.may_start(task_id, token) and self.get(task_id, token) == token

    def forget_dropped(self, dropped: Iterable[tuple[int, int | None]]) -> None:
        """Forget the leases threads dropped, by (id, token): a lease of the same id
        leased to us again since is another, and stays (a review's: a thread dropped the
        stale task while the new lease came in, and the new one was forgotten)."""
        for task_id, token in dropped:
            self.answered(task_id, token)  # forgets it only while that token is held

    def answered(self, task_id: int, token: int | None) -> bool:
        """Forget the lease a result answers; False when it answers none held (its lease
        went while it ran: the master keeps such a result only if it is a success)."""
        if task_id in self and self[task_id] == token:
            del self[task_id]
            return True
        return False
