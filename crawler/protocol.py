"""The master/worker protocol on ``multiprocessing.managers``.

Three callables are registered, by name: ``get_task_queue`` and ``get_result_queue``
(the names of the document the product grew from) and ``get_run_control`` (hands the
run's policy to a worker). Calls carry plain data only and the managers use the
``xmlrpclib`` serializer, so a peer holding the key can send data but never code: with
the default pickle serializer, anyone with the key could run code on the master and,
through the master, on every worker. Tasks and results are batched, so the
serializer's extra cost per call (~2x pickle) is paid once per batch.

Messages are JSON text: a task is ``{"id", "url", "attempt"}``; a result is one
manifest row's worth of fields (see ``RESULT_FIELDS``). Both are checked on receipt.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import AuthenticationError
from multiprocessing.managers import BaseManager, BaseProxy
from typing import Any, TypeVar

from crawler.constants import STATUSES
from crawler.exceptions import (
    AuthenticationFailed,
    MasterGone,
    MasterUnreachable,
)

SERIALIZER = "xmlrpclib"
TASK_METHODS = ("get", "renew", "release")
RESULT_METHODS = ("put",)
CONTROL_METHODS = ("hello", "bye")

# Result fields a worker reports, with their JSON types (None allowed for all but the first four).
RESULT_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (int,),
    "url": (str,),
    "status": (str,),
    "worker": (str,),
    "http_status": (int,),
    "error": (str,),
    "path": (str,),
    "sha256": (str,),
    "bytes": (int,),
    "width": (int,),
    "height": (int,),
    "format": (str,),
    "attempts": (int,),
    "elapsed_s": (float, int),
    "final_url": (str,),
    "content_type": (str,),
    "etag": (str,),
    "last_modified": (str,),
    "reused": (bool,),
}
REQUIRED_FIELDS = ("id", "url", "status", "worker")


# --- Messages ---
@dataclass(frozen=True)
class Have:
    """What an earlier run stored for a URL: a worker reuses or revalidates it."""

    path: str
    bytes: int
    etag: str | None
    last_modified: str | None
    refresh: bool


@dataclass(frozen=True)
class Task:
    id: int
    url: str
    attempt: int
    have: Have | None = None


def decode_task(text: str) -> Task:
    try:
        raw = json.loads(text)
    except RecursionError:
        raise ValueError("task nested too deeply") from None
    if not (
        isinstance(raw, dict)
        and type(raw.get("id")) is int
        and isinstance(raw.get("url"), str)
        and type(raw.get("attempt")) is int
    ):
        raise ValueError("malformed task")
    return Task(raw["id"], raw["url"], raw["attempt"], _decode_have(raw.get("have")))


def _decode_have(raw: Any) -> Have | None:
    """A hint that does not check out is dropped: the worker then simply downloads."""
    if not isinstance(raw, dict):
        return None
    path, size = raw.get("path"), raw.get("bytes")
    if not (isinstance(path, str) and type(size) is int):
        return None
    etag, modified = raw.get("etag"), raw.get("last_modified")
    return Have(
        path,
        size,
        etag if isinstance(etag, str) else None,
        modified if isinstance(modified, str) else None,
        raw.get("refresh") is True,
    )


def encode_result(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":"))


def decode_result(text: str) -> dict[str, Any]:
    """Parse and check one result string; ValueError says what is wrong with it."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("result is not JSON") from None
    if not isinstance(raw, dict):
        raise ValueError("result is not a JSON object")
    for name in REQUIRED_FIELDS:
        if raw.get(name) is None:
            raise ValueError(f"result lacks {name!r}")
    row: dict[str, Any] = {}
    for name, kinds in RESULT_FIELDS.items():
        value = raw.get(name)
        if value is not None and (
            isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds)
        ):
            raise ValueError(f"result field {name!r} has the wrong type")
        row[name] = value
    if row["status"] not in STATUSES:
        raise ValueError(f"unknown status {row['status']!r}")
    return row


# --- Managers ---
served: dict[str, object] = {}  # what the master's registered callables return (server.py)


def _get_task_queue() -> object:
    return served["task_queue"]


def _get_result_queue() -> object:
    return served["result_queue"]


