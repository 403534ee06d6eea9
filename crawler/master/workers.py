"""The live-worker registry: who has called in, when last, and who knows the run is over.

The master uses it to decide whether a run can still finish (``--idle-timeout``, local
workers gone), how long to linger so that every worker hears the run is over, and for
the progress display. Thread-safe: server threads and the master loop both use it.

The master's own local workers are marked at hello (``own``: their process group, see
``local_workers.LocalWorkers.group_of``), and count as gone once their process is
(``drop_gone``): one killed outright never says bye, and until 2026-12-01 it counted as
active for a whole ``--lease-seconds``, "workers 2" on the progress line, while its
master waited for nobody (a fresh user's).

A worker's name is ``hostname:pid``, and containers that share a hostname (host
networking: Kubernetes' ``hostNetwork``, Docker's ``--network host``) each run their
worker as the same pid, often 1. Each hello carries a token of its own process
(``instance``); a second process under a name already taken (by one that has not said
bye) is given that name with ``#2`` (``#3``, ...) for the run (``hello`` returns the
name to use, the answer tells the worker). Until 2026-12-02 such workers were one to
the master: one's bye counted the other as gone, and their rows could not be told apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from crawler.protocol import IDENTITY

# The most processes of one name told apart in a run (names up to NAME#999999, which a
# worker takes); past it the name is shared, as before 2026-12-02.
RENAMED_MAX = 999_999


@dataclass
class WorkerSeen:
    info: dict = field(default_factory=dict)  # what the worker said in hello (host, pid, ...)
    last_seen: float = 0.0  # clock time of its last call
    told_over: bool = False  # a get() answered "the run is over"
    left: bool = False  # it said bye, or (one of the master's own) its process is gone
    group: int | None = None  # one of the master's local workers: its process group

    @property
    def instance(self) -> object:
        """The token of the process that said hello (None: it sent none)."""
        return self.info.get("instance")


class WorkerRegistry:
    """Every worker that called in during this run, by name."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        own: Callable[[dict], int | None] = lambda info: None,
    ) -> None:
        """``own``: the process group of a worker's hello ``info`` when it is one of the
        master's local workers, else None."""
        self._clock = clock
        self._own = own
        self._lock = threading.Lock()
        self._seen: dict[str, WorkerSeen] = {}
        self._given: dict[tuple[str, str], str] = {}  # (name, instance) -> its name here
        self._renamed: dict[str, int] = {}  # name -> the last N given as name#N

    def seen(self, worker: str, *, told_over: bool = False) -> None:
        """``worker`` called in now (and, with ``told_over``, was told the run is over)."""
        with self._lock:
            entry = self._seen.setdefault(worker, WorkerSeen())
            entry.last_seen = self._clock()
            entry.told_over = entry.told_over or told_over

    def hello(self, worker: str, info: dict) -> str:
        """``worker`` said hello with ``info``; returns the name it has in this run (see
        the module docstring). One told the run is over stays told when
        the hello says nothing but its identity (``protocol.IDENTITY``): a ``--wait``
        worker asking whether a new run began, which the answer (this run's id) tells it
        is not. Until 2026-12-02 that hello made the master wait its whole LINGER for it,
        5 s after the last row (a fresh user's). A full hello without an ``instance`` (an
        older worker) replaces the entry of its name, as every hello did before."""
        group = self._own(info)  # outside the lock: it asks the system
        with self._lock:
            worker = self._name_for(worker, info.get("instance"))
            was = self._seen.get(worker)
            if was is not None and info.keys() <= IDENTITY.keys():  # a probe: the process
                was.last_seen = self._clock()  # is as it said before, told or not
            else:
                self._seen[worker] = WorkerSeen(info, self._clock(), group=group)
        return worker

    def _name_for(self, worker: str, instance: object) -> str:
        """``worker``, or ``worker#N`` when that name is another live process's (another
        ``instance``; one that said bye holds nothing, and its name is taken over): N = 2,
        3, ... in the order such processes said hello, each keeping its own. Constant time
        a hello, whatever came before (a review's: a search took 12 s for 8,000)."""
        if not isinstance(instance, str):
            return worker  # an older worker, or a --wait worker's probe
        given = self._given.get((worker, instance))
        if given is None:
            seen = self._seen.get(worker)
            if seen is None or seen.left or seen.info.keys() <= IDENTITY.keys():
                given = worker  # free: nobody's, gone, or only ever probed
            elif seen.instance == instance:
                given = worker
            else:
                self._renamed[worker] = number = self._renamed.get(worker, 1) + 1
                given = f"{worker}#{number}" if number <= RENAMED_MAX else worker
            self._given[(worker, instance)] = given
        return given

    def drop_gone(self, running: Callable[[int, int], bool]) -> None:
        """Count as left each of the master's local workers whose process is gone
        (``running(pid, group)`` says it is not): it will call no more."""
        with self._lock:
            own = [s for s in self._seen.values() if s.group is not None and not s.left]
        for entry in own:
            if not running(int(entry.info["pid"]), entry.group):
                entry.left = True

    def bye(self, worker: str) -> None:
        with self._lock:
            if worker in self._seen:
                self._seen[worker].left = True

    def now(self) -> float:
        """The registry's clock now (``liveclock``: the master's stopped time left out)."""
        return self._clock()

    def last_activity(self, since: float) -> float:
        """When a worker last called in (``since`` if none has yet)."""
        with self._lock:
            return max([since, *(s.last_seen for s in self._seen.values())])

    def active(self, within: float) -> list[str]:
        """Workers that called in within the last ``within`` seconds and did not leave."""
        now = self._clock()
        with self._lock:
            return [w for w, s in self._seen.items() if not s.left and now - s.last_seen <= within]

    def all_told(self, within: float) -> bool:
        """True when every recently seen worker has been told the run is over or has left."""
        now = self._clock()
        with self._lock:
            return all(
                s.told_over or s.left or now - s.last_seen > within for s in self._seen.values()
            )

    def folder_clash(self, worker: str) -> tuple[str, str, str, str] | None:
        """Another worker that gave ``worker``'s host in hello but another ``output``
        folder: (its name, its folder, the host, ``worker``'s folder), as registered (a
        ``--wait`` probe's hello names neither: a warning read from it said "host None");
        None when there is none."""
        with self._lock:
            mine = self._seen.get(worker)
            host, folder = (mine.info.get("host"), mine.info.get("output")) if mine else (0, 0)
            if not isinstance(folder, str):
                return None
            for name, seen in self._seen.items():
                other = seen.info.get("output")
                if seen.info.get("host") == host and isinstance(other, str) and other != folder:
                    return name, other, str(host), folder
        return None

    def host_of(self, worker: str) -> str | None:
        """The ``--host-id`` ``worker`` gave in hello, if any."""
        with self._lock:
            entry = self._seen.get(worker)
            host = entry.info.get("host") if entry is not None else None
        return host if isinstance(host, str) else None

    def host_active(self, host: str, within: float) -> bool:
        """Has a worker of ``host`` called in within the last ``within`` seconds (and not left)?"""
        now = self._clock()
        with self._lock:
            return any(
                s.info.get("host") == host and not s.left and now - s.last_seen <= within
                for s in self._seen.values()
            )
