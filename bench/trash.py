"""Run outputs set aside between a benchmark's runs instead of deleted, and deleted once at
its end.

Why: on a filesystem like this machine's (ext4 without a journal), creating a file skips
every inode of its block group freed in the last minute or so (five more while the inode
table block is dirty): ``find_inode_bit`` asks ``recently_deleted`` (fs/ext4/ialloc.c),
one buffer-cache look-up per skipped inode. A run that starts right after the previous
run's 3,000 files were deleted pays up to ~1 ms of kernel CPU for each file it creates,
as much as decoding the image (``perf record``: find_get_block_common, recently_deleted,
ext4_get_group_desc and find_inode_bit were 70 % of a create-write-rename loop's
samples; the same loop on tmpfs: 0.07 ms a file against 0.2-1.0 on this disk). Whichever
contender ran after a deletion paid it, by the order of the round. Renaming an output
aside frees no inode, so every run creates its files as a nightly harvest into a growing
store does. Outputs are deleted at once (as before, and said once) when the disk lacks
room to keep them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from pathlib import Path

KEEP_FREE = 4 << 30  # bytes the disk keeps free whatever the bench sets aside
TRASH = ".trash"  # under the discarded folder's parent: removed with the bench's scratch

_names = itertools.count()
_warned: list[bool] = []


def tree_bytes(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def set_aside(path: Path) -> None:
    """Move ``path`` into ``path.parent/.trash`` (deleted with the bench's scratch folder),
    or delete it now when keeping it would leave less than KEEP_FREE bytes free."""
    if not path.exists():
        return
    if shutil.disk_usage(path).free - tree_bytes(path) < KEEP_FREE:
        if not _warned:
            _warned.append(True)
            print("[bench] the disk is nearly full: run outputs deleted between runs (file "
                  "creation may then cost more, see bench/trash.py)", file=sys.stderr)  # fmt: skip
        shutil.rmtree(path, ignore_errors=True)
        return
    trash = path.parent / TRASH
    trash.mkdir(exist_ok=True)
    os.rename(path, trash / f"{path.name}-{next(_names)}")
