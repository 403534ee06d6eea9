"""``crawler-export`` where an export could lose data or mislead, end to end: a real
master and worker crawl Pillow-generated images from a real HTTP server on loopback,
then the real ``crawler-export`` runs (again and again) into one ``--out``.

An unmounted store is an empty folder given as ``--store`` or ``--images`` (nothing is
mounted). Each test names the defect it guards against (all fixed 2026-12-01).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_no_traceback, read_rows, run_cli, start_cli
from imageserver import ImageServer, make_image
from PIL import Image

from crawler.exceptions import UsageError
from crawler.export.rows import CurrentRows
from crawler.formats import EXTENSIONS
from crawler.layout import stored_name

# (format, width, height) of the pictures crawled: a 1x1000 strip and its transpose too
PICTURES = [("PNG", 40, 30), ("JPEG", 64, 48), ("WEBP", 30, 40), ("PNG", 1, 1000)]
PICTURES += [("JPEG", 1000, 1), ("GIF", 20, 20), ("PNG", 3, 2000)]


@dataclass
class Crawl:
    manifest: Path
    images: Path  # where the images are: the per-host folder, or the --store folder
    ok: int  # rows with a stored image


def crawl(root: Path, *flags: str) -> Crawl:
    """Crawl PICTURES (and one 404) into ``root/out``."""
    root.mkdir(parents=True, exist_ok=True)
    with ImageServer() as server:
        urls = [
            server.add(f"/p{n}.{fmt.lower()}", make_image(fmt, w, h, seed=n),
                       content_type=f"image/{fmt.lower()}")
            for n, (fmt, w, h) in enumerate(PICTURES)
        ]  # fmt: skip
        urls.append(server.add("/gone", b"nothing", status=404))
        (root / "list.txt").write_text("\n".join(urls) + "\n")
        done = run_cli(
            "master", str(root / "list.txt"), "--port", "0", "--local-workers", "1",
            "--output", str(root / "out"), "--no-progress", "--no-report", *flags,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = root / "out" / "manifest.jsonl"
    ok = sum(row["status"] == "ok" for row in read_rows(manifest))
    assert ok == len(PICTURES)
    return Crawl(manifest, root / "out", ok)


@pytest.fixture(scope="module")
def harvest(tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    return crawl(tmp_path_factory.mktemp("harvest"))


def export(*args: str) -> tuple[int, str, str]:
    result = run_cli("export", *args, "--no-progress")
    assert_no_traceback(result.stdout, result.stderr)
    return result.returncode, result.stdout, result.stderr


def summary(out: Path) -> dict:
    return json.loads((out / "export.summary.json").read_text())


# --- --resize ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["keep_ratio", "center_crop", "border"])
@pytest.mark.parametrize("side", ["1", "256"])
def test_elongated_images_resize_in_every_mode(
    harvest: Crawl, tmp_path: Path, mode: str, side: str
) -> None:
    """A 1x1000 image at --resize 256 was a bad_image ("cannot write empty image"): its
    shorter side rounded to 0. Now every picture is exported, the shorter side >= 1 px."""
    out = tmp_path / "files"
    code, _, err = export(str(harvest.manifest), "--format", "files", "--out", str(out),
                          "--resize", side, "--resize-mode", mode)  # fmt: skip
    assert code == 0, err
    assert summary(out)["statuses"] == {"exported": harvest.ok, "no_image": 1}
    for meta_path in out.glob("*/*.json"):
        derived = json.loads(meta_path.read_text())["derived"]
        [image_path] = [p for p in meta_path.parent.glob(meta_path.stem + ".*")
                        if p.suffix != ".json"]  # fmt: skip
        with Image.open(image_path) as image:
            assert image.size == (derived["width"], derived["height"])
        assert max(image.size) == int(side) and min(image.size) >= 1


# --- something else in an image's place ------------------------------------------------


def stored_paths(manifest: Path) -> list[str]:
    return [row["path"] for row in read_rows(manifest) if row["status"] == "ok"]


@pytest.mark.parametrize("kind", ["folder", "fifo"])
@pytest.mark.parametrize("where", ["images", "store"])
def test_a_folder_or_fifo_in_place_of_an_image_is_that_rows_problem(
    tmp_path: Path, kind: str, where: str
) -> None:
    """A folder where an image should be was a store_error: the export kept the earlier
    export's files and said "the store failed ... export again once the store answers"
    of a store that was fine. It is that row's problem: missing, the rest replaced."""
    shared = tmp_path / "shared"
    shared.mkdir()
    harvest = crawl(tmp_path / "crawl", *(("--store", shared.as_uri()) if where == "store" else ()))
    root = shared if where == "store" else harvest.images
    out, args = tmp_path / "wds", (str(harvest.manifest), "--format", "webdataset")
    code, _, err = export(*args, "--out", str(out), "--shard-size", "1")
    assert code == 0, err
    odd = stored_paths(harvest.manifest)[:2]
    for relative in odd:
        (root / relative).unlink()
        if kind == "folder":
            (root / relative).mkdir()
        else:
            os.mkfifo(root / relative)  # never opened: a read would wait for a writer
    code, _, err = export(*args, "--out", str(out), "--shard-size", "100")
    got = summary(out)
    assert code == 3, err
    assert got["statuses"] == {"exported": harvest.ok - 2, "missing": 2, "no_image": 1}
    reasons = [e["reason"] for e in got["examples"]["missing"]]
    what = "is a folder" if kind == "folder" else "is not a regular file"
    assert len(reasons) == 2 and all(what in r for r in reasons), reasons
    assert "store" not in err and got["kept_earlier"] == []
    assert sorted(p.name for p in out.glob("shard-*")) == got["outputs"] == ["shard-00000.tar"]


