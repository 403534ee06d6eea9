"""The content index's batch of rows: images and URLs new to it, noted in four statements.

``NewImages.note_many`` answers as ``note`` would for each row in turn. When every row
of the batch is new to the index (its URL holds no image there, its image has no first,
and no two rows share a URL or an image: a first run's rows, nearly all), the answers
are all None and the writes are the same for any order, so they go in one statement per
table, after one look-up per table that shows the batch new. Any other batch is noted
row by row, as before (three or four statements a row, the look-ups wasted).

Why: sqlite3 runs every statement without the GIL, and the master's intake thread,
which notes every row, then waits to take it back from the server threads decoding the
workers' calls. Under load (8 simulated workers on 2 cores, issue 15) that wait was
~70 µs a row, more than half of the intake's time, and the intake is what bounds the
master's results a second.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from crawler.master.copies import digest_of

# Rows a statement: at most 3 parameters each, within SQLite's smallest limit (999,
# SQLITE_MAX_VARIABLE_NUMBER before 3.32). A chunk is padded to a power of two by
# repeating its last row (harmless: the writes are idempotent), so that the statements
# are few texts, prepared once each in sqlite3's statement cache.
CHUNK = 256
Note = tuple[str, str, object]  # (url, source, sha256): as ``ContentIndex.note`` takes


class NewImages:
    """``note_many`` for ``contents.ContentIndex``: needs its connection, ``_guarded``,
    ``_note`` and ``_tick``."""

    _db: sqlite3.Connection

    def _guarded(self, action: Callable[..., Any], *args: object) -> Any:
        raise NotImplementedError  # contents.ContentIndex: None once the index broke

    def _note(self, url: str, source: str, sha256: object) -> str | None:
        raise NotImplementedError

    def _tick(self, count: int = 1) -> None:
        raise NotImplementedError

    def note_many(self, notes: Sequence[Note]) -> list[str | None]:
        """What ``note`` returns for each of ``notes``, noted in order (None for each,
        once the index broke). Raises JournalError."""
        found = self._guarded(self._note_many, notes)
        return [None] * len(notes) if found is None else found

    def _note_many(self, notes: Sequence[Note]) -> list[str | None]:
        if len(notes) > 1 and self._all_new(notes):
            for start in range(0, len(notes), CHUNK):
                self._add_new(notes[start : start + CHUNK])
            self._tick(len(notes))
            return [None] * len(notes)
        return [self._note(*note) for note in notes]

    def _all_new(self, notes: Sequence[Note]) -> bool:
        """No URL of ``notes`` holds an image in the index, no image of theirs has a
        first, and no two of them share a URL or an image."""
        urls = [url for url, _, _ in notes]
        digests = [d for d in (digest_of(sha256) for _, _, sha256 in notes) if d is not None]
        if len(set(urls)) < len(urls) or len(set(digests)) < len(digests):
            return False
        for start in range(0, len(notes), CHUNK):
            if self._any("current", "url", urls[start : start + CHUNK]):
                return False
            if self._any("first", "digest", digests[start : start + CHUNK]):
                return False
        return True

    def _any(self, table: str, key: str, values: list[Any]) -> bool:
        if not values:
            return False
        values = _padded(values)
        marks = ", ".join("?" * len(values))
        query = f"SELECT 1 FROM {table} WHERE {key} IN ({marks}) LIMIT 1"
        return self._db.execute(query, values).fetchone() is not None

    def _add_new(self, notes: Sequence[Note]) -> None:
        """Record rows new to the index: as ``_seed`` does for each (a row without an
        image, of a URL holding none, changes nothing)."""
        held = [(url, digest_of(sha256), source) for url, source, sha256 in notes]
        held = [(url, digest, source) for url, digest, source in held if digest is not None]
        if not held:
            return
        held = _padded(held)
        pairs = ", ".join(["(?, ?)"] * len(held))
        self._db.execute(
            f"REPLACE INTO current VALUES {pairs}",
            [value for url, digest, _ in held for value in (url, digest)],
        )
        triples = ", ".join(["(?, ?, ?)"] * len(held))
        self._db.execute(
            f"INSERT OR IGNORE INTO first VALUES {triples}",
            [
                value
                for url, digest, source in held
                for value in (digest, url, source if isinstance(source, str) else None)
            ],
        )


def _padded(values: list[Any]) -> list[Any]:
    """``values`` and copies of its last, to the next power of two."""
    size = 1 << (len(values) - 1).bit_length()
    return values + [values[-1]] * (size - len(values))
