"""The manifest's format: its columns, its rows, the files beside it. The one home for
what a manifest row is, shared by the master (which writes it) and the report (which
reads it).

A manifest is a JSON Lines journal (``master.journal`` appends to it): every input line
gets a row, and in the journal the last row of a URL is its current one. Beside
``NAME.jsonl`` a run writes ``NAME.summary.json`` (the last run), appends to
``NAME.runs.jsonl`` (every run) and writes ``NAME.report.html``.
"""

from __future__ import annotations

import json
import math
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.atomic import TMP_SUFFIX
from crawler.exceptions import UsageError

# Column order of the manifest and of the CSV export.
FIELDS = (
    "url",
    "status",
    "http_status",
    "error",
    "path",
    "store",  # the shared store holding the image (file:// or s3:// URL); null: on its host
    "sha256",
    "same_content_as",  # the source of the first row whose image has this sha256
    "phash",  # 64-bit perceptual hash of the image (first frame), 16 hex digits
    "bytes",
    "width",
    "height",
    "orientation",  # EXIF orientation 1-8 (width and height are as displayed)
    "format",
    "worker",
    "host",  # --host-id of the worker that stored (or reused) the image
    "attempts",
    "leases",
    "elapsed_s",
    "final_url",
    "content_type",
    "etag",
    "last_modified",
    "reused",
    "failures",  # failed runs in a row, this one included (failures only)
    "first_failed_at",  # when the URL failed in the first of them (its finished_at then)
    "fetched_at",
    "source",
    "duplicate_of",
    "run_id",
    "finished_at",
    "extra",  # the other columns (CSV, TSV) or keys (JSON Lines) of the URL's input row
)
# The JSON types each field may hold besides null, as ``make_row``'s callers write them
# (``extra`` any: a list's own columns). A field read back with another type (an edit: a
# list, an object, a number past 64 bits, 1e400 reading as infinity) reads as null
# (``typed_row``): until 2026-12-03 it was a traceback on every later run and in every
# report (a hostile-input trial's).
_INTS = ("http_status", "bytes", "width", "height", "orientation", "attempts", "leases",
         "failures")  # fmt: skip
# One type a field (a bool is no int: ``type(v) is int``); ``elapsed_s`` alone is either.
FIELD_TYPE: dict[str, type] = {
    **{name: str for name in FIELDS if name not in ("extra", "elapsed_s")},
    **dict.fromkeys(_INTS, int),
    "reused": bool,
}
INT64 = 1 << 63  # a field's int past this is no count the crawler wrote (arrays keep them)


def typed_row(row: object) -> dict[str, Any] | None:
    """``row`` (from ``json.loads``) as a manifest row: None unless it is an object whose
    ``url`` is a string; a field holding a value of another type than its
    ``FIELD_TYPE`` (``elapsed_s``: a finite number, RFC 8259 s. 6 has no infinity; an
    int within 64 bits) reads as null, in a copy. Fields the crawler does not know are
    not looked at (a newer crawler's). 3-5 us a whole row, half of ``json.loads``."""
    if not isinstance(row, dict) or type(row.get("url")) is not str:
        return None
    wrong = []  # a status among them: the master takes the row for a damaged line, the
    # report shows "(missing)", the export leaves it out
    for name, value in row.items():
        kind = FIELD_TYPE.get(name)
        if value is None or (kind is str and type(value) is str):  # most values: at once
            continue
        if not _fits(kind, name, value):
            wrong.append(name)
    return row if not wrong else row | dict.fromkeys(wrong)


def _fits(kind: type | None, name: str, value: object) -> bool:
    if kind is int:
        return type(value) is int and -INT64 <= value < INT64  # type: ignore[operator]
    if kind is not None:
        return type(value) is kind
    if name == "elapsed_s":
        return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]
    return True


# For membership: a tuple is searched name by name (the master asks for each field of
# each result: ~8 us a row of its CPU, issue 15).
FIELD_SET = frozenset(FIELDS)
# Rows that belong to one input line rather than to a URL: rewritten by every run.
LINE_STATUSES = frozenset({c.DUPLICATE, c.INVALID_URL})


def make_row(**values: Any) -> dict[str, Any]:
    """A manifest row with every field present (None where unknown), in column order."""
    if not FIELD_SET.issuperset(values):
        raise ValueError(f"unknown manifest fields: {sorted(set(values) - FIELD_SET)}")
    return {name: values.get(name) for name in FIELDS}


def now_iso() -> str:
    """The time now, as the manifest writes it: ISO 8601, UTC, whole seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def summary_path(manifest: Path) -> Path:
    """``NAME.summary.json`` beside ``NAME.jsonl``: the last run's summary."""
    return manifest.with_name(manifest.stem + ".summary.json")


def runs_path(manifest: Path) -> Path:
    """``NAME.runs.jsonl`` beside ``NAME.jsonl``: one summary line per run."""
    return manifest.with_name(manifest.stem + ".runs.jsonl")


def report_path(manifest: Path) -> Path:
    """``NAME.report.html`` beside ``NAME.jsonl``: the HTML run report."""
    return manifest.with_name(manifest.stem + ".report.html")