# --- an empty (unmounted) store -----------------------------------------------------------


def split_stores(harvest: Crawl, root: Path) -> tuple[Path, Path, Path]:
    """A copy of the harvest whose first three ok rows name a shared store (a folder of
    their own), the rest this host's images folder: (manifest, images, store folder)."""
    images, store = root / "images", root / "store"
    rows, moved = read_rows(harvest.manifest), 0
    for row in rows:
        if row["status"] != "ok":
            continue
        target = (store if moved < 3 else images) / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((harvest.images / row["path"]).read_bytes())
        if moved < 3:
            row["store"] = store.as_uri()
        moved += 1
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest, images, store


def empty(folder: Path, aside: Path) -> None:
    """Unmount ``folder``: what it held goes aside, an empty mount point stays."""
    aside.mkdir()
    for entry in folder.iterdir():
        entry.rename(aside / entry.name)


def refill(folder: Path, aside: Path) -> None:
    for entry in aside.iterdir():
        entry.rename(folder / entry.name)


@pytest.mark.parametrize("fmt", ["webdataset", "files"])
@pytest.mark.parametrize("away", ["images", "store", "both"])
def test_an_empty_store_keeps_the_earlier_export(
    harvest: Crawl, tmp_path: Path, fmt: str, away: str
) -> None:
    """The store is the mount point itself and is unmounted: an empty folder. Every image
    read as missing, the export took itself for whole and removed the earlier export's
    shards and shards.json. Now a store that holds none of its rows' images (also when
    another store of the manifest answers) keeps them, as a store_error does, with one
    line; once it is back, the next export replaces them."""
    manifest, images, store = split_stores(harvest, tmp_path / "copy")
    gone = {"images": [images], "store": [store], "both": [images, store]}[away]
    args = (str(manifest), "--format", fmt, "--images", str(images))
    out = tmp_path / "out"
    assert export(*args, "--out", str(out), "--shard-size", "1")[0] == 0
    earlier = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for n, folder in enumerate(gone):
        empty(folder, tmp_path / f"aside{n}")
    code, _, err = export(*args, "--out", str(out), "--shard-size", "100")
    got = summary(out)
    assert code == 3, err
    named = {images: str(images), store: store.as_uri()}
    assert sorted(got["empty_stores"]) == sorted(named[folder] for folder in gone)
    lines = [line for line in err.splitlines() if "looks empty or unmounted" in line]
    assert len(lines) == len(gone), err
    assert got["kept_earlier"] and not set(got["kept_earlier"]) & set(got["outputs"])
    assert len(got["kept_earlier"]) + len(got["outputs"]) == harvest.ok
    for name, data in earlier.items():  # the earlier export's files not rewritten: as they were
        if name.parts[0] in got["kept_earlier"]:
            assert (out / name).read_bytes() == data, name
    assert (fmt == "webdataset") == (out / "shards.json").exists()
    for n, folder in enumerate(gone):
        refill(folder, tmp_path / f"aside{n}")
    code, _, err = export(*args, "--out", str(out), "--shard-size", "100")
    got = summary(out)
    assert code == 0 and got["empty_stores"] == got["kept_earlier"] == [], err
    left = {p.name for p in out.iterdir()} - {"export.summary.json", "shards.json"}
    assert sorted(left) == got["outputs"]


