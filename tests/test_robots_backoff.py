"""A robots.txt that fails transiently, against the real crawler: host trouble, not a verdict.

The origin's robots.txt answers 503 to its first three requests, then 404 (no rules); the
list holds 500 images of that origin, crawled by two workers of four threads. The master
backs the origin off (1 s, 2 s, 4 s: doubling) and leases one probe at a time while it
has no verdict, so the server sees one robots.txt request per backoff step, then the
images are fetched. Slow by nature: the backoff alone takes 7 s (five failures took 31 s,
for nothing more shown: the doubling is the same).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import assert_no_traceback, read_rows, run_cli
from hostile import respond
from imageserver import ImageServer, make_image

IMAGES = 500
FAILURES = 3
BACKOFF = [1.0, 2.0, 4.0]  # politeness.BACKOFF_START, doubling


class FlakyRobots:
    """robots.txt: 503 for the first FAILURES requests, 404 after; request times kept."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.times.append(time.monotonic())
            failing = len(self.times) <= FAILURES
        respond(request, b"busy\n" if failing else b"", "text/plain", 503 if failing else 404)


@pytest.mark.slow
def test_transient_robots_failure_backs_off_then_fetches_the_images(tmp_path: Path) -> None:
    png = make_image("PNG", 32, 24, seed=61)
    robots = FlakyRobots()
    with ImageServer() as server:
        server.add_handler("/robots.txt", robots)
        urls = [server.add(f"/img/{i}.png", png, content_type="image/png") for i in range(IMAGES)]
        listing = tmp_path / "list.txt"
        listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
        manifest = tmp_path / "manifest.jsonl"
        result = run_cli(
            "master", str(listing), "--bind", "127.0.0.1", "--port", "0",
            "--local-workers", "2", "--threads", "4", "--output", str(tmp_path / "out"),
            "--manifest", str(manifest), "--no-progress", timeout=120,
        )  # fmt: skip
        image_requests = server.total_hits() - server.hits("/robots.txt")
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    rows = read_rows(manifest)
    counts = Counter(row["status"] for row in rows)
    assert len(rows) == IMAGES and counts["ok"] >= 0.95 * IMAGES, counts
    # One robots.txt request per backoff step, cluster-wide, then the 404 that ends it.
    assert len(robots.times) == FAILURES + 1, robots.times
    gaps = [b - a for a, b in zip(robots.times, robots.times[1:], strict=False)]
    assert all(gap >= 0.9 * step for gap, step in zip(gaps, BACKOFF, strict=True)), gaps
    # A URL ends blocked only when its leases were spent on a failing robots.txt.
    for row in rows:
        if row["status"] != "ok":
            assert row["status"] == "blocked" and row["leases"] == 3, row
            assert row["error"] == "robots.txt unavailable: HTTP 503", row
    assert image_requests == counts["ok"]  # no image was asked for before the verdict
    print(f"robots.txt requests at {[round(t - robots.times[0], 1) for t in robots.times]} s")
    print(f"statuses: {dict(counts)}")
