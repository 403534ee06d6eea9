"""Atomic storage on a real temporary folder; failures become StoreFailure.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from imageserver import make_image

from crawler import layout
from crawler.exceptions import StoreFailure
from crawler.stores import FolderStore

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")


def test_store_writes_atomically(tmp_path: Path) -> None:
    body = make_image("PNG", 20, 20, seed=6)
    relative = layout.stored_name("http://example.com/a.png", "png")
    FolderStore(tmp_path).put(relative, body)
    FolderStore(tmp_path).put(relative, body)  # writing the same image again is harmless
    target = tmp_path / relative
    assert target.read_bytes() == body
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [target]


def test_store_replaces_content(tmp_path: Path) -> None:
    relative = layout.stored_name("http://example.com/b.gif", "gif")
    FolderStore(tmp_path).put(relative, b"first version")
    FolderStore(tmp_path).put(relative, b"second")
    assert (tmp_path / relative).read_bytes() == b"second"


def test_store_impossible_target_is_disk_failure(tmp_path: Path) -> None:
    root = tmp_path / "regular-file"
    root.write_bytes(b"not a folder")
    with pytest.raises(StoreFailure) as caught:
        FolderStore(root).put(layout.stored_name("http://x/a.png", "png"), b"data")
    assert caught.value.status == "disk_error"
    assert str(root) in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["regular-file"]


def test_store_into_existing_folder_name_is_disk_failure(tmp_path: Path) -> None:
    relative = layout.stored_name("http://x/a.png", "png")
    (tmp_path / relative).mkdir(parents=True)  # a folder where the file must go
    with pytest.raises(StoreFailure):
        FolderStore(tmp_path).put(relative, b"data")
    leftovers = [p for p in tmp_path.rglob(".part-*")]
    assert leftovers == []
