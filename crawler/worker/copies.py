"""``--processes N``: this worker and N-1 copies of it, forked once it has started.

A worker's start-up is an interpreter and ~0.2 s of CPU for its imports (Pillow,
requests, NumPy under simplejpeg). N workers started side by side pay it N times, on
cores that are busy by then; a master's second local worker started only once the first
had said hello, and was ready ~0.5 s into a run (issue 15). ``Copies.fork`` forks N-1
copies of the started process before it starts a thread of its own (a fork copies only
the calling thread), sharing its memory pages until one of them writes them. Each copy
is a worker of its own: its own connection, name (``host:pid``), ``--threads`` download
threads and exit. They are one process group (a master's local workers start a session
of their own), so ``kill -TERM -- -PGID``, the master's stop and a terminal's Ctrl-C
reach them all; a stop signal sent to the first process alone is passed on to its copies
(``pass_on``), a first request as ``PASSED_ON``, which a copy takes for a first stop
request, never for a second one (a second goes on as the signal itself): the first
process, not scheduled for a second on a loaded machine, passed on the group's SIGTERM
late, and the copy, stopping already, took it for "stop now" and dropped the download it
was finishing (until 2026-12-02; a CI run). The first waits for its copies and exits
with the most serious of their exit codes and its own (``worst``); a copy killed by a
signal counts as work lost (exit 3): it may have held leases. The first process gone
(``kill -9``, the OOM killer), the copies of one run carry on and finish it: they are
workers of their own, and a master's stop reaches them as it reaches any worker, in the
answers to their calls (and its signals too: ``master.local_workers`` signals the group
while one of its workers is there). With ``--wait`` (a service) they get SIGTERM from
the kernel instead (``PR_SET_PDEATHSIG``) and stop as on a stop, and a copy that exits
ends them all (``watch``): the service manager sees the host short of a worker and
restarts it whole.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from crawler import constants as c
from crawler.stopsignals import STOP_SIGNALS

# Exit codes by seriousness: a stop, then work lost; anything else (1: could not work).
SERIOUSNESS = {c.EXIT_OK: 0, c.EXIT_INTERRUPTED: 1, c.EXIT_INCOMPLETE: 2}
PR_SET_PDEATHSIG = 1  # prctl(2)
WATCH_EVERY = 1.0  # seconds between looks at the copies (--wait)
PASSED_ON = signal.SIGUSR1  # a stop passed on by the first process: see above
HELD = {PASSED_ON, *STOP_SIGNALS}  # blocked from the fork until the handlers are set


class Copies:
    """The copies this process forked (none in a copy), and their exit codes."""

    def __init__(
        self, pids: list[int], *, copy: bool = False, mask: set[signal.Signals] | None = None
    ) -> None:
        self.pids = pids
        self.copy = copy  # is this process a forked copy (not the first)?
        self._mask = mask  # the signal mask before the fork blocked HELD (None: not blocked)
        # pid -> how it ended, once reaped: its exit code, or minus the signal that
        # ended it (``os.waitstatus_to_exitcode``); EXIT_INCOMPLETE when not ours to know
        self.exits: dict[int, int] = {}
        # Reentrant: a stop signal's handler (pass_on) may run in the thread that holds
        # it, waiting for a copy to exit.
        self._lock = threading.RLock()

    @classmethod
    def fork(cls, processes: int, *, follow_parent: bool = False) -> Copies:
        """Fork ``processes`` - 1 copies of this process; with ``follow_parent`` each
        stops once this one is gone (``_stop_with``). Raises OSError when a fork fails
        (the copies made are killed first)."""
        if processes <= 1:
            return cls([])
        gc.freeze()  # the start-up's objects, out of the collector's sight: it would write
        # to every one of them, copying each page (copy-on-write)
        # HELD blocked until each process says what it does with them (``let_in``): by
        # default they kill, and ignored they are lost (reviews': a stop passed on to a
        # copy not yet running was lost, and the copy worked on alone; a master's stop of
        # the group killed it, "killed by SIGTERM ... (exit 3)" with nothing held).
        made = cls([], mask=signal.pthread_sigmask(signal.SIG_BLOCK, HELD))
        parent = os.getpid()
        for _ in range(processes - 1):
            try:
                pid = os.fork()
            except OSError:
                made.pass_on(signal.SIGKILL)  # they have not started anything yet
                made.wait()
                made.let_in(None)
                raise
            if pid == 0:
                if follow_parent:
                    _stop_with(parent)
                return cls([], copy=True, mask=made._mask)
            made.pids.append(pid)
        return made

    def let_in(self, handler: Callable[[int, FrameType | None], Any] | None) -> None:
        """Take the ``HELD`` signals from now on (blocked since the fork: one sent
        meanwhile arrives now), the stop signals' handlers set: ``PASSED_ON`` a copy's
        ``handler``, the first ignores it. None: as it is (a thread other than the main
        one may set no handler). The mask is the one before the fork."""
        if self._mask is None:
            return
        if handler is not None:
            signal.signal(PASSED_ON, handler if self.copy else signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
        self._mask = None

    def pass_on(self, signum: int) -> None:
        """Send ``signum`` to each copy not reaped yet (a reaped one's pid may be
        another process's by now)."""
        with self._lock:
            for pid in self.pids:
                if pid not in self.exits:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signum)

    def wait(self) -> list[int]:
        """Each copy's exit code, once it has exited (killed by a signal: EXIT_INCOMPLETE)."""
        exits = [self._reap(pid, 0) for pid in self.pids]
        return [c.EXIT_INCOMPLETE if code is None or code < 0 else code for code in exits]

    @property
    def killed(self) -> dict[int, int]:
        """The copies a signal ended, reaped so far: pid -> that signal."""
        return {pid: -code for pid, code in self.exits.items() if code < 0}

    def _reap(self, pid: int, flags: int) -> int | None:
        """How copy ``pid`` ended (see ``exits``), or None while it runs (WNOHANG)."""
        with self._lock:
            if pid in self.exits:
                return self.exits[pid]
            try:
                done, status = os.waitpid(pid, flags)
            except ChildProcessError:  # not ours to reap: nothing known of it
                done, status = pid, None
            if done == 0:
                return None  # WNOHANG: still running
            code = c.EXIT_INCOMPLETE if status is None else os.waitstatus_to_exitcode(status)
            self.exits[pid] = code
            return code

    def watch(self, stop: threading.Event) -> None:
        """(``--wait``) On a thread: once a copy has exited, stop this process and the
        other copies (``stop`` set, ``PASSED_ON`` passed on): a service short of a worker
        exits, with that copy's code, for its manager to restart it."""

        def run() -> None:
            while not stop.wait(WATCH_EVERY):
                if any(self._reap(pid, os.WNOHANG) is not None for pid in self.pids):
                    stop.set()
                    self.pass_on(PASSED_ON)

        if self.pids:
            threading.Thread(target=run, name="copies", daemon=True).start()


def _stop_with(parent: int) -> None:
    """In a copy: SIGTERM from the kernel once ``parent`` (the first process) is gone,
    and at once if it already is."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def worst(codes: list[int]) -> int:
    """The most serious of ``codes`` (``SERIOUSNESS``; any other code is worse)."""
    return max(codes, key=lambda code: SERIOUSNESS.get(code, len(SERIOUSNESS)))
