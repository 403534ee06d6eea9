"""``crawler-export`` where an export could lose data or mislead, end to end: a real
master and worker crawl Pillow-generated images from a real HTTP server on loopback,
then the real ``crawler-export`` runs (again and again) into one ``--out``.

An unmounted store is an empty folder given as ``--store`` or ``--images`` (nothing is
mounted). Each test names the defect it guards against (all fixed 2026-12-01).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import assert_no_traceback, read_rows, run_cli
from imageserver import ImageServer, make_image
from PIL import Image

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
