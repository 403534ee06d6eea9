"""A worker's memory for robots.txt (``worker.robots.RobotsCache``, ``keptrules``): what it
keeps is bounded, and a verdict or rule set it dropped decides as before, parsed again
from the verdict kept or, past that, fetched again.

Until 2026-12-02 a worker kept every robots.txt it fetched (a probe's) and every
verdict the master sent it, parsed, for the whole run: 33 KB an origin for a 1 KB
robots.txt, gigabytes for a worker over 100,000 origins. In-process, against real HTTP
servers on loopback and with real Protego rules.
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest
import requests
from imageserver import ImageServer

from crawler import keptrules
from crawler.config import Policy
from crawler.robotstxt import answer_verdict
from crawler.worker import robots
from crawler.worker.robots import RobotsCache

UA = "crawler/1.0 (test)"
POLICY = Policy(user_agent=UA, block_private=False, retries=0, deadline=5.0, read_timeout=3.0)
RULES = "User-agent: *\nDisallow: /no/\n" + "".join(f"Disallow: /private{i}/\n" for i in range(40))


def robots_body(n: int) -> bytes:
    """About 1 KB of rules, told apart by ``n``."""
    return f"# site {n}\n{RULES}".encode()


@pytest.fixture
def sites() -> Iterator[list[ImageServer]]:
    """Four origins (a port each), each with a robots.txt that disallows /no/."""
    servers = [ImageServer().start() for _ in range(4)]
    for n, server in enumerate(servers):
        server.add("/robots.txt", robots_body(n), content_type="text/plain")
    yield servers
    for server in servers:
        server.stop()


def decisions(cache: RobotsCache, server: ImageServer, session: requests.Session) -> list[bool]:
    """Whether /no/ and /ok/ are refused on ``server``, the worker's own fetch (a probe)."""
    refused = []
    for path in ("/no/a.png", "/ok/a.png"):
        _, failure = cache.check(server.url(path), None, session)
        refused.append(failure is not None)
    return refused


def test_verdicts_from_the_master_stay_within_their_bounds(monkeypatch) -> None:
    """300 verdicts of about 1 KB learned and read, room for 8 of them: memory grows by
    what 8 hold, not by each (before: ~33 KB an origin, parsed rules kept for each)."""
    monkeypatch.setattr(keptrules, "KEPT_ENTRIES", 8)
    cache = RobotsCache(POLICY)
    session = requests.Session()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(300):
            cache.learn(n, answer_verdict(200, robots_body(n)))
            _, failure = cache.check(f"http://h{n}.example/no/a.png", n, session)
            assert failure is not None and "disallows" in str(failure)
        gc.collect()  # Protego's parsers hold reference cycles
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown / 300 < 2000, f"{grown / 300:.0f} bytes an origin"
    assert [cache.knows(n) for n in (0, 291, 299)] == [False, False, True]  # 8 kept: 292-299


def test_rules_dropped_are_parsed_again_from_the_verdict_not_fetched(
    sites: list[ImageServer], monkeypatch
) -> None:
    """Room for about two origins' parsed rules, none short of room for their verdicts:
    the first origin's rules, dropped, decide again without a second request."""
    monkeypatch.setattr(keptrules, "KEPT_BYTES", 2500)
    cache, session = RobotsCache(POLICY), requests.Session()
    assert [decisions(cache, s, session) for s in sites] == [[True, False]] * 4
    assert decisions(cache, sites[0], session) == [True, False]
    assert [s.hits("/robots.txt") for s in sites] == [1, 1, 1, 1]


def test_an_origin_dropped_altogether_is_fetched_again_and_decides_the_same(
    sites: list[ImageServer], monkeypatch
) -> None:
    monkeypatch.setattr(keptrules, "KEPT_ENTRIES", 2)
    cache, session = RobotsCache(POLICY), requests.Session()
    assert [decisions(cache, s, session) for s in sites] == [[True, False]] * 4
    assert decisions(cache, sites[0], session) == [True, False]
    assert [s.hits("/robots.txt") for s in sites] == [2, 1, 1, 1]
    assert decisions(cache, sites[3], session) == [True, False]  # still kept: not asked
    assert sites[3].hits("/robots.txt") == 1


