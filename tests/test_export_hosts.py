"""``crawler-export`` of a run whose images are in several hosts' own folders: one
``--images`` per host's folder (copied to the exporting host), end to end.

Two nights of a real master with real workers on loopback: the first night's worker
(host ``a``) stores the first half of the list in its ``--output``, the second night's
(host ``b``, another folder) only the URLs added since; the manifest names both hosts.
Until 2026-12-03 ``--images`` took one folder, and the README and the usage error said
to merge the hosts' folders first because "their files are named by content": they are
named by their URL's hash, so a URL stored on two hosts (its image changed between the
nights each fetched it) has one name with two contents, and a merge kept whichever was
copied last.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_no_traceback, read_rows, run_cli, start_cli, wait_for_port
from imageserver import ImageServer, make_image

from crawler import constants as c

HALF = 4  # URLs each night adds


def night(listing: Path, out: Path, folder: Path, host: str) -> None:
    """A master over ``listing`` (manifest in ``out``) and one worker of ``host`` storing
    into ``folder``; both must end cleanly."""
    master = start_cli(
        "master", str(listing), "--bind", "127.0.0.1", "--output", str(out),
        "--no-progress", "--no-report", "--idle-timeout", "60",
    )  # fmt: skip
    try:
        port = wait_for_port(master)
        worker = run_cli("worker", "--server", "127.0.0.1", "--port", str(port),
                         "--output", str(folder), "--host-id", host, "-q", timeout=120)  # fmt: skip
        assert worker.returncode == 0, worker.stderr
        _, err = master.communicate(timeout=120)
        assert master.returncode == 0, err
    finally:
        if master.poll() is None:
            master.kill()
            master.communicate(timeout=30)


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(manifest, host a's folder, host b's folder) after the two nights."""
    root = tmp_path_factory.mktemp("hosts")
    with ImageServer() as server:
        urls = [server.add(f"/h/{i}.png", make_image("PNG", 30, 20, seed=700 + i),
                           content_type="image/png") for i in range(2 * HALF)]  # fmt: skip
        listing = root / "list.txt"
        listing.write_text("".join(f"{u}\n" for u in urls[:HALF]), encoding="utf-8")
        night(listing, root / "out", root / "a", "a")
        listing.write_text("".join(f"{u}\n" for u in urls), encoding="utf-8")
        night(listing, root / "out", root / "b", "b")
    rows = read_rows(root / "out" / "manifest.jsonl")
    assert sorted(row["host"] for row in rows) == ["a"] * HALF + ["b"] * HALF
    assert all(row["status"] == "ok" and row["store"] is None for row in rows)
    return root / "out" / "manifest.jsonl", root / "a", root / "b"


def export(manifest: Path, out: Path, *folders: Path) -> tuple[int, str, dict]:
    flags = [arg for folder in folders for arg in ("--images", str(folder))]
    done = run_cli("export", str(manifest), "--format", "files", "--out", str(out),
                   "--no-progress", *flags)  # fmt: skip
    assert_no_traceback(done.stdout, done.stderr)
    summary = out / "export.summary.json"
    return done.returncode, done.stderr, json.loads(summary.read_text()) if summary.exists() else {}


def exported_bytes(out: Path) -> dict[str, bytes]:
    """url -> the image bytes of each exported sample."""
    found = {}
    for meta in out.glob("*/*.json"):
        [image] = [p for p in meta.parent.glob(meta.stem + ".*") if p.suffix != ".json"]
        found[json.loads(meta.read_text())["url"]] = image.read_bytes()
    return found


def test_each_hosts_folder_is_an_images_folder(
    two_hosts: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Both folders given, in either order: every row exported with its own bytes, also
    when host a's folder holds another image under the name of one of b's rows (that
    URL's image of an earlier night): the name is the URL's, the bytes decide."""
    manifest, a, b = two_hosts
    rows = read_rows(manifest)
    work = tmp_path / "a"
    shutil.copytree(a, work)
    stale = next(row for row in rows if row["host"] == "b")
    (work / stale["path"]).parent.mkdir(parents=True, exist_ok=True)
    (work / stale["path"]).write_bytes(make_image("PNG", 30, 20, seed=1))  # other bytes
    for order in ((work, b), (b, work)):
        out = tmp_path / f"ds-{order[0].name}"
        code, err, summary = export(manifest, out, *order)
        assert code == c.EXIT_OK, err
        assert summary["statuses"] == {"exported": 2 * HALF}, summary
        got = exported_bytes(out)
        assert sorted(got) == sorted(row["url"] for row in rows)
        for row in rows:
            stored = (a if row["host"] == "a" else b) / row["path"]
            assert got[row["url"]] == stored.read_bytes(), row["url"]


def test_a_hosts_folder_left_out_or_empty_is_said(
    two_hosts: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Host b's folder not given: its rows are ``missing`` (exit 3). Given, but empty
    (not copied, not mounted): that folder is named as looking empty, host a's not."""
    manifest, a, _ = two_hosts
    code, err, summary = export(manifest, tmp_path / "one", a)
    assert code == c.EXIT_INCOMPLETE, err
    assert summary["statuses"] == {"exported": HALF, "missing": HALF}, summary
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err, summary = export(manifest, tmp_path / "two", a, empty)
    assert code == c.EXIT_INCOMPLETE, err
    assert summary["empty_stores"] == [str(empty)], summary
    assert f"none of the images the rows name is in {empty}:" in err, err
    assert f"is in {a}:" not in err, err
