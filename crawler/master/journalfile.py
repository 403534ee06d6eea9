"""The manifest's file, before a master journals into it: a regular file (``refuse_special``),
locked by its name (``lock_by_name``: ``NAME.jsonl.lock`` beside it) and by the file
itself (``hold``), so that no second master journals into it under any name.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path
from typing import IO

from crawler.exceptions import UsageError
from crawler.manifest import lock_path


def lock_by_name(path: Path) -> IO[str]:
    """The lock file beside ``path``, made (with its folder) and held; close it to
    release. Raises UsageError when it cannot be made or another master holds it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(lock_path(path), "a")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot write manifest {path}: {exc.strerror or exc}") from None
    hold(lock, path, f"lock {lock.name}")
    return lock


def hold(
    fh: IO,
    path: Path,
    how: str = "it holds the file itself: by another name, or its lock file was removed",
) -> None:
    """Lock ``fh`` (the lock file, or the journal file itself: the lock file is found by
    name, and a second master reaching the same file by another name, a hard link, found
    none; so did one started after the lock file was removed: the message said "a link"
    of that too, a fresh user's). Raises UsageError (``fh`` closed) when another master
    holds it; ``how`` says how that master holds it."""
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise UsageError(
            f"manifest {path} is in use by another master ({how}); "
            "wait for it to finish or use another --manifest"
        ) from None


def refuse_special(path: Path) -> None:
    """Raise UsageError when ``path`` is there and is not a regular file: a FIFO hung the
    start-up, and a device (``/dev/null``) would have been replaced by the compaction's
    rename, its lock and summary files made beside it in ``/dev``."""
    try:
        kind = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return  # made, or refused with the reason, below
    except OSError as exc:
        raise UsageError(f"cannot write manifest {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(kind):
        raise UsageError(f"manifest {path} is not a regular file: choose another --manifest")
