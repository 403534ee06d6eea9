"""A manifest cut short, replaced or removed during the run: the summary and the report
count what the file holds, not what the master journalled into it.

A fresh user ran ``: > manifest.jsonl`` (and ``cp m x && mv x m``) mid-run: exit 3 and
the error line were right, but the summary said "ok 120, missing 0" of a file holding
100 rows (or 9), with ``manifest_bytes`` the cut file's size, so the report vouched for
it ("120 succeeded"). Real ``python -m crawler.master`` processes and a loopback image
server; the manifest is damaged while the run serves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import RUN_TIMEOUT, assert_no_traceback, run_cli, start_cli
from imageserver import ImageServer, make_image

from crawler import constants as c

URLS = 30


def _cut(manifest: Path) -> None:
    """``: > manifest.jsonl``: the rows so far are gone, later ones land at its start."""
    manifest.write_bytes(b"")


def _replace(manifest: Path) -> None:
    """``cp m x && mv x m``: the copy holds the rows so far, later ones go to the old file."""
    shutil.copyfile(manifest, manifest.with_name("x"))
    os.replace(manifest.with_name("x"), manifest)


def _cut_mid_line(manifest: Path) -> None:
    """``truncate -s``: the last row torn, and the next appended to it, one line of two
    rows' bytes, no row (until 2026-12-03 the summary counted its first: a fresh user's)."""
    os.truncate(manifest, manifest.stat().st_size - 20)


def _rows(manifest: Path) -> list[dict]:
    try:
        lines = manifest.read_bytes().split(b"\n")[:-1]  # a torn last line is no row
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:  # a torn row with the next glued to it: no row
            continue
    return rows


def _last_statuses(rows: list[dict]) -> Counter[str]:
    """Statuses of each URL's (or per-line source's) last row, as the README counts."""
    last: dict[tuple[str, str], str] = {}
    for row in rows:
        per_line = row["status"] in (c.DUPLICATE, c.INVALID_URL)
        last[("line", row["source"]) if per_line else ("url", row["url"])] = row["status"]
    return Counter(last.values())


def _card(report: str, label: str) -> int:
    found = re.search(rf"<b>([\d,]+)</b><span>{label}</span>", report)
    return int(found.group(1).replace(",", "")) if found else 0


def _damaged_run(tmp_path: Path, server: ImageServer, damage: Callable[[Path], None]) -> tuple:
    png = make_image("PNG", 32, 24, seed=11)
    urls = [
        server.add(f"/d/{i}.png", png, content_type="image/png", delay=0.1) for i in range(URLS)
    ]
    listing = tmp_path / "l.txt"
    listing.write_text("\n".join([*urls, urls[0], "not a url"]) + "\n", encoding="utf-8")
    out, manifest = tmp_path / "out", tmp_path / "man" / "m.jsonl"
    args = (
        "master", str(listing), "--output", str(out), "--manifest", str(manifest),
        "--port", "0", "--local-workers", "1", "--threads", "1", "--no-progress",
    )  # fmt: skip
    master = start_cli(*args)
    try:
        deadline = time.monotonic() + 30
        while sum(r["status"] == c.OK for r in _rows(manifest)) < 5:
            assert time.monotonic() < deadline, "no rows"
            time.sleep(0.05)
        damage(manifest)
        stdout, stderr = master.communicate(timeout=RUN_TIMEOUT)
    finally:
        if master.poll() is None:
            master.kill()
    assert master.returncode == c.EXIT_INCOMPLETE, stderr
    assert_no_traceback(stdout, stderr)
    assert "was removed, replaced or cut short during the run" in stderr, stderr
    return args, manifest, stdout


@pytest.mark.parametrize(
    "damage", [_cut, _replace, _cut_mid_line], ids=["cut", "replaced", "cut_mid_line"]
)
def test_summary_and_report_count_the_manifest_as_it_is(
    tmp_path: Path, image_server: ImageServer, damage: Callable[[Path], None]
) -> None:
    args, manifest, stdout = _damaged_run(tmp_path, image_server, damage)
    rows = _rows(manifest)
    held = _last_statuses(rows)
    summary = json.loads(manifest.with_name("m.summary.json").read_text(encoding="utf-8"))
    assert summary["urls"] == URLS + 2, summary
    assert summary["counts"] == dict(held), (summary, len(rows))
    assert summary["missing"] == URLS + 2 - sum(held.values()) > 0, summary
    assert "cut short" in summary["manifest_damaged"], summary
    assert re.search(rf"\(no status yet\) +{summary['missing']} ", stdout), stdout
    report = manifest.with_name("m.report.html").read_text(encoding="utf-8")
    assert _card(report, "succeeded") == held[c.OK], report
    assert _card(report, "no status yet") == summary["missing"], report
    assert _card(report, "URLs") == URLS + 2
    again = run_cli(*args)  # the rerun resumes the URLs with no row
    assert again.returncode == c.EXIT_OK, again.stderr
    summary = json.loads(manifest.with_name("m.summary.json").read_text(encoding="utf-8"))
    assert summary["missing"] == 0 and summary["counts"][c.OK] == URLS, summary
    assert summary["manifest_damaged"] is None, summary


def test_a_manifest_removed_with_its_folder_has_no_status_for_any_url(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """``rm -rf`` of the manifest's folder: stdout says that no URL has a row (the summary
    has nowhere to go)."""

    def remove(manifest: Path) -> None:
        shutil.rmtree(manifest.parent)

    _, _, stdout = _damaged_run(tmp_path, image_server, remove)
    assert re.search(rf"\(no status yet\) +{URLS + 2} ", stdout), stdout
    assert "  ok " not in stdout, stdout
