"""An export into a folder that holds an earlier one: written aside, then put in its place.

Every output of an export (shards and ``shards.json``, sample folders, the Parquet
file) is written into a staging folder inside ``--out`` (``STAGING``) and moved into
place only once the export is done (``put_in_place``): an export that fails midway
(a full disk, an error) removes its staging folder and leaves the earlier export as it
was. Before, shards it had finished stayed under their final names, beside or over the
earlier ones, listed by no summary, and no later export removed them: a glob loader
read samples twice. While an export runs, ``--out`` holds both (twice the space).

Then what the earlier export wrote and this one did not is removed (``remove_stale``),
so that an export with fewer shards (a larger ``--shard-size``, fewer rows) or another
format leaves nothing behind. Only what is ours is removed: the outputs the earlier
export's summary lists; nothing else in ``--out`` is touched; without an earlier
summary, nothing is. A sample folder that held other files when an export wrote into
it is not ours: only the files the export put there are (``mixed_folders``).

Only an export that got every image its store holds removes them. When the store
failed for some rows (``store_error``: S3 unreachable, a folder unmounted), the
earlier export's files this one did not rewrite are kept, and listed in the new
summary's ``kept_earlier``, so that the next whole export removes them. Before, an
export run while the store was down exported nothing and removed every shard of the
earlier, good one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.exceptions import UsageError

SHARD = re.compile(r"shard-\d{5}\.tar")
FOLDER = re.compile(r"\d{5}")
SAMPLE_FILE = re.compile(r"\d{9}\.[a-z0-9]{1,5}")  # KEY.EXT of a sample (files)
PARQUET = "manifest.parquet"
INDEX = "shards.json"  # the wids shard index of a webdataset export
STAGING = ".export-staging"  # in --out; one left by a killed export is removed first


@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold ``out`` for this export (an ``flock`` on the folder itself, so that nothing
    is left in it, kept for the export's life); raises UsageError (one line) when
    another export holds it. Two at once (an overlapping cron job) took each other's
    staging folder: both ended 0 with one's shards gone, or both failed with "No such
    file or directory" and the earlier export lost (a fresh user's, 2026-12-03). A file
    system whose folders take no lock (NFS) goes unguarded, as before."""
    try:
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot open --out {out}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another export is writing into {out}: wait for it to end, or choose another --out"
            ) from None
        except OSError:
            pass
        yield
    finally:
        os.close(fd)


def staging_folder(out: Path) -> Path:
    """A new, empty staging folder in ``out`` (any earlier one removed); raises OSError."""
    staging = out / STAGING
    discard(staging)
    staging.mkdir()
    return staging


def discard(staging: Path) -> None:
    """Remove a staging folder and what it holds, if it is there."""
    if staging.is_dir() and not staging.is_symlink():
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class Earlier:
    """What the earlier export in ``--out`` wrote, as its summary lists it."""

    names: set[str] = field(default_factory=set)  # its outputs (and kept_earlier)
    # Sample folders that held files not the export's when it wrote into them: only the
    # files it put there (listed) are its own, never the folder.
    mixed: dict[str, set[str]] = field(default_factory=dict)

    def kept_mixed(self, kept: list[str]) -> dict[str, list[str]]:
        """The ``mixed`` entries of the folders kept beside a new export (not whole)."""
        return {name: sorted(self.mixed[name]) for name in kept if name in self.mixed}


def put_in_place(
    staging: Path, out: Path, written: list[str], earlier: Earlier
) -> dict[str, list[str]]:
    """Move the outputs ``written`` (and ``shards.json``) from ``staging`` into ``out``,
    each replacing the one of its name; raises OSError. A folder of that name that is
    not wholly the earlier export's (it did not write it, or wrote into it beside other
    files) is not removed: the files the earlier export put there go, and the new ones
    go into it. Returns those folders and the files put there: the summary's
    ``mixed_folders``. Before, such a folder was listed as this export's output, and the
    next export removed it whole, the user's files in it too."""
    names = [*written, INDEX] if (staging / INDEX).exists() else written
    _refuse_clashes(staging, out, names, earlier)
    mixed = {}
    for name in names:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            if name not in earlier.names or name in earlier.mixed:
                _remove_files(target, earlier.mixed.get(name, set()))
                entries = sorted(entry.name for entry in (staging / name).iterdir())
                for entry in entries:
                    os.replace(staging / name / entry, target / entry)
                mixed[name] = entries
                continue
            shutil.rmtree(target)  # a folder is not replaced by a rename onto it
        os.replace(staging / name, target)
    discard(staging)
    return mixed


