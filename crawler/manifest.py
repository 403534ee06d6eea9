"""The download manifest: a JSON Lines journal with one current row per input URL.

Rows are appended and flushed (and fsynced) as results arrive, so a crash of the
master, or of its host, loses nothing already reported; the reader tolerates a torn
last line, and the writer cuts one off before appending. A rerun reads the journal
to resume. When a run completes, the journal is compacted to one current row per
URL (atomically). A lock file keeps a second master off the same manifest.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from crawler import constants as c
from crawler.exceptions import UsageError

# Column order of the manifest and of the CSV export.
FIELDS = (
    "url",
    "status",
    "http_status",
    "error",
    "path",
    "sha256",
    "bytes",
    "width",
    "height",
    "format",
    "worker",
    "attempts",
    "leases",
    "elapsed_s",
    "final_url",
    "content_type",
    "etag",
    "last_modified",
    "reused",
    "fetched_at",
    "source",
    "duplicate_of",
    "run_id",
    "finished_at",
)
# Rows that belong to one input line rather than to a URL: rewritten by every run.
LINE_STATUSES = frozenset({c.DUPLICATE, c.INVALID_URL})


def make_row(**values: Any) -> dict[str, Any]:
    """A manifest row with every field present (None where unknown), in column order."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown manifest fields: {sorted(unknown)}")
    return {name: values.get(name) for name in FIELDS}


def _dump(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


class ManifestWriter:
    """Appends rows to the journal, flushing and fsyncing after every batch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = open(path.with_name(path.name + ".lock"), "a")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"cannot write manifest {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise UsageError(
                f"manifest {path} is in use by another master (lock {self._lock.name}); "
                "wait for it to finish or use another --manifest"
            ) from None
        try:
            _cut_torn_tail(path)
            self._fh: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            self._lock.close()
            raise UsageError(f"cannot write manifest {path}: {exc.strerror or exc}") from None

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        text = "".join(_dump(row) for row in rows)
        if not text:
            return
        self._fh.write(text)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def compact(self, rows: Iterable[dict[str, Any]]) -> None:
        """Replace the journal by ``rows`` (atomically), then keep appending to the new file."""
        self._fh.close()
        tmp = self.path.with_name(self.path.name + ".compact")
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(_dump(row))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        self._fh.close()
        self._lock.close()  # releases the flock


def _cut_torn_tail(path: Path) -> None:
    """Drop a partial last line left by a crash mid-write, so appends start on a new line."""
    with contextlib.suppress(FileNotFoundError), open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        pos, block = size, 65536
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                fh.truncate(start + newline + 1)
                return
            pos = start
        fh.truncate(0)


def read_manifest(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a manifest; a torn or garbled line (a crash mid-write) is skipped."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("url"), str):
                yield row


def latest_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The newest row per URL in a journal, ignoring per-line rows (duplicate, invalid)."""
    latest: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return latest
    try:
        for row in read_manifest(path):
            if row.get("status") in c.STATUSES and row["status"] not in LINE_STATUSES:
                latest[row["url"]] = row
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    return latest


def write_csv(rows: Iterable[dict[str, Any]], path: Path) -> None:
    """Export rows as CSV that opens cleanly in a spreadsheet (UTF-8 with BOM)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(FIELDS)
            for row in rows:
                writer.writerow([_cell(row.get(name)) for name in FIELDS])
    except OSError as exc:
        raise UsageError(f"cannot write CSV {path}: {exc.strerror or exc}") from None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet; text from the web must not be.
    if text[:1] in ("=", "+", "-", "@") and not isinstance(value, (int, float)):
        return "'" + text
    return text
