"""``--port -``: a master's local workers start before it listens (issue 15, "no fixed
overhead") and read its port from a pipe on their stdin.

A worker given the port that way works the run like any other; one whose stdin ends
first (its master died before listening) leaves quietly without touching anything; a
line that is not a port is one clear error. And whenever the master is killed, early or
late, none of its local workers is left behind.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    RUN_TIMEOUT,
    assert_no_traceback,
    cli_command,
    cli_env,
    read_rows,
    start_cli,
    wait_for_port,
)
from test_early_workers import _workers_of

from crawler import constants as c
from crawler.master import prespawn

ORPHAN_WAIT = 15.0  # seconds a worker may take to notice its master is gone


def _worker(out: Path, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command("worker", "--server", "127.0.0.1", "--port", "-", "--output", str(out),
                    "--threads", "2", *flags),
        env=cli_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def test_a_worker_given_the_port_on_stdin_works_the_run(
    tmp_path: Path, url_list: Path, reaper: list[subprocess.Popen[str]]
) -> None:
    out = tmp_path / "out"
    master = start_cli(
        "master", str(url_list), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "0",
        "--output", str(out), "--no-progress", "--no-report",
    )  # fmt: skip
    reaper.append(master)
    worker = _worker(out)
    reaper.append(worker)
    stdout, stderr = worker.communicate(f"{wait_for_port(master)}\n", timeout=RUN_TIMEOUT)
    assert worker.returncode == c.EXIT_OK, stderr
    assert master.wait(timeout=RUN_TIMEOUT) == c.EXIT_OK
    rows = read_rows(out / "manifest.jsonl")
    listed = [line for line in url_list.read_text().splitlines() if line.startswith("http")]
    assert sorted(row["url"] for row in rows) == sorted(listed)
    assert sum(row["status"] == c.OK for row in rows) >= 5
    assert_no_traceback(stdout, stderr)


def test_a_worker_whose_stdin_ends_first_leaves_quietly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    worker = _worker(out)
    stdout, stderr = worker.communicate("", timeout=RUN_TIMEOUT)  # closed: no port, ever
    assert worker.returncode == c.EXIT_INTERRUPTED
    assert (stdout, stderr) == ("", "")
    assert not out.exists()  # nothing made: it never had anything to store


@pytest.mark.parametrize(
    "line", ["abc", "70000", "-5", "12 34", " ", "0", "+80", "4_3", "\uff18\uff10", "9" * 500]
)
def test_a_line_that_is_not_a_port_is_one_clear_error(tmp_path: Path, line: str) -> None:
    worker = _worker(tmp_path / "out")
    stdout, stderr = worker.communicate(f"{line}\n", timeout=RUN_TIMEOUT)
    assert worker.returncode == c.EXIT_ERROR
    assert_no_traceback(stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "--port -: not a TCP port on stdin" in lines[0], stderr


@pytest.mark.parametrize("after", [0.0, 0.02, 0.1, 0.4])
def test_a_master_killed_at_any_moment_leaves_no_worker(
    tmp_path: Path, url_list: Path, after: float
) -> None:
    """SIGKILL runs no cleanup. Killed as soon as its first worker exists, the master has
    not listened yet (it imports ~40 ms of modules first): the worker's stdin ends. Later,
    the worker finds no master, or loses it. It leaves in every case."""
    out = tmp_path / "out"
    # Not pipes: a worker holding their write ends would keep a read of them waiting.
    master = subprocess.Popen(
        cli_command("master", str(url_list), "--bind", "127.0.0.1", "--port", "0",
                    "--local-workers", "2", "--threads", "2", "--output", str(out)),
        env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    give_up = time.monotonic() + RUN_TIMEOUT
    while not _workers_of(out) and master.poll() is None and time.monotonic() < give_up:
        time.sleep(0.001)
    seen = set(_workers_of(out))
    assert seen, "the master started no worker"
    time.sleep(after)
    master.kill()
    master.wait(timeout=RUN_TIMEOUT)
    give_up = time.monotonic() + ORPHAN_WAIT
    while _workers_of(out) and time.monotonic() < give_up:
        time.sleep(0.05)
    assert _workers_of(out) == [], f"left behind, of {sorted(seen)}"


def _worker_args_from_stdin() -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command("worker", c.ARGS_FROM_STDIN), env=cli_env(), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_worker_given_its_command_line_on_stdin_works_the_run(
    tmp_path: Path, url_list: Path, reaper: list[subprocess.Popen[str]]
) -> None:
    """``--args-from-stdin``: how a master starts its local workers before it has read
    its own flags (``master.prespawn``); the line is a JSON list, ``--port`` in it."""
    out = tmp_path / "out"
    master = start_cli(
        "master", str(url_list), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "0",
        "--output", str(out), "--no-progress", "--no-report",
    )  # fmt: skip
    reaper.append(master)
    worker = _worker_args_from_stdin()
    reaper.append(worker)
    args = ["--server", "127.0.0.1", "--port", str(wait_for_port(master)), "--output", str(out)]
    stdout, stderr = worker.communicate(json.dumps(args) + "\n", timeout=RUN_TIMEOUT)
    assert worker.returncode == c.EXIT_OK, stderr
    assert master.wait(timeout=RUN_TIMEOUT) == c.EXIT_OK
    assert sum(row["status"] == c.OK for row in read_rows(out / "manifest.jsonl")) >= 5
    assert_no_traceback(stdout, stderr)


def test_a_worker_whose_command_line_never_comes_leaves_quietly() -> None:
    worker = _worker_args_from_stdin()
    assert worker.communicate("", timeout=RUN_TIMEOUT) == ("", "")
    assert worker.returncode == c.EXIT_INTERRUPTED


@pytest.mark.parametrize("line", ["--server x", "{}", '["--port", 5]', "[", '"a"', "null"])
def test_a_line_that_is_no_command_line_is_one_clear_error(line: str) -> None:
    worker = _worker_args_from_stdin()
    stdout, stderr = worker.communicate(f"{line}\n", timeout=RUN_TIMEOUT)
    assert worker.returncode == c.EXIT_ERROR
    assert_no_traceback(stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "not a JSON list of arguments" in lines[0], stderr


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["l.txt", "--local-workers", "3"], 3),
        (["--local-workers=2", "l.txt"], 2),
        (["--local-workers", "2", "--local-workers", "1"], 1),  # the last wins, as argparse
        (["--local-workers", "x"], 0),
        (["--local-workers", "\uff12"], 0),  # a digit argparse's int() takes; not early
        (["--local-workers"], 0),
        (["--local-w", "2"], 0),  # abbreviated: started a moment later, not early
        (["--", "--local-workers", "2"], 0),  # a list named so
        (["--local-workers", "2", "--", "l.txt"], 2),
        (["--local-workers", "2", "--dry-run"], 0),
        (["--help", "--local-workers", "2"], 0),
        (["l.txt"], 0),
    ],
)
def test_the_workers_started_before_the_flags_are_read(argv: list[str], wanted: int) -> None:
    assert prespawn.wanted_from(argv) == wanted


def test_a_master_that_refuses_its_flags_leaves_no_early_worker(tmp_path: Path) -> None:
    """A worker started before the flags were read (``--local-workers 2`` written out) is
    killed when a flag or a list is refused: one line, exit 1 or 2, nothing left."""
    out = tmp_path / "out"
    for flags in (["--threads", "0"], []):
        listed = tmp_path / "missing.txt"  # and a list that does not exist
        result = subprocess.run(
            cli_command("master", str(listed), "--local-workers", "2", "--output", str(out),
                        *flags),
            env=cli_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert result.returncode in (c.EXIT_ERROR, 2), result.stderr
        assert_no_traceback(result.stdout, result.stderr)
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert len(errors) == 1, result.stderr  # after argparse's usage, if any
        assert _workers_of(out) == []
