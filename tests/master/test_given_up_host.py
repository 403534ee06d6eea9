"""A host given up for the run, end to end: after 8 refusals in a row, each backed off
twice as long as the one before (1 + 2 + ... + 64 s: this test takes two minutes, and
sits in a file of its own so that the suite's other process goes on meanwhile).

Its other URLs end "not fetched", asked nothing, and are no failures of what the run
tried: exit 0, not 4, since the other host's images are most of what it tried.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from conftest import assert_no_traceback, read_rows, run_cli
from imageserver import ImageServer, make_image
from test_politeness import HostMeter

GIVE_UP_SECONDS = 1 + 2 + 4 + 8 + 16 + 32 + 64


@pytest.mark.slow
def test_urls_of_a_host_given_up_are_not_counted_as_tried(
    tmp_path: Path, image_server: ImageServer
) -> None:
    meter, lines, png = HostMeter(), [], make_image("PNG", 32, 24, seed=7)
    for i in range(20):
        image_server.add_handler(f"/busy/{i}.png", meter.handler(b"busy", 0.0, status=503))
        lines.append(image_server.url(f"/busy/{i}.png"))
    for i in range(14):
        image_server.add_handler(f"/fine/{i}.png", meter.handler(png, 0.0))
        lines.append(image_server.url(f"/fine/{i}.png").replace("127.0.0.1", "localhost", 1))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = run_cli(
        "master", str(listing), "--local-workers", "2", "--threads", "4", "--output", str(out),
        "--no-progress", "--retries", "0", "--per-host", "1", timeout=GIVE_UP_SECONDS + 90,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    rows = read_rows(out / "manifest.jsonl")
    not_fetched = [r for r in rows if "not fetched" in (r["error"] or "")]
    assert len(not_fetched) == 20 - 8 and all(r["attempts"] == 0 for r in not_fetched)
    starts = meter.starts["127.0.0.1"]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 8 and all(gap >= 0.9 * 2**i for i, gap in enumerate(gaps)), gaps
    summary = json.loads((out / "manifest.summary.json").read_text())
    assert summary["changes"]["not_fetched"] == len(not_fetched)
