"""Per-line rows over nights (``master.linerows``): an unchanged input line keeps its row.

A list with repeated and invalid lines, rerun by the real master: while the lines stay
as they are, a rerun journals nothing for them (the manifest stays the same file, byte
for byte), the summary still counts them, and the report's kept aggregate still equals
a full read. When lines change, exactly the rows of the changed lines are replaced, and
the compaction leaves one row per current line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import assert_no_traceback, read_rows, run_cli
from imageserver import ImageServer
from report.test_ledger import assert_ledger_fits


def night(listing: Path, out: Path) -> dict[str, Any]:
    result = run_cli(
        "master", str(listing), "--port", "0", "--bind", "127.0.0.1", "--output", str(out),
        "--local-workers", "1", "--threads", "4", "--no-progress", "--retries", "0",
    )  # fmt: skip
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "manifest.summary.json").read_text(encoding="utf-8"))


def line_rows(manifest: Path) -> dict[str, dict[str, Any]]:
    """The per-line rows by source; fails if a line has two."""
    rows = [r for r in read_rows(manifest) if r["status"] in ("duplicate", "invalid_url")]
    by_source = {r["source"]: r for r in rows}
    assert len(by_source) == len(rows), rows
    return by_source


def test_unchanged_lines_keep_their_rows_and_changed_lines_replace_theirs(
    tmp_path: Path, image_server: ImageServer
) -> None:
    images = [image_server.add_image(f"/i/{n}.png", "PNG", 30 + n, 20, seed=n) for n in range(4)]
    listing, out = tmp_path / "list.txt", tmp_path / "out"
    manifest = out / "manifest.jsonl"
    lines = [images[0], "not a url", images[1], images[0], "ftp://x.test/a.png", images[1]]
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = night(listing, out)
    assert (first["counts"]["duplicate"], first["counts"]["invalid_url"]) == (2, 2)
    night1 = line_rows(manifest)

    # Nothing changed: nothing is journalled, the rows of the lines are still counted.
    inode, before = manifest.stat().st_ino, manifest.read_bytes()
    second = night(listing, out)
    assert (manifest.stat().st_ino, manifest.read_bytes()) == (inode, before)
    assert second["counts"] == first["counts"] and second["run_id"] != first["run_id"]
    assert_ledger_fits(manifest)

    # One repeated line now names a new image, one invalid line is fixed, a new line is
    # added: those rows go, the others stay as night 1 wrote them; compacted.
    lines[3], lines[4] = images[2], images[3]
    lines.append("still not a url")
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    third = night(listing, out)
    assert (third["counts"]["duplicate"], third["counts"]["invalid_url"]) == (1, 2)
    night3 = line_rows(manifest)
    source = str(listing)
    assert set(night3) == {f"{source}:2", f"{source}:6", f"{source}:7"}
    assert night3[f"{source}:2"] == night1[f"{source}:2"]  # untouched, night 1's run_id
    assert night3[f"{source}:6"] == night1[f"{source}:6"]
    assert night3[f"{source}:7"]["run_id"] == third["run_id"]
    assert len(read_rows(manifest)) == len(lines)  # one row a line: compacted
    assert_ledger_fits(manifest)

    # Every line shifted by one: every per-line row is replaced.
    listing.write_text("\n".join(["# a comment", *lines]) + "\n", encoding="utf-8")
    fourth = night(listing, out)
    night4 = line_rows(manifest)
    assert set(night4) == {f"{source}:3", f"{source}:7", f"{source}:8"}
    assert {r["run_id"] for r in night4.values()} == {fourth["run_id"]}
    assert night4[f"{source}:7"]["duplicate_of"] == f"{source}:4"
    assert len(read_rows(manifest)) == len(lines)
    assert_ledger_fits(manifest)
