"""A file that appears whole or not at all: written to a ``.part-*`` file beside it, then
renamed into place (``write_atomically``), mode 0644 whatever the umask. The folder
stores' images and the export's files are written so.

A process that ends without waiting for its threads (``cli.edge.leave``: ``os._exit``)
calls ``abandon`` first: the ``.part-*`` files its threads are still writing are
removed, and no thread starts another. Until 2026-12-03 a worker that ended by itself
with downloads in flight (its master gone) left them in the store (a fresh user's).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from crawler.exceptions import StoreFailure

PART_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
PART_TRIES = 8  # names tried for a .part- file before giving up (each 64 random bits)
ABANDON_WAIT = 1.0  # seconds ``abandon`` waits for a .part- file being made (a hung share)

_writing: set[str] = set()  # the .part- files this process's threads make or write
_making = 0  # of those, how many are being made (their os.open not returned yet)
_state = threading.Condition()  # over the three; never held across a system call
_abandoned = False


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
    finally:
        if tmp_name is not None:
            with _state:
                _writing.discard(tmp_name)


def abandon() -> None:
    """Remove the ``.part-*`` files this process's threads are writing, and refuse them
    any new one (OSError): for an exit that does not wait for them. Files being made
    as this is called are waited for (ABANDON_WAIT seconds at most: a hung share), then
    removed too. Raises nothing."""
    global _abandoned  # one flag for the whole process, as it exits
    with _state:
        _abandoned = True
        _state.wait_for(lambda: _making == 0, ABANDON_WAIT)
        paths = list(_writing)
    for path in paths:  # renamed into place meanwhile: no longer there, and whole
        with contextlib.suppress(OSError):
            os.unlink(path)


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
            fd = _create(path)
        except FileNotFoundError:
            if attempt:
                raise
            make(folder)
            fd = _create(path)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, 0o644)  # the umask may have taken bits off: images are for all
        except OSError:
            os.close(fd)
            os.unlink(path)
            with _state:
                _writing.discard(path)
            raise
        return fd, path
    raise FileExistsError(errno.EEXIST, f"no unused .part- name in {folder}")


def _create(path: str) -> int:
    """``path`` made (O_EXCL) and named among the files being written, as ``abandon``
    sees them; raises OSError (EINTR once the process is ending). The open itself is
    made outside the lock: held across it, every thread's file creation waited for the
    one before (on a share with a 2 ms round trip, 377 files a second for 16 threads
    instead of 4,877: a review's)."""
    global _making  # the count abandon waits on
    with _state:
        if _abandoned:
            raise InterruptedError(errno.EINTR, "the process is ending")
        _writing.add(path)
        _making += 1
    try:
        fd = os.open(path, PART_FLAGS, 0o644)
    except BaseException:
        with _state:
            _writing.discard(path)
        raise
    finally:
        with _state:
            _making -= 1
            _state.notify_all()
            ending = _abandoned
    if ending:  # abandon ran meanwhile: its unlink may have come before this open
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise InterruptedError(errno.EINTR, "the process is ending")
    return fd


def write_all(fd: int, body: bytes) -> None:
    """All of ``body`` to ``fd``: ``os.write`` may write less than asked (a signal)."""
    view = memoryview(body)
    while view:
        view = view[os.write(fd, view) :]
