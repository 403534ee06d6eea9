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
summary, nothing is.

Only an export that got every image its store holds removes them. When the store
failed for some rows (``store_error``: S3 unreachable, a folder unmounted), the
earlier export's files this one did not rewrite are kept, and listed in the new
summary's ``kept_earlier``, so that the next whole export removes them. Before, an
export run while the store was down exported nothing and removed every shard of the
earlier, good one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path

SHARD = re.compile(r"shard-\d{5}\.tar")
FOLDER = re.compile(r"\d{5}")
PARQUET = "manifest.parquet"
INDEX = "shards.json"  # the wids shard index of a webdataset export
STAGING = ".export-staging"  # in --out; one left by a killed export is removed first


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


def put_in_place(staging: Path, out: Path, written: list[str], earlier: set[str]) -> None:
    """Move the outputs ``written`` (and ``shards.json``) from ``staging`` into ``out``,
    each replacing the one of its name; raises OSError. A folder of that name that the
    earlier export (``earlier``) did not write is not removed: the files go into it."""
    names = [*written, INDEX] if (staging / INDEX).exists() else written
    for name in names:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            if name not in earlier:
                for entry in (staging / name).iterdir():
                    os.replace(entry, target / entry.name)
                continue
            shutil.rmtree(target)  # a folder is not replaced by a rename onto it
        os.replace(staging / name, target)
    discard(staging)


def earlier_outputs(summary: Path) -> set[str]:
    """The outputs an earlier export's summary lists (names in --out: its ``outputs``,
    and the ``kept_earlier`` of an export that was not whole), empty when there is none
    or it cannot be read; an index that names ours only."""
    try:
        earlier = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(earlier, dict):
        return set()
    names = set()
    for key in ("outputs", "kept_earlier"):
        listed = earlier.get(key)
        if isinstance(listed, list):
            names.update(name for name in listed if isinstance(name, str) and _ours(name))
    # shards.json is ours when the earlier export was a webdataset one, shards or none
    # (one with no sample writes it too): a parquet export after it left it behind.
    if earlier.get("format") == "webdataset" or any(SHARD.fullmatch(n) for n in names):
        names.add(INDEX)
    return names


def still_there(out: Path, earlier: set[str], written: list[str]) -> list[str]:
    """What the earlier export wrote, this one did not rewrite, and ``out`` still holds:
    kept when this export is not whole (see the module docstring)."""
    return sorted(name for name in earlier - set(written) - {INDEX} if (out / name).exists())


def remove_stale(out: Path, earlier: set[str], written: list[str], index: bool) -> int:
    """Remove from ``out`` what the earlier export wrote and this one did not (it wrote
    ``written``, and ``shards.json`` when ``index``: a webdataset export, with samples
    or not; one with none removed it, and the next wrote it again); returns how many
    files and folders went. Failures are skipped: a stale file is harmless next to a
    whole export, not worth failing it for."""
    kept = set(written) | ({INDEX} if index else set())
    removed = 0
    for name in sorted(earlier - kept):
        path = out / name
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
    return removed


def _ours(name: str) -> bool:
    return bool(SHARD.fullmatch(name) or FOLDER.fullmatch(name)) or name == PARQUET
