"""The comms thread's waits (``worker.pacing``) on a worker's real queues and threads.

A gather that waited its whole time while a download thread had nothing to do made a
worker of 1-8 threads on fast downloads up to twice as slow (a review's, 2026-12-02):
here the gather's limit is a minute, so a gather that does not stop for the reason
given never returns within the test's bound (10 s), and the test fails.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from crawler.worker.found import FoundVerdicts
from crawler.worker.lane import TaskLane
from crawler.worker.pacing import POLL_BUSY, POLL_PROBE, Pacing

BOUND = 10.0  # seconds a wait that should end may take, on a loaded machine
MINUTE = 60.0


def make(threads: int) -> tuple[Pacing, queue.Queue[dict], TaskLane, threading.Event]:
    done: queue.Queue[dict] = queue.Queue()
    lane, stop = TaskLane(), threading.Event()
    pacing = Pacing(done, lane, stop, FoundVerdicts(), threads)
    pacing.gather_s = MINUTE
    return pacing, done, lane, stop


def started(action: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


def test_a_gather_ends_once_half_the_threads_worth_of_results_is_ready() -> None:
    pacing, done, _, _ = make(threads=4)
    done.put({"id": 0})
    gathering = started(pacing.gather)
    gathering.join(0.3)
    assert gathering.is_alive()  # one row of the two a put of 4 threads waits for
    done.put({"id": 1})
    gathering.join(BOUND)
    assert not gathering.is_alive()


def test_a_worker_of_one_or_two_threads_does_not_gather() -> None:
    for threads in (1, 2):
        pacing, done, _, _ = make(threads)
        done.put({"id": 0})
        gathering = started(pacing.gather)
        gathering.join(BOUND)
        assert not gathering.is_alive(), threads


def test_a_gather_ends_when_a_thread_has_nothing_to_do() -> None:
    pacing, done, lane, _ = make(threads=16)
    done.put({"id": 0})
    gathering = started(pacing.gather)
    gathering.join(0.3)
    assert gathering.is_alive()  # every thread busy (none waits on the lane)
    idle = started(lane.get)  # a download thread that finished, with nothing queued
    gathering.join(BOUND)
    assert not gathering.is_alive()
    lane.put(None)  # its signal to end
    idle.join(BOUND)


def test_a_gather_ends_on_a_stop() -> None:
    pacing, _, _, stop = make(threads=16)
    gathering = started(pacing.gather)
    stop.set()
    gathering.join(BOUND)
    assert not gathering.is_alive()


def test_none_left_and_nothing_held_asks_again_sooner_then_later() -> None:
    """The master's count of this worker's leases lags its last put: asked again after
    20 ms, then twice as long each time up to POLL_BUSY (a refused result keeps its lease
    until it expires: not 50 gets a second for a minute); any task resets it."""
    pacing, _, _, _ = make(threads=4)
    waits = []
    for _ in range(6):
        waits.append(pacing._retry)
        pacing.after_get({"tasks": [], "none_left": True}, holds=False, probing=False)
    assert waits == [POLL_PROBE, 0.04, 0.08, 0.16, POLL_BUSY, POLL_BUSY]
    pacing.after_get({"tasks": ["a task"]}, holds=True, probing=False)
    assert pacing._retry == POLL_PROBE


def test_none_left_while_holding_leases_waits_for_a_result() -> None:
    pacing, done, _, _ = make(threads=4)
    answer = {"tasks": [], "none_left": True}
    waiting = started(lambda: pacing.after_get(answer, holds=True, probing=False))
    done.put({"id": 7})
    waiting.join(BOUND)
    assert not waiting.is_alive()
    done.put({"id": 8})
    assert pacing.results() == [{"id": 7}, {"id": 8}]  # in the order they came


def test_results_keep_the_order_they_came_in_after_a_wait() -> None:
    """The manifest's order decides which of two rows with the same bytes is the first
    (``same_content_as``): until 2026-12-02 the result a wait took went behind those that
    came after it (tests/test_restamp.py failed now and then)."""
    pacing, done, _, _ = make(threads=4)
    done.put({"id": 1})
    pacing.wait_for_result(0.0)
    done.put({"id": 2})
    pacing.wait_for_result(0.0)  # holds one already: takes no other
    done.put({"id": 3})
    assert pacing.results() == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert pacing.results() == []


# A worker's comms thread waiting for a result (the worker's own queue, ``Worker._done``),
# with a handler for SIGUSR1 (a copy's stop passed on, ``worker.copies``).
# The signal blocked in every other thread (a library's native ones): it wakes this wait.
WAITING = """
import signal, sys, threading
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
from crawler.config import WorkerConfig
from crawler.worker.run import Worker
signal.signal(signal.SIGUSR1, lambda signum, frame: None)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
worker = Worker(WorkerConfig(server="127.0.0.1", authkey=b"k" * 32), None, threading.Event())
print("waiting", flush=True)
worker._pacing.wait_for_result(1.0)
print("done", flush=True)
"""


def test_a_signal_that_wakes_a_results_wait_after_its_time_does_not_hold_it() -> None:
    """A signal that interrupts the wait once its second is up (here: the process stopped
    meanwhile, as one not scheduled on a loaded machine) ends it. With the results in a
    ``SimpleQueue`` it waited for good (CPython 3.11 and 3.12: the time left, negative,
    meant no limit), and a worker took a SIGTERM only when its next result came: it
    started queued downloads meanwhile (until 2026-12-02)."""
    child = subprocess.Popen(
        [sys.executable, "-c", WAITING], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "waiting\n", child.stderr
        time.sleep(0.3)  # in the wait (were it not yet, the test could only pass)
        os.kill(child.pid, signal.SIGSTOP)
        os.kill(child.pid, signal.SIGUSR1)
        time.sleep(1.5)  # past the wait's second
        os.kill(child.pid, signal.SIGCONT)
        out, err = child.communicate(timeout=BOUND)
    finally:
        child.kill()
    assert out == "done\n", err
