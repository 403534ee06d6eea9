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
import subprocess
import sys
from pathlib import Path

from conftest import assert_no_traceback, cli_env, read_rows, start_cli, wait_for_port
from imageserver import ImageServer

from crawler import constants as c

# What NumPy's import raised on a host out of descriptors (its own .so files unopenable).
UNLOADABLE = 'raise OSError(24, "Too many open files", "numpy/_core/_multiarray_umath.so")\n'


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
    worker = None
    try:
        port = wait_for_port(master)
        worker = start_cli("worker", "--server", "127.0.0.1", "--port", str(port),
                           "--output", str(out), "--threads", "2")  # fmt: skip
        stdout, stderr = master.communicate(timeout=120)
        worker.communicate(timeout=60)
    finally:
        for proc in (master, worker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
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
