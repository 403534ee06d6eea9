"""Opt-out signals: robots.txt (RFC 9309) per origin, and the X-Robots-Tag response header.

A ``RobotsCache`` lives for one worker run. It fetches the robots.txt of each origin
(scheme, host, port) at most once, whichever download thread asks first, while any other
thread asking for the same origin waits for that answer; a new run starts empty, so a
site's changes are seen by the next run. robots.txt is fetched with the asking thread's
own session through ``fetch.fetch_text``: the same deadline, retries, address guard and
redirect checks as an image, at most ``ROBOTS_MAX_REDIRECTS`` hops (across hosts too),
the body cut at ``ROBOTS_MAX_BYTES`` (what fits is parsed, as RFC 9309 allows).

What the answer means (RFC 9309, section 2.3.1):

- 2xx: the rules are parsed with ``urllib.robotparser`` and applied to our user agent;
- 4xx (404 and 401/403 too) and redirects that cannot be followed (a loop, too many,
  not http(s)): there are no rules for us, everything is allowed;
- 5xx, 429, a timeout, a connection error, a redirect to a refused address: the
  file is *unreachable*, everything on the origin is disallowed for this run
  (``Blocked``: "robots.txt unavailable: ...");
- the origin's own address refused by ``--block-private``: the URL fails as
  ``private_address``, exactly as its download would have.

``x_robots_opt_out`` reads X-Robots-Tag headers: a directive ``noai``, ``noimageai``,
``noindex`` or ``none``, bare or after our product token and a colon (``crawler:
noai``), opts the image out; one after another bot's name (``otherbot: noai``) does not.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.robotparser import RobotFileParser

import requests

from crawler.config import Policy
from crawler.exceptions import (
    Blocked,
    FetchFailure,
    PrivateAddress,
    RedirectFailure,
    URLFailure,
)
from crawler.urls import Origin, origin_of, robots_url
from crawler.worker.fetch import fetch_text

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks parsers to read at least 500 KiB
ROBOTS_MAX_REDIRECTS = 5  # RFC 9309: follow at least five consecutive redirects
OPT_OUT_DIRECTIVES = frozenset({"noai", "noimageai", "noindex", "none"})
# X-Robots-Tag directives that take a value after a colon: "max-snippet: 20" names no bot.
_VALUED_DIRECTIVES = frozenset(
    {"max-snippet", "max-image-preview", "max-video-preview", "unavailable_after"}
)


@dataclass(frozen=True)
class Rules:
    """What one origin's robots.txt says, as far as this run is concerned."""

    parser: RobotFileParser | None = None  # None: no rules for us, everything allowed
    unreachable: str | None = None  # why robots.txt could not be had: everything disallowed
    refused: str | None = None  # the origin's own address failed the guard
    # When the host could not be reached at all (timeout, connection error), the URL gets
    # that failure's own status: "blocked" would hide that the network is the problem.
    network: type[FetchFailure] | None = None


class RobotsCache:
    """robots.txt rules per origin for one worker run; thread-safe, one fetch per origin."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._lock = threading.Lock()
        self._rules: dict[Origin, Rules] = {}
        self._pending: dict[Origin, threading.Event] = {}  # origins being fetched right now

    def check(self, url: str, session: requests.Session) -> None:
        """Return if ``url`` may be fetched; else raise Blocked (or PrivateAddress).

        The first call for an origin fetches its robots.txt with ``session``; calls
        for the same origin from other threads meanwhile wait for that fetch.
        """
        rules = self.rules_for(url, session)
        if rules.refused is not None:
            failure: URLFailure = PrivateAddress(rules.refused)
            failure.attempts = 1  # as for a download refused at its first hop
            raise failure
        if rules.unreachable is not None:
            kind = rules.network or Blocked
            failure = kind(f"robots.txt unavailable: {rules.unreachable}")
        elif rules.parser is not None and not rules.parser.can_fetch(self._policy.user_agent, url):
            token = product_token(self._policy.user_agent)
            failure = Blocked(f"robots.txt disallows this URL for {token}")
        else:
            return
        failure.attempts = 0  # no request was made for the URL itself
        raise failure

    def rules_for(self, url: str, session: requests.Session) -> Rules:
        """The rules of ``url``'s origin, fetched now by this thread if nobody has yet."""
        origin = origin_of(url)
        while True:
            with self._lock:
                rules = self._rules.get(origin)
                if rules is not None:
                    return rules
                pending = self._pending.get(origin)
                mine = pending is None
                if mine:
                    pending = self._pending[origin] = threading.Event()
            assert pending is not None
            if not mine:
                # Bounded: the fetching thread gives up at the policy's deadline. If it
                # died instead (a bug), the loop makes this thread fetch in its place.
                pending.wait()
                continue
            try:
                rules = load_rules(robots_url(origin), session, self._policy)
                with self._lock:
                    self._rules[origin] = rules
                return rules
            finally:
                with self._lock:
                    del self._pending[origin]
                pending.set()


def load_rules(url: str, session: requests.Session, policy: Policy) -> Rules:
    """Fetch the robots.txt at ``url`` and decide what it means for this run."""
    try:
        status, body = fetch_text(session, url, policy, ROBOTS_MAX_BYTES, ROBOTS_MAX_REDIRECTS)
    except PrivateAddress as failure:
        if failure.attempts == 1:  # refused before any answer: the origin itself
            return Rules(refused=str(failure))
        return Rules(unreachable=f"redirected to a refused address: {failure}")
    except RedirectFailure:
        return Rules()  # RFC 9309 2.3.1.2: may be treated as unavailable, i.e. no rules
    except FetchFailure as failure:  # timeout, connection error
        return Rules(unreachable=str(failure), network=type(failure))
    if status >= 500 or status == 429:
        return Rules(unreachable=f"HTTP {status}")
    if not 200 <= status < 300:
        return Rules()  # 4xx: no robots.txt, no rules
    return Rules(parser=parse_robots(url, body))


def parse_robots(url: str, body: bytes) -> RobotFileParser:
    """A parser fed with ``body`` (UTF-8, undecodable bytes replaced, BOM dropped)."""
    text = body.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if len(body) >= ROBOTS_MAX_BYTES:
        text = text.rpartition("\n")[0]  # the file was cut: drop its partial last line
    parser = RobotFileParser(url)
    parser.parse(text.splitlines())
    return parser


def x_robots_opt_out(values: Iterable[str], user_agent: str) -> str | None:
    """The X-Robots-Tag directive that opts the response out for us, or None.

    Each header value is a comma-separated list of directives; ``name: directive``
    starts a part meant for the bot ``name`` only, which runs to the end of that
    header value or the next ``name:``. Directives are matched case-insensitively.
    """
    ours = product_token(user_agent)
    for value in values:
        bot: str | None = None  # None: meant for every bot
        for item in value.split(","):
            name, colon, rest = item.partition(":")
            if colon and name.strip().lower() not in _VALUED_DIRECTIVES:
                bot, item = name.strip().lower(), rest
            directive = item.strip().lower()
            if directive in OPT_OUT_DIRECTIVES and bot in (None, ours):
                return directive if bot is None else f"{bot}: {directive}"
    return None


def product_token(user_agent: str) -> str:
    """The name bots are addressed by: the user agent up to its first '/', lower case.

    This is also what ``RobotFileParser.can_fetch`` matches robots.txt groups against.
    """
    return user_agent.split("/", 1)[0].strip().lower()
