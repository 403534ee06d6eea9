"""Turning the input lists (and the manifest of earlier runs) into the run's plan.

Every input line that is not blank or a comment gets exactly one manifest row. The
first occurrence of a URL becomes a task (kept in a ``TaskStore``, on disk); later
occurrences are ``duplicate`` rows pointing at the first; lines that are not http(s)
URLs are ``invalid_url`` rows. Those per-line rows are written as they are found, not
kept: memory stays a few bytes per URL however long the lists are. A row's ``extra``
(the other columns of a CSV, TSV or JSON Lines line) goes with it: into the per-line
row, or into the task's record in the store, for the row its result gets.

``survey`` reads the lists the same way for ``--dry-run``: it counts, writes nothing.

With an earlier manifest, the plan resumes: a URL whose last status was a success is
sent with its stored copy (``protocol.StoredCopy``), so the worker that gets it reuses
the file when it is still there (or revalidates it, once older than ``refresh_after``); a URL whose
last status was a failure keeps it unless ``retry_failed``; everything else is done.
"""

from __future__ import annotations

import errno
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.config import ListSpec, ResumeOptions
from crawler.exceptions import JournalError
from crawler.manifest import make_row
from crawler.master.carried import carry
from crawler.master.contents import ContentIndex
from crawler.master.earlier import EarlierRows
from crawler.master.keylines import KeyLines
from crawler.master.linerows import LineRows
from crawler.master.listcheck import ListCheck
from crawler.master.lists import as_spec, read_list
from crawler.master.plannote import PlanNote
from crawler.master.resume import read_earlier
from crawler.master.taskstore import TaskStore

NO_RESUME_OPTIONS = ResumeOptions()


@dataclass
class Plan:
    store: TaskStore
    lines: int = 0  # input lines that get a row
    decided: int = 0  # of which per-line rows (duplicate, invalid_url), already journalled
    state: bytearray = field(default_factory=bytearray)  # FINAL for failures kept as they are
    carried: Counter[str] = field(default_factory=Counter)  # statuses of those
    earlier: EarlierRows | None = None
    invalid: int = 0  # of the lines: not a URL (invalid_url)
    retried: int = 0  # earlier failures tried again this run
    given_up: int = 0  # of the carried: failed too many runs in a row
    unreadable: int = 0  # journal lines skipped as damaged
    first_unreadable: int = 0  # the line number of the first
    kept: int = 0  # of the carried, stored images trusted without a worker (see _trusted)
    verify: str = ""  # --verify-stored: what workers check of the stored images they get
    shared: bool = False  # the run's store is shared (every worker sees every image)
    any_due: bool = False  # some stored images are due for revalidation
    contents: ContentIndex | None = None  # which URL had each image first (same_content_as)
    # Journal offsets of earlier runs' per-line rows this run's replaced (``linerows``).
    superseded_lines: array = field(default_factory=lambda: array("Q"))
    decoded_lines: int = 0  # per-line rows held back and decoded again: the changed ones
    empty_lists: list[str] = field(default_factory=list)  # lists holding no URL line

    @property
    def total(self) -> int:
        return self.lines

    @property
    def todo(self) -> int:
        """Tasks this run hands out."""
        return len(self.store) - sum(self.carried.values())

    def earlier_row(self, task_id: int) -> dict[str, Any] | None:
        """The task's last row of earlier runs, whatever its status."""
        return None if self.earlier is None else self.earlier.row(task_id)

    def earlier_status(self, task_id: int) -> str | None:
        """The status of the task's last row of earlier runs (None: no such row)."""
        return None if self.earlier is None else self.earlier.status(task_id)

    def stored_row(self, task_id: int) -> dict[str, Any] | None:
        """The earlier run's row of the image stored for this task, if any."""
        return None if self.earlier is None else self.earlier.success(task_id)

    def unpaced(self, task_id: int) -> bool:
        """True when the task will most likely make no request: an earlier run stored its
        image and it is not due for revalidation (politeness is for requests only)."""
        earlier = self.earlier
        if earlier is None or earlier.due(task_id):
            return False
        return earlier.status(task_id) in c.SUCCESS_STATUSES

    def stored_copy(self, task_id: int) -> dict[str, Any] | None:
        """What a worker needs to reuse or revalidate the stored image, if there is one:
        the fields of ``protocol.StoredCopy``."""
        row = self.stored_row(task_id)
        if row is None or not isinstance(row.get("path"), str):
            return None
        keys = ("path", "bytes", "etag", "last_modified", "sha256", "store", "host")
        assert self.earlier is not None
        refresh = self.earlier.due(task_id)
        return {k: row.get(k) for k in keys} | {"refresh": refresh, "verify": self.verify}

    @property
    def needs_hosts(self) -> bool:
        """Do some tasks need a file only one host holds (see ``wanted_host``)?"""
        return not self.shared and self.earlier is not None and (bool(self.verify) or self.any_due)

    def wanted_host(self, task_id: int) -> str | None:
        """The host whose own store holds the file this task needs (``--verify-stored``,
        or a revalidation), or None when any worker will do."""
        if self.shared or self.earlier is None:
            return None
        if not (self.verify or self.earlier.due(task_id)):
            return None
        row = self.stored_row(task_id)
        host = row.get("host") if row is not None and row.get("store") is None else None
        return host if isinstance(host, str) else None

    def forget_earlier(self) -> None:
        """Free the earlier rows' index (15 bytes a URL) once no result needs it, before the
        compaction allocates its own."""
        if self.earlier is not None:
            self.earlier.close()
            self.earlier = None

    def close(self) -> None:
        if self.earlier is not None:
            self.earlier.close()
        if self.contents is not None:
            self.contents.close()
        self.store.close()


