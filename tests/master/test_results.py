"""The result path with fencing: real result strings through ResultIntake and the board.

Fault 1 of issue 13 driven deterministically: a partitioned worker's failures arrive
after its lease was handed to another worker; they must not end the URL, and the live
holder's success must.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.master import closing
from crawler.master.fencing import Answer
from crawler.master.healing import transient
from crawler.master.leases import LeaseBoard
from crawler.master.plan import Plan, plan_run
from crawler.master.politeness import GIVE_UP_AFTER
from crawler.master.results import ResultIntake
from crawler.protocol import decode_result, decode_task, encode_result

URLS = [f"http://example.com/{i}.jpg" for i in range(3)]


def result(task_id: int, worker: str, token: int, status: str) -> str:
    fields = {"id": task_id, "url": URLS[task_id], "worker": worker, "status": status}
    if status == "ok":
        fields |= {"path": "ab/cd/x.jpg", "bytes": 10, "width": 1, "height": 1, "format": "JPEG"}
    else:
        fields |= {"error": "connection reset"}
    return encode_result(fields | {"token": token, "attempts": 1})


def planned(
    tmp_path: Path, urls: list[str], lease_seconds: float
) -> tuple[Plan, LeaseBoard, ResultIntake, list[float]]:
    """A run of ``urls`` planned, its board on a clock the test moves (``now[0]``)."""
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    plan = plan_run((str(listing),), "run", lambda rows: None, spool=tmp_path)
    now = [0.0]
    board = LeaseBoard(plan.store, plan.state, lease_seconds, 3, clock=lambda: now[0])
    return plan, board, ResultIntake(plan, board, "run"), now


def test_stale_failures_are_dropped_and_the_live_success_is_kept(tmp_path: Path) -> None:
    plan, board, intake, now = planned(tmp_path, URLS, 10.0)
    try:
        w1 = [decode_task(t) for t in board.get("w1", 3, 0)["tasks"]]
        now[0] = 11.0  # W1 partitioned past its leases
        assert intake.lost_rows() == []  # expired, attempts left: waiting again
        w2 = [decode_task(t) for t in board.get("w2", 3, 0)["tasks"]]
        assert [t.token for t in w2] == [2, 2, 2]
        # The link heals: W1's failures arrive while W2 is still downloading.
        stale = [("w1", result(t.id, "w1", t.token, "connection_error")) for t in w1]
        assert intake.rows([("w1", [text for _, text in stale])]) == []
        # W2's successes (and one late success of W1's for task 2) all count.
        batch = [result(0, "w2", 2, "ok"), result(1, "w2", 2, "ok")]
        late = [result(2, "w1", 1, "ok")]
        rows = intake.rows([("w2", batch), ("w1", late)])
        assert [(r["url"], r["status"], r["worker"]) for r in rows] == [
            (URLS[0], "ok", "w2"),
            (URLS[1], "ok", "w2"),
            (URLS[2], "ok", "w1"),
        ]
        assert all(r["leases"] == 2 for r in rows)
        assert "token" not in rows[0]  # a wire field, not a manifest column
        # W2's answer for task 2 comes too late, as a failure: ignored.
        assert intake.rows([("w2", [result(2, "w2", 2, "timeout")])]) == []
    finally:
        plan.close()


def test_a_host_answering_429_to_everything_is_given_up_for_the_run(tmp_path: Path) -> None:
    """Each 429 doubles the host's backoff (up to 5 minutes a URL: a list of a thousand
    would keep a night's run open for days). After GIVE_UP_AFTER in a row its other URLs
    end at once, unfetched, as transient failures the next run tries again; the other
    host goes on, and a normal answer in between resets the count."""
    urls = [f"http://slow.example/{i}.jpg" for i in range(20)] + ["http://fine.example/a.jpg"]
    plan, board, intake, now = planned(tmp_path, urls, 600.0)

    def answer(status: int) -> None:
        task = next(decode_task(t) for t in board.get("w", 1, 0)["tasks"] if "slow" in t)
        fields = {"id": task.id, "url": task.url, "worker": "w", "status": "http_error"}
        fields |= {"http_status": status, "error": f"HTTP {status}", "token": task.token}
        assert len(intake.rows([("w", [encode_result(fields)])])) == 1
        now[0] += 400  # past any backoff (at most 300 s)

    try:
        for status in [429] * (GIVE_UP_AFTER - 1) + [404] + [503] * (GIVE_UP_AFTER - 1):
            answer(status)  # a 404 between: never GIVE_UP_AFTER in a row
        assert intake.lost_rows() == []
        answer(429)  # the GIVE_UP_AFTER-th in a row
        tasks = [decode_task(t) for t in board.get("w", 50, 0)["tasks"]]
        assert [t.url for t in tasks] == ["http://fine.example/a.jpg"]  # none of slow's
        rows = intake.lost_rows()
        left = len(urls) - 1 - 2 * GIVE_UP_AFTER
        assert len(rows) == left and {r["url"] for r in rows} <= set(urls[:20])
        assert {(r["status"], r["http_status"]) for r in rows} == {("http_error", 429)}
        assert (
            rows[0]["error"]
            == "not fetched: slow.example answered 8 requests in a row with 429/503"
        )
        assert transient(rows[0])  # the next run tries them again
        # The rows end the run's accounting: not fetched, and not tried (closing.alarm).
        fine = {"id": tasks[0].id, "url": tasks[0].url, "worker": "w", "status": "ok"}
        fine |= {"path": "ab/cd/x.jpg", "bytes": 10, "width": 1, "height": 1, "format": "JPEG"}
        assert len(intake.rows([("w", [encode_result(fine | {"token": tasks[0].token})])])) == 1
        intake.written()
        assert intake.changes["not_fetched"] == left and intake.changes["new_ok"] == 1
        tried = 2 * GIVE_UP_AFTER + 1  # the answered ones; the not fetched asked nothing
        why = closing.alarm(plan, intake.changes, 0.5)
        assert why == f"{tried - 1} of {tried} URLs tried failed (--max-failure-rate 0.5)"
    finally:
        plan.close()


def test_a_host_that_never_answers_in_time_is_backed_off_and_given_up(tmp_path: Path) -> None:
    """Timeouts are overload as 429/503 are: each backs the host off (its other URLs wait,
    the other host goes on), and after GIVE_UP_AFTER in a row (a 429 among them counts)
    its other URLs end at once, unfetched, as ``timeout``. Until 2026-12-01 a host that
    accepted connections and never answered held every download thread of the cluster,
    its URLs timing out one after the other, other hosts waiting minutes (a fresh
    user's)."""
    urls = [f"http://dead.example/{i}.jpg" for i in range(20)] + ["http://fine.example/a.jpg"]
    plan, board, intake, now = planned(tmp_path, urls, 600.0)

    def answer(status: str, http_status: int | None = None) -> None:
        task = next(decode_task(t) for t in board.get("w", 1, 0)["tasks"] if "dead" in t)
        fields = {"id": task.id, "url": task.url, "worker": "w", "status": status}
        fields |= {"http_status": http_status, "error": "read timeout", "token": task.token}
        assert len(intake.rows([("w", [encode_result(fields)])])) == 1

    try:
        answer("timeout")
        held = [decode_task(t).url for t in board.get("w", 50, 0)["tasks"]]
        assert held == ["http://fine.example/a.jpg"]  # backed off: none of dead's now
        for status, code in [("timeout", None)] * (GIVE_UP_AFTER - 3) + [("http_error", 503)]:
            now[0] += 400  # past any backoff (at most 300 s)
            answer(status, code)
        assert intake.lost_rows() == []
        now[0] += 400
        answer("timeout")  # the GIVE_UP_AFTER-th overloaded answer in a row
        again = [decode_task(t).url for t in board.get("w", 50, 0)["tasks"]]
        assert again == ["http://fine.example/a.jpg"]  # its lease ran out; dead's none
        rows = intake.lost_rows()
        assert len(rows) == len(urls) - 1 - GIVE_UP_AFTER
        assert {(r["status"], r["http_status"]) for r in rows} == {("timeout", None)}
        said = "dead.example answered 8 requests in a row with 429/503 or not in time"
        assert rows[0]["error"] == f"not fetched: {said}", rows[0]
        assert transient(rows[0])  # the next run tries them again
        # An outage: they count as failures tried, and the run alarms (a review's: such a
        # run had exited 0, its given-up URLs counted as "not fetched", untried).
        intake.written()
        assert intake.changes["not_fetched"] == 0
        tried = len(rows) + GIVE_UP_AFTER
        assert closing.alarm(plan, intake.changes, 0.5) == (
            f"none of the {tried} URLs tried succeeded"
        )
    finally:
        plan.close()


def test_answers_to_requests_already_out_are_one_burst(tmp_path: Path) -> None:
    """A rate limiter that refuses 20 requests sent together has answered once: the host
    is backed off 1 s, then 2 s after the next refusal of a request sent after that, and
    not given up. Before, every answer of the burst doubled the backoff (to its 5-minute
    cap) and counted in the row, so one burst gave the host up: its 20 other URLs ended
    unfetched. Answers to requests older than the backoff do not relax it either."""
    urls = [f"http://slow.example/{i}.jpg" for i in range(40)]
    plan, board, intake, now = planned(tmp_path, urls, 600.0)

    def answer(task_id: int, token: int, status: int) -> None:
        fields = {"id": task_id, "url": urls[task_id], "worker": "w", "status": "http_error"}
        fields |= {"http_status": status, "error": f"HTTP {status}", "token": token}
        assert len(intake.rows([("w", [encode_result(fields)])])) == 1

    def leased_at(at: float) -> list[tuple[int, int]]:
        now[0] = at
        return [(t.id, t.token) for t in map(decode_task, board.get("w", 5, 0)["tasks"])]

    try:
        burst = leased_at(0.0) + leased_at(0.0) + leased_at(0.0) + leased_at(0.0)
        assert len(burst) == 20  # all out at once: no limit set
        for task_id, token in burst[:19]:
            answer(task_id, token, 429)
        answer(*burst[19], 404)  # sent before the backoff: says nothing of the host now
        assert intake.lost_rows() == []  # not given up
        assert leased_at(0.99) == []  # backed off 1 s from the first refusal
        (later,) = leased_at(1.01)
        answer(*later, 429)  # a request sent after the backoff: the second refusal
        assert leased_at(3.0) == [] and len(leased_at(3.02)) == 1  # 2 s, not 2**20 s
        assert intake.lost_rows() == []
    finally:
        plan.close()


def test_a_retry_after_is_waited_out_and_a_long_one_gives_the_host_up(tmp_path: Path) -> None:
    """A 429/503 with Retry-After: the host gets no lease before then (RFC 9110 10.2.3),
    also when the answer belongs to a burst already counted; one asking for more than
    BACKOFF_MAX gives the host up for the run, saying why. Until 2026-12-01 the master
    ignored it: a host asking for two minutes, or an hour, was asked again within 1 s."""
    urls = [f"http://slow.example/{i}.jpg" for i in range(10)]
    plan, board, intake, now = planned(tmp_path, urls, 6000.0)

    def leased_at(at: float) -> list[tuple[int, int]]:
        now[0] = at
        return [(t.id, t.token) for t in map(decode_task, board.get("w", 2, 0)["tasks"])]

    def answer(task: tuple[int, int], status: int, retry_after: float | None) -> None:
        fields = {"id": task[0], "url": urls[task[0]], "worker": "w", "status": "http_error"}
        fields |= {"http_status": status, "error": f"HTTP {status}", "token": task[1]}
        fields |= {} if retry_after is None else {"retry_after": retry_after}
        assert len(intake.rows([("w", [encode_result(fields)])])) == 1

    try:
        first, second = leased_at(0.0)
        answer(first, 429, 120.0)
        answer(second, 503, 150)  # the same burst: no second backoff, but its ask holds
        assert leased_at(1.5) == [] and leased_at(149.9) == []
        (third,) = leased_at(150.1)  # one: the host is spaced while backed off
        answer(third, 429, None)  # no Retry-After: the backoff alone (doubled: 2 s)
        assert leased_at(151.0) == [] and intake.lost_rows() == []
        (fourth,) = leased_at(152.2)
        answer(fourth, 503, 3600.0)  # an hour: more than BACKOFF_MAX
        now[0] = 5000.0
        assert board.get("w", 50, 0)["tasks"] == []  # the others end, unleased
        rows = intake.lost_rows()
        assert len(rows) == 10 - 4 and {(r["status"], r["http_status"]) for r in rows} == {
            ("http_error", 503)
        }
        assert rows[0]["error"] == (
            "not fetched: slow.example asked to wait 3600 s (Retry-After), more than 300"
        )
        assert transient(rows[0]) and rows[0]["attempts"] == 0
    finally:
        plan.close()


def test_a_retry_after_out_of_range_is_refused_on_receipt(tmp_path: Path) -> None:
    """The field comes from a worker: negative, NaN, infinite or past 1e6 s is not one."""
    plan, board, intake, _now = planned(tmp_path, URLS, 60.0)
    try:
        task = decode_task(board.get("w", 1, 0)["tasks"][0])
        for bad in (-1.0, float("nan"), float("inf"), 2e6):
            fields = {"id": task.id, "url": task.url, "worker": "w", "status": "http_error"}
            fields |= {"http_status": 429, "retry_after": bad, "token": task.token}
            assert intake.rows([("w", [encode_result(fields)])]) == []
    finally:
        plan.close()


def test_a_late_retry_after_holds_a_host_whose_backoff_has_relaxed(tmp_path: Path) -> None:
    """No --per-host nor --host-delay: a burst is refused (backed off 1 s), a later request
    answers 200 (the backoff relaxes), then a late answer of the burst asks for 200 s.
    The host gets no lease before then (a review's: the gate counted as inactive, and 5
    more URLs were leased a second later)."""
    urls = [f"http://slow.example/{i}.jpg" for i in range(10)]
    plan, board, intake, now = planned(tmp_path, urls, 6000.0)

    def answer(task: tuple[int, int], status: str, code: int, retry_after: float | None) -> None:
        fields = {"id": task[0], "url": urls[task[0]], "worker": "w", "status": status}
        fields |= {"http_status": code, "token": task[1], "error": None}
        if status == "ok":
            fields |= {"path": "ab/cd/x.jpg", "bytes": 10, "width": 1, "height": 1}
            fields |= {"format": "JPEG", "error": None}
        fields |= {} if retry_after is None else {"retry_after": retry_after}
        assert len(intake.rows([("w", [encode_result(fields)])])) == 1

    def leased_at(at: float, count: int) -> list[tuple[int, int]]:
        now[0] = at
        return [(t.id, t.token) for t in map(decode_task, board.get("w", count, 0)["tasks"])]

    try:
        burst = leased_at(0.0, 3)
        answer(burst[0], "http_error", 429, None)  # backed off 1 s
        (later,) = leased_at(2.0, 1)
        answer(later, "ok", 200, None)  # relaxed (to 0.5 s: spaced, one lease at a time)
        answer(burst[1], "http_error", 429, 200.0)  # late, of the burst: its ask holds
        assert leased_at(3.0, 5) == [] and leased_at(201.0, 5) == []
        assert len(leased_at(202.5, 5)) == 1
    finally:
        plan.close()


def test_a_body_too_slow_for_the_deadline_is_no_silence_of_its_host() -> None:
    """A timeout after the answer's status (a body slower than --deadline: the link or
    the deadline) does not back the host off as a silent one; one with no answer does."""
    base = {"id": 0, "url": URLS[0], "worker": "w", "status": "timeout", "token": 1}
    silent = decode_result(encode_result(base))
    slow = decode_result(encode_result(base | {"http_status": 200}))
    assert Answer.of(silent).timed_out and not Answer.of(slow).timed_out


def test_robots_late_puts_back_a_timeout_only(tmp_path: Path) -> None:
    """``robots_late`` (the deadline went to robots.txt) puts a ``timeout`` back once; on
    any other status it is no reason to drop the row (a worker says it of nothing else)."""
    plan, board, intake, _ = planned(tmp_path, URLS, 10.0)
    try:
        tasks = [decode_task(t) for t in board.get("w1", 2, 0)["tasks"]]

        def late(task_id: int, token: int, status: str) -> str:
            return encode_result(json.loads(result(task_id, "w1", token, status)) | {
                "robots_late": True})  # fmt: skip

        [ok] = intake.rows([("w1", [late(tasks[0].id, tasks[0].token, "ok")])])
        assert (ok["url"], ok["status"], ok["leases"]) == (URLS[0], "ok", 1)
        assert intake.rows([("w1", [late(tasks[1].id, tasks[1].token, "timeout")])]) == []
        [again] = [decode_task(t) for t in board.get("w1", 1, 0)["tasks"]]
        assert again.id == tasks[1].id
        [row] = intake.rows([("w1", [late(again.id, again.token, "timeout")])])  # once a run
        assert (row["status"], row["leases"]) == ("timeout", 2)
        assert "robots_late" not in row  # a wire field, not a manifest column
    finally:
        plan.close()


def overloaded(task_id: int, url: str, token: int, asked: float | None, final_url: str) -> str:
    """A 503 result asking for ``asked`` s, given by ``final_url`` (a redirect's target)."""
    fields = {"id": task_id, "url": url, "worker": "w", "status": "http_error", "token": token}
    fields |= {"http_status": 503, "error": "HTTP 503", "final_url": final_url}
    return encode_result(fields | ({"retry_after": asked} if asked is not None else {}))


def test_a_redirect_targets_503_holds_and_gives_up_the_target_not_the_listed_host(
    tmp_path: Path,
) -> None:
    """a.example redirects to cdn.example, which answers 503 asking for 400 s: the CDN is
    given up (its own listed URL ends "not fetched: cdn.example asked ..."), and
    a.example waits out the backoff cap (300 s) for it, then goes on; it is given up
    only after GIVE_UP_AFTER such answers in a row, saying where they came from. Until
    2026-12-02 a.example took it all: given up at once, "a.example asked to wait 400 s",
    its other images unfetched (a fresh user's)."""
    urls = [f"http://a.example/{i}.jpg" for i in range(12)] + ["http://cdn.example/own.jpg"]
    plan, board, intake, now = planned(tmp_path, urls, 600.0)

    def lease_a() -> list:
        return [t for t in map(decode_task, board.get("w", 50, 0)["tasks"]) if "a.ex" in t.url]

    try:
        first = lease_a()[0]
        board.release("w", list(range(1, 13)))  # only the first is out
        text = overloaded(first.id, first.url, first.token, 400.0, "http://cdn.example/x.jpg")
        [row] = intake.rows([("w", [text])])
        assert row["final_url"] == "http://cdn.example/x.jpg"
        assert board.get("w", 50, 0)["tasks"] == []  # a.example waits for its CDN
        [cdn] = intake.lost_rows()  # the CDN's own URL: given up, unfetched
        assert cdn["error"] == (
            "not fetched: cdn.example asked to wait 400 s (Retry-After), more than 300"
        )
        now[0] += 299
        assert lease_a() == []
        for count in range(1, GIVE_UP_AFTER):  # a.example goes on; the CDN answers 503
            now[0] += 400
            task = lease_a()[0]
            board.release("w", [t for t in range(13) if t != task.id])
            text = overloaded(task.id, task.url, task.token, None, "http://cdn.example/y.jpg")
            assert len(intake.rows([("w", [text])])) == 1, count
        now[0] += 400
        assert lease_a() == []  # the GIVE_UP_AFTER-th in a row gave it up
        rows = intake.lost_rows()
        assert len(rows) == 12 - GIVE_UP_AFTER, rows
        assert rows[0]["error"] == (
            "not fetched: a.example answered 8 requests in a row with 429/503 "
            "(the last by cdn.example, where it redirects)"
        )
    finally:
        plan.close()


@pytest.mark.parametrize(
    ("status", "http_status", "asked", "hold"),
    [("http_error", 503, 3.0, 3.0), ("http_error", 429, None, 1.0), ("timeout", None, None, 1.0)],
)
def test_a_redirect_targets_overload_holds_the_targets_own_urls(
    tmp_path: Path, status: str, http_status: int | None, asked: float | None, hold: float
) -> None:
    """A 503 with a Retry-After, a 429, a timeout met through a.example's redirect hold
    the CDN (its Retry-After, or its first backoff) for its own listed URLs too, and
    a.example while its target is held (until 2026-12-02 only a.example's were held:
    the CDN was asked at once)."""
    urls = ["http://a.example/0.jpg", "http://a.example/1.jpg", "http://cdn.example/own.jpg"]
    plan, board, intake, now = planned(tmp_path, urls, 600.0)
    try:
        tasks = [decode_task(t) for t in board.get("w", 50, 0)["tasks"]]
        board.release("w", [t.id for t in tasks[1:]])
        text = overloaded(tasks[0].id, urls[0], tasks[0].token, asked, "http://cdn.example/x.jpg")
        fields = json.loads(text) | {"status": status, "http_status": http_status}
        assert len(intake.rows([("w", [json.dumps(fields)])])) == 1
        now[0] += hold - 0.1
        assert board.get("w", 50, 0)["tasks"] == []  # neither a.example nor the CDN
        now[0] += 0.2
        leased = {decode_task(t).url for t in board.get("w", 50, 0)["tasks"]}
        assert leased == {urls[1], urls[2]}
    finally:
        plan.close()


def test_a_url_put_back_by_a_503_then_given_up_says_not_fetched_again(tmp_path: Path) -> None:
    """Its first 503 put it back (--retries 1); a second URL's Retry-After of 400 s gave
    the host up: that answer is its own URL's row, the one put back ends "not fetched
    again", counting the request it made and its lease, a URL tried that failed (a fresh
    user's run of 10 failed of 13 tried, counted "not fetched", exited 0), and the third
    "not fetched", none."""
    urls = [f"http://slow.example/{i}.jpg" for i in range(3)]
    plan, _, _, now = planned(tmp_path, urls, 600.0)
    board = LeaseBoard(plan.store, plan.state, 600.0, 3, clock=lambda: now[0], retries=1)
    intake = ResultIntake(plan, board, "run")
    try:
        first, second, _ = [decode_task(t) for t in board.get("w", 3, 0)["tasks"]]
        text = overloaded(first.id, first.url, first.token, None, first.url)
        assert intake.rows([("w", [json.dumps(json.loads(text) | {"attempts": 1})])]) == []
        text = overloaded(second.id, second.url, second.token, 400.0, second.url)
        [row] = intake.rows([("w", [text])])
        assert (row["url"], row["error"]) == (second.url, "HTTP 503")
        board.release("w", [2])
        assert board.get("w", 3, 0)["tasks"] == []  # both end unleased, the host given up
        rows = {r["url"]: r for r in intake.lost_rows()}
        why = "slow.example asked to wait 400 s (Retry-After), more than 300"
        assert (rows[urls[0]]["error"], rows[urls[0]]["attempts"]) == (
            f"not fetched again: {why}",
            1,
        )
        assert (rows[urls[0]]["leases"], rows[urls[2]]["leases"]) == (1, None)
        intake.written()  # asked once, it is a URL tried (closing.alarm), a failure
        assert (intake.changes["not_fetched"], intake.changes["new_failures"]) == (1, 2)
        assert (rows[urls[2]]["error"], rows[urls[2]]["attempts"]) == (f"not fetched: {why}", 0)
    finally:
        plan.close()


def test_a_host_whose_target_is_backed_off_is_spaced_as_its_target(tmp_path: Path) -> None:
    """Thirty URLs of a.example all redirect to a CDN that answers 503: after the first
    burst, a.example is leased one URL at a time, spaced by the CDN's backoff, as a host
    backed off itself is, and the CDN gets no second burst when its hold ends (a review
    found the whole queue sent there at once, every time)."""
    urls = [f"http://a.example/{i}.jpg" for i in range(30)]
    plan, _, _, now = planned(tmp_path, urls, 600.0)
    board = LeaseBoard(plan.store, plan.state, 600.0, 3, clock=lambda: now[0], retries=10)
    intake = ResultIntake(plan, board, "run")
    leased = []
    try:
        for _ in range(5):
            tasks = [decode_task(t) for t in board.get("w", 50, 0)["tasks"]]
            leased.append(len(tasks))
            for task in tasks:
                text = overloaded(task.id, task.url, task.token, None, "http://cdn.example/x")
                intake.rows([("w", [text])])
            now[0] += 70  # past each backoff (1, 2, 4, 8, 16 s)
        assert leased == [30, 1, 1, 1, 1], leased
    finally:
        plan.close()


def test_the_answer_that_gives_a_host_up_through_its_targets_is_its_urls_row(
    tmp_path: Path,
) -> None:
    """a.example's images live on eight CDN shards, each answering one 503: the eighth
    in a row gives a.example up, and that answer is its own URL's row (``ends_host``
    looked at the shard alone: the URL was put back and ended "not fetched")."""
    urls = [f"http://a.example/{i}.jpg" for i in range(10)]
    plan, _, _, now = planned(tmp_path, urls, 600.0)
    board = LeaseBoard(plan.store, plan.state, 600.0, 3, clock=lambda: now[0], retries=10)
    intake = ResultIntake(plan, board, "run")
    try:
        rows = []
        for shard in range(GIVE_UP_AFTER):
            task = decode_task(board.get("w", 1, 0)["tasks"][0])
            text = overloaded(task.id, task.url, task.token, None, f"http://cdn{shard}.example/x")
            rows += intake.rows([("w", [text])])
            now[0] += 400
        assert len(rows) == 1 and rows[0]["error"] == "HTTP 503", rows
        assert board.get("w", 50, 0)["tasks"] == []  # given up: the others end unfetched
        lost = intake.lost_rows()
        assert len(lost) == 9 and "a.example answered 8 requests in a row" in lost[-1]["error"]
    finally:
        plan.close()


def test_a_targets_retry_after_ends_for_the_gate_too(tmp_path: Path) -> None:
    """The CDN (no URL of its own in the lists) asked for 3 s through a.example's
    redirect: once a.example is leased again after it, the hold is over for the gate
    too (it kept the gate ``active``, per-task work for the rest of the run, a review
    found)."""
    urls = ["http://a.example/0.jpg", "http://a.example/1.jpg"]
    plan, board, intake, now = planned(tmp_path, urls, 600.0)
    try:
        first = decode_task(board.get("w", 1, 0)["tasks"][0])
        text = overloaded(first.id, first.url, first.token, 3.0, "http://cdn.example/x")
        assert len(intake.rows([("w", [text])])) == 1
        now[0] += 3.1
        second = decode_task(board.get("w", 1, 0)["tasks"][0])
        ok = {"id": second.id, "url": second.url, "worker": "w", "status": "ok"}
        ok |= {"path": "ab/cd/x.jpg", "bytes": 10, "width": 1, "height": 1, "format": "JPEG"}
        ok |= {"token": second.token, "final_url": "http://cdn.example/y", "http_status": 200}
        assert len(intake.rows([("w", [encode_result(ok)])])) == 1  # the CDN relaxes
        gate = board._gate
        assert gate._asked_until == {}, gate._asked_until  # held no more
    finally:
        plan.close()
