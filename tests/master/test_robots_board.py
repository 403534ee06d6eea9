"""robots.txt on the master, driven by a fake clock: one probe per origin, verdicts shared
by id, transient failures backing the origin off, Crawl-delay spacing the host.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import base64

import pytest
from test_leases import FakeClock, leased

from crawler.config import HostLimits
from crawler.master.fencing import Answer
from crawler.master.leases import LeaseBoard
from crawler.master.verdicts import ROBOTS_MAX_FAILURES, origin_key
from crawler.robotstxt import ROBOTS_TTL, answer_verdict, check_verdict

UA = "crawler/1.0 (+https://example.org/bot)"
A = [f"http://a.example/{i}.png" for i in range(4)]
B = [f"https://b.example:8443/{i}.png" for i in range(2)]
UNAVAILABLE = {"unavailable": "HTTP 503"}


def make_board(
    clock: FakeClock, urls: list[str], max_attempts: int = 3, **limits: float
) -> LeaseBoard:
    return LeaseBoard(
        list(urls), None, 600.0, max_attempts, clock=clock, limits=HostLimits(**limits),
        user_agent=UA,
    )  # fmt: skip


def robots(text: str) -> dict:
    return answer_verdict(200, text.encode())


def test_origin_key() -> None:
    assert origin_key("http://a.example/x/y.png") == "http://a.example"
    assert origin_key("https://b.example:8443/?q") == "https://b.example:8443"


def test_one_probe_per_origin_until_its_verdict_is_in() -> None:
    clock = FakeClock()
    board = make_board(clock, A + B)
    first = leased(board.get("w1", 10, 0))
    assert [t.url for t in first] == [A[0], B[0]]  # one probe each, the rest held back
    assert all(t.robots is None for t in first)  # a probe fetches robots.txt itself
    assert leased(board.get("w2", 10, 0)) == []
    assert board.robots_answer(0, "w1", A[0], robots("User-agent: *\nDisallow:\n")) is False
    assert board.complete(0, "w1", Answer(http_status=200)) is True
    rest = leased(board.get("w2", 10, 0))
    assert [t.url for t in rest] == A[1:]
    assert {t.robots for t in rest} == {1}  # the shared verdict, by id
    assert board.verdicts([1, 99, "x"]) == [
        {"id": 1, "verdict": robots("User-agent: *\nDisallow:\n")}
    ]


def test_a_probe_that_ends_without_a_verdict_lets_another_probe() -> None:
    clock = FakeClock()
    board = make_board(clock, A)
    leased(board.get("w1", 10, 0))
    assert board.complete(0, "w1") is True  # e.g. a worker_error before robots.txt
    assert [t.id for t in leased(board.get("w1", 10, 0))] == [1]


def test_verdicts_expire_after_a_day() -> None:
    clock = FakeClock()
    board = make_board(clock, A)
    leased(board.get("w1", 1, 0))
    board.robots_answer(0, "w1", A[0], robots(""))
    board.complete(0, "w1", Answer(http_status=200))
    assert leased(board.get("w1", 1, 0))[0].robots == 1
    clock.advance(ROBOTS_TTL)
    assert leased(board.get("w1", 1, 0))[0].robots is None  # the next one probes again


def test_unavailable_robots_txt_backs_the_origin_off_and_puts_the_url_back() -> None:
    clock = FakeClock()
    board = make_board(clock, A[:2] + B)
    assert [t.id for t in leased(board.get("w1", 10, 0))] == [0, 2]
    assert board.robots_answer(0, "w1", A[0], UNAVAILABLE) is True  # back to the frontier
    assert board.leased() == 1
    assert [t.id for t in leased(board.get("w1", 10, 0))] == []  # B's probe is out, A waits
    steps = []
    for _ in range(2):  # the origin's next probe waits 1 s, then 2 s
        waited = 0.0
        while not (tasks := leased(board.get("w1", 10, 0))):
            clock.advance(0.25)
            waited += 0.25
        assert len(tasks) == 1  # still one probe at a time
        steps.append(waited)
        board.robots_answer(tasks[0].id, "w1", A[0], UNAVAILABLE)
    assert steps == [1.0, 2.0]
    assert board.attempts(0) + board.attempts(1) == 3  # each probe is one lease


def test_a_url_whose_leases_are_spent_is_final() -> None:
    clock = FakeClock()
    board = make_board(clock, A[:1], max_attempts=2)
    leased(board.get("w1", 1, 0))
    assert board.robots_answer(0, "w1", A[0], UNAVAILABLE) is True
    clock.advance(1)
    leased(board.get("w1", 1, 0))
    assert board.robots_answer(0, "w1", A[0], UNAVAILABLE) is False  # the answer is final
    assert board.complete(0, "w1") is True


def test_an_origin_unavailable_too_often_is_given_up_for_a_while() -> None:
    clock = FakeClock()
    urls = [f"http://a.example/{i}.png" for i in range(ROBOTS_MAX_FAILURES + 2)]
    board = make_board(clock, urls)
    final = set()
    for _ in range(ROBOTS_MAX_FAILURES):
        clock.advance(300)
        (task,) = leased(board.get("w1", 1, 0))  # the same URL, until its leases are spent
        if not board.robots_answer(task.id, "w1", task.url, UNAVAILABLE):
            final.add(task.id)
    assert final == {0, 1, 2}  # 3 + 3 + 2 probes: the 8th answer ends URL 2 too
    clock.advance(1)  # within GIVE_UP_SECONDS
    tasks = leased(board.get("w1", 100, 0))
    # The other URLs go out at once, with the shared failure: they end blocked at once.
    assert [t.id for t in tasks] == list(range(3, len(urls)))
    assert {t.robots for t in tasks} == {1}
    assert board.verdicts([1]) == [{"id": 1, "verdict": UNAVAILABLE}]


def test_crawl_delay_spaces_the_host_unless_host_delay_is_set() -> None:
    """Spaced from the verdict: the probe asks for its own image once it has it (the
    next lease went out at once, and two requests reached the host together)."""
    text = "User-agent: crawler\nCrawl-delay: 2\n\nUser-agent: *\nCrawl-delay: 30\n"
    for limits, spacing in (({}, 2.0), ({"host_delay": 0.5}, 0.5)):
        clock = FakeClock()
        board = make_board(clock, A, **limits)
        leased(board.get("w1", 10, 0))
        clock.advance(1)
        board.robots_answer(0, "w1", A[0], robots(text))
        board.complete(0, "w1", Answer(http_status=200))
        times = []
        start = clock.now
        while len(times) < 3:
            times += [clock.now - start] * len(leased(board.get("w1", 10, 0)))
            clock.advance(0.25)
        assert times == [spacing, 2 * spacing, 3 * spacing], limits


def test_ignore_robots_holds_nothing_back() -> None:
    board = LeaseBoard(list(A), None, 600.0, 3, clock=FakeClock(), user_agent=None)
    tasks = leased(board.get("w1", 10, 0))
    assert len(tasks) == 4 and all(t.robots is None for t in tasks)


def test_verdict_bodies_travel_as_base64() -> None:
    verdict = robots("User-agent: *\nDisallow: /x\n")
    assert base64.b64decode(verdict["body"]) == b"User-agent: *\nDisallow: /x\n"
    assert answer_verdict(404, b"ignored") == {"status": 404, "body": ""}


def test_a_verdict_found_before_the_result_releases_the_origin() -> None:
    """The probe's image may take long: its verdict, reported at once, lets the rest go."""
    board = make_board(FakeClock(), A)
    leased(board.get("w1", 10, 0))
    found = [{"id": 0, "verdict": robots("")}]
    assert board.robots_found("w2", found) == 0  # not w2's task: ignored
    assert board.robots_found("w1", [{"id": 0, "verdict": {"bogus": 1}}, "x", {"id": "0"}]) == 0
    assert leased(board.get("w1", 10, 0)) == []
    assert board.robots_found("w1", found) == 1
    assert [t.id for t in leased(board.get("w1", 10, 0))] == [1, 2, 3]  # probe 0 still out


