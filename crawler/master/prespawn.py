"""Local workers started before the master has imported or checked anything.

A local worker's way to a run's first result begins with an interpreter and ~0.2 s of
imports; until 2026-12-01 the master's own imports and checks (~0.07 s) came first
(issue 15, "no fixed overhead"). Now ``start_early`` runs first thing in ``python -m
crawler.master`` (``cli.startup``), when the command line asks for local workers in
those words (``--local-workers N`` or ``--local-workers=N``; an abbreviation gets them
the usual way, a moment later): it starts ``python -m crawler.worker
--args-from-stdin``, which imports and then waits for one line on stdin.
``LocalWorkers`` takes it over once the master's flags are checked, and writes it its
command line (a JSON list, ``--port`` and ``--processes N`` included: the other N-1
local workers are its copies, ``worker.copies``) once the master listens. A master that
ends before that (a refused flag, a list it cannot read, a signal) kills it, or its
exit closes its stdin: it reads the end after its imports and leaves without a word
(exit 130), as a worker given ``--port -`` does.

Only cheap modules here: this runs before everything else the master does.
"""

from __future__ import annotations

import subprocess
import sys

from crawler.constants import ARGS_FROM_STDIN

FLAG = "--local-workers"
NOT_A_RUN = frozenset({"--dry-run", "-h", "--help", "--version"})  # start no worker


def wanted_from(argv: list[str]) -> int:
    """N of the last ``--local-workers N`` (or ``=N``) written out before any ``--`` in
    the master's ``argv``; 0 when there is none, N is not a number, or the command is no
    run (``--dry-run``, ``--help``, ``--version``)."""
    wanted = 0
    for index, arg in enumerate(argv):
        if arg == "--" or arg in NOT_A_RUN:
            return 0 if arg in NOT_A_RUN else wanted
        value = argv[index + 1] if arg == FLAG and index + 1 < len(argv) else None
        if arg.startswith(FLAG + "="):
            value = arg.partition("=")[2]
        if value is not None:
            wanted = int(value) if value.isascii() and value.isdigit() else 0
    return wanted


def worker_command() -> list[str]:
    """A local worker that reads its command line from stdin."""
    return [sys.executable, "-m", "crawler.worker", ARGS_FROM_STDIN]


def start_early(argv: list[str]) -> list[subprocess.Popen]:
    """The local workers ``argv`` asks for that start now (see the module docstring),
    each in a session of its own (a terminal's Ctrl-C reaches the master alone) with its
    stdin a pipe from the master. One that cannot start is left to ``LocalWorkers``,
    which says why."""
    if wanted_from(argv) <= 0:
        return []
    try:
        return [subprocess.Popen(worker_command(), stdin=subprocess.PIPE, start_new_session=True)]
    except OSError:
        return []


def stop(procs: list[subprocess.Popen]) -> None:
    """Kill workers started early that no run took over (they hold nothing)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for proc in procs:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait()
