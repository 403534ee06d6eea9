"""The benchmark harness runs end to end in --quick mode and reports every scenario.

Only the shape of the report is checked (exit 0, the table's header and scenarios, a
number for each scenario in the JSON), never the figures: they depend on the machine.
Without nginx (and no way to install it), the harness's Python fallback server is used.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from numbers import Number
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = (
    "corpus",
    "crawler",
    "baseline",
    "baseline-draft",
    "baseline-verify",
    "wget",
    "latency",
    "fixed",
    "capacity",
    "scale",
    "worker-rss",
)
# Smaller than --quick's own sizes: the shape of the report is the same, in 2/3 the time.
SMALL = ("--images", "60", "--fixed-urls", "40", "--capacity-urls", "2000", "--scale-urls", "4000")


@pytest.mark.timeout(400)  # past its own 300-s bound on the benchmark, which says more
def test_quick_benchmark_reports_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--json", str(out), *SMALL],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any(line.split() == ["scenario", "metric", "value", "target", "ok?"] for line in lines)
    listed = {line.split()[0] for line in lines if line.strip()}
    assert {"server", *SCENARIOS} <= listed, done.stdout

    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["machine"]["nproc"] >= 1 and data["machine"]["server"]
    assert {"server", *SCENARIOS} <= set(data["scenarios"])
    numeric = {
        row["scenario"]
        for row in data["table"]
        if isinstance(row["value"], Number) and not isinstance(row["value"], bool)
    }
    expected = set(SCENARIOS) if shutil.which("wget") else set(SCENARIOS) - {"wget"}
    assert expected <= numeric, sorted(expected - numeric)
    # The master's capacity is also measured in calls the size a real worker makes.
    metric = "master CPU us per call (a get and a put)"
    per_call = [row for row in data["table"] if row["metric"] == metric]
    assert per_call and isinstance(per_call[0]["value"], Number), per_call
