"""Valid sample files of every supported format, made with Pillow (for the sweeps).

Small on purpose (a sweep decodes every prefix of each), but each with the structure
that matters: several frames, progressive or interlaced data, MPO's second picture,
TIFF pages with LZW strips, an ICO with two sizes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from conftest import read_rows, run_cli
from PIL import Image, ImageDraw

from crawler.config import Policy
from crawler.exceptions import VerifyFailure
from crawler.worker import verify

SWEEP_POLICY = Policy(max_pixels=4_000_000)  # the verification sweeps' limits


def crawl(tmp_path: Path, urls: list[str]) -> tuple[Path, dict[str, dict]]:
    """One run of a real master and one local worker over ``urls`` (failures allowed):
    its output folder, and its rows by URL."""
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli(
        "master", str(listing), "--port", "0", "--bind", "127.0.0.1", "--output", str(out),
        "--local-workers", "1", "--no-progress", "--no-report", "--max-failure-rate", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out, {row["url"]: row for row in read_rows(out / "manifest.jsonl")}


def status_of(body: bytes, policy: Policy = SWEEP_POLICY) -> str:
    """The status verification gives ``body`` under ``policy`` (its limits set first)."""
    verify.configure(policy)
    try:
        verify.inspect(body, policy)
    except VerifyFailure as failure:
        return failure.status
    return "ok"


def picture(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A picture with edges and gradients (compresses like a photo, not like a flat fill)."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for i in range(6):
        x, y = (seed * 37 + i * 53) % width, (seed * 11 + i * 29) % height
        draw.ellipse(
            (x, y, x + width // 3, y + height // 3), fill=(i * 40, 255 - i * 30, seed % 255)
        )
    return image.convert(mode)


def _save(frames: list[Image.Image], fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    first, *rest = frames
    if rest:
        params |= {"save_all": True, "append_images": rest}
    first.save(buf, fmt, **params)
    return buf.getvalue()


def _frames(count: int, width: int, height: int, mode: str = "RGB") -> list[Image.Image]:
    return [picture(width, height, seed=i, mode=mode) for i in range(count)]


def mpo() -> bytes:
    return _save(_frames(2, 48, 32), "MPO", quality=80)


SAMPLES: dict[str, Callable[[], bytes]] = {
    "jpeg": lambda: _save([picture(48, 32)], "JPEG", quality=85),
    "jpeg-progressive": lambda: _save([picture(48, 32)], "JPEG", progressive=True),
    "jpeg-cmyk": lambda: _save([picture(40, 24, mode="CMYK")], "JPEG"),
    # Decoded at 1/8 scale (1024 px a side and more): every cut must still be found.
    "jpeg-eighth": lambda: _save([picture(1280, 1024)], "JPEG", quality=85),
    "jpeg-progressive-eighth": lambda: _save([picture(1024, 1280)], "JPEG", progressive=True),
    "mpo": mpo,
    "png": lambda: _save([picture(40, 24)], "PNG"),
    "png-interlaced": lambda: _save([picture(40, 24, mode="RGBA")], "PNG", interlace=1),
    "png-16bit": lambda: _save([picture(24, 16, mode="I;16")], "PNG"),
    "apng": lambda: _save(_frames(3, 24, 16), "PNG", duration=50),
    "gif": lambda: _save([picture(32, 24, mode="P")], "GIF"),
    "gif-animated": lambda: _save(_frames(4, 24, 16, mode="P"), "GIF", duration=50),
    "gif-interlaced": lambda: _save([picture(32, 24, mode="P")], "GIF", interlace=True),
    "webp": lambda: _save([picture(40, 24)], "WEBP", quality=80),
    "webp-lossless": lambda: _save([picture(24, 16)], "WEBP", lossless=True),
    "webp-animated": lambda: _save(_frames(3, 24, 16), "WEBP", duration=50),
    "bmp": lambda: _save([picture(24, 16)], "BMP"),
    "tiff": lambda: _save([picture(24, 16)], "TIFF"),
    "tiff-lzw-pages": lambda: _save(_frames(4, 24, 16), "TIFF", compression="tiff_lzw"),
    "ico": lambda: _save([picture(32, 32, mode="RGBA")], "ICO", sizes=[(16, 16), (32, 32)]),
    "avif": lambda: _save([picture(32, 24)], "AVIF", quality=60),
}
