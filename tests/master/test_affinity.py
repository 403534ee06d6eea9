"""Host affinity on the lease board, driven by a fake clock: a task whose stored file
one host holds goes to a worker of that host, or to any once that host stays away.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

from test_leases import URLS, FakeClock, leased

from crawler.config import HostLimits
from crawler.master.frontier import FINAL
from crawler.master.leases import LeaseBoard

WANTED = {0: "host-a", 1: "host-b", 2: None, 3: "host-b", 4: "host-a"}
WAIT = 30.0


def board_with_hosts(clock: FakeClock) -> LeaseBoard:
    board = LeaseBoard(list(URLS), None, 10.0, 3, clock=clock)
    board.prefer_hosts(WANTED.get, WAIT)
    for host in ("host-a", "host-b"):
        board.workers.hello(f"{host}:1", {"host": host})
    return board


def ids(board: LeaseBoard, worker: str) -> list[int]:
    return [task.id for task in leased(board.get(worker, 10, 0))]


def test_each_host_gets_the_tasks_whose_files_it_holds() -> None:
    board = board_with_hosts(FakeClock())
    assert ids(board, "host-a:1") == [0, 2, 4]
    assert ids(board, "host-b:1") == [1, 3]
    assert ids(board, "host-a:1") == []


def test_a_host_that_stays_away_has_its_tasks_done_by_another() -> None:
    clock = FakeClock()
    board = board_with_hosts(clock)
    board.workers.bye("host-b:1")
    assert ids(board, "host-a:1") == [0, 2, 4]  # 1 and 3 kept for host-b
    clock.advance(WAIT - 1)
    assert ids(board, "host-a:1") == []  # host-b may still come
    clock.advance(2)
    assert ids(board, "host-a:1") == [1, 3]


def test_a_kept_task_answered_late_is_not_handed_out_again() -> None:
    clock = FakeClock()
    board = board_with_hosts(clock)
    assert ids(board, "host-b:1") == [1, 2, 3]  # 0 and 4 kept for host-a
    assert board.complete(0, "someone") is True  # a late answer from an earlier run's lease
    assert board.complete(0, "someone") is False
    assert ids(board, "host-a:1") == [4]


def test_a_rerun_reaches_its_new_tasks_past_the_final_ones_in_one_get() -> None:
    """A nightly rerun: all but the last few tasks are final (kept from the manifest);
    one get() finds the new ones, however many final ones come first."""
    urls = [f"http://example.com/{i}.png" for i in range(20_003)]
    final = bytearray([FINAL]) * 20_000 + bytearray(3)
    board = LeaseBoard(urls, final, 10.0, 3, clock=FakeClock())
    assert ids(board, "w") == [20_000, 20_001, 20_002]


def test_tasks_of_a_host_that_stayed_away_are_downloads_paced_and_probed_once() -> None:
    """Rerouted to another host, a task kept for its host is a download: --per-host
    holds it, and its origin's robots.txt is fetched by one probe, not by every worker
    that takes one. Before, they all went out at once, as reuses (a fresh user saw 5
    concurrent downloads under --per-host 2, and robots.txt asked for by each worker)."""
    urls = [f"http://b.example/{i}.png" for i in range(6)]
    clock = FakeClock()
    board = LeaseBoard(
        urls, None, 10.0, 3, clock=clock, limits=HostLimits(per_host=2), user_agent="crawler",
        stored_copy=lambda i: {"path": f"{i}.png"}, unpaced=lambda i: True,
    )  # fmt: skip
    board.prefer_hosts(lambda i: "host-b", WAIT)
    board.workers.hello("host-a:1", {"host": "host-a"})
    board.workers.hello("host-c:1", {"host": "host-c"})
    assert ids(board, "host-a:1") == []  # all kept for host-b
    clock.advance(WAIT + 1)
    first = leased(board.get("host-a:1", 10, 0))
    assert [(t.id, t.robots) for t in first] == [(0, None)]  # the origin's one probe
    assert leased(board.get("host-c:1", 10, 0)) == []  # its robots.txt verdict is awaited
    board.robots_answer(0, "host-a:1", urls[0], {"status": 404, "body": ""})
    second = leased(board.get("host-c:1", 10, 0))
    assert [t.id for t in second] == [1]  # --per-host 2: the probe's lease and this one
    assert all(t.robots is not None for t in second)
