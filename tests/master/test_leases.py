"""The lease board driven by a fake clock: leases, renewals, expiry, hand-back, the end.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

from collections.abc import Callable

from crawler import protocol
from crawler.config import HostLimits
from crawler.master.fencing import Answer
from crawler.master.leases import LeaseBoard
from crawler.master.politeness import HostGate


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


URLS = [f"http://example.com/{i}.png" for i in range(5)]


def make_board(clock: Callable[[], float], max_attempts: int = 3) -> LeaseBoard:
    return LeaseBoard(list(URLS), None, 10.0, max_attempts, clock=clock)


def leased(answer: dict) -> list[protocol.Task]:
    assert answer["over"] is False
    return [protocol.decode_task(text) for text in answer["tasks"]]


def test_get_leases_tasks_in_order() -> None:
    board = make_board(FakeClock())
    tasks = leased(board.get("w1", 2, 0))
    assert [(t.id, t.url, t.attempt) for t in tasks] == [(0, URLS[0], 1), (1, URLS[1], 1)]
    assert [t.id for t in leased(board.get("w2", 10, 0))] == [2, 3, 4]
    assert board.leased() == 5
    assert leased(board.get("w3", 10, 0)) == []  # nothing left, and no wait with timeout 0


def test_a_holder_of_the_last_leases_is_answered_at_once_that_none_is_left() -> None:
    """Its get does not wait for tasks, whatever its timeout: only its own answers, or
    another's lost lease, can bring one, and its answers wait while it waits. A worker
    holding none still waits, as any while tasks are left. (Timeouts 0 here: the fake
    clock stands still, and a get that waited would wait for ever.)"""
    clock = FakeClock()
    board = make_board(clock)
    assert len(leased(board.get("w1", 3, 0))) == 3
    assert [t.id for t in leased(board.get("w1", 1, 0))] == [3]
    assert [t.id for t in leased(board.get("w2", 2, 0))] == [4]
    for worker in ("w1", "w2"):
        assert board.get(worker, 10, 0) == {
            "tasks": [], "over": False, "room": False, "none_left": True
        }  # fmt: skip
    assert "none_left" not in board.get("w3", 10, 0)
    # Every way a lease ends is counted: answered, released, expired.
    assert board.complete(4, "w2")
    assert "none_left" not in board.get("w2", 10, 0)
    assert board.release("w1", [3]) == 1
    assert [t.id for t in leased(board.get("w3", 10, 0))] == [3]
    clock.advance(11)
    assert board.expire() == [] and board.leased() == 0  # 0-3 back in the frontier
    assert [t.id for t in leased(board.get("w3", 10, 0))] == [0, 1, 2, 3]
    assert "none_left" not in board.get("w1", 10, 0)
    assert board.get("w3", 10, 0)["none_left"] is True


def test_renew_extends_only_own_leases() -> None:
    clock = FakeClock()
    board = make_board(clock)
    leased(board.get("w1", 2, 0))
    clock.advance(8)
    assert board.renew("w2", [0, 1]) == {"renewed": 0, "gone": [0, 1]}  # not w2's leases
    assert board.renew("w1", [0, 1, 99]) == {"renewed": 2, "gone": [99]}
    clock.advance(8)  # 16 s after the lease, 8 s after the renewal
    assert board.expire() == []
    assert [t.id for t in leased(board.get("w2", 10, 0))] == [2, 3, 4]  # 0 and 1 still w1's
    clock.advance(3)  # now past the renewed lease
    assert board.expire() == []
    assert sorted((t.id, t.attempt) for t in leased(board.get("w2", 10, 0))) == [(0, 2), (1, 2)]


def test_expired_lease_goes_back_to_the_queue() -> None:
    clock = FakeClock()
    board = make_board(clock)
    leased(board.get("w1", 1, 0))
    clock.advance(9.9)
    assert board.expire() == []
    assert board.leased() == 1
    clock.advance(0.2)
    assert board.expire() == []
    assert board.leased() == 0
    again = leased(board.get("w2", 1, 0))
    assert [(t.id, t.attempt) for t in again] == [(0, 2)]  # first in line, second attempt
    assert board.attempts(0) == 2


def test_max_attempts_declares_task_lost() -> None:
    clock = FakeClock()
    board = make_board(clock, max_attempts=2)
    for attempt in (1, 2):
        tasks = leased(board.get(f"w{attempt}", 1, 0))
        assert [(t.id, t.attempt) for t in tasks] == [(0, attempt)]
        clock.advance(11)
        lost = board.expire()
        assert lost == ([] if attempt == 1 else [0])
    assert board.expire() == []  # reported once
    assert [t.id for t in leased(board.get("w3", 10, 0))] == [1, 2, 3, 4]  # 0 is final
    assert board.complete(0, "w1") is False  # a very late answer loses to worker_lost


def test_complete_first_answer_wins() -> None:
    clock = FakeClock()
    board = make_board(clock)
    leased(board.get("slow", 1, 0))
    clock.advance(11)
    board.expire()  # the slow worker's lease ran out: task 0 is queued again
    assert board.complete(0, "slow") is True  # ...but its late answer still counts
    assert board.complete(0, "slow") is False  # a repeated answer does not
    assert [t.id for t in leased(board.get("fast", 10, 0))] == [1, 2, 3, 4]  # 0 not re-sent
    assert board.complete(1, "fast") is True
    assert board.complete(1, "other") is False
    assert board.leased() == 3


def test_release_hands_back_without_costing_an_attempt() -> None:
    board = make_board(FakeClock())
    leased(board.get("w1", 2, 0))
    assert board.release("w2", [0, 1]) == 0
    assert board.release("w1", [1]) == 1
    assert [(t.id, t.attempt) for t in leased(board.get("w2", 1, 0))] == [(1, 1)]


def test_finish_ends_every_get() -> None:
    board = make_board(FakeClock())
    leased(board.get("w1", 1, 0))
    board.finish()
    over = {"tasks": [], "over": True, "none_left": False}  # w1 holds one: it is told too
    assert board.get("w1", 10, 0) == over
    assert board.get("w2", 10, 5) == over  # no wait once over
    assert board.workers.all_told(within=60) is True


def test_a_stopping_board_gives_no_work_and_answers_at_once_only_a_holder() -> None:
    """A stop (``drain``): a worker holding leases is answered at once that none is left
    for it (its answers first); one holding none waits as any get does (timeout 0 here:
    the fake clock stands still). Until 2026-12-02 every get was answered at once with
    neither, and a worker asked again without a pause for the whole --grace."""
    board = make_board(FakeClock())
    leased(board.get("w1", 2, 0))
    board.drain()
    assert board.get("w1", 10, 0) == {"tasks": [], "over": False, "none_left": True}
    assert board.get("w2", 10, 0) == {"tasks": [], "over": False, "none_left": False}
    assert board.complete(0, "w1") and board.complete(1, "w1")
    assert board.get("w1", 10, 0)["none_left"] is False  # holds none now: it would wait


# --- fencing tokens: every transition of the state machine in master/leases.py ------------
FAILED = Answer(success=False)


def failure(token: int) -> Answer:
    return Answer(success=False, token=token, http_status=None)


def success(token: int) -> Answer:
    return Answer(success=True, token=token)


def test_each_lease_gets_a_new_token_even_after_a_release() -> None:
    clock = FakeClock()
    board = make_board(clock)
    [first] = leased(board.get("w1", 1, 0))
    assert first.token == 1
    board.release("w1", [0])  # no attempt charged...
    [again] = leased(board.get("w2", 1, 0))
    assert (again.attempt, again.token) == (1, 2)  # ...but a new token all the same
    clock.advance(11)
    board.expire()
    [third] = leased(board.get("w3", 1, 0))
    assert (third.attempt, third.token) == (2, 3)


def test_the_live_holder_ends_the_url_with_a_failure_or_a_success() -> None:
    board = make_board(FakeClock())
    tasks = leased(board.get("w1", 2, 0))
    assert board.complete(0, "w1", failure(tasks[0].token)) is True
    assert board.complete(1, "w1", success(tasks[1].token)) is True
    assert board.leased() == 0


def test_a_stale_holders_failure_never_overrides_the_live_lease() -> None:
    """Fault 1 of issue 13, deterministically: W1's lease expires (a partition), W2 holds
    the new one; W1's failure arrives and is ignored; W2's success ends the URL ok."""
    clock = FakeClock()
    board = make_board(clock)
    [old] = leased(board.get("w1", 1, 0))
    clock.advance(11)
    assert board.expire() == []
    [new] = leased(board.get("w2", 1, 0))
    assert board.complete(0, "w1", failure(old.token)) is False  # stale: ignored
    assert board.renew("w2", [0]) == {"renewed": 1, "gone": []}  # W2 still holds it
    assert board.complete(0, "w2", success(new.token)) is True
    assert board.complete(0, "w1", failure(old.token)) is False  # final stays final


def test_a_late_success_from_an_earlier_holder_counts_and_the_live_holder_drops_it() -> None:
    clock = FakeClock()
    board = make_board(clock)
    [old] = leased(board.get("w1", 1, 0))
    clock.advance(11)
    board.expire()
    [new] = leased(board.get("w2", 1, 0))
    assert board.complete(0, "w1", success(old.token)) is True  # a success is a success
    assert board.renew("w2", [0]) == {"renewed": 0, "gone": [0]}  # W2 learns to drop it
    assert board.complete(0, "w2", failure(new.token)) is False  # and cannot override it
    assert board.complete(0, "w2", success(new.token)) is False  # nor answer it twice


def test_a_failure_after_its_lease_expired_is_ignored_and_the_url_retried() -> None:
    clock = FakeClock()
    board = make_board(clock)
    [old] = leased(board.get("w1", 1, 0))
    clock.advance(11)
    board.expire()  # waiting again
    assert board.complete(0, "w1", failure(old.token)) is False
    [again] = leased(board.get("w2", 1, 0))
    assert (again.id, again.token) == (0, 2)


def test_a_waiting_url_takes_a_late_success() -> None:
    clock = FakeClock()
    board = make_board(clock)
    [old] = leased(board.get("w1", 1, 0))
    clock.advance(11)
    board.expire()
    assert board.complete(0, "w1", success(old.token)) is True
    assert [t.id for t in leased(board.get("w2", 10, 0))] == [1, 2, 3, 4]  # 0 not re-sent


def test_a_failure_with_the_right_token_from_another_worker_is_ignored() -> None:
    board = make_board(FakeClock())
    [task] = leased(board.get("w1", 1, 0))
    assert board.complete(0, "forger", failure(task.token)) is False
    assert board.complete(0, "w1", FAILED) is False  # no token: not the live lease's
    assert board.complete(0, "w1", failure(task.token)) is True


def test_renewal_names_leases_that_are_gone_after_expiry() -> None:
    clock = FakeClock()
    board = make_board(clock)
    leased(board.get("w1", 2, 0))
    clock.advance(11)
    board.expire()
    leased(board.get("w2", 1, 0))  # task 0 is W2's now; task 1 waits
    assert board.renew("w1", [0, 1]) == {"renewed": 0, "gone": [0, 1]}


def test_a_spaced_host_is_leased_only_into_the_room_a_worker_has() -> None:
    """``room``: tasks the worker's idle threads would start at once. A task of a host
    whose leases are spaced goes only there (queued behind others, it would start late,
    together with the host's next lease); other hosts' tasks fill the batch."""
    urls = [f"http://{host}.example/{i}.png" for i in range(3) for host in "ab"]
    clock = FakeClock()
    spaced = LeaseBoard(urls, None, 10.0, 3, clock=clock, limits=HostLimits(host_delay=1.0))
    held = spaced.get("w1", 10, 0, room=0)  # held for want of room: "room" says so, and
    assert leased(held) == [] and held["room"] is True  # the worker asks when a thread frees
    assert [t.url for t in leased(spaced.get("w1", 10, 0, room=1))] == [urls[0]]
    assert [t.url for t in leased(spaced.get("w1", 10, 0, room=5))] == [urls[1]]  # a waits
    clock.advance(1.0)
    assert [t.url for t in leased(spaced.get("w1", 10, 0))] == urls[2:4]  # None: any room
    capped = LeaseBoard(urls, None, 10.0, 3, clock=clock, limits=HostLimits(per_host=5))
    answer = capped.get("w1", 10, 0, room=0)
    assert len(leased(answer)) == 6 and answer["room"] is False  # capped, not spaced


def test_a_host_written_with_the_roots_dot_is_the_same_host() -> None:
    """``a.example.`` and ``a.example`` are one absolute name (RFC 1034 3.1) and one Host
    header: one --per-host and one --host-delay for both (until 2026-12-01 two hosts: the
    one server got two requests a millisecond apart). Upper case too, as before."""
    urls = ["http://a.example./0.png", "http://a.example/1.png", "http://A.EXAMPLE./2.png"]
    urls += ["http://b.example/3.png"]
    clock = FakeClock()
    for limits in (HostLimits(per_host=1), HostLimits(host_delay=5.0)):
        board = LeaseBoard(urls, None, 10.0, 3, clock=clock, limits=limits)
        hosts = [t.url.split("/")[2].lower().rstrip(".") for t in leased(board.get("w", 10, 0))]
        assert sorted(hosts) == ["a.example", "b.example"], (limits, hosts)


def test_a_hosts_spacing_counts_from_its_latest_request_not_only_its_lease() -> None:
    """A worker on a busy machine starts a URL late: its request went out 1.4 s after
    the lease, and under --host-delay 1 the host's next lease waits 1 s from then, not
    from the lease (a fresh user's: 57 ms apart under --host-delay 0.5, 2026-12-01). The
    request's age at the result's put is all the worker says; the way here only makes the
    master's estimate later."""
    urls = ["http://a.example/0.png", "http://a.example/1.png"]
    clock = FakeClock()
    board = LeaseBoard(urls, None, 10.0, 3, clock=clock, limits=HostLimits(host_delay=1.0))
    (first,) = leased(board.get("w", 5, 0))
    clock.advance(1.5)
    board.complete(first.id, "w", Answer(True, first.token, 200, request_age=0.1))
    assert leased(board.get("w", 5, 0)) == []  # 1.5 s after the lease, 0.1 s after its request
    clock.advance(0.89)
    assert leased(board.get("w", 5, 0)) == []
    clock.advance(0.02)
    assert [t.url for t in leased(board.get("w", 5, 0))] == urls[1:]


def test_a_url_whose_deadline_went_to_robots_txt_is_put_back_once() -> None:
    """``again`` (a result's ``robots_late``): back to the frontier once a run, for the
    live lease only (fencing), while leases are left; each lease counts."""
    board = make_board(FakeClock(), max_attempts=3)
    [first] = leased(board.get("w1", 1, 0))
    assert not board.again(first.id, "w1", Answer(False, first.token + 1))  # not the live one
    assert not board.again(first.id, "w2", Answer(False, first.token))  # not its holder
    assert board.again(first.id, "w1", Answer(False, first.token))
    assert board.leased() == 0
    [again] = leased(board.get("w2", 1, 0))
    assert (again.id, again.attempt, again.token) == (first.id, 2, first.token + 1)
    assert not board.again(again.id, "w2", Answer(False, again.token))  # once a run
    assert board.complete(again.id, "w2", Answer(False, again.token))
    assert board.attempts(again.id) == 2  # the row's leases


def test_with_no_lease_left_a_late_robots_txt_answer_stands() -> None:
    board = make_board(FakeClock(), max_attempts=1)
    [task] = leased(board.get("w1", 1, 0))
    assert not board.again(task.id, "w1", Answer(False, task.token))
    assert board.complete(task.id, "w1", Answer(False, task.token))


def overloaded_result(task: protocol.Task, retry_after: float | None = None) -> dict:
    """A decoded 429 result of ``task`` (the fields ``leased_again`` reads)."""
    return {"url": task.url, "status": "http_error", "http_status": 429, "token": task.token,
            "attempts": 1, "retry_after": retry_after, "request_age": None, "robots": None,
            "robots_late": None, "final_url": None}  # fmt: skip


def test_a_429_puts_its_url_back_behind_the_hosts_hold_up_to_retries_times() -> None:
    """``overloaded``: a 429 of the live lease holds the host for its Retry-After (every
    worker) and puts the URL back, ``retries`` times; then the answer is the row, which
    counts the requests of the answers put back (``sent_before``)."""
    clock, urls = FakeClock(), ["http://a.example/0.png", "http://a.example/1.png"]
    board = LeaseBoard(urls, None, 10.0, 3, clock=clock, retries=2)
    first, _ = leased(board.get("w1", 2, 0))
    result = overloaded_result(first, retry_after=5.0)
    stale, answer = result | {"token": 9}, Answer.of(result)
    assert not board.leased_again(first.id, "w2", urls[0], result, answer)  # not its holder
    assert not board.leased_again(first.id, "w1", urls[0], stale, Answer.of(stale))  # stale
    assert board.leased_again(first.id, "w1", urls[0], result, answer)
    assert board.leased() == 1
    clock.advance(4.9)
    assert leased(board.get("w2", 1, 0)) == []  # the host's Retry-After holds it
    clock.advance(0.2)
    [again] = leased(board.get("w2", 1, 0))
    assert (again.id, again.attempt, again.token) == (first.id, 2, first.token + 1)
    assert board.overloaded(again.id, "w2", Answer(False, again.token, 429))
    clock.advance(2.1)  # the host's backoff: 1 s, then 2 s
    [third] = leased(board.get("w1", 1, 0))
    assert not board.overloaded(third.id, "w1", Answer(False, third.token, 429))  # spent
    assert board.complete(third.id, "w1", Answer(False, third.token, 429))
    assert (board.attempts(third.id), board.put_backs(third.id)) == (3, (2, 1))
    assert board.put_backs(third.id) == (0, 0)  # forgotten once its row is written


def test_leases_whose_429_put_their_url_back_are_not_lost_ones() -> None:
    """--max-attempts counts leases that went unanswered: a URL answered 429 once and then
    lost once, under --max-attempts 2, is leased again (before, it ended worker_lost)."""
    clock = FakeClock()
    board = LeaseBoard(list(URLS[:1]), None, 10.0, 2, clock=clock, retries=1)
    [task] = leased(board.get("w1", 1, 0))
    assert board.overloaded(task.id, "w1", Answer(False, task.token, 429))
    clock.advance(1.1)
    [again] = leased(board.get("w1", 1, 0))
    assert again.attempt == 2
    clock.advance(10.0)
    assert board.expire() == []  # one lease lost of two
    [third] = leased(board.get("w2", 1, 0))
    assert (third.id, third.attempt) == (task.id, 3)
    clock.advance(10.0)
    assert board.expire() == [task.id]  # two lost: worker_lost


def test_a_429_that_gives_its_host_up_is_the_urls_row() -> None:
    """A Retry-After over BACKOFF_MAX gives the host up: no point in asking again, so the
    answer itself is the row (with its elapsed time and status), not "not fetched"."""
    board = LeaseBoard(list(URLS[:2]), None, 10.0, 3, clock=FakeClock(), retries=2)
    first, second = leased(board.get("w1", 2, 0))
    assert not board.overloaded(first.id, "w1", Answer(False, first.token, 503, 3600.0))
    assert board.complete(first.id, "w1", Answer(False, first.token, 503, 3600.0))
    assert not board.overloaded(second.id, "w1", Answer(False, second.token, 503))  # given up


def test_an_unpaced_leases_429_is_its_row() -> None:
    """A lease politeness does not count (a reuse, whose stored file turned out missing,
    so the worker asked after all) has no host to hold: put back, it was leased again at
    once, a request milliseconds after the 429 (a review's)."""
    board = LeaseBoard(list(URLS[:1]), None, 10.0, 3, clock=FakeClock(), retries=2,
                       unpaced=lambda task_id: True)  # fmt: skip
    [task] = leased(board.get("w1", 1, 0))
    assert not board.overloaded(task.id, "w1", Answer(False, task.token, 429, 20.0))


def test_leases_past_the_counts_cap_end_lost_whatever_answered_before() -> None:
    """The lease count stops at 255: with --max-attempts 1000 and a 429 put back, leases
    lost over and over still end the URL (the answered one subtracted from a capped count
    never reached the limit: the run never ended, a review's)."""
    clock = FakeClock()
    board = LeaseBoard(list(URLS[:1]), None, 10.0, 1000, clock=clock, retries=2)
    [task] = leased(board.get("w", 1, 0))
    assert board.overloaded(task.id, "w", Answer(False, task.token, 429))
    lost: list[int] = []
    for _ in range(300):
        clock.advance(400.0)
        if leased(board.get("w", 1, 0)) == []:
            break
        clock.advance(11.0)
        lost = board.expire()
        if lost:
            break
    assert lost == [task.id] and board.attempts(task.id) == 255


def test_a_lost_url_says_which_of_its_leases_went_unanswered() -> None:
    """A URL answered 429 once (put back), then lost twice under --max-attempts 2: its
    ``worker_lost`` row counts the lost leases, names the answered one and the requests
    it made, and the board forgets the put-back."""
    clock = FakeClock()
    board = LeaseBoard(list(URLS[:1]), None, 10.0, 2, clock=clock, retries=1)
    [task] = leased(board.get("w", 1, 0))
    result = overloaded_result(task)
    assert board.leased_again(task.id, "w", URLS[0], result, Answer.of(result))
    for _ in range(2):
        clock.advance(2.0)
        assert len(leased(board.get("w", 1, 0))) == 1
        clock.advance(11.0)
        lost = board.expire()
    assert lost == [task.id]
    fields = board.lost_fields(task.id)
    assert fields == {"error": "handed out 2 times without an answer (1 more answered 429/503)",
                      "leases": 3, "attempts": 1}  # fmt: skip
    assert board.put_backs(task.id) == (0, 0)


def test_a_host_backed_off_is_let_go_gradually() -> None:
    """After a 429, normal answers halve the host's backoff, 1 s to 0.5, 0.25, 0.125 s,
    and only then let it go, its leases spaced all the while: let go at once after one
    normal answer, every queued URL went together, a rate limiter refused the burst,
    and its URLs spent their retries (a fresh user's, 2026-12-02). Each lease is spaced
    by the backoff of its time (the relax shows a lease later)."""
    gate = HostGate(HostLimits())
    gate.done("h", Answer(False, http_status=429), 0.0, gate.lease("h", 0.0))
    now = 0.0
    for gap in (1.0, 1.0, 0.5, 0.25):
        assert not gate.allowed("h", now + gap - 0.01) and gate.allowed("h", now + gap)
        now += gap
        gate.done("h", Answer(True, http_status=200), now, gate.lease("h", now))
        assert gate.spaced("h") == (gap != 0.25)
    assert gate.allowed("h", now + 0.125)  # the last spacing; then none
