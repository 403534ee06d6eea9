"""Values the parsers used to take that ended in a traceback, a run that could not
work, or silence (fresh users, 2026-12-01): each is now a usage error (exit 2, one line)
or one clear error line, and the commands start their work only when it can run.

- every number flag of every command has an upper bound: huge values (1e10, 1e300,
  2**31, 2**63) are refused or run normally, never a traceback; values at the bound run;
- no flag that takes a path, a name or an address takes an empty value (a script's unset
  variable);
- ``--user-agent`` is one valid HTTP header value;
- ``-q`` and ``-v`` exclude each other;
- a ``--manifest`` that is a folder, a log file or CSV under a regular file, a key that
  is not a regular file: one line saying so;
- ``--output`` is not made by a master or worker that cannot start.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import (
    RUN_TIMEOUT,
    assert_no_traceback,
    closed_port,
    free_port,
    read_rows,
    run_cli,
    start_cli,
    unstamped,
    wait_for_port,
)
from imageserver import ImageServer

from crawler.cli.export import export_parser
from crawler.cli.flags import report_parser, worker_parser
from crawler.cli.master_flags import master_parser

QUICK = 30
HUGE = ("1e10", "1e300", str(2**31), str(2**63))
PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "master": master_parser,
    "worker": worker_parser,
    "report": report_parser,
    "export": export_parser,
}


def _flag(action: argparse.Action) -> str:
    return action.option_strings[-1] if action.option_strings else action.dest


def _is_number(action: argparse.Action) -> bool:
    try:
        return isinstance(action.type("1"), int | float) if callable(action.type) else False
    except (argparse.ArgumentTypeError, ValueError):
        return False


def _flags(prog: str, number: bool) -> list[argparse.Action]:
    """The flags of ``prog`` that take a value: its numbers, or (``number`` False) the
    others without a fixed choice (paths, names, addresses, text)."""
    return [
        a
        for a in PARSERS[prog]()._actions
        if a.nargs != 0 and a.choices is None and a.dest != "help" and _is_number(a) == number
    ]


NUMBER_FLAGS = [(prog, _flag(a)) for prog in PARSERS for a in _flags(prog, True)]
TEXT_FLAGS = [(prog, _flag(a)) for prog in PARSERS for a in _flags(prog, False)]


def _stray(result: subprocess.CompletedProcess[str]) -> None:
    """No traceback, nor a thread that died with one (a worker's watchdog did)."""
    assert_no_traceback(result.stdout, result.stderr)
    assert "Exception in thread" not in result.stderr, result.stderr


def _command(prog: str, tmp_path: Path, url: str, flag: str, value: str) -> list[str]:
    """A command whose other arguments are right: a master with one local worker and one
    image to fetch, a worker with no master, a report or export of a missing manifest."""
    listing = tmp_path / f"list-{flag.strip('-')}-{len(value)}.txt"
    listing.write_text(url + "\n", encoding="utf-8")
    out = tmp_path / listing.stem
    if prog == "master":
        local = [] if flag == "--local-workers" else ["--local-workers", "1"]
        return [str(listing), "--output", str(out), "--no-report", *local, flag, value]
    if prog == "worker":
        return ["--server", "127.0.0.1", "--port", str(free_port()), flag, value]
    missing = str(tmp_path / "none.jsonl")
    if prog == "export":
        return [missing, "--format", "files", "--out", str(out), flag, value]
    return [missing, flag, value]


@pytest.mark.parametrize(("prog", "flag"), NUMBER_FLAGS)
def test_a_huge_number_is_refused_or_runs_never_a_traceback(
    tmp_path: Path,
    image_server: ImageServer,
    prog: str,
    flag: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--refresh-after 1e9, --listen-backlog 2147483648, a worker's --connect-timeout
    1e10 were tracebacks; --deadline 1e10 killed each worker's deadline watchdog."""
    url = image_server.add_image("/a.png", "PNG", 32, 32, seed=3)
    commands = [_command(prog, tmp_path, url, flag, value) for value in HUGE]
    taken = []  # the parser's own refusals are checked here; the values it takes, run
    for value, args in zip(HUGE, commands, strict=True):
        error = _parse_error(prog, args, capsys)
        if error is None:
            taken.append((value, args))
        else:
            assert error.startswith(f"crawler-{prog}: error: argument {flag}"), error
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda pair: run_cli(prog, *pair[1]), taken))
    for (value, _), result in zip(taken, results, strict=True):
        _stray(result)  # a run as any other (the image, or too small for it; no master)
        assert result.returncode in ((0, 4) if prog == "master" else (1,)), (value, result)


