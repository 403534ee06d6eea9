"""A worker's connection to the master: the one place manager errors become ours.

``Channel`` connects (with a time limit: manager connects have none of their own),
authenticates with the shared key, and wraps every proxy call so that a broken
connection raises ``MasterGone`` and a refused key ``AuthenticationFailed``. Each
connection gets TCP keepalive and a user timeout, so a master host that vanished is
noticed instead of waited on forever.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing import AuthenticationError
from multiprocessing.managers import BaseManager, RemoteError
from typing import Any, TypeVar

from crawler import __version__
from crawler._compat import forget_connection, give_up, nodelay_serializer, shared_proxies
from crawler.exceptions import (
    AuthenticationFailed,
    IncompatibleMaster,
    MasterGone,
    MasterUnreachable,
    ProtocolError,
)
from crawler.protocol import IDENTITY, PROTOCOL, REGISTERED, SERIALIZER, incompatible


class WorkerManager(BaseManager):
    """The worker's side: the same names, no callables (the objects live on the master)."""


for _name, _methods in REGISTERED.items():
    WorkerManager.register(_name, exposed=_methods)


# --- The worker's connection ---
T = TypeVar("T")
STOP_POLL = 0.1  # seconds: how soon a connect in progress notices a stop


def _with_timeout(
    fn: Callable[[], T], timeout: float, what: str, stop: threading.Event | None = None
) -> T:
    """Run ``fn`` in a helper thread: manager connects have no timeout of their own.
    Raises MasterUnreachable after ``timeout`` seconds, or at once when ``stop`` is set
    (a stop signal must not wait out a connect to a port that never answers)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller below
            box["error"] = exc

    thread = threading.Thread(target=run, name=what, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while thread.is_alive() and not (stop is not None and stop.is_set()):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        thread.join(min(left, STOP_POLL))  # returns as soon as the connect is done
    if thread.is_alive():
        reason = "stopped" if stop is not None and stop.is_set() else "no answer"
        raise MasterUnreachable(f"{what}: {reason} within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


KEEPALIVE_IDLE = 30  # seconds of silence before TCP probes the master
KEEPALIVE_INTERVAL = 10
KEEPALIVE_COUNT = 3
USER_TIMEOUT_MS = 90_000  # unacknowledged data for this long: the master is gone


def _keepalive(sock: socket.socket) -> None:
    """Make a connection to the master notice that its host vanished: proxy calls have
    no timeout, so without this a worker whose master host died (or whose cable was
    pulled) would wait on its socket forever. Set on every connection before its
    handshake (``nodelay_serializer``)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
        ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS),
    ):
        if hasattr(socket, name):  # Linux has them all; elsewhere, what there is
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in words: "it closed the connection" for an EOFError
    (which says nothing itself), else the system's message."""
    if isinstance(exc, EOFError):
        return "it closed the connection"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def probe(host: str, port: int, timeout: float) -> None:
    """Does the master's port take a connection within ``timeout`` s? Raises
    MasterUnreachable, in words, when not."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise MasterUnreachable(f"cannot reach the master at {host}:{port}: {reason}") from None


class Channel:
    """A worker's connection to the master; converts every manager error into ours."""

    def __init__(
        self,
        host: str,
        port: int,
        authkey: bytes,
        timeout: float,
        stop: threading.Event | None = None,
    ) -> None:
        """Connect and authenticate within ``timeout`` seconds (sooner when ``stop`` is
        set). Raises MasterUnreachable, AuthenticationFailed."""
        self.where = f"{host}:{port}"
        # Stop-aware too: a port whose SYNs go unanswered (a full accept queue, a host
        # gone) held a stopped worker the whole --connect-timeout (a fresh user's, 2026-12-02)
        reach = lambda: probe(host, port, timeout)  # noqa: E731  (its own words, its own bound)
        _with_timeout(reach, math.inf, f"reaching {self.where}", stop)
        forget_connection((host, port))  # a stale connection to an earlier master
        self._address = (host, port)
        # The same wire format; no 40 ms stalls, keepalive from the first byte.
        serializer = nodelay_serializer(SERIALIZER, _keepalive, timeout)
        manager = WorkerManager(address=(host, port), authkey=authkey, serializer=serializer)
        try:
            self._tasks, self._results, self._control = _with_timeout(
                lambda: self._open(manager), timeout, f"connecting to {self.where}", stop
            )
        except AuthenticationError:
            raise AuthenticationFailed(
                f"the master at {self.where} rejected this worker's authkey "
                "(use the same CRAWLER_AUTHKEY or --authkey-file as the master)"
            ) from None
        except (OSError, EOFError) as exc:
            raise MasterUnreachable(
                f"cannot talk to the master at {self.where}: {_reason(exc)}"
            ) from None

    @staticmethod
    def _open(manager: WorkerManager) -> tuple[Any, Any, Any]:
        tasks, results, control = shared_proxies(
            manager, ("get_task_queue", "get_result_queue", "get_run_control")
        )
        return tasks, results, control

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (EOFError, OSError) as exc:
            give_up(self._address)  # no proxy clean-up waits on it (``_compat.give_up``)
            # "went away", as every other line says it (until 2026-12-01 also "lost the
            # connection", for the same moment: a fresh user's)
            raise MasterGone(f"the master at {self.where} went away ({_reason(exc)})") from None
        except (RemoteError, TypeError) as exc:  # the call failed on the master's side
            # (with xmlrpclib an error there arrives as a TypeError: it cannot carry it)
            raise ProtocolError(f"the master at {self.where} failed to answer ({exc})") from None

    def hello(self, worker: str, info: dict) -> dict:
        """Say who this worker is (``info`` and ``protocol.IDENTITY``); returns the run's
        info (``{"run_id", "policy", ...}``). Raises IncompatibleMaster when the master
        speaks another protocol (another crawler version)."""
        answer = self._call(lambda: self._control.hello(worker, {**info, **IDENTITY}))
        other = incompatible(answer)
        if other is not None:
            raise IncompatibleMaster(
                f"the master at {self.where} runs {other}, this worker runs crawler "
                f"{__version__} (protocol {PROTOCOL}): install the same crawler on every host"
            )
        return answer

    def bye(self, worker: str) -> None:
        self._call(lambda: self._control.bye(worker))

    def get(self, worker: str, max_items: int, timeout: float, room: int | None = None) -> dict:
        """Up to ``max_items`` leased tasks, ``room`` of them at most (None: any) for hosts
        whose requests are spaced (see ``lane``); waits up to ``timeout`` s for some."""
        return self._call(lambda: self._tasks.get(worker, max_items, timeout, room))

    def renew(self, worker: str, ids: list[int]) -> dict:
        """``{"renewed": int, "gone": [ids no longer ours]}`` (see master.leases)."""
        answer = self._call(lambda: self._tasks.renew(worker, ids))
        return answer if isinstance(answer, dict) else {}

    def release(self, worker: str, ids: list[int]) -> int:
        return self._call(lambda: self._tasks.release(worker, ids))

    def robots(self, worker: str, ids: list[int]) -> list:
        """The robots.txt verdicts with these ids: ``[{"id": n, "verdict": {...}}, ...]``."""
        return self._call(lambda: self._tasks.robots(worker, ids))

    def robots_found(self, worker: str, items: list[dict]) -> int:
        """Report verdicts fetched for probes: ``[{"id": task id, "verdict": {...}}]``."""
        return self._call(lambda: self._tasks.robots_found(worker, items))

    def put(self, worker: str, results: list[str]) -> int:
        return self._call(lambda: self._results.put(worker, results))