def test_tasks_a_verdict_spares_a_request_are_not_spaced() -> None:
    """Under a Crawl-delay, the URLs robots.txt disallows for our token (and, for an origin
    whose address was refused, all of them) are leased at once, held back or not yet seen,
    and count nothing against the host: their workers end them without a request. The
    allowed ones keep the spacing. Reuses of stored images stay unpaced, as before."""
    urls = [f"http://a.example/{p}/{i}.png" for p in ("ok", "no", "ok", "no") for i in range(3)]
    text = "User-agent: *\nCrawl-delay: 5\nDisallow: /no/\n\nUser-agent: crawler\nAllow: /\n"
    for verdict, silent, spaced in (
        (robots("User-agent: *\nCrawl-delay: 5\nDisallow: /no/\n"), {"no"}, True),
        (robots(text), set(), False),  # our own group: all allowed, no Crawl-delay
        ({"refused": "127.0.0.1 is private"}, {"ok", "no"}, False),
    ):
        clock = FakeClock()
        board = make_board(clock, urls, per_host=2)  # a cap: the silent ones are not counted
        (probe,) = leased(board.get("w1", 20, 0))  # the rest held: the probe is out
        board.robots_answer(probe.id, "w1", probe.url, verdict)
        board.complete(probe.id, "w1", Answer(http_status=200))
        kinds = [t.url.split("/")[3] for t in leased(board.get("w1", 20, 0))]
        expected = sum(u.split("/")[3] in silent for u in urls[1:])
        asked = len(kinds) - expected  # leased for a request: one spaced, else the cap
        assert sum(k in silent for k in kinds) == expected, (verdict, kinds)
        assert asked == (0 if spaced else min(2, len(urls) - 1 - expected)), (verdict, kinds)
        if spaced:  # the allowed ones wait the Crawl-delay from the verdict, one by one
            clock.advance(5)
            assert [t.url.split("/")[3] for t in leased(board.get("w1", 20, 0))] == ["ok"]
        assert board.robots.silent(0, "http://a.example/no/9.png", clock.now) == ("no" in silent)


