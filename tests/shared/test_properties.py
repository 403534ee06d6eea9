"""Property tests of the crawler's input edges: list lines and the two wire messages.

Whatever a URL list or a peer sends, these functions must answer in their documented
way and never raise anything else: ``lists.parse_line`` returns None, a normalised
http(s) URL that is its own normal form, or a line-level error; ``protocol.decode_result``
and ``protocol.decode_task`` return a checked value or raise ValueError.
"""

from __future__ import annotations

import base64
import json
import math
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crawler import constants as c
from crawler import protocol, urls
from crawler.exceptions import UsageError
from crawler.master.lists import GZIP_MAGIC, ListEntry, parse_line, read_list
from crawler.urls import normalize_url

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- strategies
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
# Text that looks like parts of a URL: ASCII specials, unicode, whitespace, controls.
URL_CHARS = st.characters(codec="utf-8") | st.sampled_from(list(":/?#[]@!$&'()*+,;=%. \t-_~\\"))
HOST_SAMPLES = [
    "example.com", "EXAMPLE.com.", "127.0.0.1", "[::1]", "[fe80::1%25eth0]",
    "bücher.de", "xn--bcher-kva.de", "a..b", "-x-.com", "[v1.x]", "x" * 64 + ".com",
    "exa mple.com", "ex%41mple.com", "", "user:pw@host", "host:80", "host:0",
    "host:65536", "host:08080", "ＥＸＡＭＰＬＥ.com", "ß.de",
]  # fmt: skip
HOSTS = st.sampled_from(HOST_SAMPLES) | st.text(URL_CHARS, max_size=20)
URLISH = st.builds(
    lambda scheme, host, path, query, frag: f"{scheme}://{host}{path}{query}{frag}",
    st.sampled_from(["http", "https", "HTTP", "hTtPs", "ftp", "file", "javascript", ""]),
    HOSTS,
    st.text(URL_CHARS, max_size=30).map(lambda s: "/" + s if s else ""),
    st.text(URL_CHARS, max_size=30).map(lambda s: "?" + s if s else ""),
    st.text(URL_CHARS, max_size=10).map(lambda s: "#" + s if s else ""),
)
LINES = st.one_of(
    st.text(),
    st.text(st.characters(codec="utf-8"), min_size=1000, max_size=9000),
    URLISH,
    URLISH.map(lambda u: f"  {u}\t"),
    URLISH.map(lambda u: u + "x" * 8200),
)


def base64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


VERDICTS = (
    st.fixed_dictionaries(
        {"status": st.integers(0, 999), "body": st.binary(max_size=40).map(base64_text)}
    )
    | st.fixed_dictionaries({"refused": st.text(max_size=30)})
    | st.fixed_dictionaries({"unavailable": st.text(max_size=30)})
)


def well_typed(kind: tuple[type, ...]) -> st.SearchStrategy[Any]:
    if dict in kind:
        return VERDICTS  # a robots.txt verdict (crawler.robotstxt)
    if bool in kind:
        return st.booleans()
    if int in kind and float in kind:
        return st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    if int in kind:
        return st.integers(min_value=-(2**63), max_value=2**63)
    return st.text(max_size=30)


# Seconds the master checks on receipt (0 to RETRY_AFTER_MAX): a worker's clamp keeps to it.
SECONDS = st.integers(0, int(c.RETRY_AFTER_MAX)) | st.floats(0, c.RETRY_AFTER_MAX)
RANGED = {"retry_after": SECONDS, "request_age": SECONDS}
WELL_TYPED_RESULTS = st.fixed_dictionaries(
    {
        name: RANGED[name] if name in RANGED else well_typed(kind)
        for name, kind in protocol.RESULT_FIELDS.items()
    }
    | {"status": st.sampled_from(sorted(c.STATUSES))},
    optional={},
)
# Results close to valid: each field either well-typed, absent, null, or any JSON value.
NEAR_RESULTS = st.fixed_dictionaries(
    {},
    optional={
        name: well_typed(kind) | JSON | st.sampled_from(sorted(c.STATUSES))
        for name, kind in protocol.RESULT_FIELDS.items()
    },
)


# -------------------------------------------------------------------------- parse_line
def check_entry(entry: ListEntry | None, line: str) -> None:
    if entry is None:
        stripped = line.strip()
        assert stripped == "" or stripped.startswith("#"), line
        return
    assert entry.raw == line.strip() and entry.source == "list.txt:1"
    if entry.url is None:
        assert isinstance(entry.error, str) and entry.error, entry
        return
    assert entry.error is None, entry
    assert entry.url.startswith(("http://", "https://")), entry
    assert normalize_url(entry.url) == entry.url, entry  # its own normal form: idempotent


@SETTINGS
@given(LINES)
@example("http://example.com/bilder/straße ü.png")
@example("\x1c http://example.com/\x85")
@example("http://[::ffff:1.2.3.4]:80/a?b#c")
@example("#http://example.com/")
def test_parse_line_never_raises_and_urls_are_normal(line: str) -> None:
    check_entry(parse_line(line, "list.txt:1"), line)


@SETTINGS
@given(URLISH)
@example("http://exa mple.com/a.png")
@example("http://ex%41mple.com/a.png")
@example("https://bücher.de/ä ö.png?q=ü ß")
def test_parsed_urls_are_printable_ascii(line: str) -> None:
    entry = parse_line(line, "list.txt:1")
    if entry is not None and entry.url is not None:
        assert entry.url.isascii() and entry.url.isprintable(), entry
        assert not any(ch.isspace() for ch in entry.url), entry
        parts = urlsplit(entry.url)
        assert parts.fragment == "" and "#" not in entry.url, entry
        assert parts.hostname and all(ch.isalnum() or ch in ".-_:[]%" for ch in parts.hostname)


