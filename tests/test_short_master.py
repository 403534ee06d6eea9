"""A master short of what its end-of-run steps need still ends as its run earned.

The report is a side output: NumPy that cannot be imported (a host short of
descriptors or memory: ``ulimit -n``, ``ulimit -v``), a thread the system refuses
(``pids.max``) must cost the report at most, in one line, never the summary or the
exit code. Until 2026-12-03 a finished run under ``ulimit -n`` ended in a traceback
from NumPy's import, exit 1, no summary, and one under ``pids.max`` in "the system
refused to start a thread", exit 1 (a resource-limits trial's).
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import assert_no_traceback, cli_env, read_rows, start_cli, wait_for_port
from imageserver import ImageServer

from crawler import constants as c

# What NumPy's import raised on a host out of descriptors (its own .so files unopenable).
UNLOADABLE = 'raise OSError(24, "Too many open files", "numpy/_core/_multiarray_umath.so")\n'


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def _finish_with_a_worker(
    master: subprocess.Popen[str], port: int, out: Path, threads: int
) -> tuple[str, str]:
    """Start a worker for ``master``; the master's (stdout, stderr) once both ended."""
    worker = start_cli("worker", "--server", "127.0.0.1", "--port", str(port),
                       "--output", str(out), "--threads", str(threads))  # fmt: skip
    try:
        stdout, stderr = master.communicate(timeout=120)
        worker.communicate(timeout=60)
    finally:
        _kill(worker)
    return stdout, stderr


def test_a_finished_run_whose_master_cannot_import_numpy_keeps_its_summary(
    tmp_path: Path, image_server: ImageServer
) -> None:
    fake = tmp_path / "no-numpy" / "numpy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(UNLOADABLE, encoding="utf-8")
    urls = [image_server.add_image(f"/{i}.png", "PNG", 64, 48, seed=i) for i in range(4)]
    listing = tmp_path / "l.txt"
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    master = start_cli(
        "master", str(listing), "--output", str(out), "--local-workers", "0",
        "--no-progress", "--idle-timeout", "60",
        env=cli_env(PYTHONPATH=str(fake.parent)),  # the master's alone: not the worker's
    )  # fmt: skip
    try:
        stdout, stderr = _finish_with_a_worker(master, wait_for_port(master), out, 2)
    finally:
        _kill(master)
    assert master.returncode == c.EXIT_OK, stderr
    assert_no_traceback(stdout, stderr)
    said = [line for line in stderr.splitlines() if "no run report" in line]
    assert len(said) == 1 and "Too many open files" in said[0], stderr
    assert "run " in stdout and "completed" in stdout  # the summary, on stdout
    summary = json.loads((out / "manifest.summary.json").read_text(encoding="utf-8"))
    assert summary["outcome"] == "completed" and summary["counts"] == {"ok": 4}
    assert not (out / "manifest.report.html").exists()
    assert {row["status"] for row in read_rows(out / "manifest.jsonl")} == {"ok"}


# A LateStops made where no thread can start: its stack cannot be mapped (RLIMIT_AS).
NO_THREAD = """
import logging, resource, sys, threading
from crawler.master.endstop import LateStops

logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
size = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1])
resource.setrlimit(resource.RLIMIT_AS, ((size << 10) + (1 << 20), resource.RLIM_INFINITY))
try:
    threading.Thread(target=lambda: None).start()
    print("a thread started")
except RuntimeError:
    late = LateStops(True, "the report")
    late.signal()  # the second: its notice queued, no thread to log it
    late.close()
"""


def test_the_late_stops_need_no_thread_of_their_own() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_THREAD], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "a thread started" not in done.stdout, "the limit let a thread start"
    assert done.stdout.splitlines() == [
        "skipping the report; writing the summary (a third signal stops at once)"
    ], done.stdout


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_a_master_out_of_descriptors_says_so_and_takes_workers_once_it_has_them(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Its descriptor limit lowered to what it holds once serving (``prlimit``): the
    connections wait in the listen queue, one warning says why, and the accept loop
    pauses instead of spinning. Until 2026-12-03 it spun without a word while workers
    were reset (a resource-limits trial's)."""
    url = image_server.add_image("/a.png", "PNG", 40, 30, seed=3)
    listing = tmp_path / "l.txt"
    listing.write_text(url + "\n", encoding="utf-8")
    out = tmp_path / "out"
    master = start_cli("master", str(listing), "--output", str(out), "--local-workers", "0",
                       "--no-progress", "--no-report", "--idle-timeout", "60")  # fmt: skip
    waiting: list[socket.socket] = []
    try:
        port = wait_for_port(master)
        hard = resource.prlimit(master.pid, resource.RLIMIT_NOFILE)[1]
        held = len(os.listdir(f"/proc/{master.pid}/fd"))
        resource.prlimit(master.pid, resource.RLIMIT_NOFILE, (held, hard))
        before = _cpu_s(master.pid)
        waiting = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        time.sleep(2.0)
        spent = _cpu_s(master.pid) - before
        resource.prlimit(master.pid, resource.RLIMIT_NOFILE, (held + 64, hard))
        for sock in waiting:
            sock.close()
        stdout, stderr = _finish_with_a_worker(master, port, out, 1)
    finally:
        for sock in waiting:
            sock.close()
        _kill(master)
    assert master.returncode == c.EXIT_OK, stderr
    assert_no_traceback(stdout, stderr)
    said = [line for line in stderr.splitlines() if "cannot take a worker's connection" in line]
    assert len(said) == 1 and "Too many open files" in said[0], stderr
    assert f"may open {held} files" in said[0], said
    assert spent < 1.0, f"the accept loop spun: {spent:.2f} s of CPU in 2 s"
    assert [row["status"] for row in read_rows(out / "manifest.jsonl")] == ["ok"]
