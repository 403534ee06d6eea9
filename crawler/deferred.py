"""Modules imported when a step first needs them, not at start-up: NumPy for the master
and the report, tqdm for a progress bar (the master's and a worker's).

Two of the master's steps use NumPy: matching a rerun's per-line rows to the earlier
runs' (``master.linerows``) and the report's near-duplicate search (``report.similar``).
Imported with the rest of the master, it cost ~45 ms of CPU at start-up, while the local
workers import too: on 2 cores the first result came ~15 ms later (issue 15, "no fixed
overhead"). ``numpy()`` imports it on first call, a dictionary look-up after that.
``load_numpy_soon()`` starts that import on a thread of its own as soon as a step knows
it will need NumPy (the second image with a perceptual hash), so that the end of the run
does not wait for it either.

Workers import NumPy at start-up as before: their first image needs it (``worker.phash``).
They import tqdm only to draw a bar (``progress_bar``): a worker started by its master,
or by systemd, has no terminal, and tqdm took ~10 ms of its ~0.2 s of imports, on the
way to its first result.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any

from crawler.terminal import watched

_started = threading.Event()  # set once load_numpy_soon() has started the import


def numpy() -> ModuleType:
    """The ``numpy`` module, imported now if it is not yet. Raises ImportError."""
    return importlib.import_module("numpy")


def load_numpy_soon() -> None:
    """Start importing NumPy on a daemon thread, once per process; returns at once. A
    later ``numpy()`` waits for that import (Python's per-module import lock) and raises
    what it raised."""
    if _started.is_set():
        return
    _started.set()
    try:
        threading.Thread(target=_load, name="numpy-import", daemon=True).start()
    except RuntimeError:  # no thread to spare: the step that needs it imports it then
        return


def _load() -> None:
    try:
        numpy()
    except Exception:  # the step's own numpy() raises it again, where it is handled
        return


class NoBar:
    """A progress bar that draws nothing: the methods of tqdm's that callers use."""

    disable = True

    def update(self, n: int = 1) -> None:
        """Nothing to draw."""

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to draw."""

    def set_description_str(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to draw."""

    def close(self) -> None:
        """Nothing to close."""


def progress_bar(disable: bool | None, **options: Any) -> Any:
    """A tqdm bar on stderr, or a ``NoBar`` where none would be seen (``disable`` True,
    or None with a stderr that is not a terminal, tqdm's own rule, or a terminal of 0
    columns, where tqdm draws nothing: ``terminal.watched``), without importing tqdm.
    ``options``: tqdm's. Raises ImportError when tqdm is missing."""
    if disable or (disable is None and not watched()):
        return NoBar()
    return importlib.import_module("tqdm").tqdm(disable=disable, **options)
