"""NumPy for the master and the report, imported when a step first needs it, not at start-up.

Two of the master's steps use NumPy: matching a rerun's per-line rows to the earlier
runs' (``master.linerows``) and the report's near-duplicate search (``report.similar``).
Imported with the rest of the master, it cost ~45 ms of CPU at start-up, while the local
workers import too: on 2 cores the first result came ~15 ms later (issue 15, "no fixed
overhead"). ``numpy()`` imports it on first call, a dictionary look-up after that.
``load_numpy_soon()`` starts that import on a thread of its own as soon as a step knows
it will need NumPy (the second image with a perceptual hash), so that the end of the run
does not wait for it either.

Workers import NumPy at start-up as before: their first image needs it (``worker.phash``).
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType

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
    threading.Thread(target=_load, name="numpy-import", daemon=True).start()


def _load() -> None:
    try:
        numpy()
    except Exception:  # the step's own numpy() raises it again, where it is handled
        return
