"""The wire messages: results and tasks checked on receipt.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import json
import re

import pytest

from crawler import protocol

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")


def result_fields(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "id": 3,
        "url": "http://example.com/a.png",
        "status": "ok",
        "worker": "host:123",
        "http_status": 200,
        "path": "ab/cd/" + "ab" * 32 + ".png",
        "sha256": "0" * 64,
        "bytes": 1234,
        "width": 10,
        "height": 20,
        "format": "PNG",
        "attempts": 1,
        "elapsed_s": 0.25,
        "final_url": "http://example.com/a.png",
        "content_type": "image/png",
    }
    fields.update(overrides)
    return fields


def test_decode_result_accepts_a_full_ok_row() -> None:
    fields = result_fields()
    row = protocol.decode_result(protocol.encode_result(fields))
    assert set(row) == set(protocol.RESULT_FIELDS)
    for name, value in fields.items():
        assert row[name] == value


def test_decode_result_accepts_required_fields_only_and_fills_none() -> None:
    text = json.dumps({"id": 0, "url": "http://x/", "status": "timeout", "worker": "h:1"})
    row = protocol.decode_result(text)
    assert row["status"] == "timeout"
    assert row["http_status"] is None and row["path"] is None


def test_decode_result_accepts_integer_elapsed() -> None:
    assert protocol.decode_result(json.dumps(result_fields(elapsed_s=2)))["elapsed_s"] == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"ok"', "not a JSON object"),
        ("null", "not a JSON object"),
        ("[" * 100_000, "not JSON"),
    ],
)
def test_decode_result_rejects_non_objects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        protocol.decode_result(text)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
@pytest.mark.parametrize("name", ["elapsed_s", "retry_after", "request_age"])
def test_decode_result_rejects_numbers_json_has_not(name: str, number: str) -> None:
    """json.loads reads NaN and Infinity (and 1e999 as inf); the master would journal
    them as such, a line no strict JSON reader takes (until 2026-12-02 for elapsed_s)."""
    text = json.dumps(result_fields())[:-1] + f', "{name}": {number}}}'
    with pytest.raises(ValueError, match=f"{name}.*(finite|seconds)"):
        protocol.decode_result(text)


@pytest.mark.parametrize("missing", ["id", "url", "status", "worker"])
def test_decode_result_rejects_missing_required_field(missing: str) -> None:
    fields = result_fields()
    del fields[missing]
    with pytest.raises(ValueError, match=repr(missing)):
        protocol.decode_result(json.dumps(fields))
    with pytest.raises(ValueError, match=repr(missing)):
        protocol.decode_result(json.dumps(result_fields(**{missing: None})))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("id", "3"),
        ("id", 3.0),
        ("id", True),
        ("http_status", True),
        ("width", False),
        ("bytes", "1234"),
        ("url", 5),
        ("worker", ["h", 1]),
        ("status", 1),
        ("elapsed_s", "0.25"),
        ("elapsed_s", True),
        ("sha256", {"a": 1}),
    ],
)
def test_decode_result_rejects_wrong_types(name: str, value: object) -> None:
    with pytest.raises(ValueError, match="wrong type"):
        protocol.decode_result(json.dumps(result_fields(**{name: value})))


@pytest.mark.parametrize("status", ["OK", "fine", "", "ok "])
def test_decode_result_rejects_unknown_status(status: str) -> None:
    with pytest.raises(ValueError, match="unknown status"):
        protocol.decode_result(json.dumps(result_fields(status=status)))


def test_decode_task_accepts_valid_task() -> None:
    task = protocol.decode_task(json.dumps({"id": 7, "url": "http://x/a.png", "attempt": 2}))
    assert (task.id, task.url, task.attempt) == (7, "http://x/a.png", 2)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '"task"',
        json.dumps({"url": "http://x/", "attempt": 1}),
        json.dumps({"id": 1, "attempt": 1}),
        json.dumps({"id": 1, "url": "http://x/"}),
        json.dumps({"id": "1", "url": "http://x/", "attempt": 1}),
        json.dumps({"id": True, "url": "http://x/", "attempt": 1}),
        json.dumps({"id": 1.0, "url": "http://x/", "attempt": 1}),
        json.dumps({"id": 1, "url": 5, "attempt": 1}),
        json.dumps({"id": 1, "url": "http://x/", "attempt": False}),
        json.dumps({"id": 1, "url": "http://x/", "attempt": None}),
    ],
)
def test_decode_task_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        protocol.decode_task(text)