def _refuse_clashes(staging: Path, out: Path, names: list[str], earlier: Earlier) -> None:
    """Raise UsageError, before anything is moved, when a folder that is not wholly the
    earlier export's holds a file of the user's under the name of one of this export's
    samples: until 2026-12-03 it was replaced, then removed by the next export as the
    export's own (a fresh user's)."""
    for name in names:
        target = out / name
        if not target.is_dir() or target.is_symlink():
            continue
        if name in earlier.names and name not in earlier.mixed:
            continue  # wholly the earlier export's: replaced whole
        ours = earlier.mixed.get(name, set())
        for entry in (staging / name).iterdir():
            there = target / entry.name
            if entry.name in ours or not os.path.lexists(there) or _same_bytes(entry, there):
                continue  # the same bytes: an export whose summary was lost or not written
            raise UsageError(
                f"{there} is not this export's, and has the name of one of its samples: "
                "move it, or choose another --out (nothing was replaced)"
            )


def _same_bytes(a: Path, b: Path) -> bool:
    """Do the regular files ``a`` and ``b`` hold the same bytes? False when either is no
    regular file or cannot be read."""
    try:
        if b.is_symlink() or not b.is_file() or a.stat().st_size != b.stat().st_size:
            return False
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def earlier_outputs(summary: Path) -> Earlier:
    """What an earlier export's summary lists (names in --out: its ``outputs``, the
    ``kept_earlier`` of an export that was not whole, its ``mixed_folders``), empty when
    there is none or it cannot be read; names that are ours only."""
    try:
        earlier = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Earlier()
    if not isinstance(earlier, dict):
        return Earlier()
    names = set()
    for key in ("outputs", "kept_earlier"):
        listed = earlier.get(key)
        if isinstance(listed, list):
            names.update(name for name in listed if isinstance(name, str) and _ours(name))
    # shards.json is ours when the earlier export was a webdataset one, shards or none
    # (one with no sample writes it too): a parquet export after it left it behind.
    if earlier.get("format") == "webdataset" or any(SHARD.fullmatch(n) for n in names):
        names.add(INDEX)
    return Earlier(names, _mixed(earlier.get("mixed_folders"), names))


def _mixed(listed: Any, names: set[str]) -> dict[str, set[str]]:
    """A summary's ``mixed_folders``, only folders it lists and sample files' names (an
    edited summary names nothing else to remove)."""
    if not isinstance(listed, dict):
        return {}
    return {
        folder: {f for f in files if isinstance(f, str) and SAMPLE_FILE.fullmatch(f)}
        for folder, files in listed.items()
        if folder in names and FOLDER.fullmatch(folder) and isinstance(files, list)
    }


def _remove_files(folder: Path, files: set[str]) -> None:
    for name in files:
        with contextlib.suppress(OSError):
            (folder / name).unlink()


def still_there(out: Path, earlier: Earlier, written: list[str]) -> list[str]:
    """What the earlier export wrote, this one did not rewrite, and ``out`` still holds:
    kept when this export is not whole (see the module docstring)."""
    left = earlier.names - set(written) - {INDEX}
    return sorted(name for name in left if (out / name).exists())


def remove_stale(out: Path, earlier: Earlier, written: list[str], index: bool) -> int:
    """Remove from ``out`` what the earlier export wrote and this one did not (it wrote
    ``written``, and ``shards.json`` when ``index``: a webdataset export, with samples
    or not; one with none removed it, and the next wrote it again); returns how many
    files and folders went. Of a folder not wholly its own, only the files it put there
    go. Failures are skipped: a stale file is harmless next to a whole export, not worth
    failing it for."""
    kept = set(written) | ({INDEX} if index else set())
    removed = 0
    for name in sorted(earlier.names - kept):
        path = out / name
        with contextlib.suppress(OSError):
            if name in earlier.mixed:
                _remove_files(path, earlier.mixed[name])
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
    return removed


def _ours(name: str) -> bool:
    return bool(SHARD.fullmatch(name) or FOLDER.fullmatch(name)) or name == PARQUET
