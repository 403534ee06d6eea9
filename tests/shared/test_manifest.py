"""Manifest rows: every field present, torn lines skipped.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crawler.manifest import FIELDS, make_row, read_manifest

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