@dataclass
class Survey:
    """What a dry run found in the lists."""

    lists: int
    lines: int = 0  # input lines that would get a row
    valid: int = 0  # distinct valid URLs: the tasks of a run
    invalid: int = 0
    duplicate: int = 0
    empty_lists: list[str] = field(default_factory=list)  # lists holding no URL line


def _counted_only(rows: list[dict[str, Any]]) -> None:
    return None


def plan_run(  # noqa: PLR0913  (the lists, where rows go, what to resume from, indexes)
    lists: Sequence[ListSpec | str],
    run_id: str,
    write: Callable[[list[dict[str, Any]]], None],
    journal: Path | None = None,
    options: ResumeOptions = NO_RESUME_OPTIONS,
    spool: Path | None = None,
    contents: ContentIndex | None = None,
    keep: Callable[[list[dict[str, Any]]], None] = _counted_only,
    keys: KeyLines | None = None,
) -> Plan:
    """Read the lists, then resume from ``journal``; per-line rows go to ``write``, or,
    when an earlier run's row of the same line says the same, to ``keep`` (not journalled
    again: ``linerows``). ``contents``: the run's content index (same_content_as), filled
    unless ready; ``keys`` hides keys in invalid lines' rows (``keylines``). Raises
    OSError (the spools), JournalError."""
    plan = Plan(TaskStore(spool), contents=contents)
    resuming = journal is not None and journal.exists() and journal.stat().st_size > 0
    line_rows = LineRows(write, keep, spool, hold=resuming)
    saying = PlanNote(plan)
    try:
        for row in _line_rows(lists, plan.store, run_id, keys or KeyLines(), plan.empty_lists):
            plan.lines += 1
            if row is None:
                continue
            line_rows.add(row)
            plan.decided += 1
            plan.invalid += row["status"] == c.INVALID_URL
        plan.store.flush()
        if resuming:
            assert journal is not None
            saying.step = "resuming from the manifest of earlier runs"
            _resume(plan, journal, options)
        else:
            plan.state = bytearray(len(plan.store))
        saying.step = "matching the rows of repeated and invalid lines with the earlier runs'"
        line_rows.settle(journal, None if plan.earlier is None else plan.earlier.lines)
    except OSError as exc:  # a full disk: say what the spools beside the manifest took
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)  # not EMFILE's advice (a trial's)
        note = _spooled(plan.store.spooled(), line_rows.spooled()) if full else ""
        raise OSError(exc.errno, f"{exc.strerror or exc}{note}") from None
    except JournalError as exc:
        raise JournalError(f"{exc}{_spooled(plan.store.spooled(), line_rows.spooled())}") from None
    finally:
        saying.close()
    plan.superseded_lines, plan.decoded_lines = line_rows.superseded, line_rows.decoded
    return plan


