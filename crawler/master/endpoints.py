"""What the master serves: the objects behind the registered callables.

``get_task_queue``, ``get_result_queue`` and ``get_run_control`` (names and exposed
methods in ``protocol.REGISTERED``) return a ``TaskQueue``, a ``ResultQueue`` and a
``RunControl``. Workers reach them through manager proxies; every method takes and
returns plain data (strings, numbers, lists, dicts), so the wire format need not be
pickle, and coerces what it is given, since a peer with the key may send anything.

They are served from before planning (workers start while the master plans): until the
lease board exists (``BoardSlot``) ``hello`` is answered, ``get`` waits out its timeout
and returns no tasks, and the other calls find no lease of the caller's.
"""

from __future__ import annotations

import queue
import threading
import time
from multiprocessing.managers import BaseManager
from typing import TYPE_CHECKING

from crawler.console import log
from crawler.master.workers import WorkerRegistry
from crawler.protocol import IDENTITY, MAX_GET_WAIT, PROTOCOL, REGISTERED, incompatible

if TYPE_CHECKING:  # served before the board exists: its module loads after the workers start
    from crawler.master.leases import LeaseBoard

NAME_SHOWN = 100  # characters of a worker's name in the log (a peer may send any string)
WARNED_MAX = 1000  # workers (or hosts) one warning names, at most: a peer may send any name

# The objects the registered callables return, set by ``server.QueueServer.start``.
served: dict[str, object] = {}


class BoardSlot:
    """Where the lease board will be once planning has made it; the worker registry is
    there from the start (``hello`` before planning ends), and the board takes it over."""

    def __init__(self, workers: WorkerRegistry) -> None:
        self.workers = workers
        self.board: LeaseBoard | None = None
        self._ready = threading.Event()

    @classmethod
    def holding(cls, board: LeaseBoard) -> BoardSlot:
        """A slot filled from the start (a board made before serving)."""
        slot = cls(board.workers)
        slot.fill(board)
        return slot

    def fill(self, board: LeaseBoard) -> None:
        """Hand the board to the endpoints: gets waiting for it go on at once."""
        self.board = board
        self._ready.set()

    def wait(self, timeout: float) -> LeaseBoard | None:
        """The board, waiting up to ``timeout`` seconds for it; None if not there yet."""
        self._ready.wait(timeout)
        return self.board


class TaskQueue:
    """What ``get_task_queue`` serves: leasing ``get``, ``renew`` (heartbeats), ``release``,
    ``robots``, the robots.txt verdicts that tasks name by id, and ``robots_found``, the
    verdicts a worker fetched for its probes (``{"id": task id, "verdict": ...}``)."""

    def __init__(self, board: LeaseBoard | BoardSlot) -> None:
        self._slot = board if isinstance(board, BoardSlot) else BoardSlot.holding(board)

    def get(
        self, worker: str, max_items: int = 1, timeout: float = 1.0, room: int | None = None
    ) -> dict:
        """``LeaseBoard.get``. Before planning ends: no tasks, after waiting up to
        ``timeout`` seconds (at most MAX_GET_WAIT) for the board; a worker is never told
        to go (it just asks again)."""
        started = time.monotonic()
        wait = max(0.0, min(float(timeout), MAX_GET_WAIT))
        board = self._slot.wait(wait)
        if board is None:
            self._slot.workers.seen(str(worker))
            return {"tasks": [], "over": False}
        left = max(0.0, wait - (time.monotonic() - started))
        return board.get(str(worker), max_items, left, room)

    def renew(self, worker: str, ids: list) -> dict:
        board = self._slot.board
        if board is None:  # nothing was leased yet: nothing is the caller's
            return {"renewed": 0, "gone": [i for i in list(ids) if isinstance(i, int)]}
        return board.renew(str(worker), list(ids))

    def release(self, worker: str, ids: list) -> int:
        board = self._slot.board
        return 0 if board is None else board.release(str(worker), list(ids))

    def robots(self, worker: str, ids: list) -> list:
        board = self._slot.board
        return [] if board is None else board.verdicts(list(ids))

    def robots_found(self, worker: str, items: list) -> int:
        board = self._slot.board
        return 0 if board is None else board.robots_found(str(worker), list(items))


class ResultQueue:
    """What ``get_result_queue`` serves: ``put`` a batch of status strings, one per URL.

    ``inbox`` is bounded: when the master falls behind, a worker's put waits
    (backpressure) rather than piling results up in memory."""

    def __init__(self, inbox: queue.Queue) -> None:
        self._inbox = inbox

    def put(self, worker: str, results: list) -> int:
        self._inbox.put((str(worker), [r for r in results if isinstance(r, str)]))
        return len(results)


