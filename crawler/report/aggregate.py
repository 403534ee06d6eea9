"""Two streaming passes over a manifest into a ``model.ReportData``.

The first pass finds which rows are current (in the journal the last row of a URL
counts; a Bloom filter keeps this to a few bits a row) and the latest run. The second
adds each current row to the aggregate. The manifest is never held whole.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.console import log
from crawler.manifest import LINE_STATUSES, Skipped, read_manifest, run_order
from crawler.report.model import ReportData, status_of, timestamp


def _digest(row: dict[str, Any]) -> bytes:
    """What a row is the current row of: its URL or, for per-line rows, its input line."""
    status = status_of(row)
    key = f"L{status}\0{row.get('source') or row['url']}" if status in LINE_STATUSES else row["url"]
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=20).digest()


@dataclass
class _Scan:
    """First pass: rows read, the last index of every key seen twice, the latest run."""

    count: int = 0
    last_of: dict[int, int] = field(default_factory=dict)
    latest_run: str | None = None
    latest: tuple[int, float] = (-1, -math.inf)  # (place in the run history, finished_at)
    order: dict[str, int] = field(default_factory=dict)  # manifest.run_order

    def saw(self, row: dict[str, Any]) -> None:
        """The latest run is the last the run history names, else (a run it does not
        name, or no history) the one of the latest ``finished_at``: until 2026-12-01 the
        latter alone, and a night whose clock was ahead stayed "the latest" in the chart
        after later runs (a fresh user's)."""
        run_id, ts = row.get("run_id"), timestamp(row.get("finished_at"))
        if not isinstance(run_id, str) or (ts is None and run_id not in self.order):
            return
        rank = (self.order.get(run_id, -1), -math.inf if ts is None else ts)
        if rank >= self.latest:
            self.latest, self.latest_run = rank, run_id


def _scan(manifest: Path) -> _Scan:
    bits = max(1 << 16, manifest.stat().st_size // 16)  # rows are >300 bytes: >20 bits a row
    bloom, scan = bytearray(bits // 8 + 1), _Scan(order=run_order(manifest))
    for index, row in enumerate(read_manifest(manifest)):
        digest = _digest(row)
        spots = [int.from_bytes(digest[i : i + 4]) % bits for i in (8, 12, 16)]
        if all(bloom[s >> 3] & (1 << (s & 7)) for s in spots):  # maybe seen before
            scan.last_of[int.from_bytes(digest[:8])] = index
        for s in spots:
            bloom[s >> 3] |= 1 << (s & 7)
        scan.saw(row)
        scan.count = index + 1
    return scan


def aggregate(manifest: Path, sample: int, compacted_by: str | None = None) -> ReportData:
    """The report's aggregate of ``manifest``. ``compacted_by``: the id of the run that
    just compacted it (one row per URL or line, that run the latest), which saves the
    first pass: half the time of a report at the end of a run."""
    scan = _Scan(count=-1, latest_run=compacted_by) if compacted_by else _scan(manifest)
    rep, repeats, skipped = ReportData(max(0, sample), scan.latest_run), scan.last_of, Skipped()
    rep.run_order = scan.order or run_order(manifest)
    for index, row in enumerate(read_manifest(manifest, skipped)):
        if index >= scan.count >= 0:  # appended since the first pass
            break
        if repeats and repeats.get(int.from_bytes(_digest(row)[:8]), index) != index:
            continue  # an earlier row of a URL (or line) that has a later one
        rep.add(row)
    if skipped.lines and rep.rows:  # no row at all: not a manifest, which is the error
        log.warning("manifest %s: skipped %d damaged line(s) (torn or garbled)",
                    manifest, skipped.lines)  # fmt: skip
    return rep
