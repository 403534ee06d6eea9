"""A run that never ends (``kill -9``, a second Ctrl-C, a power cut) is still part of the
run history: the next runs count it and know its policy (``summary.record_start``).

Until 2026-12-01 only a run's end wrote its line, so a killed run's failures skipped
their backoff and counted one more failed run each time, and failures decided by a
limit it ran with (``--max-bytes``) were kept for good once the limit changed (a fresh
user's torture runs: 114 URLs given up after 11 master starts instead of 16 runs).
"""

from __future__ import annotations

import json
import signal

from conftest import run_cli
from imageserver import ImageServer, make_image
from test_fault_tolerance import Run, Spawn, add_images, run, spawn, wait_until

from crawler import constants as c
from crawler.manifest import runs_path

__all__ = ["run", "spawn"]  # fixtures, shared with test_fault_tolerance


def test_a_killed_runs_failures_are_decided_again_by_its_policy(
    run: Run, image_server: ImageServer, spawn: Spawn
) -> None:
    """A run killed (-9) after its too_large rows is in the run history (its start line,
    with its policy): the rerun without its --max-bytes fetches them. Until 2026-12-01 a
    killed run left no line, and such rows were kept for good (a fresh user's)."""
    images = add_images(image_server, 3)
    slow = image_server.add("/slow.png", make_image("PNG", 40, 30, seed=9), delay=30.0)
    args = run.master_args(run.write_list([*images, slow]), "--local-workers", "1")
    master = spawn("master", *args, "--max-bytes", "500")
    too_large = lambda: [r for r in run.tolerant_rows() if r.get("status") == c.TOO_LARGE]  # noqa: E731
    wait_until(lambda: len(too_large()) == 3, "the too_large rows", alive=(master,))
    master.signal(signal.SIGKILL)
    assert master.wait() == -signal.SIGKILL
    started = [json.loads(line) for line in runs_path(run.manifest).read_text().splitlines()]
    assert [r["outcome"] for r in started] == ["started"], started
    assert started[0]["policy"]["max_bytes"] == 500

    image_server.add("/slow.png", make_image("PNG", 40, 30, seed=9))  # answered at once now
    rerun = run_cli("master", *args, timeout=90)
    assert rerun.returncode == 0, rerun.stderr
    assert {r["url"]: r["status"] for r in run.rows()} == dict.fromkeys([*images, slow], c.OK)
