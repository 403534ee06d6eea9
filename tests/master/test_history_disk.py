"""A run its history cannot record does not start.

The run history's "started" line carries the run's policy, which later runs heal its
failures with (``healing.History``). A manifest folder out of inodes took the manifest
and its lock but not that line: the master logged an error and served anyway, exit 0
(a fresh user's, 2026-12-03). Swept over how many files the folder can take: every run
either stops before serving with one line and exit 1, or has its started line.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import assert_no_traceback, run_cli
from imageserver import ImageServer, make_image
from test_hostile_network import tmpfs

from crawler import constants as c


def test_every_run_that_serves_is_in_its_history(tmp_path: Path, image_server: ImageServer) -> None:
    url = image_server.add("/a.png", make_image("PNG", 20, 20, seed=1), content_type="image/png")
    listing = tmp_path / "l.txt"
    listing.write_text(f"{url}\n")
    said_history = False
    for inodes in range(3, 9):  # the folder's root is one of them
        place = tmp_path / f"m{inodes}"
        with tmpfs(place, f"8m,nr_inodes={inodes}") as folder:
            result = run_cli(
                "master", str(listing), "--local-workers", "1", "--output", str(tmp_path / "out"),
                "--manifest", str(folder / "manifest.jsonl"), "--no-progress", "--no-report",
            )  # fmt: skip
            assert_no_traceback(result.stdout, result.stderr)
            history = folder / "manifest.runs.jsonl"
            lines = history.read_text().splitlines() if history.exists() else []
            served = "serving run" in result.stderr
            if served:
                assert any(json.loads(line)["outcome"] == "started" for line in lines), (
                    inodes,
                    result.stderr,
                )
            else:
                assert result.returncode == c.EXIT_ERROR, (inodes, result.stderr)
                errors = [line for line in result.stderr.splitlines() if "error:" in line]
                assert len(errors) == 1, (inodes, result.stderr)
            said_history |= "cannot add the run to the run history" in result.stderr
    assert said_history  # one of the sizes took the manifest but not the history
