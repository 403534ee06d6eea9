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

import pytest
from conftest import assert_no_traceback, read_rows, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from imageserver import ImageServer
from report.test_ledger import assert_ledger_fits

from crawler.config import ResumeOptions
from crawler.manifest import make_row, resume_path
from crawler.master.linerows import UNMATCHABLE, line_digest, row_digest
from crawler.master.plan import Plan, plan_run


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


# Lists whose repeated and invalid lines carry extras of every JSON kind: their rows'
# digests (``linerows.row_digest``) must survive the journal, or a rerun rewrites them.
LISTS = {
    "text": ("list.txt", "{url}", "not a url"),
    "csv": ("list.csv", '{url},"é, ""x""",3.50', "ftp://x.test/a,ü,-0"),
    "jsonl": (
        "list.jsonl",
        '{{"url": "{url}", "n": [1, 2.5e-7, null, true], "o": {{"z": "☃", "a": {{}}}}}}',
        '{{"url": "mailto:x", "n": 1e300, "o": "\\ud800"}}',
    ),
}


def write_list(path: Path, kind: str, urls: list[str], repeats: int) -> None:
    _, line, invalid = LISTS[kind]
    lines = ["url,caption,n"] if kind == "csv" else []
    for _ in range(repeats):
        lines += [line.format(url=url) for url in urls] + [invalid]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def replan(listing: Path, manifest: Path, tmp: Path) -> tuple[Plan, list[dict[str, Any]]]:
    """The next night's plan made in-process: (the plan, the per-line rows it writes)."""
    written: list[dict[str, Any]] = []
    plan = plan_run([str(listing)], "next", written.extend, manifest, ResumeOptions(), tmp)
    plan.close()
    return plan, written


@pytest.mark.parametrize("kind", LISTS)
def test_a_rerun_decodes_only_the_rows_of_changed_lines(
    tmp_path: Path, image_server: ImageServer, kind: str
) -> None:
    urls = [image_server.add_image(f"/i/{n}.png", "PNG", 30 + n, 20, seed=n) for n in range(3)]
    listing, out = tmp_path / LISTS[kind][0], tmp_path / "out"
    manifest = out / "manifest.jsonl"
    write_list(listing, kind, urls, repeats=40)
    night(listing, out)
    inode, before = manifest.stat().st_ino, manifest.read_bytes()
    second = night(listing, out)
    assert (manifest.stat().st_ino, manifest.read_bytes()) == (inode, before)
    assert second["counts"]["duplicate"] == 3 * 39 and second["counts"]["invalid_url"] == 40

    # Planned again from the kept index, then from the manifest read in full: no held
    # row is decoded again, none written, none superseded (until 2026-12-01 every held
    # row was decoded, and its earlier row read back and decoded: 100 us a line).
    for index in (True, False):
        if not index:
            resume_path(manifest).unlink()
        plan, written = replan(listing, manifest, tmp_path)
        assert (plan.decoded_lines, written, list(plan.superseded_lines)) == (0, [], [])
        assert plan.earlier is not None and plan.earlier.from_index is index

    # Two lines changed (a repeated one now names another image, an invalid one another
    # text): exactly their rows are decoded and written, their earlier rows superseded.
    text = listing.read_text(encoding="utf-8").splitlines()
    repeated = (1 if kind == "csv" else 0) + 4  # the second block's first line: a duplicate
    text[repeated] = text[repeated].replace(urls[0], urls[1])
    invalid = repeated + 3
    for was, now in (("not a url", "not a url either"), ("x", "y")):
        text[invalid] = text[invalid].replace(was, now, 1)
    listing.write_text("\n".join(text) + "\n", encoding="utf-8")
    plan, written = replan(listing, manifest, tmp_path)
    assert plan.decoded_lines == len(written) == len(plan.superseded_lines) == 2
    assert {row["source"] for row in written} == {
        f"{listing}:{repeated + 1}", f"{listing}:{invalid + 1}"}  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(extra=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
))  # fmt: skip
def test_a_rows_digest_survives_the_journal(extra: Any) -> None:
    """What the keeper notes of a row it writes is what a full read finds in its line."""
    row = make_row(url="ftp://x", status="invalid_url", source="l.txt:3", run_id="r", extra=extra)
    line = json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )
    assert line_digest(line) == row_digest(row) != UNMATCHABLE
    other = make_row(url="ftp://x", status="invalid_url", source="l.txt:3", run_id="s",
                     finished_at="2026-12-01T00:00:00+00:00", extra=extra)  # fmt: skip
    assert row_digest(other) == row_digest(row)  # run_id, finished_at: not compared
    assert row_digest(other | {"source": "l.txt:4"}) != row_digest(row)
