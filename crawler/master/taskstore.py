"""Every task's URL and source, kept on disk; in memory only fixed-size arrays.

A run may hold tens of millions of URLs. As Python strings they would take gigabytes,
so the master spools each distinct URL (with the "file:line" it came from and, for
CSV, TSV and JSON Lines lists, the row's other columns) to a temporary file and keeps
only its offset (4 or 8 bytes) and an open-addressing hash table for finding duplicates
(8 bytes a slot). A record is one line, ``URL\tFILE:LINE[\tEXTRA_JSON]\n`` (neither a
URL nor compact JSON holds a raw tab or newline), read back with one ``pread``; close
tasks with one ``pread`` for all of them. A table entry is ``top30(hash) << 34 | (task
id + 1)``; the slot is taken from the top bits of the hash, so the table can grow
without reading the URLs back. Equal tags are confirmed by comparing the URLs: a hash
collision never merges two different URLs.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
import zlib
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_ID_BITS = 34
_ID_MASK = (1 << _ID_BITS) - 1
_TAG_BITS = 30
_MAX_LOAD = 0.7
_GAP = 64  # task ids this close are read in one range (find_many)


class TaskStore:
    """Append-only store of distinct URLs; task ids are 0, 1, 2, ... in order of arrival."""

    def __init__(self, directory: Path | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115  (closed in close())
        self._fd = self._file.fileno()
        # Start of each record, plus the end of the last: 4 bytes each while the spool is
        # under 4 GiB (tens of millions of URLs), 8 beyond.
        self._offsets = array("I", [0])
        self._pending = bytearray()  # written records not yet flushed to the file
        self._flushed = 0  # file size
        self._bits = 16
        self._table = array("Q", bytes(8 << self._bits))
        self._grow_at = int(_MAX_LOAD * len(self._table))  # task count that grows the table
        self._indexed = True  # False after drop_index
        self.sources: list[str] = []  # list paths, indexed by the records' file number
        self._crc = (0, 0)  # (count, CRC-32 of the first count records), the last computed

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def add(
        self, url: str, source_file: int, line: int, extra: dict[str, Any] | None = None
    ) -> tuple[int, bool]:
        """Store ``url`` (with its source and extras) unless already there; returns
        (task id, True if it is new). Extras of a URL already stored are not kept."""
        # The hot loop of reading a list (once per URL): attribute lookups kept few.
        if not self._indexed:
            self._ensure_index()
        tag = self._tag(url)
        slot, found = self._probe(url, tag)
        if found is not None:
            return found, False
        offsets = self._offsets
        task_id = len(offsets) - 1
        self._table[slot] = (tag << _ID_BITS) | (task_id + 1)
        tail = f"\t{_ENCODER.encode(extra)}\n" if extra else "\n"
        record = f"{url}\t{source_file}:{line}{tail}".encode()
        self._pending += record
        end = offsets[-1] + len(record)
        if end > 0xFFFF_FFFF and offsets.typecode == "I":
            offsets = self._offsets = array("Q", offsets)
        offsets.append(end)
        if len(self._pending) > 1 << 20:
            self._flush()
        if task_id >= self._grow_at:
            self._grow()
        return task_id, True

    def find(self, url: str) -> int | None:
        """The task id of ``url``, or None."""
        self._ensure_index()
        return self._probe(url, self._tag(url))[1]

    def drop_index(self) -> None:
        """Free the hash table (8 bytes a slot: 134 MB for 10M URLs) once planning is done:
        serving finds tasks by id. The next ``add`` or ``find`` rebuilds it from the spool."""
        self._table, self._indexed = array("Q"), False

    def _ensure_index(self) -> None:
        if self._indexed:
            return
        self._bits = 16
        while len(self) > _MAX_LOAD * (1 << self._bits):
            self._bits += 1
        table = array("Q", bytes(8 << self._bits))
        mask, shift = len(table) - 1, _TAG_BITS - self._bits
        step = 1 << 16
        for first in range(0, len(self), step):  # the URLs are distinct: no comparisons
            last = min(len(self), first + step)
            for task_id, url in enumerate(self.urls(first, last), start=first):
                tag = self._tag(url)
                slot = tag >> shift
                while table[slot]:
                    slot = (slot + 1) & mask
                table[slot] = (tag << _ID_BITS) | (task_id + 1)
        self._table, self._indexed = table, True
        self._grow_at = int(_MAX_LOAD * len(table))

    def find_many(self, urls: list[str]) -> list[int | None]:
        """The task ids of ``urls`` (None: not stored), like ``find`` but with a few reads
        for all of them: the first candidate of each is confirmed from spool ranges read
        whole (the rows of a manifest come roughly in task order)."""
        self._ensure_index()
        guesses = [self._guess(url) for url in urls]
        stored = self._urls_of(sorted({g for g in guesses if g is not None}))
        return [
            guess if guess is None or stored[guess] == url else self.find(url)
            for url, guess in zip(urls, guesses, strict=True)
        ]

    def _guess(self, url: str) -> int | None:
        """The first task whose entry has ``url``'s tag; None: ``url`` is not stored."""
        tag = self._tag(url)
        table = self._table
        mask = len(table) - 1
        slot = tag >> (_TAG_BITS - self._bits)
        while entry := table[slot]:
            if entry >> _ID_BITS == tag:
                return (entry & _ID_MASK) - 1
            slot = (slot + 1) & mask
        return None

    def _urls_of(self, ids: list[int]) -> dict[int, str]:
        """The URLs of the sorted task ``ids``, close ones read with one ``pread``."""
        found: dict[int, str] = {}
        for first, last in _ranges(ids):
            found.update(zip(range(first, last), self.urls(first, last), strict=True))
        return found

    def stamps(self, ids: list[int]) -> dict[int, tuple[str, bytes]]:
        """(source, extra as compact JSON or ``b"null"``) of each of the sorted task
        ``ids`` (``_fields_of``): what its manifest row says of its line (``resume``)."""
        return {
            task_id: (self._source(where), tail[0].encode() if tail else b"null")
            for task_id, (_, where, *tail) in self._fields_of(ids)
        }

    def records(self, ids: list[int]) -> dict[int, tuple[str, str, dict[str, Any] | None]]:
        """``record`` of each of the sorted task ``ids`` (``_fields_of``: a batch's results
        in a few ``pread``s, each of which lets the GIL go). Raises OSError."""
        wanted = set(ids)
        return {
            task_id: (url, self._source(where), json.loads(tail[0]) if tail else None)
            for task_id, (url, where, *tail) in self._fields_of(ids)
            if task_id in wanted
        }

    def _fields_of(self, ids: list[int]) -> Iterator[tuple[int, list[str]]]:
        """Each task of the ranges the sorted ``ids`` make, and its record's fields: close
        ones read with one ``pread``."""
        for first, last in _ranges(ids):
            data = self._read(self._offsets[first], self._offsets[last]).decode()
            fields = (record.split("\t", 2) for record in data.split("\n")[:-1])
            yield from zip(range(first, last), fields, strict=True)

    def _probe(self, url: str, tag: int) -> tuple[int, int | None]:
        """(slot, task id) of ``url``, or (the free slot where it would go, None)."""
        table = self._table
        mask = len(table) - 1
        slot = tag >> (_TAG_BITS - self._bits)
        while True:
            entry = table[slot]
            if entry == 0:
                return slot, None
            if entry >> _ID_BITS == tag and self.url((entry & _ID_MASK) - 1) == url:
                return slot, (entry & _ID_MASK) - 1
            slot = (slot + 1) & mask

    @staticmethod
    def _tag(url: str) -> int:
        """The top bits of the URL's hash (per-process hash: the table never leaves it)."""
        return (hash(url) & 0xFFFF_FFFF_FFFF_FFFF) >> (64 - _TAG_BITS)

    def __getitem__(self, task_id: int) -> str:
        return self.url(task_id)

    def url(self, task_id: int) -> str:
        return self._record(task_id)[0]

    def source(self, task_id: int) -> str:
        """Where the URL was first seen: "LIST_PATH:LINE"."""
        return self.entry(task_id)[1]

    def entry(self, task_id: int) -> tuple[str, str]:
        """(URL, source) with one read."""
        url, where = self._record(task_id)[:2]
        return url, self._source(where)

    def record(self, task_id: int) -> tuple[str, str, dict[str, Any] | None]:
        """(URL, source, extra) with one read."""
        url, where, *tail = self._record(task_id)
        return url, self._source(where), json.loads(tail[0]) if tail else None

    def _source(self, where: str) -> str:
        number, line = where.split(":")
        return f"{self.sources[int(number)]}:{line}"

    def crc(self, count: int) -> int:
        """The CRC-32 of the first ``count`` records (URL, list number, line, extras):
        equal, the same lists gave the first ``count`` tasks. Raises OSError."""
        known, crc = self._crc  # a run checks its first N at the start, keeps all at the end
        at = self._offsets[known] if known <= count else 0
        crc = crc if known <= count else 0
        end = self._offsets[count]
        while at < end:
            chunk = self._read(at, min(end, at + (1 << 22)))
            crc, at = zlib.crc32(chunk, crc), at + len(chunk)
        self._crc = (count, crc)
        return crc

    def urls(self, first: int, last: int) -> list[str]:
        """URLs of tasks ``first`` .. ``last - 1``, read with one system call."""
        data = self._read(self._offsets[first], self._offsets[last])
        return [record.split("\t", 1)[0] for record in data.decode().split("\n")[:-1]]

    def spooled(self) -> int:
        """Bytes in the spool file (0 once closed)."""
        try:
            return os.fstat(self._fd).st_size
        except OSError:
            return 0

    def close(self) -> None:
        """Drop the spool and the arrays (others may still hold a reference to the store)."""
        self._file.close()
        self._table, self._offsets = array("Q"), array("I", [0])

    def _record(self, task_id: int) -> list[str]:
        if not 0 <= task_id < len(self):
            raise IndexError(task_id)
        data = self._read(self._offsets[task_id], self._offsets[task_id + 1])
        return data.decode().rstrip("\n").split("\t", 2)

    def _read(self, start: int, end: int) -> bytes:
        if end > self._flushed:
            self._flush()
        return os.pread(self._fd, end - start, start)

    def flush(self) -> None:
        """Write what is pending to the spool now (at the end of planning: a full disk is
        then found while planning, not by a server thread mid-run). Raises OSError."""
        self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        # pwrite may write less than asked when the disk fills up: a record cut short
        # would come back as a wrong URL, so what does not fit is an error here.
        view, at = memoryview(self._pending), self._flushed
        while view:
            written = os.pwrite(self._fd, view, at)
            if written <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view, at = view[written:], at + written
        self._flushed = at
        self._pending = bytearray()

    def _grow(self) -> None:
        if self._bits >= _TAG_BITS:
            return  # a billion slots: probing gets slower, nothing breaks
        self._bits += 1
        table = array("Q", bytes(8 << self._bits))
        mask, shift = len(table) - 1, _TAG_BITS - self._bits
        for entry in self._table:
            if entry:
                slot = (entry >> _ID_BITS) >> shift
                while table[slot]:
                    slot = (slot + 1) & mask
                table[slot] = entry
        self._table = table
        self._grow_at = int(_MAX_LOAD * len(table))


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one line, no tab


def _ranges(ids: list[int]) -> list[tuple[int, int]]:
    """The sorted ``ids`` as ranges [first, last) of tasks close enough to read at once."""
    ranges, start = [], 0
    while start < len(ids):
        end = start + 1
        while end < len(ids) and ids[end] - ids[end - 1] <= _GAP:
            end += 1
        ranges.append((ids[start], ids[end - 1] + 1))
        start = end
    return ranges
