"""The figures of 'cannot spool the URL lists ...: free at least that much' (``plan``):
rounded up, never down, in kB under 1 MB (it said "held 0.0 MB", a fresh user's, and
1.04 MB read "1.0 MB", below what must be freed: a review's, 2026-12-03)."""

from __future__ import annotations

import pytest

from crawler.master.plan import _amount


@pytest.mark.parametrize(
    ("size", "said"),
    [(0, "0 kB"), (1, "1 kB"), (999, "1 kB"), (1000, "1 kB"), (1001, "2 kB"),
     (999_999, "1000 kB"), (1_000_000, "1.0 MB"), (1_040_000, "1.1 MB"),
     (41_300_000, "41.3 MB"), (41_300_001, "41.4 MB")],
)  # fmt: skip
def test_spooled_sizes_are_rounded_up(size: int, said: str) -> None:
    assert _amount(size) == said
