"""The run policy's JSON form, as sent to workers.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import json
import re

import pytest

from crawler.config import Policy

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")


def test_policy_json_round_trip() -> None:
    policy = Policy(
        connect_timeout=1.5,
        read_timeout=2.0,
        deadline=9.0,
        max_bytes=12345,
        max_pixels=999,
        min_width=3,
        min_height=4,
        retries=0,
        backoff=0.1,
        max_redirects=2,
        user_agent="test-agent/1 ü",
        lease_seconds=7.0,
    )
    assert Policy.from_json(policy.to_json()) == policy
    assert Policy.from_json(Policy().to_json()) == Policy()


def test_policy_from_json_converts_ints_for_floats_and_ignores_unknown_keys() -> None:
    policy = Policy.from_json(json.dumps({"lease_seconds": 5, "from_the_future": [1, 2]}))
    assert policy.lease_seconds == 5.0 and isinstance(policy.lease_seconds, float)
    assert policy.max_bytes == Policy().max_bytes


@pytest.mark.parametrize(
    "raw",
    [
        {"max_bytes": "10"},
        {"max_bytes": 1.5},
        {"retries": True},
        {"lease_seconds": False},
        {"lease_seconds": "60"},
        {"user_agent": 5},
        {"min_width": None},
    ],
)
def test_policy_from_json_rejects_wrong_types(raw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="wrong type"):
        Policy.from_json(json.dumps(raw))


@pytest.mark.parametrize("text", ["[]", '"policy"', "3"])
def test_policy_from_json_rejects_non_objects(text: str) -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        Policy.from_json(text)
