"""Exact content duplicates: which earlier row's image has the same bytes (sha256).

A row whose image's sha256 equals an earlier current row's gets ``same_content_as``:
that row's ``source``. "Earlier" is the order the rows arrived in: the rows of earlier
runs (read when the run resumes, their firsts as their pointers name them, wherever a
compaction put them: ``seeding``), then this run's rows as they arrive.

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
So a file found damaged (not SQLite, cut short, other tables, a folder) is removed and
filled anew, with a warning; one that fails during the run is dropped for the rest of
it (``broken``). Only a place that cannot hold it (read-only, full) stops the run.

Four tables, and ``provisional`` while the index is filled (``seeding``): ``first`` maps
a digest to the URL (and list line) whose row had it first;
``current`` a listed URL to its current row's digest (indexed by digest too: the copies
of an image, ``copies``). A first whose URL now has other bytes (refreshed), failed or
is no longer listed no longer counts: the next row with those bytes takes its place,
and the rows that pointed at it are journalled again before serving (``repoint``), by
the next run for a first that changed while this one served: ``changed`` holds those
images. A URL no longer listed is in neither ``first`` nor ``current``: its row is
history; ``away`` keeps its image, should it be listed again (``copies.Copies.back``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from crawler.console import log
from crawler.exceptions import JournalError
from crawler.master.copies import Copies, digest_of
from crawler.master.newimages import NewImages
from crawler.master.seeding import Seeding

CACHE_KIB = 8192  # SQLite page cache: the index's whole memory, whatever the row count
COMMIT_EVERY = 50_000  # changes per transaction (a transaction per row is 100x slower)
VERSION = 4  # 2: keyed by URL; 3: no URL no longer listed, by digest; 4: changed, away
TABLES = {
    "meta": "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)",
    "first": "CREATE TABLE first (digest BLOB PRIMARY KEY, url TEXT, source TEXT) WITHOUT ROWID",
    "current": "CREATE TABLE current (url TEXT PRIMARY KEY, digest BLOB) WITHOUT ROWID",
    # The copies of an image whose first changed (``copies.Copies.holders``)
    "holders": "CREATE INDEX holders ON current (digest)",
    # The images whose first changed, for ``repoint`` (this run's, or the next run's)
    "changed": "CREATE TABLE changed (digest BLOB PRIMARY KEY) WITHOUT ROWID",
    "away": "CREATE TABLE away (url TEXT PRIMARY KEY, digest BLOB) WITHOUT ROWID",
}
# Only while the index is filled from the manifest: the firsts its rows name (``seeding``).
# A temporary table (SQLite's temporary file, its own page cache): never in the file kept.
PROVISIONAL = "CREATE TEMP TABLE provisional (digest BLOB PRIMARY KEY, pointer TEXT) WITHOUT ROWID"
# Versions 2 and 3's tables: filled anew, without a warning
OLDER = ({"meta", "first", "current"}, {"meta", "first", "current", "holders"})
# SQLite's primary result codes (sqlite.org/rescode.html) that blame the place, not the
# file: no permission, busy, locked, out of memory, read-only, I/O error, full, cannot
# open. Any other code (malformed, not a database, no such table...) blames the file.
PLACE_ERRORS = frozenset({3, 5, 6, 7, 8, 10, 13, 14})
R = TypeVar("R")


class _Damaged(Exception):
    """The file at the index's path is not a whole content index (the message says why)."""


