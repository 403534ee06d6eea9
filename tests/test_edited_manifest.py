"""A manifest and a run history edited by hand (or by a tool that wrote other types):
every reader takes a field of another type than the crawler writes as null, and a row
whose url or status is no string as a damaged line. Never a traceback.

A hostile-input trial (2026-12-03) found a list status and an object run_id stopping
every later run before it served, 1e400 bytes (which json reads as infinity) taking
down the report after a completed run, and a list run_id in the run history doing the
same to the master's report and to crawler-report, every night. Real master, worker,
report and export processes over a loopback image server.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import assert_no_traceback, read_rows, run_cli
from imageserver import ImageServer, make_image

from crawler import constants as c

# One edit a row (row 0 keeps its types): each made a traceback somewhere, or could.
EDITS = [
    {"status": ["ok"]}, {"run_id": {"id": "x"}}, {"bytes": 1e400}, {"store": ["x"]},
    {"host": {"h": 1}}, {"width": 10**30}, {"reused": 1}, {"elapsed_s": 1e400},
    {"sha256": 5}, {"source": [1]}, {"url": None},
]  # fmt: skip


def _master(listing: Path, out: Path) -> None:
    result = run_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--local-workers", "1",
        "--output", str(out), "--no-progress",
    )  # fmt: skip
    assert result.returncode == c.EXIT_OK, result.stderr
    assert_no_traceback(result.stdout, result.stderr)


def test_rows_and_runs_of_other_types_are_read_without_a_traceback(
    tmp_path: Path, image_server: ImageServer
) -> None:
    urls = [image_server.add(f"/m/{i}.png", make_image("PNG", 30, 20, seed=40 + i),
                             content_type="image/png") for i in range(len(EDITS) + 1)]  # fmt: skip
    listing, out = tmp_path / "list.txt", tmp_path / "out"
    listing.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
    _master(listing, out)
    manifest = out / "manifest.jsonl"
    rows = read_rows(manifest)
    edited = [rows[0]] + [row | edit for row, edit in zip(rows[1:], EDITS, strict=True)]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in edited), encoding="utf-8")
    runs = out / "manifest.runs.jsonl"
    history = [json.loads(line) for line in runs.read_text().splitlines()]
    history.append(history[-1] | {"run_id": [history[-1]["run_id"]]})  # a list: no run's
    runs.write_text("".join(json.dumps(run) + "\n" for run in history), encoding="utf-8")

    report = run_cli("report", str(manifest))
    assert report.returncode == 0, report.stderr
    assert_no_traceback(report.stdout, report.stderr)
    assert "skipped 1 " in report.stderr  # no string url; no string status: "(missing)"
    export = run_cli("export", str(manifest), "--format", "webdataset", "--out",
                     str(tmp_path / "ds"), "--no-progress")  # fmt: skip
    assert export.returncode in (c.EXIT_OK, c.EXIT_INCOMPLETE), export.stderr
    assert_no_traceback(export.stdout, export.stderr)

    _master(listing, out)  # the rows whose url or status was no string: fetched again
    final = {row["url"]: row for row in read_rows(manifest) if isinstance(row["url"], str)}
    assert set(final) == set(urls)
    assert all(row["status"] == c.OK for row in final.values()), final
    assert (out / "manifest.report.html").is_file()
