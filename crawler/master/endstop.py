"""Stop signals once the run is over: while the master writes its CSV, summary and report.

Until 2026-12-01 such a signal was silent: the first changed nothing visible, and the
second (what someone who saw no reaction sends) ended the master at once, "interrupted",
exit 130, with no summary, CSV or report of a run whose every URL had its final row, and
a run history saying only "started" (a fresh user's). Now, once the master has stopped
collecting answers (``LateStops``, from ``launch.StopRequest.ending``):

- the first stop signal says one line and changes nothing;
- the second (the first here, after a stop that ended the collecting) skips what is left
  of the CSV export, the report and the wait for the local workers to leave (they are
  killed); the summary and the run history's end line are still written, with the
  run's own outcome: its URLs' rows are all in the journal;
- a third stops at once, as a second one did before ("interrupted", exit 130).

A signal handler must not write to a stream the main thread may be writing (a reentrant
call into the same buffer raises), so the notices go through a queue (``SimpleQueue.put``
is reentrant) to a thread that logs them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from crawler.console import log

T = TypeVar("T")
NOTICE_JOIN = 1.0  # seconds ``close`` waits for the notices to be logged


class SkipOutputs(BaseException):
    """A second stop signal while a skippable step ran: not an Exception, so that no
    ``except Exception`` on the way swallows it."""


class LateStops:
    """The stop signals heard after the master stopped collecting answers."""

    def __init__(self, stopped_before: bool, skippable: str) -> None:
        """``stopped_before``: a stop signal came while collecting (the next is the
        second); ``skippable``: what a second one skips, in words ("" when nothing)."""
        self.heard = 1 if stopped_before else 0
        self.skip = False  # a second signal came: skip what is left
        self._what = skippable
        self._in_step = False  # a skippable step runs: a second signal ends it
        self._notices: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._logger: threading.Thread | None = None
        try:  # no thread to spare (pids.max): the notices are logged at close instead
            logger = threading.Thread(target=self._log, name="late-stops", daemon=True)
            logger.start()
            self._logger = logger
        except RuntimeError:  # until 2026-12-03 exit 1 for a finished run, no summary
            pass

    def signal(self) -> None:
        """A stop signal (called from the handler, in the main thread). Raises
        SkipOutputs (a second signal during a step ``run`` runs), KeyboardInterrupt
        (a third)."""
        self.heard += 1
        if self.heard == 1:
            then = f"a second signal skips {self._what}" if self._what else "it is quick"
            self._notices.put(f"the run is over: finishing its summary; {then}")
        elif self.heard == 2:
            self.skip = True
            skipped = f"skipping {self._what}; " if self._what else ""
            self._notices.put(f"{skipped}writing the summary (a third signal stops at once)")
            if self._in_step:
                raise SkipOutputs
        else:
            raise KeyboardInterrupt

    def run(self, step: Callable[[], T], skipped: T) -> T:
        """``step()``, unless a second signal came before it or comes while it runs:
        ``skipped`` then (what it left is its own to clean: ``atomic.replacing`` removes
        its temporary file)."""
        try:
            if self.skip:
                return skipped
            self._in_step = True
            try:
                return step()
            finally:
                self._in_step = False
        except SkipOutputs:
            return skipped

    def close(self) -> None:
        """Log what is still queued, and stop the thread that logs."""
        self._notices.put(None)
        if self._logger is not None:
            self._logger.join(NOTICE_JOIN)
        else:
            self._log()

    def _log(self) -> None:
        while (text := self._notices.get()) is not None:
            log.warning("%s", text)


def unless_skipped(late: LateStops | None, step: Callable[[], T], skipped: T) -> T:
    """``late.run(step, skipped)``; ``step()`` when the run has no ``LateStops``."""
    return step() if late is None else late.run(step, skipped)