def test_a_verdict_dropped_is_fetched_by_the_worker_when_its_task_comes(
    sites: list[ImageServer], monkeypatch
) -> None:
    """A task whose verdict the worker no longer holds (the master's id, dropped before
    the task ran): robots.txt is fetched, reported, and decides."""
    monkeypatch.setattr(keptrules, "KEPT_ENTRIES", 2)
    cache, session = RobotsCache(POLICY), requests.Session()
    for n in range(3):
        cache.learn(n, answer_verdict(200, robots_body(n)))
    assert not cache.knows(0)
    report, failure = cache.check(sites[0].url("/no/a.png"), 0, session)
    assert report == answer_verdict(200, robots_body(0)) and failure is not None
    assert sites[0].hits("/robots.txt") == 1


def test_a_verdict_in_use_stays_known(monkeypatch) -> None:
    """Rules read for every URL keep their verdict known: the worker does not ask the
    master for it again while it uses it (a review's: only the rules were refreshed)."""
    monkeypatch.setattr(keptrules, "KEPT_ENTRIES", 4)
    cache, session = RobotsCache(POLICY), requests.Session()
    cache.learn(0, answer_verdict(200, robots_body(0)))
    for n in range(1, 50):
        cache.learn(n, answer_verdict(200, robots_body(n)))
        _, failure = cache.check("http://h0.example/no/a.png", 0, session)
        assert failure is not None
    assert cache.knows(0) and not cache.knows(1)


def test_rules_dropped_are_parsed_again_by_one_thread(monkeypatch) -> None:
    """16 threads needing the same dropped rules at once: one parse, every answer right
    (a review's: each thread parsed a 500 KiB file, 2.2 s for the slowest)."""
    monkeypatch.setattr(robots, "RULES_BYTES", 1500)  # one 1 KB file's rules at a time
    cache, session = RobotsCache(POLICY), requests.Session()
    cache.learn(1, answer_verdict(200, robots_body(1)))
    cache.learn(2, answer_verdict(200, robots_body(2)))  # drops 1's rules, not its verdict
    parses = []
    real = robots.rules_from

    def counted(verdict: dict) -> robots.Rules:
        parses.append(1)
        time.sleep(0.2)  # long enough for every thread to ask meanwhile
        return real(verdict)

    monkeypatch.setattr(robots, "rules_from", counted)
    answers: list[bool] = []

    def ask() -> None:
        _, failure = cache.check("http://h1.example/no/a.png", 1, session)
        answers.append(failure is not None)

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [True] * 16 and len(parses) == 1


def test_verdicts_room_grows_with_the_threads(monkeypatch) -> None:
    """Twice the threads' worth of verdicts, each as large as robots.txt may be, learned
    in one batch: all still known when their tasks run (a review's: at 64 threads, 65 of
    128 were dropped first and fetched again)."""
    monkeypatch.setattr(robots, "ROBOTS_MAX_BYTES", 4096)
    monkeypatch.setattr(robots, "VERDICT_BYTES", 4096)
    monkeypatch.setattr(robots, "RULES_BYTES", 4096)  # one file's rules: the verdicts decide
    body = robots_body(0) * 4  # about 4 KB
    known = {}
    for threads in (8, 1):
        cache = RobotsCache(POLICY, threads)
        for n in range(16):
            cache.learn(n, answer_verdict(200, body))
        known[threads] = sum(cache.knows(n) for n in range(16))
    assert known == {8: 16, 1: 3}


def test_a_fetched_verdict_expires_and_a_shared_one_does_not(
    sites: list[ImageServer], monkeypatch
) -> None:
    monkeypatch.setattr(robots, "ROBOTS_TTL", 0.3)
    cache, session = RobotsCache(POLICY), requests.Session()
    cache.learn(9, answer_verdict(200, robots_body(9)))
    assert decisions(cache, sites[0], session) == [True, False]
    time.sleep(0.4)
    assert decisions(cache, sites[0], session) == [True, False]
    assert sites[0].hits("/robots.txt") == 2  # asked again once expired, not at each URL
    _, failure = cache.check("http://h9.example/no/a.png", 9, session)
    assert failure is not None and cache.knows(9)  # the master's: it says when it expires
