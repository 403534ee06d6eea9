"""The README's WebDataset loader, run as written over an export of every stored format.

webdataset's own "pil" decoder knows no ``.avif``: the loader the README gave until
2026-12-01 left those samples as bytes (a fresh user's). The block is taken from the
README itself, so the README cannot drift from what works.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from conftest import run_cli
from imageserver import ImageServer
from PIL import Image

from crawler.formats import EXTENSIONS

SAVED = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
SAVED |= {"ICO": "ico", **({"AVIF": "avif"} if "AVIF" in EXTENSIONS else {})}


def readme_loader() -> str:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    intro = text.index("Loading the results. WebDataset shards")
    return re.search(r"```python\n(.*?)```", text[intro:], re.S)[1]  # type: ignore[index]


def picture(fmt: str, n: int) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((48 + n, 40)).convert("RGB").save(out, fmt)
    return out.getvalue()


def test_the_readme_loader_opens_every_format(tmp_path: Path) -> None:
    with ImageServer() as server:
        urls = {server.add(f"/{n}", picture(fmt, n)): fmt for n, fmt in enumerate(SAVED)}
        listing = tmp_path / "list.csv"
        with open(listing, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(
                [("url", "caption"), *((u, f"a {f}") for u, f in urls.items())]
            )
        out = tmp_path / "out"
        crawl = run_cli(
            "master", str(listing), "--bind", "127.0.0.1", "--port", "0", "--output", str(out),
            "--local-workers", "1", "--threads", "4", "--no-progress", "--no-report",
        )  # fmt: skip
    assert crawl.returncode == 0, crawl.stderr
    shards = tmp_path / "dataset"
    export = run_cli(
        "export", str(out / "manifest.jsonl"), "--format", "webdataset", "--out", str(shards),
        "--caption-column", "caption", "--no-progress",
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    code = readme_loader().replace(
        "dataset/shard-{00000..00012}.tar", str(shards / "shard-00000.tar")
    )
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    seen = {}
    for image, meta, caption in scope["dataset"]:
        assert isinstance(image, Image.Image), (meta["format"], type(image))
        assert image.format == meta["format"] and caption == f"a {meta['format']}"
        seen[meta["url"]] = meta["format"]
    assert seen == urls
