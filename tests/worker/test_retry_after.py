"""A server's ``Retry-After`` read against the server's own clock (RFC 9110 10.2.3, 6.6.1).

An HTTP-date is a point on the server's clock; the same answer's ``Date`` says what that
clock read when it answered. Until 2026-12-01 the date was read against the worker's
clock, and a worker an hour behind its servers turned "come back in 25 s" into an hour
and gave the host up for the run (a fresh user's).
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_no_traceback, read_rows, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from imageserver import ImageServer, make_image

from crawler.constants import RETRY_AFTER_MAX
from crawler.protocol import Task
from crawler.worker import lane
from crawler.worker.deadline import server_wait
from crawler.worker.lane import TaskLane, drained, no_answer

BOUND = 10.0  # seconds a wait that should end may take, on a loaded machine

YEAR = 366 * 86400


def dated(wait: float, offset: float) -> dict[str, str]:
    """Headers of a server whose clock is ``offset`` s off ours, asking for ``wait`` s."""
    now = time.time() + offset
    return {
        "Date": formatdate(now, usegmt=True),
        "Retry-After": formatdate(now + wait, usegmt=True),
    }


@settings(max_examples=300, deadline=None)
@given(wait=st.integers(0, 10 * 86400), offset=st.integers(-30 * YEAR, 30 * YEAR))
def test_a_date_is_read_against_the_answers_date(wait: int, offset: int) -> None:
    assert server_wait(dated(wait, offset)) == wait


@given(wait=st.integers(-10 * YEAR, -1), offset=st.integers(-YEAR, YEAR))
def test_a_date_before_the_answer_is_no_wait(wait: int, offset: int) -> None:
    assert server_wait(dated(wait, offset)) == 0


def test_a_date_far_ahead_is_the_cap_and_seconds_are_as_sent() -> None:
    assert server_wait(dated(40 * YEAR, 0)) == RETRY_AFTER_MAX
    assert server_wait({"Retry-After": "25", "Date": formatdate(0, usegmt=True)}) == 25


def test_without_a_valid_date_header_our_clock_reads_it() -> None:
    for date in (None, "", "yesterday"):
        headers = {"Retry-After": formatdate(time.time() + 100, usegmt=True)}
        if date is not None:
            headers["Date"] = date
        assert 97 <= (server_wait(headers) or 0) <= 100


def test_a_server_an_hour_ahead_asking_for_3_s_is_waited_for(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """End to end: the host's first answer is a 503 dated an hour ahead of this machine
    asking to come back 3 s after it; the host is held 3 s, not given up as "asked to
    wait 3603 s"."""
    body, asked = make_image("PNG", 32, 24, seed=5), []

    def serve(request: BaseHTTPRequestHandler) -> None:
        asked.append(time.monotonic())
        if len(asked) == 1:
            request.send_response_only(503)
            for name, value in dated(3, 3600).items():
                request.send_header(name, value)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        request.send_response(200)
        request.send_header("Content-Type", "image/png")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    urls = []
    for i in range(2):
        image_server.add_handler(f"/ahead/{i}.png", serve)
        urls.append(image_server.url(f"/ahead/{i}.png"))
    (tmp_path / "list.txt").write_text("\n".join(urls) + "\n")
    result = run_cli(
        "master", str(tmp_path / "list.txt"), "--port", "0", "--local-workers", "1",
        "--threads", "1", "--output", str(tmp_path / "out"), "--no-progress",
        "--retries", "0", "--max-failure-rate", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    rows = read_rows(tmp_path / "out" / "manifest.jsonl")
    assert sorted(r["status"] for r in rows) == ["http_error", "ok"], rows
    assert not any("Retry-After" in (r.get("error") or "") for r in rows), rows
    assert len(asked) == 2 and asked[1] - asked[0] >= 2.9, asked


def test_a_task_crossing_a_retry_after_is_handed_back() -> None:
    """A task of a host leased before the master had its 503 reaches the worker after
    it: within the Retry-After it asked for, or with none within the master's first
    backoff (1 s: until 2026-12-02 it started, 16 ms after the 503, a fresh user's), it
    is handed back, not started; after it, or for another host, it starts."""
    lane = TaskLane()
    lane.back_off("a.test", 30.0)
    lane.back_off("b.test")
    for task_id, url in enumerate(("http://a.test/1", "http://b.test/1", "http://c.test/1")):
        lane.put(Task(task_id, url, 1))
    assert lane.get().id == 2  # type: ignore[union-attr]
    assert drained(lane.handed_back) == [0, 1]
    lane.back_off("d.test", 0.2)
    time.sleep(0.25)
    lane.put(Task(3, "http://d.test/1", 1))
    assert lane.get() == Task(3, "http://d.test/1", 1)


def test_a_task_crossing_a_hold_is_handed_back_once() -> None:
    """A task the master leases again at once (it makes no request: a stored image
    reused, a URL robots.txt disallows) comes back within the same hold: it starts. It
    was handed back over and over, 17,000 round trips a second in a review's simulation."""
    lane = TaskLane()
    lane.back_off("a.test", 30.0)
    lane.put(Task(0, "http://a.test/1", 1))
    lane.put(Task(1, "http://b.test/1", 1))
    assert lane.get().id == 1  # type: ignore[union-attr]
    assert drained(lane.handed_back) == [0]
    lane.put(Task(0, "http://a.test/1", 2))  # leased again at once
    lane.put(None)  # a handed-back task would be skipped to this
    assert lane.get() == Task(0, "http://a.test/1", 2)
    assert drained(lane.handed_back) == []


def test_a_long_retry_after_is_the_masters_to_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker hands back a crossing task for ``lane.CROSSING_S`` at most, however
    long the Retry-After: a master that never took the answer (the lease had expired)
    kept leasing the task for the whole day it asked for (a review's)."""
    monkeypatch.setattr(lane, "CROSSING_S", 0.2)
    tasks = lane.TaskLane()
    tasks.back_off("a.test", 86400.0)
    time.sleep(0.25)
    tasks.put(Task(0, "http://a.test/1", 1))
    tasks.put(None)  # a handed-back task would be skipped to this
    assert tasks.get() == Task(0, "http://a.test/1", 1)


def test_a_host_that_did_not_answer_hands_back_its_queued_tasks() -> None:
    """A timeout before any status backs the host off on the worker too: its queued
    tasks go back to the master (a dead host's leased tasks each waited out a timeout,
    holding the run's end for minutes: a review's); a slow body (a status came) does
    not."""
    assert no_answer({"status": "timeout", "http_status": None})
    assert not no_answer({"status": "timeout", "http_status": 200})
    assert not no_answer({"status": "connection_error", "http_status": None})


def test_what_a_backoff_leaves_is_forgotten_once_it_can_matter_no_more() -> None:
    """A worker's run over many hosts that answer 429 or time out keeps no entry for each
    for the whole run (~200 bytes a host until 2026-12-02): a host's entry goes once its
    queued tasks were taken and its hold is over; a host still held keeps its own."""
    tasks = lane.TaskLane()
    tasks.back_off("held.test", 30.0)
    for i in range(5 * lane.PRUNE_AT):
        tasks.back_off(f"h{i}.test", 0.001)
        tasks.put(Task(i, f"http://other.test/{i}", 1))
        assert tasks.get() == Task(i, f"http://other.test/{i}", 1)
    time.sleep(0.01)  # every hold but held.test's over
    tasks.back_off("last.test", 0.001)
    held = 2 * lane.PRUNE_AT  # forgotten in batches: at most twice the first batch's size
    assert len(tasks._backed_off) <= held and len(tasks._asked_until) <= held
    tasks.put(Task(-1, "http://held.test/1", 1))
    tasks.put(Task(-2, "http://other.test/last", 1))
    assert tasks.get() == Task(-2, "http://other.test/last", 1)
    assert drained(tasks.handed_back) == [-1]  # held.test is still held
    assert not tasks._finished  # every order finished: nothing kept above the watermark


def test_back_offs_and_hand_backs_from_many_threads_at_once() -> None:
    """Download threads hand back tasks of a held host (``get``) while another backs a
    host off: until 2026-12-02 a thread's note of a task handed back could land while
    ``back_off`` went through those notes, which raised "dictionary changed size during
    iteration" in the thread backing off. Thread switches forced often, for 1.5 s."""
    tasks = lane.TaskLane()
    tasks.back_off("held.test", 30.0)
    done = threading.Event()

    def feed() -> None:
        ids = itertools.count()
        while not done.is_set():
            for task_id in itertools.islice(ids, 200):
                tasks.put(Task(task_id, "http://held.test/x", 1))
            tasks.put(Task(-1, "http://other.test/x", 1))  # each taker's wait ends
            time.sleep(0)

    def take() -> None:
        while not done.is_set():
            tasks.get()

    threads = [threading.Thread(target=f, daemon=True) for f in (feed, take, take, take)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        end, hosts = time.monotonic() + 1.5, 0
        while time.monotonic() < end:
            hosts += 1
            tasks.back_off(f"h{hosts}.test", 30.0)  # raised RuntimeError
    finally:
        done.set()
        sys.setswitchinterval(interval)
        for _ in range(3):
            tasks.put(None)  # a taker waiting for a task ends
    assert drained(tasks.handed_back)  # the threads did hand back tasks


class _PausedQueue:
    """The lane's queue, holding the thread that takes a task of held.test right after
    it was taken (``held``), until ``resume``."""

    def __init__(self, real: Any, held: threading.Event, resume: threading.Event) -> None:
        self._real, self._held, self._resume = real, held, resume

    def get(self) -> Any:
        item = self._real.get()
        if item[1] is not None and "held.test" in item[1].url and not self._resume.is_set():
            self._held.set()
            assert self._resume.wait(BOUND)
        return item

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.mark.parametrize("pause", ["taken", "checking"])
def test_a_task_taken_but_not_yet_checked_keeps_its_hosts_backoff(
    monkeypatch: pytest.MonkeyPatch, pause: str
) -> None:
    """Thread A takes a task queued before its host's back-off and is switched out before
    checking it (just after taking it, or at the check's first step); thread B takes a
    later task; the host's hold ends and the lane forgets what it can. A's task must
    still be handed back: a bound of the latest task taken (936c080), then of the tasks
    being checked (ae3c284), each forgot the host, and A started it (reviews',
    2026-12-02). The pause is the test's own, in the lane's queue or in ``host_of``."""
    monkeypatch.setattr(lane, "PRUNE_AT", 2)  # forgets at every back-off
    paused, resume = threading.Event(), threading.Event()
    real_host_of = lane.host_of

    def host_of(url: str) -> str:
        if "held.test" in url and not resume.is_set():
            paused.set()
            assert resume.wait(BOUND)
        return real_host_of(url)

    tasks = lane.TaskLane()
    if pause == "taken":
        monkeypatch.setattr(tasks, "_queue", _PausedQueue(tasks._queue, paused, resume))
    else:
        monkeypatch.setattr(lane, "host_of", host_of)
    tasks.put(Task(1, "http://held.test/1", 1))
    tasks.back_off("held.test", 0.01)
    tasks.put(Task(2, "http://other.test/1", 1))
    got: list[Task | None] = []
    thread_a = threading.Thread(target=lambda: got.append(tasks.get()), daemon=True)
    thread_a.start()
    assert paused.wait(BOUND)  # A holds task 1, unchecked
    assert tasks.get() == Task(2, "http://other.test/1", 1)  # B
    time.sleep(0.05)  # held.test's hold is over
    for host in ("a.test", "b.test", "c.test"):
        tasks.back_off(host, 30.0)  # each time, forgets what it can
    tasks.put(None)  # A ends with this, unless it started task 1
    resume.set()
    thread_a.join(BOUND)
    assert got == [None] and drained(tasks.handed_back) == [1]


def test_a_put_that_fails_does_not_hold_what_the_lane_forgets() -> None:
    """A put refused (MemoryError) after taking its order: that order is finished, or
    the watermark would stay below it for the run and keep every host backed off since
    (a review's, 2026-12-02)."""
    tasks = lane.TaskLane()
    real = tasks._queue

    class Refusing:
        def put(self, item: Any) -> None:
            raise MemoryError

    tasks._queue = Refusing()  # type: ignore[assignment]
    with pytest.raises(MemoryError):
        tasks.put(Task(0, "http://a.test/0", 1))
    tasks._queue = real
    tasks.back_off("a.test", 0.001)
    tasks.put(Task(1, "http://b.test/1", 1))
    assert tasks.get() == Task(1, "http://b.test/1", 1)
    assert tasks._watermark == 2 and not tasks._finished  # orders 0-2 all finished
