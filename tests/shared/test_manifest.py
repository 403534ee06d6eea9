"""Manifest rows: every field present, torn lines skipped.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.manifest import FIELDS, make_row, read_manifest
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
