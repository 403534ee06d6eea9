"""WHATWG parsing must not move the normal form of a URL the old normaliser accepted,
except where the README says it does (dot segments, backslashes, numeric hosts, hosts
that IDNA 2003 and UTS 46 spell differently): stored file names derive from it.

A Hypothesis sweep over URL-shaped strings: mixed-case schemes and hosts, ports, paths
and queries of any printable character (non-ASCII too), fragments.
"""

from __future__ import annotations

import string

from hypothesis import example, given, settings
from hypothesis import strategies as st
from urls_before_issue11 import normalize_url as old_normalize

from crawler.urls import normalize_url, resolve_url

LABEL = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=10)
HOST = (
    st.lists(LABEL, min_size=1, max_size=3)
    .map(".".join)
    .filter(
        lambda h: (
            not h.rpartition(".")[2].isdigit() and not h.lower().rpartition(".")[2].startswith("0x")
        )
    )
)
# Path and query characters: printable ASCII and some non-ASCII, without the ones whose
# meaning the WHATWG rules change on purpose (a backslash is a slash).
CHARS = st.sampled_from(list(string.printable.replace("\\", "").strip() + " äé図\u00a0"))
PATH = (
    st.lists(st.text(CHARS.filter(lambda c: c not in "/?#"), max_size=8), max_size=4)
    .map(lambda parts: "".join("/" + p for p in parts))
    .filter(lambda p: "/." not in p and "%2e" not in p.lower())
)
URLS = st.builds(
    lambda scheme, host, port, path, query, fragment: (
        f"{scheme}://{host}{port}{path}{query}{fragment}"
    ),
    st.sampled_from(["http", "https", "HTTP", "hTtPs"]),
    HOST,
    st.sampled_from(["", ":80", ":443", ":8080", ":1"]),
    PATH,
    st.text(CHARS.filter(lambda c: c != "#"), max_size=12).map(lambda q: "?" + q if q else ""),
    st.text(CHARS, max_size=6).map(lambda f: "#" + f if f else ""),
)


@settings(max_examples=1500, deadline=None)
@given(URLS)
@example("http://Example.COM:80/a b/é?q=x y&r='s'#frag")
@example("http://example.com/a|b^c`d{e}?[x]")
@example("http://A/ ")
def test_normal_forms_did_not_move(text: str) -> None:
    text = text.strip()  # as every list reader strips a line before it is normalised
    try:
        before = old_normalize(text)
    except ValueError:
        return  # refused before: nothing was stored under it
    assert normalize_url(text) == before


REFERENCES = st.text(CHARS | st.sampled_from(list("\\/.:%")), max_size=30) | URLS


@settings(max_examples=1000, deadline=None)
@given(URLS, REFERENCES)
@example("http://h.test/a/b.png", "../../../x.png")
@example("http://h.test/a/b.png", "\\\\evil.test\\x.png")
@example("http://h.test/a/b.png", "http://[::1")
def test_any_location_resolves_to_a_normal_form_or_a_reason(base: str, location: str) -> None:
    """Whatever a server puts in Location: a URL in its normal form, or ValueError."""
    try:
        base = normalize_url(base)
    except ValueError:
        return
    try:
        target = resolve_url(base, location)
    except ValueError as exc:
        assert str(exc)
        return
    assert normalize_url(target) == target
    assert target.startswith(("http://", "https://"))
