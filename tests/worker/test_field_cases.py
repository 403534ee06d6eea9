"""The field cases of ../shared/cases (issue 10), each a test of its own.

For every case: its files verified directly (fast, exact reasons), and the whole case
crawled end to end (a real master and worker, the bytes served by a real HTTP server
on loopback), with each manifest row asserted: status, format, displayed size,
orientation, and the stored file byte-for-byte the one served.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    RUN_TIMEOUT,
    assert_no_traceback,
    cli_env,
    read_rows,
    run_cli,
    start_cli,
    wait_for_port,
)
from fieldcases import CASE_ARGS, CASES, File, growing_gif
from imageserver import ImageServer

from crawler.config import Policy
from crawler.exceptions import VerifyFailure
from crawler.worker import verify


def policy_for(case: str) -> Policy:
    args = CASE_ARGS.get(case, ())
    return Policy(min_height=int(args[1])) if args else Policy()


@pytest.mark.parametrize("case", CASES)
def test_field_case_verified_directly(case: str) -> None:
    policy = policy_for(case)
    verify.configure(policy)
    for name, expected in CASES[case]().items():
        try:
            info = verify.inspect(expected.body, policy)
            got = ("ok", info.format, (info.width, info.height), "")
        except VerifyFailure as failure:
            got = (failure.status, None, None, str(failure))
        assert got[0] == expected.status, (name, got)
        if expected.format is not None:
            assert got[1:3] == (expected.format, expected.size), name
        if expected.error is not None:
            assert expected.error in got[3], (name, got)


@pytest.mark.parametrize("case", CASES)
def test_field_case_end_to_end(case: str, tmp_path: Path, image_server: ImageServer) -> None:
    files = CASES[case]()
    urls = {image_server.add(f"/{case}/{name}", f.body): name for name, f in files.items()}
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli(
        "master", str(listing), "--port", "0", "--bind", "127.0.0.1", "--output", str(out),
        "--local-workers", "1", "--threads", "4", "--no-progress", "--no-report",
        "--max-failure-rate", "1", *CASE_ARGS.get(case, ()),  # failures are the subject
    )  # fmt: skip
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    rows = {urls[row["url"]]: row for row in read_rows(out / "manifest.jsonl")}
    assert set(rows) == set(files)
    for name, expected in files.items():
        assert_row(rows[name], expected, out, name)


def assert_row(row: dict, expected: File, out: Path, name: str) -> None:
    assert row["status"] == expected.status, (name, row)
    if expected.status != "ok":
        assert row["path"] is None and row["error"], (name, row)
        return
    assert row["format"] == expected.format, (name, row)
    assert (row["width"], row["height"]) == expected.size, (name, row)
    assert (out / row["path"]).read_bytes() == expected.body  # stored as served, unchanged


def test_orientation_is_recorded(tmp_path: Path, image_server: ImageServer) -> None:
    files = CASES["18-exif-orientation-size"]()
    urls = {image_server.add(f"/o/{name}", f.body): name for name, f in files.items()}
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli(
        "master", str(listing), "--port", "0", "--bind", "127.0.0.1", "--output", str(out),
        "--local-workers", "1", "--no-progress", "--no-report",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {urls[row["url"]]: row for row in read_rows(out / "manifest.jsonl")}
    assert rows["portrait-exif6.jpg"]["orientation"] == 6
    assert rows["portrait-upright.jpg"]["orientation"] is None


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent (pytest).
WORKER_WITH_PEAK = (
    "import re, sys\n"
    "from crawler.cli.worker import main\n"
    "code = main(sys.argv[1:])\n"
    "status = open('/proc/self/status').read()\n"
    "print('peak_rss_kb', re.search(r'VmHWM:\\s+(\\d+)', status)[1], file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def test_growing_gif_keeps_worker_memory_bounded(
    tmp_path: Path, image_server: ImageServer, reaper: list[subprocess.Popen[str]]
) -> None:
    """Case 16: a 145 KB GIF whose second frame is 14000x14000 is refused before it is
    decoded; the worker's peak RSS stays far below the 2.4 GiB it took before."""
    url = image_server.add("/grows.gif", growing_gif(14000), content_type="image/gif")
    listing = tmp_path / "list.txt"
    listing.write_text(url + "\n", encoding="utf-8")
    out = tmp_path / "out"
    master = start_cli(
        "master", str(listing), "--port", "0", "--bind", "127.0.0.1", "--output", str(out),
        "--no-progress", "--no-report",
    )  # fmt: skip
    reaper.append(master)
    port = wait_for_port(master)
    worker = subprocess.run(
        [sys.executable, "-c", WORKER_WITH_PEAK, "--server", "127.0.0.1", "--port", str(port),
         "--output", str(out), "--threads", "2", "--quiet"],
        env=cli_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    assert master.wait(timeout=RUN_TIMEOUT) == 4  # degraded: its one URL failed (refused)
    [row] = read_rows(out / "manifest.jsonl")
    assert row["status"] == "too_many_pixels", row
    peak_mb = int(worker.stderr.split("peak_rss_kb")[1].split()[0]) / 1024
    print(f"case 16: worker peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 300, f"worker peak RSS {peak_mb:.0f} MB"
