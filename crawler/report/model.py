"""The report's data model: what one pass over a manifest keeps, in bounded memory.

``ReportData`` holds everything the page shows: counts by status and by host (a
``HostStats`` each, ``MAX_HOSTS`` at most, the rest pooled), rows finished over time in
``BUCKET_S`` buckets, the first ``MAX_FAILURES`` failures and a reservoir of stored
images for the gallery. ``aggregate`` fills it; ``html`` renders it.
"""

from __future__ import annotations

import math
import random
import statistics
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crawler import constants as c
from crawler.report.similar import NearDuplicates
from crawler.urls import netloc_of

MAX_FAILURES = 500  # rows in the failure table
MAX_STATUSES = 64  # distinct status values counted; more only in a hand-edited manifest
TIMES_KEPT = 64  # elapsed_s values kept per host: exact medians up to 64 rows, sampled above
MAX_RUNS = 64  # runs whose downloads are counted for images/s; more only in an edited manifest
MAX_HOSTS = 100_000  # hosts counted one by one; rows of any further host are pooled
BUCKET_S = 5  # finished_at resolution of the throughput chart


def _request_time(row: dict[str, Any]) -> float | None:
    """A row's elapsed_s when it made a request: a reuse (attempts 0) took no time worth
    a host's latency."""
    attempts = row.get("attempts")
    return num(row.get("elapsed_s")) if isinstance(attempts, int) and attempts > 0 else None


