"""The end of a run: whether it should alarm, the report, and what is kept for the next run.

A nightly rerun of a finished list only adds rows (its new URLs) to a journal that the
last run left with one current row per URL: rewriting gigabytes of it would be the
run's longest step. So the journal is compacted only when rows of it were superseded
(``ledger.Ledger.needs_compaction``; done by ``indexing.IndexKeeper.finish``, which
keeps the resume index with it), and the report comes from the aggregate the master
kept while journalling (``report.ledger``), read from the manifest only when that
aggregate is unusable. The content index and the earlier per-line rows are settled here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.config import MasterConfig
from crawler.console import NOTICE, log, record, show
from crawler.exceptions import CrawlerError, JournalError
from crawler.manifest import contents_path, fingerprint, read_manifest, report_path
from crawler.master import keptindex
from crawler.master.carried import standing
from crawler.master.contents import ContentIndex
from crawler.master.csvexport import write_csv
from crawler.master.endstop import LateStops, unless_skipped
from crawler.master.plan import Plan
from crawler.master.recount import recount
from crawler.master.summary import RunStats, format_summary, write_summary
from crawler.master.superseded import spare_shared
from crawler.report import ledger as ledgers
from crawler.report.aggregate import aggregate
from crawler.report.build import write_report
from crawler.report.ledger import Ledger
from crawler.report.model import ReportData
from crawler.report.pictures import Pictures

# What the report's steps (NumPy's import, thumbnail threads) may run into on a host
# short of descriptors, memory or threads, besides OSError: a side output, it must not
# take the summary or the exit code with it (until 2026-12-03 a finished run under
# ``ulimit -n`` ended in a traceback, exit 1, no summary: a resource-limits trial's).
SHORT_OF = (ImportError, MemoryError, RuntimeError)


def alarm(plan: Plan, changes: Mapping[str, int], rate: float) -> str | None:
    """Why a run that completed should alarm whoever reads its exit code (None: it need
    not): no list line at all, or a list without one, most of them unusable, nothing it
    tried succeeded, or more than ``rate`` (``--max-failure-rate``) of what it tried
    failed. ``changes``: the run's ``RunStats.changes``."""
    # Successes that made a request (reused ones tried nothing); failures that did, or
    # whose host or robots.txt was asked (failures kept from earlier runs were not).
    good = sum(changes.get(k, 0) for k in ("new_ok", "recovered", "refetched", "revalidated"))
    tried = good + changes.get("new_failures", 0) + changes.get("still_failing", 0)
    if not plan.lines:  # an empty list: more likely a broken export upstream than news
        return "the lists hold no URL (empty, or only comments)"
    if plan.empty_lists:  # one of several (until 2026-12-03 a warning only: its URLs' rows
        shown = ", ".join(plan.empty_lists[:3])  # became history, and the night exit 0)
        more = f" and {len(plan.empty_lists) - 3} more" if len(plan.empty_lists) > 3 else ""
        return f"list {shown}{more} holds no URL (empty, or only comments)"
    if plan.invalid > plan.lines / 2:
        return f"{plan.invalid} of {plan.lines} list lines are not URLs (--input-format?)"
    if tried and not good and rate < 1:  # --max-failure-rate 1: failures never alarm
        return f"none of the {tried} URLs tried succeeded"
    if tried and (tried - good) / tried > rate:
        return f"{tried - good} of {tried} URLs tried failed (--max-failure-rate {rate:g})"
    return None


def damaged(
    manifest: Path, plan: Plan, stats: RunStats, line_keys: Sequence[int], code: int
) -> int:
    """The manifest is no longer the journal this run wrote (``still_named``): one error
    line, and the run's counts become those of the rows the file at its path holds now
    (``recount``: the URLs with none are ``missing``), so that neither the summary nor the
    report vouches for rows that are gone. EXIT_INCOMPLETE, or a stop's EXIT_INTERRUPTED."""
    why = (
        f"manifest {manifest} was removed, replaced or cut short during the run: rows "
        "journalled in it are lost, and the next run fetches their URLs again"
    )
    NOTICE.error("error: %s", why)
    keptindex.discard(manifest)
    stats.why = stats.damaged = why
    stats.counts = recount(manifest, plan.store, line_keys)
    stats.not_rechecked = 0  # the rows that stood may be gone too: counted as found
    return code if code == c.EXIT_INTERRUPTED else c.EXIT_INCOMPLETE


def count_standing(plan: Plan, stats: RunStats, code: int) -> None:
    """A run that ended before every URL was answered: the earlier rows of the URLs it
    sent out again (to re-check, retry or revalidate) still stand. They are counted by
    their status and as ``not_rechecked``; only URLs with no row at all have no status
    yet (the summary's ``missing``)."""
    if code == c.EXIT_OK or plan.earlier is None:
        return
    found = standing(plan.earlier, plan.state)
    stats.counts.update(found)
    stats.not_rechecked += sum(found.values())


def open_contents(manifest: Path, empty: bool) -> ContentIndex:
    """The run's content index (``same_content_as``): the one the last completed run kept
    if the manifest is as it left it, else one to fill (a damaged file is replaced, with a
    warning). Raises JournalError: the place cannot hold it (read-only, full)."""
    try:
        return ContentIndex(contents_path(manifest), None if empty else fingerprint(manifest))
    except OSError as exc:
        raise JournalError(f"cannot keep the content index beside {manifest}: {exc}") from None


