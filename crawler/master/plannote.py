"""One line during a long planning: how far it got, and what it is doing now.

A master plans (reads the lists, resumes from the manifest, matches the per-line rows
with the earlier runs') before it says it serves; for a list of millions that takes
seconds, and a terminal showed nothing meanwhile: until 2026-12-01 a rerun of 600,000
repeated lines sat 57 s without a word (a fresh user's, 2026-12-01). A planning still
going after ``AFTER`` seconds says so once; a short one says nothing.
"""

from __future__ import annotations

import threading
from typing import Protocol

from crawler.console import log

AFTER = 5.0  # seconds of planning before it is worth a line


class Counted(Protocol):
    lines: int  # input lines read so far


class PlanNote:
    """A timer that logs the planning's progress once, unless closed first."""

    def __init__(self, plan: Counted, after: float = AFTER) -> None:
        self.plan, self.step = plan, "reading the lists"
        self._timer = threading.Timer(after, self._say)
        self._timer.daemon = True  # never keeps a stopped master alive
        self._timer.start()

    def _say(self) -> None:
        log.info(
            "planning: %s list lines read so far, now %s (workers get work once it is done)",
            f"{self.plan.lines:,}",
            self.step,
        )

    def close(self) -> None:
        self._timer.cancel()
