"""A robots.txt that fails transiently, against the real crawler: host trouble, not a verdict.

The origin's robots.txt answers 503 to its first three requests, then 404 (no rules); the
list holds 500 images of that origin, crawled by two workers of four threads. The master
backs the origin off (1 s, 2 s, 4 s: doubling) and leases one probe at a time while it
has no verdict, so the server sees one robots.txt request per backoff step, then the
images are fetched. Slow by nature: the backoff alone takes 7 s (five failures took 31 s,
for nothing more shown: the doubling is the same).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import assert_no_traceback, read_rows, run_cli
from hostile import respond
from imageserver import ImageServer, make_image

from crawler import constants as c

IMAGES = 500
FAILURES = 3
BACKOFF = [1.0, 2.0, 4.0]  # politeness.BACKOFF_START, doubling


class FlakyRobots:
    """robots.txt: 503 (with ``Retry-After: asked`` if given) for the first ``failures``
    requests, 404 after; request times kept."""

    def __init__(self, failures: int = FAILURES, asked: str | None = None) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()
        self.failures, self.headers = failures, {"Retry-After": asked} if asked else None

    def __call__(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.times.append(time.monotonic())
            failing = len(self.times) <= self.failures
        if failing:
            respond(request, b"busy\n", "text/plain", 503, self.headers)
        else:
            respond(request, b"", "text/plain", 404)


def crawl(
    server: ImageServer, tmp_path: Path, images: int, timeout: float, *flags: str, code: int = 0
) -> list[dict]:
    """The rows of a run of ``images`` PNGs of ``server`` (no alarm unless ``flags`` ask
    for one, and the master exits ``code``)."""
    png = make_image("PNG", 32, 24, seed=61)
    urls = [server.add(f"/img/{i}.png", png, content_type="image/png") for i in range(images)]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    manifest = tmp_path / "manifest.jsonl"
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--max-failure-rate", "1",
        "--local-workers", "2", "--threads", "4", "--output", str(tmp_path / "out"),
        "--manifest", str(manifest), "--no-progress", *flags, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == code, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    return read_rows(manifest)


def test_a_robots_txt_retry_after_is_waited_for(tmp_path: Path) -> None:
    """503 with ``Retry-After: 3``, then 404: the origin's next probe comes 3 s later, not
    after the 1-s backoff (until 2026-12-01 it was ignored: a fresh user's)."""
    robots = FlakyRobots(failures=1, asked="3")
    with ImageServer() as server:
        server.add_handler("/robots.txt", robots)
        rows = crawl(server, tmp_path, 4, 60)
    assert {row["status"] for row in rows} == {"ok"}
    assert len(robots.times) == 2 and robots.times[1] - robots.times[0] >= 2.9, robots.times


def test_a_robots_txt_asking_for_an_hour_gives_the_origin_up_at_once(tmp_path: Path) -> None:
    """One robots.txt request in all (was 6 in 31 s, or 8 in two minutes), and every URL
    ends ``blocked`` (transient: the next run tries them) saying what was asked."""
    robots = FlakyRobots(failures=100, asked="3600")
    with ImageServer() as server:
        server.add_handler("/robots.txt", robots)
        rows = crawl(server, tmp_path, 4, 60)
        image_requests = server.total_hits() - server.hits("/robots.txt")
    assert len(robots.times) == 1 and image_requests == 0
    said = "robots.txt unavailable: HTTP 503, Retry-After 3600 s"
    assert {(row["status"], row["error"]) for row in rows} == {("blocked", said)}


def test_a_degraded_run_says_what_failed_most_often(tmp_path: Path) -> None:
    """Every URL ``blocked`` because robots.txt was unavailable: the alarm says so, with
    the error, on stderr and in the summary. "4 blocked" alone read as robots.txt
    disallowing everything, where the network was down (a fresh user's, 2026-12-02)."""
    robots = FlakyRobots(failures=100, asked="3600")
    with ImageServer() as server:
        server.add_handler("/robots.txt", robots)
        crawl(server, tmp_path, 4, 60, "--max-failure-rate", "0.5", code=c.EXIT_DEGRADED)
    summary = json.loads((tmp_path / "manifest.summary.json").read_text(encoding="utf-8"))
    assert summary["why"] == (
        "none of the 4 URLs tried succeeded; most often blocked (4): robots.txt "
        "unavailable: HTTP 503, Retry-After 3600 s"
    ), summary
    # The report's table of statuses says what blocked may mean: not only an opt-out (a
    # fresh user's, 2026-12-02: it said robots.txt disallowing, or X-Robots-Tag, alone).
    report = (tmp_path / "manifest.report.html").read_text(encoding="utf-8")
    assert "or robots.txt was unavailable (its host unreachable, 5xx answers: transient" in report


def test_progress_lines_say_an_origin_is_held_back_for_its_robots_txt(tmp_path: Path) -> None:
    """While robots.txt answers 503 (Retry-After 2, twice), the periodic progress lines say
    the origin is held back, not only "0.0 URLs/s, ok 0, failed 0" (a fresh user's,
    2026-12-02: a run whose servers were down said nothing more for two minutes)."""
    robots = FlakyRobots(failures=2, asked="2")
    with ImageServer() as server:
        server.add_handler("/robots.txt", robots)
        url = server.add("/img/0.png", make_image("PNG", 8, 8, seed=1), content_type="image/png")
        listing = tmp_path / "list.txt"
        listing.write_text(url + "\n", encoding="utf-8")
        result = run_cli(
            "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "1",
            "--output", str(tmp_path / "out"), "--no-progress", "--progress-interval", "0.5",
            "--no-report", timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    said = "; 1 origin held back: robots.txt unavailable, asked again after a backoff"
    assert said in result.stderr, result.stderr
    assert read_rows(tmp_path / "out" / "manifest.jsonl")[0]["status"] == "ok"


@pytest.mark.slow
def test_transient_robots_failure_backs_off_then_fetches_the_images(tmp_path: Path) -> None:
    robots = FlakyRobots()
    with ImageServer() as server:
        server.add_handler("/robots.txt", robots)
        rows = crawl(server, tmp_path, IMAGES, 120)
        image_requests = server.total_hits() - server.hits("/robots.txt")
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