@SETTINGS
@given(st.binary(max_size=3000))
@example(GZIP_MAGIC + b"http://example.com/a.jpg\n")
def test_read_list_never_raises_on_any_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "list.txt"
        path.write_bytes(data)
        try:
            entries = list(read_list(str(path)))
        except UsageError:  # bytes that start like gzip but are not: one clear error
            assert data.startswith(GZIP_MAGIC)
            return
    numbers = [int(e.source.rpartition(":")[2]) for e in entries]
    assert numbers == sorted(set(numbers)), numbers
    for entry in entries:
        assert entry.source.startswith(f"{path}:")
        assert entry.url is not None or entry.error
        if entry.url is not None:
            assert normalize_url(entry.url) == entry.url


# ------------------------------------------------------------------------ decode_result
def check_result(text: str) -> None:
    try:
        row = protocol.decode_result(text)
    except ValueError:
        return
    assert isinstance(row, dict)
    assert set(row) == set(protocol.RESULT_FIELDS)
    assert row["status"] in c.STATUSES
    for name in protocol.REQUIRED_FIELDS:
        assert row[name] is not None, name
    for name, kinds in protocol.RESULT_FIELDS.items():
        value = row[name]
        if value is None:
            continue
        assert isinstance(value, kinds), (name, value)
        assert isinstance(value, bool) == (bool in kinds), (name, value)
        assert not isinstance(value, float) or math.isfinite(value), (name, value)
    # What the master journals of it is strict JSON (RFC 8259: no NaN, no Infinity).
    json.dumps(row, allow_nan=False)


@SETTINGS
@given(st.text())
@example("[" * 100_000)
@example('{"id": 1e999, "url": "u", "status": "ok", "worker": "w"}')
@example('{"id": ' + "9" * 5000 + ', "url": "u", "status": "ok", "worker": "w"}')
@example('{"id": 0, "url": "u", "status": "ok", "worker": "w", "elapsed_s": NaN}')
@example('{"id": 0, "url": "u", "status": "ok", "worker": "w", "elapsed_s": -Infinity}')
@example('{"id": 0, "url": "u", "status": "ok", "worker": "w", "elapsed_s": 1e999}')
def test_decode_result_on_any_text(text: str) -> None:
    check_result(text)


@SETTINGS
@given(JSON | NEAR_RESULTS)
def test_decode_result_on_any_json(value: Any) -> None:
    check_result(json.dumps(value))


@SETTINGS
@given(WELL_TYPED_RESULTS)
def test_decode_result_accepts_every_well_typed_result(fields: dict[str, Any]) -> None:
    row = protocol.decode_result(protocol.encode_result(fields))
    assert row == fields


# -------------------------------------------------------------------------- decode_task
def check_task(text: str) -> None:
    try:
        task = protocol.decode_task(text)
    except ValueError:
        return
    assert isinstance(task, protocol.Task)
    assert type(task.id) is int and type(task.attempt) is int
    assert isinstance(task.url, str)
    if task.stored is not None:
        assert isinstance(task.stored.path, str) and type(task.stored.bytes) is int
        assert task.stored.etag is None or isinstance(task.stored.etag, str)
        assert task.stored.last_modified is None or isinstance(task.stored.last_modified, str)
        assert isinstance(task.stored.refresh, bool)


TASKISH = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers() | JSON,
        "url": st.text(max_size=30) | JSON,
        "attempt": st.integers() | JSON,
        "stored": JSON
        | st.fixed_dictionaries(
            {},
            optional={
                "path": st.text(max_size=20) | JSON,
                "bytes": st.integers() | JSON,
                "etag": JSON,
                "last_modified": JSON,
                "refresh": JSON,
            },
        ),
    },
)


@SETTINGS
@given(st.text() | JSON.map(json.dumps) | TASKISH.map(json.dumps))
@example('{"id": ' + "9" * 5000 + ', "url": "u", "attempt": 1}')
@example("[" * 100_000)
def test_decode_task_on_any_input(text: str) -> None:
    check_task(text)


def test_decode_task_on_deeply_nested_json_is_value_error() -> None:
    with pytest.raises(ValueError):
        protocol.decode_task("[" * 100_000)


# The fast path of normalize_url must agree with the full normalisation on every URL it
# takes: URLs shaped like canonical ones, with ports, odd labels and every allowed character.
CANONICAL_LIKE = (
    r"\Ahttps?://([a-z0-9_-]{1,8}\.){0,3}[a-z0-9_-]{1,8}(:[0-9]{1,6})?"
    r"/[A-Za-z0-9\-._~!$%&'()*+,;=:@/]{0,20}(\?[A-Za-z0-9\-._~!$%&'()*+,;=:@/?]{0,10})?\Z"
)


@settings(max_examples=500, deadline=None)
@given(st.from_regex(CANONICAL_LIKE))
def test_normalize_fast_path_agrees_with_full_normalisation(text: str) -> None:
    try:
        slow = urls._normalize(text)
    except ValueError:
        with pytest.raises(ValueError):
            urls.normalize_url(text)
        return
    assert urls.normalize_url(text) == slow
