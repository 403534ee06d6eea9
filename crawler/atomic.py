"""The crawler's own small files (summary, report, aggregate, key), written whole or not at all.

Each is written to ``<name>.tmp`` beside it and renamed over it: POSIX ``rename`` is
atomic, so a reader (or a crash) sees the old file or the new one, never half of one.
A write that fails (a full disk, above all) removes its temporary file: left there, it
would take the room the next write needs, and be mistaken for nothing else.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".tmp"  # the name a file is written under before it replaces ``<name>``


@contextlib.contextmanager
def replacing(path: Path, permissions: int = 0o644, **opening: Any) -> Iterator[IO[Any]]:
    """A file to write ``path``'s new content into (``os.fdopen`` with ``opening``, binary
    by default); it replaces ``path`` atomically when the block ends, and is removed when
    the block or the rename fails. A new file gets ``permissions`` (less the umask).
    Raises OSError."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        tmp.unlink(missing_ok=True)  # O_EXCL below: a leftover must not lend its mode
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, permissions)
        with os.fdopen(fd, **({"mode": "wb"} | opening)) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_whole(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` by ``data`` atomically; a new file gets ``mode`` (less the umask).
    Raises OSError, after removing the temporary file."""
    with replacing(path, mode) as fh:
        fh.write(data)
