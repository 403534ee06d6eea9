"""``--processes N``: this worker and N-1 copies of it, forked once it has started.

A worker's start-up is an interpreter and ~0.2 s of CPU for its imports (Pillow,
requests, NumPy under simplejpeg). N workers started side by side pay it N times, on
cores that are busy by then; a master's second local worker started only once the first
had said hello, and was ready ~0.5 s into a run (issue 15). ``fork_copies`` forks N-1
copies of the started process before any thread exists (a fork copies only the calling
thread), sharing its memory pages until one of them writes them. Each copy is a worker
of its own: its own connection, name (``host:pid``), ``--threads`` download threads and
exit. They are one process group (a master's local workers each start a session of
their own), so ``kill -TERM -- -PGID``, the master's stop and a terminal's Ctrl-C reach
them all; a stop signal sent to the first process alone is passed on to its copies
(``pass_on``). The first process waits for its copies and exits with the most serious
of their exit codes and its own (``worst``); a copy killed by a signal counts as work
lost (exit 3): it may have held leases. One killed outright leaves its copies working:
they finish the run as any worker does.
"""

from __future__ import annotations

import contextlib
import gc
import os

from crawler import constants as c

# Exit codes by seriousness: a stop, then work lost; anything else (1: could not work).
SERIOUSNESS = {c.EXIT_OK: 0, c.EXIT_INTERRUPTED: 1, c.EXIT_INCOMPLETE: 2}


def fork_copies(processes: int) -> list[int]:
    """Fork ``processes`` - 1 copies of this process: their pids in this one, [] in
    each copy. Raises OSError when a fork fails (the copies made are killed first)."""
    copies: list[int] = []
    if processes > 1:  # the objects of the start-up, out of the collector's sight: it
        gc.freeze()  # would write to every one of them, copying each page (copy-on-write)
    for _ in range(processes - 1):
        try:
            pid = os.fork()
        except OSError:
            pass_on(copies, 9)  # SIGKILL: they have not started anything yet
            wait_copies(copies)
            raise
        if pid == 0:
            return []
        copies.append(pid)
    return copies


def pass_on(copies: list[int], signum: int) -> None:
    """Send ``signum`` to each copy still there."""
    for pid in copies:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def wait_copies(copies: list[int]) -> list[int]:
    """Each copy's exit code, once it has exited (killed by a signal: EXIT_INCOMPLETE)."""
    codes = []
    for pid in copies:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # reaped already: nothing known of it
            codes.append(c.EXIT_INCOMPLETE)
            continue
        code = os.waitstatus_to_exitcode(status)
        codes.append(c.EXIT_INCOMPLETE if code < 0 else code)
    return codes


def worst(codes: list[int]) -> int:
    """The most serious of ``codes`` (``SERIOUSNESS``; any other code is worse)."""
    return max(codes, key=lambda code: SERIOUSNESS.get(code, len(SERIOUSNESS)))
