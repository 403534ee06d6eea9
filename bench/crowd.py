"""A crowd of workers against one master: how fast they connect, what the master pays.

    python bench/crowd.py [--workers 200] [--connect 300] [--backlog 16,1024] [--urls 20000]

Two measurements, each with the listen backlog of BaseManager's own server (16) and the
crawler's default (1024), interleaved:

- connect: N threads open a real ``Channel`` (manager connection, HMAC handshake,
  three proxies) at once; seconds until every one has said hello;
- serve: ``--workers`` simulated workers (threads, each with its own Channel) lease
  batches and put results as fast as they can until ``--urls`` are answered; results
  per second, and the master's threads and RSS at the peak.

The master here is the real ``QueueServer`` + ``LeaseBoard`` + ``ResultIntake`` path,
in this process (no downloads: the master's side is what a crowd loads).
"""

from __future__ import annotations

import argparse
import queue
import re
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.master.endpoints import ResultQueue, RunControl, TaskQueue  # noqa: E402
from crawler.master.leases import LeaseBoard  # noqa: E402
from crawler.master.server import QueueServer  # noqa: E402
from crawler.protocol import decode_task, encode_result  # noqa: E402
from crawler.worker.channel import Channel  # noqa: E402

KEY = b"crowd-benchmark-key-0123456789"


def proc_status(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text)[1])  # type: ignore[index]


def start_server(urls: int, backlog: int) -> tuple[QueueServer, LeaseBoard, queue.Queue]:
    board = LeaseBoard([f"http://h{i % 97}.example/{i}.jpg" for i in range(urls)], None, 60, 3)
    inbox: queue.Queue = queue.Queue(maxsize=64)
    server = QueueServer("127.0.0.1", 0, KEY, backlog)
    server.start(
        {
            "task_queue": TaskQueue(board),
            "result_queue": ResultQueue(inbox),
            "run_control": RunControl(board, {"run_id": "crowd", "policy": "{}"}),
        }
    )
    return server, board, inbox


def connect_all(count: int, backlog: int) -> float:
    server, _board, _inbox = start_server(10, backlog)
    ready = threading.Barrier(count + 1)
    done: list[float] = []
    errors: list[str] = []

    def one(i: int) -> None:
        ready.wait()
        try:
            channel = Channel("127.0.0.1", server.port, KEY, 60.0)
            channel.hello(f"w{i}", {})
            done.append(time.monotonic())
        except Exception as exc:  # reported below, not raised in a thread
            errors.append(repr(exc))

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.monotonic()
    for thread in threads:
        thread.join(120)
    server.close()
    if errors:
        print(f"  {len(errors)} failed, e.g. {errors[0]}")
    return max(done) - start if done else float("nan")


def serve(workers: int, urls: int, backlog: int) -> tuple[float, int, int]:
    server, board, inbox = start_server(urls, backlog)
    answered = [0]
    peak = {"threads": 0, "rss": 0}
    stop = threading.Event()

    def master_loop() -> None:
        while answered[0] < urls and not stop.is_set():
            try:
                worker, results = inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            for text in results:
                task_id = int(text.split('"id":', 1)[1].split(",", 1)[0])
                board.complete(task_id, worker)
                answered[0] += 1
            peak["threads"] = max(peak["threads"], threading.active_count())
            peak["rss"] = max(peak["rss"], proc_status("VmRSS"))

    def worker(i: int) -> None:
        channel = Channel("127.0.0.1", server.port, KEY, 60.0)
        name = f"w{i}"
        while not stop.is_set():
            answer = channel.get(name, 32, 0.2)
            tasks = [decode_task(t) for t in answer["tasks"]]
            if answer["over"] or (not tasks and answered[0] >= urls):
                return
            fields = [{"id": t.id, "url": t.url, "worker": name, "status": "ok"} for t in tasks]
            if fields:
                channel.put(name, [encode_result(f | {"token": 1}) for f in fields])

    loop = threading.Thread(target=master_loop, daemon=True)
    loop.start()
    start = time.monotonic()
    crowd = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in crowd:
        thread.start()
    loop.join(300)
    elapsed = time.monotonic() - start
    stop.set()
    board.finish()
    server.close()
    return answered[0] / elapsed, peak["threads"], peak["rss"] // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--connect", type=int, default=300)
    parser.add_argument("--urls", type=int, default=20000)
    parser.add_argument("--backlog", default="16,1024")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    backlogs = [int(b) for b in args.backlog.split(",")]
    times: dict[int, list[float]] = {b: [] for b in backlogs}
    for round_ in range(args.rounds):
        for backlog in backlogs if round_ % 2 == 0 else reversed(backlogs):
            times[backlog].append(connect_all(args.connect, backlog))
    for backlog, values in times.items():
        print(
            f"connect {args.connect} at once, backlog {backlog:>5}: "
            f"{statistics.median(values):6.2f} s (median of {len(values)}: "
            + ", ".join(f"{v:.2f}" for v in values)
            + ")"
        )
    rate, threads, rss = serve(args.workers, args.urls, max(backlogs))
    print(
        f"serve {args.workers} workers, {args.urls} URLs: {rate:,.0f} results/s, "
        f"{threads} threads at the peak, {rss} MB RSS (this process: master + crowd)"
    )


if __name__ == "__main__":
    main()