def contents_path(manifest: Path) -> Path:
    """``NAME.contents.sqlite`` beside ``NAME.jsonl``: the content index as the last
    completed run left it (``master.contents``)."""
    return manifest.with_name(manifest.stem + ".contents.sqlite")


def resume_path(manifest: Path) -> Path:
    """``NAME.resume.bin`` beside ``NAME.jsonl``: the kept resume index
    (``master.keptindex``)."""
    return manifest.with_name(manifest.stem + ".resume.bin")


def lock_path(manifest: Path) -> Path:
    """``NAME.jsonl.lock`` beside ``NAME.jsonl``: held by the master journalling into it."""
    return manifest.with_name(manifest.name + ".lock")


COMPACT_SUFFIX = ".compact"  # NAME.jsonl.compact: the compaction's copy, renamed over it
# The files written beside a file while it is being written: ``atomic.replacing``'s
# (and the resume index's) ``.tmp``, the compaction's copy, SQLite's rollback journal
# and write-ahead log (the content index). Writing over one of those loses what it is.
COMPANION_SUFFIXES = (TMP_SUFFIX, COMPACT_SUFFIX, "-journal", "-wal", "-shm")


def side_files(manifest: Path) -> dict[str, Path]:
    """The manifest and every file a master keeps beside it, by what each is."""
    return {
        "manifest": manifest,
        "summary": summary_path(manifest),
        "run history": runs_path(manifest),
        "report": report_path(manifest),
        "content index": contents_path(manifest),
        "report aggregate": aggregate_path(manifest),
        "resume index": resume_path(manifest),
        "manifest lock": lock_path(manifest),
    }


EDGE = 64 * 1024  # bytes read at each end of a manifest for its fingerprint


def fingerprint(manifest: Path) -> list[int]:
    """What tells a manifest changed since a file beside it was saved: [size, mtime in
    ns, CRC-32 of the first and of the last ``EDGE`` bytes] (``cp -p``, ``rsync -t``
    keep all four). Raises OSError."""
    with open(manifest, "rb") as fh:
        info = os.fstat(fh.fileno())
        head = zlib.crc32(fh.read(EDGE))
        fh.seek(max(0, info.st_size - EDGE))
        tail = zlib.crc32(fh.read(EDGE))
    return [info.st_size, info.st_mtime_ns, head, tail]


def aggregate_path(manifest: Path) -> Path:
    """``NAME.aggregate.json`` beside ``NAME.jsonl``: the report's aggregate as the last
    completed run left it (``report.ledger``)."""
    return manifest.with_name(manifest.stem + ".aggregate.json")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON Lines file; a torn, garbled or non-object line (a crash
    mid-write) is skipped. Raises OSError when the file cannot be read."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                yield row


@dataclass
class Skipped:
    """Lines ``read_manifest`` skipped: torn, garbled, or not a manifest row."""

    lines: int = 0


def read_manifest(path: Path, skipped: Skipped | None = None) -> Iterator[dict[str, Any]]:
    """Rows of a manifest (``typed_row``); damaged lines are skipped, and counted in
    ``skipped`` if given (blank lines are not). Raises OSError."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                row = typed_row(json.loads(line))
            except (ValueError, RecursionError):
                row = None
            if row is not None:
                yield row
            elif skipped is not None and line.strip():
                skipped.lines += 1


def read_runs(manifest: Path) -> Iterator[dict[str, Any]]:
    """The run history beside ``manifest`` (``NAME.runs.jsonl``), oldest first; nothing
    when there is none or it cannot be read. A line whose ``run_id`` is no string is no
    run's (until 2026-12-03 a list there was a traceback in the report: a hostile-input
    trial's)."""
    try:
        for run in read_jsonl(runs_path(manifest)):
            if type(run.get("run_id")) is str:
                yield run
    except OSError:
        return


def run_order(manifest: Path) -> dict[str, int]:
    """Each run of the history beside ``manifest`` (``read_runs``) and its place, 0 the
    first: where it started. The order runs happened in, whatever their clocks said."""
    order: dict[str, int] = {}
    for run in read_runs(manifest):
        order.setdefault(run["run_id"], len(order))
    return order


def journal_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(offset, line) of every complete line of a journal; a torn last line is skipped."""
    with open(path, "rb") as fh:
        offset = 0
        for line in fh:
            if line.endswith(b"\n"):
                yield offset, line
            offset += len(line)


def check_readable(path: Path) -> None:
    """Raise UsageError (one line) unless ``path`` is a regular file to read a manifest
    from: a named pipe hung ``crawler-report`` for good (it reads a manifest twice, and
    a pipe's second open waits for a writer: a fresh user's, 2026-12-03); a folder was
    "does not exist or is not a file"."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if not Path(path).is_absolute():
            os.getcwd()  # a working folder removed: FileNotFoundError, said as such (cli.edge)
        raise UsageError(f"manifest {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"manifest {path} is a folder, not a file: give its manifest.jsonl")
    if not stat.S_ISREG(mode):
        raise UsageError(f"manifest {path} is not a regular file (a pipe, a device): give a file")
