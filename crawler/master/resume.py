"""Resuming from the manifest of earlier runs: what each task's last row means now.

For every task of this run, the journal says where its last row lies (read back when a
worker needs the stored copy, or a failure its history), and the row decides the task's
fate before anything is handed out: a stored image the manifest can be trusted for stands
(``_trusted``), a failure stands unless ``healing`` retries it, a success due for
revalidation (``refresh_after``) goes out again.
"""

from __future__ import annotations

import dataclasses
import json
import os
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.config import ResumeOptions
from crawler.manifest import LINE_STATUSES, journal_lines, row_fields
from crawler.master import healing
from crawler.master.contents import ContentIndex
from crawler.master.frontier import FINAL
from crawler.master.taskstore import TaskStore

# What read_earlier reads of a row (healing.decide: a failure's class, count and run).
RESUME_FIELDS = ("path", "store", "host", "fetched_at", "finished_at", "http_status", "error")
RESUME_FIELDS += ("failures", "run_id", "sha256")
STATUS_CODES = {status: code for code, status in enumerate(c.STATUSES, start=1)}
STATUS_NAMES = {code: status for status, code in STATUS_CODES.items()}


class EarlierRows:
    """Where each task's last row of earlier runs lies in the journal (8 bytes a task)."""

    def __init__(self, journal: Path, count: int) -> None:
        self._fd = os.open(journal, os.O_RDONLY)
        self.offsets = array("Q", bytes(8 * count))  # offset + 1 of the last row; 0: none
        self.lengths = array("I", bytes(4 * count))
        self.status = bytearray(count)  # status code of that row
        self.refresh = bytearray(count)  # 1: a success due for revalidation
        self.decision = bytearray(count)  # a failure's: healing.KEEP, RETRY or GIVE_UP
        self.trusted = bytearray(count)  # 1: a success whose image needs no worker (see _trusted)
        self.unreadable = 0  # journal lines skipped as damaged
        self.first_unreadable = 0  # the line number of the first

    def row(self, task_id: int) -> dict[str, Any] | None:
        offset = self.offsets[task_id]
        if not offset:
            return None
        return json.loads(os.pread(self._fd, self.lengths[task_id], offset - 1))

    def success(self, task_id: int) -> dict[str, Any] | None:
        """The last row if it was a success (an image stored), else None."""
        if STATUS_NAMES.get(self.status[task_id]) not in c.SUCCESS_STATUSES:
            return None
        return self.row(task_id)

    def close(self) -> None:
        os.close(self._fd)


def read_earlier(
    store: TaskStore, journal: Path, options: ResumeOptions, contents: ContentIndex | None = None
) -> EarlierRows:
    """Where each task's last row of earlier runs lies in ``journal``, and what it means
    for this run (revalidation due, a failure's fate, a trusted image); each row's image
    digest goes to ``contents``."""
    earlier = EarlierRows(journal, len(store))
    now = datetime.now(UTC)
    history = healing.History.read(journal)
    policy = dataclasses.asdict(options.policy) if options.policy is not None else {}
    for number, (offset, line) in enumerate(journal_lines(journal), start=1):
        try:
            row = row_fields(line, RESUME_FIELDS)
            status, url = row["status"], row["url"]
        except (ValueError, TypeError, KeyError):
            earlier.unreadable += 1  # damaged: its URL, if any, is done again
            earlier.first_unreadable = earlier.first_unreadable or number
            continue
        if status not in STATUS_CODES or status in LINE_STATUSES or not isinstance(url, str):
            continue
        task_id = store.find(url)
        if task_id is None:
            continue  # no longer listed
        earlier.offsets[task_id], earlier.lengths[task_id] = offset + 1, len(line)
        earlier.status[task_id] = STATUS_CODES[status]
        if contents is not None:
            contents.seed(task_id, row["sha256"] if status in c.SUCCESS_STATUSES else None)
        due = options.refresh_after is not None and _age(row, now) >= options.refresh_after
        earlier.refresh[task_id] = due and status in c.SUCCESS_STATUSES
        failed = status in c.FAILED_STATUSES
        decision = healing.decide(row, history, policy, options.give_up_after) if failed else 0
        earlier.decision[task_id] = healing.RETRY if options.retry_failed else decision
        earlier.trusted[task_id] = not due and _trusted(row, options)
    return earlier


@dataclass
class Carried:
    """The earlier rows that stand for this run: their statuses, and how many of them."""

    statuses: Counter[str] = field(default_factory=Counter)
    retried: int = 0  # earlier failures tried again this run
    given_up: int = 0  # of the carried: failed too many runs in a row
    kept: int = 0  # of the carried: stored images trusted without a worker


def carry(earlier: EarlierRows, state: bytearray) -> Carried:
    """Mark FINAL in ``state`` the tasks whose last row stands, never sent to a worker:
    trusted images, and failures this run does not retry (``healing``)."""
    carried = Carried()
    for task_id, code in enumerate(earlier.status):
        status = STATUS_NAMES.get(code)
        decision = earlier.decision[task_id]
        if status in c.FAILED_STATUSES and decision == healing.RETRY:
            carried.retried += 1
        elif earlier.trusted[task_id] or status in c.FAILED_STATUSES:
            state[task_id] = FINAL
            carried.statuses[str(status)] += 1
            carried.given_up += decision == healing.GIVE_UP
    carried.kept = earlier.trusted.count(1)
    return carried


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


def _age(row: dict[str, Any], now: datetime) -> timedelta:
    try:
        fetched = datetime.fromisoformat(str(row.get("fetched_at") or row.get("finished_at")))
    except ValueError:
        return timedelta.max  # no usable date: treat as old
    if fetched.tzinfo is None:
        fetched = fetched.replace(tzinfo=UTC)
    return now - fetched