@pytest.mark.parametrize("where", ["images", "store"])
def test_a_store_that_lost_some_images_is_whole(harvest: Crawl, tmp_path: Path, where: str) -> None:
    """Images deleted on purpose (all but one of a store's) are missing rows; the store
    holds the rest, so the export is whole and replaces the earlier one: stale samples
    of deleted images do not come back."""
    manifest, images, store = split_stores(harvest, tmp_path / "copy")
    folder = images if where == "images" else store
    args = (str(manifest), "--format", "webdataset", "--images", str(images))
    out = tmp_path / "out"
    assert export(*args, "--out", str(out), "--shard-size", "1")[0] == 0
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files[1:]:
        path.unlink()
    code, _, err = export(*args, "--out", str(out), "--shard-size", "100")
    got = summary(out)
    assert code == 3 and got["statuses"]["missing"] == len(files) - 1, err
    assert got["empty_stores"] == got["kept_earlier"] == [] and "looks empty" not in err
    assert sorted(p.name for p in out.glob("shard-*")) == got["outputs"] == ["shard-00000.tar"]


# --- shards.json across exports -----------------------------------------------------------

KINDS = [("webdataset", True), ("webdataset", False), ("parquet", True), ("files", True)]


@pytest.mark.parametrize("first", KINDS, ids=lambda k: f"{k[0]}-{'some' if k[1] else 'none'}")
def test_shards_json_is_there_exactly_after_a_webdataset_export(
    harvest: Crawl, tmp_path: Path, first: tuple[str, bool]
) -> None:
    """A webdataset export with no sample removed the earlier one's shards.json (the next
    wrote it again), and a parquet or files export after one with no sample left it.
    After every pair of exports, shards.json is there exactly when the last one was a
    webdataset export, listing its shards (pattern null when there is none)."""
    nothing = tmp_path / "nothing.jsonl"  # only the 404's row: no sample
    nothing.write_text("".join(json.dumps(row) + "\n" for row in read_rows(harvest.manifest)
                               if row["status"] != "ok"))  # fmt: skip
    for n, second in enumerate(KINDS):
        out = tmp_path / f"out{n}"
        for fmt, samples in (first, second):
            manifest = harvest.manifest if samples else nothing
            code, _, err = export(str(manifest), "--format", fmt, "--out", str(out),
                                  "--images", str(harvest.images))  # fmt: skip
            assert code == 0, err
        index = out / "shards.json"
        assert index.exists() == (second[0] == "webdataset"), (first, second)
        if second[0] == "webdataset":
            listed = [entry["url"] for entry in json.loads(index.read_text())["shardlist"]]
            assert listed == summary(out)["outputs"] == sorted(p.name for p in out.glob("*.tar"))
            assert (json.loads(index.read_text())["pattern"] is None) == (not second[1])


