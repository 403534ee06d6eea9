"""Rows kept from earlier runs brought up to date with the lists: the input line a URL is
on now, that line's other columns, and the line its image was first seen on.

A rerun keeps an earlier row as it is when its URL is not fetched again (a trusted
image, a failure not retried). When the URL's first line moved (lines inserted above it,
lists reordered or renamed) or its other columns changed (a caption edited), that row
would name a line that is no longer its own, and the ``same_content_as`` of rows with
the same image would name the wrong line. So before serving, each such row is journalled
again: the same row with the task's current ``source`` and ``extra``, and its
``same_content_as`` looked up anew (``run_id`` kept: healing counts runs from it). The
rows it supersedes make the end of the run compact the journal.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from crawler import constants as c
from crawler.master.contents import ContentIndex
from crawler.master.earlier import EarlierRows
from crawler.master.frontier import FINAL
from crawler.master.plan import Plan
from crawler.master.repoint import repoint
from crawler.report.ledger import Ledger

BATCH = 2000  # rows journalled together
Write = Callable[[list[int], list[dict[str, Any]]], None]


def restamp(plan: Plan, write: Write, ledger: Ledger) -> tuple[int, int]:
    """Journal again, with ``write(task ids, rows)``, every kept row whose input line is
    no longer what the lists say, or whose ``same_content_as`` names a first that changed
    (``repoint``); returns how many of each (lines, firsts). Raises OSError, JournalError."""
    earlier, contents = plan.earlier, plan.contents
    if earlier is None:
        return 0, 0

    def kept() -> Iterator[int]:  # streamed: all of a 10M list when a line went in on top
        return (t for t in earlier.stale if plan.state[t] == FINAL)  # others get a new row

    if contents is not None:  # first: each image's first line where it is now, also of
        for task_id in earlier.stale:  # rows sent out again (a refresh): their results,
            row = earlier.row(task_id)  # in any order, name it (until 2026-12-01 stale)
            if row is not None and row.get("status") in c.SUCCESS_STATUSES:
                contents.moved(row["url"], plan.store.source(task_id), row.get("sha256"))
    # Then the rows of other copies naming a first that moved, went or changed bytes.
    firsts, tasks, lines = repoint(plan, write, ledger), kept(), 0
    plan.store.drop_index()  # repoint's look-ups were the last: not held while restamping
    while ids := list(itertools.islice(tasks, BATCH)):
        write(ids, [_current(plan, earlier, contents, ledger, t) for t in ids])
        lines += len(ids)
    return lines, firsts


def _current(
    plan: Plan, earlier: EarlierRows, contents: ContentIndex | None, ledger: Ledger, task_id: int
) -> dict[str, Any]:
    row = earlier.row(task_id)
    assert row is not None  # a stale task has a row
    ledger.supersede(row)
    url, source, extra = plan.store.record(task_id)
    new = row | {"source": source, "extra": extra}
    if contents is not None and row.get("status") in c.SUCCESS_STATUSES:
        new["same_content_as"] = contents.first_of(url, row.get("sha256"))
    return new
