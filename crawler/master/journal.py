"""Writing the manifest: a JSON Lines journal with one current row per input URL.

Rows are appended and flushed (and fsynced) as results arrive, so a crash of the
master, or of its host, loses nothing already reported; the reader tolerates a torn
last line, and the writer cuts one off before appending. A rerun reads the journal
to resume. When a run completes, the journal is compacted to one current row per
URL (atomically). A lock file, and a lock on the file itself, keep a second master off
the same manifest (``journalfile``).
"""

from __future__ import annotations

import contextlib
import json
import os
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from crawler.console import log
from crawler.exceptions import JournalError, UsageError
from crawler.manifest import COMPACT_SUFFIX, LINE_STATUSES, journal_lines
from crawler.master.journalfile import hold, lock_by_name, refuse_special
from crawler.rowread import row_fields

# One encoder for every line: ``json.dumps`` with options builds one a call (~4 us of
# the master's CPU a row, issue 15). The same output.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _dump(row: dict[str, Any]) -> str:
    return _ENCODER.encode(row) + "\n"


class ManifestWriter:
    """Appends rows to the journal, flushing and fsyncing after every batch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        refuse_special(path)
        self._lock = lock_by_name(path)
        try:
            torn = _cut_torn_tail(path)
            if torn:
                log.warning("manifest %s: dropped a torn last line (%d bytes) left by an "
                            "interrupted write; a URL whose row it was is fetched again",
                            path, torn)  # fmt: skip
            # Unbuffered: a failed write is cut off at once (``write``), no buffer kept.
            self._fh: IO[bytes] = open(path, "ab", buffering=0)  # noqa: SIM115
            self.size = self._fh.tell()  # where the next row goes
            self.empty = self.size == 0  # no rows from earlier runs
        except OSError as exc:
            self._lock.close()
            raise UsageError(f"cannot write manifest {path}: {exc.strerror or exc}") from None
        try:
            hold(self._fh, path)
        except UsageError:
            self._lock.close()
            raise

    def still_named(self) -> bool:
        """The manifest's path still names this journal, as long as it wrote it: not
        removed, replaced or cut short since (``rm -rf`` of the output folder mid-run
        left rows only in an unlinked file; ``: > manifest`` lost the rows before)."""
        try:
            here, there = os.fstat(self._fh.fileno()), os.stat(self.path)
        except OSError:
            return False
        same = (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
        return same and here.st_size == self.size

    def write(self, rows: Iterable[dict[str, Any]]) -> list[int]:
        """Append ``rows`` and fsync, all of them or none; returns the offset of each.
        Raises JournalError when the disk refuses (full, read-only): the journal is then
        cut back to where the batch began (a partial line left by a crash is cut off by
        the next run, which resumes), so every row in it was counted by the run."""
        lines = [_dump(row).encode() for row in rows]
        if not lines:
            return []
        offsets, at = [], self.size
        for line in lines:
            offsets.append(at)
            at += len(line)
        try:
            batch, done = memoryview(b"".join(lines)), 0
            while done < len(batch):  # unbuffered: a full disk may take part of a write
                done += self._fh.write(batch[done:]) or 0
            os.fsync(self._fh.fileno())
            self.size = at
            return offsets
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fh.fileno(), self.size)
            raise JournalError(
                f"cannot write manifest {self.path}: {exc.strerror or exc}; the rows "
                "written so far are kept, rerun the same command to resume"
            ) from None

    def compact(self, lines: Iterable[bytes]) -> None:
        """Replace the journal by ``lines`` (atomically), then keep appending to the new file.

        ``lines`` may be read from the journal itself (see ``current_lines``): the old
        file stays in place until the new one is complete. Raises JournalError when the
        disk refuses (full, read-only): the journal is then as it was (every row of the
        run in it, superseded ones too), the partial copy removed, and the next run
        compacts it.
        """
        self._fh.close()
        tmp = self.path.with_name(self.path.name + COMPACT_SUFFIX)
        try:
            with open(tmp, "wb") as fh:
                fh.writelines(lines)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):  # a partial copy would only fill the disk more
                tmp.unlink()
            raise JournalError(
                f"cannot compact manifest {self.path}: {exc.strerror or exc}; it keeps this "
                "run's rows and the ones they supersede, rerun the same command to compact it"
            ) from None
        self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115
        try:  # the new file: held as the old one was (a master by another name waits)
            hold(self._fh, self.path)
        except UsageError as exc:
            raise JournalError(str(exc)) from None
        self.size = self._fh.tell()

    def close(self) -> None:
        """Close, and release the lock. After a failed write (disk full) the buffer's
        flush fails again: the rows it held are redone by the next run."""
        with contextlib.suppress(OSError):
            self._fh.close()
        self._lock.close()  # releases the flock


def _cut_torn_tail(path: Path) -> int:
    """Drop a partial last line left by a crash mid-write, so appends start on a new line;
    returns how many bytes were dropped."""
    try:
        fh = open(path, "rb+")  # noqa: SIM115  (closed below)
    except FileNotFoundError:
        return 0
    with fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        pos, block = size, 65536
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                fh.truncate(start + newline + 1)
                return size - (start + newline + 1)
            pos = start
        fh.truncate(0)
        return size


@dataclass
class Placed:
    """Where ``current_lines`` put the current rows in the new journal, filled as its
    lines are taken: each task's row (offset + 1; 0: none), the per-line rows and the
    rows of URLs no longer listed (offsets, in order)."""

    offsets: Offsets = field(default_factory=lambda: Offsets(0))
    lines: array = field(default_factory=lambda: array("Q"))
    unlisted: array = field(default_factory=lambda: array("Q"))


def current_lines(
    path: Path,
    superseded: Sequence[int],
    find_many: Callable[[list[str]], list[int | None]],
    count: int,
    placed: Placed | None = None,
) -> Iterator[bytes]:
    """The journal reduced to its current rows, in order: the per-line rows except those
    at the ``superseded`` offsets (ascending), the last row of each of the ``count``
    tasks (``find_many`` maps URLs to their tasks), then the last row of each URL no
    longer listed; where each went is noted in ``placed``. Memory: 5 bytes a task."""
    placed = placed or Placed()
    offsets = placed.offsets = Offsets(count)
    unlisted: dict[str, int] = {}
    batch: list[tuple[int, str]] = []
    at = 0  # the offset in the new journal
    for offset, line in journal_lines(path):
        try:
            row = row_fields(line)
            status, url = row["status"], row["url"]
        except (ValueError, TypeError, KeyError):
            continue
        if status in LINE_STATUSES:
            gone = bisect_left(superseded, offset)
            if gone == len(superseded) or superseded[gone] != offset:
                placed.lines.append(at)
                at += len(line)
                yield line
        elif isinstance(url, str):
            batch.append((offset, url))
        if len(batch) >= _BATCH:
            _place(batch, find_many, offsets, unlisted)
            batch = []
    _place(batch, find_many, offsets, unlisted)
    fd = os.open(path, os.O_RDONLY)
    try:
        for task_id in range(count):
            if offset := offsets[task_id]:
                line = read_line(fd, offset - 1)
                offsets[task_id] = at + 1  # the old offset is read: the new one replaces it
                at += len(line)
                yield line
        for offset in unlisted.values():
            line = read_line(fd, offset)
            placed.unlisted.append(at)
            at += len(line)
            yield line
    finally:
        os.close(fd)


_BATCH = 4096  # rows whose tasks are looked up together


def _place(
    batch: list[tuple[int, str]],
    find_many: Callable[[list[str]], list[int | None]],
    offsets: Offsets,
    unlisted: dict[str, int],
) -> None:
    """Note where each row of ``batch`` lies, under its task or its (unlisted) URL."""
    for (offset, url), task_id in zip(batch, find_many([u for _, u in batch]), strict=True):
        if task_id is None:
            unlisted[url] = offset
        else:
            offsets[task_id] = offset + 1


class Offsets:
    """Journal offsets of 40 bits (journals up to 1 TiB), one a task: 5 bytes each
    instead of 8 (a 10M-URL list: 50 MB)."""

    def __init__(self, count: int) -> None:
        self._low = array("I", bytes(4 * count))
        self._high = bytearray(count)

    def __getitem__(self, task_id: int) -> int:
        return self._high[task_id] << 32 | self._low[task_id]

    def __setitem__(self, task_id: int, offset: int) -> None:
        self._low[task_id] = offset & 0xFFFF_FFFF
        self._high[task_id] = offset >> 32  # ValueError beyond 1 TiB

    def __len__(self) -> int:
        return len(self._high)

    def dump(self, fh: BinaryIO) -> None:
        """Write the offsets as 5 bytes each (low words, then high bytes). Raises OSError."""
        fh.write(memoryview(self._low).cast("B"))
        fh.write(self._high)

    def load(self, fh: BinaryIO, count: int) -> bool:
        """Read ``count`` offsets written by ``dump`` into the first ``count``; False when
        the file ends early. Raises OSError."""
        low = memoryview(self._low).cast("B")[: 4 * count]
        return fh.readinto(low) == len(low) and fh.readinto(memoryview(self._high)[:count]) == count


def read_line(fd: int, offset: int) -> bytes:
    """The journal line at ``offset``, newline included (rows are about 700 bytes; a row
    with large extras may be more). Raises OSError."""
    size = 4096
    while True:
        data = os.pread(fd, size, offset)
        end = data.find(b"\n")
        if end >= 0 or len(data) < size:
            return data if end < 0 else data[: end + 1]
        size *= 4