# --- the user's own files in --out ----------------------------------------------------------


def test_a_folder_of_the_users_named_like_a_sample_folder_keeps_their_files(
    harvest: Crawl, tmp_path: Path
) -> None:
    """``mkdir -p out/00000 && echo precious > out/00000/mine.txt``, then two files
    exports: the first put its samples into 00000 and listed it as its output, the
    second removed it whole, mine.txt too. Now only the files an export put there ever
    go, through any sequence of formats, shard sizes and an export kept beside."""
    out = tmp_path / "out"
    mine = {Path("00000/mine.txt"): b"precious", Path("00001/sub/deep.txt"): b"deep"}
    mine[Path("00000/000000099.jpg")] = b"named like a sample, not one"
    for name, data in mine.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    unmounted = tmp_path / "unmounted"
    unmounted.mkdir()  # as --images: the earlier export is kept beside this one
    runs = [("files", "2"), ("files", "2"), ("files", "100"), ("webdataset", "3"),
            ("files", "1"), ("files", "1", "away"), ("files", "3"), ("parquet", "1")]  # fmt: skip
    for fmt, size, *away in runs:
        images = unmounted if away else harvest.images
        code, _, err = export(str(harvest.manifest), "--format", fmt, "--out", str(out),
                              "--shard-size", size, "--images", str(images))  # fmt: skip
        assert code == (3 if away else 0), (fmt, size, err)
        for name, data in mine.items():
            assert (out / name).read_bytes() == data, (fmt, size, name)
        got = summary(out)
        samples = {p.name.split(".")[0] for p in out.glob("[0-9]*/[0-9]*.*")} - {"000000099"}
        expected = harvest.ok if fmt == "files" or away else 0
        assert len(samples) == expected, (fmt, size, sorted(samples))
        assert set(got.get("mixed_folders", {})) <= {"00000", "00001"}


# --- the master's files -------------------------------------------------------------------


@pytest.mark.parametrize("how", ["folder", "symlink", "dotdot"])
@pytest.mark.parametrize("fmt", ["webdataset", "files", "parquet"])
def test_an_out_whose_summary_is_the_runs_summary_is_refused(
    harvest: Crawl, tmp_path: Path, how: str, fmt: str
) -> None:
    """A manifest named export.jsonl has its run summary at export.summary.json, the
    export's own summary's name: --out its folder overwrote the master's summary. Now
    one line, exit 1, and nothing in the folder changes, as the master refuses a --csv
    naming its summary."""
    run = tmp_path / "run"
    run.mkdir()
    manifest = run / "export.jsonl"
    manifest.write_bytes(harvest.manifest.read_bytes())
    (run / "export.summary.json").write_text('{"the master": "summary"}\n')
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    (tmp_path / "link").symlink_to(run)
    out = {"folder": run, "symlink": tmp_path / "link", "dotdot": run / ".." / "run"}[how]
    code, stdout, err = export(str(manifest), "--format", fmt, "--out", str(out),
                               "--images", str(harvest.images))  # fmt: skip
    assert code == 1 and stdout == "" and err.count("\n") == 1, err
    assert "is the summary" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


# --- stop signals ---------------------------------------------------------------------------

BIG = 100_000  # rows: an export of them runs for seconds, long enough to be signalled


def big_manifest(harvest: Crawl, path: Path) -> Path:
    """BIG ok rows whose images are absent (each one a missing row): a slow export."""
    [model] = [row for row in read_rows(harvest.manifest) if row["status"] == "ok"][:1]
    with open(path, "w", encoding="utf-8") as fh:
        for n in range(BIG):
            url = f"http://127.0.0.1:9/{n}.jpg"
            fh.write(json.dumps(model | {"url": url, "source": url,
                                        "path": stored_name(url, "jpg")}) + "\n")  # fmt: skip
    return path


