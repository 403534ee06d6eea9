"""Exact content duplicates: which earlier row's image has the same bytes (sha256).

A row whose image's sha256 equals an earlier current row's gets ``same_content_as``:
that row's ``source``. "Earlier" is manifest order: the rows of earlier runs (as the
journal holds them, read when the run resumes), then this run's rows as they arrive.

Ten million distinct images would take over a gigabyte as a Python dict of digests,
and still ~130 MB as a compact in-memory hash table; the master must stay small. So
the index lives on disk, in a SQLite file beside the manifest (the standard library's
``sqlite3``, a B-tree with a bounded page cache: ``CACHE_KIB``), keyed by the full
32-byte digest, so a match is exact, never a prefix collision.

Filling it from a manifest of ten million rows takes about as long as reading the
manifest again, so a completed run keeps it (``NAME.contents.sqlite``) with the
manifest's fingerprint (``manifest.fingerprint``); the next run uses it as it is when
the manifest is exactly as that run left it, and fills it anew from the manifest
otherwise (a crash, an edit, an older crawler). It holds nothing the manifest does not.

Two tables: ``first`` maps a digest to the URL (and list line) whose row had it first;
``current`` a URL to its current row's digest. A first whose URL now has other bytes
(refreshed) or failed no longer counts: the next row with those bytes takes its place.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

CACHE_KIB = 8192  # SQLite page cache: the index's whole memory, whatever the row count
COMMIT_EVERY = 50_000  # changes per transaction (a transaction per row is 100x slower)
VERSION = 2  # 2: keyed by URL, kept between runs


class ContentIndex:
    """The first URL holding each image content, on disk (see the module docstring).
    Raises OSError (from sqlite3.Error) when the file cannot be made or used."""

    def __init__(self, path: Path, fingerprint: list[int] | None = None) -> None:
        """Open the index at ``path``. It is ``ready`` (holds every earlier row) when it
        was kept for a manifest whose fingerprint is ``fingerprint``; otherwise it is
        emptied, for ``seed`` to fill. ``fingerprint`` None: nothing earlier to know."""
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            # Rebuilt from the manifest whenever in doubt: no rollback journal, no fsync.
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self.ready = fingerprint is None or self._kept_for() == fingerprint
            if not self.ready or fingerprint is None:
                self._reset()
            # Claimed by this run: only its completion (keep) says the index fits again.
            self._db.execute("DELETE FROM meta WHERE name = 'kept'")
            self._db.execute("BEGIN")
        except sqlite3.Error as exc:
            self.close()
            raise OSError(f"content index {path}: {exc}") from None
        self._pending = 0

    def _kept_for(self) -> list[int] | None:
        with contextlib.suppress(sqlite3.Error, ValueError, TypeError):
            (value,) = self._db.execute("SELECT value FROM meta WHERE name = 'kept'").fetchone()
            kept = json.loads(value)
            return kept["fingerprint"] if kept.get("version") == VERSION else None
        return None

    def _reset(self) -> None:
        for table in ("meta", "first", "current"):
            self._db.execute(f"DROP TABLE IF EXISTS {table}")
        self._db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
        self._db.execute(
            "CREATE TABLE first (digest BLOB PRIMARY KEY, url TEXT, source TEXT) WITHOUT ROWID"
        )
        self._db.execute("CREATE TABLE current (url TEXT PRIMARY KEY, digest BLOB) WITHOUT ROWID")

    def seed(self, url: str, source: object, sha256: object) -> None:
        """An earlier run's row of ``url`` (from list line ``source``), in journal order:
        ``sha256`` of its image (hex), or anything else for a row without one."""
        digest = _digest(sha256)
        if digest is None:
            self._db.execute("DELETE FROM current WHERE url = ?", (url,))
        else:
            self._db.execute("REPLACE INTO current VALUES (?, ?)", (url, digest))
            label = source if isinstance(source, str) else None
            self._db.execute("INSERT OR IGNORE INTO first VALUES (?, ?, ?)", (digest, url, label))
        self._tick()

    def note(self, url: str, source: str, sha256: object) -> str | None:
        """Record this run's row of ``url``; returns the ``source`` of the row that had
        the same image first (never ``url``'s own), or None."""
        digest = _digest(sha256)
        self.seed(url, source, sha256)
        if digest is None:
            return None
        found = self._db.execute(
            "SELECT url, source FROM first WHERE digest = ?", (digest,)
        ).fetchone()
        first, first_source = found
        if first == url:
            return None
        now = self._db.execute("SELECT digest FROM current WHERE url = ?", (first,)).fetchone()
        if now is None or now[0] != digest:  # the first's URL changed or failed since
            self._db.execute(
                "UPDATE first SET url = ?, source = ? WHERE digest = ?", (url, source, digest)
            )
            return None
        return first_source or first

    def moved(self, url: str, source: str, sha256: object) -> None:
        """``url``'s row now names another input line: where it is the first of its
        image, later rows point at the new ``source``."""
        digest = _digest(sha256)
        if digest is not None:
            self._db.execute(
                "UPDATE first SET source = ? WHERE digest = ? AND url = ?", (source, digest, url)
            )
            self._tick()

    def first_of(self, url: str, sha256: object) -> str | None:
        """The ``source`` of the first row with this image, unless that is ``url``'s own
        (what ``note`` returns, without recording anything)."""
        digest = _digest(sha256)
        found = (
            None
            if digest is None
            else self._db.execute(
                "SELECT url, source FROM first WHERE digest = ?", (digest,)
            ).fetchone()
        )
        return None if found is None or found[0] == url else (found[1] or found[0])

    def _tick(self) -> None:
        self._pending += 1
        if self._pending >= COMMIT_EVERY:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
            self._pending = 0

    def keep(self, fingerprint: list[int]) -> None:
        """The run completed: keep the index for the manifest as it now is. Raises
        OSError."""
        value = json.dumps({"version": VERSION, "fingerprint": fingerprint})
        try:
            self._db.execute("REPLACE INTO meta VALUES ('kept', ?)", (value,))
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
        except sqlite3.Error as exc:
            raise OSError(f"content index {self.path}: {exc}") from None

    def close(self) -> None:
        """Close the index (the file stays; ``discard`` removes it)."""
        with contextlib.suppress(AttributeError, sqlite3.Error):
            if self._db.in_transaction:
                self._db.execute("COMMIT")
        with contextlib.suppress(AttributeError, sqlite3.Error):
            self._db.close()

    def discard(self) -> None:
        """Close the index and remove its file."""
        self.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def _digest(sha256: object) -> bytes | None:
    """The 32 bytes of a sha256 given as 64 hex digits; None for anything else."""
    if not isinstance(sha256, str) or len(sha256) != 64:
        return None
    try:
        return bytes.fromhex(sha256)
    except ValueError:
        return None
