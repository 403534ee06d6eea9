"""The master's run: from the lists to the summary, every URL accounted for.

``Master.run`` takes over a started ``launch.Launch`` (listening, local workers starting),
plans the run (resuming from the manifest of earlier runs), hands the lease board to the
served task queue, journals each result in the manifest as it arrives, and ends when
every URL has a final status. Then it compacts a resumed journal, writes the CSV, the
summary and the HTML report. SIGINT/SIGTERM (``launch.StopRequest``): stop handing out
work, keep collecting answers for ``--grace`` seconds, then exit with EXIT_INTERRUPTED;
a second signal stops at once. Once the run is over, signals are ``endstop``'s: they
leave the summary to be written.
"""

from __future__ import annotations

import dataclasses
import queue
import time
from collections.abc import Callable
from typing import Any, TypeVar

from crawler import constants as c
from crawler.config import MasterConfig
from crawler.console import NOTICE, log
from crawler.exceptions import JournalError, UsageError
from crawler.master import closing
from crawler.master.indexing import IndexKeeper
from crawler.master.journal import ManifestWriter
from crawler.master.keylines import KeyLines
from crawler.master.launch import Launch
from crawler.master.leases import LeaseBoard
from crawler.master.plan import Plan, plan_run
from crawler.master.progress import Progress, announce
from crawler.master.results import ResultIntake
from crawler.master.resumenotes import tell_resume
from crawler.master.summary import RunStats, record_start
from crawler.master.watch import Watch
from crawler.report.ledger import Ledger

TICK = 0.5  # seconds between lease checks while results are quiet
LINGER = 5.0  # seconds the master waits for its workers to hear the run is over
LINGER_POLL = 0.002  # ... looking every: it is on the way to the run's exit
MAX_BATCHES_PER_WRITE = 8  # result batches folded into one manifest write (group commit)
T = TypeVar("T")
# A stop whose --grace ended before every URL in progress was answered.
LEFT = "stopping: --grace %g s over; no answer for %d URL%s in progress (the next run fetches)"


