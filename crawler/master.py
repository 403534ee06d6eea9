"""The master: reads the lists, serves the queues, accounts for every URL.

Run it as ``python -m crawler.master LIST [LIST ...]``. It plans the run (resuming
from the manifest of earlier runs), serves the task and result queues over
``multiprocessing.managers``, optionally starts local workers (the same command a
remote host runs), journals each result in the manifest as it arrives, and ends when
every URL has a final status. SIGINT/SIGTERM: stop handing out work, keep collecting
answers for ``--grace`` seconds, then exit with EXIT_INTERRUPTED.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

from tqdm import tqdm

from crawler import constants as c
from crawler.config import MasterConfig
from crawler.exceptions import CrawlerError
from crawler.manifest import (
    FIELDS,
    ManifestWriter,
    current_lines,
    make_row,
    read_manifest,
    write_csv,
)
from crawler.plan import Plan, plan_run
from crawler.protocol import decode_result
from crawler.report import write_report
from crawler.scheduler import ResultQueue, RunControl, TaskBoard, TaskQueue
from crawler.server import QueueServer
from crawler.storage import ensure_writable
from crawler.summary import RunStats, format_summary, now_iso, write_summary
from crawler.urls import check_readable

log = logging.getLogger("crawler")

TICK = 0.5  # seconds between lease checks while results are quiet
LINGER = 5.0  # seconds the master waits for its workers to hear the run is over
INBOX_BATCHES = 16  # result batches waiting for the master loop, at most
MAX_BATCHES_PER_WRITE = 8  # result batches folded into one manifest write (group commit)
# What a reused or revalidated (304) image keeps from the row that stored it.
STORED_FIELDS = ("path", "sha256", "bytes", "width", "height", "format", "content_type")
STORED_FIELDS += ("final_url", "etag", "last_modified", "fetched_at")


class Master:
    """One run of the master, from the lists to the summary."""

    def __init__(self, config: MasterConfig) -> None:
        self.config = config
        self.run_id = uuid.uuid4().hex[:12]
        self.started = time.monotonic()
        self.serving = self.started  # when workers could first connect (after planning)
        # Bounded: when the master falls behind, workers' puts wait (backpressure) rather
        # than piling results up in memory.
        self.inbox: queue.Queue[tuple[str, list[str]]] = queue.Queue(maxsize=INBOX_BATCHES)
        self.local: list[subprocess.Popen] = []
        self.stop_signal: int | None = None
        self.stats = RunStats(self.run_id, 0)

    def run(self) -> int:
        cfg = self.config
        self._install_stop_handlers()
        check_readable(cfg.lists)
        ensure_writable(cfg.output)
        server = QueueServer(cfg.bind, cfg.port, cfg.authkey)
        try:
            manifest = ManifestWriter(cfg.manifest)
        except BaseException:
            server.close()
            raise
        plan = None
        try:
            fresh = manifest.empty  # nothing from earlier runs: no resume, no compaction

            def write(rows: list[dict[str, Any]]) -> None:
                manifest.write(rows)
                self.stats.add(rows)

            journal = None if fresh else cfg.manifest
            spool = cfg.manifest.parent  # the URL spool goes to disk, never to a RAM /tmp
            plan = plan_run(cfg.lists, self.run_id, write, journal, cfg.resume, spool)
            code = self._serve(plan, server, manifest)
            if code == c.EXIT_OK and not fresh:
                store = plan.store
                manifest.compact(current_lines(cfg.manifest, self.run_id, store.find, len(store)))
        finally:
            server.close()
            self._stop_local_workers()
            manifest.close()
            if plan is not None:
                plan.close()
        plan = None  # its arrays (hundreds of MB for a huge list) go before the report
        if cfg.csv is not None:
            write_csv(read_manifest(cfg.manifest), cfg.csv)
        summary = self.stats.as_dict(code, time.monotonic() - self.started, cfg.manifest)
        write_summary(summary, cfg.manifest)
        report = self._write_report()
        if not cfg.quiet:
            print(format_summary(summary, cfg.csv, report), flush=True)
        return code

    def _write_report(self) -> Path | None:
        """The HTML run report beside the manifest; a failure to write it is only a warning."""
        if not self.config.report:
            return None
        try:
            return write_report(self.config.manifest, self.config.output)
        except CrawlerError as exc:
            log.warning("no run report: %s", exc)
            return None

    def _serve(self, plan: Plan, server: QueueServer, manifest: ManifestWriter) -> int:
        cfg = self.config
        board = TaskBoard(
            plan.store,
            plan.state,
            cfg.policy.lease_seconds,
            cfg.max_attempts,
            hint=plan.hint,
            limits=cfg.limits,
        )
        self.stats.total = plan.total
        self.stats.counts.update(plan.carried)
        run_info = {"run_id": self.run_id, "policy": cfg.policy.to_json()}
        server.start(
            {
                "task_queue": TaskQueue(board),
                "result_queue": ResultQueue(self.inbox),
                "run_control": RunControl(board, run_info),
            }
        )
        self.serving = time.monotonic()  # --idle-timeout counts from here, not from planning
        self._announce(server.port)
        if plan.todo:  # else there is nothing for them to do
            self._start_local_workers(server.port)
        code = self._collect(plan, board, manifest)
        board.finish()
        self._linger(board)
        return code

    # --- the run ---
    def _collect(self, plan: Plan, board: TaskBoard, manifest: ManifestWriter) -> int:
        """Take results until every URL is final, the run is stopped, or it cannot finish."""
        remaining = plan.todo
        done = plan.total - remaining
        disable = True if not self.config.progress else None  # None: off when not a TTY
        bar = tqdm(total=plan.total, initial=done, unit="url", dynamic_ncols=True, disable=disable)
        # Without a bar (cron, --no-progress), a line every --progress-interval seconds.
        interval = self.config.progress_interval
        next_log = time.monotonic() + interval if bar.disable and not self.config.quiet else None
        next_tick, grace_end, started = 0.0, None, time.monotonic()
        with bar:
            while remaining:
                if self.stop_signal is not None and grace_end is None:
                    grace_end = self._begin_stop(board)
                if grace_end is not None and (time.monotonic() > grace_end or not board.leased()):
                    return c.EXIT_INTERRUPTED
                rows = self._next_rows(plan, board)
                tick = time.monotonic() >= next_tick
                if tick:
                    rows += self._lost_rows(plan, board)
                    next_tick = time.monotonic() + TICK
                if rows:  # journalled before anything may end the run
                    manifest.write(rows)
                    remaining -= len(rows)
                    self.stats.add(rows)
                    bar.update(len(rows))
                    bar.set_postfix(self._postfix(board), refresh=False)
                if next_log is not None and time.monotonic() >= next_log:
                    next_log += interval
                    self._log_progress(plan, remaining, board, started)
                if tick and remaining and not self._workers_left(board):
                    return c.EXIT_INCOMPLETE
        return c.EXIT_OK

    def _log_progress(self, plan: Plan, remaining: int, board: TaskBoard, started: float) -> None:
        done = plan.total - remaining
        rate = (plan.todo - remaining) / max(time.monotonic() - started, 1e-9)
        counts = ", ".join(f"{k} {v}" for k, v in self._postfix(board).items())
        log.info("progress: %d/%d URLs, %.1f URLs/s, %s", done, plan.total, rate, counts)

    def _begin_stop(self, board: TaskBoard) -> float:
        board.drain()
        for proc in self.local:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        grace = self.config.grace
        log.warning("stopping: no new work handed out; waiting up to %g s for answers", grace)
        return time.monotonic() + grace

    def _next_rows(self, plan: Plan, board: TaskBoard) -> list[dict[str, Any]]:
        """Rows for every batch waiting in the inbox (one manifest write, one fsync, for all)."""
        try:
            batches = [self.inbox.get(timeout=TICK)]
        except queue.Empty:
            return []
        while len(batches) < MAX_BATCHES_PER_WRITE:
            try:
                batches.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        rows = []
        now = now_iso()
        for worker, results in batches:
            for text in results:
                row = self._accept(plan, board, worker, text, now)
                if row is not None:
                    rows.append(row)
        return rows

    def _accept(
        self, plan: Plan, board: TaskBoard, worker: str, text: str, now: str
    ) -> dict[str, Any] | None:
        """The manifest row for one result string, or None when it is ignored."""
        try:
            result = decode_result(text)
        except ValueError as exc:
            log.warning("ignored a result from %s: %s", worker, exc)
            return None
        task_id = result["id"]
        known = 0 <= task_id < len(plan.store)
        url, source, extra = plan.store.record(task_id) if known else ("", "", None)
        if url != result["url"]:
            log.warning("ignored a result from %s for a URL this run never sent", worker)
            return None
        prior = plan.prior(task_id)
        if (result["reused"] or result["status"] == c.NOT_MODIFIED) and prior is None:
            log.warning("ignored a result from %s reusing a file never stored", worker)
            return None
        if not board.complete(task_id, worker, result["http_status"]):
            return None  # a late answer: the URL already has its final status
        return self._row(board, task_id, result, prior, source, now, extra)

    def _row(
        self,
        board: TaskBoard,
        task_id: int,
        result: dict[str, Any],
        prior: dict[str, Any] | None,
        source: str,
        now: str,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        fields = {k: v for k, v in result.items() if k in FIELDS}
        if prior is not None and (result["reused"] or result["status"] == c.NOT_MODIFIED):
            kept = {k: prior.get(k) for k in STORED_FIELDS}
            fields = kept | {k: v for k, v in fields.items() if v is not None}
            if result["status"] == c.NOT_MODIFIED:
                fields["fetched_at"] = now
        elif result["status"] == c.OK:
            fields["fetched_at"] = now
        return make_row(
            **fields,
            leases=board.attempts(task_id),
            source=source,
            run_id=self.run_id,
            finished_at=now,
            extra=extra,
        )

    def _lost_rows(self, plan: Plan, board: TaskBoard) -> list[dict[str, Any]]:
        return [
            make_row(
                url=plan.store.url(task_id),
                status=c.WORKER_LOST,
                error=f"handed out {board.attempts(task_id)} times without an answer",
                leases=board.attempts(task_id),
                source=plan.store.source(task_id),
                run_id=self.run_id,
                finished_at=now_iso(),
                extra=plan.store.extra(task_id),
            )
            for task_id in board.expire()
        ]

    def _workers_left(self, board: TaskBoard) -> bool:
        """False when the run cannot finish: its own workers all exited and no remote one is
        active, or no worker at all has been active for --idle-timeout seconds."""
        idle = self.config.idle_timeout
        if idle and time.monotonic() - board.last_activity(since=self.serving) > idle:
            log.error("no worker has been active for %g s (--idle-timeout); giving up", idle)
            return False
        if not self.local or any(p.poll() is None for p in self.local):
            return True
        if board.active_workers(within=self.config.policy.lease_seconds):
            return True
        codes = sorted({p.returncode for p in self.local})
        log.error("all local workers exited (codes %s) before the run finished", codes)
        return False

    def _linger(self, board: TaskBoard) -> None:
        """Keep serving briefly, so that workers (ours too, even late ones) hear that the run
        is over instead of finding a closed port."""
        deadline = time.monotonic() + LINGER
        while time.monotonic() < deadline:
            local_done = all(p.poll() is not None for p in self.local)
            if local_done and board.all_told(within=LINGER):
                return
            time.sleep(0.05)

    def _install_stop_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.stop_signal is not None:
                raise KeyboardInterrupt  # a second signal: stop now
            self.stop_signal = signum

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    # --- local workers ---
    def _start_local_workers(self, port: int) -> None:
        cfg = self.config
        if cfg.local_workers <= 0:
            return
        host = "127.0.0.1" if cfg.bind in ("", "0.0.0.0") else cfg.bind
        command = [
            sys.executable, "-m", "crawler.worker", "--server", host, "--port", str(port),
            "--threads", str(cfg.worker_threads), "--output", str(cfg.output), "--quiet",
        ]  # fmt: skip
        env = dict(os.environ)
        if cfg.authkey_file:
            command += ["--authkey-file", cfg.authkey_file]
        else:
            env[c.AUTHKEY_ENV] = cfg.authkey.decode()
        for _ in range(cfg.local_workers):
            # A session of their own: a terminal's Ctrl-C reaches the master alone, which then
            # stops them with one SIGTERM (a second signal would make them abort).
            self.local.append(
                subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
            )

    def _stop_local_workers(self) -> None:
        deadline = time.monotonic() + 10
        for proc in self.local:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    # --- reporting ---
    def _announce(self, port: int) -> None:
        cfg = self.config
        where = f"{cfg.bind or '*'}:{port}"
        print(f"crawler: serving run {self.run_id} on {where}", file=sys.stderr, flush=True)
        if cfg.authkey_origin == "generated":
            host = cfg.bind if cfg.bind not in ("", "0.0.0.0") else socket.gethostname()
            print(
                f"crawler: no authkey given; generated one and saved it to {cfg.authkey_file} "
                "(mode 0600; later runs reuse it).\ncrawler: start workers on other hosts with:\n"
                f"    {c.AUTHKEY_ENV}={cfg.authkey.decode()} "
                f"python -m crawler.worker --server {host} --port {port}",
                file=sys.stderr,
                flush=True,
            )
        elif cfg.authkey_origin == "reused":
            print(
                f"crawler: no authkey given; using the one generated earlier in {cfg.authkey_file}",
                file=sys.stderr,
                flush=True,
            )

    def _postfix(self, board: TaskBoard) -> dict[str, int]:
        workers = len(board.active_workers(within=10))
        return {"ok": self.stats.succeeded, "failed": self.stats.failed, "workers": workers}


def main(argv: list[str] | None = None) -> int:
    from crawler.cli import run_master

    return run_master(argv)


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy, so every class has one identity.
    from crawler.master import main as _main

    sys.exit(_main())
