"""robots.txt rules as the worker applies them (Protego, RFC 9309), on a corpus of the
shapes real sites' files have: wildcards, ``$``, overlapping Allow/Disallow, several
User-agent lines per group, a BOM, CRLF line ends, a file over 500 KiB.

The files are our own, minimal ones with the constructs of big sites' public files.
Fast and in-process: the verdicts are handed to the worker's cache as the master would.
"""

from __future__ import annotations

import pytest
import requests

from crawler.config import Policy
from crawler.robotstxt import ROBOTS_MAX_BYTES, answer_verdict
from crawler.worker.robots import RobotsCache

UA = "crawler/1.0 (+https://example.org/bot)"
SEARCH_ENGINE = """\
User-agent: *
Disallow: /search
Allow: /search/about
Allow: /search/static
Disallow: /*?*tbm=isch
Disallow: /imgres
Allow: /*.png$
"""
ENCYCLOPEDIA = """\
# several User-agent lines share one group
User-agent: MJ12bot
User-agent: Crawler
User-agent: SemrushBot
Disallow: /

User-agent: *
Allow: /w/load.php?
Disallow: /w/
Disallow: /wiki/Special:
"""
SHOP = """\
User-agent: crawlerbot
Disallow: /

User-agent: *
Disallow: /*.gif$
Disallow: /cart
Allow: /cart/public
Disallow: /tmp/
Allow: /tmp/
Disallow: /caf%C3%A9/
"""
BOM_CRLF = "\ufeffUser-agent: *\r\nDisallow: /private/\r\n\r\nUser-agent: other\r\nDisallow:\r\n"
HUGE = (
    "User-agent: *\nDisallow: /early/\n"
    + "# " + "x" * 70 + "\n" + ("Disallow: /pad/" + "y" * 60 + "\n") * 7000
    + "Disallow: /late/\n"
)  # fmt: skip
CORPUS = {"search": SEARCH_ENGINE, "encyclopedia": ENCYCLOPEDIA, "shop": SHOP, "bom": BOM_CRLF}
CASES = [  # (file, path, allowed)
    ("search", "/search?q=cat", False),
    ("search", "/search/about", True),  # the longer Allow wins
    ("search", "/search/static/logo.png", True),
    ("search", "/img?q=cat&tbm=isch", False),  # * inside the path
    ("search", "/imgres/a.jpg", False),
    ("search", "/search/a.png", True),  # Allow /*.png$ (8) is longer than Disallow /search (7)
    ("search", "/search/a.png?x", False),  # $ anchors the end: the Allow no longer matches
    ("search", "/robots.txt", True),
    ("encyclopedia", "/wiki/Cat.jpg", False),  # our token is one of three in the first group
    ("shop", "/a/b.gif", False),
    ("shop", "/a/b.gif.png", True),
    ("shop", "/a/b.gifx", True),
    ("shop", "/cart/x.png", False),
    ("shop", "/cart/public/x.png", True),
    ("shop", "/tmp/x.png", True),  # Allow and Disallow of equal length: Allow wins
    ("shop", "/caf%C3%A9/x.png", False),  # percent-encoded path rules match encoded URLs
    ("shop", "/other.png", True),  # the crawlerbot group does not apply to crawler
    ("bom", "/private/a.png", False),
    ("bom", "/public/a.png", True),
]


def cache_with(text: str | bytes, status: int = 200) -> RobotsCache:
    cache = RobotsCache(Policy(user_agent=UA))
    body = text.encode() if isinstance(text, str) else text
    cache.learn(7, answer_verdict(status, body))
    return cache


def allowed(cache: RobotsCache, path: str) -> bool:
    report, failure = cache.check(f"http://site.example{path}", 7, requests.Session())
    assert report is None  # a shared verdict: nothing fetched, nothing to report
    return failure is None


@pytest.mark.parametrize(("name", "path", "expected"), CASES)
def test_corpus(name: str, path: str, expected: bool) -> None:
    assert allowed(cache_with(CORPUS[name]), path) is expected


def test_a_blocked_url_says_why_and_was_never_asked_for() -> None:
    _, failure = cache_with(SHOP).check("http://site.example/cart/a.png", 7, requests.Session())
    assert failure is not None and failure.status == "blocked"
    assert str(failure) == "robots.txt disallows this URL for crawler"
    assert failure.attempts == 0


def test_a_group_for_us_wins_over_star_whatever_the_case() -> None:
    cache = cache_with("USER-AGENT: CRAWLER\nDISALLOW: /mine/\n\nUser-agent: *\nDisallow: /\n")
    assert allowed(cache, "/mine/a.png") is False
    assert allowed(cache, "/other/a.png") is True  # only our group applies


def test_rules_past_the_first_512_kib_are_not_read() -> None:
    body = HUGE.encode()[:ROBOTS_MAX_BYTES]  # what fetch_text keeps of a longer file
    assert len(HUGE) > ROBOTS_MAX_BYTES
    cache = cache_with(body)
    assert allowed(cache, "/early/a.png") is False
    assert allowed(cache, "/late/a.png") is True


@pytest.mark.parametrize("status", [404, 401, 403, 0])
def test_no_usable_answer_allows_everything(status: int) -> None:
    assert allowed(cache_with("User-agent: *\nDisallow: /\n", status), "/a.png") is True


def test_many_wildcards_do_not_freeze_the_matcher() -> None:
    """CVE-2026-55520 (fixed in Protego 0.6.2): this would backtrack for hours."""
    cache = cache_with("User-agent: *\nDisallow: /" + "*1" * 12 + "*Z\n")
    assert allowed(cache, "/" + "1" * 60) is True
