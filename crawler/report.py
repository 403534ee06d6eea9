"""The HTML run report: one self-contained page summing up a manifest.

``write_report`` streams the manifest twice and never holds it whole. The first pass
finds which rows are current (in the journal the last row of a URL counts; a Bloom
filter keeps this to a few bits a row) and the latest run. The second aggregates:
counts by status and host, rows finished over time, and bounded samples (the first
failures, a reservoir of stored images). Thumbnails of sampled images found under
``output`` are made with Pillow and embedded as ``data:`` URIs: the page has no
scripts and no external assets (its Content-Security-Policy allows neither), and all
text from the web is HTML-escaped. Command line: ``python -m crawler.report MANIFEST``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import statistics
import sys
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawler import __version__
from crawler import constants as c
from crawler.exceptions import CrawlerError, UsageError
from crawler.manifest import LINE_STATUSES, read_manifest
from crawler.report_page import BUCKET_S, MAX_HOSTS, _num, render_page

MAX_FAILURES = 500  # rows in the failure table
MAX_STATUSES = 64  # distinct status values counted; more only in a hand-edited manifest
TIMES_KEPT = 64  # elapsed_s values kept per host: exact medians up to 64 rows, sampled above
NETLOC = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#]*)")  # manifest URLs are normalised


def _timestamp(value: Any) -> float | None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _host_name(row: dict[str, Any]) -> str:
    """The row's host[:port]; a pseudo-host in parentheses for rows without one."""
    if row.get("status") == c.INVALID_URL:
        return "(invalid URL)"
    match = NETLOC.match(row["url"])
    return (match[1].lower() if match else "") or "(no host)"


def _status(row: dict[str, Any]) -> str:
    status = row.get("status")
    return status if isinstance(status, str) else "(missing)"


def _digest(row: dict[str, Any]) -> bytes:
    """What a row is the current row of: its URL or, for per-line rows, its input line."""
    status = _status(row)
    key = f"L{status}\0{row.get('source') or row['url']}" if status in LINE_STATUSES else row["url"]
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=20).digest()


@dataclass
class _Scan:
    """First pass: rows read, the last index of every key seen twice, the latest run."""

    count: int = 0
    last_of: dict[int, int] = field(default_factory=dict)
    latest_run: str | None = None
    latest_ts: float = -math.inf


