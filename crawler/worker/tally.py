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

    def count(self, row: dict[str, Any]) -> None:
        self.statuses[row["status"]] += 1
        if row["status"] == c.OK and not row.get("reused"):
            self.bytes += row.get("bytes") or 0

    def __bool__(self) -> bool:
        """Has anything been counted?"""
        return bool(self.statuses)

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
        return (
            f"worker {name}: {total} URLs in {elapsed:.1f} s, {good} ok, "
            f"{total - good} failed, {self.bytes / 1e6:.1f} MB downloaded"
        )
