"""Shared fixtures: a real image server on loopback, keys, and runners for the real CLIs.

Master and workers always run as real processes (``python -m crawler.master`` /
``python -m crawler.worker``) talking over BaseManager on a loopback port.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

# Imported whole before any test: the report starts NumPy's import on a thread of its
# own (``deferred.load_numpy_soon``), and Hypothesis, which looks at ``sys.modules``
# for NumPy, found it half imported there ("partially initialized module 'numpy'"),
# failing test_ledger in a process that had run a report just before.
import numpy  # noqa: F401
import pytest
from PIL import Image, PngImagePlugin

sys.path.insert(0, str(Path(__file__).parent))

from imageserver import ImageServer, standard_routes

KEY = "test-key-0123456789abcdef0123456789abcdef"

# The processes the tests start must get the stop signals at their default: a suite run
# in the background (SIGINT ignored) or under nohup (SIGHUP ignored) hands SIG_IGN on
# through exec, and the master, the worker and the export keep an inherited SIG_IGN
# (crawler.stopsignals), so a test that stops one with that signal would wait for ever.
# A handler that does nothing ignores the signal here as well, and exec resets it.
for _signum in (signal.SIGINT, signal.SIGHUP):
    if signal.getsignal(_signum) is signal.SIG_IGN:
        signal.signal(_signum, lambda signum, frame: None)
RUN_TIMEOUT = 120  # seconds any one CLI run may take before the test fails (never hangs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port nobody listens on while the block runs: bound, never listening,
    so a connection is refused at once. A ``free_port`` is free only when asked: another
    test's server took one in a CI run, and a worker meant to find no master waited 10 s
    for an answer from it instead (2026-12-02)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


# Set in every CLI process a test starts (and inherited by the workers a master starts):
# which test process started it. Tests that look processes up by their environment
# match it, so a suite run beside another (the same tests in another checkout, at the
# same time) never takes the other's processes for its own.
SESSION_ENV = "CRAWLER_TEST_SESSION"


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CRAWLER_AUTHKEY"}
    env["CRAWLER_AUTHKEY"] = KEY
    env["PYTHONUNBUFFERED"] = "1"
    env[SESSION_ENV] = str(os.getpid())
    env.update(extra)
    return env


def cli_command(module: str, *args: str) -> list[str]:
    """The command line for ``python -m crawler.<module> ARGS``.

    The test servers live on loopback, which the master's default ``--block-private``
    policy refuses; so a master gets ``--no-block-private`` first, and a test that wants
    the guard passes ``--block-private`` (the later flag wins). A master also gets
    ``--port 0`` (a free port, which it prints) unless the test names one: the suite
    runs in two processes, and two masters on the default 8001 would collide.
    """
    guard = ["--no-block-private", "--port", "0"] if module == "master" else []
    return [sys.executable, "-m", f"crawler.{module}", *guard, *args]


def run_cli(
    module: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = RUN_TIMEOUT,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m crawler.<module> ARGS`` (in ``cwd``) to completion and capture its
    output."""
    return subprocess.run(
        cli_command(module, *args),
        cwd=cwd,
        env=cli_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start_cli(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``python -m crawler.<module> ARGS`` in the background."""
    return subprocess.Popen(
        cli_command(module, *args),
        env=cli_env() if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def wait_for_port(proc: subprocess.Popen[str], timeout: float = 30) -> int:
    """Read the master's stderr until it says which port it serves on."""
    import select
    import time

    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.2)
        if ready:
            line = proc.stderr.readline()
            match = re.search(r"serving run \w+ on [^ ]*:(\d+)", line)
            if match:
                return int(match.group(1))
        if proc.poll() is not None:
            raise AssertionError(f"master exited early: {proc.returncode}, {proc.stderr.read()}")
    raise AssertionError("master did not report its port")


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# Without a terminal every stderr line starts with this (ISO 8601, with the UTC offset).
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} ")


def unstamped(line: str) -> str:
    """A stderr line without its timestamp, which it must have (stderr is a pipe here)."""
    assert STAMP.match(line), f"no timestamp: {line!r}"
    return STAMP.sub("", line, count=1)


def assert_no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text


@pytest.fixture(autouse=True)
def _pillow_limits_kept() -> Iterator[None]:
    """Pillow's process-wide limits as each test found them: ``verify.configure`` sets
    them from a test's policy, and a test run after it in the same process (xdist gives
    a process many files) decoded under that policy's limit (a Hypothesis case of 8 MP
    in ``test_derive`` refused as a bomb after a verification test set 4 MP)."""
    saved = (Image.MAX_IMAGE_PIXELS, PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY)
    yield
    Image.MAX_IMAGE_PIXELS, PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY = saved


@pytest.fixture
def reaper() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; any still running at teardown are killed (never leaked)."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    server = ImageServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def routes(image_server: ImageServer) -> dict[str, str]:
    return standard_routes(image_server)


@pytest.fixture
def url_list(tmp_path: Path, routes: dict[str, str]) -> Path:
    path = tmp_path / "list.txt"
    path.write_text("# test list\n\n" + "\n".join(routes.values()) + "\n", encoding="utf-8")
    return path
