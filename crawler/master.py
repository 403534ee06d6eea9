"""The master: reads the lists, serves the queues, accounts for every URL.

Run it as ``python -m crawler.master LIST [LIST ...]``. It plans the run, serves the
task and result queues over ``multiprocessing.managers``, optionally starts local
workers (the same command a remote host runs), writes each result to the manifest as
it arrives, and ends when every URL has a final status.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from tqdm import tqdm

from crawler import constants as c
from crawler.config import MasterConfig
from crawler.manifest import FIELDS, ManifestWriter, make_row, read_manifest, write_csv
from crawler.plan import Plan, plan_run
from crawler.protocol import QueueServer, decode_result
from crawler.scheduler import ResultQueue, RunControl, TaskBoard, TaskQueue
from crawler.storage import ensure_writable
from crawler.urls import check_readable

log = logging.getLogger("crawler")

TICK = 0.5  # seconds between lease checks while results are quiet
LINGER = 5.0  # seconds the master waits for its workers to hear the run is over


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Master:
    """One run of the master, from the lists to the summary."""

    def __init__(self, config: MasterConfig) -> None:
        self.config = config
        self.run_id = uuid.uuid4().hex[:12]
        self.counts: Counter[str] = Counter()
        self.bytes = 0
        self.started = time.monotonic()
        self.inbox: queue.Queue[tuple[str, list[str]]] = queue.Queue()
        self.local: list[subprocess.Popen] = []

    def run(self) -> int:
        cfg = self.config
        check_readable(cfg.lists)
        ensure_writable(cfg.output)
        plan = plan_run(cfg.lists, self.run_id)
        board = TaskBoard(
            plan.urls, list(range(len(plan.urls))), cfg.policy.lease_seconds, cfg.max_attempts
        )
        run_info = {"run_id": self.run_id, "policy": cfg.policy.to_json()}
        server = QueueServer(
            cfg.bind,
            cfg.port,
            cfg.authkey,
            {
                "task_queue": TaskQueue(board),
                "result_queue": ResultQueue(self.inbox),
                "run_control": RunControl(board, run_info),
            },
        )
        manifest = ManifestWriter(cfg.manifest)
        try:
            manifest.write(plan.decided)
            self.counts.update(row["status"] for row in plan.decided)
            server.start()
            self._announce(server.port)
            self._start_local_workers(server.port)
            complete = self._collect(plan, board, manifest)
            board.finish()
            self._linger(board)
        finally:
            server.close()
            manifest.close()
            self._stop_local_workers()
        if cfg.csv is not None:
            write_csv(read_manifest(cfg.manifest), cfg.csv)
        self._print_summary(plan, complete)
        return c.EXIT_OK if complete else c.EXIT_INCOMPLETE

    # --- the run ---
    def _collect(self, plan: Plan, board: TaskBoard, manifest: ManifestWriter) -> bool:
        """Take results until every URL is final; False if the run cannot finish."""
        remaining = len(plan.urls)
        bar = tqdm(
            total=plan.total,
            initial=len(plan.decided),
            unit="url",
            dynamic_ncols=True,
            disable=True if not self.config.progress else None,  # None: off when not a TTY
        )
        next_tick = 0.0
        with bar:
            while remaining:
                rows = self._next_rows(plan, board)
                if time.monotonic() >= next_tick:
                    rows += self._lost_rows(plan, board)
                    next_tick = time.monotonic() + TICK
                    if not self._workers_left(board):
                        return False
                if rows:
                    manifest.write(rows)
                    remaining -= len(rows)
                    bar.update(len(rows))
                    self._count(rows)
                    bar.set_postfix(self._postfix(board), refresh=False)
        return True

    def _next_rows(self, plan: Plan, board: TaskBoard) -> list[dict[str, Any]]:
        try:
            worker, results = self.inbox.get(timeout=TICK)
        except queue.Empty:
            return []
        rows = []
        for text in results:
            try:
                result = decode_result(text)
            except ValueError as exc:
                log.warning("ignored a result from %s: %s", worker, exc)
                continue
            task_id = result["id"]
            if not 0 <= task_id < len(plan.urls) or plan.urls[task_id] != result["url"]:
                log.warning("ignored a result from %s for a URL this run never sent", worker)
                continue
            if not board.complete(task_id, worker):
                continue  # a late answer: the URL already has its final status
            fields = {k: v for k, v in result.items() if k in FIELDS}
            rows.append(
                make_row(
                    **fields,
                    leases=board.attempts(task_id),
                    source=plan.sources[task_id],
                    run_id=self.run_id,
                    finished_at=now_iso(),
                )
            )
        return rows

    def _lost_rows(self, plan: Plan, board: TaskBoard) -> list[dict[str, Any]]:
        return [
            make_row(
                url=plan.urls[task_id],
                status=c.WORKER_LOST,
                error=f"handed out {board.attempts(task_id)} times without an answer",
                leases=board.attempts(task_id),
                source=plan.sources[task_id],
                run_id=self.run_id,
                finished_at=now_iso(),
            )
            for task_id in board.expire()
        ]

    def _workers_left(self, board: TaskBoard) -> bool:
        """False when this run's own workers have all exited and no remote one is active."""
        if not self.local or any(p.poll() is None for p in self.local):
            return True
        if board.active_workers(within=self.config.policy.lease_seconds):
            return True
        codes = sorted({p.returncode for p in self.local})
        log.error("all local workers exited (codes %s) before the run finished", codes)
        return False

    def _linger(self, board: TaskBoard) -> None:
        """Keep serving briefly so that connected workers hear 'over' instead of a dead socket."""
        deadline = time.monotonic() + LINGER
        while time.monotonic() < deadline and not board.all_told(within=LINGER):
            time.sleep(0.05)

    # --- local workers ---
    def _start_local_workers(self, port: int) -> None:
        cfg = self.config
        if cfg.local_workers <= 0:
            return
        host = "127.0.0.1" if cfg.bind in ("", "0.0.0.0", "::") else cfg.bind
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
            self.local.append(subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL))

    def _stop_local_workers(self) -> None:
        deadline = time.monotonic() + 10
        for proc in self.local:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(timeout=5)

    # --- reporting ---
    def _announce(self, port: int) -> None:
        cfg = self.config
        where = f"{cfg.bind or '*'}:{port}"
        if not cfg.quiet:
            print(f"crawler: serving run {self.run_id} on {where}", file=sys.stderr)
        if cfg.authkey_generated:
            host = cfg.bind if cfg.bind not in ("", "0.0.0.0", "::") else socket.getfqdn()
            print(
                f"crawler: no authkey given; generated one and saved it to {cfg.authkey_file} "
                "(mode 0600).\ncrawler: start workers on other hosts with:\n"
                f"    {c.AUTHKEY_ENV}={cfg.authkey.decode()} "
                f"python -m crawler.worker --server {host} --port {port}",
                file=sys.stderr,
            )

    def _count(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.counts[row["status"]] += 1
            if row["status"] == c.OK:
                self.bytes += row.get("bytes") or 0

    def _postfix(self, board: TaskBoard) -> dict[str, int]:
        ok = self.counts.get(c.OK, 0)
        failed = sum(n for s, n in self.counts.items() if s in c.FAILED_STATUSES)
        return {"ok": ok, "failed": failed, "workers": len(board.active_workers(within=10))}

    def _print_summary(self, plan: Plan, complete: bool) -> None:
        if self.config.quiet:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        ok = self.counts.get(c.OK, 0)
        lines = [
            f"crawler: run {self.run_id} {'finished' if complete else 'did NOT finish'} "
            f"in {elapsed:.1f} s: {plan.total} URLs"
        ]
        lines += [f"  {status:<18}{n:>9}" for status, n in sorted(self.counts.items())]
        missing = plan.total - sum(self.counts.values())
        if missing:
            lines.append(f"  {'(no status yet)':<18}{missing:>9}  rerun the same command to resume")
        lines.append(f"  {ok / elapsed:.1f} images/s, {self.bytes / 1e6:.1f} MB stored")
        lines.append(f"  manifest: {self.config.manifest}")
        if self.config.csv is not None:
            lines.append(f"  csv:      {self.config.csv}")
        print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    from crawler.cli import run_master

    return run_master(argv)


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy, so every class has one identity.
    from crawler.master import main as _main

    sys.exit(_main())
