"""A worker host never loads master or report code (it may never act as master).

import-linter checks the static imports (tests/test_code_rules.py); this checks what a
real worker process loads while it works a real run, lazy imports included, as the
process itself reports them with ``python -X importtime``. The same run shows that no
first image pays for a library's lazy import of what the worker never uses (issue 15,
"no fixed overhead").
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import RUN_TIMEOUT, cli_env, read_rows, start_cli, wait_for_port

IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.M)


def test_worker_process_loads_no_master_or_report_module(
    tmp_path: Path, url_list: Path, reaper: list[subprocess.Popen[str]]
) -> None:
    out = tmp_path / "out"
    master = start_cli(
        "master", str(url_list), "--bind", "127.0.0.1", "--port", "0",
        "--output", str(out), "--no-progress", "--no-report",
    )  # fmt: skip
    reaper.append(master)
    port = wait_for_port(master)
    worker = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "crawler.worker", "--server", "127.0.0.1",
         "--port", str(port), "--output", str(out), "--threads", "2"],
        env=cli_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert master.wait(timeout=RUN_TIMEOUT) == 0
    rows = read_rows(out / "manifest.jsonl")
    assert any(row["status"] == "ok" for row in rows)  # the worker really worked the run
    loaded = set(IMPORTED.findall(worker.stderr))
    ours = {name for name in loaded if name == "crawler" or name.startswith("crawler.")}
    # What downloading, verifying and storing needs was loaded (the check can see modules)...
    assert {"crawler.worker.pipeline", "crawler.worker.verify", "crawler.protocol"} <= ours
    # ...and nothing of the master's or the report's.
    forbidden = ("crawler.master", "crawler.report", "crawler.cli.master", "crawler.cli.report")
    assert sorted(n for n in ours if n.startswith(forbidden)) == []
    # The run had WebP and JPEG images. Image.open given a format whose plugin was not
    # loaded loads all of Pillow's (~25 ms: EPS, PSD, FITS among them), and np.median's
    # first call imports numpy.ma (~13 ms): neither happens in a worker.
    assert {"numpy.ma", "PIL.EpsImagePlugin", "PIL.PsdImagePlugin"} & loaded == set()
    # A worker without a terminal draws no bar, so it does not import tqdm (~10 ms).
    assert "tqdm" not in loaded
