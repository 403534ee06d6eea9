"""A redirect back to a URL already asked for is a loop only when the cookies are the same.

Sites check a session or a consent with a cookie: the first request gets ``Set-Cookie``
and a redirect to the same URL (or through a consent page and back), and the request
that carries the cookie gets the image, as in a browser. Until 2026-12-01 the worker
called the second visit a loop (``redirect_error``) and never asked. A redirect to the
same URL with nothing changed is still a loop, and a server that sets a new cookie on
every hop ends at the redirect limit.

Served by a real HTTP server on loopback, fetched with the worker's own ``fetch`` and a
real session; the server counts the requests.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from imageserver import ImageServer, make_image

from crawler.config import Policy
from crawler.exceptions import URLFailure
from crawler.worker.deadline import make_session
from crawler.worker.fetch import fetch

PNG = make_image("PNG", 16, 12, seed=8)
POLICY = Policy(deadline=5.0, retries=0, max_redirects=5, block_private=False)


def redirect(request: BaseHTTPRequestHandler, to: str, cookie: str | None = None) -> None:
    request.send_response(302)
    request.send_header("Location", to)
    if cookie:
        request.send_header("Set-Cookie", f"{cookie}; Path=/")
    request.send_header("Content-Length", "0")
    request.end_headers()


def image_if(cookie: str, otherwise: str, set_cookie: str | None = None):
    """The image to a request carrying ``cookie``; else a redirect to ``otherwise``."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        if cookie in (request.headers.get("Cookie") or ""):
            request.send_response(200)
            request.send_header("Content-Type", "image/png")
            request.send_header("Content-Length", str(len(PNG)))
            request.end_headers()
            request.wfile.write(PNG)
        else:
            redirect(request, otherwise, set_cookie)

    return handle


@pytest.fixture(scope="module")
def server() -> Iterator[ImageServer]:
    with ImageServer() as served:
        served.add_handler("/self.png", image_if("session=1", "/self.png", "session=1"))
        served.add_handler("/guarded.png", image_if("consent=yes", "/consent?next=/guarded.png"))
        served.add_handler("/consent", lambda r: redirect(r, "/guarded.png", "consent=yes"))
        served.add_handler("/loop.png", lambda r: redirect(r, "/loop.png"))
        counter = itertools.count()
        served.add_handler("/fresh.png", lambda r: redirect(r, "/fresh.png", f"n={next(counter)}"))
        yield served


@pytest.mark.parametrize("path", ["/self.png", "/guarded.png"])
def test_a_redirect_back_with_a_new_cookie_gets_the_image(server: ImageServer, path: str) -> None:
    before = server.hits(path)
    download = fetch(make_session(POLICY), server.url(path), POLICY)
    assert download.body == PNG
    assert download.final_url == server.url(path)
    assert server.hits(path) - before == 2  # without the cookie, then with it


@pytest.mark.parametrize(
    ("path", "error", "asked"),
    [("/loop.png", "redirect loop", 1), ("/fresh.png", "more than 5 redirects", 6)],
)
def test_a_redirect_with_nothing_new_is_a_loop(
    server: ImageServer, path: str, error: str, asked: int
) -> None:
    before = server.hits(path)
    with pytest.raises(URLFailure) as failure:
        fetch(make_session(POLICY), server.url(path), POLICY)
    assert (failure.value.status, str(failure.value)) == ("redirect_error", error)
    assert server.hits(path) - before == asked
