"""Filling the content index from the manifest (``contents.ContentIndex.seed``), with
the firsts its rows name.

The first of an image is the row that had it first as the rows arrived, which need not
be the earliest line: a slow answer from line 2 makes line 4's copy the first. Read in
journal order, the rows give back those firsts. But a compaction writes the rows in
list order (``journal.ManifestWriter.compact``), so a copy's row can come before its
first's; an index filled from that manifest (deleted, damaged, after a crash) took the
copy for the first, and ``repoint`` journalled every row of the image again with the
other first (a fresh user's, 2026-12-02: every first of a list swapped). So a first
taken from a row that names another first (its ``same_content_as``) is *provisional*,
kept in a temporary table, ``provisional``, with the line its row named; a later row of
the image that names no first (a first when written) takes its place. What is still
provisional when the manifest is read is marked ``changed`` for ``repoint``, as is every
image with a row whose pointer disagrees: with the first that stands, or with the line
the copies before its first named (a review's, 2026-12-02). So an older crawler's stale
pointers, or an edit's, are mended.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from crawler.master.copies import digest_of


class Seeding:
    """``seed`` and ``seeded`` of a content index (``contents.ContentIndex``)."""

    _db: sqlite3.Connection
    _provisional = 0  # rows in ``provisional``: none, no look-up there

    def _guarded(self, action: Callable[..., Any], *args: object) -> Any:
        raise NotImplementedError  # contents.ContentIndex: None once the index broke

    def _seed(self, url: str, source: object, sha256: object) -> bool:
        raise NotImplementedError  # contents.ContentIndex: True when url is the first now

    def _first_of(self, url: str, sha256: object) -> str | None:
        raise NotImplementedError  # copies.Copies

    def seed(self, url: str, source: object, sha256: object, pointer: object = None) -> None:
        """An earlier run's row of ``url`` (from list line ``source``), in manifest order:
        ``sha256`` of its image (hex), or anything else for a row without one; ``pointer``
        its ``same_content_as`` (the ``source`` of its image's first, None: it was the
        first). Raises JournalError."""
        self._guarded(self._seed_row, url, source, sha256, pointer)

    def seeded(self) -> None:
        """Every row was seeded: the images still provisional (their rows named a first
        that never came) are marked ``changed``. Raises JournalError."""
        if self._provisional:
            self._guarded(self._settle_provisional)

    def _seed_row(self, url: str, source: object, sha256: object, pointer: object) -> None:
        new = self._seed(url, source, sha256)
        digest = digest_of(sha256)
        if digest is None:
            return
        if new:
            if pointer is not None:  # a copy before its first: a compacted manifest
                self._db.execute("REPLACE INTO provisional VALUES (?, ?)", (digest, str(pointer)))
                self._provisional += 1
            elif self._provisionally(digest) is not None:  # a first of its own: no earlier
                self._unprovision(digest)  # row's provisional first stands
            return
        named = self._provisionally(digest)
        if named is None:  # the first stands: a row naming another disagrees
            if pointer != self._first_of(url, sha256):
                self._changed(digest)
        elif pointer is None:  # the first the provisional rows named, or another: it is
            label = source if isinstance(source, str) else None
            self._unprovision(digest)
            self._db.execute(
                "UPDATE first SET url = ?, source = ? WHERE digest = ?", (url, label, digest)
            )
            if (label or url) != named:
                self._changed(digest)
        elif pointer != named:  # names another than the copies before it (or one of them)
            self._changed(digest)

    def _provisionally(self, digest: bytes) -> str | None:
        """The first the provisional first's row named, if the image's first is one."""
        if not self._provisional:
            return None
        query = "SELECT pointer FROM provisional WHERE digest = ?"
        found = self._db.execute(query, (digest,)).fetchone()
        return None if found is None else found[0]

    def _unprovision(self, digest: bytes) -> None:
        self._db.execute("DELETE FROM provisional WHERE digest = ?", (digest,))
        self._provisional -= 1

    def _changed(self, digest: bytes) -> None:
        self._db.execute("INSERT OR IGNORE INTO changed VALUES (?)", (digest,))

    def _settle_provisional(self) -> None:
        self._db.execute("INSERT OR IGNORE INTO changed SELECT digest FROM provisional")
        self._db.execute("DELETE FROM provisional")
        self._provisional = 0
