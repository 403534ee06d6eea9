"""The content index's questions about copies (``contents.ContentIndex`` has them):
which URLs hold an image now, which of them is its first, and the images whose first
changed while the run was planned, for ``repoint`` to bring their rows' pointers up to
date.

``changed`` holds the digests whose first's line changed (``moved``), whose first is no
longer listed (``gone``), whose first's URL now has other bytes, or whose rows, read
from the manifest, point elsewhere than the index says (``contents.ContentIndex.seed``:
an older crawler's stale pointers). It grows with what changed, never with the rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, NamedTuple


class First(NamedTuple):
    """The URL whose row had an image first, and that row's input line."""

    url: str
    source: str | None


class Copies:
    """Queries on the ``first`` and ``current`` tables of a content index."""

    _db: sqlite3.Connection
    changed: set[bytes]

    def _guarded(self, action: Callable[..., Any], *args: object) -> Any:
        raise NotImplementedError  # contents.ContentIndex: None once the index broke

    def moved(self, url: str, source: str, sha256: object) -> None:
        """``url``'s row now names another input line: where it is the first of its
        image, later rows point at the new ``source``. Raises JournalError."""
        self._guarded(self._moved, url, source, sha256)

    def _moved(self, url: str, source: str, sha256: object) -> None:
        digest = digest_of(sha256)
        if digest is not None:
            found = self._db.execute(
                "UPDATE first SET source = ? WHERE digest = ? AND url = ? AND source IS NOT ?",
                (source, digest, url, source),
            )
            if found.rowcount:  # the rows pointing at it name the old line: ``repoint``
                self.changed.add(digest)

    def gone(self, url: str) -> None:
        """``url`` is in no list now: its row is history, never a first (the next listed
        copy becomes it: ``repoint``). Raises JournalError."""
        self._guarded(self._gone, url)

    def _gone(self, url: str) -> None:
        found = self._db.execute("SELECT digest FROM current WHERE url = ?", (url,)).fetchone()
        if found is not None:
            self._db.execute("DELETE FROM current WHERE url = ?", (url,))
            self._left(url, found[0])

    def _left(self, url: str, digest: bytes) -> None:
        """``url`` no longer holds ``digest``: if it was its first, its copies need one."""
        first = self._db.execute("SELECT url FROM first WHERE digest = ?", (digest,)).fetchone()
        if first is not None and first[0] == url:
            self.changed.add(digest)

    def first_of(self, url: str, sha256: object) -> str | None:
        """The ``source`` of the first row with this image, unless that is ``url``'s own
        (what ``note`` returns, without recording anything). Raises JournalError."""
        return self._guarded(self._first_of, url, sha256)

    def _first_of(self, url: str, sha256: object) -> str | None:
        digest, query = digest_of(sha256), "SELECT url, source FROM first WHERE digest = ?"
        found = None if digest is None else self._db.execute(query, (digest,)).fetchone()
        return None if found is None or found[0] == url else (found[1] or found[0])

    def first(self, digest: bytes) -> First | None:
        """The first of an image (None: none, or the index broke). Raises JournalError."""
        found = self._guarded(lambda: self._db.execute(
            "SELECT url, source FROM first WHERE digest = ?", (digest,)).fetchone())  # fmt: skip
        return None if found is None else First(*found)

    def make_first(self, digest: bytes, first: First | None) -> None:
        """``first`` is now the image's first (None: no current row has it). Raises
        JournalError."""
        if first is None:
            self._guarded(self._db.execute, "DELETE FROM first WHERE digest = ?", (digest,))
        else:
            self._guarded(self._db.execute, "REPLACE INTO first VALUES (?, ?, ?)",
                          (digest, first.url, first.source))  # fmt: skip

    def holders(self, digest: bytes) -> list[str]:
        """The URLs whose current row has this image ([] once the index broke): a look-up
        in the index on ``current.digest``. Raises JournalError."""
        found = self._guarded(lambda: self._db.execute(
            "SELECT url FROM current WHERE digest = ?", (digest,)).fetchall())  # fmt: skip
        return [url for (url,) in found or ()]

    def users(self, digests: set[str]) -> dict[str, tuple[str, str]] | None:
        """For each sha256 (hex) of ``digests`` that current rows have, the least and the
        greatest of their URLs (the same twice: one URL); None once the index broke.
        Looked up by digest, in SQLite. Raises JournalError."""
        return self._guarded(self._users, digests)

    def _users(self, digests: set[str]) -> dict[str, tuple[str, str]]:
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (digest BLOB PRIMARY KEY)")
        self._db.execute("DELETE FROM wanted")
        wanted = [(d,) for d in map(digest_of, digests) if d is not None]
        self._db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", wanted)
        found = self._db.execute("SELECT digest, MIN(url), MAX(url) FROM current "
                                 "JOIN wanted USING (digest) GROUP BY digest")  # fmt: skip
        return {digest.hex(): (least, most) for digest, least, most in found}


def digest_of(sha256: object) -> bytes | None:
    """The 32 bytes of a sha256 given as 64 hex digits; None for anything else."""
    if not isinstance(sha256, str) or len(sha256) != 64:
        return None
    try:
        return bytes.fromhex(sha256)
    except ValueError:
        return None
