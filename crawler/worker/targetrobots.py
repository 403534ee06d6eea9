"""robots.txt for each redirect target: a redirect is a request like any other.

RFC 9309 2.2.2 applies an origin's rules to every access to it, and Scrapy's
RobotsTxtMiddleware checks each redirected request as it checks the first. So before a
fetch asks for a redirect target (``fetch.fetch``'s ``admit``), the target is read
against its origin's robots.txt: on the URL's own origin, the verdict the task came
with (none: the worker's own fetch, as the origin's probe); on another origin, that
origin's robots.txt, fetched by this worker once (``RobotsCache.rules_for``: kept,
within bounds, for ``ROBOTS_TTL``), not by the master for the cluster, and within the
URL's deadline. A disallowed target ends the URL ``blocked`` ("robots.txt disallows the
redirect target URL for crawler") before it is asked for; a target whose robots.txt is
unavailable ends it ``blocked`` too ("robots.txt unavailable: ... (the redirect target
URL)"), a transient failure, tried again on the next run, and answers that origin's next
targets for a while without a request (``robots.HELD_FOR``). Until 2026-12-02 no target
was checked: an image whose CDN's robots.txt disallowed us was downloaded and stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from crawler.urls import origin_of
from crawler.worker import deadline
from crawler.worker.robots import RobotsCache


class TargetCheck:
    """The check of each redirect target of ``url``'s fetch (``verdict_id``: the task's
    verdict of ``url``'s origin, None for none; ``session``: robots.txt's, no retries).
    Called with a target, it raises the URLFailure that ends the URL (Blocked,
    PrivateAddress; TimeoutFailure for a deadline spent waiting on another thread's
    fetch); ``spent``: seconds its robots.txt fetches and waits took, which the URL's
    deadline timeout names (``pipeline._name_robots_share``): such a URL is leased
    again once, no host charged for the time (a review's: a slow CDN robots.txt made
    working images time out against their own host)."""

    def __init__(
        self, url: str, verdict_id: int | None, robots: RobotsCache, session: requests.Session
    ) -> None:
        self._home, self._verdict_id = origin_of(url), verdict_id
        self._robots, self._session = robots, session
        self.spent = 0.0

    def __call__(self, target: str) -> None:
        if deadline.remaining() <= 0:
            return  # the hop's own send fails as it would have: the URL's timeout
        kept = self._verdict_id if origin_of(target) == self._home else None
        started = time.monotonic()
        try:
            with _outer_deadline_kept():
                _, failure = self._robots.check(
                    target, kept, self._session, f"the redirect target {target}"
                )
        finally:
            self.spent += time.monotonic() - started
        if failure is not None:
            deadline.clock.hop = target  # refused: the row's final_url names it (``fetch``)
            raise failure


@contextmanager
def _outer_deadline_kept() -> Iterator[None]:
    """A robots.txt fetched inside the URL's fetch starts and stops a deadline of its own
    (``deadline.start``, ``stop``), which would end the outer one's: the hops after it
    would have no clamped timeouts. The outer one's deadline, hop and retried tries are
    put back; the inner one ends with the URL's anyway (``deadline.bound_url``)."""
    clock = deadline.clock
    saved = (getattr(clock, "deadline", None), clock.hop, clock.failed_tries)
    try:
        yield
    finally:
        clock.deadline, clock.hop, clock.failed_tries = saved
