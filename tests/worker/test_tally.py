"""A worker's own summary counts URLs by how its answers end them (``worker.tally``)."""

from __future__ import annotations

from crawler.worker.tally import Tally


def test_a_429_or_503_is_counted_apart_not_as_a_failed_url() -> None:
    """The master leases a URL answered 429/503 again (while --retries lasts): counted
    as failed, a URL that then ended ok was two URLs in the worker's summary, one failed
    (a review's, 2026-12-02). Other HTTP errors are failures as before."""
    tally = Tally()
    rows = [
        {"status": "http_error", "http_status": 429},
        {"status": "ok", "bytes": 2_000_000},
        {"status": "http_error", "http_status": 503},
        {"status": "http_error", "http_status": 404},
    ]
    for row in rows:
        tally.count(row)
    assert tally.totals() == (2, 1)
    assert tally.summary("w", 1.0) == (
        "worker w: 2 URLs in 1.0 s, 1 ok, 1 failed, 2 answered 429/503 (see the master's "
        "summary), 2.0 MB downloaded"
    )
    tally = Tally()
    tally.count({"status": "ok", "bytes": 0})
    assert tally.summary("w", 1.0) == "worker w: 1 URLs in 1.0 s, 1 ok, 0 failed, 0.0 MB downloaded"
