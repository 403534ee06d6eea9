"""Resuming from the manifest of earlier runs: what each task's last row means now.

For every task of this run, the journal says where its last row lies (read back when a
worker needs the stored copy, or a failure its history), and the row decides the task's
fate before anything is handed out: a stored image the manifest can be trusted for stands
(``_trusted``), a failure stands unless ``healing`` retries it, a success due for
revalidation (``refresh_after``) goes out again.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from array import array
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.config import ResumeOptions
from crawler.manifest import LINE_STATUSES, fields_by_status, journal_lines, success_fields
from crawler.master import healing, keptindex
from crawler.master.contents import ContentIndex
from crawler.master.journal import Offsets, read_line
from crawler.master.linerows import EarlierLines
from crawler.master.lookup import Lookup
from crawler.master.taskstore import TaskStore

# What read_earlier reads of a row (healing.decide: a failure's class, count and run).
RESUME_FIELDS = ("path", "store", "host", "fetched_at", "finished_at", "http_status", "error")
RESUME_FIELDS += ("failures", "run_id")
LINE_FIELDS = ("source",)  # a per-line row is matched by its input line (``linerows``)
STATUS_CODES = {status: code for code, status in enumerate(c.STATUSES, start=1)}
STATUS_NAMES = {code: status for status, code in STATUS_CODES.items()}


# One byte a task says what its last earlier row means (``EarlierRows.facts``): the
# row's status code in the low bits, and three flags. A 10M-URL list: 10 MB.
STATUS_MASK = 0x1F
TRUSTED = 0x20  # a success whose image needs no worker (see _trusted)
SECOND = 0x40  # a success: due for revalidation; a failure: given up (healing.GIVE_UP)
CARRIED = 0x80  # the row stands: the task is FINAL before anything is handed out
assert len(STATUS_CODES) <= STATUS_MASK
_SUCCESS_CODES = {STATUS_CODES[s] for s in c.SUCCESS_STATUSES}
_UNTRUSTED = bytes(v & STATUS_MASK if v & STATUS_MASK in _SUCCESS_CODES else v for v in range(256))
_FAILED = bytes(STATUS_NAMES.get(v & STATUS_MASK) in c.FAILED_STATUSES for v in range(256))


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
        return json.loads(read_line(self._fd, offset - 1))

    def success(self, task_id: int) -> dict[str, Any] | None:
        """The last row if it was a success (an image stored), else None."""
        if self.status(task_id) not in c.SUCCESS_STATUSES:
            return None
        return self.row(task_id)

    def rows_at(self, offsets: Iterable[int]) -> Iterator[dict[str, Any] | None]:
        """The rows at these journal offsets; None for one that no longer parses."""
        for offset in offsets:
            try:
                yield json.loads(read_line(self._fd, offset))
            except ValueError:
                yield None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_earlier(
    store: TaskStore, journal: Path, options: ResumeOptions, contents: ContentIndex | None = None
) -> EarlierRows:
    """Where each task's last row of earlier runs lies in ``journal``, and what it means
    for this run (revalidation due, a failure's fate, a trusted image): from the index the
    last completed run kept when it fits (``keptindex``), else read from the journal,
    each row's image digest then going to ``contents``. Raises OSError."""
    judge = _Judge(options, healing.History.read(journal), contents)
    lookup = Lookup(store)
    kept = None if judge.seeding else keptindex.load(journal, store, options)
    if kept is not None:
        earlier = EarlierRows(journal, len(store), kept.offsets, kept.facts)
        if from_kept(earlier, kept, store, judge, lookup):
            earlier.from_index = True
            return earlier
        earlier.close()
        kept = earlier = None  # its arrays go before the full read makes its own
    earlier = EarlierRows(journal, len(store))
    batch: list[tuple[int, dict[str, Any]]] = []
    for number, (offset, line) in enumerate(journal_lines(journal), start=1):
        try:
            row = (judge.quick and success_fields(line)) or fields_by_status(line, judge.names)
            status, url = row["status"], row["url"]
        except (ValueError, TypeError, KeyError):
            earlier.unreadable += 1  # damaged: its URL, if any, is done again
            earlier.first_unreadable = earlier.first_unreadable or number
            continue
        if status in LINE_STATUSES:
            earlier.lines.add(offset, row.get("source"))
        elif status in STATUS_CODES and isinstance(url, str):
            batch.append((offset, row))
        if len(batch) >= BATCH:
            _settle(batch, lookup, earlier, judge)
            batch = []
    _settle(batch, lookup, earlier, judge)
    return earlier


BATCH = 2048  # rows whose tasks are looked up together (lookup.Lookup)
SAMPLE = 64  # rows read back to check a kept index against the manifest


def from_kept(
    earlier: EarlierRows, kept: keptindex.KeptIndex, store: TaskStore, judge: _Judge, lookup: Lookup
) -> bool:
    """Complete ``earlier``, made from the kept index's offsets and facts: trust cleared
    by --verify-stored, failures judged anew from their rows, rows of URLs no longer
    listed looked up among the new tasks. False when a row read back is not its task's
    (or not a row). Raises OSError."""
    if judge.options.verify_stored:
        earlier.facts = earlier.facts.translate(_UNTRUSTED)
    earlier.lines = kept.lines
    sample = range(0, kept.tasks, max(1, kept.tasks // SAMPLE))
    try:
        for task_id in itertools.chain(sample, _failures(earlier.facts)):
            if earlier.offsets[task_id] and not _check(earlier, task_id, store, judge):
                return False
        if len(store) == kept.tasks:
            earlier.unlisted = kept.unlisted
            return True
        for start in range(0, len(kept.unlisted), BATCH):
            offsets = kept.unlisted[start : start + BATCH]
            rows = [(o, fields_by_status(earlier.line_at(o), judge.names)) for o in offsets]
            _settle(rows, lookup, earlier, judge)
    except (ValueError, TypeError, KeyError):
        return False  # a row that no longer parses: the manifest is read in full
    return True


def _check(earlier: EarlierRows, task_id: int, store: TaskStore, judge: _Judge) -> bool:
    """Is the task's row, read back by offset, its own with the kept status? A failure's
    is judged anew (healing depends on the run count). Raises ValueError."""
    row = fields_by_status(earlier.line(task_id), judge.names)
    code = STATUS_CODES.get(row["status"])
    if row["url"] != store.url(task_id) or code != earlier.facts[task_id] & STATUS_MASK:
        return False
    if row["status"] in c.FAILED_STATUSES:
        judge.note(earlier, task_id, row)
    return True


def _failures(facts: bytearray) -> Iterator[int]:
    marks = facts.translate(_FAILED)
    at = marks.find(1)
    while at >= 0:
        yield at
        at = marks.find(1, at + 1)


class _Judge:
    """What a row of an earlier run means for this run."""

    def __init__(
        self, options: ResumeOptions, history: healing.History, contents: ContentIndex | None
    ) -> None:
        self.options, self.history, self.now = options, history, datetime.now(UTC)
        self.contents = contents
        self.policy = dataclasses.asdict(options.policy) if options.policy is not None else {}
        dated = ("fetched_at", "finished_at") if options.refresh_after is not None else ()
        # The content index is filled from the manifest unless a completed run kept it.
        self.seeding = contents is not None and not contents.ready
        seeded = ("sha256", "source") if self.seeding else ()
        self.success_names = ("path", "store", "host", *dated, *seeded)
        self.quick = not dated and not seeded  # (manifest.success_fields)

    def names(self, status: str) -> tuple[str, ...]:
        """The fields a row with ``status`` is judged by (a success's are few)."""
        if status in LINE_STATUSES:
            return LINE_FIELDS
        return self.success_names if status in c.SUCCESS_STATUSES else RESUME_FIELDS

    def note(self, earlier: EarlierRows, task_id: int, row: dict[str, Any]) -> None:
        options, status = self.options, row["status"]
        facts = STATUS_CODES[status]
        if status in c.FAILED_STATUSES:
            decision = healing.decide(row, self.history, self.policy, options.give_up_after)
            decision = healing.RETRY if options.retry_failed else decision
            facts |= (SECOND if decision == healing.GIVE_UP else 0) | (
                0 if decision == healing.RETRY else CARRIED
            )
        elif status in c.SUCCESS_STATUSES:
            refresh = options.refresh_after
            if refresh is not None and _age(row, self.now) >= refresh:
                facts |= SECOND
            elif _trusted(row, options):
                facts |= TRUSTED | CARRIED
        earlier.facts[task_id] = facts


def _settle(
    batch: list[tuple[int, dict[str, Any]]],
    lookup: Lookup,
    earlier: EarlierRows,
    judge: _Judge,
) -> None:
    """Note the rows of ``batch`` (in journal order) for their tasks; rows of URLs no
    longer listed are left out."""
    task_ids = lookup.find_many([row["url"] for _, row in batch])
    for (offset, row), task_id in zip(batch, task_ids, strict=True):
        if task_id is None:
            earlier.unlisted.append(offset)  # no longer listed
            continue
        earlier.repeated += earlier.offsets[task_id] > 0
        earlier.offsets[task_id] = offset + 1
        judge.note(earlier, task_id, row)
        if judge.seeding:
            success = row["status"] in c.SUCCESS_STATUSES
            judge.contents.seed(
                row["url"], row.get("source"), row.get("sha256") if success else None
            )


def _trusted(row: dict[str, Any], options: ResumeOptions) -> bool:
    """Is the row's image known to be where the run would look, so that no worker need
    check it? Yes when it is in this run's shared store, or, when workers store on
    their own hosts, on a named host (rows before host ids existed are checked)."""
    if options.verify_stored or row["status"] not in c.SUCCESS_STATUSES:
        return False
    if not isinstance(row.get("path"), str):
        return False
    if options.store:
        return row.get("store") == options.store
    return row.get("store") is None and isinstance(row.get("host"), str)


def kept_facts(row: dict[str, Any], store: str) -> int:
    """The byte of facts the resume index keeps for a row just journalled: its status,
    and for a success, trusted as by a run on ``store`` without --verify-stored and
    --refresh-after (``keptindex``). A failure is judged anew when the index is used."""
    facts = STATUS_CODES.get(row["status"], 0)
    if _trusted(row, ResumeOptions(store=store)):
        facts |= TRUSTED | CARRIED
    return facts


def _age(row: dict[str, Any], now: datetime) -> timedelta:
    try:
        fetched = datetime.fromisoformat(str(row.get("fetched_at") or row.get("finished_at")))
    except ValueError:
        return timedelta.max  # no usable date: treat as old
    if fetched.tzinfo is None:
        fetched = fetched.replace(tzinfo=UTC)
    return now - fetched
