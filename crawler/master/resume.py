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
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.config import ResumeOptions
from crawler.manifest import LINE_STATUSES, journal_lines
from crawler.master import healing, keptindex
from crawler.master.contents import ContentIndex
from crawler.master.earlier import (
    CARRIED,
    EXTRA,
    FAILED_FACTS,
    SECOND,
    STATUS_CODES,
    STATUS_MASK,
    TRUSTED,
    UNTRUSTED_FACTS,
    EarlierRows,
)
from crawler.master.linerows import line_digest
from crawler.master.lookup import Lookup
from crawler.master.taskstore import TaskStore
from crawler.rowread import fields_by_status, raw_extra, success_fields

# What read_earlier reads of a row (healing.decide: a failure's class, count and run).
RESUME_FIELDS = ("path", "store", "host", "fetched_at", "finished_at", "http_status", "error")
RESUME_FIELDS += ("failures", "run_id", "source")
LINE_FIELDS = ("source",)  # a per-line row is matched by its input line (``linerows``)


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
        judge.tell(earlier)
        if from_kept(earlier, kept, store, judge, lookup):
            earlier.from_index = True
            # The same tasks as the run that kept it: none can be listed again.
            return earlier if len(store) == kept.tasks else _listed_again(earlier, judge, lookup)
        earlier.close()
        kept = earlier = None  # its arrays go before the full read makes its own
    earlier = EarlierRows(journal, len(store))
    judge.tell(earlier)
    batch: list[tuple[int, dict[str, Any]]] = []
    for number, (offset, line) in enumerate(journal_lines(journal), start=1):
        try:
            row = _fields(line, judge)
            status, url = row["status"], row["url"]
            row[EXTRA] = raw_extra(line)
        except (ValueError, TypeError, KeyError):
            earlier.unreadable += 1  # damaged: its URL, if any, is done again
            earlier.first_unreadable = earlier.first_unreadable or number
            continue
        if status in LINE_STATUSES:
            earlier.lines.add(offset, row.get("source"), line_digest(line))
        elif status in STATUS_CODES and isinstance(url, str):
            batch.append((offset, row))
        else:  # valid JSON, but no status of ours or no URL (an edit): said, as damage is
            earlier.unreadable += 1  # (until 2026-12-03 dropped without a word)
            earlier.first_unreadable = earlier.first_unreadable or number
        if len(batch) >= BATCH:
            _settle(batch, lookup, earlier, judge)
            batch = []
    _settle(batch, lookup, earlier, judge)
    if judge.seeding:  # the firsts that copies before them named and that never came
        judge.contents.seeded()
    return _listed_again(earlier, judge, lookup)


def _listed_again(earlier: EarlierRows, judge: _Judge, lookup: Lookup) -> EarlierRows:
    """``earlier``, once the URLs that had left the lists and are listed again hold their
    image again in the content index (until 2026-12-01 never a copy again)."""
    if judge.contents is not None and not judge.seeding:
        judge.contents.listed_again(lookup.find_many)
    return earlier


def _fields(line: bytes, judge: _Judge) -> dict[str, Any]:
    """The fields of one journal line the judge needs (a line holding two rows' starts
    is refused: ``rowread.fields_by_status``). Raises ValueError."""
    return (judge.quick and success_fields(line)) or fields_by_status(line, judge.names)


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
        earlier.facts = earlier.facts.translate(UNTRUSTED_FACTS)
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
            rows = [(o, _parsed(earlier.line_at(o), judge)) for o in offsets]
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


def _parsed(line: bytes, judge: _Judge) -> dict[str, Any]:
    row = fields_by_status(line, judge.names)
    row[EXTRA] = raw_extra(line)
    return row


