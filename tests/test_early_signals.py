"""A stop signal in a command's first moments, while Python imports it (``cli.startup``).

The master then ends as it does during planning: "interrupted", exit 130, no traceback,
no worker left behind; a worker ends with exit 130, silently while it imports. Before,
SIGINT printed a KeyboardInterrupt traceback from inside an import, and SIGTERM and
SIGHUP killed the process without a word (exit -15, -1). The moments are swept from when
the process has its handlers (``SigCgt`` in /proc: before that it is the interpreter's
own start-up, which no program can change).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import RUN_TIMEOUT, assert_no_traceback, cli_command, cli_env
from test_early_workers import _workers_of

from crawler import constants as c

ORPHAN_WAIT = 15.0
MOMENTS = [0.0, 0.01, 0.03, 0.06]  # seconds after the handlers are in place


def _wait_for_handler(proc: subprocess.Popen[str], signum: int) -> None:
    """Until ``proc`` catches ``signum`` (its bit in /proc/PID/status SigCgt)."""
    give_up = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < give_up and proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            break
        caught = int(
            next(ln for ln in status.splitlines() if ln.startswith("SigCgt:")).split()[1], 16
        )
        if caught >> (signum - 1) & 1:
            return
        time.sleep(0.0005)
    raise AssertionError("the process never caught the signal")


def _master_command(via: str, *args: str) -> list[str]:
    """``python -m crawler.master ARGS``, or the ``crawler-master`` script (cron's command
    in the README), which must go through ``cli.startup`` too."""
    if via == "python -m":
        return cli_command("master", *args)
    script = Path(sys.executable).parent / "crawler-master"
    assert "from crawler.cli.startup import master" in script.read_text()  # setup.cfg's
    return [str(script), "--no-block-private", *args]


@pytest.mark.parametrize("via", ["python -m", "crawler-master"])
@pytest.mark.parametrize("after", MOMENTS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_master_stopped_at_once_says_interrupted(
    tmp_path: Path, signum: int, after: float, via: str
) -> None:
    urls = tmp_path / "list.txt"  # long enough that planning is still going on
    urls.write_text("".join(f"http://127.0.0.1:9/{i}.jpg\n" for i in range(20_000)))
    out = tmp_path / "out"
    master = subprocess.Popen(
        _master_command(via, str(urls), "--bind", "127.0.0.1", "--port", "0",
                        "--local-workers", "2", "--output", str(out), "--no-progress"),
        env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for_handler(master, signal.SIGTERM)  # all three are set together
        time.sleep(after)
        master.send_signal(signum)
        stdout, stderr = master.communicate(timeout=RUN_TIMEOUT)
    finally:
        if master.poll() is None:
            master.kill()
    assert master.returncode == c.EXIT_INTERRUPTED, stderr
    assert_no_traceback(stdout, stderr)
    assert "interrupted" in stderr or "stopping" in stderr, stderr
    give_up = time.monotonic() + ORPHAN_WAIT
    while _workers_of(out) and time.monotonic() < give_up:
        time.sleep(0.05)
    assert _workers_of(out) == []


@pytest.mark.parametrize("after", [*MOMENTS, 0.5])  # 0.5 s: waiting for --port - on stdin
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_worker_stopped_at_once_exits_130(tmp_path: Path, signum: int, after: float) -> None:
    worker = subprocess.Popen(
        cli_command("worker", "--server", "127.0.0.1", "--port", "-", "--output",
                    str(tmp_path / "out")),
        env=cli_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _wait_for_handler(worker, signal.SIGTERM)
        time.sleep(after)
        worker.send_signal(signum)
        stdout, stderr = worker.communicate(timeout=RUN_TIMEOUT)  # stdin closed after: too late
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == c.EXIT_INTERRUPTED, stderr
    assert_no_traceback(stdout, stderr)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("wait", [[], ["--wait"]], ids=["once", "wait"])
def test_a_worker_stopped_while_its_master_does_not_answer_exits_at_once(
    tmp_path: Path, wait: list[str]
) -> None:
    """A master port whose SYNs go unanswered (here: a full accept queue) under a long
    --connect-timeout: a stop signal ends the worker at once, silently, exit 130. Until
    2026-12-02 the first connection attempt held it the whole 30 s (a fresh user's:
    `systemctl stop` while the master's host was down)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname(), timeout=2)  # queue full
    port = str(listener.getsockname()[1])
    worker = subprocess.Popen(
        cli_command("worker", "--server", "127.0.0.1", "--port", port, "--connect-timeout",
                    "30", "--output", str(tmp_path / "out"), *wait),
        env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _wait_for_connect(worker, int(port))  # its own handlers are in place by then
        worker.send_signal(signal.SIGTERM)
        stdout, stderr = worker.communicate(timeout=15)  # 30 s before: this raises
    finally:
        if worker.poll() is None:
            worker.kill()
        filler.close()
        listener.close()
    assert worker.returncode == c.EXIT_INTERRUPTED, stderr
    assert (stdout, stderr) == ("", ""), stderr  # silently


def _wait_for_connect(proc: subprocess.Popen[str], port: int) -> None:
    """Until a socket of this machine sends SYNs to ``port`` on 127.0.0.1 (state
    SYN_SENT, 02, in /proc/net/tcp): the worker's first connection attempt."""
    remote = f"0100007F:{port:04X}"
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
        if any(f[2] == remote and f[3] == "02" for f in (line.split() for line in lines)):
            return
        time.sleep(0.01)
    raise AssertionError(f"the worker never tried to connect: {proc.poll()}")
