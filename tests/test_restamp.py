"""Kept rows follow their lines (``master.restamp``): after lines move, a list is renamed
or a caption changes, every current row names the line its URL is on now, with that
line's columns, and ``duplicate_of`` and ``same_content_as`` name those lines too. Real
master nights on a CSV list with captions; after each, the kept aggregate equals a full
read and the resume index reads as the manifest.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from conftest import read_rows
from imageserver import ImageServer, make_image
from report.test_ledger import assert_ledger_fits
from test_kept_index import assert_index_reads_as_the_manifest, night


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["url", "caption"])
        writer.writerows(rows)


def assert_rows_follow_the_list(listing: Path, manifest: Path) -> None:
    """Every row names its URL's first line now, with its caption; the rows pointing at
    other lines point at those lines."""
    first: dict[str, tuple[str, str]] = {}  # url -> (source, caption)
    with open(listing, newline="", encoding="utf-8") as fh:
        for number, line in enumerate(csv.reader(fh), start=1):
            if number > 1:
                first.setdefault(line[0], (f"{listing}:{number}", line[1]))
    rows = read_rows(manifest)
    by_url = {r["url"]: r for r in rows if r["status"] != "duplicate"}
    assert set(by_url) == set(first)
    by_sha: dict[str, list[dict]] = {}
    for url, (source, caption) in first.items():
        row = by_url[url]
        assert (row["source"], row["extra"]) == (source, {"caption": caption}), row
        if row["sha256"]:
            by_sha.setdefault(row["sha256"], []).append(row)
    # The first row with an image's bytes (in the manifest: two downloaded at once come
    # in either order) points nowhere, and every other one at the line it is on now.
    first_of = {}
    for sha, group in by_sha.items():
        firsts = [row for row in group if row["same_content_as"] is None]
        assert len(firsts) == 1, group
        first_of[sha] = firsts[0]["source"]
    for row in rows:
        if row["status"] == "duplicate":
            assert row["duplicate_of"] == first[row["url"]][0], row
        elif row["same_content_as"] is not None:
            assert row["same_content_as"] == first_of[row["sha256"]] != row["source"], row


def test_kept_rows_follow_their_lines(tmp_path: Path, image_server: ImageServer) -> None:
    body = make_image("PNG", 30, 20, seed=1)
    a, b = (image_server.add(f"/r/{n}.png", body if n == "a" else make_image(
        "PNG", 20, 20, seed=2), content_type="image/png") for n in ("a", "b"))  # fmt: skip
    copy = image_server.add("/r/copy.png", body, content_type="image/png")  # a's bytes
    new = image_server.add(
        "/r/new.png", make_image("PNG", 22, 20, seed=3), content_type="image/png"
    )
    listing, out, scratch = tmp_path / "list.csv", tmp_path / "out", tmp_path / "scratch"
    manifest = out / "manifest.jsonl"
    scratch.mkdir()
    lines = [(a, "A"), (b, "B"), (b, "B again"), (copy, "copy of A")]
    write_csv(listing, lines)
    night(listing, out)
    assert_rows_follow_the_list(listing, manifest)

    # A line in on top (every line moves) and a caption changed: no image fetched again.
    paths = ("/r/a.png", "/r/b.png", "/r/copy.png")
    before = [image_server.hits(path) for path in paths]
    write_csv(listing, [(new, "N"), (a, "A"), (b, "B, recaptioned"), *lines[2:]])
    night(listing, out)
    assert [image_server.hits(path) for path in paths] == before  # only the new URL went out
    assert_rows_follow_the_list(listing, manifest)
    assert_ledger_fits(manifest)
    assert_index_reads_as_the_manifest(listing, manifest, scratch)

    # Nothing changed: nothing journalled.
    data = manifest.read_bytes()
    night(listing, out)
    assert manifest.read_bytes() == data

    # The list renamed: every row names the new path.
    renamed = tmp_path / "renamed.csv"
    shutil.copyfile(listing, renamed)
    night(renamed, out)
    assert_rows_follow_the_list(renamed, manifest)
    assert_ledger_fits(manifest)
    assert_index_reads_as_the_manifest(renamed, manifest, scratch)
