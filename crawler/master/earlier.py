"""What a task's last row of earlier runs says, kept in a few bytes a task.

``EarlierRows`` holds, for every task, where its last row lies in the journal (a 40-bit
offset) and one byte of facts: the row's status code and three flags (trusted, second,
carried), filled by ``resume`` from the journal or from the kept index (``keptindex``).
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.manifest import typed_row
from crawler.master.journal import Offsets, read_line
from crawler.master.linerows import EarlierLines

STATUS_CODES = {status: code for code, status in enumerate(c.STATUSES, start=1)}
STATUS_NAMES = {code: status for status, code in STATUS_CODES.items()}


EXTRA = "_extra"  # a row's extra as journalled (``rowread.raw_extra``), beside its fields


class Bits:
    """One flag a task, 8 to a byte."""

    def __init__(self, count: int) -> None:
        self._bytes = bytearray((count + 7) // 8)

    def mark(self, index: int, on: bool) -> None:
        if on:
            self._bytes[index >> 3] |= 1 << (index & 7)
        else:
            self._bytes[index >> 3] &= ~(1 << (index & 7)) & 0xFF

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and bool(self._bytes[index >> 3] >> (index & 7) & 1)

    def count(self) -> int:
        """How many indexes are marked."""
        return int.from_bytes(self._bytes, "little").bit_count()

    def __iter__(self) -> Iterator[int]:
        """The indexes marked, in order."""
        for at, value in enumerate(self._bytes):
            if value:
                yield from (at * 8 + bit for bit in range(8) if value >> bit & 1)


# One byte a task says what its last earlier row means (``EarlierRows.facts``): the
# row's status code in the low bits, and three flags. A 10M-URL list: 10 MB.
STATUS_MASK = 0x1F
TRUSTED = 0x20  # a success whose image needs no worker (see resume._trusted)
SECOND = 0x40  # a success: due for revalidation; a failure: given up (healing.GIVE_UP)
CARRIED = 0x80  # the row stands: the task is FINAL before anything is handed out
assert len(STATUS_CODES) <= STATUS_MASK
_SUCCESS_CODES = {STATUS_CODES[s] for s in c.SUCCESS_STATUSES}
# --verify-stored: a success's facts reduced to its status (no stored image trusted).
UNTRUSTED_FACTS = bytes(
    v & STATUS_MASK if v & STATUS_MASK in _SUCCESS_CODES else v for v in range(256)
)
FAILED_FACTS = bytes(STATUS_NAMES.get(v & STATUS_MASK) in c.FAILED_STATUSES for v in range(256))


class EarlierRows:
    """Where each task's last row of earlier runs lies in the journal, and what it means:
    6 bytes a task."""

    def __init__(
        self,
        journal: Path,
        count: int,
        offsets: Offsets | None = None,
        facts: bytearray | None = None,
    ) -> None:
        self._fd = os.open(journal, os.O_RDONLY)
        self.offsets = offsets or Offsets(count)  # offset + 1 of the last row; 0: none
        self.facts = bytearray(count) if facts is None else facts  # code | flags below
        self.unreadable = 0  # journal lines skipped as damaged
        self.first_unreadable = 0  # the line number of the first
        self.repeated = 0  # rows of a task that has a later row (a journal not compacted)
        self.lines = EarlierLines()  # the per-line rows (matched by ``linerows.LineRows``)
        self.unlisted = array("Q")  # offsets of rows whose URL is no task of this run
        self.from_index = False  # True: found through the kept index (``keptindex``)
        # The tasks whose last row names another input line (source, extra) than the lists
        # now do: a line moved or its other columns changed (``restamp``).
        self.stale = Bits(count)
        # The runs whose verification rules are this run's (None: all of them, ``current``).
        self.current_runs: set[str] | None = None
        # Per task, of its last row (``resume._Judge.note`` marks each row's task, a later
        # row undoing an earlier's): until 2026-12-01 counted per journal row, so the run
        # after an interrupted one counted rows its later rows had replaced.
        self.older = Bits(count)  # a stored image verified by other rules (its row's run)
        self.future = Bits(count)  # a stored image dated after now, revalidated
        self.history_damaged = ""  # why the run history was not read in full
        self.history_missing = False  # no run history beside the manifest

    def current(self, row: dict[str, Any]) -> bool:
        """Was ``row`` decided by this run's verification rules (``constants.RULES``)?"""
        return self.current_runs is None or row.get("run_id") in self.current_runs

    @property
    def older_rules(self) -> int:
        """Tasks whose stored image other verification rules passed (``--verify-stored=full``
        checks them again)."""
        return self.older.count()

    @property
    def future_dated(self) -> int:
        """Tasks whose stored image is dated after now (``resume._age``)."""
        return self.future.count()

    def status(self, task_id: int) -> str | None:
        """The status of the task's last earlier row; None: it has none."""
        return STATUS_NAMES.get(self.facts[task_id] & STATUS_MASK)

    def due(self, task_id: int) -> bool:
        """Is the task's stored image due for revalidation (``--refresh-after``)?"""
        facts = self.facts[task_id]
        return bool(facts & SECOND) and self.status(task_id) in c.SUCCESS_STATUSES

    def line(self, task_id: int) -> bytes:
        """The task's last earlier row as journalled (it must have one). Raises OSError."""
        return self.line_at(self.offsets[task_id] - 1)

    def line_at(self, offset: int) -> bytes:
        return read_line(self._fd, offset)

    def row(self, task_id: int) -> dict[str, Any] | None:
        offset = self.offsets[task_id]
        if not offset:
            return None
        return typed_row(json.loads(read_line(self._fd, offset - 1)))

    def success(self, task_id: int) -> dict[str, Any] | None:
        """The last row if it was a success (an image stored), else None."""
        if self.status(task_id) not in c.SUCCESS_STATUSES:
            return None
        return self.row(task_id)

    def rows_at(self, offsets: Iterable[int]) -> Iterator[dict[str, Any] | None]:
        """The rows at these journal offsets; None for one that no longer parses."""
        for offset in offsets:
            try:
                yield typed_row(json.loads(read_line(self._fd, offset)))
            except ValueError:
                yield None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
