"""The report's header agrees with stdout and the summary, whatever the run's outcome.

A run stopped mid-way (SIGTERM: interrupted, 130) or left without workers (its only
local worker killed: incomplete, 3) has journalled rows only for the URLs answered; the
header used to count those ("5 URLs", nothing about the rest) where stdout and
``manifest.summary.json`` said 8 URLs, 3 of them with no status yet. Each test runs the
real master with one real local worker against the loopback image server, whose slow
URLs (30 s) are still unanswered when the run ends, then reads the report the master
wrote and the one ``crawler-report`` writes by hand from the same manifest.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import RUN_TIMEOUT, assert_no_traceback, read_rows, run_cli, start_cli
from imageserver import ImageServer, make_image
from test_early_workers import _workers_of
from test_report import Page, card, parse, report_cli

from crawler.manifest import make_row, summary_path
from crawler.report import build

FAST, SLOW = 3, 3  # images answered at once; images that take 30 s (never answered here)
TOTAL = FAST + 1 + SLOW + 1  # and a 404, and the first image's line again (a duplicate)


def _listing(server: ImageServer, tmp_path: Path) -> Path:
    fast = [server.add(f"/f/{i}.png", make_image("PNG", 32, 24, seed=i)) for i in range(FAST)]
    gone = server.add("/f/gone.png", b"", status=404)
    slow = [
        server.add(f"/s/{i}.png", make_image("PNG", 32, 24, seed=10 + i), delay=30.0)
        for i in range(SLOW)
    ]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join([*fast, gone, *slow, fast[0]]) + "\n", encoding="utf-8")
    return listing


def _answered(manifest: Path) -> int:
    """Rows of fetched URLs journalled so far (the duplicate line's row is not one)."""
    try:
        rows = read_rows(manifest)
    except (OSError, ValueError):  # not there yet, or a row being written
        return 0
    return sum(row["status"] in ("ok", "http_error") for row in rows)


def _stopped_run(listing: Path, out: Path, how: str, ready: Callable[[], bool]) -> tuple[str, Path]:
    """A run of ``listing`` ended once ``ready()``: stopped by SIGTERM (``how``
    "interrupted") or left by its killed worker ("incomplete")."""
    proc = start_cli(
        "master", str(listing), "--port", "0", "--bind", "127.0.0.1",
        "--output", str(out), "--local-workers", "1", "--threads", "8", "--no-progress",
        "--retries", "0", "--grace", "1", "--lease-seconds", "2",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        if how == "interrupted":
            proc.send_signal(signal.SIGTERM)
        else:
            for pid in _workers_of(out):
                os.kill(pid, signal.SIGKILL)  # with its leases: nobody can finish the run
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == {"interrupted": 130, "incomplete": 3}[how], stderr
    assert_no_traceback(stdout, stderr)
    return stdout, out


def _stdout_counts(stdout: str) -> dict[str, int]:
    """What the master printed: URLs, then each status's count and "(no status yet)"."""
    found = {"URLs": int(re.search(r" (\d+) URLs$", stdout, re.MULTILINE)[1])}
    for name, n in re.findall(r"^  (\(no status yet\)|[a-z_]+) +(\d+)", stdout, re.MULTILINE):
        found[name] = int(n)
    return found


def _header(page: Page) -> dict[str, str]:
    cards = ("URLs", "succeeded", "failed", "duplicates", "no status yet")
    return {label: card(page, label) for label in cards if label in page.text}


def _outcome(html: str) -> str:
    found = re.search(r'<p class="outcome [a-z]+">(.*?)</p>', html)
    return "" if found is None else re.sub(r"<[^>]+>", "", found[1])


@pytest.mark.parametrize("how", ["interrupted", "incomplete"])
def test_report_of_an_unfinished_run_says_what_stdout_said(
    tmp_path: Path, image_server: ImageServer, how: str
) -> None:
    out = tmp_path / "out"

    def answered() -> bool:  # the fast URLs; the slow ones are still being fetched
        return _answered(out / "manifest.jsonl") == FAST + 1

    stdout, out = _stopped_run(_listing(image_server, tmp_path), out, how, answered)
    summary = json.loads((out / "manifest.summary.json").read_text(encoding="utf-8"))
    assert summary["outcome"] == how
    counts, missing = summary["counts"], summary["missing"]
    assert counts == {"ok": FAST, "http_error": 1, "duplicate": 1} and missing == SLOW
    said = _stdout_counts(stdout)
    assert said == {"URLs": TOTAL, **counts, "(no status yet)": missing}, stdout
    expected = {
        "URLs": str(summary["urls"]),
        "succeeded": str(counts["ok"]),
        "failed": str(counts["http_error"]),
        "duplicates": str(counts["duplicate"]),
        "no status yet": str(missing),
    }
    written = (out / "manifest.report.html").read_text(encoding="utf-8")
    by_hand = report_cli(str(out / "manifest.jsonl"))  # reads the summary beside it
    assert by_hand.returncode == 0, by_hand.stderr
    again = Path(by_hand.stdout.strip()).read_text(encoding="utf-8")
    for html in (written, again):
        assert _header(parse(html)) == expected
        outcome = _outcome(html)
        exit_code = {"interrupted": 130, "incomplete": 3}[how]
        assert outcome.startswith(f"{how.capitalize()} (exit {exit_code}): "), outcome
        assert f"{SLOW} of {TOTAL} URLs have no status yet: rerun the same command" in outcome


def test_report_of_a_completed_run_shows_no_outcome_line(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Completed: the header as before (no outcome line, no "no status yet" card), its
    totals the summary's; a degraded run (every URL failed) says so."""
    urls = [image_server.add_image(f"/c/{i}.png", "PNG", 32, 24, seed=i) for i in range(3)]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join([*urls, urls[0]]) + "\n", encoding="utf-8")
    flags = ("--port", "0", "--bind", "127.0.0.1", "--local-workers", "1", "--no-progress")
    done = run_cli("master", str(listing), "--output", str(tmp_path / "ok"), *flags)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "ok" / "manifest.report.html").read_text(encoding="utf-8")
    assert _header(parse(html)) == {"URLs": "4", "succeeded": "3", "failed": "0", "duplicates": "1"}
    assert "4 URLs" in done.stdout and 'class="outcome' not in html
    gone = [image_server.add(f"/g/{i}.png", b"", status=404) for i in range(2)]
    listing.write_text("\n".join(gone) + "\n", encoding="utf-8")
    bad = run_cli("master", str(listing), "--output", str(tmp_path / "bad"), *flags)
    assert bad.returncode == 4, bad.stderr
    html = (tmp_path / "bad" / "manifest.report.html").read_text(encoding="utf-8")
    assert _header(parse(html)) == {"URLs": "2", "succeeded": "0", "failed": "2", "duplicates": "0"}
    # The run's own reason, as its log said it and its summary keeps it.
    why = "none of the 2 URLs tried succeeded; most often http_error (2): HTTP 404 Not Found"
    assert _outcome(html) == f"Degraded (exit 4): {why}."
    assert json.loads((tmp_path / "bad" / "manifest.summary.json").read_text())["why"] == (why)


def test_run_stopped_before_any_answer_shows_none_of_an_earlier_run(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Stopped before its first answer, a run has counted nothing (its summary's counts
    are empty): the header must say so, not fall back to the manifest's rows, here those
    of a completed earlier run of another list."""
    out, listing = tmp_path / "out", tmp_path / "list.txt"
    listing.write_text(image_server.add_image("/e/0.png", "PNG", 32, 24) + "\n", encoding="utf-8")
    flags = ("--port", "0", "--bind", "127.0.0.1", "--local-workers", "1", "--no-progress")
    assert run_cli("master", str(listing), "--output", str(out), *flags).returncode == 0
    slow = [image_server.add(f"/n/{i}.png", b"", delay=30.0) for i in range(SLOW)]
    listing.write_text("\n".join(slow) + "\n", encoding="utf-8")

    def asked() -> bool:  # every URL is being fetched: none can be answered before the stop
        return all(image_server.hits(urlsplit(url).path) for url in slow)

    stdout, out = _stopped_run(listing, out, "interrupted", asked)
    assert _stdout_counts(stdout) == {"URLs": SLOW, "(no status yet)": SLOW}, stdout
    header = {"URLs": str(SLOW), "succeeded": "0", "failed": "0", "duplicates": "0"}
    for html in (
        (out / "manifest.report.html").read_text(encoding="utf-8"),
        Path(report_cli(str(out / "manifest.jsonl")).stdout.strip()).read_text(encoding="utf-8"),
    ):
        assert _header(parse(html)) == {**header, "no status yet": str(SLOW)}
        assert f"{SLOW} of {SLOW} URLs have no status yet" in _outcome(html)


def test_header_from_a_hand_edited_summary_or_none(tmp_path: Path) -> None:
    """The summary is a file anyone may edit: its outcome is escaped; without a summary
    (a manifest copied alone) the header counts the manifest's rows, and says that it
    knows only those: not the lists' size, nor how many URLs have no row yet."""
    manifest = tmp_path / "m.jsonl"
    statuses = ("ok", "ok", "timeout")
    rows = [make_row(url=f"http://a.example/{i}", status=s) for i, s in enumerate(statuses)]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    html = build.write_report(manifest, None).read_text(encoding="utf-8")
    assert "<b>3</b><span>rows</span>" in html and "<span>URLs</span>" not in html
    alone = {label: card(parse(html), label) for label in ("succeeded", "failed", "duplicates")}
    assert alone == {"succeeded": "2", "failed": "1", "duplicates": "0"}
    assert _outcome(html).startswith("No run summary describes this manifest. The figures")
    evil = {"outcome": "<script>x</script>", "exit_code": 9, "urls": 5, "counts": {"ok": 2},
            "missing": 3}  # fmt: skip
    summary_path(manifest).write_text(json.dumps(evil), encoding="utf-8")
    html = build.write_report(manifest, None).read_text(encoding="utf-8")
    assert "<script" not in html and "&lt;script&gt;x&lt;/script&gt; (exit 9)" in html
    assert _header(parse(html)) == {
        "URLs": "5", "succeeded": "2", "failed": "0", "duplicates": "0", "no status yet": "3"
    }  # fmt: skip
