"""Per-line rows across runs: an input line that did not change keeps the row it has.

Every input line that is not a task (a ``duplicate``, an ``invalid_url``) gets a row of
its own, found while the lists are read. Journalled again on every rerun, each would
supersede the same row of the last run, and a superseded row means a compaction: a list
with a single repeated line would rewrite the whole manifest every night (gigabytes at
10M URLs). So on a rerun this run's per-line rows wait in a spool file until the journal
has been read; then each is matched to the earlier row of the same input line
(``source``): equal but for ``run_id`` and ``finished_at``, the earlier row stays
current and nothing is written; otherwise the new row is journalled. Earlier per-line
rows left unmatched (the line changed or is gone) are superseded: the compaction drops
them (``journal.current_lines``).

The spool holds the rows compressed (zlib, a block of up to ``BATCH`` rows): as full
JSON it took about 500 bytes a line (75 MB for 150,000 repeated lines), a deleted file
no ``ls`` shows, and a rerun beside a manifest with less free room than that failed
every night (until 2026-12-01); compressed, about 13 bytes a line.
"""

from __future__ import annotations

import json
import os
import tempfile
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from crawler.deferred import numpy
from crawler.master.journal import read_line

if TYPE_CHECKING:
    import numpy as np

Rows = list[dict[str, Any]]
VOLATILE = ("run_id", "finished_at")  # what two runs' rows of one unchanged line differ in
BATCH = 2000  # rows written (or kept) together


def source_key(source: object) -> int:
    """The key a per-line row is matched by: the CRC-32 of its ``source`` (path:line),
    the same in every process (kept in the resume index, ``keptindex``)."""
    if not isinstance(source, str):
        return 0
    return zlib.crc32(source.encode("utf-8", "surrogatepass"))


class EarlierLines:
    """The per-line rows of earlier runs found while reading the journal: 16 bytes each."""

    def __init__(self) -> None:
        self.offsets = array("Q")  # journal offset of each, in journal order
        self.keys = array("q")  # its source_key

    def add(self, offset: int, source: object) -> None:
        self.offsets.append(offset)
        self.keys.append(source_key(source))

    def __len__(self) -> int:
        return len(self.offsets)

    def without(self, gone: Sequence[int]) -> EarlierLines:
        """These rows but those at the ``gone`` offsets (ascending, all among them)."""
        kept, at = EarlierLines(), 0
        for offset, key in zip(self.offsets, self.keys, strict=True):
            if at < len(gone) and gone[at] == offset:
                at += 1
                continue
            kept.offsets.append(offset)
            kept.keys.append(key)
        return kept

    def extend(self, other: EarlierLines) -> None:
        self.offsets.extend(other.offsets)
        self.keys.extend(other.keys)


class LineRows:
    """This run's per-line rows: written at once (first run), or held back and matched."""

    def __init__(
        self,
        write: Callable[[Rows], None],
        keep: Callable[[Rows], None],
        spool: Path | None,
        hold: bool,
    ) -> None:
        """``write``: journal rows; ``keep``: count rows whose earlier row stays current;
        ``spool``: the folder of the spool file; ``hold``: the journal has earlier rows."""
        self._write, self._keep = write, keep
        # Closed by settle(); an unnamed file, gone with the process whatever happens.
        self._held: IO[bytes] | None = None
        if hold:
            self._held = tempfile.TemporaryFile(dir=spool)  # noqa: SIM115  (see above)
        self._rows: Rows = []
        self.superseded = array("Q")  # offsets of earlier per-line rows no longer current

    def add(self, row: dict[str, Any]) -> None:
        """One per-line row, in list order. Raises OSError (spool), JournalError."""
        self._rows.append(row)
        if len(self._rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        if self._held is None:
            self._write(rows)
        elif rows:
            block = zlib.compress(b"".join(json.dumps(row).encode() + b"\n" for row in rows), 1)
            self._held.write(len(block).to_bytes(4, "little") + block)

    def spooled(self) -> int:
        """Bytes in the spool file so far (0: none)."""
        return 0 if self._held is None else self._held.tell()

    def settle(self, journal: Path | None, earlier: EarlierLines | None) -> None:
        """Match the held rows to ``earlier`` (read from ``journal``): keep or write each,
        and note the earlier rows superseded. Raises OSError, JournalError."""
        self.flush()
        if self._held is None:
            return
        lines = earlier if earlier is not None and journal is not None else EarlierLines()
        index = _Index(journal, lines)
        try:
            for rows in _batches(self._held):
                kept, new = [], []
                for row, found in zip(rows, index.take_equal(rows), strict=True):
                    (new if found is None else kept).append(row)
                self._keep(kept)
                self._write(new)
        finally:
            index.close()
            self._held.close()
            self._held = None
        pairs = zip(lines.offsets, index.matched, strict=True)
        self.superseded = array("Q", (offset for offset, kept in pairs if not kept))


class _Index:
    """The earlier per-line rows by key (16 bytes a row), each matched at most once."""

    def __init__(self, journal: Path | None, lines: EarlierLines) -> None:
        self.lines, self.matched = lines, bytearray(len(lines))
        self.fd: int | None = None
        self.order: np.ndarray | None = None
        self.ordered: np.ndarray | None = None
        if journal is None or not len(lines):  # nothing to match: no NumPy (a first run)
            return
        np = numpy()
        keys = np.frombuffer(lines.keys, dtype=np.int64)
        self.order = np.argsort(keys, kind="stable")  # journal order among equal keys
        self.ordered = keys[self.order]
        self.fd = os.open(journal, os.O_RDONLY)

    def take_equal(self, rows: Rows) -> list[int | None]:
        """For each row, the index of an unmatched earlier row equal to it (now matched)."""
        if self.fd is None or self.ordered is None:
            return [None] * len(rows)
        keys = [source_key(row.get("source")) for row in rows]
        spots = numpy().searchsorted(self.ordered, keys).tolist()
        return [
            self._take(row, key, spot) for row, key, spot in zip(rows, keys, spots, strict=True)
        ]

    def _take(self, row: dict[str, Any], key: int, spot: int) -> int | None:
        fd, ordered, order = self.fd, self.ordered, self.order
        assert fd is not None and ordered is not None and order is not None  # take_equal's
        while spot < len(ordered) and ordered[spot] == key:
            index = int(order[spot])
            spot += 1
            if self.matched[index]:
                continue
            try:
                earlier = json.loads(read_line(fd, self.lines.offsets[index]))
            except ValueError:
                continue
            if _same(row, earlier):
                self.matched[index] = 1
                return index
        return None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


def _batches(held: IO[bytes]) -> Iterator[Rows]:
    """The spooled rows, a block at a time (``LineRows.flush``)."""
    held.seek(0)
    while head := held.read(4):
        block = zlib.decompress(held.read(int.from_bytes(head, "little")))
        yield [json.loads(line) for line in block.split(b"\n")[:-1]]


def _same(row: dict[str, Any], earlier: Any) -> bool:
    """Equal but for the fields every run sets anew (compared as JSON, as journalled)."""
    if not isinstance(earlier, dict):
        return False
    mine = {k: v for k, v in row.items() if k not in VOLATILE}
    theirs = {k: v for k, v in earlier.items() if k not in VOLATILE}
    return mine == theirs
