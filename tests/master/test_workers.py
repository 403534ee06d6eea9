"""The live-worker registry (``master.workers``): who still has to hear the run is over."""

from __future__ import annotations

from crawler.master.workers import WorkerRegistry
from crawler.protocol import IDENTITY


def test_a_worker_told_the_run_is_over_stays_told_when_it_says_hello_again() -> None:
    """A ``--wait`` worker, after its run, asks the lingering master whether a new run
    began (a hello with no info): the master must not wait for it to be told again."""
    now = [100.0]
    workers = WorkerRegistry(clock=lambda: now[0])
    workers.hello("h:1", {"host": "h", "pid": 1})
    workers.hello("h:2", {"host": "h", "pid": 2})
    workers.seen("h:1", told_over=True)
    assert not workers.all_told(within=5.0)  # h:2 has not heard it
    workers.seen("h:2", told_over=True)
    assert workers.all_told(within=5.0)
    workers.hello("h:1", dict(IDENTITY))  # the probe of a --wait worker
    assert workers.all_told(within=5.0)
    workers.hello("h:2", {"host": "h", "pid": 2, **IDENTITY})  # another process's
    assert not workers.all_told(within=5.0)
    workers.seen("h:2", told_over=True)
    workers.hello("h:3", {"host": "h", "pid": 3})  # a new one has not heard it
    assert not workers.all_told(within=5.0)


def test_a_second_process_of_a_name_gets_a_name_of_its_own() -> None:
    """Containers sharing a hostname run their workers as the same pid: each hello's
    ``instance`` tells the processes apart, and the later one is NAME#2 (#3, ...)."""
    workers = WorkerRegistry()
    first = {"host": "h", "pid": 1, "instance": "a"}
    assert workers.hello("h:1", first) == "h:1"
    assert workers.hello("h:1", {"host": "h", "pid": 1, "instance": "b"}) == "h:1#2"
    assert workers.hello("h:1", {"host": "h", "pid": 1, "instance": "c"}) == "h:1#3"
    assert workers.hello("h:1", first) == "h:1"  # the same process again: its own name
    assert workers.hello("h:1", {"host": "h", "pid": 1, "instance": "b"}) == "h:1#2"
    assert workers.hello("h:2", {"host": "h", "pid": 2, "instance": "a"}) == "h:2"
    assert workers.hello("h:9", {"host": "h", "pid": 9}) == "h:9"  # an older worker: no token
    assert workers.hello("h:9", {"host": "h", "pid": 9, "instance": "d"}) == "h:9"
    workers.bye("h:1#2")  # one's bye is not the other's
    assert set(workers.active(within=5.0)) == {"h:1", "h:1#3", "h:2", "h:9"}


def test_a_probe_keeps_what_the_process_said() -> None:
    """A --wait worker's probe (identity only) keeps the hello's info and process group:
    until 2026-12-02 it replaced them, and a master's own local worker was no longer its
    own, nor its folder known."""
    workers = WorkerRegistry(own=lambda info: 7 if info.get("pid") == 1 else None)
    workers.hello("h:1", {"host": "h", "pid": 1, "output": "/a", "instance": "a"})
    workers.seen("h:1", told_over=True)
    assert workers.hello("h:1", dict(IDENTITY)) == "h:1"
    assert workers.host_of("h:1") == "h"
    assert workers.pids_from("h") == {1}
    workers.drop_gone(lambda pid, group: group != 7)  # its group is still known
    assert workers.active(within=5.0) == []
    assert workers.all_told(within=5.0)
