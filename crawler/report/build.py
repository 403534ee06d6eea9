"""Writing the HTML run report of a manifest: aggregate, render, replace atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crawler.atomic import write_whole
from crawler.exceptions import UsageError
from crawler.manifest import read_runs, report_path, summary_path
from crawler.report import ledger
from crawler.report.aggregate import aggregate
from crawler.report.html import render_page
from crawler.report.model import ReportData
from crawler.report.outcome import LATER_RUN, describes, later_run
from crawler.report.pictures import Pictures


def read_summary(manifest: Path) -> dict[str, Any]:
    """The latest run's summary, with ``work_images_per_s``: the speed of the latest run
    that downloaded anything (a resume that only reused has none of its own)."""
    try:
        data = json.loads(summary_path(manifest).read_bytes())
    except (OSError, ValueError):
        data = {}
    summary = data if isinstance(data, dict) else {}
    for run in read_runs(manifest):
        if isinstance(run.get("downloaded"), int) and run["downloaded"] > 0:
            summary["work_images_per_s"] = run.get("images_per_s")
    return summary


def write_report(  # noqa: PLR0913  (what to report, where, and what is known)
    manifest: Path,
    output: Path | None,
    out: Path | None = None,
    sample: int = 24,
    compacted_by: str | None = None,
    data: ReportData | None = None,
    pictures: Pictures | None = None,
) -> Path:
    """Write the HTML report of ``manifest``, by default to ``<stem>.report.html`` beside it.

    ``output`` is the folder holding stored images on this host (the master's
    ``--output``), for the gallery; None leaves thumbnails out (except from shared
    stores). ``compacted_by``: the run that just compacted the manifest (one pass
    instead of two). ``data``: the aggregate, already known (``ledger``); else the
    aggregate saved beside the manifest if it still fits it, else one read in full.
    ``pictures``: its thumbnails, started ahead (``pictures.Pictures`` of ``data``).
    Returns the path written; raises UsageError when the manifest
    cannot be read or the report written.
    """
    manifest = Path(manifest)
    path = Path(out or report_path(manifest))
    try:
        saved = ledger.load(manifest) if data is None and sample == ledger.SAMPLE else None
        rep = data or saved or aggregate(manifest, sample, compacted_by)
        size = manifest.stat().st_size
        if rep.rows == 0 and size > 0:
            raise UsageError(f"{manifest} holds no manifest rows: is it a crawler manifest?")
    except OSError as exc:
        raise UsageError(f"cannot read manifest {manifest}: {exc.strerror or exc}") from None
    summary, earlier = read_summary(manifest), None
    if summary and not describes(summary, rep, size):  # a later run did not finish
        summary, earlier = {}, summary
    elif summary and (later := later_run(list(read_runs(manifest)), summary)) is not None:
        summary, earlier = {}, summary | {LATER_RUN: later}  # one that wrote no row
    text = render_page(manifest, rep, summary, output and Path(output), pictures, earlier)
    try:
        write_whole(path, text.encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot write report {path}: {exc.strerror or exc}") from None
    return path
