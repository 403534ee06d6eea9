"""Hostile lists through the real master: stray quotes and one enormous line.

- A stray quote in a CSV or TSV list of 1000 rows, wherever it is, costs that line only:
  ``--dry-run`` counts every line, and a real run (master, local worker, loopback image
  server) writes one manifest row per line under its own line number.
- A list line of 50 MB (in every format, gzip too) is read past, never held: the master's
  peak memory stays near a small list's, and its manifest row (and CSV export) is small.
  The peak is the master's own (``wait4`` of a wrapper around it; remote workers).
"""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    RUN_TIMEOUT,
    assert_no_traceback,
    cli_command,
    cli_env,
    read_rows,
    run_cli,
    start_cli,
    wait_for_port,
)
from imageserver import ImageServer

from crawler.master.listlines import KEPT

ROWS = 1000
POSITIONS = [1, 6, 10, 500, 999, 1000]  # rows of 1000 that hold the stray quote
HUGE = 50 * 1024 * 1024  # characters of the over-long line
# Runs a command and reports its peak RSS (KiB) on stderr: its own, not a grandchild's.
PEAK = (
    "import os, subprocess, sys\n"
    "proc = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(proc.pid, 0)\n"
    "print(f'peak-rss-kib {usage.ru_maxrss}', file=sys.stderr)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def stray_list(path: Path, d: str, position: int, url: str) -> None:
    """ROWS rows of ``url.format(n)`` and a caption; row ``position``'s caption opens a
    quote it never closes."""
    rows = [f"url{d}caption"]
    for n in range(1, ROWS + 1):
        rows.append(f"{url.format(n)}{d}" + ('"Untitled' if n == position else f"caption {n}"))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def dry_run(*args: str) -> list[str]:
    result = run_cli("master", "--dry-run", *args)
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    return result.stdout.splitlines()


def test_a_stray_quote_anywhere_costs_one_line_in_a_dry_run(tmp_path: Path) -> None:
    paths = []
    for kind, d in (("csv", ","), ("tsv", "\t")):
        for position in POSITIONS:
            path = tmp_path / f"{kind}-{position}.{kind}"
            stray_list(path, d, position, f"http://127.0.0.1:1/{kind}/{position}/i{{}}.jpg")
            paths.append(str(path))
    packed = tmp_path / "packed.tsv.gz"  # gzip too
    stray_list(tmp_path / "p.tsv", "\t", 10, "http://127.0.0.1:1/gz/i{}.jpg")
    packed.write_bytes(gzip.compress((tmp_path / "p.tsv").read_bytes()))
    lists = len(paths) + 1
    assert dry_run(*paths, str(packed)) == [
        f"dry run: {lists} list(s), {lists * ROWS} line(s)",
        f"  valid URLs (distinct)      {lists * (ROWS - 1):>6}",
        f"  invalid                    {lists:>6}",
        "  duplicate                       0",
        "nothing written",
    ]


@pytest.mark.parametrize("kind", ["csv", "tsv"])
def test_a_stray_quote_costs_one_manifest_row_in_a_real_run(
    tmp_path: Path, image_server: ImageServer, kind: str
) -> None:
    d = "," if kind == "csv" else "\t"
    for n in range(1, 11):
        image_server.add_image(f"/img/i{n}.jpg", "JPEG", 16, 16, seed=n)
    path = tmp_path / f"l.{kind}"
    stray_list(path, d, 6, image_server.url("/img/i{}.jpg"))
    text = path.read_text().splitlines()
    path.write_text("\n".join(text[:201]) + "\n")  # 200 rows: a quick run
    out = tmp_path / "out"
    result = run_cli(
        "master", str(path), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "1",
        "--threads", "4", "--output", str(out), "--no-progress", "--csv", str(out / "m.csv"),
    )  # fmt: skip
    assert result.returncode in (0, 4), result.stderr  # most URLs are missing: degraded
    assert_no_traceback(result.stdout, result.stderr)
    rows = read_rows(out / "manifest.jsonl")
    by_line = {int(row["source"].rsplit(":", 1)[1]): row for row in rows}
    assert sorted(by_line) == list(range(2, 202)) and len(rows) == 200  # one row a line
    stray = by_line[7]
    assert stray["status"] == "invalid_url"
    assert (
        stray["error"]
        == "unclosed quote: a quoted cell opened on line 7 runs on into line 8, a row of its own"
    )
    for line, row in by_line.items():
        n = line - 1
        if n != 6:
            assert row["url"] == image_server.url(f"/img/i{n}.jpg")
            assert row["status"] == ("ok" if n <= 10 else "http_error"), row
            assert row["extra"] == {"caption": f"caption {n}"}
    with open(out / "m.csv", encoding="utf-8-sig", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 200


# ------------------------------------------------------------------ one huge line
def write_huge(path: Path, before: str, after: str, compress: bool) -> None:
    """``before``, HUGE characters of ``a`` without a newline, ``after``."""
    chunk = b"a" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=1) if compress else path.open("wb") as fh:
        fh.write(before.encode())
        for _ in range(HUGE // len(chunk)):
            fh.write(chunk)
        fh.write(after.encode())


def peak_of(command: list[str], **kwargs: object) -> tuple[subprocess.CompletedProcess[str], int]:
    result = subprocess.run(
        [sys.executable, "-c", PEAK, *command], env=cli_env(), capture_output=True, text=True,
        timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL, **kwargs,
    )  # fmt: skip
    *_, last = result.stderr.splitlines()
    assert last.startswith("peak-rss-kib "), result.stderr
    return result, int(last.split()[1])


A, B = "http://127.0.0.1:1/a.jpg", "http://127.0.0.1:1/b.jpg"
HUGE_LISTS = [
    ("l.txt", f"{A}\n", "", False),
    ("l.txt.gz", f"{A}\n", f"\n{B}\n", True),
    ("l.csv", f"url,caption\n{A},x\n", f"\n{B},y\n", False),
    ("l.tsv.gz", f'url\tcaption\n{A}\t"x\n', f"\n{B}\ty\n", True),  # inside an open quote
    ("l.jsonl", f'{{"url": "{A}"}}\n', f'\n{{"url": "{B}"}}', False),
]


@pytest.mark.parametrize(("name", "before", "after", "compress"), HUGE_LISTS)
def test_a_huge_line_is_read_past_in_a_dry_run(
    tmp_path: Path, name: str, before: str, after: str, compress: bool
) -> None:
    small = tmp_path / "small.txt"
    small.write_text(f"{A}\nnot a url\n")
    _, baseline = peak_of(cli_command("master", "--dry-run", str(small)))
    path = tmp_path / name
    write_huge(path, before, after, compress)
    result, peak = peak_of(cli_command("master", "--dry-run", str(path)))
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    opened = name == "l.tsv.gz"  # A's line left a quote open, into the huge line
    valid = (A in before and not opened) + (B in after)
    invalid = 1 + opened
    assert lines[0] == f"dry run: 1 list(s), {valid + invalid} line(s)"
    assert lines[1:3] == [f"  valid URLs (distinct)  {valid:>10}", f"  invalid  {invalid:>24}"]
    assert peak - baseline < 20 * 1024, (peak, baseline)  # KiB: the line was 50 MB


def test_a_huge_line_gets_a_small_row_in_a_real_run(
    tmp_path: Path, image_server: ImageServer, reaper: list[subprocess.Popen[str]]
) -> None:
    good = image_server.add_image("/img/a.jpg", "JPEG", 16, 16, seed=1)
    path = tmp_path / "l.txt"
    write_huge(path, f"{good}\n", "", compress=False)
    out = tmp_path / "out"
    master = subprocess.Popen(
        [sys.executable, "-c", PEAK, *cli_command(
            "master", str(path), "--bind", "127.0.0.1", "--port", "0", "--output", str(out),
            "--no-progress", "--csv", str(out / "m.csv"),
        )],
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    reaper.append(master)
    port = wait_for_port(master)
    worker = start_cli("worker", "--server", "127.0.0.1", "--port", str(port), "--output",
                       str(tmp_path / "w"), "-q")  # fmt: skip
    reaper.append(worker)
    _, stderr = master.communicate(timeout=RUN_TIMEOUT)
    assert master.returncode == 0, stderr
    assert_no_traceback(stderr)
    peak = int(stderr.splitlines()[-1].split()[1])
    assert peak < 80 * 1024, peak  # KiB: a master's own, without the 50 MB line
    rows = {row["source"]: row for row in read_rows(out / "manifest.jsonl")}
    assert rows[f"{path}:1"]["status"] == "ok"
    bad = rows[f"{path}:2"]
    assert bad["status"] == "invalid_url" and bad["url"] == "a" * KEPT
    assert bad["error"].startswith(f"line of {HUGE} characters, over the 131072-character limit")
    assert (out / "manifest.jsonl").stat().st_size < 8 * 1024
    assert (out / "m.csv").stat().st_size < 8 * 1024


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_device_as_a_list_is_one_line_not_an_endless_plan(
    tmp_path: Path, device: str, dry_run: bool
) -> None:
    """A device that is no terminal is refused before planning: /dev/zero and
    /dev/urandom were planned for ever, line after endless line, /dev/null was an empty
    list (a hostile-input trial's, 2026-12-03). Only read, never written: the real
    devices are safe to name."""
    flags = ["--dry-run"] if dry_run else ["--output", str(tmp_path / "out"), "--port", "0"]
    result = run_cli("master", device, "--no-progress", *flags, timeout=30)
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"URL list {device} is a device, not a file, a pipe or a terminal" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_symlink_loop_as_a_list_says_so(tmp_path: Path) -> None:
    """Its reason, not "No such file or directory" (a hostile-input trial's, 2026-12-03)."""
    (tmp_path / "a.txt").symlink_to(tmp_path / "b.txt")
    (tmp_path / "b.txt").symlink_to(tmp_path / "a.txt")
    result = run_cli("master", str(tmp_path / "a.txt"), "--dry-run", timeout=30)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Too many levels of symbolic links" in result.stderr, result.stderr
