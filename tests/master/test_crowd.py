"""A crowd of workers connecting at once: every one gets through (issue 13, fault 3).

300 real Channels (manager connection, HMAC handshake, proxies) open at the same moment
against one QueueServer on loopback. With BaseManager's own listen backlog of 16, most
of them waited for SYN retransmissions and many gave up (bench/crowd.py); with the
crawler's backlog every one says hello. Timing is left to the benchmark.
"""

from __future__ import annotations

import queue
import threading

from crawler.master.endpoints import ResultQueue, RunControl, TaskQueue
from crawler.master.leases import LeaseBoard
from crawler.master.server import QueueServer
from crawler.worker.channel import Channel

KEY = b"crowd-test-key-0123456789abcdef"
CROWD = 300


def test_three_hundred_workers_connecting_at_once_all_get_in() -> None:
    board = LeaseBoard([f"http://example.com/{i}.png" for i in range(CROWD)], None, 60.0, 3)
    server = QueueServer("127.0.0.1", 0, KEY)
    server.start(
        {
            "task_queue": TaskQueue(board),
            "result_queue": ResultQueue(queue.Queue()),
            "run_control": RunControl(board, {"run_id": "crowd", "policy": "{}"}),
        }
    )
    start = threading.Barrier(CROWD)
    answers: dict[int, object] = {}

    def worker(i: int) -> None:
        start.wait()
        try:
            channel = Channel("127.0.0.1", server.port, KEY, 60.0)
            answers[i] = channel.hello(f"w{i}", {})["run_id"]
            answers[i] = (answers[i], len(channel.get(f"w{i}", 1, 0)["tasks"]))
        except Exception as exc:  # collected: a thread's exception would not fail the test
            answers[i] = exc

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(CROWD)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.close()
    failed = {i: a for i, a in answers.items() if a != ("crowd", 1)}
    assert len(answers) == CROWD and failed == {}, list(failed.items())[:5]
    assert len(board.workers.active(within=120)) == CROWD