@pytest.mark.parametrize(
    "rules, short_is_read",
    [
        ("".join(f"Disallow: /*q{i}*z\n" for i in range(600)), True),  # wildcards
        ("".join(f"Disallow: /p{i}.html$\n" for i in range(20_000)), False),  # many rules
        ("".join(f"Disallow: /a{i:05d}/\n" for i in range(20_000)), False),  # many prefixes
    ],
    ids=["wildcards", "anchored", "prefixes"],
)
def test_rules_too_costly_to_read_under_the_lock_are_left_to_the_worker(
    rules: str, short_is_read: bool
) -> None:
    """Protego may look at every rule and scans a URL once per wildcard: a robots.txt of
    many wildcards and URLs of thousands of characters made one check take 0.65 s under
    the board's lock (a fresh user's, 2026-12-01: no worker got a task for 85 s), and
    20,000 anchored rules 5 ms (a review's). Above PRECHECK_COST_MAX the master does not
    read the rules for a URL (it is not "silent": it waits its spacing, and its worker
    reads the rules, as for any URL); below it, the rules spare the request as before."""
    clock = FakeClock()
    short, long = "http://a.example/no/" + "a" * 50, "http://a.example/no/" + "a" * 3000
    board = make_board(clock, [short, long, "http://a.example/x.png"], host_delay=5)
    (probe,) = leased(board.get("w1", 20, 0))
    verdict = robots("User-agent: *\n" + rules + "Disallow: /no/\n")
    board.robots_answer(probe.id, "w1", probe.url, verdict)
    board.complete(probe.id, "w1", Answer(http_status=200))
    assert board.robots.silent(1, short, clock.now) == short_is_read
    assert not board.robots.silent(1, long, clock.now)


