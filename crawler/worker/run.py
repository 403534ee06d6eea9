"""One run of one worker process: tasks in, results out, downloads on threads.

One thread (the caller's) talks to the master: tasks in batches, results in batches,
lease heartbeats. ``--threads`` download threads each own a ``requests.Session`` and
share the run's robots.txt cache (``robots.RobotsCache``); a body that arrives is
checked and stored by an idle verifier thread (``verifiers``), if one is, while its
download thread goes on to the next URL. A bad URL never stops the worker: every
failure becomes the result for that URL (see ``pipeline.process``). On a stop the tasks
not yet started are handed back and the ones in progress finished.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from dataclasses import replace
from typing import Any

from crawler import constants as c
from crawler.config import Policy, WorkerConfig
from crawler.console import Due, notice
from crawler.deferred import NoBar, progress_bar
from crawler.protocol import Task, decode_task, encode_result
from crawler.robotstxt import check_verdict
from crawler.stores import FolderStore, S3Store
from crawler.terminal import bar_fits
from crawler.urls import host_of
from crawler.worker import verify
from crawler.worker.channel import Channel
from crawler.worker.deadline import make_session
from crawler.worker.found import FoundVerdicts
from crawler.worker.lane import TaskLane, drained, no_answer, start_threads
from crawler.worker.leaseview import HeldLeases, LeaseView
from crawler.worker.pacing import POLL_BUSY, POLL_IDLE, POLL_PROBE, Pacing
from crawler.worker.pipeline import Context, Fetched, finish, start
from crawler.worker.resolver import Resolver
from crawler.worker.robots import RobotsCache
from crawler.worker.storage import open_run_store
from crawler.worker.tally import Tally
from crawler.worker.verifiers import Verifiers

log = logging.getLogger("crawler")


class Worker:
    """One run of one worker process: a comms loop in the calling thread, download threads."""

    def __init__(self, config: WorkerConfig, channel: Channel, stop: threading.Event) -> None:
        self.config = config
        self.channel = channel
        self.stop = stop
        self.policy = Policy()
        self.robots = RobotsCache(self.policy)  # replaced, empty, by each run()
        self.resolver = Resolver()  # host names, cached for the worker's life
        self.store: FolderStore | S3Store = FolderStore(config.output)  # replaced by run()
        self.name = worker_name()
        self.tally = Tally()  # what was delivered
        self._todo = TaskLane()  # leased tasks for the threads, and their room (lane.py)
        self._done: queue.Queue[dict] = queue.Queue()  # not a SimpleQueue: see pacing.py
        self._found = FoundVerdicts()  # robots.txt verdicts, for the master
        self._probes: set[int] = set()  # tasks held whose robots.txt this worker fetches
        self._held = HeldLeases()  # leased to us, not yet reported
        self._view = LeaseView(self.policy.lease_seconds)  # replaced by run()
        self._bar: Any = NoBar()  # replaced by run()
        self.disk_error: str | None = None  # set once storing failed: this host takes no more
        self._pacing = Pacing(self._done, self._todo, stop, self._found, config.threads)
        self._verifiers: Verifiers  # the run's (run())

    def run(self, policy: Policy) -> bool:
        """Work until the run is over (True) or a stop was asked for (False). Raises
        MasterGone if the master vanishes."""
        self.policy = policy
        self.store = open_run_store(policy, self.config)
        self.robots = RobotsCache(policy, self.config.threads)  # anew for every run
        self._view = LeaseView(policy.lease_seconds)
        verify.configure(policy)
        self._verifiers = Verifiers(self._done, self.config.threads)
        threads = start_threads(self._download_loop, self.config.threads)
        disable = True if self.config.quiet else None  # None: a bar only on a terminal
        self._bar = progress_bar(disable, unit="url", dynamic_ncols=True, desc=self.name)
        try:
            over = self._comms_loop()
            if not over:
                self._hand_back()
            return over
        finally:
            self._bar.close()
            for _ in threads:
                self._todo.put(None)

    def _comms_loop(self) -> bool:
        last_renew = started = time.monotonic()
        lines = None if self.config.quiet else Due(self.config.progress_interval)
        while not self.stop.is_set() and self.disk_error is None:
            self._held.forget_dropped(self._view.take_dropped())
            self._probes.intersection_update(self._held)  # a dropped probe: none awaited
            self._send_results()  # and the verdicts found
            if lines is not None and lines.now() and not bar_fits(self._bar):
                log.info("progress: %s", self.tally.progress(time.monotonic() - started, self.held))
            want = 2 * self.config.threads - self._with_threads()
            if want >= self._smallest_get():
                wait = 0.0 if self._probes else POLL_BUSY if self._held else POLL_IDLE
                answer = self.channel.get(self.name, want, wait, self._todo.room())
                self._accept(answer.get("tasks", []))
                self._pacing.after_get(answer, bool(self._held), bool(self._probes))
                if answer.get("over"):
                    self._send_results()
                    return True
            elif self._probes:  # every thread busy, and the master waits for a verdict
                self._found.wait(POLL_PROBE)
            else:
                self._pacing.wait_for_result(POLL_BUSY)
                if self.tally:  # the first results go at once (issue 15)
                    self._pacing.gather()  # more results, in the same put
            due = time.monotonic() - last_renew > self.policy.lease_seconds / 4
            if self._held and (due or self._view.renewal_wanted()):
                self._renew()
                last_renew = time.monotonic()
        return False

    def _smallest_get(self) -> int:
        """Tasks worth a round trip to the master: one while a thread has nothing to do
        (or a probe's verdict is awaited), else half the threads' worth. Each get and
        put costs both processes CPU (two messages, XML), and a queue of tasks ready
        for the threads covers the wait: asked for a task at a time, the comms cost
        ~0.5 ms of CPU per image (bench/profile_worker.py)."""
        if self._probes or self._with_threads() < self.config.threads:
            return 1
        return max(1, self.config.threads // 2)

    def _with_threads(self) -> int:
        """Tasks held for the download threads: downloading or queued for them, not the
        bodies the verifiers check (a review's: counted, they left a thread short of a
        task while as many bodies were being checked)."""
        return len(self._held) - self._verifiers.checking

    def _hand_back(self) -> None:
        """On a stop: release what no thread has started, finish and report the rest."""
        unstarted = []
        while True:
            try:
                task = self._todo.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                unstarted.append(task.id)
        self._release(unstarted)
        deadline = time.monotonic() + self.policy.deadline + 5
        if self.stop.is_set() and not self.config.quiet:  # until 2026-12-02 it said nothing
            notice(  # for up to a minute, a fresh user's; a copy's names its process (another's)
                f"stopping{f' ({self.name})' * (self.config.processes > 1)}: {len(unstarted)} "
                f"URLs not started handed back; finishing the {len(self._held)} in progress, "
                f"{self.policy.deadline + 5:g} s at most (signal again to stop at once)"
            )
        while self._held and time.monotonic() < deadline:
            self._pacing.wait_for_result(POLL_BUSY)
            self._send_results()
            self._renew()

    def _renew(self) -> None:
        """Renew what we hold; forget what the master says is no longer ours."""
        answer = self.channel.renew(self.name, sorted(self._held))
        gone = [i for i in answer.get("gone", []) if isinstance(i, int)]
        self._held.forget(gone)
        self._view.confirm(gone)

    def _accept(self, texts: list[str]) -> None:
        tasks = []
        for text in texts:
            try:
                tasks.append(decode_task(text))
            except ValueError:
                continue  # garbage from the master: its lease will expire there
        unknown = {t.robots for t in tasks if t.robots is not None}
        unknown = {i for i in unknown if not self.robots.knows(i)}
        if unknown:  # robots.txt verdicts fetched by other workers: asked for once
            for item in self.channel.robots(self.name, sorted(unknown)):
                verdict = check_verdict(item.get("verdict")) if isinstance(item, dict) else None
                if verdict is not None and type(item.get("id")) is int:
                    self.robots.learn(item["id"], verdict)
        for task in tasks:
            self._held[task.id] = task.token
            self._view.leased(task.id)
            if task.robots is None and not self.policy.ignore_robots:
                self._probes.add(task.id)
            self._todo.put(task)

    def _send_found(self) -> None:
        items = self._found.take()
        if items:
            self.channel.robots_found(self.name, items)
            self._probes.difference_update(item["id"] for item in items)

    def _send_results(self) -> None:
        rows = self._pacing.results()
        # A thread queues a probe's verdict before its row: sent now, after the rows were
        # taken, it reaches the master first. A row ahead of its verdict would end the
        # probe with no verdict kept, and the origin's next URL would fetch robots.txt again.
        self._send_found()
        # Tasks of a host that answered 429/503 since they were queued (lane.py): after
        # that answer, so the master has its backoff when they are back in its queue.
        handed_back = drained(self._todo.handed_back)
        if rows:
            self._put(self._after_disk_error(rows))
        self._release(handed_back)

    def _put(self, rows: list[dict]) -> None:
        now = time.monotonic()
        for row in rows:  # how long ago its latest request went out: the host's spacing
            sent = row.pop("_request_at", None)
            if sent is not None:
                row["request_age"] = round(min(max(0.0, now - sent), c.RETRY_AFTER_MAX), 3)
        self.channel.put(self.name, [encode_result(row) for row in rows])
        for row in rows:
            answered = self._held.answered(row["id"], row["token"])
            self._probes.discard(row["id"])
            if row.get("robots_late") or (not answered and row["status"] not in c.SUCCESS_STATUSES):
                continue  # leased again (it counts when it comes back), or one the master ignores
            self.tally.count(row)
        self._bar.update(len(rows))
        total, good = self.tally.totals()
        self._bar.set_postfix(in_flight=self.held, ok=good, failed=total - good, refresh=False)

    def _after_disk_error(self, rows: list[dict]) -> list[dict]:
        """The first disk_error is reported; URLs that fail after it go back to the queue,
        for a host whose disk works, instead of each failing the same way."""
        failed = [row for row in rows if row["status"] == c.DISK_ERROR]
        if not failed:
            return rows
        if self.disk_error is None:
            self.disk_error = failed.pop(0)["error"]
        self._release([row["id"] for row in failed])
        return [row for row in rows if row not in failed]

    def _release(self, ids: list[int]) -> None:
        """Hand tasks back to the master (not started: they cost no attempt)."""
        if ids:
            self.channel.release(self.name, ids)
            self._held.forget(ids)
            self._probes.difference_update(ids)

    def _download_loop(self) -> None:
        try:
            ctx = self.context()
            while (task := self._todo.get()) is not None:
                if self.stop.is_set():  # the comms thread may not have handed back yet
                    self._todo.handed_back.put(task.id)  # it releases these (not started)
                elif self._held.may_start(self._view, task.id, task.token):  # else another's
                    self._download(task, ctx)
        finally:
            self._verifiers.downloader_done()

    def _download(self, task: Task, ctx: Context) -> None:
        """One URL: its row queued, or its body handed to an idle verifier (else checked
        here). A call of its own: a thread waiting for a task holds no body (a review's:
        a loop variable kept each thread's last one, 3 x --threads bodies alive)."""
        outcome = start(task, ctx)
        if isinstance(outcome, Fetched):
            if not self._verifiers.hand(outcome, ctx):
                self._done.put(finish(outcome, ctx))
            return
        late = outcome.get("robots_late")  # the time went to robots.txt: no sign of the host
        if outcome.get("http_status") in c.OVERLOADED or (no_answer(outcome) and not late):
            hosts = {host_of(task.url), host_of(outcome.get("final_url") or task.url)}
            for host in hosts:  # and a redirect's target, whose answer it was (lane.py)
                self._todo.back_off(host, outcome.get("retry_after"))
        self._done.put(outcome)

    def context(self) -> Context:
        """What one download thread works with: its own sessions, the run's shared parts."""
        return Context(
            session=make_session(self.policy, self.resolver),
            policy=self.policy,
            store=self.store,
            worker=self.name,
            robots=self.robots,
            robots_session=make_session(replace(self.policy, retries=0), self.resolver),
            found=self._found.put,
            host=self.config.host_id or socket.gethostname(),
        )

    @property
    def held(self) -> int:
        """How many leased tasks this worker has not reported yet."""
        return len(self._held)

    @property
    def holds_live_leases(self) -> bool:
        """Does this worker hold tasks the master may still count as its own? Not once the
        master left them unconfirmed a whole lease (a freeze, a partition): it expired them."""
        return bool(self._held) and not self._view.expired()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
