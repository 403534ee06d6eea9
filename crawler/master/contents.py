"""Exact content duplicates: which earlier row's image has the same bytes (sha256).

A row whose image's sha256 equals an earlier current row's gets ``same_content_as``:
that row's ``source``. "Earlier" is manifest order: the rows of earlier runs (as the
journal holds them, read when the run resumes), then this run's rows as they arrive.

Ten million distinct images would take over a gigabyte as a Python dict of digests,
and still ~130 MB as a compact in-memory hash table; the master must stay small. So
the index lives on disk, in a SQLite file beside the URL spool (the standard library's
``sqlite3``, a B-tree with a bounded page cache: ``CACHE_KIB``), keyed by the full
32-byte digest, so a match is exact, never a prefix collision. It is rebuilt by every
run (nothing persists that could disagree with the manifest) and deleted at the end.

Two tables: ``first`` maps a digest to the task whose row had it first; ``current`` a
task to its current row's digest. A first whose URL now has other bytes (refreshed) or
failed no longer counts: the next row with those bytes takes its place.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path

CACHE_KIB = 8192  # SQLite page cache: the index's whole memory, whatever the row count
COMMIT_EVERY = 50_000  # changes per transaction (a transaction per row is 100x slower)


class ContentIndex:
    """The first task holding each image content, on disk (see the module docstring).
    Raises OSError (from sqlite3.Error) when the folder cannot hold it."""

    def __init__(self, directory: Path | None = None) -> None:
        fd, name = tempfile.mkstemp(prefix="contents.", suffix=".sqlite", dir=directory)
        os.close(fd)
        self._path = Path(name)
        try:
            self._db = sqlite3.connect(name, isolation_level=None, check_same_thread=False)
            # A scratch index: no rollback journal, no fsync (a crash loses nothing the
            # journal does not hold; the next run rebuilds it).
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._db.execute(
                "CREATE TABLE first (digest BLOB PRIMARY KEY, task INTEGER) WITHOUT ROWID"
            )
            self._db.execute("CREATE TABLE current (task INTEGER PRIMARY KEY, digest BLOB)")
            self._db.execute("BEGIN")
        except sqlite3.Error as exc:
            self.close()
            raise OSError(f"content index {name}: {exc}") from None
        self._pending = 0

    def seed(self, task_id: int, sha256: object) -> None:
        """An earlier run's row of ``task_id``, in journal order: ``sha256`` of its image
        (hex), or anything else for a row without one (a failure)."""
        digest = _digest(sha256)
        if digest is None:
            self._db.execute("DELETE FROM current WHERE task = ?", (task_id,))
        else:
            self._db.execute("REPLACE INTO current VALUES (?, ?)", (task_id, digest))
            self._db.execute("INSERT OR IGNORE INTO first VALUES (?, ?)", (digest, task_id))
        self._tick()

    def note(self, task_id: int, sha256: object) -> int | None:
        """Record this run's row of ``task_id``; returns the task whose current row had
        the same image first (never ``task_id`` itself), or None."""
        digest = _digest(sha256)
        self.seed(task_id, sha256)
        if digest is None:
            return None
        found = self._db.execute("SELECT task FROM first WHERE digest = ?", (digest,)).fetchone()
        first = found[0]
        if first == task_id:
            return None
        now = self._db.execute("SELECT digest FROM current WHERE task = ?", (first,)).fetchone()
        if now is None or now[0] != digest:  # the first's URL changed or failed since
            self._db.execute("UPDATE first SET task = ? WHERE digest = ?", (task_id, digest))
            return None
        return first

    def _tick(self) -> None:
        self._pending += 1
        if self._pending >= COMMIT_EVERY:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
            self._pending = 0

    def close(self) -> None:
        """Drop the index and its file."""
        with contextlib.suppress(AttributeError, sqlite3.Error):
            self._db.close()
        with contextlib.suppress(OSError):
            self._path.unlink()


def _digest(sha256: object) -> bytes | None:
    """The 32 bytes of a sha256 given as 64 hex digits; None for anything else."""
    if not isinstance(sha256, str) or len(sha256) != 64:
        return None
    try:
        return bytes.fromhex(sha256)
    except ValueError:
        return None
