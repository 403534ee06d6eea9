"""Stored-file names: deterministic, sharded, nothing from the URL in the path; the output check.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from crawler import layout
from crawler.exceptions import UsageError

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")


def test_relative_path_is_deterministic_and_sharded() -> None:
    url = "http://example.com/a.png"
    path = layout.stored_name(url, "png")
    assert path == layout.stored_name(url, "png")
    match = STORED_NAME.fullmatch(path)
    assert match is not None
    digest = hashlib.sha256(url.encode()).hexdigest()
    assert match.groups() == (digest[:2], digest[2:4], digest, "png")
    assert layout.stored_name("http://example.com/b.png", "png") != path
    assert layout.stored_name(url, "jpg") == path[: -len("png")] + "jpg"


def test_relative_path_ignores_hostile_url_parts() -> None:
    path = layout.stored_name("http://example.com/../../etc/passwd?x=/..", "png")
    assert STORED_NAME.fullmatch(path) is not None


def test_ensure_writable_under_a_file_is_usage_error(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UsageError, match="not writable"):
        layout.ensure_writable(tmp_path / "file.txt" / "sub")
