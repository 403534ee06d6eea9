"""Cost of one manager proxy call with each serializer, and of moving URLs in batches.

Measured in one run, interleaved (pickle, xmlrpclib, pickle, ...), against the crawler's
own server on loopback: the figure behind choosing ``xmlrpclib`` as the wire format.
Run: ``python bench/protocol_cost.py``.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler._compat import shared_proxies
from crawler.master import server
from crawler.master.endpoints import ResultQueue, RunControl, TaskQueue
from crawler.master.leases import LeaseBoard
from crawler.worker.channel import WorkerManager

KEY = b"bench-key-0123456789abcdef"
NAMES = ("get_task_queue", "get_result_queue", "get_run_control")
CALLS = 2000
ROUNDS = 5


def one_round(serializer: str, batch: int) -> float:
    """Seconds per call of ResultQueue.put with ``batch`` results, through a real proxy.

    The proxy is the worker's (``WorkerManager``, ``shared_proxies``) on a plain client
    connection of ``serializer``: the worker's own ``Channel`` speaks xmlrpclib only (its
    TCP_NODELAY client, ``_compat.nodelay_serializer``), so it cannot be the pickle one.
    Both clients set TCP_NODELAY here, so that neither pays Nagle's 40 ms stalls."""
    with mock.patch.object(server, "SERIALIZER", serializer):
        board = LeaseBoard(["http://x/"] * batch, None, 600, 3)
        srv = server.QueueServer("127.0.0.1", 0, KEY)
        srv.start(
            {
                "task_queue": TaskQueue(board),
                "result_queue": ResultQueue(queue.Queue()),
                "run_control": RunControl(board, {"run_id": "b", "policy": "{}"}),
            }
        )
    manager = WorkerManager(address=("127.0.0.1", srv.port), authkey=KEY, serializer=serializer)
    _tasks, proxy, _control = shared_proxies(manager, NAMES)
    proxy._connect()  # the proxy's connection, opened before the clock starts (private API)
    _nodelay(proxy._tls.connection)
    results = [json.dumps({"id": i, "url": "http://x/", "status": "ok"}) for i in range(batch)]
    proxy.put("w", results)
    start = time.perf_counter()
    for _ in range(CALLS):
        proxy.put("w", results)
    elapsed = (time.perf_counter() - start) / CALLS
    srv.close()
    return elapsed


def _nodelay(connection: object) -> None:
    """TCP_NODELAY on a multiprocessing connection (pickle's or xmlrpclib's wrapper)."""
    conn = getattr(connection, "_conn", connection)
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.close()


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
