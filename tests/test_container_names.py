"""Two workers of one name: containers that share their host's name (host networking),
each running its worker as pid 1, both say hello as ``hostname:1``.

Each worker runs in a PID namespace of the test's own (``unshare --pid``: pid 1 there,
the same host name, the same network: loopback only), against a real master and a
real image server. Until 2026-12-02 the master took them for one worker: one's bye
counted the other as gone, and the manifest could not tell their rows apart. Now the
second is ``hostname:1#2`` for the run, and the master warns once. Needs root and
``unshare``; skipped without them, except under ``CI=true``, where it must run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    RUN_TIMEOUT,
    assert_no_traceback,
    cli_env,
    read_rows,
    start_cli,
    wait_for_port,
)
from imageserver import ImageServer, make_image

from crawler import constants as c


def _needs_pid_namespaces() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run this: it needs root and unshare")
        pytest.skip("needs root and unshare")


def _worker_as_pid_1(port: int, out: Path) -> subprocess.Popen[str]:
    """A worker that is pid 1 of a PID namespace of its own (killed with ``unshare``)."""
    command = [
        "unshare", "--pid", "--kill-child", sys.executable, "-m", "crawler.worker",
        "--server", "127.0.0.1", "--port", str(port), "--threads", "1", "--output", str(out),
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_two_workers_of_one_name_are_two_workers(
    tmp_path: Path, image_server: ImageServer, reaper: list[subprocess.Popen[str]]
) -> None:
    _needs_pid_namespaces()
    urls = [
        image_server.add(f"/c/{i}.png", make_image("PNG", 20 + i, 16, seed=i), delay=0.3)
        for i in range(12)
    ]
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(urls) + "\n", encoding="utf-8")
    master = start_cli(
        "master", str(listed), "--bind", "127.0.0.1", "--output", str(tmp_path / "out"),
        "--no-progress", "--no-report", "--local-workers", "0", "--idle-timeout", "30",
    )  # fmt: skip
    reaper.append(master)
    port = wait_for_port(master)
    workers = [_worker_as_pid_1(port, tmp_path / "out") for _ in range(2)]
    reaper.extend(workers)
    outputs = [w.communicate(timeout=RUN_TIMEOUT) for w in workers]
    _, master_err = master.communicate(timeout=RUN_TIMEOUT)
    assert master.returncode == c.EXIT_OK, master_err
    assert [w.returncode for w in workers] == [c.EXIT_OK, c.EXIT_OK], outputs
    assert_no_traceback(master_err, *(text for pair in outputs for text in pair))

    name = f"{socket.gethostname()}:1"
    rows = read_rows(tmp_path / "out" / "manifest.jsonl")
    assert sorted(r["url"] for r in rows) == sorted(urls)
    assert {r["status"] for r in rows} == {c.OK}
    assert {r["worker"] for r in rows} == {name, f"{name}#2"}  # both worked, told apart
    assert sum(f"{name}#2" in out for out, _ in outputs) == 1  # its own summary says so
    warned = [line for line in master_err.splitlines() if "two worker processes" in line]
    assert len(warned) == 1, master_err
    assert f"both say they are {name}, host {socket.gethostname()} " in warned[0], warned
    assert f"the later one is {name}#2 in this run" in warned[0], warned
