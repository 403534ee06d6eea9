"""robots.txt (RFC 9309) as the whole cluster reads it: the parser, the product token, and
the verdict a worker fetched, in the form the master keeps and hands to other workers.

Rules are read by Protego (Scrapy's RFC 9309 parser): the longest matching ``Allow`` or
``Disallow`` path wins (``Allow`` on a tie), ``*`` matches any run of characters and a
final ``$`` anchors the end, a group applies when its ``User-agent`` name matches our
product token (not any substring of it), and ``/robots.txt`` itself is always allowed.

A *verdict* is what one fetch of an origin's robots.txt decided, as a JSON-able dict:

- ``{"status": 200, "body": "<base64>"}``: an answer (2xx: the rules in the body; any
  other status: no rules, everything allowed, RFC 9309 section 2.3.1.3);
- ``{"refused": "<why>"}``: the origin's own address failed ``--block-private``;
- ``{"unavailable": "<why>"}``: a transient failure (5xx, 429, timeout, connection error,
  RFC 9309 section 2.3.1.4): never kept, the origin is backed off and asked again; with
  ``"retry_after": <seconds>`` when a 429/503 said how long (RFC 9110 10.2.3).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from protego import Protego

from crawler.constants import RETRY_AFTER_MAX

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 2.5: parsers must read at least 500 KiB
ROBOTS_MAX_REDIRECTS = 5  # RFC 9309 2.3.1.2: follow at least five consecutive redirects
ROBOTS_TTL = 24 * 3600.0  # seconds a verdict is kept (RFC 9309 2.4: at most 24 hours)
CRAWL_DELAY_CAP = 60.0  # seconds: a Crawl-delay above this is applied as this


def product_token(user_agent: str) -> str:
    """The name bots are addressed by: the user agent up to its first '/', lower case."""
    return user_agent.split("/", 1)[0].strip().lower()


def parse_robots(body: bytes) -> Protego:
    """A Protego parser for ``body`` (UTF-8, undecodable bytes replaced, BOM dropped; a
    body of ``ROBOTS_MAX_BYTES`` or more was cut there, so its partial last line is dropped)."""
    text = body.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if len(body) >= ROBOTS_MAX_BYTES:
        text = text.rpartition("\n")[0]
    return Protego.parse(text)


def answer_verdict(status: int, body: bytes) -> dict[str, Any]:
    """The verdict for an HTTP answer: ``status`` and (2xx only) the body."""
    ok = 200 <= status < 300
    return {"status": status, "body": base64.b64encode(body if ok else b"").decode("ascii")}


def rules_of(verdict: dict[str, Any]) -> Protego | None:
    """The parser of an answer verdict with rules, or None when everything is allowed."""
    status = verdict.get("status")
    if not isinstance(status, int) or not 200 <= status < 300:
        return None
    return parse_robots(verdict_body(verdict))


def verdict_body(verdict: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(str(verdict.get("body") or ""), validate=True)
    except (binascii.Error, ValueError):
        return b""


def check_verdict(raw: Any) -> dict[str, Any] | None:
    """``raw`` if it is a well-formed verdict (any peer may send one), else None."""
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("status"), int) and not isinstance(raw["status"], bool):
        body = raw.get("body")
        if isinstance(body, str) and len(body) <= 2 * ROBOTS_MAX_BYTES:
            return {"status": raw["status"], "body": body}
        return None
    if isinstance(raw.get("refused"), str):
        return {"refused": raw["refused"][:300]}
    if isinstance(raw.get("unavailable"), str):
        verdict: dict[str, Any] = {"unavailable": raw["unavailable"][:300]}
        asked = raw.get("retry_after")
        if type(asked) in (int, float) and 0 <= asked <= RETRY_AFTER_MAX:  # NaN fails too
            verdict["retry_after"] = float(asked)
        return verdict
    return None


def crawl_delay(verdict: dict[str, Any], user_agent: str) -> float | None:
    """The ``Crawl-delay`` of our group in an answer verdict, capped at CRAWL_DELAY_CAP."""
    parser = rules_of(verdict)
    delay = parser.crawl_delay(product_token(user_agent)) if parser is not None else None
    if delay is None or not delay > 0:
        return None
    return min(float(delay), CRAWL_DELAY_CAP)
