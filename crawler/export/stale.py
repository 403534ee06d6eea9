"""An export into a folder that holds an earlier one replaces it: what the earlier export
wrote and this one did not is removed, once this one is whole.

Without this, an export with fewer shards (a larger ``--shard-size``, fewer rows) left
the earlier ``shard-00003.tar`` beside the new ones: ``shards.json`` listed only the new
ones, but a glob loader read both and got every sample twice, and a ``files`` export
mixed both layouts. Only what is ours is removed: the outputs the earlier export's
summary lists (shards, sample folders, the Parquet file, ``shards.json``), and in a
sample folder this export wrote too, the sample files (``NNNNNNNNN.ext``) of numbers it
did not put there. Nothing else in ``--out`` is touched; without an earlier summary,
nothing is.

Only an export that got every image its store holds replaces the earlier one. When the
store failed for some rows (``store_error``: S3 unreachable, a folder unmounted), the
earlier export's files this one did not rewrite are kept, and listed in the new
summary's ``kept_earlier``, so that the next whole export removes them. Before, an
export run while the store was down exported nothing and removed every shard of the
earlier, good one.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path

SHARD = re.compile(r"shard-\d{5}\.tar")
FOLDER = re.compile(r"\d{5}")
PARQUET = "manifest.parquet"
INDEX = "shards.json"  # the wids shard index of a webdataset export
MEMBER = re.compile(r"(\d{9})\.[^/]+")  # a sample's file: its key, a dot, its suffix


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
    if any(SHARD.fullmatch(name) for name in names):
        names.add(INDEX)
    return names


def still_there(out: Path, earlier: set[str], written: list[str]) -> list[str]:
    """What the earlier export wrote, this one did not rewrite, and ``out`` still holds:
    kept when this export is not whole (see the module docstring)."""
    return sorted(name for name in earlier - set(written) - {INDEX} if (out / name).exists())


def remove_stale(
    out: Path, earlier: set[str], written: list[str], shard_size: int, samples: int
) -> int:
    """Remove from ``out`` what the earlier export wrote and this one did not (it wrote
    ``written``, ``samples`` samples numbered from 0); returns how many files and
    folders went. Failures are skipped: a stale file is harmless
    next to a whole export, a removal is not worth failing it for."""
    kept = set(written) | ({INDEX} if any(SHARD.fullmatch(n) for n in written) else set())
    removed = 0
    for name in sorted(earlier - kept):
        path = out / name
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
    for name in written:
        if FOLDER.fullmatch(name) and name in earlier:
            first = int(name) * shard_size
            removed += _remove_strays(out / name, range(first, min(first + shard_size, samples)))
    return removed


def _remove_strays(folder: Path, keys: range) -> int:
    """Sample files in ``folder`` whose key is not one of ``keys``, the ones this export
    put there."""
    removed = 0
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            match = MEMBER.fullmatch(entry.name)
            if match and int(match.group(1)) not in keys:
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed += 1
    return removed


def _ours(name: str) -> bool:
    return bool(SHARD.fullmatch(name) or FOLDER.fullmatch(name)) or name == PARQUET