def _spooled(urls: int, lines: int) -> str:
    """What the run's spools (deleted temporary files beside the manifest: no ``ls`` or
    ``du`` shows them) held when the disk refused, in kB under 1 MB ("held 0.0 MB ...:
    free at least that much" said nothing, a fresh user's on a small tmpfs)."""
    return (
        f" (the run's spools there, deleted temporary files, held {_amount(urls)} of URLs"
        f" and {_amount(lines)} of repeated and invalid lines' rows: free at least that"
        " much beside the manifest, with room for the rows it writes)"
    )


def _amount(size: int) -> str:
    """``size`` bytes rounded up (the room to free is at least that), in MB or kB."""
    return f"{-(-size // 100_000) / 10:.1f} MB" if size >= 1e6 else f"{-(-size // 1000)} kB"


def survey(lists: Sequence[ListSpec | str], spool: Path | None = None) -> Survey:
    """Count the lines, distinct valid URLs, invalid lines and duplicates of the lists,
    read exactly as a run reads them (duplicates found through a ``TaskStore``)."""
    store = TaskStore(spool)
    found = Survey(len(lists))
    try:
        for row in _line_rows(lists, store, "", KeyLines(), found.empty_lists):
            found.lines += 1
            if row is not None and row["status"] == c.INVALID_URL:
                found.invalid += 1
            elif row is not None:
                found.duplicate += 1
        found.valid = len(store)
    finally:
        store.close()
    return found


def _line_rows(
    lists: Sequence[ListSpec | str],
    store: TaskStore,
    run_id: str,
    keys: KeyLines,
    empty: list[str],
) -> Iterator[dict[str, Any] | None]:
    """One item per input line, in order: its own row (``invalid_url``, ``duplicate``), or
    None when it is the first occurrence of a URL, now a task in ``store``; the lists
    that hold no line are added to ``empty``."""
    for number, item in enumerate(lists):
        spec = as_spec(item)
        store.sources.append(spec.path)
        check = ListCheck(spec.path, spec.kind)
        for found in read_list(spec):
            entry = found if found.url is not None else keys.hidden(found)
            check.see(entry)  # after hiding: its warnings may quote a line
            if entry.url is None:
                yield make_row(
                    url=entry.raw, status=c.INVALID_URL, error=entry.error,
                    source=entry.source, run_id=run_id, extra=entry.extra,
                )  # fmt: skip
                continue
            task_id, new = store.add(entry.url, number, entry.line, entry.extra)
            if new:
                yield None
                continue
            yield make_row(
                url=entry.url, status=c.DUPLICATE, source=entry.source,
                duplicate_of=store.source(task_id), run_id=run_id, extra=entry.extra,
            )  # fmt: skip
        check.done()
        if check.empty:
            empty.append(spec.path)


def _resume(plan: Plan, journal: Path, options: ResumeOptions) -> None:
    """Resume from ``journal``: where each task's last row is, which of them stand."""
    earlier = plan.earlier = read_earlier(plan.store, journal, options, plan.contents)
    plan.unreadable, plan.first_unreadable = earlier.unreadable, earlier.first_unreadable
    plan.verify, plan.shared = options.verify_stored, bool(options.store)
    plan.state, carried = carry(earlier)
    plan.any_due = carried.due > 0
    plan.carried, plan.retried = carried.statuses, carried.retried
    plan.given_up, plan.kept = carried.given_up, carried.kept
