"""``crawler-export`` where an export could lose data or mislead, end to end: a real
master and worker crawl Pillow-generated images from a real HTTP server on loopback,
then the real ``crawler-export`` runs (again and again) into one ``--out``.

An unmounted store is an empty folder given as ``--store`` or ``--images`` (nothing is
mounted). Each test names the defect it guards against (all fixed 2026-12-01).
"""

from __future__ import annotations

import json
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
