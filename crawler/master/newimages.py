"""The content index's batch of rows: those new to it noted together, a few statements in all.

``NewImages.note_many`` answers as ``note`` would for each row in turn. A row is new to
the index when its URL holds no image there and its image has no first, before the
batch, and no earlier row of the batch has its URL or its image: ``note`` would answer
None for it and write its URL and image, whatever the rows around it did. Such rows
(a first run's, nearly all) are written together, each run of them between two other
rows in one statement per table (256 rows at most), after one look-up per table for
the whole batch; the other rows are noted one by one, in order, as before.

Why: sqlite3 runs every statement without the GIL, and the master's intake thread,
which notes every row, then waits to take it back from the server threads decoding the
workers' calls. Under load (8 simulated workers on 2 cores, issue 15) that wait was
~70 us a row, more than half of the intake's time, and the intake is what bounds the
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
    ``note`` and ``_tick``."""

    _db: sqlite3.Connection

    def _guarded(self, action: Callable[..., Any], *args: object) -> Any:
        raise NotImplementedError  # contents.ContentIndex: None once the index broke

    def note(self, url: str, source: str, sha256: object) -> str | None:
        raise NotImplementedError

    def _tick(self, count: int = 1) -> None:
        raise NotImplementedError

    def note_many(self, notes: Sequence[Note]) -> list[str | None]:
        """What ``note`` returns for each of ``notes``, noted in order (a row without an
        answer once the index broke, as ``note``; damage the batch's look-up meets costs
        the answers of the rows before it too). Raises JournalError."""
        new = self._guarded(self._new, notes) if len(notes) > 1 else None
        if new is None:
            return [self.note(*note) for note in notes]
        answers: list[str | None] = []
        run: list[Note] = []  # new rows not written yet: before the next other row
        for note, is_new in zip(notes, new, strict=True):
            if is_new:
                run.append(note)
                answers.append(None)
                continue
            self._write_new(run)
            answers.append(self.note(*note))
        self._write_new(run)
        return answers

    def _new(self, notes: Sequence[Note]) -> list[bool]:
        """Which of ``notes`` are new to the index (this module's docstring)."""
        urls = [url for url, _, _ in notes]
        digests = [digest_of(sha256) for _, _, sha256 in notes]
        held = self._found("current", "url", urls)
        firsts = self._found("first", "digest", [d for d in digests if d is not None])
        seen: set[object] = set()  # the URLs and images of the rows before
        new = []
        for url, digest in zip(urls, digests, strict=True):
            fresh_image = digest is None or (digest not in firsts and digest not in seen)
            new.append(url not in held and url not in seen and fresh_image)
            seen.update((url, digest))
        return new

    def _found(self, table: str, key: str, values: list[Any]) -> set[Any]:
        """Which of ``values`` are a ``key`` of ``table``: one statement a chunk."""
        found: set[Any] = set()
        for start in range(0, len(values), CHUNK):
            chunk = _padded(values[start : start + CHUNK])
            marks = ", ".join("?" * len(chunk))
            query = f"SELECT {key} FROM {table} WHERE {key} IN ({marks})"
            found.update(value for (value,) in self._db.execute(query, chunk))
        return found

    def _write_new(self, run: list[Note]) -> None:
        """Record the new rows of ``run`` (as ``_seed`` does each), and empty it."""
        if run:
            self._guarded(self._add_new, run)
            run.clear()

    def _add_new(self, notes: list[Note]) -> None:
        held = [(url, digest_of(sha256), source) for url, source, sha256 in notes]
        held = [(url, digest, source) for url, digest, source in held if digest is not None]
        for start in range(0, len(held), CHUNK):
            self._add_chunk(_padded(held[start : start + CHUNK]))
        self._tick(len(notes))

    def _add_chunk(self, held: list[tuple[str, bytes, str]]) -> None:
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
