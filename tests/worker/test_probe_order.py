"""A probe's robots.txt verdict reaches the master before the probe's own result.

The master leases one URL of an origin without a verdict (the probe) and holds the others
back until the verdict arrives; the probe's result ends its lease. If the result came
first, the lease would end with no verdict kept and the origin's next URL would be leased
as a second probe, fetching robots.txt again (seen once in CI: two requests for one
origin). The verdict is queued by the download thread before its row, so the worker must
send what it found after it took the rows and before it sends them.

Real parts: a QueueServer on loopback, a Channel, the worker's own pipeline fetching a
real robots.txt from an ImageServer. The result inbox notes, as each batch arrives,
whether the board already has the origin's verdict.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from imageserver import ImageServer

from crawler.config import Policy, WorkerConfig
from crawler.master.endpoints import ResultQueue, RunControl, TaskQueue
from crawler.master.leases import LeaseBoard
from crawler.master.server import QueueServer
from crawler.protocol import decode_task
from crawler.robotstxt import check_verdict
from crawler.worker.channel import Channel
from crawler.worker.pipeline import process
from crawler.worker.robots import RobotsCache
from crawler.worker.run import Worker

KEY = b"probe-order-test-key-0123456789ab"
UA = "crawler/9.9 (test)"
ROBOTS = {"disallowed": "User-agent: *\nDisallow: /\n", "allowed": "User-agent: *\nDisallow:\n"}


class WitnessInbox(queue.Queue):
    """The master's result inbox, noting at each arrival whether the verdict was kept."""

    def __init__(self, board: LeaseBoard, url: str) -> None:
        super().__init__()
        self.board, self.url = board, url
        self.verdict_kept_on_arrival: list[bool] = []

    def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
        kept = self.board.robots.verdict_id(self.url, 0.0) is not None
        self.verdict_kept_on_arrival.append(kept)
        super().put(item, block, timeout)


@dataclass
class Rig:
    board: LeaseBoard
    inbox: WitnessInbox
    worker: Worker
    urls: list[str]


@pytest.fixture(params=list(ROBOTS))
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    with ImageServer() as site:
        site.add("/robots.txt", ROBOTS[request.param].encode(), content_type="text/plain")
        urls = [site.add_image(f"/img/{i}.png", "PNG", 8, 8, seed=i) for i in (1, 2)]
        board = LeaseBoard(urls, None, 60.0, 3, user_agent=UA)
        inbox = WitnessInbox(board, urls[0])
        server = QueueServer("127.0.0.1", 0, KEY)
        server.start(
            {
                "task_queue": TaskQueue(board),
                "result_queue": ResultQueue(inbox),
                "run_control": RunControl(board, {"run_id": "order", "policy": "{}"}),
            }
        )
        try:
            channel = Channel("127.0.0.1", server.port, KEY, 10.0)
            config = WorkerConfig(server="127.0.0.1", authkey=KEY, output=tmp_path)
            worker = Worker(config, channel, threading.Event())
            worker.policy = Policy(block_private=False, user_agent=UA, retries=0)
            worker.robots = RobotsCache(worker.policy)
            yield Rig(board, inbox, worker, urls)
        finally:
            server.close()


def test_the_probe_verdict_arrives_before_the_probe_result(rig: Rig) -> None:
    worker = rig.worker
    leased = worker.channel.get(worker.name, 2, 0)["tasks"]
    assert len(leased) == 1  # the probe: the origin's other URL waits for its verdict
    probe = decode_task(leased[0])
    assert probe.robots is None
    row = process(probe, worker.context())  # as a download thread does: verdict, then row
    worker._done.put(row)
    worker._send_results()
    assert rig.inbox.verdict_kept_on_arrival == [True]
    # The origin's other URL now goes out with that verdict: nobody fetches robots.txt again.
    after = [decode_task(t) for t in worker.channel.get(worker.name, 2, 0)["tasks"]]
    assert [t.url for t in after] == [rig.urls[1]] and after[0].robots is not None
    kept = worker.channel.robots(worker.name, [after[0].robots])
    assert check_verdict(kept[0]["verdict"]) is not None