def left_behind(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".export-"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_mid_export_leaves_nothing_hidden(
    harvest: Crawl, tmp_path: Path, signum: int
) -> None:
    """SIGTERM (timeout, systemctl, kill) killed the export where it stood: its
    .export-index.*.sqlite and .export-staging stayed in --out for good. Now it ends as
    SIGINT does: exit 130, "interrupted", both removed, the earlier export untouched.
    (The export is started with the signal at its default: an ignored one stays ignored,
    as the next test shows.)"""
    manifest = big_manifest(harvest, tmp_path / "big.jsonl")
    out = tmp_path / "out"
    proc = stopped_export(manifest, out, signum, signal.SIG_DFL)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().endswith("crawler-export: interrupted"), stderr
    assert_no_traceback(stdout, stderr)
    assert left_behind(out) == []


def test_an_export_under_nohup_keeps_ignoring_sighup(harvest: Crawl, tmp_path: Path) -> None:
    """``nohup crawler-export ... &`` then logging out: SIGHUP stays ignored (installing
    the stop handler for it had replaced nohup's SIG_IGN, found in review)."""
    manifest = big_manifest(harvest, tmp_path / "big.jsonl")
    proc = stopped_export(manifest, tmp_path / "out", signal.SIGHUP, signal.SIG_IGN)
    proc.send_signal(signal.SIGHUP)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3, stderr  # it went on to its end: every image missing here
    assert "interrupted" not in stderr
    assert_no_traceback(stdout, stderr)


def stopped_export(
    manifest: Path, out: Path, signum: int, disposition: Any
) -> subprocess.Popen[str]:
    """An export of ``manifest`` into ``out``, started with ``signum`` set to
    ``disposition`` (a background or nohup'd suite ignores SIGINT or SIGHUP, and the
    export inherits that), under way (its staging folder made: the index is done, the
    samples go) or ended."""
    before = signal.signal(signum, disposition)  # what the child inherits
    try:
        proc = start_cli("export", str(manifest), "--format", "webdataset", "--out", str(out),
                         "--images", str(manifest.parent), "--no-progress")  # fmt: skip
    finally:
        signal.signal(signum, before)
    while not (out / ".export-staging").exists() and proc.poll() is None:
        time.sleep(0.01)  # polling, not timing: the signal waits until the export is under way
    return proc


def test_an_index_a_killed_export_left_is_removed_by_the_next(
    harvest: Crawl, tmp_path: Path
) -> None:
    """SIGKILL leaves the index and the staging folder; the next export removed the
    staging folder only."""
    manifest = big_manifest(harvest, tmp_path / "big.jsonl")
    out = tmp_path / "out"
    proc = start_cli("export", str(manifest), "--format", "files", "--out", str(out),
                     "--images", str(tmp_path), "--no-progress")  # fmt: skip
    while not (out / ".export-staging").exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)  # polling, not timing: the signal waits until the export is under way
    proc.kill()
    proc.communicate(timeout=60)
    assert any(name.startswith(".export-index.") for name in left_behind(out))
    code, _, err = export(str(harvest.manifest), "--format", "files", "--out", str(out),
                          "--images", str(harvest.images))  # fmt: skip
    assert code == 0, err
    assert left_behind(out) == []


