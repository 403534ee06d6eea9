"""A damaged content index (``NAME.contents.sqlite``) costs a refill, never a night.

The index holds nothing the manifest does not, so a file found damaged (cut short,
garbage, someone else's tables, a folder) is removed and filled again from the manifest
with one warning, and the run goes on; one that fails only during the run is dropped for
the rest of it. Real master runs with a local worker against the loopback image server:
the proof that the index was rebuilt is a new copy's ``same_content_as`` pointing at the
row of the earlier run that had its bytes first.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import assert_no_traceback, read_rows, run_cli, unstamped
from imageserver import ImageServer, make_image

PAGE = 4096  # SQLite's page size, the index's too


def night(listing: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "master", str(listing), "--port", "0", "--bind", "127.0.0.1", "--output", str(out),
        "--local-workers", "1", "--threads", "2", "--no-progress", "--no-report",
        "--retries", "0",
    )  # fmt: skip


def index_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [unstamped(line) for line in result.stderr.splitlines() if "content index" in line]


def cut(fraction: float) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with open(path, "r+b") as fh:
            fh.truncate(int(path.stat().st_size * fraction))

    return damage


def garbage(path: Path) -> None:
    path.write_bytes(random.Random(1).randbytes(path.stat().st_size))


def header_then_garbage(path: Path) -> None:
    """SQLite's own first 100 bytes, then noise: opens, and fails at the first read."""
    data = path.read_bytes()
    path.write_bytes(data[:100] + random.Random(2).randbytes(len(data) - 100))


def other_tables(path: Path) -> None:
    """A whole SQLite file, but not an index: another tool's, or the wrong file copied."""
    path.unlink()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        db.execute("INSERT INTO notes (text) VALUES ('hello')")
    db.close()


def a_table_renamed(path: Path) -> None:
    """The index's own file, still kept for this manifest, one table gone."""
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE first RENAME TO first_old")
    db.commit()
    db.close()


def a_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


DAMAGE = {
    "cut-in-header": cut(0.004),
    "cut-to-30%": cut(0.3),
    "cut-to-half": cut(0.5),
    "cut-at-a-page": cut(0.8),
    "cut-in-last-page": cut(0.95),
    "garbage": garbage,
    "header-then-garbage": header_then_garbage,
    "other-tables": other_tables,
    "a-table-renamed": a_table_renamed,
    "a-folder": a_folder,
}


def copies(server: ImageServer) -> tuple[str, str, str, str]:
    """The first image, another one, and two more URLs with the first's bytes."""
    body = make_image("PNG", 30, 20, seed=1)
    other = make_image("PNG", 20, 20, seed=2)
    return tuple(  # type: ignore[return-value]
        server.add(f"/{name}.png", other if name == "other" else body, content_type="image/png")
        for name in ("first", "other", "copy", "again")
    )


def add_line(listing: Path, url: str) -> None:
    with open(listing, "a", encoding="utf-8") as fh:
        fh.write(url + "\n")


def current(manifest: Path) -> dict[str, dict]:
    return {row["url"]: row for row in read_rows(manifest)}


def ok(result: subprocess.CompletedProcess[str]) -> None:
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_index_is_rebuilt_from_the_manifest(
    tmp_path: Path, image_server: ImageServer, damage: Callable[[Path], None]
) -> None:
    first, other, copy, again = copies(image_server)
    listing, out = tmp_path / "list.txt", tmp_path / "out"
    manifest, index = out / "manifest.jsonl", out / "manifest.contents.sqlite"
    listing.write_text(f"{first}\n{other}\n", encoding="utf-8")
    ok(night(listing, out))
    assert index.stat().st_size >= 4 * PAGE  # page 1, meta and its key, first, current

    damage(index)
    add_line(listing, copy)
    result = night(listing, out)
    ok(result)
    lines = index_lines(result)
    assert len(lines) == 1, result.stderr
    assert f"content index {index} was damaged (" in lines[0], lines
    assert lines[0].endswith("; rebuilt from the manifest"), lines
    assert (
        "resumed from the manifest" in result.stderr
        and "resumed from its kept" not in result.stderr
    )
    rows = current(manifest)
    assert rows[copy]["same_content_as"] == f"{listing}:1", rows[copy]
    assert rows[first]["same_content_as"] is None and rows[other]["same_content_as"] is None
    assert index.is_file()

    # Nothing damaged: the index kept by the last run is used as it is.
    add_line(listing, again)
    result = night(listing, out)
    ok(result)
    assert index_lines(result) == [], result.stderr
    assert "resumed from its kept index" in result.stderr  # a refill would read the manifest
    assert current(manifest)[again]["same_content_as"] == f"{listing}:1"


def test_an_index_damaged_inside_is_dropped_for_the_rest_of_the_run(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """A page in the middle of the file: it opens, and fails only when a row needs that
    page. The run completes without the index, and the next one rebuilds it."""
    first, other, copy, again = copies(image_server)
    listing, out = tmp_path / "list.txt", tmp_path / "out"
    manifest, index = out / "manifest.jsonl", out / "manifest.contents.sqlite"
    listing.write_text(f"{first}\n{other}\n", encoding="utf-8")
    ok(night(listing, out))
    with sqlite3.connect(index) as db:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'first'").fetchone()
    db.close()
    with open(index, "r+b") as fh:
        fh.seek((root - 1) * PAGE)
        fh.write(b"\xff" * PAGE)  # no page type: "malformed" when it is read

    add_line(listing, copy)
    result = night(listing, out)
    ok(result)
    lines = index_lines(result)
    assert len(lines) == 1 and "was damaged during the run" in lines[0], result.stderr
    assert current(manifest)[copy]["same_content_as"] is None  # the index was gone
    assert not index.exists()  # not kept: the next run fills it from the manifest

    add_line(listing, again)
    result = night(listing, out)
    ok(result)
    assert index_lines(result) == [], result.stderr
    assert current(manifest)[again]["same_content_as"] == f"{listing}:1"
    assert index.is_file()


def test_a_folder_of_files_in_place_of_the_index_is_one_line_and_exit_1(
    tmp_path: Path, image_server: ImageServer
) -> None:
    """Not the crawler's to delete: the place cannot hold the index, as a read-only one;
    found before any work is handed out, an error before the run (exit 1)."""
    first, other, _, _ = copies(image_server)
    listing, out = tmp_path / "list.txt", tmp_path / "out"
    index = out / "manifest.contents.sqlite"
    listing.write_text(f"{first}\n{other}\n", encoding="utf-8")
    ok(night(listing, out))
    index.unlink()
    (index / "yours").mkdir(parents=True)
    result = night(listing, out)
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result.stdout, result.stderr)
    errors = [unstamped(line) for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "a folder with files in it" in errors[0], result.stderr
    assert (index / "yours").is_dir()
