"""What a worker has reported: URLs by status and bytes downloaded, in words."""

from __future__ import annotations

from collections import Counter
from typing import Any

from crawler import constants as c


class Tally:
    """The results a worker delivered to its master (``count`` each once)."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.bytes = 0  # downloaded for images stored (not reused copies)
        # 429/503 answers: the master leases such a URL again while --retries lasts, so
        # they are not its end (counted as failed, a URL that then ended ok was two URLs
        # in a worker's summary, one failed: a review's, 2026-12-02)
        self.overloaded = 0

    def count(self, row: dict[str, Any]) -> None:
        if row["status"] == c.HTTP_ERROR and row.get("http_status") in c.OVERLOADED:
            self.overloaded += 1
            return
        self.statuses[row["status"]] += 1
        if row["status"] == c.OK and not row.get("reused"):
            self.bytes += row.get("bytes") or 0

    def __bool__(self) -> bool:
        """Has anything been counted?"""
        return bool(self.statuses or self.overloaded)

    def totals(self) -> tuple[int, int]:
        """(URLs reported, of which successes)."""
        good = sum(self.statuses.get(s, 0) for s in c.SUCCESS_STATUSES)
        return sum(self.statuses.values()), good

    def progress(self, elapsed: float, held: int) -> str:
        """A progress line's text, ``elapsed`` s in, ``held`` URLs in flight."""
        total, good = self.totals()
        rate, failed = total / max(elapsed, 1e-9), total - good
        return f"{total} URLs ({rate:.1f}/s), {good} ok, {failed} failed, {held} in flight"

    def summary(self, name: str, elapsed: float) -> str:
        """The worker's last line: what worker ``name`` did in ``elapsed`` s."""
        total, good = self.totals()
        busy = f", {self.overloaded} answered 429/503 (see the master's summary)"
        return (
            f"worker {name}: {total} URLs in {elapsed:.1f} s, {good} ok, "
            f"{total - good} failed{busy * bool(self.overloaded)}, "
            f"{self.bytes / 1e6:.1f} MB downloaded"
        )
