"""Following a redirect: its one ``Location``, read from the raw bytes, and loops.

A redirect's ``Location`` is read from its raw bytes (``urls.location_text``: UTF-8
where it is UTF-8, other bytes percent-encoded), never by requests'
``get_redirect_target``, whose strict UTF-8 decode raises on any other byte. It must
be one field: RFC 9110 10.2.2 defines Location as a single URI-reference, and the Fetch
Standard ("extract header list values") fails a response with several; as Chromium and
Firefox do, copies that are byte for byte the same count as one, different ones make
the answer a ``redirect_error`` ("several Location headers").

A loop is a URL asked for again with the same cookies. A server that sets a cookie and
sends the client back to the same URL (a session or consent check) answers the second
request otherwise, as it does in a browser; until 2026-12-01 that was a
``redirect_error``, "redirect loop". A server that sets a new cookie on every hop ends
at ``--max-redirects`` ("more than N redirects").
"""

from __future__ import annotations

import requests

from crawler.exceptions import RedirectFailure
from crawler.urls import location_text, resolve_url

Cookies = frozenset[tuple[str, str, str, str | None]]  # (domain, path, name, value) of each


class Trail:
    """The URLs one fetch asked for, each with the cookies it was asked with."""

    def __init__(self, session: requests.Session, url: str) -> None:
        """A fetch starts with no cookies: they last one URL's redirects (the loop check
        above). A download thread's session lives for the run, and its jar kept every
        cookie of every host: each request scanned it all for its Cookie header, and
        each hop copied it (a review's, 2026-12-02: 30 ms a request with 10,000
        cookies)."""
        session.cookies.clear()
        self._session = session
        self._seen: set[tuple[str, Cookies]] = {(url, self._cookies())}

    def follow(self, current: str, resp: requests.Response) -> str:
        """The target of ``resp``, a redirect from ``current``: an absolute URL that passes
        the input checks (``urls.resolve_url``). RedirectFailure for several different
        Location fields, a target refused, or a loop."""
        try:
            target = resolve_url(current, _location(resp))
        except ValueError as exc:
            raise RedirectFailure(f"refused redirect target: {exc}") from None
        visit = (target, self._cookies())  # the cookies the answer set are in the jar
        if visit in self._seen:
            raise RedirectFailure("redirect loop")
        self._seen.add(visit)
        return target

    def _cookies(self) -> Cookies:
        return frozenset((c.domain, c.path, c.name, c.value) for c in self._session.cookies)


def _location(resp: requests.Response) -> str:
    """The redirect's one Location as text (see the module docstring); RedirectFailure
    when the answer has several different ones."""
    fields = {_field_bytes(value).strip(b" \t") for value in resp.raw.headers.getlist("Location")}
    if len(fields) > 1:
        raise RedirectFailure(f"several Location headers ({len(fields)} different targets)")
    return location_text(fields.pop()) if fields else ""


def _field_bytes(value: str) -> bytes:
    """A field value's bytes as sent: http.client decodes a response's header block as
    Latin-1, so encoding it back gives them exactly (UTF-8 only for what cannot be)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", errors="surrogatepass")