def _scan(manifest: Path) -> _Scan:
    bits = max(1 << 16, manifest.stat().st_size // 16)  # rows are >300 bytes: >20 bits a row
    bloom, scan = bytearray(bits // 8 + 1), _Scan()
    for index, row in enumerate(read_manifest(manifest)):
        digest = _digest(row)
        spots = [int.from_bytes(digest[i : i + 4]) % bits for i in (8, 12, 16)]
        if all(bloom[s >> 3] & (1 << (s & 7)) for s in spots):  # maybe seen before
            scan.last_of[int.from_bytes(digest[:8])] = index
        for s in spots:
            bloom[s >> 3] |= 1 << (s & 7)
        ts = _timestamp(row.get("finished_at"))
        if ts is not None and ts >= scan.latest_ts and isinstance(row.get("run_id"), str):
            scan.latest_ts, scan.latest_run = ts, row["run_id"]
        scan.count = index + 1
    return scan


@dataclass(slots=True)
class _Host:
    urls: int = 0
    failed: int = 0
    timed: int = 0
    elapsed_sum: float = 0.0
    times: array[float] = field(default_factory=lambda: array("f"))  # a reservoir

    def add(self, failed: bool, elapsed: float | None, rng: random.Random) -> None:
        self.urls += 1
        self.failed += failed
        if elapsed is not None and elapsed >= 0:
            self.timed += 1
            self.elapsed_sum += elapsed
            if len(self.times) < TIMES_KEPT:
                self.times.append(elapsed)
            elif (slot := rng.randrange(self.timed)) < TIMES_KEPT:
                self.times[slot] = elapsed

    def median(self) -> float:
        return statistics.median(self.times) if self.times else 0.0


@dataclass
class _Report:
    """Second pass: everything the page shows, in bounded memory."""

    sample: int
    chart_run: str | None
    rows: int = 0
    failed: int = 0
    stored_bytes: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    hosts: dict[str, _Host] = field(default_factory=dict)
    pooled: _Host = field(default_factory=_Host)
    failures: list[tuple[Any, ...]] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    stored_seen: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    bars: tuple[Counter[int], ...] = field(default_factory=lambda: (Counter(), Counter()))
    fetched: int = 0  # downloaded (not reused) in the chart run
    span: tuple[float, float] = (math.inf, -math.inf)

    def add(self, row: dict[str, Any]) -> None:
        status = _status(row)
        if status not in c.STATUSES and len(self.statuses) >= MAX_STATUSES:
            status = "(other)"  # a closed vocabulary, unless the manifest was edited
        failed = status not in c.SUCCESS_STATUSES and status != c.DUPLICATE
        self.rows += 1
        self.failed += failed
        self.statuses[status] += 1
        self._host(row).add(failed, _num(row.get("elapsed_s")), self.rng)
        if failed and len(self.failures) < MAX_FAILURES:
            cells = (row["url"], status, row.get("http_status"), row.get("error"))
            self.failures.append(tuple(None if v is None else str(v)[:1000] for v in cells))
        if status in c.SUCCESS_STATUSES:
            self.stored_bytes += int(_num(row.get("bytes")) or 0)
            self._sample(row)
        ts = _timestamp(row.get("finished_at"))
        if ts is not None and row.get("run_id") == self.chart_run:
            self.bars[failed][int(ts // BUCKET_S)] += 1
            self.span = (min(self.span[0], ts), max(self.span[1], ts))
            self.fetched += status == c.OK and not row.get("reused")

    def _host(self, row: dict[str, Any]) -> _Host:
        host = self.hosts.get(name := _host_name(row))
        if host is None and len(self.hosts) >= MAX_HOSTS:
            return self.pooled
        return host or self.hosts.setdefault(name, _Host())

    def _sample(self, row: dict[str, Any]) -> None:
        """Reservoir sampling: every stored row equally likely to be a gallery candidate."""
        if not isinstance(row.get("path"), str):
            return
        self.stored_seen += 1
        slot, cap = len(self.candidates), 4 * self.sample  # files may be on other hosts
        if slot >= cap:
            slot = self.rng.randrange(self.stored_seen)
        if slot < cap:
            keep = {k: row.get(k) for k in ("url", "path", "width", "height", "format", "bytes")}
            self.candidates[slot : slot + 1] = [keep]


def _read_summary(manifest: Path) -> dict[str, Any]:
    try:
        data = json.loads(manifest.with_name(manifest.stem + ".summary.json").read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _aggregate(manifest: Path, sample: int) -> _Report:
    scan = _scan(manifest)
    rep, repeats = _Report(max(0, sample), scan.latest_run), scan.last_of
    for index, row in enumerate(read_manifest(manifest)):
        if index >= scan.count:  # appended since the first pass
            break
        if repeats and repeats.get(int.from_bytes(_digest(row)[:8]), index) != index:
            continue  # an earlier row of a URL (or line) that has a later one
        rep.add(row)
    return rep


def write_report(
    manifest: Path, output: Path | None, report_path: Path | None = None, sample: int = 24
) -> Path:
    """Write the HTML report of ``manifest``, by default to ``<stem>.report.html`` beside it.

    ``output`` is the folder holding stored images on this host (the master's
    ``--output``), for the gallery; None leaves thumbnails out. Returns the path
    written; raises UsageError when the manifest cannot be read or the report written.
    """
    manifest = Path(manifest)
    path = Path(report_path or manifest.with_name(manifest.stem + ".report.html"))
    try:
        rep = _aggregate(manifest, sample)
    except OSError as exc:
        raise UsageError(f"cannot read manifest {manifest}: {exc.strerror or exc}") from None
    text = render_page(manifest, rep, _read_summary(manifest), output and Path(output))
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write report {path}: {exc.strerror or exc}") from None
    return path


OUTPUT_HELP = "the folder of the stored images, for thumbnails (default: the manifest's)"


def main(argv: list[str] | None = None) -> int:
    """``python -m crawler.report MANIFEST``: write the report and print its path."""
    parser = argparse.ArgumentParser(
        prog="crawler-report", description="Write the HTML report of a crawler manifest."
    )
    parser.add_argument("--version", action="version", version=f"crawler {__version__}")
    parser.add_argument("manifest", type=Path, metavar="MANIFEST", help="the manifest (.jsonl)")
    parser.add_argument("--output", type=Path, metavar="DIR", help=OUTPUT_HELP)
    parser.add_argument("--out", type=Path, metavar="PATH", help="default: <manifest>.report.html")
    parser.add_argument("--sample", type=int, default=24, metavar="N", help="thumbnails (24)")
    args = parser.parse_args(argv)
    try:
        output = args.manifest.parent if args.output is None else args.output
        print(write_report(args.manifest, output, args.out, args.sample), flush=True)
    except CrawlerError as exc:
        print(f"crawler-report: error: {exc}", file=sys.stderr)
        return c.EXIT_ERROR
    except KeyboardInterrupt:
        print("crawler-report: interrupted", file=sys.stderr)
        return c.EXIT_INTERRUPTED
    return c.EXIT_OK


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy, so every class has one identity.
    from crawler.report import main as _main

    sys.exit(_main())
