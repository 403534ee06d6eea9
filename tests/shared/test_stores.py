"""The stores' spec parsing and folder stores, on a real temporary folder.

Fast and in-process, on real data: no network, no subprocesses (S3: tests/test_s3.py).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from test_hostile_network import tmpfs

from crawler.exceptions import StoreFailure, UsageError
from crawler.stores import IDENTITY, FolderStore, S3Store, normalize_spec, open_store


def test_specs_are_normalised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_spec("") == ""
    assert normalize_spec("harvest") == (tmp_path / "harvest").as_uri()
    assert normalize_spec("/mnt/a b/") == "file:///mnt/a%20b"
    assert normalize_spec("file:///mnt/a%20b") == "file:///mnt/a%20b"
    assert normalize_spec("file://localhost/mnt/x") == "file:///mnt/x"
    assert normalize_spec("s3://bucket") == "s3://bucket"
    assert normalize_spec("s3://bucket/pre/fix/") == "s3://bucket/pre/fix"


@pytest.mark.parametrize("bad", ["s3:///prefix", "file://otherhost/x", "ftp://host/x", "gs://b"])
def test_bad_specs_are_one_line(bad: str) -> None:
    with pytest.raises(UsageError) as caught:
        normalize_spec(bad)
    assert "\n" not in str(caught.value) and bad in str(caught.value)


@pytest.mark.parametrize(
    "bad", ["s3://b/night?run=1", "s3://b/h#frag", "s3://b/x?", "file:///tmp/d#x", "s3://b/t\tx"]
)
def test_a_store_url_with_a_query_fragment_or_control_is_refused(bad: str) -> None:
    """urlsplit dropped them: until 2026-12-01 the images went to another prefix or
    folder (``s3://b/night``, ``/tmp/d``) without a word (a fresh user's)."""
    with pytest.raises(UsageError, match="takes no '\\?', '#' or control") as caught:
        normalize_spec(bad)
    assert "\n" not in str(caught.value) and repr(bad) in str(caught.value)


def test_a_folder_path_may_hold_them() -> None:
    assert normalize_spec("/srv/a#b?c") == "file:///srv/a%23b%3Fc"


def test_open_store_picks_the_kind(tmp_path: Path) -> None:
    own = open_store("", tmp_path)
    assert isinstance(own, FolderStore) and own.root == tmp_path and own.spec == ""
    shared = open_store((tmp_path / "a b").as_uri(), Path("unused"))
    assert isinstance(shared, FolderStore) and shared.root == tmp_path / "a b"
    assert isinstance(open_store("s3://bucket/x", tmp_path), S3Store)


def test_folder_store_round_trip(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    assert store.size("ab/cd/x.png") is None
    store.put("ab/cd/x.png", b"12345")
    assert (store.size("ab/cd/x.png"), store.read("ab/cd/x.png")) == (5, b"12345")
    with pytest.raises(StoreFailure):
        store.read("ab/cd/missing.png")


def test_a_shared_folder_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"
    with pytest.raises(UsageError, match="is the share mounted"):
        FolderStore(missing, missing.as_uri()).check()
    assert not missing.exists()  # never created: that would fill the local disk
    FolderStore(tmp_path / "own").check()  # a host's own --output is created
    assert (tmp_path / "own").is_dir()


def test_a_store_folder_gone_mid_run_is_not_made_again(tmp_path: Path) -> None:
    """A worker's own --output is made by its first image; removed afterwards, it is this
    host's store failing (disk_error), not a folder to make again: until 2026-12-01 it
    was made again and the rows of the images before named files that were gone (a
    fresh user's). Folders inside it are made as ever."""
    own = FolderStore(tmp_path / "out")
    own.put("ab/cd/one.png", b"1")  # made, with its parents
    own.put("ef/01/two.png", b"2")  # a new shard inside: made
    shutil.rmtree(tmp_path / "out")
    with pytest.raises(StoreFailure, match="is gone"):
        own.put("ab/cd/three.png", b"3")
    assert not (tmp_path / "out").exists()
    (tmp_path / "there").mkdir()  # there when the run starts: gone before its first image
    there = FolderStore(tmp_path / "there")
    (tmp_path / "there").rmdir()
    with pytest.raises(StoreFailure, match="is gone"):
        there.put("ab/cd/four.png", b"4")


def test_an_own_output_that_is_another_folder_now_is_not_written_to(tmp_path: Path) -> None:
    """An own --output removed and made again, or with a disk unmounted under it or
    mounted over it, is another folder under the same name: until 2026-12-03 the images
    went on into it, exit 0, and the rows of the images stored before named files it no
    longer held (a fresh user's). The folder is known by its device and inode."""
    out = tmp_path / "out"
    own = FolderStore(out)
    own.put("ab/cd/one.png", b"1")
    shutil.rmtree(out)
    out.mkdir()  # made again, empty
    with pytest.raises(StoreFailure, match="not the folder this worker began storing in"):
        own.put("ab/cd/two.png", b"2")
    assert list(out.iterdir()) == []
    there = tmp_path / "there"
    there.mkdir()  # there at the start: the folder from then on
    early = FolderStore(there)
    there.rename(tmp_path / "moved")
    there.mkdir()
    with pytest.raises(StoreFailure, match="not the folder this worker began storing in"):
        early.put("ab/cd/three.png", b"3")
    kept = FolderStore(tmp_path / "kept")  # the same folder throughout: shards made as ever
    for n in range(20):
        kept.put(f"{n:02x}/{n:02x}/{n}.png", b"x")
    assert len(list((tmp_path / "kept").rglob("*.png"))) == 20


def test_an_own_output_with_a_disk_mounted_over_it_is_not_written_to(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        own = FolderStore(disk / "out")
        own.put("ab/cd/one.png", b"1")  # on the tmpfs
        subprocess.run(["umount", "-l", str(disk)], check=True, timeout=30)
        (disk / "out").mkdir()  # what a job that makes its folder finds: the bare mount point
        with pytest.raises(StoreFailure, match="not the folder this worker began storing in"):
            own.put("ab/cd/two.png", b"2")
        assert list((disk / "out").iterdir()) == []  # nothing on the disk beneath
    # A disk of earlier nights mounted over a bare folder mid-run: its shard folders
    # are there already, so no folder is made, and the put itself looks (a review's).
    bare = tmp_path / "bare"
    bare.mkdir()
    early = FolderStore(bare)
    early.put("ab/cd/one.png", b"1")
    with tmpfs(bare, "4m") as over:
        (over / "ab" / "cd").mkdir(parents=True)
        with pytest.raises(StoreFailure, match="not the folder this worker began storing in"):
            early.put("ab/cd/two.png", b"2")
        assert list((over / "ab" / "cd").iterdir()) == []


def test_a_shared_store_whose_share_went_is_not_written_to(tmp_path: Path) -> None:
    """A shared folder whose share was unmounted mid-run leaves its empty mount point:
    new shard folders there would fill the local disk (until 2026-12-01 they did, 942
    images). Its identity file must be there whenever a folder is made; renamed away
    and left empty, it is refused too."""
    root = tmp_path / "share"
    root.mkdir()
    shared = FolderStore(root, root.as_uri())
    assert shared.identity(create=True)
    shared.put("ab/cd/one.png", b"1")
    (root / IDENTITY).rename(tmp_path / "token")  # what an unmounted share shows: no token
    shutil.rmtree(root / "ab")
    with pytest.raises(StoreFailure, match="is the share mounted"):
        shared.put("ab/cd/two.png", b"2")
    root.rename(tmp_path / "share.gone")
    with pytest.raises(StoreFailure, match="is gone"):
        shared.put("ab/cd/three.png", b"3")
    assert not root.exists()


@pytest.mark.parametrize("umask", [0o077, 0o027, 0o022, 0o000])
def test_a_shared_stores_identity_is_readable_by_every_worker(tmp_path: Path, umask: int) -> None:
    """The identity file is no secret and every worker's user reads it: 0644 whatever
    the master's umask (under 077 it was 0600, and workers running as another user, as
    the README's systemd unit does, could not join: a fresh user's, 2026-12-01)."""
    share = tmp_path / "share"
    share.mkdir()
    old = os.umask(umask)
    try:
        token = FolderStore(share, f"file://{share}").identity(create=True)
    finally:
        os.umask(old)
    assert len(token) == 32
    assert stat.S_IMODE((share / IDENTITY).stat().st_mode) == 0o644


def test_a_root_removed_while_a_folder_is_made_is_not_made_again(tmp_path: Path) -> None:
    """``rm -rf`` landing between the store's look at its root and the mkdir of a shard
    folder: ``mkdir(parents=True)`` made the root again, and the images went on into a
    new folder (a CI run's race, 2026-12-03). Levels below the root are made one by one,
    never the root. (The rm is made to land there by the test's own _check_root.)"""

    class Racing(FolderStore):
        looks = 0

        def _check_root(self) -> None:
            super()._check_root()
            self.looks += 1
            if self.looks == 2:  # the look in _make, after the one at the put's start
                shutil.rmtree(self.root)

    out = tmp_path / "out"
    store = Racing(out)
    store.put("ab/cd/one.png", b"1")
    store.looks = 0
    with pytest.raises(StoreFailure, match="is gone"):
        store.put("ef/01/two.png", b"2")
    assert not out.exists()


def test_a_root_removed_during_a_write_is_said_to_be_gone(tmp_path: Path) -> None:
    """The root removed once the write's folder is made, before its file is: the put
    failed with "No such file or directory", with no word of the store; it says the store
    is gone, as a put after the removal does. (The rm lands there by the test's _make.)"""

    class Racing(FolderStore):
        def _make(self, folder: Path) -> None:
            super()._make(folder)
            shutil.rmtree(self.root)

    out = tmp_path / "out"
    out.mkdir()
    store = Racing(out)
    said = re.escape(f"cannot write {out}/ab/cd/one.png: the store {out} is gone")
    with pytest.raises(StoreFailure, match=said):
        store.put("ab/cd/one.png", b"1")
    assert not out.exists()
