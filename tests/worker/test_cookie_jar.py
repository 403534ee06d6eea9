"""Cookies last one URL's fetch (``worker.redirects.Trail``): a download thread's session
lives for the whole run, and until 2026-12-02 its jar kept every cookie every host set,
each request scanning them all for its Cookie header and each hop copying them (30 ms a
request at 10,000 cookies: a review's). In-process, against a real server on loopback;
the cookie a redirect chain needs still rides along within it."""

from __future__ import annotations

from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from hostile import respond
from imageserver import ImageServer, make_image

from crawler.config import Policy
from crawler.protocol import Task
from crawler.stores import FolderStore
from crawler.worker import pipeline
from crawler.worker.deadline import make_session
from crawler.worker.robots import RobotsCache

PNG = make_image("PNG", 20, 12, seed=11)
POLICY = Policy(deadline=5.0, read_timeout=3.0, retries=0, block_private=False)


def consent(n: int):
    """Sets cookie ``c{n}`` and sends the client back to the same URL; with it, the PNG."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        if f"c{n}=yes" in (request.headers.get("Cookie") or ""):
            respond(request, PNG, "image/png", headers={"Set-Cookie": f"after{n}=1; Path=/"})
        else:
            headers = {"Set-Cookie": f"c{n}=yes; Path=/", "Location": request.path}
            respond(request, b"", "text/html", 302, headers)

    return handle


def test_cookies_last_one_urls_fetch(tmp_path: Path) -> None:
    with ImageServer() as server:
        urls = [server.add_handler(f"/img/{n}.png", consent(n)) for n in range(200)]
        ctx = pipeline.Context(make_session(POLICY), POLICY, FolderStore(tmp_path), "w")
        sizes = []
        for n, url in enumerate(urls):
            row = pipeline.process(Task(n, url, 1), replace(ctx))
            assert row["status"] == "ok", row  # the chain's own cookie went with it
            sizes.append(len(ctx.session.cookies))
        assert max(sizes) <= 2, sizes  # this URL's two, not every earlier URL's


def test_robots_txt_never_shares_the_download_session(tmp_path: Path) -> None:
    """A context that consults robots.txt must bring the session to fetch it with: a
    fetch clears its session's cookies, and a redirect target's robots.txt comes in the
    middle of a download's trail (until 2026-12-02 a missing one was made anew for each
    URL, or the download's own was used)."""
    store = FolderStore(tmp_path)
    with pytest.raises(ValueError, match="needs its robots_session"):
        pipeline.Context(make_session(POLICY), POLICY, store, "w", robots=RobotsCache(POLICY))
    robots_session = make_session(POLICY)
    ctx = pipeline.Context(
        make_session(POLICY), POLICY, store, "w", RobotsCache(POLICY), robots_session
    )
    assert ctx.robots_http is robots_session