def _failures(facts: bytearray) -> Iterator[int]:
    marks = facts.translate(FAILED_FACTS)
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
        seeded = ("sha256", "same_content_as") if self.seeding else ()
        # run_id: whose verification rules decided the row (``current``).
        self.success_names = ("path", "store", "host", "source", "run_id", *dated, *seeded)
        self.quick = not dated and not seeded  # (rowread.success_fields)
        # The runs that decided by this run's rules (None: no policy, every run does).
        rules = self.policy.get("rules")
        self.current_runs: set[str] | None = (
            None
            if rules is None
            else {run_id for run_id in history.policies if history.rules(run_id) == rules}
        )

    def tell(self, earlier: EarlierRows) -> None:
        """What ``earlier`` needs to know of the runs that wrote it."""
        earlier.current_runs, earlier.history_damaged = self.current_runs, self.history.damaged
        earlier.history_missing = self.history.missing

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
        future = older = False
        if status in c.SUCCESS_STATUSES:
            refresh = options.refresh_after
            age = _age(row, self.now) if refresh is not None else None
            if age is not None and age >= refresh:
                facts |= SECOND
                future = age == FUTURE
            elif _trusted(row, options):
                facts |= TRUSTED | CARRIED
            # Of other rules, as the history says (a run it does not name says nothing):
            # trusted all the same, counted (``resumenotes``).
            older = not earlier.current(row) and self.history.named(row.get("run_id"))
        earlier.facts[task_id] = facts
        earlier.future.mark(task_id, future)
        earlier.older.mark(task_id, older)


def _settle(
    batch: list[tuple[int, dict[str, Any]]],
    lookup: Lookup,
    earlier: EarlierRows,
    judge: _Judge,
) -> None:
    """Note the rows of ``batch`` (in journal order) for their tasks; rows of URLs no
    longer listed are left out."""
    task_ids = lookup.find_many([row["url"] for _, row in batch])
    stamps = lookup.store.stamps(sorted({t for t in task_ids if t is not None}))
    for (offset, row), task_id in zip(batch, task_ids, strict=True):
        if task_id is None:
            earlier.unlisted.append(offset)  # no longer listed: history, never a first
            if judge.seeding:  # the image it left with, for ``listed_again``
                sha256 = row.get("sha256") if row["status"] in c.SUCCESS_STATUSES else None
                judge.contents.left_before(row["url"], sha256)
            elif judge.contents is not None:
                judge.contents.gone(row["url"])
            continue
        earlier.repeated += earlier.offsets[task_id] > 0
        earlier.offsets[task_id] = offset + 1
        earlier.stale.mark(task_id, stamps[task_id] != (row.get("source"), row[EXTRA]))
        judge.note(earlier, task_id, row)
        success = row["status"] in c.SUCCESS_STATUSES
        if judge.seeding:
            sha256 = row.get("sha256") if success else None
            judge.contents.seed(row["url"], row.get("source"), sha256, row.get("same_content_as"))


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


def kept_facts(row: dict[str, Any], trust: ResumeOptions) -> int:
    """The byte of facts the resume index keeps for a row just journalled: its status,
    and for a success, trusted as by ``trust`` (the run's store, without --verify-stored
    and --refresh-after: ``keptindex``). A failure is judged anew when the index is used."""
    facts = STATUS_CODES.get(row["status"], 0)
    if _trusted(row, trust):
        facts |= TRUSTED | CARRIED
    return facts


# The age of a row dated after now: a clock that was ahead when it was written. Its true
# age is unknown, so it is due: one night at 2030 had stopped every revalidation until
# 2030 (a fresh user's, 2026-12-01).
FUTURE = timedelta.max - timedelta(days=1)


def _age(row: dict[str, Any], now: datetime) -> timedelta:
    """How long ago the row's image was fetched or revalidated: ``timedelta.max`` with
    no usable date, ``FUTURE`` when dated after ``now`` (both are due)."""
    try:
        fetched = datetime.fromisoformat(str(row.get("fetched_at") or row.get("finished_at")))
    except ValueError:
        return timedelta.max  # no usable date: treat as old
    if fetched.tzinfo is None:
        fetched = fetched.replace(tzinfo=UTC)
    return FUTURE if fetched > now else now - fetched
