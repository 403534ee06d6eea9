"""What a run reports when it ends: the one-screen summary and the per-run JSON file.

The JSON file (``<manifest>.summary.json``, replaced by every run, with each run also
appended to ``<manifest>.runs.jsonl``) is what a cron job or a dashboard reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.atomic import append_line, write_whole
from crawler.config import STDIN, ListSpec
from crawler.manifest import now_iso, runs_path, summary_path
from crawler.master.lists import as_spec
from crawler.terminal import printable

log = logging.getLogger("crawler")

ERROR_SHOWN = 160  # characters of a failure's error a degraded run's reason shows (before escaping)
# The failures ``most_often`` tells of: those of URLs sent out (not a list's bad lines,
# which the alarm counts apart: a review found them named before the run's 404s).
TOLD = c.FAILED_STATUSES - {c.INVALID_URL}
OUTCOMES = {
    c.EXIT_OK: "completed",
    c.EXIT_INCOMPLETE: "incomplete",
    c.EXIT_DEGRADED: "degraded",
    c.EXIT_INTERRUPTED: "interrupted",
}


@dataclass
class RunStats:
    """Counts kept by the master as rows are written."""

    run_id: str
    total: int
    started_at: str = field(default_factory=now_iso)
    counts: Counter[str] = field(default_factory=Counter)
    downloaded: int = 0  # rows of images this run fetched and stored anew
    downloaded_bytes: int = 0
    reused: int = 0
    kept: int = 0  # stored images trusted from the manifest, sent to no worker
    # Stored images other verification rules passed (``EarlierRows.older_rules``), as a
    # full read of the manifest counts them; None: not counted (the kept index was used).
    older_rules: int | None = None
    workers: set[str] = field(default_factory=set)
    # What this run changed (constants.CHANGES), for the morning summary.
    changes: Counter[str] = field(default_factory=Counter)
    policy: dict[str, Any] = field(default_factory=dict)  # the run's, for later reruns
    superseded: list[dict[str, Any]] = field(default_factory=list)  # see ResultIntake
    same_content: int = 0  # rows written with same_content_as (exact content duplicates)
    why: str | None = None  # why a run is degraded or incomplete, as the log said it
    # URLs sent out again (--verify-stored, --retry-failed, --refresh-after) and left
    # unanswered: their earlier rows stand, counted in ``counts`` (closing.count_standing).
    not_rechecked: int = 0
    # The manifest was removed, replaced or cut short during the run (why): ``counts``
    # are then of the rows the file at its path holds now (``recount``).
    damaged: str | None = None
    # This run's failure rows by status, and the error of the first of each: what a
    # degraded run's reader looks at first (``most_often``).
    failures: Counter[str] = field(default_factory=Counter)
    first_error: dict[str, str] = field(default_factory=dict)

    def add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.counts[row["status"]] += 1
            if row.get("run_id", self.run_id) != self.run_id:  # an earlier row that stands
                self.not_rechecked += 1  # (``ResultIntake._standing``)
                continue
            if row.get("worker"):
                self.workers.add(row["worker"])
            if row["status"] in TOLD and "run_id" in row:  # a row kept as it was has none
                self.failures[row["status"]] += 1
                self.first_error.setdefault(row["status"], str(row.get("error") or ""))
            self.same_content += row.get("same_content_as") is not None
            if row.get("reused"):
                self.reused += 1
            elif row["status"] == c.OK:
                self.downloaded += 1
                self.downloaded_bytes += row.get("bytes") or 0

    def most_often(self) -> str | None:
        """The failure status this run's rows had most often, with the first such row's
        error, in words (None: no failure): "11 blocked" alone read as robots.txt
        disallowing everything, where the network was down and robots.txt unavailable
        (a fresh user's, 2026-12-02)."""
        if not self.failures:
            return None
        status, count = self.failures.most_common(1)[0]
        error = self.first_error.get(status, "")
        error = error if len(error) <= ERROR_SHOWN else error[: ERROR_SHOWN - 3] + "..."
        error = printable(error)  # a worker's text, not trusted; cut first: no escape cut
        return f"most often {status} ({count}){': ' if error else ''}{error}"

    @property
    def succeeded(self) -> int:
        return sum(self.counts.get(s, 0) for s in c.SUCCESS_STATUSES)

    @property
    def failed(self) -> int:
        return sum(n for s, n in self.counts.items() if s in c.FAILED_STATUSES)

    def as_dict(self, code: int, elapsed: float, manifest: Path) -> dict[str, Any]:
        # Counted as written: the carried rows (``kept``) may be revalidations (304s)
        # too, so the ok count less them would go negative.
        fetched = self.downloaded
        return {
            "run_id": self.run_id,
            "outcome": OUTCOMES.get(code, "error"),
            "exit_code": code,
            "why": self.why
            if code in (c.EXIT_DEGRADED, c.EXIT_INCOMPLETE) or self.damaged
            else None,
            "started_at": self.started_at,
            "ended_at": _ended_at(self.started_at, elapsed),
            "elapsed_s": round(elapsed, 3),
            "urls": self.total,
            "counts": dict(sorted(self.counts.items())),
            # URLs with no row at all (never below 0: a manifest replaced by a stranger's
            # may hold per-line rows whose 32-bit source key matches one of ours: recount)
            "missing": max(0, self.total - sum(self.counts.values())),
            # A failed revalidation's row stands too, but its URL was answered: counted as
            # ``changes.refresh_failed``, not here (until 2026-12-01 in both). Never below
            # 0: a damaged manifest's recount sets not_rechecked to 0 (closing.damaged).
            "not_rechecked": max(0, self.not_rechecked - self.changes.get("refresh_failed", 0)),
            "downloaded": fetched,
            "reused": self.reused,
            "kept": self.kept,
            "older_rules": self.older_rules,
            "bytes": self.downloaded_bytes,
            "images_per_s": round(fetched / elapsed, 2) if elapsed > 0 else None,
            "workers_seen": sorted(self.workers),
            "changes": {name: self.changes.get(name, 0) for name in c.CHANGES},
            "same_content": self.same_content,
            "superseded": self.superseded,
            "manifest": str(manifest),
            "manifest_bytes": _size(manifest),
            "manifest_damaged": self.damaged,
            "policy": self.policy,
        }


def _size(manifest: Path) -> int | None:
    """The manifest's size as the run leaves it: a report that finds it otherwise knows
    that this summary no longer describes it (a later run did not finish)."""
    try:
        return manifest.stat().st_size
    except OSError:
        return None


def _changes(changes: dict[str, int]) -> str:
    return ", ".join(f"{changes.get(k, 0)} {text}" for k, text in c.CHANGES.items())


def write_summary(summary: dict[str, Any], manifest: Path) -> None:
    """Write the run's JSON summary beside the manifest, and its line in the runs file.
    A failure of either is one error line (the disk is full: the run's exit code says
    what happened to its URLs). An earlier summary that cannot be replaced is removed:
    it would pass for this run's, and "no summary" says that this run did not finish."""
    path = summary_path(manifest)
    try:
        write_whole(path, (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        log.error("cannot write the run summary %s: %s", path, exc.strerror)
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
    add_run_line(summary, manifest)


def _ended_at(started_at: str, elapsed: float) -> str:
    """The time now, but never less than ``elapsed`` (monotonic seconds) after
    ``started_at``: a wall clock stepped back during the run (NTP) made a summary end a
    day before it started (a fresh user's, 2026-12-01). A step forward is kept: the
    clock was corrected towards the right time."""
    try:
        start = datetime.fromisoformat(started_at)
    except ValueError:
        return now_iso()
    earliest = (start + timedelta(seconds=round(elapsed))).isoformat(timespec="seconds")
    now = now_iso()
    return max(now, earliest) if start.tzinfo is not None else now


def record_start(stats: RunStats, manifest: Path, lists: Iterable[ListSpec | str]) -> None:
    """Add the run's first line to the run history before any worker gets a URL:
    ``run_id``, ``outcome`` "started", ``started_at``, ``policy`` and ``lists`` (the
    files and folders of ``lists``, absolute; ``-`` left out: what ``crawler-report``
    and ``crawler-export`` must not write over, ``outputs.listed_before``); its summary line
    follows when it ends. Raises OSError when it cannot be added. A run killed
    (``kill -9``, a second Ctrl-C, power) leaves this line alone, and later runs still
    count it and know its policy (``healing.History``): until 2026-12-01 such a run was
    in no history, so its failures skipped their backoff (retried at once, counted one
    more failed run) and ones decided by a limit it ran with (``--max-bytes``) were kept
    for good once the limit changed (a fresh user's)."""
    started = {
        "run_id": stats.run_id,
        "outcome": c.RUN_STARTED,
        "started_at": stats.started_at,
        "policy": stats.policy,
        "lists": _list_paths(lists),
    }
    # Not synced: it is on the way to the first lease (an fsync is 4-8 ms here), and it
    # survives a killed process; the summary line, synced, follows it to the disk. Its
    # failure raises (OSError): a run its history does not know would be healed with
    # another run's policy, so it must not start (until 2026-12-03 it did, with an error
    # line: a disk out of inodes, a fresh user's).
    _append_run_line(started, manifest, sync=False)


def _list_paths(lists: Iterable[ListSpec | str]) -> list[str]:
    """The lists as named on the command line, absolute, once each: a folder's files as
    the folder (its 5,000 files made each run's line 205 kB: a review's)."""
    paths: dict[str, None] = {}
    for spec in map(as_spec, lists):
        path = spec.folder or spec.path
        if path != STDIN:
            paths[os.path.abspath(path)] = None
    return list(paths)


def add_run_line(line: dict[str, Any], manifest: Path, *, sync: bool = True) -> None:
    """Append ``line`` to the run history; a failure is one error line, the run goes on."""
    try:
        _append_run_line(line, manifest, sync=sync)
    except OSError as exc:
        log.error("cannot add the run to %s: %s", runs_path(manifest), exc.strerror)


def _append_run_line(line: dict[str, Any], manifest: Path, *, sync: bool) -> None:
    """One JSON line at the end of the run history (``atomic.append_line``); raises OSError."""
    append_line(runs_path(manifest), (json.dumps(line) + "\n").encode("utf-8"), sync=sync)


def _rate(per_s: float | None) -> str:
    """images/s as read: two significant digits below 10 (5 images in 127 s said "0.0"),
    one decimal above."""
    if not per_s:
        return "0"
    return f"{per_s:.1f}" if per_s >= 10 else f"{per_s:.2g}"


def format_summary(summary: dict[str, Any], csv: Path | None, report: Path | None = None) -> str:
    lines = [
        f"crawler: run {summary['run_id']} {summary['outcome']} in {summary['elapsed_s']:.1f} s: "
        f"{summary['urls']} URLs"
    ]
    lines += [f"  {status:<18}{n:>9}" for status, n in summary["counts"].items()]
    if summary["missing"]:
        lines.append(
            f"  {'(no status yet)':<18}{summary['missing']:>9}  rerun the same command to resume"
        )
    if summary.get("not_rechecked"):
        lines.append(
            f"  {'(not re-checked)':<18}{summary['not_rechecked']:>9}  their earlier rows "
            "stand (counted above); rerun the same command to re-check them"
        )
    lines.append(
        f"  {summary['downloaded']} downloaded ({_rate(summary['images_per_s'])} images/s, "
        f"{summary['bytes'] / 1e6:.1f} MB), {summary['reused']} reused from earlier runs, "
        f"{summary['kept']} kept as the manifest says"
    )
    lines.append("  this run: " + _changes(summary.get("changes") or {}))
    if same := summary.get("same_content"):
        lines.append(
            f"  {same} image{'s' * (same != 1)} with the same bytes as an earlier row's "
            "(same_content_as)"
        )
    if superseded := len(summary["superseded"]):
        copies = "copies" if superseded != 1 else "copy"
        lines.append(
            f"  {superseded} earlier {copies} superseded by a new location or a failure row "
            "(an opt-out...; listed in the summary JSON: safe to delete)"
        )
    if summary.get("manifest_damaged"):
        lines.append("  (counted from the manifest as it is now: it was removed, replaced or "
                     "cut short during the run)")  # fmt: skip
    lines.append(f"  manifest: {summary['manifest']}")
    if csv is not None:
        lines.append(f"  csv:      {csv}")
    if report is not None:
        lines.append(f"  report:   {report}")
    return "\n".join(lines)