SPARED = ("--local-workers", "--listen-backlog", "--min-width", "--min-height")  # no image


def test_every_master_number_at_its_bound_runs(tmp_path: Path, image_server: ImageServer) -> None:
    """The bounds themselves are safe: one run with every number at its largest (the
    local workers, their threads, the port, and the smallest size, which no image has,
    aside)."""
    url = image_server.add_image("/a.png", "PNG", 32, 32, seed=3)
    at_bound = []
    for action in _flags("master", True):
        high = getattr(action.type, "high", None)
        if high is not None and _flag(action) not in SPARED:
            at_bound += [_flag(action), str(high)]
    assert "--deadline" in at_bound and "--refresh-after" in at_bound
    listing = tmp_path / "list.txt"
    listing.write_text(url + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = [str(listing), "--output", str(out), "--local-workers", "1", "--no-report"]
    result = run_cli("master", *args, *at_bound)
    _stray(result)
    assert result.returncode == 0, result.stderr
    assert [row["status"] for row in read_rows(out / "manifest.jsonl")] == ["ok"]


def test_every_number_flag_has_an_upper_bound() -> None:
    assert len(NUMBER_FLAGS) >= 25, NUMBER_FLAGS
    for prog in PARSERS:
        for action in _flags(prog, True):
            for text in ("1e300", str(2**63), "inf", "-inf", "nan", "1e999"):
                with pytest.raises((argparse.ArgumentTypeError, ValueError)):
                    action.type(text)


def _base(prog: str, tmp_path: Path) -> list[str]:
    """Arguments that are right and quick: a master's dry run, a worker with no master,
    a report or export of a missing manifest (the first argument: the positional)."""
    if prog == "master":
        listing = tmp_path / "list.txt"
        listing.write_text("http://127.0.0.1:9/a.png\n", encoding="utf-8")
        return [str(listing), "--dry-run"]
    if prog == "worker":
        return ["--server", "127.0.0.1", "--port", str(free_port())]
    missing = str(tmp_path / "none.jsonl")
    return [missing, "--format", "files", "--out", str(tmp_path / "x")][
        : 5 if prog == "export" else 1
    ]


def _run_quick(prog: str, tmp_path: Path, flag: str, value: str) -> subprocess.CompletedProcess:
    args = _base(prog, tmp_path)
    if flag in ("lists", "manifest"):  # the positional
        args[0] = value
    else:
        args.append(f"{flag}={value}")
    return run_cli(prog, *args, timeout=QUICK, cwd=tmp_path)  # the old code wrote a log " "


@pytest.mark.parametrize(("prog", "flag"), TEXT_FLAGS)
@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_value_is_a_usage_error(
    tmp_path: Path, prog: str, flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A script's unset variable: ``--authkey-file ""`` generated a new key, ``--output
    ""`` wrote into the current folder, ``--log-file ""`` logged nowhere, in silence.
    The command's own parser, in this process (a process a value took 0.4 s of the
    suite's 10 minutes; ``test_an_empty_value_stops_the_command`` runs a few)."""
    args = _base(prog, tmp_path)
    if flag in ("lists", "manifest"):  # the positional
        args[0] = value
    else:
        args.append(f"{flag}={value}")
    error = _parse_error(prog, args, capsys)
    assert error is not None and error.startswith(f"crawler-{prog}: error: argument "), error


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_an_empty_value_stops_the_command(tmp_path: Path, prog: str) -> None:
    """The same, as the command runs it: exit 2, one line, nothing else done."""
    flag = next(f for p, f in TEXT_FLAGS if p == prog)
    result = _run_quick(prog, tmp_path, flag, "")
    assert result.returncode == 2, (result.returncode, result.stderr)
    _stray(result)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"crawler-{prog}: error: argument "), last


def _parse_error(prog: str, args: list[str], capsys: pytest.CaptureFixture[str]) -> str | None:
    """The last line ``prog``'s parser writes refusing ``args`` (exit 2); None if taken."""
    capsys.readouterr()
    try:
        PARSERS[prog]().parse_args(args)
    except SystemExit as stop:
        assert stop.code == 2, stop.code
        return capsys.readouterr().err.strip().splitlines()[-1]
    return None


USER_AGENTS = [
    "crawler/1\nX-Injected: 1",
    "crawler/1\r\n",
    "crawler/1\r",
    " crawler",
    "\tcrawler",
    "crawler ",
    "",
    "crawler\x01/1",
    "crawler\x1b[31m",
    "crawler\x7f",
    "crawler \u20ac",  # not Latin-1: http.client cannot send it
    "crawler \U0001f600",
]


@pytest.mark.parametrize("agent", USER_AGENTS, ids=repr)
def test_a_user_agent_that_is_no_header_value_is_refused(tmp_path: Path, agent: str) -> None:
    """Every request failed unsent, each URL a transient failure, the run degraded."""
    result = _run_quick("master", tmp_path, "--user-agent", agent)
    assert result.returncode == 2, result.stderr
    _stray(result)
    assert "argument --user-agent: not a valid HTTP header value" in result.stderr


def test_a_latin1_user_agent_is_sent(tmp_path: Path, image_server: ImageServer) -> None:
    url = image_server.add_image("/a.png", "PNG", 32, 32, seed=3)
    listing, out = tmp_path / "list.txt", tmp_path / "out"
    listing.write_text(url + "\n", encoding="utf-8")
    agent = "crawler-\u00e9t\u00e9/1 (tab\there; +http://example.test)"
    args = [str(listing), "--output", str(out), "--local-workers", "1", "--no-report"]
    result = run_cli("master", *args, "--user-agent", agent)
    assert result.returncode == 0, result.stderr
    assert [row["status"] for row in read_rows(out / "manifest.jsonl")] == ["ok"]


@pytest.mark.parametrize("prog", ["master", "worker"])
@pytest.mark.parametrize("both", [["-q", "-v"], ["-v", "-q"], ["--quiet", "--verbose"]])
def test_quiet_and_verbose_exclude_each_other(tmp_path: Path, prog: str, both: list[str]) -> None:
    """Which would win was said nowhere."""
    result = run_cli(prog, *_base(prog, tmp_path), *both, timeout=QUICK)
    assert result.returncode == 2, result.stderr
    assert "not allowed with argument" in result.stderr.splitlines()[-1]


def _one_line(result: subprocess.CompletedProcess[str], prog: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)
    _stray(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert unstamped(lines[0]).startswith(f"crawler-{prog}: error: "), lines
    return lines[0]


@pytest.mark.parametrize("name", [".", "/", "..", "folder", "folder/"])
def test_a_manifest_that_is_a_folder_is_one_line(tmp_path: Path, name: str) -> None:
    (tmp_path / "folder").mkdir()
    listing = tmp_path / "list.txt"
    listing.write_text("http://127.0.0.1:9/a.png\n", encoding="utf-8")
    for dry in ([], ["--dry-run"]):
        args = [str(listing), "--output", str(tmp_path / "out"), "--manifest", name, *dry]
        line = _one_line(run_cli("master", *args, cwd=tmp_path, timeout=QUICK), "master")
        assert "is a folder, not a file: choose another --manifest" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("prog", "flag", "what"),
    [("master", "--log-file", "log file"), ("worker", "--log-file", "log file"),
     ("master", "--csv", "CSV export")],
)  # fmt: skip
def test_a_file_under_a_regular_file_says_so(
    tmp_path: Path, prog: str, flag: str, what: str
) -> None:
    """It said "File exists" (--log-file) or "is not a directory" (--csv)."""
    listing = tmp_path / "list.txt"
    listing.write_text("http://127.0.0.1:9/a.png\n", encoding="utf-8")
    plain = tmp_path / "plain.txt"
    plain.write_text("a file\n", encoding="utf-8")
    target = plain / "deeper" / "x.out"
    first = [str(listing), "--output", str(tmp_path / "out")] if prog == "master" else []
    args = first or ["--server", "127.0.0.1", "--port", str(free_port())]
    line = _one_line(run_cli(prog, *args, flag, str(target), timeout=QUICK), prog)
    assert line.endswith(f"cannot write {what} {target}: {plain} is a file, not a folder"), line


@pytest.mark.parametrize("prog", ["master", "worker"])
@pytest.mark.parametrize("kind", ["/dev/null", "folder", "fifo"])
def test_a_key_file_that_is_not_a_regular_file_is_refused(
    tmp_path: Path, prog: str, kind: str
) -> None:
    """/dev/null was "readable by other users; run: chmod 600 /dev/null"; a FIFO hung."""
    key = Path(kind) if kind.startswith("/") else tmp_path / kind
    if kind == "folder":
        key.mkdir()
    elif kind == "fifo":
        os.mkfifo(key, 0o600)
    listing = tmp_path / "list.txt"
    listing.write_text("http://127.0.0.1:9/a.png\n", encoding="utf-8")
    first = [str(listing), "--output", str(tmp_path / "out")] if prog == "master" else []
    args = first or ["--server", "127.0.0.1", "--port", str(free_port())]
    line = _one_line(run_cli(prog, *args, "--authkey-file", str(key), timeout=QUICK), prog)
    assert line.endswith(f"authkey file {key} is not a regular file: give the key's file"), line
    assert "chmod" not in line


def test_a_worker_that_cannot_reach_its_master_makes_no_output(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    with closed_port() as port:
        args = ["--server", "127.0.0.1", "--port", str(port), "--output", str(out)]
        line = _one_line(
            run_cli("worker", *args, "--connect-timeout", "5", timeout=QUICK), "worker"
        )
    assert "cannot reach the master" in line
    assert not (tmp_path / "new").exists()


def test_a_master_refused_the_manifest_lock_makes_no_output(
    tmp_path: Path, reaper: list[subprocess.Popen[str]]
) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("http://127.0.0.1:9/a.png\n", encoding="utf-8")
    manifest = tmp_path / "m.jsonl"
    first = start_cli("master", str(listing), "--manifest", str(manifest), "--no-progress")
    reaper.append(first)
    wait_for_port(first)
    out = tmp_path / "second"
    args = [str(listing), "--manifest", str(manifest), "--output", str(out)]
    line = _one_line(run_cli("master", *args, timeout=QUICK), "master")
    assert "is in use by another master" in line
    assert not out.exists()


def test_a_url_handed_out_once_says_once(
    tmp_path: Path, image_server: ImageServer, reaper: list[subprocess.Popen[str]]
) -> None:
    """--max-attempts 1: "handed out 1 times without an answer"."""

    def never_answers(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(QUICK)

    url = image_server.add_handler("/hang.png", never_answers)
    listing, out = tmp_path / "list.txt", tmp_path / "out"
    listing.write_text(url + "\n", encoding="utf-8")
    port = free_port()
    args = [str(listing), "--output", str(out), "--no-report", "--port", str(port)]
    master = start_cli("master", *args, "--max-attempts", "1", "--lease-seconds", "1")
    reaper.append(master)
    wait_for_port(master)
    worker = start_cli("worker", "--server", "127.0.0.1", "--port", str(port), "--output", str(out))
    reaper.append(worker)
    deadline = time.monotonic() + QUICK
    while image_server.hits("/hang.png") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait(QUICK)
    assert master.wait(QUICK) == 4  # degraded: its one URL failed
    [row] = read_rows(out / "manifest.jsonl")
    assert row["status"] == "worker_lost" and row["error"] == "handed out once without an answer"


@pytest.mark.parametrize("local", [[], ["--local-workers", "0"], ["--local-workers", "1"]])
def test_threads_without_local_workers_is_a_warning(tmp_path: Path, local: list[str]) -> None:
    """--threads sets the local workers' threads only: it was ignored in silence."""
    listing = tmp_path / "list.txt"
    listing.write_text("not a url\n", encoding="utf-8")  # a run with nothing to fetch
    args = [str(listing), "--output", str(tmp_path / "out"), "--no-report", "--threads", "4"]
    result = run_cli("master", *args, *local, timeout=RUN_TIMEOUT)
    assert result.returncode == 4, result.stderr
    _stray(result)
    warned = "warning: --threads 4 does nothing without --local-workers" in result.stderr
    assert warned == (local != ["--local-workers", "1"]), result.stderr