class ContentIndex(Copies, NewImages, Seeding):
    """The first URL holding each image content, on disk (see the module docstring).
    Raises OSError (from sqlite3.Error) when the file cannot be made or used, and
    JournalError when that happens during the run."""

    def __init__(self, path: Path, fingerprint: list[int] | None = None) -> None:
        """Open the index at ``path``. It is ``ready`` (holds every earlier row) when it
        was kept for a manifest whose fingerprint is ``fingerprint``; otherwise it is
        emptied, for ``seed`` to fill (a damaged file: removed, with a warning).
        ``fingerprint`` None: nothing earlier to know. Raises OSError."""
        self.path = path
        self.broken = False  # damaged during the run: unused from then on (``_guarded``)
        self._pending = 0
        damage = None
        try:
            try:
                reused = fingerprint is not None and self._reuse(fingerprint)
            except _Damaged as exc:
                damage, reused = str(exc), False
            if not reused:
                self._renew()
            self.ready = reused or fingerprint is None
            self._db.execute("BEGIN")
        except (sqlite3.Error, OSError) as exc:
            self.close()
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise OSError(f"content index {path}: {why}") from None
        if damage is not None:  # only once replaced: a place that refuses is the one line
            log.warning("content index %s was damaged (%s); rebuilt from the manifest",
                        path, damage)  # fmt: skip

    def _open(self) -> None:
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Rebuilt from the manifest whenever in doubt: no rollback journal, no fsync.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")

    def _reuse(self, fingerprint: list[int]) -> bool:
        """Open the file found; True when it was kept for ``fingerprint``. Raises
        _Damaged, sqlite3.Error (the place: read-only, full)."""
        if self.path.exists() and not self.path.is_file():
            raise _Damaged("a folder" if self.path.is_dir() else "not a file")
        try:
            self._open()
            tables = dict(
                self._db.execute("SELECT name, sql FROM sqlite_master WHERE sql NOT NULL")
            )
            if tables and tables != TABLES and set(tables) not in OLDER:
                raise _Damaged(f"not a content index: tables {', '.join(sorted(tables))}")
            if tables != TABLES or self._kept_for() != fingerprint:  # none, or version 2's
                return False
            # A cut inside the last page reads as zeros, not as an error: check the size.
            pages, size = (
                self._db.execute(f"PRAGMA {n}").fetchone()[0] for n in ("page_count", "page_size")
            )
            if (found := self.path.stat().st_size) != pages * size:
                raise _Damaged(f"{found} bytes where its {pages} pages take {pages * size}")
            # Claimed by this run: only its completion (keep) says the index fits again.
            self._db.execute("DELETE FROM meta WHERE name = 'kept'")
            self.away = self._db.execute("SELECT 1 FROM away LIMIT 1").fetchone() is not None
            return True
        except sqlite3.Error as exc:
            if _damaged(exc):
                raise _Damaged(str(exc)) from None
            raise

    def _kept_for(self) -> list[int] | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'kept'").fetchone()
        with contextlib.suppress(ValueError, TypeError, AttributeError):  # none, or not ours
            kept = json.loads(row[0])
            return kept.get("fingerprint") if kept.get("version") == VERSION else None
        return None

    def _renew(self) -> None:
        """An empty index in a new file, in place of whatever was there. Raises
        sqlite3.Error, OSError (a folder with files in it: not the crawler's to remove)."""
        self.close()
        if self.path.is_dir() and not self.path.is_symlink():
            try:
                self.path.rmdir()
            except OSError as exc:
                if exc.errno != errno.ENOTEMPTY:
                    raise
                raise OSError(exc.errno, "a folder with files in it: move it away") from None
        else:
            self.path.unlink(missing_ok=True)
        self._open()
        for sql in TABLES.values():
            self._db.execute(sql)
        self._db.execute(PROVISIONAL)
        self.away = False

    def note(self, url: str, source: str, sha256: object) -> str | None:
        """Record this run's row of ``url``; returns the ``source`` of the row that had
        the same image first (never ``url``'s own), or None. ``note_many`` notes a batch
        of rows. Raises JournalError."""
        return self._guarded(self._note, url, source, sha256)

    def _guarded(self, action: Callable[..., R], *args: object) -> R | None:
        """``action(*args)``; None once the index broke. A file found damaged during the
        run gives one warning and is not used for the rest of it (its later rows get no
        ``same_content_as``): filling it anew from the manifest there would hold up the
        results as long as reading the whole manifest, while the manifest grows. Raises
        JournalError (the place failed: a full disk, an I/O error)."""
        if self.broken:
            return None
        try:
            return action(*args)
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", None) is None:
                raise  # a misuse (a closed connection...): a bug, with its traceback
            if not _damaged(exc):
                raise JournalError(f"cannot keep the content index {self.path}: {exc}") from None
            log.warning("content index %s was damaged during the run (%s); later rows get "
                        "no same_content_as, and the next run rebuilds it from the manifest",
                        self.path, exc)  # fmt: skip
            self.broken = True
            self.close()
            return None

    def _seed(self, url: str, source: object, sha256: object) -> bool:
        """Record ``url``'s row; True when its image is new to the index (``url`` is now
        the first with it)."""
        digest = digest_of(sha256)
        new = False
        was = self._db.execute("SELECT digest FROM current WHERE url = ?", (url,)).fetchone()
        if was is not None and was[0] != digest:  # other bytes now, or none
            self._left(url, was[0])
        if digest is None:
            self._db.execute("DELETE FROM current WHERE url = ?", (url,))
        else:
            self._db.execute("REPLACE INTO current VALUES (?, ?)", (url, digest))
            label = source if isinstance(source, str) else None
            found = self._db.execute(
                "INSERT OR IGNORE INTO first VALUES (?, ?, ?)", (digest, url, label)
            )
            new = found.rowcount > 0
            if not new:  # the first's own later row names its line now (until 2026-12-01
                self._relabel(url, label, digest)  # a rebuilt index kept its oldest)
        self._tick()
        return new

    def _note(self, url: str, source: str, sha256: object) -> str | None:
        digest = digest_of(sha256)
        # An image new to the index has no earlier first: one statement fewer of four a
        # row, the common case (issue 15: the master's CPU a result).
        if self._seed(url, source, sha256) or digest is None:
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

    def _tick(self, count: int = 1) -> None:
        self._pending += count
        if self._pending >= COMMIT_EVERY:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
            self._pending = 0

    def keep(self, fingerprint: list[int]) -> None:
        """The run completed: keep the index for the manifest as it now is (one that broke
        during the run: removed instead). Raises OSError."""
        if self.broken:
            self.discard()
            return
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


def _damaged(exc: sqlite3.Error) -> bool:
    """Does SQLite's error blame the file (damaged, not SQLite, other tables), not the
    place it is in?"""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF not in PLACE_ERRORS
