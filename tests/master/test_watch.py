"""``Watch``: what a serving master says while no worker is active (real objects, the
registry's clock moved by hand)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from crawler.cli.master import master_config
from crawler.cli.master_flags import master_parser
from crawler.master.leases import LeaseBoard
from crawler.master.local_workers import LocalWorkers
from crawler.master.progress import Progress
from crawler.master.summary import RunStats
from crawler.master.watch import Watch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("stopping", [False, True])
def test_a_stopping_master_promises_no_idle_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, stopping: bool
) -> None:
    """Stopping, the master waits --grace, not --idle-timeout: it said "waiting for
    workers: none active for 10 s; giving up in 3590 s" and exited the same second (a
    fresh user's, 2026-12-01). Not stopping, it says when it gives up."""
    listing = tmp_path / "l.txt"
    listing.write_text("http://127.0.0.1:9/a.png\n")
    args = master_parser().parse_args(
        [str(listing), "--output", str(tmp_path / "out"), "--no-progress"]
    )
    config = master_config(args)
    clock = Clock()
    board = LeaseBoard(["http://127.0.0.1:9/a.png"], None, 60.0, 3, clock=clock)
    stats = RunStats("r", 1)
    watch = Watch(config, LocalWorkers(config), stats, board.workers.now())
    clock.now += 20  # no worker for 20 s
    with caplog.at_level(logging.INFO), Progress(config, 1, 1, stats, board.workers) as bar:
        assert watch.workers_left(board, bar, stopping)
    said = [r.getMessage() for r in caplog.records if "giving up in" in r.getMessage()]
    assert bool(said) != stopping, said
