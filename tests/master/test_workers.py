"""The live-worker registry (``master.workers``): who still has to hear the run is over."""

from __future__ import annotations

import logging

import pytest

from crawler.exceptions import ProtocolError
from crawler.master.endpoints import BoardSlot, RunControl
from crawler.master.workers import WorkerRegistry
from crawler.protocol import IDENTITY
from crawler.worker.service import _given_name


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
    ``instance`` tells the processes apart, and a later live one is NAME#2 (#3, ...)."""
    workers = WorkerRegistry()
    first = {"host": "h", "pid": 1, "instance": "a"}
    assert workers.hello("h:1", first) == "h:1"
    assert workers.hello("h:1", {"host": "h", "pid": 1, "instance": "b"}) == "h:1#2"
    assert workers.hello("h:1", {"host": "h", "pid": 1, "instance": "c"}) == "h:1#3"
    assert workers.hello("h:1", first) == "h:1"  # the same process again: its own name
    assert workers.hello("h:1", {"host": "h", "pid": 1, "instance": "b"}) == "h:1#2"
    assert workers.hello("h:2", {"host": "h", "pid": 2, "instance": "a"}) == "h:2"
    # An older worker (no token) holds its name: a new process of that name is another
    assert workers.hello("h:9", {"host": "h", "pid": 9}) == "h:9"
    assert workers.hello("h:9", {"host": "h", "pid": 9, "instance": "d"}) == "h:9#2"
    workers.bye("h:1#2")  # one's bye is not the other's
    assert set(workers.active(within=5.0)) == {"h:1", "h:1#3", "h:2", "h:9", "h:9#2"}


def test_a_process_after_a_bye_takes_the_name_over() -> None:
    """A container restarted after its worker said bye (its pid 1 again) is not a second
    process: the first holds nothing any more (a review's: each restart was renamed and
    warned of)."""
    workers = WorkerRegistry()
    assert workers.hello("h:1", {"host": "h", "pid": 1, "instance": "a"}) == "h:1"
    workers.bye("h:1")
    assert workers.hello("h:1", {"host": "h", "pid": 1, "instance": "b"}) == "h:1"
    assert workers.active(within=5.0) == ["h:1"]
    assert workers.hello("h:1", {"host": "h", "pid": 1, "instance": "c"}) == "h:1#2"


def test_many_processes_of_one_name_are_all_told_apart() -> None:
    """20,000 hellos of one name, each another process: 20,000 names."""
    workers = WorkerRegistry()
    names = {workers.hello("h:1", {"host": "h", "instance": str(i)}) for i in range(20_000)}
    assert len(names) == 20_000 and "h:1#20000" in names


def test_a_probe_keeps_what_the_process_said() -> None:
    """A --wait worker's probe (identity only) keeps the hello's info and process group:
    until 2026-12-02 it replaced them, and a master's own local worker was no longer its
    own, nor its host known."""
    workers = WorkerRegistry(own=lambda info: 7 if info.get("pid") == 1 else None)
    workers.hello("h:1", {"host": "h", "pid": 1, "output": "/a", "instance": "a"})
    workers.seen("h:1", told_over=True)
    assert workers.hello("h:1", dict(IDENTITY)) == "h:1"
    assert workers.host_of("h:1") == "h"
    workers.drop_gone(lambda pid, group: group != 7)  # its group is still known
    assert workers.active(within=5.0) == []
    assert workers.all_told(within=5.0)


def test_the_hello_answer_names_a_second_process_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The answer carries ``name`` only for a process renamed; one warning a name, and only
    when the two give one host id (two folders under one host id, maybe)."""
    control = RunControl(BoardSlot(WorkerRegistry()), {"run_id": "r", "policy": "{}"})
    plain = {"run_id": "r", "policy": "{}", **IDENTITY}

    def hello(name: str, host: str, instance: str) -> dict:
        return control.hello(name, {"host": host, "instance": instance, **IDENTITY})

    with caplog.at_level(logging.DEBUG, logger="crawler"):
        assert hello("h:1", "h", "a") == plain
        assert hello("h:1", "h", "b") == {**plain, "name": "h:1#2"}
        assert hello("h:1", "h", "c") == {**plain, "name": "h:1#3"}
        assert hello("k:1", "k-one", "a") == plain
        assert hello("k:1", "k-two", "b") == {**plain, "name": "k:1#2"}  # its own host id
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "both say they are h:1, host h" in warned[0], warned
    assert "the later one is h:1#2 in this run" in warned[0]


def test_a_folder_clash_is_said_once_a_host_and_a_probe_does_not_garble_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two workers of one --host-id in two folders: one warning, naming both folders. A
    ``--wait`` worker's probe (identity only) said it again as "host None" with a
    folder "None" (a fresh user's, 2026-12-02): the warning reads the registered info."""
    control = RunControl(BoardSlot(WorkerRegistry()), {"run_id": "r", "policy": "{}"})
    with caplog.at_level(logging.WARNING, logger="crawler"):
        control.hello("vm:1", {"host": "vm", "output": "/a", "instance": "x", **IDENTITY})
        control.hello("vm:2", {"host": "vm", "output": "/b", "instance": "y", **IDENTITY})
        control.hello("vm:2", dict(IDENTITY))  # the probe of a --wait worker
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1, warned
    assert "workers vm:1 and vm:2 both say they are host vm" in warned[0], warned
    assert "different folders (/a, /b)" in warned[0], warned


@pytest.mark.parametrize(
    "given", ["h:1#x", "h:1#", "h:1#\u00b2", "h:1#1234567", "other:1#2", 7, ["h:1#2"], "h:1 #2"]
)
def test_a_worker_refuses_a_name_it_cannot_take(given: object) -> None:
    """Going on as ``h:1`` would share the name the master gave another process."""
    with pytest.raises(ProtocolError, match="unusable name"):
        _given_name("h:1", given, "m:1")


def test_a_worker_takes_the_name_given_or_keeps_its_own() -> None:
    assert _given_name("h:1", "h:1#2", "m:1") == "h:1#2"
    assert _given_name("h:1", "h:1#999999", "m:1") == "h:1#999999"
    assert _given_name("h:1", None, "m:1") == "h:1"  # an older master
    assert _given_name("h:1", "h:1", "m:1") == "h:1"
