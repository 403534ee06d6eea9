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

Rows are matched by a digest of what must stay equal (``row_digest``), taken when a row
is journalled (kept in the resume index) or, without that index, when the journal is
read: no earlier row is read back, and a held row is decoded again only to be written.
Until 2026-12-01 each held row was decoded, and its earlier row read back and decoded,
about 100 us a repeated line: a rerun of 600,000 repeated lines planned for 57 s, more
than the first run took in all (a fresh user's, 2026-12-01).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from crawler.deferred import numpy

Rows = list[dict[str, Any]]
VOLATILE = ("run_id", "finished_at")  # what two runs' rows of one unchanged line differ in
BATCH = 2000  # rows written (or kept) together
UNMATCHABLE = 0  # the digest of a journal line that is no row: no row has it


def source_key(source: object) -> int:
    """The key a per-line row is found by in a recount: the CRC-32 of its ``source``
    (path:line), the same in every process (kept in the resume index, ``keptindex``)."""
    if not isinstance(source, str):
        return 0
    return zlib.crc32(source.encode("utf-8", "surrogatepass"))


def row_digest(row: dict[str, Any]) -> int:
    """What a per-line row must keep to stay current, in 63 bits (never UNMATCHABLE): a
    BLAKE2b digest of its field names and values in order, the ``VOLATILE`` ones' values
    left out. ``repr`` is the same for a row and for its JSON read back (JSON makes no
    tuples, floats come back equal); a row in another field order (another version's)
    is written anew once. Two different rows share a digest once in about 2**62."""
    names, volatile = _shape(tuple(row))
    values = list(row.values())
    for at in volatile:
        values[at] = None
    digest = hashlib.blake2b(names, digest_size=8)
    digest.update(repr(values).encode("utf-8", "surrogatepass"))
    return int.from_bytes(digest.digest(), "little") >> 1 | 1


_SHAPES: dict[tuple[str, ...], tuple[bytes, list[int]]] = {}  # one per field list seen


def _shape(names: tuple[str, ...]) -> tuple[bytes, list[int]]:
    """The field names as digested, and where the volatile ones are (a row's values
    digested as a list cost a third of its fields with their names: 600,000 lines, 4 s)."""
    shape = _SHAPES.get(names)
    if shape is None:
        shape = (repr(names).encode("utf-8", "surrogatepass"),
                 [at for at, name in enumerate(names) if name in VOLATILE])  # fmt: skip
        if len(_SHAPES) < 64:  # rows are make_row's: one shape, a few with other versions'
            _SHAPES[names] = shape
    return shape


def line_digest(line: bytes) -> int:
    """``row_digest`` of a journal line; UNMATCHABLE when it is not a row (damaged)."""
    try:
        row = json.loads(line)
        return row_digest(row) if isinstance(row, dict) else UNMATCHABLE
    except (ValueError, RecursionError):  # not JSON, or nested past what Python parses
        return UNMATCHABLE


class EarlierLines:
    """The per-line rows of earlier runs, in journal order: 24 bytes each."""

    def __init__(self) -> None:
        self.offsets = array("Q")  # journal offset of each
        self.keys = array("q")  # its source_key
        self.digests = array("q")  # its row_digest

    def add(self, offset: int, source: object, digest: int) -> None:
        self.offsets.append(offset)
        self.keys.append(source_key(source))
        self.digests.append(digest)

    def __len__(self) -> int:
        return len(self.offsets)

    def without(self, gone: Sequence[int]) -> EarlierLines:
        """These rows but those at the ``gone`` offsets (ascending, all among them)."""
        kept, at = EarlierLines(), 0
        for offset, key, digest in zip(self.offsets, self.keys, self.digests, strict=True):
            if at < len(gone) and gone[at] == offset:
                at += 1
                continue
            kept.add_keyed(offset, key, digest)
        return kept

    def add_keyed(self, offset: int, key: int, digest: int) -> None:
        self.offsets.append(offset)
        self.keys.append(key)
        self.digests.append(digest)

    def extend(self, other: EarlierLines) -> None:
        self.offsets.extend(other.offsets)
        self.keys.extend(other.keys)
        self.digests.extend(other.digests)


class LineRows:
    """This run's per-line rows: written at once (first run), or held back and matched."""

    def __init__(
        self,
        write: Callable[[Rows], None],
        keep: Callable[[Rows], None],
        spool: Path | None,
        hold: bool,
    ) -> None:
        """``write``: journal rows; ``keep``: count rows whose earlier row stays current
        (given their ``status`` only: they are not decoded again); ``spool``: the folder
        of the spool file; ``hold``: the journal has earlier rows."""
        self._write, self._keep = write, keep
        # Closed by settle(); an unnamed file, gone with the process whatever happens.
        self._held: IO[bytes] | None = None
        if hold:
            self._held = tempfile.TemporaryFile(dir=spool)  # noqa: SIM115  (see above)
        self._rows: Rows = []
        self.superseded = array("Q")  # offsets of earlier per-line rows no longer current
        self.decoded = 0  # held rows decoded again (to be written: they changed)

    def add(self, row: dict[str, Any]) -> None:
        """One per-line row, in list order. Raises OSError (spool), JournalError."""
        self._rows.append(row)
        if len(self._rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """A block of held rows: their count, digests, then compressed their statuses
        (one JSON line) and the rows (one a line)."""
        rows, self._rows = self._rows, []
        if self._held is None:
            self._write(rows)
        elif rows:
            digests = array("q", map(row_digest, rows))
            text = [json.dumps([row["status"] for row in rows]).encode()]
            text += [json.dumps(row).encode() for row in rows]
            block = zlib.compress(b"\n".join(text), 1)
            self._held.write(len(rows).to_bytes(4, "little") + digests.tobytes())
            self._held.write(len(block).to_bytes(4, "little") + block)

    def spooled(self) -> int:
        """Bytes in the spool file so far (0: none)."""
        return 0 if self._held is None else self._held.tell()

    def settle(self, journal: Path | None, earlier: EarlierLines | None) -> None:
        """Match the held rows to ``earlier`` (the rows of ``journal``): keep or write
        each, and note the earlier rows superseded. Raises OSError, JournalError."""
        self.flush()
        if self._held is None:
            return
        lines = earlier if earlier is not None and journal is not None else EarlierLines()
        index = _Index(lines)
        try:
            for digests, payload in _blocks(self._held):
                found = index.take(digests)
                statuses = json.loads(payload[0])
                self._keep([{"status": statuses[n]} for n, at in enumerate(found) if at >= 0])
                changed = [json.loads(payload[n + 1]) for n, at in enumerate(found) if at < 0]
                self.decoded += len(changed)
                self._write(changed)
        finally:
            self._held.close()
            self._held = None
        pairs = zip(lines.offsets, index.matched, strict=True)
        self.superseded = array("Q", (offset for offset, kept in pairs if not kept))


class _Index:
    """The earlier per-line rows by digest (16 bytes a row), each matched at most once."""

    def __init__(self, lines: EarlierLines) -> None:
        self.matched = bytearray(len(lines))
        self.order: Any = None  # NumPy arrays: Python ints would take 36 bytes each
        self.ordered: Any = None
        if not len(lines):  # nothing to match: no NumPy (a first run)
            return
        np = numpy()
        digests = np.frombuffer(lines.digests, dtype=np.int64)
        self.order = np.argsort(digests, kind="stable")  # journal order among equal ones
        self.ordered = digests[self.order]

    def take(self, digests: array) -> list[int]:
        """For each digest, the index of the first unmatched earlier row that has it (now
        matched), or -1."""
        if self.ordered is None or not len(digests):
            return [-1] * len(digests)
        np, ordered, order, matched = numpy(), self.ordered, self.order, self.matched
        wanted = np.frombuffer(digests, dtype=np.int64)
        spots = np.minimum(np.searchsorted(ordered, wanted), len(ordered) - 1)
        hits = (ordered[spots] == wanted).tolist()
        found = []
        for hit, first, spot, digest in zip(hits, order[spots].tolist(), spots.tolist(),
                                            digests, strict=True):  # fmt: skip
            if not hit:
                found.append(-1)
            elif not matched[first]:  # the usual case: one earlier row of each line
                matched[first] = 1
                found.append(first)
            else:
                found.append(self._next(spot + 1, digest))
        return found

    def _next(self, spot: int, digest: int) -> int:
        """The first unmatched row from ``spot`` on with ``digest`` (now matched), or -1."""
        ordered, order, matched = self.ordered, self.order, self.matched
        while spot < len(ordered) and ordered[spot] == digest:
            at = int(order[spot])
            if not matched[at]:
                matched[at] = 1
                return at
            spot += 1
        return -1


def _blocks(held: IO[bytes]) -> Iterator[tuple[array, list[bytes]]]:
    """The spooled blocks (``LineRows.flush``): the rows' digests, and the lines of
    their statuses and rows, still JSON."""
    held.seek(0)
    while head := held.read(4):
        digests = array("q")
        digests.frombytes(held.read(8 * int.from_bytes(head, "little")))
        size = int.from_bytes(held.read(4), "little")
        yield digests, zlib.decompress(held.read(size)).split(b"\n")
