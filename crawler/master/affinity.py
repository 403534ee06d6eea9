"""Host affinity: work that needs a stored file goes to a worker of the host holding it.

With per-host stores (no ``--store``) an image lives on the host that stored it. A task
that needs that file (``--verify-stored``; ``--refresh-after`` prefers it too) is leased
to a worker of that host (its ``--host-id``, from hello) when one is active. If none
is active within ``wait`` seconds (counted from the start of serving, and since that
host's last call), any worker takes it: it downloads the image anew (or a 304 leaves
it where it is), and the manifest records the new location.

Tasks kept for a host hold the frontier state LEASED without a lease, so that a late
answer finishes them exactly once; they are handed out again from here. Not
thread-safe on its own: the ``leases.LeaseBoard`` calls it under its lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from crawler.master.frontier import FINAL, Frontier
from crawler.master.workers import WorkerRegistry


class HostAffinity:
    """Tasks kept back for the host that holds their stored file."""

    def __init__(
        self,
        urls: Sequence[str],
        workers: WorkerRegistry,
        wanted: Callable[[int], str | None],
        wait: float,
        now: float,
    ) -> None:
        """``wanted(task_id)``: the host whose store holds the task's file, or None when
        any worker will do; ``wait``: seconds a host has to turn up."""
        self._urls = urls
        self._workers = workers
        self._wanted = wanted
        self._wait = wait
        self._since = now
        self._kept: dict[str, deque[int]] = {}

    @property
    def pending(self) -> int:
        return sum(len(kept) for kept in self._kept.values())

    def pick(
        self, frontier: Frontier, worker: str, count: int, now: float, room: int
    ) -> list[tuple[int, str]]:
        """Up to ``count`` (task id, URL) for ``worker``: tasks kept for its host, then
        the frontier's (``room``: see ``Frontier.take``), keeping back those another host
        should do.

        A task whose host did not turn up in time goes back to the frontier, *rerouted*:
        another host downloads it, so it takes its turn like any download, under the
        host's politeness and after its origin's robots.txt. Before, such tasks went out
        at once, as reuses that make no request, past ``--per-host`` and each worker
        fetching robots.txt for itself."""
        host = self._workers.host_of(worker)
        self._reroute(frontier, host, now)
        picked = [
            (task_id, self._urls[task_id])
            for task_id in self._take(host, count)
            if frontier.state[task_id] != FINAL  # answered late while kept
        ]
        # One take only: the frontier plans politeness per call, and the gate learns of
        # the leases after it returns.
        fresh = frontier.take(count - len(picked), now, room) if len(picked) < count else []
        for task_id, url in fresh:
            want = self._wanted(task_id)
            if want is None or want == host or task_id in frontier.rerouted:
                picked.append((task_id, url))
            elif not self._may_come(want, now):
                frontier.reroute(task_id)  # its turn comes, paced (see above)
            else:
                frontier.keep(task_id)  # kept here, for its host
                self._kept.setdefault(want, deque()).append(task_id)
        return picked

    def _take(self, host: str | None, count: int) -> list[int]:
        """Up to ``count`` tasks kept for ``host``."""
        kept = self._kept.get(host) if host is not None else None
        out: list[int] = []
        while kept and len(out) < count:
            out.append(kept.popleft())
        if host in self._kept and not kept:
            del self._kept[host]
        return out

    def _reroute(self, frontier: Frontier, host: str | None, now: float) -> None:
        """Tasks kept for a host that did not turn up in time: back to the frontier."""
        for name in [n for n in self._kept if n != host and not self._may_come(n, now)]:
            for task_id in self._kept.pop(name):
                if frontier.state[task_id] != FINAL:  # else answered late while kept
                    frontier.reroute(task_id)

    def _may_come(self, host: str, now: float) -> bool:
        """Still worth waiting for a worker of ``host``?"""
        return now - self._since < self._wait or self._workers.host_active(host, self._wait)
