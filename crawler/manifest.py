"""The download manifest: a JSON Lines journal with one row per input URL, plus CSV export.

Rows are appended and flushed as results arrive, so a crash loses nothing already
reported; the reader tolerates a torn last line. ``write_csv`` exports the rows for
a spreadsheet.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

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
    "source",
    "duplicate_of",
    "run_id",
    "finished_at",
)


def make_row(**values: Any) -> dict[str, Any]:
    """A manifest row with every field present (None where unknown), in column order."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown manifest fields: {sorted(unknown)}")
    return {name: values.get(name) for name in FIELDS}


class ManifestWriter:
    """Appends rows to the JSON Lines manifest, flushing after every batch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"cannot write manifest {path}: {exc.strerror or exc}") from None

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())  # a crash of the host, not just the process, keeps them

    def close(self) -> None:
        self._fh.close()


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
