"""The report, the summary and stdout agree on what the latest run left in the manifest.

- A master killed outright (SIGKILL) writes no summary. The report used to show the
  previous run's summary above the killed run's rows ("run … completed, 60 URLs, 60
  succeeded" while "By status" said ok 74), or, with no summary at all, "32 URLs, 32
  succeeded" for a 100-URL list. Now its header says that no summary describes the
  rows, names the run that did not finish, and counts rows, not URLs.
- A rerun that sends stored images (``--verify-stored``, ``--refresh-after``) or
  failures (``--retry-failed``) out again and ends without an answer for them
  (incomplete: no worker) used to count those URLs as "no status yet", though their
  earlier rows stand. Now "no status yet" is only URLs with no row at all; the others
  are counted by their status and as "not re-checked", on stdout, in the summary and in
  the report alike.

Real masters and workers through the CLI, against the loopback image server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import RUN_TIMEOUT, assert_no_traceback, read_rows, run_cli, start_cli
from imageserver import ImageServer, make_image
from test_early_workers import _workers_of
from test_report import parse, report_cli
from test_report_outcomes import _header, _outcome, _stdout_counts

FLAGS = ("--port", "0", "--bind", "127.0.0.1", "--no-progress", "--retries", "0")


def _images(server: ImageServer, prefix: str, count: int, delay: float = 0.0) -> list[str]:
    return [
        server.add(f"/{prefix}/{i}.png", make_image("PNG", 32, 24, seed=i), delay=delay)
        for i in range(count)
    ]


def _run(listing: Path, out: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    done = run_cli("master", str(listing), "--output", str(out), *FLAGS, *flags)
    assert_no_traceback(done.stdout, done.stderr)
    return done


def _ok_rows(manifest: Path) -> int:
    try:
        return sum(row["status"] == "ok" for row in read_rows(manifest))
    except (OSError, ValueError):  # not there yet, or a row being written
        return 0


def _killed_run(listing: Path, out: Path, rows: int) -> None:
    """A master (one local worker) SIGKILLed once the manifest holds ``rows`` ok rows;
    its orphaned worker killed too."""
    proc = start_cli(
        "master", str(listing), "--output", str(out), *FLAGS, "--local-workers", "1"
    )  # fmt: skip
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while _ok_rows(out / "manifest.jsonl") < rows and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        assert _ok_rows(out / "manifest.jsonl") == rows
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for pid in _workers_of(out):
            os.kill(pid, signal.SIGKILL)


def _report(manifest: Path) -> str:
    """The page ``crawler-report`` writes of ``manifest`` (reading the summary beside it)."""
    done = report_cli(str(manifest))
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip()).read_text(encoding="utf-8")


def _by_status(html: str) -> dict[str, int]:
    """The "By status" table: rows by status."""
    return {cells[0]: int(cells[1].replace(",", "")) for cells in parse(html).table("status")}


def _cards(html: str) -> dict[str, str]:
    """Every totals card but the sizes and speeds, by label."""
    found = re.findall(r'<div class="card"><b>([^<]*)</b><span>([^<]*)</span></div>', html)
    return {label: value for value, label in found if label not in ("stored", "images/s")}


def test_report_after_a_killed_rerun_does_not_show_the_earlier_run(
    tmp_path: Path, image_server: ImageServer
) -> None:
    out, listing = tmp_path / "out", tmp_path / "list.txt"
    first = _images(image_server, "a", 6)
    listing.write_text("\n".join(first) + "\n", encoding="utf-8")
    done = _run(listing, out, "--local-workers", "1")
    assert done.returncode == 0, done.stderr
    manifest = out / "manifest.jsonl"
    summary = json.loads((out / "manifest.summary.json").read_text(encoding="utf-8"))
    size, old_run = manifest.stat().st_size, summary["run_id"]
    time.sleep(1.1)  # the killed run's rows finish in a later second than its summary
    more = _images(image_server, "b", 3) + _images(image_server, "s", 3, delay=30.0)
    listing.write_text("\n".join(first + more) + "\n", encoding="utf-8")
    _killed_run(listing, out, 9)  # 6 of the first run, 3 of this one; 3 slow ones open
    runs = {row["run_id"] for row in read_rows(manifest)} - {old_run}
    assert len(runs) == 1
    killed = runs.pop()
    for legacy in (False, True):  # a summary from before manifest_bytes: by its end time
        if legacy:
            assert summary.pop("manifest_bytes") == size  # the manifest as its run left it
            (out / "manifest.summary.json").write_text(json.dumps(summary), encoding="utf-8")
        html = _report(manifest)
        banner = _outcome(html)
        assert banner.startswith(f"Run {killed} did not finish: no summary."), banner
        assert f"of run {old_run} (completed" in banner and "earlier state" in banner
        assert "the manifest's 9 current rows" in banner and "not known here" in banner
        assert f"run {old_run} completed" not in html and "This run" not in html
        assert _cards(html) == {"rows": "9", "succeeded": "9", "failed": "0",
                                "duplicates": "0", "hosts": "1"}  # fmt: skip
        assert _by_status(html) == {"ok": 9}
        assert f"in run {killed}," in html  # the chart is of the killed run, as the header


def test_report_after_a_killed_rerun_that_wrote_no_row_names_it(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """A rerun killed before its first row leaves the manifest the size the earlier
    run's summary recorded: the run history alone says it started. Until 2026-12-03 the
    header showed the earlier run as "completed" (a fresh user's)."""
    out, listing = tmp_path / "out", tmp_path / "list.txt"
    first = _images(image_server, "a", 3)
    listing.write_text("\n".join(first) + "\n", encoding="utf-8")
    assert _run(listing, out, "--local-workers", "1").returncode == 0
    old_run = json.loads((out / "manifest.summary.json").read_text(encoding="utf-8"))["run_id"]
    listing.write_text("\n".join([*first, *_images(image_server, "n", 1)]) + "\n", "utf-8")
    proc = start_cli("master", str(listing), "--output", str(out), *FLAGS)  # no worker
    try:
        runs = out / "manifest.runs.jsonl"
        deadline = time.monotonic() + RUN_TIMEOUT
        while runs.read_text(encoding="utf-8").count('"started"') < 2:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.communicate(timeout=RUN_TIMEOUT)
    killed = json.loads(runs.read_text(encoding="utf-8").splitlines()[-1])["run_id"]
    html = _report(out / "manifest.jsonl")
    banner = _outcome(html)
    assert banner.startswith(f"Run {killed} did not finish: no summary."), banner
    assert f"of run {old_run} (completed" in banner and "earlier state" in banner
    assert f"run {old_run} completed" not in html
    done = _run(listing, out, "--local-workers", "1")  # resumed: the page is the new run's
    assert done.returncode == 0, done.stderr
    assert "did not finish" not in _report(out / "manifest.jsonl")


def test_report_of_a_killed_first_run_counts_rows_not_urls(
    tmp_path: Path, image_server: ImageServer
) -> None:
    out, listing = tmp_path / "out", tmp_path / "list.txt"
    urls = _images(image_server, "a", 3) + _images(image_server, "s", 3, delay=30.0)
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    _killed_run(listing, out, 3)
    assert not (out / "manifest.summary.json").exists()
    (killed,) = {row["run_id"] for row in read_rows(out / "manifest.jsonl")}
    html = _report(out / "manifest.jsonl")
    banner = _outcome(html)
    assert banner.startswith(f"No summary of run {killed} beside the manifest: it did not finish")
    assert "3 current rows" in banner and "how many URLs the lists hold" in banner
    assert _cards(html) == {"rows": "3", "succeeded": "3", "failed": "0", "duplicates": "0",
                            "hosts": "1"}  # fmt: skip
    assert _by_status(html) == {"ok": 3}


@pytest.mark.parametrize(
    ("flags", "again"),
    [
        (("--verify-stored", "--retry-failed"), 4),  # every stored image, and the 404
        (("--retry-failed",), 1),  # the 404 only: the stored images are trusted
        (("--refresh-after", "0.000001"), 3),  # the stored images (the 404 is permanent: kept)
    ],
    ids=["verify-stored", "retry-failed", "refresh-after"],
)
def test_a_rerun_left_without_workers_keeps_earlier_rows_standing(
    tmp_path: Path, image_server: ImageServer, flags: tuple[str, ...], again: int
) -> None:
    """3 stored images, a 404 and a repeated line; the rerun adds 2 URLs, and has no
    worker: it ends incomplete (exit 3) after --idle-timeout."""
    out, listing = tmp_path / "out", tmp_path / "list.txt"
    urls = [*_images(image_server, "a", 3), image_server.add("/gone.png", b"", status=404)]
    listing.write_text("\n".join([*urls, urls[0]]) + "\n", encoding="utf-8")
    assert _run(listing, out, "--local-workers", "1").returncode == 0
    new = _images(image_server, "n", 2)
    listing.write_text("\n".join([*urls, urls[0], *new]) + "\n", encoding="utf-8")
    done = _run(listing, out, "--local-workers", "0", "--idle-timeout", "1", *flags)
    assert done.returncode == 3, done.stderr
    summary = json.loads((out / "manifest.summary.json").read_text(encoding="utf-8"))
    counts = {"ok": 3, "http_error": 1, "duplicate": 1}
    assert (summary["urls"], summary["counts"]) == (7, counts), summary
    assert (summary["missing"], summary["not_rechecked"]) == (2, again), summary
    said = _stdout_counts(done.stdout)
    assert said == {"URLs": 7, **counts, "(no status yet)": 2}, done.stdout
    line = f"(not re-checked) {again:>9}  their earlier rows stand"
    assert re.sub(" +", " ", line) in re.sub(" +", " ", done.stdout), done.stdout
    expected = {"URLs": "7", "succeeded": "3", "failed": "1", "duplicates": "1"}
    for html in (
        (out / "manifest.report.html").read_text(encoding="utf-8"),
        _report(out / "manifest.jsonl"),
    ):
        assert _header(parse(html)) == {**expected, "no status yet": "2"}
        assert _cards(html)["not re-checked"] == str(again)
        banner = _outcome(html)
        assert banner.startswith("Incomplete (exit 3): no worker has been active"), banner
        assert "2 of 7 URLs have no status yet" in banner
        assert f"{again} of 7 URLs were not re-checked this run" in banner
        assert _by_status(html) == counts  # the manifest's rows say the same
