"""The CSV export of the manifest.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from crawler.exceptions import UsageError
from crawler.manifest import FIELDS, make_row, read_manifest
from crawler.master.csvexport import write_csv
from crawler.master.journal import current_lines
from crawler.rowread import row_fields

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


def test_write_csv_keeps_control_characters_out(tmp_path: Path) -> None:
    """A NUL or escape from a list line made tools take the CSV for a binary file; tab,
    newline and carriage return stay (quoted)."""
    controls = "".join(chr(code) for code in [*range(0x20), 0x7F])
    others = "\x85\x9b\u2028\u2029\u202a\u202e\u2066\u2069"  # C1, separators, bidi
    rows = [make_row(url=f"a{controls}{others}b", status="invalid_url", error="x\ty\nz")]
    path = tmp_path / "m.csv"
    write_csv(rows, path)
    data = path.read_bytes()
    assert not {b for b in data if b < 0x20 and b not in b"\t\n\r"} and b"\x7f" not in data
    with open(path, encoding="utf-8-sig", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    kept = "\ufffd" * 9 + "\t\n" + "\ufffd" * 2 + "\r" + "\ufffd" * 19
    assert row["url"] == "a" + kept + "\ufffd" * len(others) + "b"
    assert row["error"] == "x\ty\nz"


def test_current_lines_reads_urls_with_quotes_and_rows_in_any_key_order(tmp_path: Path) -> None:
    """Compaction reads a row's url and status from its start when the row is laid out as
    the master writes it, and parses any other row whole: both give the same answer."""
    tricky = 'http://example.com/a"b\\c/é'
    rows = [
        make_row(url=tricky, status="http_error", error='"status":"ok"'),
        make_row(url="http://example.com/x", status="ok"),
        make_row(url=tricky, status="ok", run_id="old"),  # the last row of tricky counts
        {"status": "not_modified", "url": "http://example.com/x", "http_status": 304},
        make_row(url="gone", status="invalid_url", run_id="old"),  # an old per-line row
        make_row(url="bad", status="invalid_url", run_id="this"),
    ]
    path = tmp_path / "m.jsonl"
    compact = {"ensure_ascii": False, "separators": (",", ":")}  # as the master writes
    path.write_text(
        "".join(json.dumps(r, **(compact if r is not rows[3] else {})) + "\n" for r in rows)
    )
    ids = {tricky: 0, "http://example.com/x": 1}
    find_many = lambda urls: [ids.get(u) for u in urls]  # noqa: E731
    old_line_row = path.read_bytes().index(b'{"url":"gone"')  # superseded (linerows)
    lines = [json.loads(line) for line in current_lines(path, [old_line_row], find_many, 2)]
    assert lines == [rows[5], rows[2], rows[3]]
    read = [row_fields(line) for line in path.read_bytes().splitlines()]
    assert [len(r) for r in read] == [2, 2, 2, 3, 2, 2]  # row 3, in another order: parsed whole
    assert [(r["url"], r["status"]) for r in read] == [(r["url"], r["status"]) for r in rows]


def test_write_csv_names_the_manifest_when_reading_it_fails(tmp_path: Path) -> None:
    """A manifest gone (its --output removed mid-run) was "cannot write CSV PATH" of a
    CSV whose folder was fine (a fresh user's, 2026-12-03); the CSV of the night before
    stays as it was, whichever failed."""
    path = tmp_path / "m.csv"
    write_csv([make_row(url="http://example.com/a.png", status="ok")], path)
    before = path.read_bytes()
    gone = tmp_path / "out" / "manifest.jsonl"
    with pytest.raises(UsageError) as raised:
        write_csv(read_manifest(gone), path, gone)
    assert str(raised.value) == f"cannot read {gone} for CSV {path}: No such file or directory"
    assert path.read_bytes() == before
    with pytest.raises(UsageError, match=re.escape(f"cannot write CSV {path / 'x.csv'}: ")):
        write_csv([], tmp_path / "m.csv" / "x.csv")
    assert path.read_bytes() == before
