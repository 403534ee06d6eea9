"""Results in, manifest rows out: every answer checked before it is journalled.

A worker's result is a JSON string (``protocol.decode_result`` checks its fields). It
becomes a row only if it is for a URL this run sent, under that task's id; a reuse or a
304 only if an earlier run really stored an image for that URL; and only the first
answer for a URL counts, and a failure only from the live lease's holder
(``leases.LeaseBoard.complete``: fencing tokens). A success's image digest is looked
up in the run's content index (``master.contents``) for ``same_content_as``. A result
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
from crawler.manifest import FIELD_SET, make_row, now_iso
from crawler.master.fencing import Answer
from crawler.master.healing import failure_fields, transient
from crawler.master.leases import LeaseBoard
from crawler.master.plan import Plan
from crawler.master.superseded import moved_copy
from crawler.protocol import decode_result
from crawler.report.ledger import Ledger

log = logging.getLogger("crawler")

# What a reused or revalidated (304) image keeps from the row that stored it.
STORED_FIELDS = ("path", "sha256", "phash", "bytes", "width", "height", "orientation", "format")
STORED_FIELDS += ("content_type", "final_url", "etag", "last_modified", "fetched_at")
# What a copy verified again in full (``verified``) says anew, None too: until 2026-12-01
# the row's old value stayed where the check found none (an orientation it has not).
VERIFIED_FIELDS = ("width", "height", "orientation", "format", "phash", "sha256")


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

    def rows(self, batches: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
        """The rows of every (worker, results) batch; ignored results leave no row."""
        now = now_iso()
        rows = []
        for worker, results in batches:
            for text in results:
                row = self.accept(worker, text, now)
                if row is not None:
                    rows.append(row)
                    log.debug("%s %s %ss %s", row["status"], row["url"], row["elapsed_s"], worker)
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

    def accept(self, worker: str, text: str, now: str) -> dict[str, Any] | None:
        """The manifest row for one result string, or None when it is ignored."""
        try:
            result = decode_result(text)
        except ValueError as exc:
            log.warning("ignored a result from %s: %s", worker, exc)
            return None
        store = self._plan.store
        task_id = result["id"]
        url, source, extra = store.record(task_id) if 0 <= task_id < len(store) else ("", "", None)
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
        fields = _fields(result, stored if kept else None, now)
        how = "revalidated" if result["status"] == c.NOT_MODIFIED else "reused" if kept else ""
        fields |= self._history(task_id, result["status"], how, now, earlier)
        _locate(fields, stored, self._store)
        self._note_moved(fields, stored)
        if earlier is not None:
            self._ledger.supersede(earlier)
        fields["same_content_as"] = self._same_content(url, source, fields)
        self._ids.append(task_id)
        return make_row(
            **fields,
            leases=self._board.attempts(task_id),
            source=source,
            run_id=self._run_id,
            finished_at=now,
            extra=extra,
        )

    def _unchecked(self, task_id: int, worker: str) -> bool:
        """Did ``worker`` answer for an image another host stores (its host did not come),
        so that its failure says nothing of the stored copy?"""
        wanted = self._plan.wanted_host(task_id)
        return wanted is not None and wanted != self._board.workers.host_of(worker)

    def _kept_copy(
        self, task_id: int, worker: str, result: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The earlier success row, when the failure ``result`` leaves its stored copy the
        URL's image (another host answered, or a revalidation failed: ``_copy_kept``)."""
        if not (self._unchecked(task_id, worker) or _copy_kept(result)):
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
        contents = self._plan.contents
        if contents is not None and row.get("status") in c.SUCCESS_STATUSES:
            standing["same_content_as"] = contents.first_of(url, row.get("sha256"))
        return standing

    def _note_moved(self, fields: dict[str, Any], stored: dict[str, Any] | None) -> None:
        """List the earlier copy the new row's image replaced, if any (``superseded``)."""
        if (entry := moved_copy(fields, stored)) is not None:
            self.superseded.append(entry)

    def _same_content(self, url: str, source: str, fields: dict[str, Any]) -> str | None:
        """The source of the first row with this row's image bytes (``contents``); None
        for the first itself, or a row without an image."""
        if (contents := self._plan.contents) is None:
            return None
        success = fields["status"] in c.SUCCESS_STATUSES
        return contents.note(url, source, fields.get("sha256") if success else None)

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
        self._same_content(url, source, {"status": status})  # no longer a first
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


def _copy_kept(result: dict[str, Any]) -> bool:
    """Does a failure leave the stored copy the URL's image? Yes when it answered the
    revalidation of a copy its worker holds (``held``), unless the site opted out
    (X-Robots-Tag, or robots.txt now disallowing it: a permanent ``blocked``), which the
    crawler honours; robots.txt unavailable is no opt-out. A 404, a broken or HTML
    answer, a timeout says the web has no better image now, not that the verified copy
    is wrong: until 2026-12-01 the failure replaced the ok row, and the image, still on
    disk, was no longer in the manifest (nor listed anywhere)."""
    opted_out = result["status"] == c.BLOCKED and not transient(result)
    return bool(result["held"]) and not opted_out


def _fields(result: dict[str, Any], stored: dict[str, Any] | None, now: str) -> dict[str, Any]:
    """A result's manifest fields; a reuse or a 304 keeps the ``stored`` row's image fields."""
    fields = {k: v for k, v in result.items() if k in FIELD_SET}
    if stored is not None:
        kept = {k: stored.get(k) for k in STORED_FIELDS}
        fields = kept | {k: v for k, v in fields.items() if v is not None}
        if result.get("verified"):
            fields |= {k: result.get(k) for k in VERIFIED_FIELDS}
        if result["status"] == c.NOT_MODIFIED:
            fields["fetched_at"] = now
    elif result["status"] == c.OK:
        fields["fetched_at"] = now
    return fields


def _locate(fields: dict[str, Any], stored: dict[str, Any] | None, store: str) -> None:
    """Where the row's image is: ``store`` (a shared store's spec, null for per-host
    stores) and ``host`` (whose store took or found it). A 304 leaves the image where the
    earlier row says it is; a row without an image has neither."""
    if fields["status"] == c.NOT_MODIFIED and stored is not None:
        fields.update(host=stored.get("host"), store=stored.get("store"))
    elif fields["status"] == c.OK:
        # The run's shared store only if the worker says it used it: a worker from before
        # --store existed writes to its own folder (its rows are then checked next time).
        fields["store"] = store if store and fields.get("store") == store else None
    else:
        fields.update(host=None, store=None)