def keep_contents(plan: Plan, manifest: Path, code: int, superseded: list[dict[str, Any]]) -> None:
    """Keep the content index for the next run if this one completed; else remove it
    (the next run fills it from the manifest). Failing to keep it is only a warning.
    First, the ``superseded`` copies still in use are taken out (``spare_shared``)."""
    spare_shared(plan.contents, superseded)
    contents = plan.contents
    if contents is None:
        return
    try:
        if code in (c.EXIT_OK, c.EXIT_DEGRADED):
            contents.keep(fingerprint(manifest))
            return
    except OSError as exc:
        log.warning("cannot keep the content index (the next run rebuilds it): %s", exc)
    contents.discard()


def settle_earlier(plan: Plan, ledger: Ledger) -> None:
    """After planning: the earlier runs' per-line rows that this run's replaced are
    superseded (``linerows``); a journal with repeated or unreadable rows is beyond the
    ledger (read in full)."""
    earlier = plan.earlier
    if earlier is None:
        return
    if earlier.repeated or earlier.unreadable:
        ledger.give_up()
    for row in earlier.rows_at(plan.superseded_lines):
        ledger.supersede(row)


def start_pictures(config: MasterConfig, ledger: Ledger) -> Pictures | None:
    """Once the last row is journalled: start making the report's thumbnails (while the
    workers hear that the run is over), if a report is wanted and the aggregate kept."""
    if not config.report or ledger.data is None:
        return None
    try:
        return Pictures(ledger.data, config.output)
    except (OSError, *SHORT_OF):  # the report makes them, or says in one line why not
        return None


def skippable(cfg: MasterConfig) -> str:
    """What a second stop signal at the end of a run skips, in words (``endstop``)."""
    parts = [("the CSV export", cfg.csv is not None), ("the report", cfg.report)]
    return " and ".join(what for what, wanted in parts if wanted)


def finish(  # noqa: PLR0913  (what the run kept: all from MasterRun)
    cfg: MasterConfig,
    stats: RunStats,
    code: int,
    elapsed: float,
    ledger: Ledger,
    pictures: Pictures | None,
    late: LateStops | None = None,
) -> None:
    """The CSV, the summary and the report of a run that ended with ``code`` after
    ``elapsed`` seconds; the summary on stdout (unless ``--quiet``) and in the log. What
    cannot be written is one error line each, and is not named on stdout. A second stop
    signal (``late``) skips the CSV and the report, never the summary."""
    csv = cfg.csv
    if csv is not None and not unless_skipped(late, partial(_csv, cfg.manifest, csv), False):
        csv = None  # stdout names no file it did not write
    summary = stats.as_dict(code, elapsed, cfg.manifest)
    write_summary(summary, cfg.manifest)
    text = format_summary(summary, csv, report(cfg, stats.run_id, code, ledger, pictures, late))
    if not cfg.quiet:
        show(text)
    record(text)
    record(f"outcome: {summary['outcome']} (exit {code})")


def _csv(manifest: Path, csv: Path) -> bool:
    """Write the CSV export; False (one error line) when it cannot be."""
    try:
        write_csv(read_manifest(manifest), csv, manifest)
    except CrawlerError as exc:
        log.error("no CSV export: %s", exc)
        return False
    return True


def report(  # noqa: PLR0913  (finish's, and the late stops)
    config: MasterConfig,
    run_id: str,
    code: int,
    ledger: Ledger,
    pictures: Pictures | None,
    late: LateStops | None = None,
) -> Path | None:
    """Write the HTML report (unless ``--no-report``) and keep the aggregate for the next
    run; a failure of either is only a warning, a second stop signal (``late``) skips
    the report. ``pictures``: ``start_pictures``'s (closed here). Returns the report's
    path, or None."""
    completed = code in (c.EXIT_OK, c.EXIT_DEGRADED)  # the journal: one row a URL or line
    data: ReportData | None = ledger.data
    path = None
    try:
        if data is None and (config.report or completed):
            made = partial(
                aggregate, config.manifest, ledgers.SAMPLE, run_id if completed else None
            )
            data = unless_skipped(late, made, None)
        if config.report and data is not None:
            page = partial(
                write_report, config.manifest, config.output, data=data, pictures=pictures
            )
            path = unless_skipped(late, page, None)
    except CrawlerError as exc:
        log.warning("no run report: %s", exc)
    except OSError as exc:
        where = exc.filename or f"manifest {config.manifest}"
        log.warning("no run report: cannot read %s: %s", where, exc.strerror or exc)
    except SHORT_OF as exc:  # e.g. NumPy not importable, no thread: the run's code stands
        log.warning("no run report: %s: %s", type(exc).__name__, exc)
        log.debug("the report's failure", exc_info=True)  # a bug's traceback, with --verbose
    finally:
        if config.report and path is None:  # an earlier report would pass for this run's
            with contextlib.suppress(OSError):
                report_path(config.manifest).unlink(missing_ok=True)
        if pictures is not None:
            pictures.close()
    try:
        ledgers.save(config.manifest, data if completed else None)
    except OSError as exc:
        why = f"{config.manifest}: {exc.strerror}"
        log.warning("cannot keep the report's aggregate beside %s (the next report reads "
                    "the whole manifest)", why)  # fmt: skip
    return path
