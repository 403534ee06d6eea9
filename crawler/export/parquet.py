"""The manifest as a Parquet file with typed columns (pyarrow: the ``parquet`` extra).

Every current row (``rows.CurrentRows``) becomes a row of ``manifest.parquet``, written
in row groups of ``BATCH`` rows (memory stays bounded). Columns keep the manifest's
names and order (``manifest.FIELDS``): integers as int64, ``elapsed_s`` as float64,
``reused`` as bool, times (``fetched_at``, ``first_failed_at``, ``finished_at``) as
UTC timestamps (Parquet's unit: milliseconds), ``extra`` (the list's other columns,
which differ from list to list) as JSON text, everything else as text. A value of the
wrong type (a manifest edited by hand) becomes null and is counted, never guessed.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawler.exceptions import UsageError
from crawler.manifest import FIELDS

try:  # the parquet extra
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover - exercised on hosts without the extra
    pa = pq = None

BATCH = 16_384  # rows a row group: a few MB of Parquet, tens of MB of Python while built
INTEGERS = ("http_status", "bytes", "width", "height", "orientation", "attempts", "leases")
INTEGERS += ("failures",)
TIMES = ("fetched_at", "first_failed_at", "finished_at")
NAME = "manifest.parquet"


def schema() -> Any:
    """The pyarrow schema of the export; raises UsageError without pyarrow."""
    if pa is None:
        raise UsageError(
            "--format parquet needs pyarrow: pip install '.[parquet]' in the crawler's checkout"
        )
    types = {name: pa.int64() for name in INTEGERS} | {
        name: pa.timestamp("ms", tz="UTC") for name in TIMES
    }
    types |= {"elapsed_s": pa.float64(), "reused": pa.bool_()}
    return pa.schema([(name, types.get(name, pa.string())) for name in FIELDS])


class ParquetRows:
    """Writes rows to ``out/manifest.parquet`` (``.part`` until closed)."""

    def __init__(self, out: Path) -> None:
        self._schema = schema()
        self.path = out / NAME
        self._part = out / (NAME + ".part")
        self._writer = pq.ParquetWriter(self._part, self._schema, compression="zstd")
        self._batch: list[dict[str, Any]] = []
        self.nulled = 0  # values of the wrong type, written as null

    def add(self, row: dict[str, Any]) -> None:
        self._batch.append(self._typed(row))
        if len(self._batch) >= BATCH:
            self._flush()

    def _typed(self, row: dict[str, Any]) -> dict[str, Any]:
        typed = {}
        for name in FIELDS:
            value = _convert(name, row.get(name))
            self.nulled += value is None and row.get(name) is not None
            typed[name] = value
        return typed

    def _flush(self) -> None:
        if self._batch:
            self._writer.write_table(pa.Table.from_pylist(self._batch, schema=self._schema))
            self._batch = []

    def close(self) -> list[str]:
        self._flush()
        self._writer.close()
        self._part.replace(self.path)
        return [NAME]

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._writer.close()
        self._part.unlink(missing_ok=True)


def _convert(name: str, value: Any) -> Any:
    """``value`` as the column's type, or None when it is not of that type."""
    if value is None:
        return None
    if name in INTEGERS:
        return value if type(value) is int and abs(value) < 1 << 63 else None
    if name in TIMES:
        return _time(value)
    if name == "elapsed_s":
        return float(value) if type(value) in (int, float) else None
    if name == "reused":
        return value if isinstance(value, bool) else None
    if name == "extra":
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value if isinstance(value, str) else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
