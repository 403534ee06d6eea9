"""Make ``docs/report.png``, the README's picture of the HTML run report.

Runs a real crawl (``python -m crawler.master`` with two local workers) against four
loopback image servers (one fast, one slow, one flaky, one mixed), about a minute
long so the throughput chart has a shape, writes its report with
``python -m crawler.report``, and screenshots it with headless Chromium (1200x1600).
Needs the test extra's image server (``tests/imageserver.py``) and Debian's
``chromium``. Run from the repository root: ``python docs/make_report_screenshot.py``.
"""

from __future__ import annotations

import io
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).absolute().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from imageserver import ImageServer, truncated  # noqa: E402

SIZE = (1200, 1600)
MAX_BYTES = 500_000


def picture(seed: int, size: tuple[int, int], fmt: str) -> bytes:
    """A gradient sky with a few shapes: looks like a picture in a thumbnail."""
    rng = random.Random(seed)
    top, bottom = (rng.randrange(256) for _ in range(3)), (rng.randrange(256) for _ in range(3))
    image = Image.linear_gradient("L").resize(size)
    image = Image.merge("RGB", [image.point(lambda v, a=a, b=b: a + (b - a) * v // 255)
                                for a, b in zip(top, bottom, strict=True)])  # fmt: skip
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randrange(3, 8)):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        r = rng.randrange(10, max(size) // 3)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = draw.ellipse if rng.random() < 0.6 else draw.rectangle
        shape((x - r, y - r, x + r, y + r), fill=colour)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def serve(servers: list[ImageServer]) -> list[str]:
    """Register about 480 URLs over the servers; returns the list's lines."""
    rng = random.Random(7)
    pictures = [
        (picture(i, (rng.choice((320, 480, 640)), rng.choice((240, 360))), fmt), fmt)
        for i, fmt in enumerate(["JPEG"] * 18 + ["PNG"] * 4 + ["WEBP"] * 4)
    ]
    lines = []
    for i in range(480):
        server = servers[i % 4]
        delay = (0.1, 1.2, 0.5, 0.25)[i % 4] * rng.uniform(0.5, 1.5)
        body, fmt = pictures[i % len(pictures)]
        kind, status = f"image/{fmt.lower()}", 200
        if i % 4 == 2 and rng.random() < 0.35:  # the flaky host
            body, status = b"", rng.choice((404, 403, 500))
        elif i % 4 == 3 and rng.random() < 0.1:
            body = truncated(body) if rng.random() < 0.5 else b"<html>sold out</html>"
        ext = {"JPEG": "jpg"}.get(fmt, fmt.lower())
        lines.append(server.add(f"/photos/{i:04d}.{ext}", body, status=status,
                                content_type=kind, delay=delay))  # fmt: skip
    return [*lines, "https://bad host/x.jpg", lines[5], lines[9]]


def crawl(tmp: Path) -> Path:
    servers = [ImageServer().start() for _ in range(4)]
    try:
        (tmp / "list.txt").write_text("\n".join(serve(servers)) + "\n", encoding="utf-8")
        env = {**os.environ, "CRAWLER_AUTHKEY": secrets.token_hex(32)}
        out = tmp / "downloads"
        subprocess.run(
            [sys.executable, "-m", "crawler.master", str(tmp / "list.txt"), "--no-block-private",
             "--bind", "127.0.0.1", "--port", "0", "--local-workers", "2", "--threads", "3",
             "--output", str(out), "--no-progress", "--retries", "0"],
            check=True, cwd=ROOT, env=env, timeout=600,
        )  # fmt: skip
    finally:
        for server in servers:
            server.stop()
    subprocess.run(
        [sys.executable, "-m", "crawler.report", str(out / "manifest.jsonl"), "--output", str(out)],
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    return out / "manifest.report.html"


def screenshot(page: Path, target: Path, tmp: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("make_report_screenshot: chromium not found (apt-get install chromium)")
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp / 'profile'}", "--hide-scrollbars",
         f"--window-size={SIZE[0]},{SIZE[1]}", f"--screenshot={tmp / 'shot.png'}", page.as_uri()],
        check=True, capture_output=True, timeout=120, env={**os.environ, "HOME": str(tmp)},
    )  # fmt: skip
    with Image.open(tmp / "shot.png") as shot:
        shot.convert("RGB").save(target, optimize=True)
        if target.stat().st_size > MAX_BYTES:  # a palette keeps text sharp and the file small
            shot.convert("RGB").quantize(256).save(target, optimize=True)
    if target.stat().st_size > MAX_BYTES:
        sys.exit(f"make_report_screenshot: {target} is {target.stat().st_size} bytes")


def main() -> None:
    target = ROOT / "docs" / "report.png"
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        screenshot(crawl(tmp), target, tmp)
    print(f"{target}: {target.stat().st_size} bytes")


if __name__ == "__main__":
    main()
