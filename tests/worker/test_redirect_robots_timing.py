"""A redirect target's robots.txt against the URL's deadline and its hosts' backoff
(``worker.targetrobots``, ``worker.robots``): one URL's pipeline at a time, in-process,
against real HTTP servers on loopback (a review's cases, 2026-12-02).

- the deadline spent before a target is asked: the URL's own timeout, charged to the
  host that was asked last, not to the target nor turned into ``blocked``;
- a slow robots.txt of the target: the timeout names the time it took, so the master
  leases the URL again once (``robots_late``) and charges no host for it;
- an unavailable robots.txt of a target is held for the next URLs sent there, not
  asked again by each;
- a thread waiting for another thread's fetch of it waits no longer than its own URL's
  deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from hostile import client_gone, head, redirect, respond
from imageserver import ImageServer, make_image

from crawler.config import Policy
from crawler.protocol import Task
from crawler.stores import FolderStore
from crawler.worker import pipeline
from crawler.worker.deadline import make_session
from crawler.worker.robots import RobotsCache

PNG = make_image("PNG", 20, 12, seed=7)
ALLOW_ALL = b"User-agent: *\nDisallow:\n"
Handler = Callable[[BaseHTTPRequestHandler], None]


def policy(deadline: float) -> Policy:
    return Policy(deadline=deadline, read_timeout=20.0, retries=0, block_private=False)


def context(pol: Policy, tmp: Path, robots: RobotsCache) -> pipeline.Context:
    return pipeline.Context(
        session=make_session(pol),
        policy=pol,
        store=FolderStore(tmp),
        worker="w",
        robots=robots,
        robots_session=make_session(replace(pol, retries=0)),
    )


def slow(body: bytes, content_type: str, seconds: float, status: int = 200) -> Handler:
    def handle(request: BaseHTTPRequestHandler) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not client_gone(request, 0.1):
            pass
        respond(request, body, content_type, status)

    return handle


def stalled_redirect(location: str) -> Handler:
    """A 302 whose announced body never comes: reading it off runs the deadline out."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        head(request, 302, "text/html", 99, {"Location": location})
        request.wfile.flush()
        while not client_gone(request, 0.1):
            pass
        request.close_connection = True

    return handle


@pytest.fixture
def sites() -> Iterator[tuple[ImageServer, ImageServer, str]]:
    """The listed host, and the target's server seen as another host (127.0.0.2)."""
    listed, target = ImageServer().start(), ImageServer().start()
    try:
        yield listed, target, target.alias("127.0.0.2")
    finally:
        listed.stop()
        target.stop()


@pytest.mark.parametrize("kept", [True, False], ids=["target-robots-kept", "not-kept"])
def test_a_deadline_spent_before_the_target_is_the_urls_timeout(
    sites: tuple[ImageServer, ImageServer, str], tmp_path: Path, kept: bool
) -> None:
    listed, target, tb = sites
    target.add("/robots.txt", ALLOW_ALL, content_type="text/plain")
    target.add("/b.png", PNG, content_type="image/png")
    url = listed.add_handler("/a.png", stalled_redirect(tb + "/b.png"))
    pol = policy(0.8)
    robots = RobotsCache(pol)
    if kept:  # as after an earlier URL sent there
        robots.rules_for(tb + "/x", make_session(pol))
    row = pipeline.process(Task(1, url, 1), context(pol, tmp_path, robots))
    assert row["status"] == "timeout", row
    assert row["final_url"] == url, row  # the host asked last, not the target never asked
    assert target.hits("/b.png") == 0
    assert target.hits("/robots.txt") == (1 if kept else 0)


def test_a_slow_target_robots_txt_is_named_and_the_url_leased_again(
    sites: tuple[ImageServer, ImageServer, str], tmp_path: Path
) -> None:
    """1.5 s for the target's robots.txt and 0.7 s for its image under a 2 s deadline:
    the timeout says where the time went (the master then leases the URL once more,
    charging no host); the second time the rules are kept and the image arrives."""
    listed, target, tb = sites
    target.add_handler("/robots.txt", slow(ALLOW_ALL, "text/plain", 1.5))
    target.add_handler("/b.png", slow(PNG, "image/png", 0.7))
    url = listed.add_handler("/a.png", redirect(tb + "/b.png"))
    pol = policy(2.0)
    robots = RobotsCache(pol)
    row = pipeline.process(Task(1, url, 1), context(pol, tmp_path, robots))
    assert row["status"] == "timeout" and row["robots_late"] is True, row
    assert "s of it for robots.txt first" in row["error"], row
    again = pipeline.process(Task(1, url, 2), context(pol, tmp_path, robots))
    assert again["status"] == "ok", again
    assert target.hits("/robots.txt") == 1


@pytest.mark.parametrize(
    ("status", "headers"), [(503, {}), (429, {"Retry-After": "600"})], ids=["503", "429"]
)
def test_an_unavailable_target_robots_txt_is_held_not_asked_by_each_url(
    sites: tuple[ImageServer, ImageServer, str], tmp_path: Path, status: int, headers: dict
) -> None:
    listed, target, tb = sites
    target.add("/robots.txt", b"busy\n", status=status, content_type="text/plain", headers=headers)
    target.add("/b.png", PNG, content_type="image/png")
    urls = [listed.add_handler(f"/a{i}.png", redirect(tb + "/b.png")) for i in range(10)]
    pol = policy(3.0)
    ctx = context(pol, tmp_path, RobotsCache(pol))
    rows = [pipeline.process(Task(i, url, 1), ctx) for i, url in enumerate(urls)]
    assert {row["status"] for row in rows} == {"blocked"}
    assert all(f"robots.txt unavailable: HTTP {status}" in row["error"] for row in rows), rows[0]
    assert target.hits("/robots.txt") == 1 and target.hits("/b.png") == 0


def test_a_thread_waiting_for_anothers_fetch_keeps_its_own_deadline(
    sites: tuple[ImageServer, ImageServer, str], tmp_path: Path
) -> None:
    """A's URL fetches the target's robots.txt, which never comes (its 4 s deadline
    ends it); B comes to the same target 1 s later with 2 s of its own and waits for
    A's fetch: B ends within its 2 s, not with A's."""
    listed, target, tb = sites
    target.add_handler("/robots.txt", slow(ALLOW_ALL, "text/plain", 30))
    first = listed.add_handler("/first.png", redirect(tb + "/b.png"))
    second = listed.add_handler("/second.png", redirect(tb + "/c.png"))
    robots = RobotsCache(policy(4.0))
    rows: dict[str, dict] = {}

    def go(name: str, url: str, deadline: float, after: float) -> None:
        time.sleep(after)
        pol = policy(deadline)
        rows[name] = pipeline.process(Task(1, url, 1), context(pol, tmp_path, robots))

    threads = [
        threading.Thread(target=go, args=("A", first, 4.0, 0.0)),
        threading.Thread(target=go, args=("B", second, 2.0, 1.0)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert rows["B"]["status"] == "timeout" and rows["B"]["elapsed_s"] < 2.8, rows["B"]
    assert rows["B"]["robots_late"] is True, rows["B"]
    assert rows["A"]["status"] == "blocked", rows["A"]  # unavailable: a timeout
    assert target.hits("/robots.txt") == 1