class Master:
    """One run of the master, from the lists to the summary."""

    def __init__(self, config: MasterConfig, launch: Launch) -> None:
        """``launch``: started (``Launch.start``); this run closes it (its caller does too,
        whatever happens: closing is idempotent)."""
        self.config = config
        self.launch = launch
        self.run_id = launch.run_id
        self.started = launch.started
        self.serving = self.started  # when workers could first get tasks (after planning)
        self.inbox = launch.inbox
        self.local = launch.local
        self.stats = RunStats(self.run_id, 0)
        self.ledger = Ledger(None, self.run_id)  # the report's aggregate, opened in run()
        self.keeper = IndexKeeper(config.manifest, config.policy.store)  # the resume index
        self.pictures: closing.Pictures | None = None  # the report's, started once results end
        self.stop_by: float | None = None  # a stop's end (--grace): when workers are killed

    def run(self) -> int:
        """Run to the end; returns the exit code (``constants.EXIT_*``). Raises UsageError
        (one line at the CLI) when the manifest or its folder cannot be used."""
        cfg = self.config
        manifest = ManifestWriter(cfg.manifest)  # refused: the CLI closes the launch
        self.ledger = Ledger.open(cfg.manifest, manifest.empty, self.run_id)
        plan, code = None, c.EXIT_ERROR  # the code if planning or serving raises
        try:
            plan = self._before_serving(lambda: self._plan(manifest), "spool the URL lists")
            self._before_serving(lambda: self._prepare(plan, manifest), "keep the resume index")
            code = self._settle(plan, manifest, self._serve(plan, manifest))
        except KeyboardInterrupt:  # a second signal: at once, its local workers too
            self.stop_by = time.monotonic()
            raise
        finally:
            self.launch.close(by=self.stop_by)
            manifest.close()
            self.keeper.close()
            if plan is not None:  # the superseded copies checked while the index is open
                closing.keep_contents(plan, cfg.manifest, code, self.stats.superseded)
                plan.close()  # its arrays (hundreds of MB for a huge list) go before the report
        self._finish(code)
        return code

    def _plan(self, manifest: ManifestWriter) -> Plan:
        """Read the lists (per-line rows journalled as found), resuming from the journal
        of earlier runs unless it is empty."""
        cfg = self.config

        def write(rows: list[dict[str, Any]]) -> None:
            self.keeper.lines_written(rows, manifest.write(rows))
            self.stats.add(rows)
            self.ledger.add(rows)

        journal = None if manifest.empty else cfg.manifest  # empty: no resume, no compaction
        spool = cfg.manifest.parent  # the URL spool goes to disk, never to a RAM /tmp
        resume = dataclasses.replace(cfg.resume, policy=cfg.policy)
        contents = closing.open_contents(cfg.manifest, manifest.empty)
        try:
            plan = plan_run(
                cfg.lists, self.run_id, write, journal, resume, spool, contents,
                keep=self.stats.add, keys=KeyLines(cfg.authkey),
            )  # fmt: skip
        except BaseException:
            contents.discard()
            raise
        tell_resume(plan, cfg.manifest)
        return plan

    def _before_serving(self, step: Callable[[], T], what: str) -> T:
        """``step()``; a manifest folder refusing files before any work is out: exit 1."""
        try:
            return step()
        except OSError as exc:  # beside the manifest: full, read-only
            where = self.config.manifest.parent
            raise UsageError(f"cannot {what} in {where}: {exc.strerror}") from None
        except JournalError as exc:
            raise UsageError(str(exc)) from None

    def _prepare(self, plan: Plan, manifest: ManifestWriter) -> None:
        closing.settle_earlier(plan, self.ledger)
        self.keeper.start(plan, manifest, self.ledger)  # and kept rows restamped, repointed
        plan.store.drop_index()  # serving needs no URL look-ups (a compaction rebuilds it)

    def _collect_or_stop(self, plan: Plan, board: LeaseBoard, manifest: ManifestWriter) -> int:
        """``_collect``; a manifest the disk refuses mid-run ends the run incomplete (exit
        3), with its summary, CSV and log outcome (before: the error line alone)."""
        try:
            return self._collect(plan, board, manifest)
        except JournalError as exc:
            NOTICE.error("error: %s", exc)
            self.stats.why = str(exc)
            return c.EXIT_INCOMPLETE

    def _settle(self, plan: Plan, manifest: ManifestWriter, code: int) -> int:
        """A manifest no longer the journal written (removed, replaced, cut short): counted
        as it is, exit 3 (``closing.damaged``); else a completed run is ``_complete``d."""
        if manifest.still_named():
            return self._complete(plan, manifest) if code == c.EXIT_OK else code
        self.ledger.give_up()  # the report reads the file as it is, thumbnails too
        if self.pictures is not None:
            self.pictures.close()
            self.pictures = None
        keys = self.keeper.line_keys(plan)
        return closing.damaged(self.config.manifest, plan, self.stats, keys, code)

    def _complete(self, plan: Plan, manifest: ManifestWriter) -> int:
        """Compact if need be (``IndexKeeper.finish``); then EXIT_DEGRADED for a run that
        should alarm (``closing.alarm``), else EXIT_OK. A compaction the disk refuses is
        one error line and EXIT_INCOMPLETE: every row is journalled, so the summary and
        the report still follow, and the next run compacts."""
        try:
            self.keeper.finish(manifest, plan, self.ledger)
        except JournalError as exc:
            NOTICE.error("error: %s", exc)
            self.stats.why = str(exc)
            return c.EXIT_INCOMPLETE
        why = closing.alarm(plan, self.stats.changes, self.config.max_failure_rate)
        if why is None:
            return c.EXIT_OK
        often = self.stats.most_often()
        self.stats.why = why if often is None else f"{why}; {often}"
        log.error("degraded run: %s", self.stats.why)
        return c.EXIT_DEGRADED

    def _finish(self, code: int) -> None:
        """CSV, summary and report, once the manifest is complete (``closing.finish``)."""
        elapsed = time.monotonic() - self.started
        late = self.launch.stop.late
        closing.finish(self.config, self.stats, code, elapsed, self.ledger, self.pictures, late)
        if late is not None:
            late.close()

    @property
    def stop_signal(self) -> int | None:
        return self.launch.stop.signum

    def _serve(self, plan: Plan, manifest: ManifestWriter) -> int:
        cfg = self.config
        board = LeaseBoard(
            plan.store, plan.state, cfg.policy.lease_seconds, cfg.max_attempts,
            stored_copy=plan.stored_copy, limits=cfg.limits, unpaced=plan.unpaced,
            user_agent=None if cfg.policy.ignore_robots else cfg.policy.user_agent,
            workers=self.launch.slot.workers,  # those that called in while we planned
            clock=self.launch.clock,  # not counting the time the master was stopped
            retries=cfg.policy.retries,  # of a 429/503: the master's (leases.overloaded)
            spool=cfg.manifest.parent,  # robots.txt verdicts: to disk, never to a RAM /tmp
        )  # fmt: skip
        if plan.needs_hosts:
            board.prefer_hosts(plan.wanted_host, cfg.policy.lease_seconds)
        self.stats.total = plan.total
        self.stats.counts.update(plan.carried)
        failures_kept = sum(n for s, n in plan.carried.items() if s in c.FAILED_STATUSES)
        self.stats.changes["kept_failures"] = failures_kept - plan.given_up
        self.stats.changes["given_up"] = plan.given_up
        self.stats.policy = dataclasses.asdict(self.launch.policy)  # the store's id too
        self.stats.kept = plan.kept
        earlier = plan.earlier  # counted on a full read of the manifest only
        self.stats.older_rules = (
            None if earlier is None or earlier.from_index else earlier.older_rules
        )
        self._before_serving(  # before the first lease: see its docstring
            lambda: record_start(self.stats, cfg.manifest, cfg.lists),
            "add the run to the run history",
        )
        self.launch.stop.graceful()  # a signal during planning stopped it at once
        self.launch.slot.fill(board)  # the workers' gets find tasks from now on
        self.serving = time.monotonic()  # --idle-timeout counts from here, not from planning
        announce(cfg, self.run_id, self.launch.port)
        if not plan.todo or self.stop_signal is not None:  # no lease was made: none holds any
            self.local.kill_unused()
        code = self._collect_or_stop(plan, board, manifest)
        self.launch.stop.ending(closing.skippable(cfg))  # signals from now on: endstop
        closing.count_standing(plan, self.stats, code)  # earlier rows of URLs not answered
        board.finish()  # first: the workers hear it and leave while the pictures start
        self.pictures = closing.start_pictures(cfg, self.ledger)
        self._linger(board)
        return code

    def _collect(self, plan: Plan, board: LeaseBoard, manifest: ManifestWriter) -> int:
        """Take results until every URL is final, the run is stopped, or it cannot finish."""
        intake = ResultIntake(plan, board, self.run_id, self.config.policy.store, self.ledger)
        intake.superseded = self.stats.superseded
        intake.changes.update(self.stats.changes)  # kept and given up, from the plan
        self.stats.changes = intake.changes  # the rest counted as results arrive
        remaining, next_tick = plan.todo, 0.0
        watch = Watch(self.config, self.local, self.stats, board.workers.now())
        with Progress(self.config, plan.total, plan.todo, self.stats, board.workers) as progress:
            while remaining:
                if self.stop_signal is not None and self.stop_by is None:
                    self.stop_by = self._begin_stop(board)
                # The stop's end: the answers already in take no wait (until 2026-12-03
                # those that came while the last ones were journalled were dropped).
                ending = self.stop_by is not None and (
                    time.monotonic() > self.stop_by or not board.leased()
                )
                batches = self._next_batches(TICK * (not ending))
                rows = intake.rows(batches)
                tick = time.monotonic() >= next_tick and not ending
                if tick:
                    rows += intake.lost_rows()
                    next_tick = time.monotonic() + TICK
                if rows:  # journalled before anything may end the run
                    self.keeper.rows_written(intake.take_ids(), rows, manifest.write(rows))
                    intake.written()
                    remaining -= len(rows)
                    self.stats.add(rows)
                    self.ledger.add(rows)
                    progress.advance(len(rows))
                if ending and remaining and not batches:  # each answer already in taken
                    if left := board.leased():  # killed, or not heard: said since 2026-12-03
                        log.warning(LEFT, self.config.grace, left, "s" * (left != 1))
                    return c.EXIT_INTERRUPTED
                progress.tick(remaining, board.robots_held_back)
                stopping = self.stop_signal is not None
                if tick and remaining and not watch.workers_left(board, progress, stopping):
                    # Stopping, the workers going is what was asked: the stop's outcome.
                    return c.EXIT_INCOMPLETE if self.stop_signal is None else c.EXIT_INTERRUPTED
        return c.EXIT_OK

    def _begin_stop(self, board: LeaseBoard) -> float:
        board.drain()
        self.local.ask_to_stop()
        grace = self.config.grace
        log.warning("stopping: no new work handed out; waiting up to %g s for answers", grace)
        return time.monotonic() + grace

    def _next_batches(self, wait: float) -> list[tuple[str, list[str]]]:
        """Every batch waiting in the inbox (one manifest write, one fsync, for all),
        waiting up to ``wait`` seconds for the first."""
        try:
            batches = [self.inbox.get(timeout=wait) if wait else self.inbox.get_nowait()]
        except queue.Empty:
            return []
        while len(batches) < MAX_BATCHES_PER_WRITE:
            try:
                batches.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        return batches

    def _linger(self, board: LeaseBoard) -> None:
        """Keep serving briefly, so that workers (ours too, even late ones) hear that the run
        is over instead of finding a closed port; a stop, no longer than its --grace."""
        deadline = time.monotonic() + LINGER
        if self.stop_by is not None:  # README: a stop takes up to --grace, not 15 s more
            deadline = min(deadline, self.stop_by)
        late = self.launch.stop.late
        while time.monotonic() < deadline and not (late is not None and late.skip):
            if self.local.all_exited() and board.workers.all_told(within=LINGER):
                return
            time.sleep(LINGER_POLL)
