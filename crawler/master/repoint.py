"""Kept rows whose ``same_content_as`` names a first that changed, brought up to date.

``same_content_as`` is the ``source`` of the first row with the same image. When that
first's line moves (``restamp``), its URL is no longer listed, or it has other bytes
now, the other copies' rows, trusted and kept as they are (no worker), would go on
naming the old line, which then holds another image or is in a list no longer given
(until 2026-12-01). So before serving, for each image whose first changed (the content
index's ``changed`` table: as large as the images with copies whose first changed), its
first is settled: the same URL while it is listed with those bytes, else the copy on
the earliest line of the lists (one whose row stands, if any: a URL sent out again may
come back with other bytes). Then each standing row of its copies whose pointer is not
that first's line is journalled again, nothing else in it changed (``run_id`` included,
as ``restamp`` does). The copies are found in the content index by digest: a look-up
per image, never a pass over rows; they are read a batch at a time, twice (to settle
the first, then to repoint), so an image with a million copies is never in memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from crawler import constants as c
from crawler.master.contents import ContentIndex
from crawler.master.copies import First
from crawler.master.earlier import EarlierRows
from crawler.master.frontier import FINAL
from crawler.master.plan import Plan
from crawler.report.ledger import Ledger

BATCH = 2000  # rows journalled together
Write = Callable[[list[int], list[dict[str, Any]]], None]


def repoint(plan: Plan, write: Write, ledger: Ledger) -> int:
    """Journal again, with ``write(task ids, rows)``, every standing row (not going to a
    worker, not restamped) whose ``same_content_as`` is not its image's first's current
    line; returns how many. Raises OSError, JournalError."""
    contents, earlier = plan.contents, plan.earlier
    if contents is None or earlier is None:
        return 0
    pointing = itertools.chain.from_iterable(
        _pointing(plan, earlier, contents, ledger, digest) for digest in contents.take_changed()
    )
    count = 0
    while found := list(itertools.islice(pointing, BATCH)):
        write([task_id for task_id, _ in found], [row for _, row in found])
        count += len(found)
    return count


def _pointing(
    plan: Plan, earlier: EarlierRows, contents: ContentIndex, ledger: Ledger, digest: bytes
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The standing rows of the image's copies, with the pointer they should have."""
    first = _settle_first(plan, contents, digest)
    for task_id, url in _listed(plan, contents, digest):
        if plan.state[task_id] != FINAL or task_id in earlier.stale:
            continue  # a worker's answer, or ``restamp``, writes its row (``first_of``)
        row = earlier.row(task_id)
        if row is None or row.get("status") not in c.SUCCESS_STATUSES:
            continue
        wanted = None if first is None or first.url == url else first.source
        if row.get("same_content_as") != wanted:
            ledger.supersede(row)
            yield task_id, row | {"same_content_as": wanted}


def _listed(plan: Plan, contents: ContentIndex, digest: bytes) -> Iterator[tuple[int, str]]:
    """The listed copies of the image (task id, URL), a batch of look-ups at a time."""
    for urls in contents.holders(digest):
        for task_id, url in zip(plan.store.find_many(urls), urls, strict=True):
            if task_id is not None:
                yield task_id, url


def _settle_first(plan: Plan, contents: ContentIndex, digest: bytes) -> First | None:
    """Make the image's first a listed copy, named by its current line, and return it:
    the same URL while listed, else the copy on the earliest line (one whose row stands,
    if any). One pass over the copies, holding none of them."""
    first, kept = contents.first(digest), None
    earliest: tuple[int, str] | None = None  # of all the copies
    standing: tuple[int, str] | None = None  # of those whose row stands
    for copy in _listed(plan, contents, digest):
        if first is not None and copy[1] == first.url:
            kept = copy
        earliest = min(earliest or copy, copy)
        if plan.state[copy[0]] == FINAL:
            standing = min(standing or copy, copy)
    chosen = kept or standing or earliest  # gone, or other bytes now: the next copy
    settled = None if chosen is None else First(chosen[1], plan.store.source(chosen[0]))
    contents.make_first(digest, settled)
    return settled
