"""What the master serves: the objects behind the registered callables.

``get_task_queue``, ``get_result_queue`` and ``get_run_control`` (names and exposed
methods in ``protocol.REGISTERED``) return a ``TaskQueue``, a ``ResultQueue`` and a
``RunControl``. Workers reach them through manager proxies; every method takes and
returns plain data (strings, numbers, lists, dicts), so the wire format need not be
pickle, and coerces what it is given, since a peer with the key may send anything.
"""

from __future__ import annotations

import queue
from multiprocessing.managers import BaseManager

from crawler.master.leases import LeaseBoard
from crawler.protocol import REGISTERED

# The objects the registered callables return, set by ``server.QueueServer.start``.
served: dict[str, object] = {}


class TaskQueue:
    """What ``get_task_queue`` serves: leasing ``get``, ``renew`` (heartbeats), ``release``,
    ``robots``, the robots.txt verdicts that tasks name by id, and ``robots_found``, the
    verdicts a worker fetched for its probes (``{"id": task id, "verdict": ...}``)."""

    def __init__(self, board: LeaseBoard) -> None:
        self._board = board

    def get(self, worker: str, max_items: int = 1, timeout: float = 1.0) -> dict:
        return self._board.get(str(worker), max_items, timeout)

    def renew(self, worker: str, ids: list) -> dict:
        return self._board.renew(str(worker), list(ids))

    def release(self, worker: str, ids: list) -> int:
        return self._board.release(str(worker), list(ids))

    def robots(self, worker: str, ids: list) -> list:
        return self._board.verdicts(list(ids))

    def robots_found(self, worker: str, items: list) -> int:
        return self._board.robots_found(str(worker), list(items))


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

    def __init__(self, board: LeaseBoard, run_info: dict) -> None:
        self._board = board
        self._run_info = run_info

    def hello(self, worker: str, info: dict) -> dict:
        self._board.workers.hello(str(worker), info if isinstance(info, dict) else {})
        return self._run_info

    def bye(self, worker: str) -> bool:
        self._board.workers.bye(str(worker))
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
