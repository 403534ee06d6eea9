"""Results in, manifest rows out: every answer checked before it is journalled.

A worker's result is a JSON string (``protocol.decode_result`` checks its fields). It
becomes a row only if it is for a URL this run sent, under that task's id; a reuse or a
304 only if an earlier run really stored an image for that URL; and only the first
answer for a URL counts, and a failure only from the live lease's holder
(``leases.LeaseBoard.complete``: fencing tokens). A success's image digest is looked
up in the run's content index (``master.contents``) for ``same_content_as``, the rows of
a batch together (``_settle``: ``newimages``). A result
whose robots.txt was unavailable, or a 429/503, puts its URL back instead, while it has
leases or retries left (``putbacks.PutBacks.leased_again``), as does once one whose
deadline went to robots.txt. Anything else is
logged and dropped: a peer holding the key can send anything, and must not corrupt the
manifest.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from crawler import constants as c
from crawler.manifest import make_row, now_iso
from crawler.master.fencing import Answer
from crawler.master.healing import failure_fields
from crawler.master.leases import LeaseBoard
from crawler.master.plan import Plan
from crawler.master.rowfields import copy_kept, locate, opted_out, result_fields
from crawler.master.superseded import dropped_copy, moved_copy
from crawler.protocol import decode_result
from crawler.report.ledger import Ledger

log = logging.getLogger("crawler")


class ResultIntake:
    """Turns result strings of one run into manifest rows."""

    def __init__(
        self,
        plan: Plan,
        board: LeaseBoard,
        run_id: str,
        store: str = "",
        ledger: Ledger | None = None,
    ) -> None:
        """``store``: the run's store spec; ``ledger``: told of each row a new one supersedes."""
        self._plan = plan
        self._ledger = ledger or Ledger(None, run_id)
        self._board = board
        self._run_id = run_id
        # What this run's results changed: new_ok, reused, recovered, new_failures,
        # still_failing, ... (see constants.CHANGES); counted once journalled (``written``).
        self.changes: Counter[str] = Counter()
        self._unwritten: Counter[str] = Counter()  # of the rows handed out, not journalled
        self._store = store
        self.superseded: list[dict[str, Any]] = []  # earlier copies a new location replaced
        self._ids: list[int] = []  # the task of each row given (see take_ids)
        # Rows whose same_content_as the content index has yet to give (``_settle``)
        self._unsettled: list[dict[str, Any]] = []
        self._records: dict[int, tuple[str, str, Any]] = {}  # the batch's tasks (``rows``)

    def rows(self, batches: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
        """The rows of every (worker, results) batch; ignored results leave no row."""
        now = now_iso()
        results = [(worker, _decoded(text)) for worker, texts in batches for text in texts]
        store = self._plan.store
        # Every task's record in a few reads (``TaskStore.records``), not one a row; an id
        # this run never gave has none (``_accept`` refuses its result)
        wanted = {r["id"] for _, r in results if isinstance(r, dict) and 0 <= r["id"] < len(store)}
        self._records = store.records(sorted(wanted))
        rows = []
        for worker, result in results:
            if isinstance(result, ValueError):  # logged in arrival order, as the others
                log.warning("ignored a result from %s: %s", worker, result)
            elif (row := self._accept(worker, result, now)) is not None:
                rows.append(row)
                log.debug("%s %s %ss %s", row["status"], row["url"], row["elapsed_s"], worker)
        self._records = {}
        self._settle()
        return rows

    def written(self) -> None:
        """The rows given since the last call are in the manifest: their changes count
        now. A batch the disk refused is not in it, and counts nothing."""
        self.changes.update(self._unwritten)
        self._unwritten.clear()

    def take_ids(self) -> list[int]:
        """The task ids of the rows ``rows`` and ``lost_rows`` gave since the last call,
        in the same order (for the resume index: ``master.indexing``)."""
        ids, self._ids = self._ids, []
        return ids

    def _accept(self, worker: str, result: dict[str, Any], now: str) -> dict[str, Any] | None:
        """The row for one checked result (``same_content_as`` by ``_settle``), or None."""
        task_id = result["id"]
        url, source, extra = self._records.get(task_id, ("", "", None))  # (``rows``)
        if url != result["url"]:
            log.warning("ignored a result from %s for a URL this run never sent", worker)
            return None
        success = result["status"] in c.SUCCESS_STATUSES
        # The earlier row is read back (a pread) only where a success needs it: to keep a
        # reuse's image fields, or to see that a new copy supersedes the stored one.
        stored = self._plan.stored_row(task_id) if success else None
        kept = result["reused"] or result["status"] == c.NOT_MODIFIED
        if kept and stored is None:
            log.warning("ignored a result from %s reusing a file never stored", worker)
            return None
        answer = Answer.of(result)
        if self._board.leased_again(task_id, worker, url, result, answer):
            return None  # robots.txt unavailable or took the deadline, 429/503: leased again
        if not self._board.complete(task_id, worker, answer):
            return None  # already final, or a stale holder's failure (fencing)
        if sent := self._board.put_backs(task_id)[1]:  # by its leases put back (429/503...)
            result["attempts"] = (result["attempts"] or 0) + sent
        if not success and (standing := self._kept_copy(task_id, worker, result)) is not None:
            return standing
        # The row this one supersedes, read once (history, ledger); None: the URL is new.
        earlier = stored or self._plan.earlier_row(task_id)
        fields = result_fields(result, stored if kept else None, now)
        how = "revalidated" if result["status"] == c.NOT_MODIFIED else "reused" if kept else ""
        fields |= self._history(task_id, result["status"], how, now, earlier)
        locate(fields, stored, self._store)
        self._note_moved(fields, stored, earlier)
        if earlier is not None:
            self._ledger.supersede(earlier)
        self._ids.append(task_id)
        row = make_row(
            **fields,
            leases=self._board.attempts(task_id),
            source=source,
            run_id=self._run_id,
            finished_at=now,
            extra=extra,
        )
        self._unsettled.append(row)
        return row

    def _settle(self) -> None:
        """Give the rows accepted since the last call their ``same_content_as``, in one
        batch of the content index (``newimages``: its statements release the GIL, and
        the intake then waits for it), before anything else asks the index."""
        unsettled, self._unsettled = self._unsettled, []
        if (contents := self._plan.contents) is None or not unsettled:
            return
        notes = [
            (
                row["url"],
                row["source"],
                row["sha256"] if row["status"] in c.SUCCESS_STATUSES else None,
            )
            for row in unsettled
        ]
        for row, first in zip(unsettled, contents.note_many(notes), strict=True):
            row["same_content_as"] = first

    def _unchecked(self, task_id: int, worker: str) -> bool:
        """Did ``worker`` answer for an image another host stores (its host did not come),
        so that its failure says nothing of the stored copy?"""
        wanted = self._plan.wanted_host(task_id)
        return wanted is not None and wanted != self._board.workers.host_of(worker)

    def _kept_copy(
        self, task_id: int, worker: str, result: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The earlier success row, when the failure ``result`` leaves its stored copy the
        URL's image (another host answered, a revalidation failed, the copy is in another
        store: ``rowfields.copy_kept``); never after an opt-out, which the crawler honours
        (until 2026-12-03 one answered by another host left the row standing)."""
        if opted_out(result):
            return None
        stored = self._plan.stored_row(task_id)
        if not (self._unchecked(task_id, worker) or copy_kept(result, stored, self._store)):
            return None
        standing = self._standing(task_id)
        if standing is not None and result["held"]:
            self._unwritten["refresh_failed"] += 1
        return standing

    def _standing(self, task_id: int) -> dict[str, Any] | None:
        """The earlier success row, journalled again with its current input line and
        extras (as ``restamp`` rewrites a kept row whose line moved; until 2026-12-01 as it
        was, naming a list no longer given): a download by another host failed, or the
        stored copy was not checked (``RunStats.add`` counts it as not re-checked). Before
        that, the failure replaced it, and the manifest forgot an image its host still
        held. None when there is no such row: the failure is the row."""
        row = self._plan.stored_row(task_id)
        if row is None:
            return None
        self._ledger.supersede(row)
        self._ids.append(task_id)
        url, source, extra = self._plan.store.record(task_id)
        standing = row | {"source": source, "extra": extra}
        self._settle()  # the index as the rows before this one left it
        contents = self._plan.contents
        if contents is not None and row.get("status") in c.SUCCESS_STATUSES:
            standing["same_content_as"] = contents.first_of(url, row.get("sha256"))
        return standing

    def _note_moved(
        self, fields: dict[str, Any], stored: dict[str, Any] | None, earlier: dict[str, Any] | None
    ) -> None:
        """List the earlier copy the new row replaced, if any (``superseded``): by an image
        stored elsewhere, or by a failure (an opt-out)."""
        entry = moved_copy(fields, stored) or dropped_copy(fields, earlier)
        if entry is not None:
            self.superseded.append(entry)

    def _no_longer_first(self, url: str, source: str) -> None:
        """``url``'s row has no image now: the content index forgets it as a first."""
        self._settle()
        if (contents := self._plan.contents) is not None:
            contents.note(url, source, None)

    def lost_rows(self) -> list[dict[str, Any]]:
        """Rows for the URLs the master ends itself: those whose last lease expired with
        no attempts left (``worker_lost``), and those of a host given up for answering
        429/503, or not at all, too often (``http_error``, ``timeout``, unfetched;
        transient: the next run tries). A URL whose image an earlier run stored (sent to
        be revalidated or re-checked) keeps that row (``_standing``): nothing was learnt
        of its image. Until 2026-12-01 the failure replaced it, and the manifest named the
        stored image nowhere."""
        board, rows = self._board, []
        for task_id in board.expire():
            fields = board.lost_fields(task_id)
            rows.append(
                self._standing(task_id) or self._ended(task_id, c.WORKER_LOST, None, fields)
            )
        for task_id, host, gave in board.take_given_up():
            sent = board.put_backs(task_id)[1]  # its 429/503 put it back, then the host went
            fields = {"error": f"not fetched{' again' * bool(sent)}: {host} {gave.why}"}
            fields |= {"attempts": sent, "leases": board.attempts(task_id) or None}
            # one asked before is a URL tried (closing.alarm): a fresh user's run of 10
            # failed of 13 tried, counted "not fetched", exited 0
            change = "not_fetched" if gave.status == c.HTTP_ERROR and not sent else ""
            ended = self._standing(task_id) or self._ended(
                task_id, gave.status, gave.http_status, fields, change
            )
            rows.append(ended)
        return rows

    def _ended(
        self,
        task_id: int,
        status: str,
        http_status: int | None,
        fields: dict[str, Any],
        change: str = "",
    ) -> dict[str, Any]:
        url, source, extra = self._plan.store.record(task_id)
        now, earlier = now_iso(), self._plan.earlier_row(task_id)
        if earlier is not None:
            self._ledger.supersede(earlier)
        self._no_longer_first(url, source)
        self._ids.append(task_id)
        return make_row(
            url=url,
            status=status,
            http_status=http_status,
            source=source,
            run_id=self._run_id,
            finished_at=now,
            extra=extra,
            **fields,
            **self._history(task_id, status, change, now, earlier),
        )

    def _history(
        self, task_id: int, status: str, how: str, now: str, earlier: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Count the change this row makes (``changes``; ``how`` a success was had:
        "reused", "revalidated" (304), "" downloaded; for a failure, "not_fetched" or "");
        a failure's ``failures`` and ``first_failed_at`` continue the ``earlier`` row's
        (healing.failure_fields)."""
        before = self._plan.earlier_status(task_id)
        failed_before = before in c.FAILED_STATUSES
        if status in c.SUCCESS_STATUSES:
            stored_before = before in c.SUCCESS_STATUSES  # a download is then a refetch
            change = "recovered" if failed_before else how or "refetched" * stored_before
            self._unwritten[change or "new_ok"] += 1
            return {}
        self._unwritten[how or ("still_failing" if failed_before else "new_failures")] += 1
        earlier = earlier if failed_before else None
        return failure_fields(earlier, now)


def _decoded(text: str) -> dict[str, Any] | ValueError:
    """The result ``text`` checked (``protocol.decode_result``), or why it is not one."""
    try:
        return decode_result(text)
    except ValueError as exc:
        return exc
