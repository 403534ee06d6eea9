"""The report's header: the latest run's outcome and totals, as its summary states them.

The master prints its summary on stdout and writes the same dict to ``NAME.summary.json``
(``master.summary``); ``crawler-report``, run by hand later, reads that file. The summary
is the one home of the run's counts: ``urls`` (the lines of its lists), ``counts`` (by
status), ``missing`` (URLs with no status yet) and ``outcome`` / ``exit_code``. The header
takes them as they are: the manifest also keeps rows of URLs no longer listed, and has
no row at all for a URL an interrupted or incomplete run never answered, so counting its
rows said "214 URLs, all succeeded" where stdout said 1202 URLs, 988 with no status yet.

A summary describes the manifest only as its run left it: a later run killed outright
(SIGKILL, a power cut) appends rows and writes no summary, and the header then showed the
older run's "completed, 60 URLs" above the killed run's 74 rows. So the summary keeps the
manifest's size (``manifest_bytes``; ``describes``), and when the manifest is not that
size, or when there is no summary at all (a first run killed, a manifest copied alone),
the header counts the manifest's current rows and says plainly that no summary describes
them: the lists' size, and so the URLs with no row yet, are not known here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from crawler import constants as c
from crawler.report.model import ReportData, timestamp

LATER_RUN = "later_run"  # key added to an earlier summary: the run after it (later_run)

# What each outcome means to the reader of the page (README: Exit codes); "completed"
# needs no word, as before. Other outcomes (a newer crawler's) are shown by name only.
MEANINGS = {
    "degraded": "the run completed, but it should alarm: none of the URLs it tried "
    "succeeded, more than --max-failure-rate of them failed, or most list lines were not "
    "URLs, or a list held none (the log says which)",
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
    not_rechecked: int = 0  # sent out again, not answered: earlier rows stand (counted)
    unfinished: str | None = None  # no summary describes the rows: why (HTML), else None

    @property
    def unit(self) -> str:
        """What ``urls`` counts: the lists' lines, or (no summary) the manifest's rows."""
        return "URLs" if self.unfinished is None else "rows"


def _count(value: Any) -> int | None:
    # bool is an int too, but no count; a hand-edited summary may hold anything.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def describes(summary: Mapping[str, Any], rep: ReportData, size: int) -> bool:
    """Does ``summary`` describe the manifest as it is (``size`` bytes, aggregated in
    ``rep``)? Not when the manifest's size is no longer the one its run left (a later run
    appended rows and died), or, for a summary from before ``manifest_bytes``, when rows
    of another run finished after it ended."""
    recorded = _count(summary.get("manifest_bytes"))
    if recorded is not None:
        return recorded == size
    ended = timestamp(summary.get("ended_at"))
    later = rep.chart_run is not None and rep.chart_run != summary.get("run_id")
    return not (later and ended is not None and rep.span[1] > ended)


def run_totals(
    rep: ReportData, summary: Mapping[str, Any], earlier: Mapping[str, Any] | None = None
) -> RunTotals:
    """The totals of the latest run from its ``summary`` ({} if none), else of ``rep``;
    ``earlier``: the summary beside the manifest when it describes an earlier state of it
    (``describes``), for the header to name."""
    counts = summary.get("counts")
    if not isinstance(counts, dict):  # no summary: the manifest's rows are all there is
        ok = sum(rep.statuses[s] for s in c.SUCCESS_STATUSES)
        why = _unfinished(rep, earlier or {})
        return RunTotals(rep.rows, ok, rep.failed, rep.statuses[c.DUPLICATE], 0, unfinished=why)
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
        _count(summary.get("not_rechecked")) or 0,
    )


def later_run(runs: list[dict[str, Any]], summary: Mapping[str, Any]) -> str | None:
    """The run that the run history (``runs``, oldest first) says started after the
    summary's run and has no end line: killed outright before its first row (it wrote
    no row, so the manifest is still the size its summary recorded), or still running.
    Until 2026-12-03 the header then showed the summary's run as "completed" (a fresh
    user's). None when there is none."""
    ended = {r.get("run_id") for r in runs if r.get("outcome") not in (None, c.RUN_STARTED)}
    started = [r.get("run_id") for r in runs if r.get("outcome") == c.RUN_STARTED]
    ours = summary.get("run_id")
    if ours not in started or started[-1] == ours or started[-1] in ended:
        return None
    return started[-1] if isinstance(started[-1], str) else None


def _unfinished(rep: ReportData, earlier: Mapping[str, Any]) -> str:
    """The header's words for rows no summary describes (HTML)."""
    latest = earlier.get(LATER_RUN) or rep.chart_run
    old = escape(str(earlier.get("run_id")))
    if earlier and latest is not None and escape(latest) == old:
        text = f"<b>The manifest changed after run {old} wrote its summary</b>"
    elif latest is not None and earlier:
        text = f"<b>Run {escape(latest)} did not finish: no summary</b>"
    elif latest is not None:
        text = f"<b>No summary of run {escape(latest)}</b>"
    else:
        text = "<b>No run summary describes this manifest</b>"
    if earlier:
        ended = earlier.get("ended_at")
        when = f", ended {escape(str(ended))}" if ended else ""
        text += (
            f". The summary beside it, of run {old} ({escape(str(earlier.get('outcome')))}"
            f"{when}), describes an earlier state of the manifest"
        )
    elif latest is not None:
        text += (
            " beside the manifest: it did not finish (stopped outright), or its summary was lost"
        )
    return (
        f"{text}. The figures below are the manifest's {rep.rows:,} current rows (one per "
        "URL or list line); how many URLs the lists hold, and so how many have no row yet, "
        "is not known here: rerun the same command to resume"
    )


def banner(totals: RunTotals) -> str:
    """A line above the totals for a run that did not simply complete ("" for one that
    did): its outcome, and the URLs left for a rerun; or that no summary describes the
    manifest's rows."""
    if totals.unfinished is not None:
        return f'<p class="outcome unfinished">{totals.unfinished}.</p>'
    if totals.outcome in (None, "completed") and not (totals.missing or totals.not_rechecked):
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
    if totals.not_rechecked:
        text += (
            f". {totals.not_rechecked:,} of {totals.urls:,} URLs were not re-checked this run: "
            "their earlier rows stand (counted below); rerun the same command to re-check them"
        )
    kind = totals.outcome if totals.outcome in MEANINGS else "other"
    return f'<p class="outcome {kind}">{text}.</p>'


def unlisted_note(rows: int, totals: RunTotals) -> str:
    """A line for the manifest's rows of URLs the lists no longer hold ("" when there are
    none, or no summary to tell them by): the totals count the lists' lines, while the
    stored bytes, the tables, the gallery and the duplicates count the manifest's rows.
    Until 2026-12-01 nothing on the page said so (a fresh user's: "2,501 succeeded" above
    "not_modified 2,848")."""
    extra = rows - (totals.urls - totals.missing)
    if totals.unfinished is not None or extra <= 0:
        return ""
    return (
        f'<p class="note">{extra:,} rows of the manifest are of URLs no longer in the lists, '
        "kept from earlier runs: the totals count the lists; what is stored, the tables, "
        "the gallery and the duplicates count every row.</p>"
    )
