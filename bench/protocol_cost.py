"""Cost of one manager proxy call with each serializer, and of moving URLs in batches.

Measured in one run, interleaved (pickle, xmlrpclib, pickle, ...), against the crawler's
own server on loopback: the figure behind choosing ``xmlrpclib`` as the wire format.
Run: ``python bench/protocol_cost.py``.
"""

from __future__ import annotations

import json
import queue
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.master import server
from crawler.master.endpoints import ResultQueue, RunControl, TaskQueue
from crawler.master.leases import LeaseBoard
from crawler.worker import channel as worker_channel

KEY = b"bench-key-0123456789abcdef"
CALLS = 2000
ROUNDS = 5


def one_round(serializer: str, batch: int) -> float:
    """Seconds per call of TaskQueue.renew with ``batch`` ids, through a real proxy."""
    with (
        mock.patch.object(worker_channel, "SERIALIZER", serializer),
        mock.patch.object(server, "SERIALIZER", serializer),
    ):
        board = LeaseBoard(["http://x/"] * batch, list(range(batch)), 600, 3)
        srv = server.QueueServer("127.0.0.1", 0, KEY)
        srv.start(
            {
                "task_queue": TaskQueue(board),
                "result_queue": ResultQueue(queue.Queue()),
                "run_control": RunControl(board, {"run_id": "b", "policy": "{}"}),
            }
        )
        channel = worker_channel.Channel("127.0.0.1", srv.port, KEY, 5)
        results = [json.dumps({"id": i, "url": "http://x/", "status": "ok"}) for i in range(batch)]
        channel.put("w", results)
        start = time.perf_counter()
        for _ in range(CALLS):
            channel.put("w", results)
        elapsed = (time.perf_counter() - start) / CALLS
        srv.close()
        return elapsed


def main() -> None:
    print(
        f"{'serializer':<10} {'batch':>6} {'µs/call (median)':>17} {'spread':>8} {'results/s':>10}"
    )
    for batch in (1, 100):
        samples: dict[str, list[float]] = {"pickle": [], "xmlrpclib": []}
        for _ in range(ROUNDS):
            for name in samples:
                samples[name].append(one_round(name, batch))
        base = statistics.median(samples["pickle"])
        for name, values in samples.items():
            med = statistics.median(values)
            spread = (max(values) - min(values)) / med
            print(
                f"{name:<10} {batch:>6} {med * 1e6:>17.1f} {spread:>7.0%} {batch / med:>10.0f}"
                f"   ({med / base:.2f}x pickle)"
            )


if __name__ == "__main__":
    main()
