"""The worker: takes URLs from the master, downloads, verifies, stores, reports.

Run it as ``python -m crawler.worker --server HOST``. One thread talks to the master
(tasks in batches, results in batches, lease heartbeats); ``--threads`` download
threads each own a ``requests.Session``. A bad URL never stops the worker: every
failure, expected or not, becomes the status string for that URL.
"""

from __future__ import annotations

import hashlib
import os
import queue
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from crawler import constants as c
from crawler import storage, verify
from crawler.config import Policy, WorkerConfig
from crawler.exceptions import MasterGone, ProtocolError, URLFailure
from crawler.fetch import fetch, make_session
from crawler.protocol import Channel, Task, decode_task, encode_result

POLL_BUSY = 0.2  # seconds a get() may wait while this worker still holds work
POLL_IDLE = 2.0  # ... and while it holds none


def process(task: Task, session, policy: Policy, output: Path, worker: str) -> dict:
    """Turn one task into its result fields; never raises."""
    start = time.monotonic()
    row: dict = {"id": task.id, "url": task.url, "worker": worker, "attempts": 1}
    try:
        download = fetch(session, task.url, policy)
        row.update(
            http_status=download.http_status,
            final_url=download.final_url,
            content_type=download.content_type,
            attempts=download.attempts,
            bytes=len(download.body),
        )
        info = verify.inspect(download.body, policy)
        row.update(width=info.width, height=info.height, format=info.format)
        relative = storage.relative_path(task.url, info.extension)
        storage.store(output, relative, download.body)
        row.update(status=c.OK, path=relative, sha256=hashlib.sha256(download.body).hexdigest())
    except URLFailure as failure:
        row.update(status=failure.status, error=str(failure))
        if failure.http_status is not None:
            row["http_status"] = failure.http_status
    except Exception as exc:  # a bug must not kill the worker: report it as data
        row.update(status=c.WORKER_ERROR, error=f"{type(exc).__name__}: {exc}"[:500])
    row["elapsed_s"] = round(time.monotonic() - start, 3)
    return row


class Worker:
    """One worker process: a comms loop in the calling thread plus download threads."""

    def __init__(self, config: WorkerConfig, channel: Channel) -> None:
        self.config = config
        self.channel = channel
        self.policy = Policy()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.counts: Counter[str] = Counter()
        self.bytes = 0
        self._todo: queue.Queue[Task | None] = queue.Queue()
        self._done: queue.Queue[dict] = queue.Queue()
        self._held: set[int] = set()  # leased to us, not yet reported

    def run(self, policy: Policy) -> None:
        """Work until the master says the run is over. Raises MasterGone if it vanishes."""
        self.policy = policy
        verify.configure(policy)
        threads = [
            threading.Thread(target=self._download_loop, name=f"download-{i}", daemon=True)
            for i in range(self.config.threads)
        ]
        for thread in threads:
            thread.start()
        try:
            self._comms_loop()
        finally:
            for _ in threads:
                self._todo.put(None)

    def _comms_loop(self) -> None:
        over = False
        last_renew = time.monotonic()
        while not over:
            self._send_results()
            want = 2 * self.config.threads - len(self._held)
            if want > 0:
                answer = self.channel.get(self.name, want, POLL_BUSY if self._held else POLL_IDLE)
                over = bool(answer.get("over"))
                for text in answer.get("tasks", []):
                    self._accept(text)
            else:
                self._wait_for_result(POLL_BUSY)
            if self._held and time.monotonic() - last_renew > self.policy.lease_seconds / 4:
                self.channel.renew(self.name, sorted(self._held))
                last_renew = time.monotonic()
        self._send_results()

    def _accept(self, text: str) -> None:
        try:
            task = decode_task(text)
        except ValueError:
            return  # the master sent garbage: its lease will expire and it will say so
        self._held.add(task.id)
        self._todo.put(task)

    def _wait_for_result(self, timeout: float) -> None:
        try:
            row = self._done.get(timeout=timeout)
        except queue.Empty:
            return
        self._done.put(row)

    def _send_results(self) -> None:
        rows: list[dict] = []
        while True:
            try:
                rows.append(self._done.get_nowait())
            except queue.Empty:
                break
        if not rows:
            return
        self.channel.put(self.name, [encode_result(row) for row in rows])
        for row in rows:
            self._held.discard(row["id"])
            self.counts[row["status"]] += 1
            if row["status"] == c.OK:
                self.bytes += row.get("bytes") or 0

    def _download_loop(self) -> None:
        session = make_session(self.policy)
        while True:
            task = self._todo.get()
            if task is None:
                return
            self._done.put(process(task, session, self.policy, self.config.output, self.name))

    @property
    def held(self) -> int:
        """How many leased tasks this worker has not reported yet."""
        return len(self._held)

    def summary(self, elapsed: float) -> str:
        total = sum(self.counts.values())
        ok = self.counts.get(c.OK, 0)
        return (
            f"worker {self.name}: {total} URLs in {elapsed:.1f} s, {ok} ok, {total - ok} failed, "
            f"{self.bytes / 1e6:.1f} MB stored"
        )


def serve(config: WorkerConfig) -> int:
    """Connect, take the run's policy, work the run, and say how it went."""
    storage.ensure_writable(config.output)
    started = time.monotonic()
    channel = Channel(config.server, config.port, config.authkey, config.connect_timeout)
    worker = Worker(config, channel)
    run_info = channel.hello(
        worker.name, {"host": socket.gethostname(), "pid": os.getpid(), "threads": config.threads}
    )
    try:
        policy = Policy.from_json(str(run_info.get("policy")))
    except ValueError as exc:
        raise ProtocolError(
            f"the master at {channel.where} sent an unusable policy: {exc}"
        ) from None
    try:
        worker.run(policy)
        channel.bye(worker.name)
    except MasterGone:
        if worker.held:
            raise  # work in hand was lost with the master; its rerun will redo it
        # Holding nothing, we have nothing to lose: the master finished or will resume.
        if not config.quiet:
            print(f"crawler-worker: the master at {channel.where} went away", file=sys.stderr)
    if not config.quiet:
        print(worker.summary(time.monotonic() - started))
    return c.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    from crawler.cli import run_worker

    return run_worker(argv)


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy, so every class has one identity.
    from crawler.worker import main as _main

    sys.exit(_main())
