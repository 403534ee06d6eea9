"""Signals the main thread must not miss, and an event a signal handler may set.

Kept apart from ``stopsignals``, which every command imports first thing (before a
master starts its early workers): these need threading and select, and only a running
master or worker uses them.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import threading
import time
from typing import Any

from crawler.stopsignals import STOP_SIGNALS


class SignalSafeEvent(threading.Event):
    """A ``threading.Event`` that a signal handler may set: ``set`` takes no lock (a flag,
    and one byte written to a pipe that ``wait`` polls). A handler runs in the main thread
    between two of its bytecodes, perhaps while that thread holds the lock of a
    ``threading.Event`` it waits on or clears: that event's ``set`` from the handler then
    waited for the lock its own thread held, for good (until 2026-12-02 a worker's copy
    could hang so on a repeated stop signal: a review's). Shapes as ``threading.Event``;
    ``wait``'s timeout in seconds (None: no limit)."""

    def __init__(self) -> None:
        super().__init__()
        self._flag = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        self._flag = True
        with contextlib.suppress(OSError):  # BlockingIOError: the pipe is full, so awake
            os.write(self._write, b"!")

    def clear(self) -> None:
        self._flag = False
        with contextlib.suppress(OSError):  # nothing in it
            while os.read(self._read, 4096):
                pass

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        poller = select.poll()  # not select(): no limit on the descriptor's number
        poller.register(self._read, select.POLLIN)
        poller.poll(None if timeout is None else max(0, math.ceil(timeout * 1000)))
        return self._flag


NUDGE = signal.SIGURG  # ignored by default; given a handler that does nothing, below
NUDGE_AFTER = (0.2, 0.8)  # seconds after a stop signal, then after that: the main thread


def nudge_the_main_thread() -> None:
    """Make sure a stop signal's handler runs soon, whatever the main thread is doing.

    Python runs a handler in the main thread once that thread is back in the interpreter.
    A signal that arrives just before the main thread enters a blocking system call (the
    open of a named pipe with no writer, a read of stdin), or that another thread took,
    leaves the handler waiting for that call to return, which may be never: a master
    planning from a pipe went on waiting after SIGTERM or Ctrl-C (until 2026-12-02, 3
    runs in 80 with the signal sent as its workers said hello). So every signal's number
    also goes to a pipe (``signal.set_wakeup_fd``, written by the C-level handler in any
    thread) that a thread of its own reads; after each stop signal it sends the main
    thread ``NUDGE`` twice (``pthread_kill``), whose empty handler interrupts the call
    (EINTR, PEP 475), and Python then runs every handler due. A handler already run is
    not run again: a nudge is no stop signal. Call from the main thread, once, before the
    program's other threads start."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(NUDGE, _nothing)
    read, write = os.pipe()
    os.set_blocking(write, False)  # set_wakeup_fd's requirement: a handler never blocks
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    main = threading.main_thread().ident
    stops = {int(s) for s in STOP_SIGNALS}

    def watch() -> None:
        while True:
            if stops.intersection(os.read(read, 512)):
                for delay in NUDGE_AFTER:
                    time.sleep(delay)
                    with contextlib.suppress(OSError):  # ProcessLookupError: exiting
                        signal.pthread_kill(main, NUDGE)

    threading.Thread(target=watch, name="stop-nudge", daemon=True).start()


def _nothing(signum: int, frame: Any) -> None:
    """``NUDGE``'s handler: its work is done by interrupting the main thread's call."""
