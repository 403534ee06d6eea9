"""``--csv``: the manifest as CSV that opens cleanly in a spreadsheet (UTF-8 with a
BOM), written whole or not at all."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.atomic import replacing
from crawler.exceptions import UsageError
from crawler.manifest import FIELDS


class _SourceFailed(Exception):
    """Reading the rows failed (not writing the CSV): carries the OSError."""


def write_csv(rows: Iterable[dict[str, Any]], path: Path, source: Path | None = None) -> None:
    """Export rows (read from ``source``, the manifest) as CSV that opens cleanly in a
    spreadsheet (UTF-8 with BOM), whole or not at all: a full disk leaves last night's
    CSV as it was. Raises UsageError, naming the manifest when reading it failed (until
    2026-12-03 a manifest gone mid-run was "cannot write CSV", a fresh user's)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path, mode="w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(FIELDS)
            writer.writerows([_cell(row.get(name)) for name in FIELDS] for row in _read(rows))
    except _SourceFailed as failed:
        exc = failed.args[0]
        where = source if source is not None else "its rows"
        raise UsageError(f"cannot read {where} for CSV {path}: {exc.strerror or exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot write CSV {path}: {exc.strerror or exc}") from None


def _read(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``rows``, an OSError while reading them raised as ``_SourceFailed``."""
    found = iter(rows)
    while True:
        try:
            row = next(found)
        except StopIteration:
            return
        except OSError as exc:
            raise _SourceFailed(exc) from None
        yield row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
    text = text.translate(c.CONTROL_CHARACTERS)  # tab, newline: quoted
    # A cell starting with = + - @ is a formula to a spreadsheet; text from the web must not be.
    if text[:1] in ("=", "+", "-", "@") and not isinstance(value, (int, float)):
        return "'" + text
    return text
