"""The report's header: the latest run's outcome and totals, as its summary states them.

The master prints its summary on stdout and writes the same dict to ``NAME.summary.json``
(``master.summary``); ``crawler-report``, run by hand later, reads that file. The summary
is the one home of the run's counts: ``urls`` (the lines of its lists), ``counts`` (by
status), ``missing`` (URLs with no status yet) and ``outcome`` / ``exit_code``. The header
takes them as they are: the manifest also keeps rows of URLs no longer listed, and has
no row at all for a URL an interrupted or incomplete run never answered, so counting its
rows said "214 URLs, all succeeded" where stdout said 1202 URLs, 988 with no status yet.
Only a manifest without a summary (copied alone, or from an old crawler) is counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from crawler import constants as c
from crawler.report.model import ReportData

# What each outcome means to the reader of the page (README: Exit codes); "completed"
# needs no word, as before. Other outcomes (a newer crawler's) are shown by name only.
MEANINGS = {
    "degraded": "the run completed, but it should alarm: none of the URLs it tried "
    "succeeded, more than --max-failure-rate of them failed, or most list lines were not "
    "URLs, or there were none (the log says which)",
    "incomplete": "the run started but could not finish: its workers were gone or idle "
    "(the log says which)",
    "interrupted": "the run was stopped (SIGINT, SIGTERM or SIGHUP) before every URL had an answer",
}


@dataclass(frozen=True)
class RunTotals:
    """The header's numbers: the summary's, or the manifest's rows without one."""

    urls: int  # list lines (repeated and invalid ones included), as stdout says
    succeeded: int
    failed: int
    duplicates: int
    missing: int  # URLs with no status yet: the next run resumes them
    outcome: str | None = None  # None: no summary, nothing known of the run
    exit_code: int | None = None
    why: str | None = None  # the summary's reason for a degraded or incomplete outcome


def _count(value: Any) -> int | None:
    # bool is an int too, but no count; a hand-edited summary may hold anything.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def run_totals(rep: ReportData, summary: Mapping[str, Any]) -> RunTotals:
    """The totals of the latest run from its ``summary`` ({} if none), else of ``rep``."""
    counts = summary.get("counts")
    if not isinstance(counts, dict):  # no summary: the manifest's rows are all there is
        ok = sum(rep.statuses[s] for s in c.SUCCESS_STATUSES)
        return RunTotals(rep.rows, ok, rep.failed, rep.statuses[c.DUPLICATE], 0)
    # Taken even when empty: a run stopped before its first answer has counted nothing.
    statuses = Counter({str(k): n for k, v in counts.items() if (n := _count(v)) is not None})
    urls, missing = _count(summary.get("urls")), _count(summary.get("missing")) or 0
    outcome = summary.get("outcome")
    return RunTotals(
        sum(statuses.values()) + missing if urls is None else urls,
        sum(statuses[s] for s in c.SUCCESS_STATUSES),
        sum(n for s, n in statuses.items() if s in c.FAILED_STATUSES),
        statuses[c.DUPLICATE],
        missing,
        outcome if isinstance(outcome, str) else None,
        _count(summary.get("exit_code")),
        why if isinstance(why := summary.get("why"), str) and why else None,
    )


def banner(totals: RunTotals) -> str:
    """A line above the totals for a run that did not simply complete ("" for one that
    did, or when there is no summary): its outcome, and the URLs left for a rerun."""
    if totals.outcome in (None, "completed") and not totals.missing:
        return ""
    name = escape((totals.outcome or "unknown outcome").capitalize())  # read from a file
    code = "" if totals.exit_code is None else f" (exit {totals.exit_code})"
    text = f"<b>{name}{code}</b>"
    if totals.why is not None:  # the run's own words (a summary of 2026-11-30 on)
        text += f": {escape(totals.why)}"
    elif totals.outcome in MEANINGS:
        text += f": {escape(MEANINGS[totals.outcome])}"
    if totals.missing:
        text += (
            f". {totals.missing:,} of {totals.urls:,} URLs have no status yet: rerun the "
            "same command to resume them"
        )
    kind = totals.outcome if totals.outcome in MEANINGS else "other"
    return f'<p class="outcome {kind}">{text}.</p>'
