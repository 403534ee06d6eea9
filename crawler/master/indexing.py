"""The resume index (``keptindex``) kept up to date as the run journals, saved at its end.

Each row the master journals becomes its task's last row: the keeper notes where it
went and its byte of facts (``resume.kept_facts``) in the arrays the run resumed with
(``earlier.EarlierRows``; for a first run, new ones: 6 bytes a task). At the end of a
completed run the journal is compacted if rows of it were superseded (``journal.Placed``
then says where every current row went) and the index is saved for the next run.
A run that does not complete saves none: the one it started from no longer fits the
manifest it journalled to, and the next run reads the manifest in full.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crawler.config import ResumeOptions
from crawler.console import log
from crawler.exceptions import JournalError
from crawler.master import keptindex
from crawler.master.earlier import EarlierRows
from crawler.master.journal import ManifestWriter, Offsets, Placed, current_lines
from crawler.master.keptindex import KeptIndex
from crawler.master.linerows import EarlierLines, row_digest
from crawler.master.lookup import Lookup
from crawler.master.plan import Plan
from crawler.master.restamp import restamp
from crawler.master.resume import kept_facts
from crawler.report.ledger import Ledger


class IndexKeeper:
    """Where each task's last row is, as the run journals."""

    def __init__(self, manifest: Path, store: str) -> None:
        """``store``: the run's store spec (what "trusted" is judged against)."""
        self.manifest, self.store = manifest, store
        self._trust = ResumeOptions(store=store)  # how the next run judges a row (kept_facts)
        self.lines = EarlierLines()  # the per-line rows this run journalled
        self.earlier: EarlierRows | None = None

    def lines_written(self, rows: list[dict[str, Any]], offsets: list[int]) -> None:
        """Per-line rows journalled at ``offsets``."""
        for row, offset in zip(rows, offsets, strict=True):
            self.lines.add(offset, row.get("source"), row_digest(row))

    def start(self, plan: Plan, writer: ManifestWriter, ledger: Ledger) -> None:
        """After planning: the arrays to keep up to date; the rows kept from earlier runs
        brought up to date with the lists (``restamp``). Raises OSError, JournalError."""
        self.earlier = plan.earlier or EarlierRows(self.manifest, len(plan.store))

        def write(ids: list[int], rows: list[dict[str, Any]]) -> None:
            self.rows_written(ids, rows, writer.write(rows))
            ledger.add(rows)

        lines, firsts = restamp(plan, write, ledger)
        if lines:
            log.info("%d kept row(s) brought up to date: their line moved or changed", lines)
        if firsts:  # until 2026-12-02 counted as lines moved (a fresh user's)
            log.info("%d kept row(s) brought up to date: the first row with their image "
                     "changed (same_content_as)", firsts)  # fmt: skip

    def rows_written(self, ids: list[int], rows: list[dict[str, Any]], offsets: list[int]) -> None:
        """Rows of tasks ``ids`` journalled at ``offsets``."""
        earlier = self.earlier
        if earlier is None:
            return
        for task_id, row, offset in zip(ids, rows, offsets, strict=True):
            earlier.offsets[task_id] = offset + 1
            earlier.facts[task_id] = kept_facts(row, self._trust)

    def line_keys(self, plan: Plan) -> array:
        """The ``source_key`` of every per-line row the run's lists have now: the earlier
        runs' rows that stand, and this run's (before ``finish``)."""
        earlier = self.earlier
        lines = EarlierLines() if earlier is None else earlier.lines.without(plan.superseded_lines)
        lines.extend(self.lines)
        return lines.keys

    def finish(self, writer: ManifestWriter, plan: Plan, ledger: Ledger) -> None:
        """Compact the journal if rows of it were superseded, then keep the index for the
        next run. Raises JournalError, OSError (the compaction: a full disk); failing to
        keep the index is only a warning."""
        if not writer.still_named():  # its rows are in a file no name reaches: exit 3
            keptindex.discard(self.manifest)
            raise JournalError(
                f"manifest {self.manifest} was removed, replaced or cut short during the run: "
                "rows journalled in it are lost, and the next run fetches their URLs again"
            )
        earlier, self.earlier = self.earlier, None
        assert earlier is not None
        lines = earlier.lines.without(plan.superseded_lines)
        lines.extend(self.lines)
        kept = KeptIndex(len(plan.store), earlier.offsets, earlier.facts, lines, earlier.unlisted)
        kept.store, kept.sources = self.store, list(plan.store.sources)
        plan.forget_earlier()
        earlier.close()
        if not writer.empty and ledger.needs_compaction:
            kept.offsets = earlier.offsets = Offsets(0)  # freed before the compaction's own
            try:
                compacted = _compact(writer, plan, kept)
            except JournalError:  # the journal as it was: an earlier index no longer fits
                keptindex.discard(self.manifest)
                raise
            if not compacted:
                keptindex.discard(self.manifest)
                return
        try:
            kept.spool_crc = plan.store.crc(kept.tasks)
            keptindex.save(self.manifest, kept)
        except (OSError, ValueError) as exc:
            log.warning("cannot keep the resume index (the next run reads the manifest): %s", exc)
            keptindex.discard(self.manifest)

    def close(self) -> None:
        if self.earlier is not None:
            self.earlier.close()
            self.earlier = None


def _compact(writer: ManifestWriter, plan: Plan, kept: KeptIndex) -> bool:
    """Compact; note in ``kept`` where its rows went. False: the index cannot follow."""
    placed, store = Placed(), plan.store  # rows mostly in task order: looked up as resuming
    writer.compact(current_lines(writer.path, plan.superseded_lines, Lookup(store).find_many,
                                 len(store), placed))  # fmt: skip
    if len(placed.lines) != len(kept.lines):
        return False  # a per-line row the journal and the keeper disagree on: read anew
    kept.offsets, kept.unlisted = placed.offsets, placed.unlisted
    kept.lines = _moved(kept.lines, placed.lines)
    return True


def _moved(lines: EarlierLines, offsets: Sequence[int]) -> EarlierLines:
    """``lines`` at their new ``offsets`` (the same rows, in the same order)."""
    moved = EarlierLines()
    moved.offsets.extend(offsets)
    moved.keys.extend(lines.keys)
    moved.digests.extend(lines.digests)
    return moved
