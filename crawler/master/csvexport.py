"""``--csv``: the manifest as CSV that opens cleanly in a spreadsheet (UTF-8 with a
BOM), written whole or not at all."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.atomic import replacing
from crawler.exceptions import UsageError
from crawler.manifest import FIELDS


def write_csv(rows: Iterable[dict[str, Any]], path: Path) -> None:
    """Export rows as CSV that opens cleanly in a spreadsheet (UTF-8 with BOM), whole or
    not at all: a full disk leaves last night's CSV as it was. Raises UsageError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path, mode="w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(FIELDS)
            writer.writerows([_cell(row.get(name)) for name in FIELDS] for row in rows)
    except OSError as exc:
        raise UsageError(f"cannot write CSV {path}: {exc.strerror or exc}") from None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
    text = text.translate(c.CONTROL_CHARACTERS)  # tab, newline: quoted
    # A cell starting with = + - @ is a formula to a spreadsheet; text from the web must not be.
    if text[:1] in ("=", "+", "-", "@") and not isinstance(value, (int, float)):
        return "'" + text
    return text
