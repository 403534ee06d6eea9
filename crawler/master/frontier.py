"""The frontier: which task is handed out next, one host's politeness permitting.

Tasks are numbered in the order the lists gave them. The frontier hands them out by a
cursor over those ids (so nothing is queued per task), after two queues that go first:
tasks held back because their host had to wait (``politeness.HostGate``) or their
origin's robots.txt probe is out (``verdicts.RobotsBoard``) once that clears, and tasks
put back (a lease expired, a stopping worker released it, robots.txt was unavailable).

Per task it keeps one byte of state. It is not thread-safe on its own: the
``leases.LeaseBoard`` calls it under its lock.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence

from crawler.master.politeness import HostGate
from crawler.master.verdicts import RobotsBoard
from crawler.urls import host_of

TODO, LEASED, FINAL = 0, 1, 2  # task states; FINAL: the task has its manifest row
SCAN_LIMIT = 5000  # tasks one take() may look at (and hold back) before it gives up
SKIP_LIMIT = 64  # held tasks of one host one take() may pass over for their origin's sake
# Held tasks of a host that one verdict's release looks at (rules read for each, under the
# board's lock: ~20 us a task for a usual robots.txt), and for how long at most (seconds:
# until 2026-12-01 50,000 tasks could hold the lock for a second, and costly rules for
# minutes); those further back wait their turn.
RELEASE_LIMIT = 50_000
RELEASE_SECONDS = 0.05
NO_ROBOTS = RobotsBoard(enabled=False)  # robots.txt not consulted: every task admitted


class Frontier:
    """Tasks waiting to be handed out, and the state of every task."""

    def __init__(
        self,
        urls: Sequence[str],
        final: bytearray | None,
        gate: HostGate,
        robots: RobotsBoard = NO_ROBOTS,
        unpaced: Callable[[int], bool] = lambda task_id: False,
    ) -> None:
        """``urls``: task id -> URL (a ``TaskStore``); ``final``: a state per task, FINAL
        for those already done (failures kept from earlier runs), or None for none;
        ``robots``: its ``admit`` is the robots.txt check, and the worker of a task it
        finds ``silent`` (robots.txt disallows it...) makes no request, as one does for a
        task ``unpaced(task_id)`` (a stored image reused): politeness holds neither back."""
        self._urls = urls
        self.gate = gate
        self._admit = robots.admit
        self._unpaced = unpaced
        self._silent = robots.silent
        self._blocking = robots.blocking
        self._ended = robots.ended
        self.rerouted: set[int] = set()  # see reroute
        # ``final`` is the plan's, handed over (10 MB for 10M URLs: not copied).
        self.state = final if final is not None else bytearray(len(urls))
        self.todo = self.state.count(TODO)  # tasks waiting to be handed out
        self._cursor = 0  # tasks below it were handed out at least once (or were final)
        self._requeued: deque[int] = deque()  # handed out, then put back
        self._room = 0  # spaced tasks the current take() may still pick
        self.short_of_room = False

    def take(self, count: int, now: float, room: int | None = None) -> list[tuple[int, str]]:
        """Up to ``count`` (task id, URL) to lease now, in frontier order; a task whose host
        must wait is held back in the gate, and so is one of a host whose leases are
        spaced (``HostGate.spaced``) past the first ``room`` (None: ``count``): the
        worker starts that many at once, and a spaced lease queued behind others there
        would start late, together with the host's next (``worker.lane``). The caller
        marks the ones it leases."""
        self._room = count if room is None else room
        self.short_of_room = False  # a spaced task was held back for want of room
        picked: list[tuple[int, str]] = []
        planned = Counter[str]()
        self._take_held(picked, planned, count, now)
        while self._requeued and len(picked) < count:
            task_id = self._requeued.popleft()
            if self.state[task_id] == TODO:
                self._consider(task_id, self._urls[task_id], picked, planned, now)
        scanned, total = 0, len(self.state)
        while self._cursor < total and len(picked) < count and scanned < SCAN_LIMIT:
            first = self._cursor = self._next_todo(self._cursor, total)
            if first == total:
                break
            last = min(total, first + count - len(picked))
            for task_id, url in zip(range(first, last), self._urls_of(first, last), strict=True):
                if self.state[task_id] == TODO:
                    self._consider(task_id, url, picked, planned, now)
            scanned, self._cursor = scanned + last - first, last
        self.todo -= len(picked)
        return picked

    def url(self, task_id: int) -> str:
        return self._urls[task_id]

    def _next_todo(self, start: int, total: int) -> int:
        """The first task from ``start`` still to hand out (``total`` if none), found at C
        speed: a rerun's tasks are mostly final already (kept from the manifest), and
        reading their URLs SCAN_LIMIT at a time would cost a get() per few thousand."""
        found = self.state.find(TODO, start)
        return total if found < 0 else found

    def unpaced(self, task_id: int, url: str, now: float) -> bool:
        """Will the task (of ``url``) most likely make no request (see ``__init__``)? The
        robots.txt rules are read only while politeness is active: they matter for
        nothing else, and run under the board's lock for every task leased."""
        reuse = self._unpaced(task_id) and task_id not in self.rerouted
        return reuse or (self.gate.active and self._silent(task_id, url, now))

    def keep(self, task_id: int) -> None:
        """Take a task out of the frontier without a lease (``affinity``: kept for its
        host); were it its origin's robots.txt probe, another task may now be."""
        self.state[task_id] = LEASED
        self._ended(task_id)

    def release_silent(self, url: str, now: float) -> None:
        """The tasks of ``url``'s host held back before its origin's robots.txt verdict
        came that it spares a request (``silent``) are held no longer: next in line, like
        tasks put back."""
        host = host_of(url)
        held = self.gate.waiting.get(host)
        if not held or self._blocking(url, now) is None:
            return  # nothing held, or a verdict that blocks nothing (most): no URL read
        kept: deque[int] = deque()
        ends, looking = time.monotonic() + RELEASE_SECONDS, True
        for count, task_id in enumerate(held):
            if looking and count % 8 == 0:  # the clock read once per 8 tasks (<= ~1 ms each)
                looking = count < RELEASE_LIMIT and time.monotonic() < ends
            silent = looking and self.state[task_id] == TODO
            if silent and self._silent(task_id, self._urls[task_id], now):
                self._requeued.append(task_id)
            else:
                kept.append(task_id)
        if kept:
            self.gate.waiting[host] = kept
        else:
            del self.gate.waiting[host]

    def reroute(self, task_id: int) -> None:
        """Put back a task kept for a host that did not come (``affinity.HostAffinity``):
        another host downloads it, so politeness and robots.txt hold it like any download,
        not like the reuse it was sent as."""
        self.rerouted.add(task_id)
        self.put_back(task_id)
        self._ended(task_id)  # were it its origin's probe, unleased: another may be

    def put_back(self, task_id: int) -> None:
        """Queue a task handed out earlier to be handed out again."""
        self.state[task_id] = TODO
        self.todo += 1
        self._requeued.append(task_id)

    def finish(self, task_id: int) -> bool:
        """Mark ``task_id`` FINAL; False when it already was."""
        if self.state[task_id] == FINAL:
            return False
        if self.state[task_id] == TODO:
            self.todo -= 1  # answered late by an earlier holder while it waited
        self.state[task_id] = FINAL
        return True

    def _take_held(
        self, picked: list[tuple[int, str]], planned: Counter[str], count: int, now: float
    ) -> None:
        """Held-back tasks first, from every host that may take a lease now."""
        gate = self.gate
        for host, held in gate.ready(now):
            skipped = 0  # tasks whose origin must wait (robots.txt): moved to the back
            while held and len(picked) < count and self._fits(host, planned, now):
                task_id = held.popleft()
                if self.state[task_id] != TODO:
                    continue
                url = self._urls[task_id]
                if self._admit(task_id, url, now):
                    picked.append((task_id, url))
                    self._plan(host, planned)
                    continue
                held.append(task_id)
                skipped += 1
                if skipped >= min(len(held), SKIP_LIMIT):
                    break
            if not held:
                del gate.waiting[host]

    def _consider(
        self, task_id: int, url: str, picked: list, planned: Counter[str], now: float
    ) -> None:
        unheld = not self.gate.active or self.unpaced(task_id, url, now)
        if unheld and self._admit(task_id, url, now):
            picked.append((task_id, url))
            return
        host = host_of(url)
        if self.gate.active and self._fits(host, planned, now) and self._admit(task_id, url, now):
            picked.append((task_id, url))
            self._plan(host, planned)
        else:
            self.gate.hold(host, task_id)

    def _plan(self, host: str, planned: Counter[str]) -> None:
        """Count a task of ``host`` picked in this call (a spaced one takes room)."""
        planned[host] += 1
        if self.gate.spaced(host):
            self._room -= 1

    def _fits(self, host: str, planned: Counter[str], now: float) -> bool:
        """May ``host`` take one more lease now, counting those picked in this call?"""
        gate = self.gate
        if self._room <= 0 and gate.spaced(host):
            self.short_of_room = True
            return False  # no thread there to start it at once
        if not planned[host] or host in gate.given_up:  # given up: none leased, all end
            return gate.allowed(host, now)
        cap = gate.limits.per_host
        return not gate.spaced(host) and (not cap or gate.leased[host] + planned[host] < cap)

    def _urls_of(self, first: int, last: int) -> list[str]:
        batch = getattr(self._urls, "urls", None)  # TaskStore reads a run of ids at once
        if batch is not None:
            return batch(first, last)
        return [self._urls[i] for i in range(first, last)]
