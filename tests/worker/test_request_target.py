"""A URL is asked for by the bytes it names: a bare ``%`` never re-encodes the others.

A list line may hold a ``%`` that starts no ``%XX`` (``/100%_caf%C3%A9.png``). requests
(``requote_uri``) and urllib3 (``parse_url``, ``_encode_target``) quote *every* ``%`` of
such a URL, so until 2026-12-01 the request line read ``/100%25_caf%25C3%25A9.png``:
another resource, a 404 where curl got the image (a fresh user's). Each URL here is
fetched with the worker's own ``fetch`` from a real HTTP server on loopback, which
records the request target as it came off the wire.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes, urlsplit

import pytest
from hostile import recording
from hypothesis import example, given
from hypothesis import strategies as st
from imageserver import ImageServer, make_image
from test_wire_bytes import POLICY, SWEEP, Wire, wire

from crawler.urls import normalize_url, request_target
from crawler.worker.fetch import fetch

__all__ = ["wire"]  # the fixture, shared with test_wire_bytes

JPEG = make_image("JPEG", 30, 20, seed=71)
_XX = re.compile(rb"%([0-9A-Fa-f]{2})")


def named_bytes(text: str) -> bytes:
    """The octets ``text`` names (RFC 3986 2.1): each ``%XX`` one octet, a bare ``%``
    itself, any other character its UTF-8 bytes."""
    return _XX.sub(lambda m: bytes([int(m[1], 16)]), text.encode("utf-8"))


@pytest.mark.parametrize(
    ("line", "target"),
    [
        ("/100%_caf%C3%A9.png", "/100%25_caf%C3%A9.png"),
        ("/50%off%20sale.png", "/50%25off%20sale.png"),
        ("/a%2", "/a%252"),
        ("/a%", "/a%25"),
        ("/%%41", "/%25A"),  # urllib3 decodes an unreserved %41 ("A"): the same resource
        ("/x.png?w=100%&name=a%26b", "/x.png?w=100%25&name=a%26b"),
        ("/caf%c3%a9.png", "/caf%C3%A9.png"),  # no bare %: as before
    ],
)
def test_a_bare_percent_leaves_the_other_encodings_alone(line: str, target: str) -> None:
    seen: list[str] = []
    with ImageServer() as server:
        server.add_handler(urlsplit(target).path, recording(JPEG, "image/jpeg", seen))
        download = fetch(Wire(server).session, normalize_url(server.url(line)), POLICY)
    assert download.body == JPEG
    assert seen == [target]


QUERY = st.text(alphabet="%aF09Z&=/ é+", min_size=1, max_size=24)


@SWEEP
@given(QUERY)
@example("w=100%&name=a%26b")
@example("%%%")
@example("%e9%")
def test_the_target_asked_for_names_the_lines_bytes(wire: Wire, query: str) -> None:
    """Any mix of bare ``%`` and ``%XX``: the query on the wire names the same octets."""
    url = normalize_url(wire.server.url("/wire/target") + "?" + query)
    download = fetch(wire.session, url, POLICY)
    (asked,) = wire.seen[-1:]
    wire.seen.clear()
    assert download.http_status == 200
    assert unquote_to_bytes(asked.partition("?")[2]) == named_bytes(urlsplit(url).query)


@given(st.text(alphabet="%aF09/é", max_size=16))
def test_request_target_encodes_only_bare_percents(path: str) -> None:
    url = normalize_url("http://h.test/" + path)
    target = request_target(url)
    assert re.search("%(?![0-9A-Fa-f]{2})", target) is None
    assert named_bytes(target) == named_bytes(url)