def test_the_readmes_loader_takes_every_stored_extension() -> None:
    """The README's webdataset snippet asked for "jpg;png;webp;gif": samples stored as
    .bmp, .tif, .ico or .avif were not loaded."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    [keys] = re.findall(r'IMAGES = "([a-z;]+)"\n', readme)  # the loader's image keys
    assert set(keys.split(";")) == set(EXTENSIONS.values())


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--format", "files", "--resize-mode", "border"], "--resize-mode needs --resize PX"),
        (["--format", "parquet", "--resize", "64"], "--resize does nothing with --format parquet"),
    ],
)
def test_a_flag_that_would_do_nothing_is_refused(
    tmp_path: Path, flags: list[str], says: str
) -> None:
    """Until 2026-12-01 these were silently ignored: a dataset made without the resize
    (or the shards) asked for, and exit 0."""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("", encoding="utf-8")
    result = run_cli("export", str(manifest), "--out", str(tmp_path / "out"), *flags)
    last = result.stderr.strip().splitlines()[-1]  # after argparse's usage lines
    assert result.returncode == 2 and last.startswith(f"crawler-export: error: {says}"), last
    assert not (tmp_path / "out").exists()


def test_an_images_folder_that_is_not_there_is_one_line(harvest: Crawl, tmp_path: Path) -> None:
    """``--images /nonexistent`` made every row a store_error with no word of why (a
    fresh user's, 2026-12-03); among several, the one not there is named."""
    out = tmp_path / "ds"
    for given in ([tmp_path / "nowhere"], [harvest.images, tmp_path / "nowhere"]):
        flags = [arg for folder in given for arg in ("--images", str(folder))]
        code, _, err = export(str(harvest.manifest), "--format", "files", "--out", str(out),
                              *flags)  # fmt: skip
        assert code == 1 and err.count("\n") == 1, err
        assert f"--images {tmp_path / 'nowhere'} is not a folder here" in err, err
        assert not out.exists()
    code, _, err = export(str(harvest.manifest), "--format", "files", "--out", str(out),
                          "--images", str(harvest.images))  # fmt: skip
    assert code == 0, err


# --- the manifest and --out changing under an export ----------------------------------


def test_both_passes_read_the_manifest_the_first_one_opened(harvest: Crawl, tmp_path: Path) -> None:
    """A master compacting the manifest renames another file (the same rows in another
    order) over its name, and a running one appends: the second pass reads the file the
    first one read, up to where it ended. Until 2026-12-03 it opened the name again, and
    an export during a night's compaction wrote every row as ``no_image``, exit 0, and
    removed the earlier export (a fresh user's)."""
    manifest = tmp_path / "manifest.jsonl"
    lines = harvest.manifest.read_bytes().splitlines(keepends=True)
    manifest.write_bytes(b"".join(lines))
    expected = [json.loads(line) for line in lines]
    rows = CurrentRows(manifest, tmp_path)
    try:
        compacted = tmp_path / "compacted.jsonl"
        compacted.write_bytes(b"".join(reversed(lines)))
        os.replace(compacted, manifest)  # what the master's compaction does
        assert [row["url"] for row in rows] == [row["url"] for row in expected]
        with open(harvest.manifest, "rb") as fh, open(manifest, "ab") as later:
            later.write(fh.read())  # a running master's later rows: after the first pass
        assert [row["url"] for row in rows] == [row["url"] for row in expected]
    finally:
        rows.close()


def test_a_last_row_its_newline_came_after_the_first_pass_is_taken(
    harvest: Crawl, tmp_path: Path
) -> None:
    """A master writes a row, then its newline may come a moment later: the first pass
    took the row, so the second takes it too, as far as the first read (a review found
    the URL gone, unsaid); a manifest cut shorter meanwhile stops the export."""
    manifest = tmp_path / "manifest.jsonl"
    data = harvest.manifest.read_bytes()
    manifest.write_bytes(data[:-1])  # the last row whole, its newline not yet written
    rows = CurrentRows(manifest, tmp_path)
    try:
        with open(manifest, "ab") as later:
            later.write(b"\n" + data)  # its newline, and more rows
        assert [row["url"] for row in rows] == [row["url"] for row in read_rows(harvest.manifest)]
        manifest.write_bytes(data[: len(data) // 2])  # cut short, in place
        with pytest.raises(UsageError, match="cut short while it was exported"):
            list(rows)
    finally:
        rows.close()


def test_lines_ended_as_text_mode_ends_them(harvest: Crawl, tmp_path: Path) -> None:
    """A lone CR ends a line, as in the master's and the report's reading (a review found
    such a manifest exported as 0 rows, exit 0, the earlier export removed)."""
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_bytes(harvest.manifest.read_bytes().replace(b"\n", b"\r"))
    out = tmp_path / "ds"
    code, _, err = export(str(manifest), "--format", "files", "--out", str(out),
                          "--images", str(harvest.images))  # fmt: skip
    assert code == 0, err
    assert summary(out)["statuses"]["exported"] == harvest.ok


def test_an_export_into_a_folder_another_export_holds_is_refused(
    harvest: Crawl, tmp_path: Path
) -> None:
    """Two at once (an overlapping cron job) took each other's staging folder: both ended
    0 with one's shards gone, or both failed and the earlier export was lost (a fresh
    user's). The second is now refused in one line, and the first's export stands."""
    out = tmp_path / "ds"
    code, _, err = export(str(harvest.manifest), "--format", "webdataset", "--out", str(out))
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)  # as the export writing there holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, _, err = export(str(harvest.manifest), "--format", "webdataset", "--out", str(out))
    finally:
        os.close(fd)
    assert code == 1, err
    assert err.strip().splitlines() == [
        f"crawler-export: error: another export is writing into {out}: wait for it to end, "
        "or choose another --out"
    ], err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    code, _, err = export(str(harvest.manifest), "--format", "webdataset", "--out", str(out))
    assert code == 0, err  # released: the next one goes ahead


@pytest.mark.parametrize("fmt", ["parquet", "webdataset"])
def test_every_value_of_the_wrong_type_is_counted_as_nulled(
    harvest: Crawl, tmp_path: Path, fmt: str
) -> None:
    """An edited row's wrong-typed values are written as null, and counted: until
    2026-12-03 those the reading nulled were not (0 for three; a fresh user's)."""
    rows = read_rows(harvest.manifest)
    edited = [
        next(r for r in rows if r["status"] == "ok"),
        next(r for r in rows if r["http_status"] == 404),
    ]
    wrong = {"width": "wide", "bytes": 1e30, "elapsed_s": "slow", "reused": "yes"}
    lines = [json.dumps(row | wrong if row in edited else row) for row in rows]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "ds"
    code, _, err = export(str(manifest), "--format", fmt, "--out", str(out),
                          "--images", str(harvest.images))  # fmt: skip
    assert code == 0, err
    # Only rows written count: every row in Parquet, the image's alone in a dataset of
    # samples (a review found the 404 row's counted, a row no sample was made of).
    assert summary(out)["nulled_values"] == len(wrong) * (2 if fmt == "parquet" else 1)


def test_a_file_of_yours_under_a_samples_name_is_never_replaced(
    harvest: Crawl, tmp_path: Path
) -> None:
    """A sample folder that holds your files stays yours (README), and so does a file of
    yours under the name of one of the export's samples: until 2026-12-03 it was
    replaced, and the next export removed it as its own (a fresh user's)."""
    out = tmp_path / "ds"
    (out / "00000").mkdir(parents=True)
    mine = out / "00000" / "000000000.json"
    mine.write_text("mine\n", encoding="utf-8")
    (out / "00000" / "notes.txt").write_text("notes\n", encoding="utf-8")
    code, _, err = export(str(harvest.manifest), "--format", "files", "--out", str(out))
    assert code == 1, err
    assert len(err.strip().splitlines()) == 1 and "nothing was replaced" in err, err
    assert mine.read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in out.rglob("*")) == ["00000", "000000000.json", "notes.txt"]
    # Without a summary (lost, or never written: an export stopped while it moved its
    # files), the export's own earlier files have the bytes it makes again: not a clash.
    mine.unlink()
    code, _, err = export(str(harvest.manifest), "--format", "files", "--out", str(out))
    assert code == 0, err
    (out / "export.summary.json").unlink()
    code, _, err = export(str(harvest.manifest), "--format", "files", "--out", str(out))
    assert code == 0, err
    assert (out / "00000" / "notes.txt").read_text(encoding="utf-8") == "notes\n"
