"""URL normalisation: one canonical spelling per URL, clear reasons for the rest.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import re

import pytest

from crawler.urls import normalize_url

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://example.com/a.jpg", "http://example.com/a.jpg"),
        ("HTTP://Example.COM/Photos/A.JPG", "http://example.com/Photos/A.JPG"),
        ("http://example.com:80/a.jpg", "http://example.com/a.jpg"),
        ("https://example.com:443/a.jpg", "https://example.com/a.jpg"),
        ("http://example.com:443/a.jpg", "http://example.com:443/a.jpg"),
        ("https://example.com:8443/a.jpg", "https://example.com:8443/a.jpg"),
        ("http://example.com/a.jpg#section-2", "http://example.com/a.jpg"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com?size=2", "http://example.com/?size=2"),
        ("http://example.com/my photo.jpg", "http://example.com/my%20photo.jpg"),
        ("http://example.com/a.jpg?q=x y", "http://example.com/a.jpg?q=x%20y"),
        ("http://example.com/café/ä.png", "http://example.com/caf%C3%A9/%C3%A4.png"),
        ("http://example.com/my%20photo.jpg", "http://example.com/my%20photo.jpg"),
        ("http://Bücher.Example/x.png", "http://xn--bcher-kva.example/x.png"),
        ("http://[::1]:8080/a.png", "http://[::1]:8080/a.png"),
        ("http://127.0.0.1:80/a.png", "http://127.0.0.1/a.png"),
        ("http://example.com/a.jpg?w=1&h=2", "http://example.com/a.jpg?w=1&h=2"),
    ],
)
def test_normalize_url(text: str, expected: str) -> None:
    assert normalize_url(text) == expected
    assert normalize_url(expected) == expected  # canonical form is a fixed point


def test_normalize_url_makes_spellings_of_one_url_equal() -> None:
    spellings = [
        "http://example.com/a b.jpg",
        "HTTP://EXAMPLE.com:80/a%20b.jpg#top",
        "http://example.COM/a b.jpg#",
    ]
    assert len({normalize_url(s) for s in spellings}) == 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ftp://example.com/a.png", "not an http or https URL"),
        ("not-a-url", "not an http or https URL"),
        ("javascript:alert(1)", "not an http or https URL"),
        ("//example.com/a.png", "not an http or https URL"),
        ("http:///a.png", "no host"),
        ("http://user:secret@example.com/a.png", "credentials"),
        ("http://example.com:99999/a.png", "malformed URL"),
        ("http://example.com:abc/a.png", "malformed URL"),
        ("http://example.com/a\tb.png", "control characters"),
        ("http://example.com/a\x00.png", "control characters"),
        ("http://a..b/x.png", "host name is not valid"),
        ("http://" + "a" * 64 + ".com/x.png", "host name is not valid"),
        ("http://example.com/" + "a" * 9000, "longer than"),
    ],
)
def test_normalize_url_rejects_with_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        normalize_url(text)


@pytest.mark.parametrize("text", ["http://exa mple.com/a.jpg", "http://exa<mple.com/a.jpg"])
def test_normalize_url_rejects_host_with_forbidden_characters(text: str) -> None:
    with pytest.raises(ValueError, match="host"):
        normalize_url(text)