def _get_run_control() -> object:
    return served["run_control"]


class MasterManager(BaseManager):
    """The master's side: registered with module-level callables (never lambdas)."""


MasterManager.register("get_task_queue", callable=_get_task_queue, exposed=TASK_METHODS)
MasterManager.register("get_result_queue", callable=_get_result_queue, exposed=RESULT_METHODS)
MasterManager.register("get_run_control", callable=_get_run_control, exposed=CONTROL_METHODS)


class WorkerManager(BaseManager):
    """The worker's side: the same names, no callables (the objects live on the master)."""


WorkerManager.register("get_task_queue", exposed=TASK_METHODS)
WorkerManager.register("get_result_queue", exposed=RESULT_METHODS)
WorkerManager.register("get_run_control", exposed=CONTROL_METHODS)


# --- The worker's connection ---
T = TypeVar("T")


def _with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run ``fn`` in a helper thread: manager connects have no timeout of their own."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller below
            box["error"] = exc

    thread = threading.Thread(target=run, name=what, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise MasterUnreachable(f"{what}: no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


KEEPALIVE_IDLE = 30  # seconds of silence before TCP probes the master
KEEPALIVE_INTERVAL = 10
KEEPALIVE_COUNT = 3
USER_TIMEOUT_MS = 90_000  # unacknowledged data for this long: the master is gone


def _keepalive(proxy: BaseProxy) -> None:
    """Make this thread's connection of ``proxy`` notice a master that vanished.

    Proxy calls have no timeout, so without this a worker whose master host died (or
    whose cable was pulled) would wait on its socket forever.
    """
    tls = proxy._tls
    conn = getattr(tls, "connection", None)
    if conn is None or getattr(tls, "keepalive", False):
        return
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(conn.fileno())) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
            ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
            ("TCP_KEEPCNT", KEEPALIVE_COUNT),
            ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS),
        ):
            if hasattr(socket, name):  # Linux has them all; elsewhere, what there is
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    tls.keepalive = True


class Channel:
    """A worker's connection to the master; converts every manager error into ours."""

    def __init__(self, host: str, port: int, authkey: bytes, timeout: float) -> None:
        self.where = f"{host}:{port}"
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise MasterUnreachable(f"cannot reach the master at {self.where}: {reason}") from None
        sock.close()
        BaseProxy._address_to_local.pop((host, port), None)  # a stale connection to an old master
        manager = WorkerManager(address=(host, port), authkey=authkey, serializer=SERIALIZER)
        try:
            self._tasks, self._results, self._control = _with_timeout(
                lambda: self._open(manager), timeout, f"connecting to {self.where}"
            )
        except AuthenticationError:
            raise AuthenticationFailed(
                f"the master at {self.where} rejected this worker's authkey "
                "(use the same CRAWLER_AUTHKEY or --authkey-file as the master)"
            ) from None
        except (OSError, EOFError) as exc:
            raise MasterUnreachable(f"cannot talk to the master at {self.where}: {exc!r}") from None

    @staticmethod
    def _open(manager: WorkerManager) -> tuple[Any, Any, Any]:
        manager.connect()
        return manager.get_task_queue(), manager.get_result_queue(), manager.get_run_control()

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            result = fn()
            for proxy in (self._tasks, self._results, self._control):
                _keepalive(proxy)
            return result
        except (EOFError, OSError) as exc:
            raise MasterGone(
                f"lost the connection to the master at {self.where} ({exc!r})"
            ) from None

    def hello(self, worker: str, info: dict) -> dict:
        return self._call(lambda: self._control.hello(worker, info))

    def bye(self, worker: str) -> None:
        self._call(lambda: self._control.bye(worker))

    def get(self, worker: str, max_items: int, timeout: float) -> dict:
        return self._call(lambda: self._tasks.get(worker, max_items, timeout))

    def renew(self, worker: str, ids: list[int]) -> int:
        return self._call(lambda: self._tasks.renew(worker, ids))

    def release(self, worker: str, ids: list[int]) -> int:
        return self._call(lambda: self._tasks.release(worker, ids))

    def put(self, worker: str, results: list[str]) -> int:
        return self._call(lambda: self._results.put(worker, results))
