"""The CSV export of the manifest.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from crawler.manifest import FIELDS, make_row
from crawler.master.journal import write_csv

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")


def test_write_csv_guards_formula_cells(tmp_path: Path) -> None:
    rows = [
        make_row(url="=cmd|' /C calc'!A0", status="invalid_url", error="+1+1"),
        make_row(url="@SUM(A1)", status="invalid_url", error="-2", bytes=-5, elapsed_s=-0.5),
        make_row(url="http://example.com/a.png", status="ok", width=10, height=20),
    ]
    path = tmp_path / "m.csv"
    write_csv(rows, path)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for spreadsheets
    with open(path, encoding="utf-8-sig", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == list(FIELDS)
    assert table[0]["url"] == "'=cmd|' /C calc'!A0"
    assert table[0]["error"] == "'+1+1"
    assert table[1]["url"] == "'@SUM(A1)"
    assert table[1]["error"] == "'-2"
    assert table[1]["bytes"] == "-5"  # numbers are numbers, not formulas
    assert table[1]["elapsed_s"] == "-0.5"
    assert table[2]["url"] == "http://example.com/a.png"
    assert table[2]["width"] == "10"
    assert table[2]["path"] == ""  # None is an empty cell
