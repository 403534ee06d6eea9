"""The crawler's own small files (summary, report, aggregate, key), written whole or not at all.

Each is written to ``<name>.tmp`` beside it and renamed over it: POSIX ``rename`` is
atomic, so a reader (or a crash) sees the old file or the new one, never half of one.
A write that fails (a full disk, above all) removes its temporary file: left there, it
would take the room the next write needs, and be mistaken for nothing else.

A name that is not a regular file is written into, not replaced: ``--csv /dev/null`` or
``--csv /dev/stdout`` replaced the device (or the symlink to it) with a regular file,
for every program on the machine when run as root. A symlink to a regular file keeps
being one: the file it points to is what is replaced.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".tmp"  # the name a file is written under before it replaces ``<name>``
MAX_LINKS = 40  # symlinks followed at most, as Linux does (ELOOP)
_DESCRIPTOR_NAME = re.compile(r"^(?:/proc/(self|\d+)/fd|/dev/fd)/(\d+)$")


@contextlib.contextmanager
def replacing(path: Path, permissions: int = 0o644, **opening: Any) -> Iterator[IO[Any]]:
    """A file to write ``path``'s new content into (``os.fdopen`` with ``opening``, binary
    by default); it replaces ``path`` atomically when the block ends, and is removed when
    the block or the rename fails. A new file gets ``permissions`` (less the umask).
    Raises OSError (ENXIO for a FIFO no one reads, EISDIR for a folder)."""
    kind = in_place(path)
    if kind is not None:
        with open_in_place(path, kind, opening) as fh:
            yield fh
        return
    if os.path.islink(path):  # dangling too: the file it names is made, as open() does
        path = Path(os.path.realpath(path))
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


def in_place(path: Path) -> int | None:
    """``path``'s ``st_mode`` (through symlinks) when it is written into in place (by
    ``open_in_place``), not replaced: it is there and is no regular file, or it is a
    descriptor's name. None otherwise (missing, or a regular file)."""
    try:
        kind = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    return kind if not stat.S_ISREG(kind) or descriptor(path) is not None else None


def descriptor(path: Path) -> int | None:
    """The descriptor whose name ``path`` is (``/dev/stdout`` is ``/proc/self/fd/1``;
    ``/dev/fd/N``; ``/proc/PID/fd/N``: -1 for another process's), else None. Replaced,
    a stdout redirected to a file lost what the command had written there, and kept
    writing into the unlinked file."""
    name = os.path.abspath(path)
    for _ in range(MAX_LINKS):
        found = _DESCRIPTOR_NAME.match(name)
        if found is not None:
            own = found[1] in ("self", str(os.getpid())) or found[0].startswith("/dev/fd/")
            return int(found[2]) if own else -1
        if not os.path.islink(name):
            return None
        name = os.path.join(os.path.dirname(name), os.readlink(name))
    return None


def open_in_place(path: Path, kind: int, opening: dict[str, Any]) -> IO[Any]:
    """``path`` opened to write into in place: a device, a FIFO, a descriptor's name (a
    socket cannot be opened). This process's own descriptor is written through (``dup``),
    after the standard streams are flushed: opened anew, a stdout redirected with ``>``
    wrote its later lines over what was written here. A FIFO is opened without waiting
    for a reader, so that one no one reads is an error (ENXIO), not a hang. Raises
    OSError (EISDIR for a folder)."""
    if stat.S_ISDIR(kind):
        raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
    own = descriptor(path)
    if own is not None and own >= 0:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a stream already closed: nothing to flush
                stream.flush()
        fd = os.dup(own)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
    if opening.get("encoding") == "utf-8-sig":  # a stream, written on: no BOM mid-way
        opening = opening | {"encoding": "utf-8"}
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, **({"mode": "wb"} | opening))
    except BaseException:
        os.close(fd)
        raise


def append_line(path: Path, line: bytes, *, sync: bool = True) -> None:
    """Append ``line`` (ending in a newline) to the journal-like file ``path`` (made when
    missing), whole or not at all, and sync it (``sync``: else it survives a killed
    process, not a power cut). A torn last line left by a power cut is
    ended first, so that it stays one unreadable line on its own; a write the disk
    refuses, even in part, is cut off again. Until 2026-12-01 the next line was written
    onto a torn one and both were lost to readers (a fresh user's run history).
    Raises OSError."""
    try:
        fd, readable = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644), True
    except PermissionError:
        if not os.path.exists(path):
            raise
        fd, readable = os.open(path, os.O_WRONLY | os.O_APPEND), False
    try:
        size = os.fstat(fd).st_size
        # A file we may write but not read: its end unseen, the line starts one of its
        # own all the same (a blank line, skipped by readers, when the last one ended).
        if size and (not readable or os.pread(fd, 1, size - 1) != b"\n"):
            line = b"\n" + line
        try:
            if os.write(fd, line) != len(line):  # a full disk may take part of it
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            if sync:
                os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)
