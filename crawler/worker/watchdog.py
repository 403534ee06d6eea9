"""Ends a download's connection when its URL runs past the per-URL deadline, whatever
the connection is waiting for.

Socket timeouts bound each receive, not a whole answer: a server sending its status
line a byte at a time, a header line a second, endless ``100 Continue`` answers, or an
endless chunked trailer kept each receive short, and held a download thread (its lease
renewed all the while) for as long as it liked: 40 s under ``--deadline 5`` (a fresh
user's test, 2026-12-01). ``WATCHDOG`` shuts such a socket down (``SHUT_RDWR``) at the
deadline: the blocked receive returns at once, urllib3 or the body loop raises or ends,
and the fetch reports "deadline of N s exceeded", as for any error after the deadline
(``worker.failures.convert``, ``worker.fetch._read_body``).

A download thread ``watch``es the socket it is about to read an answer from, until
``release`` (``deadline.stop``); the check and the shutdown happen under one lock, so a
socket that has since gone back to the pool for the thread's next URL is left alone.
"""

from __future__ import annotations

import contextlib
import heapq
import socket
import threading
import time

IDLE_WAIT = 60.0  # seconds the watchdog thread sleeps when nothing is watched


class Watchdog:
    """Per download thread, one socket and the monotonic time it must be done by."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._watched: dict[int, tuple[float, socket.socket]] = {}  # by thread ident
        self._due: list[tuple[float, int]] = []  # heap of (time, thread ident)
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket | None, until: float | None) -> None:
        """Shut ``sock`` down at ``until`` (``time.monotonic()``) unless the calling
        thread releases it first; None for either: nothing to watch."""
        if sock is None or until is None:
            return
        me = threading.get_ident()
        with self._lock:
            self._watched[me] = (until, sock)
            heapq.heappush(self._due, (until, me))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadline", daemon=True)
                self._thread.start()
            self._lock.notify()

    def release(self) -> None:
        """The calling thread's URL is over: its socket is no longer watched."""
        with self._lock:
            self._watched.pop(threading.get_ident(), None)

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                while self._due and self._due[0][0] <= now:
                    until, ident = heapq.heappop(self._due)
                    entry = self._watched.get(ident)
                    if entry is not None and entry[0] == until:  # still that URL's socket
                        del self._watched[ident]
                        with contextlib.suppress(OSError):  # already closed: nothing to end
                            entry[1].shutdown(socket.SHUT_RDWR)
                wait = self._due[0][0] - now if self._due else IDLE_WAIT
                self._lock.wait(timeout=max(wait, 0.001))


WATCHDOG = Watchdog()  # the process's one: every download thread's deadline
