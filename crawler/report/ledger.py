"""The report's aggregate kept up to date during a run, and kept from one run to the next.

Reading a manifest of ten million rows again at the end of a run takes minutes, and a
nightly rerun changes only the rows it writes. So the master keeps a ``ReportData`` as
it journals: the aggregate the last completed run saved beside the manifest
(``NAME.aggregate.json``), minus every row this run supersedes, plus every row it
writes. A run on an empty manifest starts from nothing.

The saved aggregate is used only while the manifest is exactly as the run that saved
it left it: same size, same modification time, same first and last 64 KiB (a copy made
with ``cp -p`` or ``rsync -t`` keeps all four). Otherwise, or when the file is damaged,
the ledger is *unusable* and the report reads the whole manifest (``aggregate``), as it
always did. Counts (by status, host, store; bytes; failures up to the table's cap;
this run's chart) are exact either way; the gallery and per-host request-time samples
are random samples either way.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from array import array
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crawler.atomic import write_whole
from crawler.manifest import aggregate_path, fingerprint
from crawler.report.model import HostStats, ReportData
from crawler.report.similar import NearDuplicates

VERSION = 3  # 2: near duplicates, content duplicates; 3: the sha256 of their rows
# Versions loaded: 2's rows lack sha256 (their copies do not share thumbnails); an earlier
# crawler, which wants its own version only, reads a newer manifest whole instead.
LOADED_VERSIONS = (2, VERSION)
SAMPLE = 24  # gallery thumbnails (build.write_report's default)


class Ledger:
    """The running aggregate of one run; ``data`` is None when it is unusable."""

    def __init__(self, data: ReportData | None, run_id: str) -> None:
        self.data = data
        if data is not None:  # the chart shows this run (as after a compaction)
            data.chart_run, data.bars, data.fetched = run_id, (Counter(), Counter()), 0
            data.span = (math.inf, -math.inf)
        self.replaced = 0  # earlier rows superseded so far
        # The journal held one current row per URL or line when the run began (it was
        # empty, or a completed run left it so): compacting is needed only if rows of it
        # are superseded.
        self.clean = data is not None

    @classmethod
    def open(cls, manifest: Path, empty: bool, run_id: str) -> Ledger:
        """The ledger for a run on ``manifest``: from nothing when the journal is
        ``empty``, else from the saved aggregate if it still fits (else unusable)."""
        return cls(ReportData(SAMPLE, run_id) if empty else load(manifest), run_id)

    @property
    def usable(self) -> bool:
        return self.data is not None

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        if self.data is not None:
            for row in rows:
                self.data.add(row)

    def supersede(self, row: dict[str, Any] | None) -> None:
        """An earlier row (None: unreadable) stops being current: a later row replaces it."""
        self.replaced += 1
        if self.data is not None and row is None:
            self.data = None  # what it counted is unknown now
        elif self.data is not None:
            self.data.remove(row)

    def give_up(self) -> None:
        """The journal holds rows this ledger cannot account for: read it whole."""
        self.data, self.clean = None, False

    @property
    def needs_compaction(self) -> bool:
        """Does the journal hold rows that are no longer current?"""
        return not self.clean or self.replaced > 0


def load(manifest: Path) -> ReportData | None:
    """The saved aggregate of ``manifest`` if the manifest is as it was saved; else None."""
    try:
        state = json.loads(aggregate_path(manifest).read_bytes())
        version = state.get("version")
        if version not in LOADED_VERSIONS or state.get("fingerprint") != fingerprint(manifest):
            return None
        return _from_json(state["data"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def save(manifest: Path, data: ReportData | None) -> None:
    """Save ``data`` as the aggregate of ``manifest`` as it is now (atomically); None
    removes a saved one, which no longer fits. Raises OSError (disk full)."""
    path = aggregate_path(manifest)
    if data is None:
        path.unlink(missing_ok=True)
        return
    state = {"version": VERSION, "fingerprint": fingerprint(manifest), "data": _to_json(data)}
    try:
        write_whole(path, json.dumps(state, separators=(",", ":")).encode())
    except OSError:
        path.unlink(missing_ok=True)
        raise


def _to_json(data: ReportData) -> dict[str, Any]:
    out = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    out["hosts"] = {name: _host_cells(stats) for name, stats in data.hosts.items()}
    out["pooled"] = _host_cells(data.pooled)
    out["rng"] = data.rng.getstate()
    out["bars"] = [list(b.items()) for b in data.bars]
    out["failures"] = list(data.failures.values())
    data.near.forget_gone()
    out["near"] = {"hashes": data.near.hashes, "rows": data.near.rows, "seen": data.near.seen}
    return out


def _host_cells(stats: HostStats) -> list[Any]:
    return [stats.urls, stats.failed, stats.timed, stats.elapsed_sum, list(stats.times)]


def _host(cells: list[Any]) -> HostStats:
    urls, failed, timed, elapsed_sum, times = cells
    return HostStats(int(urls), int(failed), int(timed), float(elapsed_sum), array("f", times))


def _from_json(raw: dict[str, Any]) -> ReportData:
    data = ReportData(int(raw["sample"]), raw["chart_run"])
    for name in ("rows", "failed", "stored_bytes", "stored_seen", "fetched"):
        setattr(data, name, int(raw[name]))
    data.statuses, data.held = Counter(raw["statuses"]), Counter(raw["held"])
    data.hosts = {str(name): _host(cells) for name, cells in raw["hosts"].items()}
    data.pooled = _host(raw["pooled"])
    data.failures = {(cells[0], cells[4]): tuple(cells) for cells in raw["failures"]}
    near = raw["near"]
    data.near = NearDuplicates([int(h) for h in near["hashes"]], [str(r) for r in near["rows"]])
    data.near.seen = int(near["seen"])
    data.near.index()
    data.same_content = int(raw["same_content"])
    data.candidates = list(raw["candidates"])
    version, state, gauss = raw["rng"]
    data.rng = random.Random()
    data.rng.setstate((version, tuple(state), gauss))
    data.work = {str(k): list(v) for k, v in raw["work"].items()}
    data.span = tuple(raw["span"])
    data.bars = tuple(Counter({int(k): v for k, v in pairs}) for pairs in raw["bars"])
    return data
