"""Atomic storage on a real temporary folder; failures become StoreFailure.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
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


def test_stored_images_are_readable_by_all_whatever_the_umask(tmp_path: Path) -> None:
    relative = layout.stored_name("http://x/u.png", "png")
    old = os.umask(0o077)  # a cron job's private umask
    try:
        FolderStore(tmp_path).put(relative, b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / relative).stat().st_mode) == 0o644


def test_a_folder_removed_behind_the_store_is_made_again(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    first, second = (layout.stored_name(f"http://x/{n}.png", "png") for n in "ab")
    store.put(first, b"one")
    shutil.rmtree(tmp_path / first.split("/")[0])  # someone tidied up during the run
    store.put(first, b"one again")
    store.put(second, b"two")
    assert (tmp_path / first).read_bytes() == b"one again"
    assert (tmp_path / second).read_bytes() == b"two"


def test_threads_writing_one_name_leave_one_whole_file(tmp_path: Path) -> None:
    relative = layout.stored_name("http://x/same.png", "png")
    bodies = [bytes([n]) * (300_000 + n) for n in range(16)]  # several writes each
    store = FolderStore(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda body: store.put(relative, body), bodies * 4))
    assert (tmp_path / relative).read_bytes() in bodies  # one of them, whole
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [tmp_path / relative]


# A process whose threads keep storing large images through a FolderStore, ended by
# ``cli.edge.leave`` (os._exit) as a worker whose master went away is: mid-write.
_LEAVING = """
import sys, threading, time
from pathlib import Path
from crawler.cli.edge import leave
from crawler.stores import FolderStore

store, body = FolderStore(Path(sys.argv[1])), bytes(32 << 20)

def storing(n):
    for i in range(1000):
        store.put(f"{n:02x}/{i:02x}/x.png", body)

def stored():
    return [p for p in store.root.rglob("*") if p.is_file() and not p.name.startswith(".")]

for n in range(4):
    threading.Thread(target=storing, args=(n,), daemon=True).start()
deadline = time.monotonic() + 30  # one image whole first, however slow the disk
while not stored() and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.05)  # the threads are mid-write: each writes the next one at once
leave(3)
"""


@pytest.mark.parametrize("run", range(2))
def test_a_process_that_leaves_mid_write_leaves_no_part_files(tmp_path: Path, run: int) -> None:
    """Until 2026-12-03 the ``.part-*`` files its threads were writing stayed in the store
    (a fresh user's: a worker that ended by itself once its master was killed)."""
    done = subprocess.run(
        [sys.executable, "-c", _LEAVING, str(tmp_path / "store")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    stored = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert stored, "the threads stored nothing before the exit"
    assert not [p for p in stored if p.name.startswith(".part-")]
    assert all(p.stat().st_size == 32 << 20 for p in stored)  # whole, each of them