class RunControl:
    """What ``get_run_control`` serves: the handshake that hands the run's policy to a worker."""

    def __init__(
        self, board: LeaseBoard | BoardSlot, run_info: dict, *, shared_store: bool = False
    ) -> None:
        """``run_info``: ``{"run_id": str, "policy": Policy.to_json()}``, known before
        planning, so that a worker's handshake never waits for it. ``shared_store``: the
        run stores into one store, not each worker's --output."""
        self._workers = board.workers
        self._shared_store = shared_store
        self._clashes: set[str] = set()  # hosts whose workers keep images in two folders
        self._renamed: set[str] = set()  # names two processes gave (warned of once)
        self._run_info = {**run_info, **IDENTITY}
        # For a worker of another protocol: no usable policy (a JSON null), which stops
        # workers of every version, ours (they check the protocol first) and older ones.
        self._refusal = {**self._run_info, "policy": "null"}
        self._turned_away: set[str] = set()

    def hello(self, worker: str, info: dict) -> dict:
        """Register the worker and answer the run's info; a worker of another protocol
        is turned away (one warning per worker) and gets no usable policy."""
        name, fields = str(worker), info if isinstance(info, dict) else {}
        other = incompatible(fields)
        if other is not None:
            self._turn_away(name, fields, other)
            return self._refusal
        given = self._workers.hello(name, fields)
        log.debug("worker %s said hello", given[:NAME_SHOWN])
        clash = None if self._shared_store else self._workers.folder_clash(given)
        if clash is not None:
            self._warn_clash(given, clash)
        if given == name:
            return self._run_info
        self._warn_renamed(name, given, fields.get("host"))
        return {**self._run_info, "name": given}

    def _warn_renamed(self, name: str, given: str, host: object) -> None:
        """Another live process says hello as ``name`` (``workers``): one warning a name
        when both give one host id, which then names two folders, maybe; else a debug
        line (each has its own --host-id already)."""
        same_host = host is not None and self._workers.host_of(name) == host
        if not same_host or name in self._renamed or len(self._renamed) >= WARNED_MAX:
            log.debug("worker %s is %s in this run", name[:NAME_SHOWN], given[:NAME_SHOWN])
            return
        self._renamed.add(name)
        log.warning(
            "two worker processes both say they are %s, host %s (containers sharing a "
            "hostname, or one restarted without a bye): the later one is %s in this run; "
            "if they keep images in folders that are not one folder, give each its own "
            "--host-id",
            name[:NAME_SHOWN],
            str(host)[:NAME_SHOWN],
            given[:NAME_SHOWN],
        )

    def _warn_clash(self, name: str, clash: tuple[str, str, str, str]) -> None:
        """Two workers of one --host-id with two folders: a rerun trusts that host's
        images, which one of them does not hold, and downloads them again into it."""
        other, other_folder, host, folder = (part[:NAME_SHOWN] for part in clash)
        if host in self._clashes or len(self._clashes) >= WARNED_MAX:
            return
        self._clashes.add(host)
        log.warning(
            "workers %s and %s both say they are host %s but keep images in different "
            "folders (%s, %s): give each folder its own --host-id, or one --output to both",
            other,
            name[:NAME_SHOWN],
            host,
            other_folder,
            folder,
        )

    def _turn_away(self, name: str, fields: dict, other: str) -> None:
        if name in self._turned_away or len(self._turned_away) >= WARNED_MAX:
            return
        self._turned_away.add(name)
        host = fields.get("host")
        where = f" (host {host[:NAME_SHOWN]})" if isinstance(host, str) else ""
        log.warning(
            "turned away worker %s%s: it runs %s, this master crawler %s (protocol %s); "
            "install the same crawler on every host",
            name[:NAME_SHOWN],
            where,
            other,
            IDENTITY["crawler"],
            PROTOCOL,
        )

    def bye(self, worker: str) -> bool:
        self._workers.bye(str(worker))
        return True


def _get_task_queue() -> object:
    return served["task_queue"]


def _get_result_queue() -> object:
    return served["result_queue"]


def _get_run_control() -> object:
    return served["run_control"]


_CALLABLES = {
    "get_task_queue": _get_task_queue,
    "get_result_queue": _get_result_queue,
    "get_run_control": _get_run_control,
}


class MasterManager(BaseManager):
    """The master's side: registered with module-level callables (never lambdas)."""


for _name, _methods in REGISTERED.items():
    MasterManager.register(_name, callable=_CALLABLES[_name], exposed=_methods)