def test_a_probe_kept_for_its_host_or_rerouted_does_not_hold_its_origin() -> None:
    """Per-host stores, a --refresh-after run: revalidations ask robots.txt, so one of an
    origin's becomes its probe; host affinity then keeps it for the host that holds the
    file, or sends it back (rerouted) when that host does not come. The probe's
    registration must go with it: until it did, the origin's other tasks (and a rerouted
    probe itself) were held for good (found in review), and the run never ended."""
    stored = {"path": "ab/cd/x.png", "bytes": 1, "etag": None, "last_modified": None,
              "sha256": None, "refresh": True, "verify": None}  # fmt: skip
    for wait in (0.0, 1e9):  # B never comes: rerouted at once; B may come: kept for it
        clock = FakeClock()
        board = LeaseBoard(
            list(A), None, 600.0, 3, clock=clock, user_agent=UA,
            stored_copy=lambda i: stored if i == 0 else None,
        )  # fmt: skip
        board.prefer_hosts(lambda i: "B" if i == 0 else None, wait)
        out = []
        for _ in range(3):  # the kept or rerouted first, then the next probe
            out += leased(board.get("a-worker", 10, 0))
            if out:
                break
        (probe,) = out  # one probe for the origin, whichever task it is
        board.robots_answer(probe.id, "a-worker", probe.url, robots("User-agent: *\n"))
        board.complete(probe.id, "a-worker", Answer(http_status=200))
        rest = leased(board.get("a-worker", 10, 0))
        assert len(rest) == len(A) - 1 - (1 if wait else 0), (wait, rest)  # 0 stays kept


def test_a_robots_txt_retry_after_holds_the_origins_next_probe() -> None:
    """A 503 robots.txt asking to come back in 20 s: the origin's next probe waits 20 s,
    not the 1-s backoff (until 2026-12-01 the Retry-After was ignored: a fresh user's)."""
    clock = FakeClock()
    board = make_board(clock, A[:2])
    leased(board.get("w1", 10, 0))
    asked = {"unavailable": "HTTP 503", "retry_after": 20.0}
    assert board.robots_answer(0, "w1", A[0], asked) is True
    clock.advance(19.75)
    assert leased(board.get("w1", 10, 0)) == []
    clock.advance(0.25)
    assert len(leased(board.get("w1", 10, 0))) == 1  # one probe, 20 s on


@pytest.mark.parametrize("seconds", [301.0, 3600.0, 1_000_000.0])
def test_a_robots_txt_asking_for_more_than_5_minutes_gives_the_origin_up_at_once(
    seconds: float,
) -> None:
    clock = FakeClock()
    board = make_board(clock, [f"http://a.example/{i}.png" for i in range(5)])
    leased(board.get("w1", 10, 0))
    asked = {"unavailable": "HTTP 503", "retry_after": seconds}
    assert board.robots_answer(0, "w1", A[0], asked) is False  # final: ends blocked
    tasks = leased(board.get("w1", 2, 0))  # others at once, with the shared failure
    assert [t.id for t in tasks] == [1, 2] and {t.robots for t in tasks} == {1}
    assert board.verdicts([1]) == [{"id": 1, "verdict": asked}]
    clock.advance(min(seconds, ROBOTS_TTL) - 1)
    assert [t.robots for t in leased(board.get("w1", 1, 0))] == [1]  # still given up
    clock.advance(1)
    assert [t.robots for t in leased(board.get("w1", 1, 0))] == [None]  # then a probe


@pytest.mark.parametrize("asked", [True, -1, float("nan"), float("inf"), "60", 2e6, None])
def test_a_peers_retry_after_is_kept_only_when_it_is_a_wait(asked: object) -> None:
    """A verdict comes from a peer holding the key: anything else in it is dropped."""
    assert check_verdict({"unavailable": "HTTP 503", "retry_after": asked}) == UNAVAILABLE
    assert check_verdict({"unavailable": "HTTP 503", "retry_after": 60}) == {
        "unavailable": "HTTP 503",
        "retry_after": 60.0,
    }