def num(value: Any) -> float | None:
    """A JSON number as float; None for anything else (bools, strings, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


def timestamp(value: Any) -> float | None:
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
    return netloc_of(row["url"]) or "(no host)"


def status_of(row: dict[str, Any]) -> str:
    status = row.get("status")
    return status if isinstance(status, str) else "(missing)"


@dataclass(slots=True)
class HostStats:
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

    def remove(self, failed: bool, elapsed: float | None) -> None:
        """Undo ``add`` for a superseded row (its time may stay in the reservoir: a sample)."""
        self.urls -= 1
        self.failed -= failed
        if elapsed is not None and elapsed >= 0:
            self.timed -= 1
            self.elapsed_sum -= elapsed
            if not self.timed:
                self.times, self.elapsed_sum = array("f"), 0.0

    def median(self) -> float:
        return statistics.median(self.times) if self.times else 0.0


@dataclass
class ReportData:
    """Second pass: everything the page shows, in bounded memory."""

    sample: int
    chart_run: str | None
    rows: int = 0
    failed: int = 0
    stored_bytes: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    hosts: dict[str, HostStats] = field(default_factory=dict)
    pooled: HostStats = field(default_factory=HostStats)
    # The first failures, by (URL, list line) (a superseded one is taken out by key).
    failures: dict[tuple[Any, Any], tuple[Any, ...]] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    stored_seen: int = 0
    held: Counter[str] = field(default_factory=Counter)  # stored images per host or store
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    bars: tuple[Counter[int], ...] = field(default_factory=lambda: (Counter(), Counter()))
    fetched: int = 0  # downloaded (not reused) in the chart run
    span: tuple[float, float] = (math.inf, -math.inf)
    # Per run that downloaded anything: [downloads, first, last finished_at] (a handful
    # of runs: images/s comes from the latest run that did the work).
    work: dict[str, list[float]] = field(default_factory=dict)
    run_order: dict[str, int] = field(default_factory=dict)  # manifest.run_order, if read
    same_content: int = 0  # rows with same_content_as: the bytes of an earlier row's image
    near: NearDuplicates = field(default_factory=NearDuplicates)  # phash clusters

    def add(self, row: dict[str, Any]) -> None:
        status = status_of(row)
        if status not in c.STATUSES and len(self.statuses) >= MAX_STATUSES:
            status = "(other)"  # a closed vocabulary, unless the manifest was edited
        failed = status not in c.SUCCESS_STATUSES and status != c.DUPLICATE
        self.rows += 1
        self.failed += failed
        self.statuses[status] += 1
        if status != c.DUPLICATE:  # a repeated list line is no URL of its host's
            self._host(row).add(failed, _request_time(row), self.rng)
        if failed and len(self.failures) < MAX_FAILURES:
            cells = (row["url"], status, row.get("http_status"), row.get("error"))
            cells += (row.get("source"), row.get("first_failed_at"))
            kept = tuple(None if v is None else str(v)[:1000] for v in cells)
            self.failures[kept[0], kept[4]] = kept
        if status in c.SUCCESS_STATUSES:
            self.stored_bytes += int(num(row.get("bytes")) or 0)
            self._sample(row)
            self.same_content += isinstance(row.get("same_content_as"), str)
            self.near.add(row)
        ts = timestamp(row.get("finished_at"))
        if ts is not None and status == c.OK and not row.get("reused"):
            self._worked(str(row.get("run_id")), ts)
        if ts is not None and row.get("run_id") == self.chart_run:
            self.bars[failed][int(ts // BUCKET_S)] += 1
            self.span = (min(self.span[0], ts), max(self.span[1], ts))
            self.fetched += status == c.OK and not row.get("reused")

    def remove(self, row: dict[str, Any]) -> None:
        """Take out a row ``add`` took in, now superseded by a later row of its URL or line
        (``ledger``): counts exact, samples (gallery, request times) approximately so."""
        status = status_of(row)
        status = status if status in self.statuses else "(other)"
        failed = status not in c.SUCCESS_STATUSES and status != c.DUPLICATE
        self.rows -= 1
        self.failed -= failed
        self.statuses[status] -= 1
        if self.statuses[status] <= 0:
            del self.statuses[status]
        if status != c.DUPLICATE:
            self._unhost(row, failed)
        if failed:
            source = row.get("source")
            key = (str(row["url"])[:1000], None if source is None else str(source)[:1000])
            self.failures.pop(key, None)  # as the failure table keeps them
        if status in c.SUCCESS_STATUSES:
            self.stored_bytes -= int(num(row.get("bytes")) or 0)
            self._unsample(row)
            self.same_content -= isinstance(row.get("same_content_as"), str)
            self.near.remove(row)
        work = self.work.get(str(row.get("run_id")))
        if work is not None and status == c.OK and not row.get("reused"):
            work[0] -= 1

    def _worked(self, run_id: str, ts: float) -> None:
        work = self.work.get(run_id)
        if work is None and len(self.work) < MAX_RUNS:
            work = self.work[run_id] = [0, ts, ts]
        if work is not None:
            work[0] += 1
            work[1], work[2] = min(work[1], ts), max(work[2], ts)

    def download_rate(self) -> float | None:
        """Images per second of the latest run that downloaded anything (a resumed run
        that only reused says nothing about speed)."""
        if not self.work:
            return None
        # Latest by the run history, then by the clock (see aggregate._Scan.saw).
        _, (count, first, last) = max(
            self.work.items(), key=lambda item: (self.run_order.get(item[0], -1), item[1][2])
        )
        return count / (last - first) if last > first else None

    def _host(self, row: dict[str, Any]) -> HostStats:
        host = self.hosts.get(name := _host_name(row))
        if host is None and len(self.hosts) >= MAX_HOSTS:
            return self.pooled
        return host or self.hosts.setdefault(name, HostStats())

    def _sample(self, row: dict[str, Any]) -> None:
        """Reservoir sampling: every stored row equally likely to be a gallery candidate."""
        if not isinstance(row.get("path"), str):
            return
        self.stored_seen += 1
        where = row.get("store") or row.get("host") or "(host not recorded)"
        if where in self.held or len(self.held) < MAX_HOSTS:
            self.held[str(where)] += 1
        slot, cap = len(self.candidates), 4 * self.sample  # files may be on other hosts
        if slot >= cap:
            slot = self.rng.randrange(self.stored_seen)
        if slot < cap:
            names = ("url", "path", "width", "height", "format", "bytes", "store", "host", "sha256")
            keep = {k: row.get(k) for k in names}
            self.candidates[slot : slot + 1] = [keep]

    def _unhost(self, row: dict[str, Any], failed: bool) -> None:
        name = _host_name(row)
        host = self.hosts.get(name, self.pooled)
        host.remove(failed, _request_time(row))
        if host is not self.pooled and host.urls <= 0:
            del self.hosts[name]  # no URL of it is current any more

    def _unsample(self, row: dict[str, Any]) -> None:
        if not isinstance(row.get("path"), str):
            return
        self.stored_seen -= 1
        where = str(row.get("store") or row.get("host") or "(host not recorded)")
        if self.held.get(where, 0) > 0:
            self.held[where] -= 1
        if any(k["url"] == row["url"] for k in self.candidates):  # a few dozen
            self.candidates = [k for k in self.candidates if k["url"] != row["url"]]
