"""The manifest rows an export takes, streamed: each URL's current row, read twice.

A manifest is a journal: after a completed run it holds one row per input line, but an
interrupted run leaves earlier rows of a URL in it too, and only the last one counts.
The first pass notes, for each URL, the line of its last row (on disk, in a SQLite file
in the export folder: 10M URLs stay within ``CACHE_KIB`` of memory); the second yields
the rows on those lines. Rows of one input line (``duplicate``, ``invalid_url``) are
all kept. Damaged lines are counted and skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.exceptions import UsageError
from crawler.manifest import LINE_STATUSES, check_readable, typed_row

CACHE_KIB = 8192  # SQLite page cache: the index's memory, whatever the row count
COMMIT_EVERY = 50_000
INDEX_PREFIX, INDEX_SUFFIX = ".export-index.", ".sqlite"  # the index's name in --out
READ_LIMIT = 1 << 20  # characters read at most at a time while looking for a first row


@dataclass
class Reading:
    """What reading the manifest met."""

    lines: int = 0
    damaged: int = 0  # lines that are not a manifest row (torn, garbled)


class CurrentRows:
    """The current rows of ``manifest`` (see the module docstring); ``close`` when done.
    Raises UsageError (one line) when the manifest or the scratch folder is unusable."""

    def __init__(self, manifest: Path, scratch: Path) -> None:
        self.manifest = manifest
        self.reading = Reading()
        check_readable(manifest)
        try:  # both passes read this one file (see _lines)
            self._fh = open(manifest, "rb")  # noqa: SIM115  (closed in close())
        except OSError as exc:
            raise UsageError(f"cannot read manifest {manifest}: {exc.strerror}") from None
        self._end: int | None = None  # where the first pass ended (bytes)
        self.row_nulled = 0  # values of the wrong type the row last yielded read as null
        remove_left_indexes(scratch)
        try:
            self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115  (closed in close())
                prefix=INDEX_PREFIX, suffix=INDEX_SUFFIX, dir=scratch
            )
            self._db = sqlite3.connect(self._file.name, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._db.execute("CREATE TABLE last (url BLOB PRIMARY KEY, line INTEGER) WITHOUT ROWID")
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot index the manifest in {scratch}: {exc}") from None
        self.total = self._index()

    def _index(self) -> int:
        """First pass: the last line of each URL; returns the number of current rows."""
        db, pending, line_rows = self._db, 0, 0
        db.execute("BEGIN")
        for number, row, _ in self._lines():
            line_rows += row["status"] in LINE_STATUSES
            if row["status"] not in LINE_STATUSES:
                db.execute("REPLACE INTO last VALUES (?, ?)", (_key(row["url"]), number))
                pending += 1
                if pending >= COMMIT_EVERY:
                    db.execute("COMMIT")
                    db.execute("BEGIN")
                    pending = 0
        db.execute("COMMIT")
        return db.execute("SELECT count(*) FROM last").fetchone()[0] + line_rows

    def _lines(self) -> Iterator[tuple[int, dict[str, Any], int]]:
        """The manifest's rows (line number, row), read from the one file opened first,
        up to where the first pass ended: a master compacting the manifest meanwhile
        renames another file over its name, and appends after that end. Until
        2026-12-03 the second pass opened the name again and matched the first pass's
        line numbers against the compacted file: every row ``no_image``, exit 0, and the
        earlier export removed (a fresh user's)."""
        self.reading = Reading()
        fh, end, number, read = self._fh, self._end, 0, 0
        try:
            fh.seek(0)
            for raw in fh:
                read += len(raw)  # bytes read so far (fh.tell() per line: 0.3 us more)
                over = read - end if end is not None else 0
                for line in _split(raw[: len(raw) - over] if over > 0 else raw):
                    number += 1  # a line as text mode reads it: \r, \n or \r\n ends it
                    self.reading.lines += 1
                    row, nulled = _parse(line.removeprefix("\ufeff") if number == 1 else line)
                    if row is None:
                        self.reading.damaged += 1
                        continue
                    yield number, row, nulled
                if over >= 0 and end is not None:  # as far as the first pass read: no more
                    return
            if end is not None:  # shorter now than the first pass found it
                raise UsageError(
                    f"manifest {self.manifest} was cut short while it was exported: export again"
                )
            self._end = read
        except OSError as exc:
            raise UsageError(f"cannot read manifest {self.manifest}: {exc.strerror}") from None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Second pass: the current rows, in manifest order."""
        find = "SELECT line FROM last WHERE url = ?"
        for number, row, nulled in self._lines():
            if row["status"] not in LINE_STATUSES:
                found = self._db.execute(find, (_key(row["url"]),)).fetchone()
                if found is None or found[0] != number:
                    continue
            self.row_nulled = nulled
            yield row

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error, AttributeError):
            self._db.close()
        with contextlib.suppress(OSError, AttributeError):
            self._fh.close()
        with contextlib.suppress(OSError, AttributeError):
            self._file.close()


def remove_left_indexes(scratch: Path) -> None:
    """Remove the indexes an export killed outright (SIGKILL, a power cut) left in
    ``scratch``, as its staging folder is: nothing else removes them. An export running
    into the same folder at once would lose its staging folder anyway."""
    for path in scratch.glob(f"{INDEX_PREFIX}*{INDEX_SUFFIX}"):
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.unlink()


def check_manifest(manifest: Path) -> None:
    """Raise UsageError (one line) unless ``manifest`` is a file holding a manifest row:
    read up to its first row (a manifest's first line), or to the end of a file that is
    not one, in pieces of at most READ_LIMIT bytes (an image given by mistake has no
    newline to stop at). A UTF-8 BOM before the first row is skipped, here and below,
    as the master does (an editor may have added one)."""
    check_readable(manifest)
    lines = 0
    try:
        with open(manifest, encoding="utf-8-sig", errors="replace") as fh:
            while line := fh.readline(READ_LIMIT):
                lines += 1
                if _parse(line)[0] is not None:
                    return
    except OSError as exc:
        raise UsageError(f"cannot read manifest {manifest}: {exc.strerror}") from None
    why = f"none of its {lines} lines is a manifest row" if lines else "it is empty"
    raise UsageError(f"{manifest} is not a crawler manifest: {why}")


def _key(url: str) -> bytes:
    """16 bytes naming a URL (BLAKE2b): two URLs share one with odds of 2^-128."""
    return hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _split(raw: bytes) -> list[str]:
    """``raw`` (one line read in binary, up to its \\n) as the lines text mode's universal
    newlines make of it (a lone \\r ends one too: a manifest edited on an old Mac exported
    nothing, exit 0, and removed the earlier export: a review's), decoded."""
    text = raw.decode("utf-8", "replace")
    if "\r" not in text:
        return [text]
    parts = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _parse(line: str) -> tuple[dict[str, Any] | None, int]:
    """A manifest row (an object with a string url and status), or None; and how many
    of its values were of the wrong type, read as null (``manifest.typed_row``: until
    2026-12-03 the summary's ``nulled_values`` missed them, a fresh user's)."""
    try:
        raw = json.loads(line)
        row = typed_row(raw)
    except (ValueError, RecursionError):
        return None, 0
    if row is None or row.get("status") is None:
        return None, 0
    nulled = 0 if row is raw else sum(v is not None and row[k] is None for k, v in raw.items())
    return row, nulled
