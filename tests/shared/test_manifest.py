"""Manifest rows: every field present, torn lines skipped.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.manifest import FIELD_TYPE, FIELDS, make_row, read_manifest, typed_row
from crawler.protocol import RESULT_FIELDS
from crawler.rowread import row_fields, success_fields

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")


def test_make_row_has_every_field_and_refuses_unknown_ones() -> None:
    row = make_row(url="http://x/", status="ok")
    assert list(row) == list(FIELDS)
    with pytest.raises(ValueError, match="unknown manifest fields"):
        make_row(url="http://x/", colour="red")


def test_read_manifest_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    good = [make_row(url=f"http://x/{i}.png", status="ok") for i in range(2)]
    text = "".join(json.dumps(r) + "\n" for r in good)
    path.write_text(text + json.dumps(good[0])[:25], encoding="utf-8")
    assert list(read_manifest(path)) == good


_PIECES = [*'ab"\\,:{}é\n', ',"host":"x"', ',"extra":{', '\\"']
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)
_NAMES = ("path", "store", "host", "fetched_at", "finished_at", "error")


@settings(max_examples=300, deadline=None)
@given(
    values=st.fixed_dictionaries({name: st.none() | _TEXT for name in ("url", *_NAMES)}),
    extra=st.none() | st.dictionaries(st.sampled_from(["host", "path", "x"]), _TEXT),
    dropped=st.sets(st.sampled_from(["host", "store", "extra"])),
)
def test_row_fields_reads_what_a_full_parse_reads(
    values: dict[str, str | None], extra: dict[str, str] | None, dropped: set[str]
) -> None:
    """The fast read of a journal line (url, status and a few fields, without parsing the
    whole row) gives exactly what json.loads gives, whatever the strings hold, also for
    rows written before some fields existed."""
    row = make_row(**{**values, "url": values["url"] or ""}, status="ok", extra=extra)
    for name in dropped:
        del row[name]
    line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    fields = row_fields(line, _NAMES)
    assert fields == {"url": row["url"], "status": "ok"} | {n: row.get(n) for n in _NAMES}


@settings(max_examples=300, deadline=None)
@given(
    values=st.fixed_dictionaries(
        {n: st.none() | _TEXT for n in ("url", "sha256", "source", "run_id", *_NAMES)}
    ),
    status=st.sampled_from(["ok", "not_modified", "http_error", "okay"]),
    extra=st.none() | st.dictionaries(st.sampled_from(["host", "path", "x"]), _TEXT),
    dropped=st.sets(
        st.sampled_from(["host", "store", "path", "sha256", "source", "run_id", "extra"])
    ),
)
def test_success_fields_reads_what_a_full_parse_reads_or_declines(
    values: dict[str, str | None], status: str, extra: dict[str, str] | None, dropped: set[str]
) -> None:
    """The quickest read of a success row (its url, path, store, host and run, for resuming)
    gives what json.loads gives, or None: then the general read is used. It declines
    only rows that are no success, miss a field, or hold escapes."""
    row = make_row(**{**values, "url": values["url"] or ""}, status=status, extra=extra)
    for name in dropped:
        del row[name]
    line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    names = ("url", "status", "path", "store", "host", "source", "run_id")
    fields = success_fields(line)
    if fields is not None:
        assert fields == {n: row[n] for n in names}
    plain = all(v is None or ('"' not in v and "\\" not in v and "\n" not in v)
                for v in (row.get(n, "") for n in names))  # fmt: skip
    if status in ("ok", "not_modified") and plain and not dropped - {"extra"}:
        assert fields is not None


def _line(row: dict) -> bytes:
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


@given(cut=st.integers(min_value=1, max_value=400), nested=st.booleans())
def test_a_torn_row_with_the_next_glued_to_it_is_no_row(cut: int, nested: bool) -> None:
    """A row cut short mid-run, the next appended to it: one line that is no row, read
    quickly or not (the quick reads took it for its first row, or its last). A row whose
    extra nests a {"url": ...} of a scraped list is read as it is, on the quick path."""
    extra = {"page": {"url": "http://p/", "title": "t"}} if nested else None
    first = make_row(url="http://x/a.png", status="ok", path="ab/cd/a.png", extra=extra)
    second = make_row(url="http://x/b.png", status="ok", path="ab/cd/b.png", extra=extra)
    whole = _line(first)
    assert row_fields(whole, ("path",)) == {
        "url": "http://x/a.png", "status": "ok", "path": "ab/cd/a.png"
    }  # fmt: skip
    assert success_fields(whole) is not None
    glued = whole[: min(cut, len(whole) - 2)] + _line(second)
    with pytest.raises(ValueError):
        row_fields(glued, ("path",))
    assert success_fields(glued) is None


# Values of every JSON type, and numbers json.loads reads that no row holds (1e400).
_ANY_JSON = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers()),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(edits=st.dictionaries(st.sampled_from([*FIELDS, "newer"]), _ANY_JSON, max_size=6))
def test_a_row_read_back_has_the_types_the_crawler_writes(edits: dict) -> None:
    """A row edited to hold another type (a list, an object, 1e400) is no row when its
    url is no string, else that field reads as null (a status too: then a damaged line
    to the master, "(missing)" to the report): every reader of rows (resume, the report,
    the export) sees only the types ``make_row`` writes, and the full read of a line and
    the quick one agree. Until 2026-12-03 a list status, an object run_id or 1e400 bytes
    was a traceback on every later run and in crawler-report (a hostile-input trial's)."""
    row = make_row(url="http://127.0.0.1/x.png", status="ok", path="ab/cd/x.png", bytes=5,
                   width=3, elapsed_s=0.5, reused=False, run_id="r1") | edits  # fmt: skip
    typed = typed_row(json.loads(json.dumps(row)))
    if type(row["url"]) is not str:
        assert typed is None
        return
    assert typed is not None
    for name in FIELDS:
        value = typed.get(name)
        if value is None or name == "extra":
            continue
        if name == "elapsed_s":
            assert type(value) in (int, float) and math.isfinite(value)
        else:
            assert type(value) is FIELD_TYPE[name], (name, value)
            assert type(value) is not int or -(2**63) <= value < 2**63
        assert value == row[name]  # kept when it fits
    assert typed.get("newer") == row.get("newer")  # a newer crawler's field: not looked at
    line = _line(row)
    read = row_fields(line, FIELDS[2:-1])  # quick (stops before extra) or full
    assert {n: read.get(n) for n in FIELDS[:-1]} == {n: typed.get(n) for n in FIELDS[:-1]}


def test_field_types_agree_with_the_result_message() -> None:
    """Two homes of one fact (``manifest`` and ``protocol`` are independent layers, so
    neither imports the other): each field a worker's result carries has in the
    manifest the type the result may have."""
    for name in set(FIELDS) & set(RESULT_FIELDS):
        kinds = RESULT_FIELDS[name]
        if name == "elapsed_s":  # either: typed_row checks it apart
            assert set(kinds) == {int, float} and name not in FIELD_TYPE
        else:
            assert kinds == (FIELD_TYPE[name],), name
