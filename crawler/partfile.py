"""A file that appears whole or not at all: written to a ``.part-*`` file beside it, then
renamed into place (``write_atomically``), mode 0644 whatever the umask. The folder
stores' images and the export's files are written so.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from crawler.exceptions import StoreFailure

PART_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
PART_TRIES = 8  # names tried for a .part- file before giving up (each 64 random bits)


def write_atomically(
    root: Path, relative: str, body: bytes, make: Callable[[Path], None] | None = None
) -> None:
    """Write ``body`` to ``root/relative`` through a ``.part-*`` file renamed into place
    (mode 0644), or raise StoreFailure. ``make(folder)`` makes a missing folder (default:
    with its parents)."""
    target = root / relative
    tmp_name = None
    try:
        fd, tmp_name = _open_part(target.parent, make or _make_folder)
        try:
            write_all(fd, body)
        finally:
            os.close(fd)
        os.replace(tmp_name, target)
    except OSError as exc:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        raise StoreFailure(f"cannot write {target}: {exc.strerror or exc}") from None


def _make_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)


def _open_part(folder: Path, make: Callable[[Path], None]) -> tuple[int, str]:
    """A new ``.part-*`` file in ``folder`` (created with its parents only when missing),
    open for writing, mode 0644 whatever the umask; returns (fd, path).

    Why not ``tempfile.mkstemp``: a worker stores hundreds of images a second, and each
    ``mkdir`` (of a folder that nearly always exists), ``chmod`` by path and Python-level
    name generation was a system call or more under the GIL. The random part of the name
    keeps hosts sharing a folder store apart; a clash is retried, as mkstemp does."""
    for attempt in range(PART_TRIES):
        path = f"{folder}/.part-{secrets.token_hex(8)}"
        try:
            fd = os.open(path, PART_FLAGS, 0o644)
        except FileNotFoundError:
            if attempt:
                raise
            make(folder)
            fd = os.open(path, PART_FLAGS, 0o644)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, 0o644)  # the umask may have taken bits off: images are for all
        except OSError:
            os.close(fd)
            os.unlink(path)
            raise
        return fd, path
    raise FileExistsError(errno.EEXIST, f"no unused .part- name in {folder}")


def write_all(fd: int, body: bytes) -> None:
    """All of ``body`` to ``fd``: ``os.write`` may write less than asked (a signal)."""
    view = memoryview(body)
    while view:
        view = view[os.write(fd, view) :]
