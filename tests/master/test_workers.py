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
