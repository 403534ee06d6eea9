"""URL normalisation: one canonical spelling per URL, clear reasons for the rest.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from crawler.urls import normalize_url, resolve_url

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
        # WHATWG URL Standard: what a browser's address bar makes of these.
        ("http:///a.png", "http://a.png/"),
        ("http:example.com/a.png", "http://example.com/a.png"),
        ("http://example.com\\img\\a.png", "http://example.com/img/a.png"),
        ("http://example.com/a/./b/../c.png", "http://example.com/a/c.png"),
        ("http://example.com/a/%2e%2E/c.png", "http://example.com/c.png"),
        ("http://example.com/a/..", "http://example.com/"),
        ("http://0x7f.1/a.png", "http://127.0.0.1/a.png"),
        ("http://2130706433/a.png", "http://127.0.0.1/a.png"),
        ("http://example.com/.well-known/a.png", "http://example.com/.well-known/a.png"),
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
        ("http://:80/a.png", "malformed URL"),
        ("http://user:secret@example.com/a.png", "credentials"),
        ("http://example.com:99999/a.png", "malformed URL"),
        ("http://example.com:abc/a.png", "malformed URL"),
        ("http://127.0.0.2:0/x.jpg", "port 0"),  # nothing can be reached on it
        ("http://example.com:00/a.png", "port 0"),
        ("https://example.com:0000", "port 0"),
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


def labels(length: int) -> str:
    """A host name of exactly ``length`` characters, in labels of at most 63."""
    name = (("a" * 63 + ".") * 20)[:length]
    return name[:-2] + ".a" if name.endswith(".") else name


@pytest.mark.parametrize("spelling", ["{}", "{}.", "{}:8080", "{}.:8080", "{}/?q", "{}/x%2e"])
@pytest.mark.parametrize("length", [1, 63, 200, 252, 253, 254, 300, 1000])
def test_a_host_name_longer_than_dns_allows_is_invalid(spelling: str, length: int) -> None:
    """RFC 1035 2.3.4: 253 characters at most (the root's dot aside). Longer ones were
    fetched (a DNS failure, "blocked", tried again every run) until 2026-12-01 (a fresh
    user's); the fast path for canonical URLs and the full parse agree."""
    host = labels(length)
    assert len(host) == length and not host.endswith(".")
    url = "http://" + spelling.format(host)
    if length > 253:
        with pytest.raises(ValueError, match="host name is longer than 253 characters"):
            normalize_url(url)
    else:
        assert urlsplit(normalize_url(url)).hostname == host + ("." if "{}." in spelling else "")


def test_an_idn_host_is_measured_in_its_ascii_form() -> None:
    label = "".join(chr(0x4E00 + 37 * i) for i in range(15))  # 15 characters, 35 in ASCII
    assert normalize_url(f"http://{'.'.join([label] * 7)}/").startswith("http://xn--")  # 251
    with pytest.raises(ValueError, match="longer than 253"):
        normalize_url(f"http://{'.'.join([label] * 8)}/")  # 127 characters, 287 in ASCII


@pytest.mark.parametrize("text", ["http://exa mple.com/a.jpg", "http://exa<mple.com/a.jpg"])
def test_normalize_url_rejects_host_with_forbidden_characters(text: str) -> None:
    with pytest.raises(ValueError, match="host"):
        normalize_url(text)


@pytest.mark.parametrize(
    ("base", "location", "expected"),
    [
        # Case 07: a raw UTF-8 Location (requests hands it over decoded as UTF-8).
        (
            "http://h.test/old.jpg",
            "/图片/фото café.jpg",
            "http://h.test/%E5%9B%BE%E7%89%87/%D1%84%D0%BE%D1%82%D0%BE%20caf%C3%A9.jpg",
        ),
        ("http://h.test/a/b.jpg", "c.jpg", "http://h.test/a/c.jpg"),
        ("http://h.test/a/b.jpg", "../c.jpg", "http://h.test/c.jpg"),
        ("http://h.test/a/b.jpg", "//other.test/x.png", "http://other.test/x.png"),
        ("http://h.test/a/b.jpg", "http:c.png", "http://h.test/a/c.png"),
        ("https://h.test/a/b.jpg", "http:c.png", "http://c.png/"),
        ("http://h.test/a/b.jpg", "?size=2", "http://h.test/a/b.jpg?size=2"),
        ("http://h.test/a/b.jpg", "\\x\\y.png", "http://h.test/x/y.png"),
        ("http://h.test/a/b.jpg", " /spaced.png ", "http://h.test/spaced.png"),
        # Only C0 controls and spaces are stripped (WHATWG), not every Unicode space.
        ("http://h.test/a/b.jpg", "\t/x.png\u00a0\x00", "http://h.test/x.png%C2%A0"),
    ],
)
def test_resolve_url_resolves_a_location_as_browsers_do(
    base: str, location: str, expected: str
) -> None:
    assert resolve_url(base, location) == expected


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("file:///etc/passwd", "not an http or https URL"),
        ("javascript:alert(1)", "not an http or https URL"),
        ("http://user:pw@h.test/a.png", "credentials"),
        ("http://h.test:99999/a.png", "malformed URL"),
        ("http://h.test:0/a.png", "port 0"),
        ("//h.test:0/a.png", "port 0"),
    ],
)
def test_resolve_url_refuses_what_is_not_fetched(location: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        resolve_url("http://h.test/a.jpg", location)
