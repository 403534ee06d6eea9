"""A deterministic, web-like image corpus generated with Pillow and cached in bench/.cache.

The mix imitates what an image crawler meets on the web: mostly photographic JPEGs
from 64x64 thumbnails up to 1920x1080 (long side log-normally distributed, common
aspect ratios, varied quality and detail), some PNG graphics (flat shapes, some with
alpha), some lossy WebP photos and small GIFs (a third of them animated). Every image
is drawn from its own seeded ``random.Random``, so the same parameters give the same
corpus; it is generated once, in parallel, into ``bench/.cache/corpus-<hash>/`` and
reused while the parameters (and the generator's ``RECIPE``) stay the same.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import multiprocessing
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import PIL
from PIL import Image, ImageDraw

CACHE = Path(__file__).resolve().parent / ".cache"
RECIPE = 2  # bump when the generator changes: the cache key changes with it
SEED = 20240611
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
FORMAT_MIX = (("JPEG", 0.78), ("PNG", 0.10), ("WEBP", 0.07), ("GIF", 0.05))
ASPECTS = ((4, 3, 30), (3, 2, 25), (16, 9, 15), (1, 1, 10), (3, 4, 10), (2, 3, 10))
# Long side of each format: (median px, log-normal sigma, cap px).
LONG_SIDE = {"JPEG": (815, 0.7, 1920), "WEBP": (640, 0.7, 1920), "PNG": (420, 0.6, 1600)}
LONG_SIDE["GIF"] = (240, 0.5, 640)
SMALL_CAP = 480  # --quick: long side never above this


@dataclass(frozen=True)
class Spec:
    """Everything needed to draw one image; a pure function of (index, small)."""

    index: int
    format: str
    width: int
    height: int
    frames: int
    detail: float
    quality: int
    alpha: bool


@dataclass(frozen=True)
class Corpus:
    """A generated corpus: images under ``root/img/``, described by ``files``."""

    root: Path
    files: list[dict[str, Any]]
    generated_s: float | None  # None when it came from the cache

    @property
    def total_bytes(self) -> int:
        return sum(f["bytes"] for f in self.files)

    def urls(self, base: str, files: list[dict[str, Any]] | None = None) -> list[str]:
        return [f"{base}/img/{f['name']}" for f in (self.files if files is None else files)]

    def subset(self, count: int) -> list[dict[str, Any]]:
        """``count`` files spread evenly over the corpus (so with the same mix)."""
        step = max(1, len(self.files) // max(1, count))
        return self.files[::step][:count]


def corpus_key(count: int, small: bool) -> str:
    params = {"count": count, "small": small, "seed": SEED, "recipe": RECIPE}
    params["pillow"] = PIL.__version__.split(".")[0]  # encoders change across majors
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def ensure_corpus(count: int, small: bool, say: Callable[[str], None]) -> Corpus:
    """The cached corpus for these parameters, generating it first when missing."""
    root = CACHE / f"corpus-{corpus_key(count, small)}"
    index = root / "index.json"
    if index.exists():
        return Corpus(root, json.loads(index.read_text()), None)
    say(f"generating a corpus of {count} images in {root} (once; cached) ...")
    started = time.monotonic()
    files = _generate(root, count, small)
    elapsed = time.monotonic() - started
    say(f"corpus ready: {sum(f['bytes'] for f in files) / 1e6:.0f} MB in {elapsed:.1f} s")
    return Corpus(root, files, elapsed)


def _generate(root: Path, count: int, small: bool) -> list[dict[str, Any]]:
    """Draw every image in a process pool into a scratch folder, then rename it into place."""
    scratch = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "img").mkdir(parents=True)
    specs = [plan(i, small) for i in range(count)]
    specs.sort(key=lambda s: -s.width * s.height * s.frames)  # big ones first: even finish
    jobs = [(scratch, spec) for spec in specs]
    ctx = multiprocessing.get_context("fork")  # no threads are running yet in the harness
    with ctx.Pool(os.cpu_count() or 2) as pool:
        files = list(pool.imap_unordered(_make, jobs, chunksize=4))
    files.sort(key=lambda f: f["index"])
    (scratch / "index.json").write_text(json.dumps(files))
    shutil.rmtree(root, ignore_errors=True)
    os.rename(scratch, root)
    return files


def _make(job: tuple[Path, Spec]) -> dict[str, Any]:
    root, spec = job
    body = render(spec)
    name = f"{spec.index:05d}.{EXTENSIONS[spec.format]}"
    (root / "img" / name).write_bytes(body)
    return {"name": name, "bytes": len(body)} | asdict(spec)


# --- What to draw ---
def plan(index: int, small: bool) -> Spec:
    rng = random.Random(f"{SEED}:{index}")
    fmt = _pick(rng, FORMAT_MIX)
    median, sigma, cap = LONG_SIDE[fmt]
    cap = min(cap, SMALL_CAP) if small else cap
    long_side = min(cap, max(64, int(rng.lognormvariate(math.log(median), sigma))))
    width, height = _shape(rng, long_side)
    animated = fmt == "GIF" and rng.random() < 1 / 3
    return Spec(
        index=index,
        format=fmt,
        width=width,
        height=height,
        frames=rng.randint(2, 6) if animated else 1,
        detail=round(rng.uniform(0.08, 0.5), 3),
        quality=rng.choice((72, 78, 82, 85, 88, 92)),
        alpha=fmt == "PNG" and rng.random() < 0.3,
    )


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    roll = rng.random()
    for name, weight in weighted:
        roll -= weight
        if roll < 0:
            return name
    return weighted[-1][0]


def _shape(rng: random.Random, long_side: int) -> tuple[int, int]:
    """Width and height for a long side and a common aspect ratio, within 64..1920 x 64..1080."""
    a, b, _ = rng.choices(ASPECTS, weights=[w for _, _, w in ASPECTS])[0]
    if a >= b:
        width, height = long_side, long_side * b // a
        if height > 1080:
            width, height = 1080 * a // b, 1080
    else:
        height = min(long_side, 1080)
        width = height * a // b
    return max(64, min(1920, width)), max(64, min(1080, height))


# --- Drawing ---
def render(spec: Spec) -> bytes:
    """The encoded bytes of one image."""
    rng = random.Random(f"{SEED}:pixels:{spec.index}")
    out = io.BytesIO()
    size = (spec.width, spec.height)
    if spec.format == "PNG":
        _graphic(rng, size, spec.alpha).save(out, "PNG")
    elif spec.format == "GIF":
        _gif(rng, spec, out)
    else:
        options = {"quality": spec.quality}
        if spec.format == "JPEG":
            options["optimize"] = rng.random() < 0.3
        _photo(rng, size, spec.detail).save(out, spec.format, **options)
    return out.getvalue()


def _noise(rng: random.Random, mode: str, size: tuple[int, int]) -> Image.Image:
    w, h = max(1, size[0]), max(1, size[1])
    return Image.frombytes(mode, (w, h), rng.randbytes(w * h * len(mode)))


def _photo(rng: random.Random, size: tuple[int, int], detail: float) -> Image.Image:
    """Smooth colour fields, mid-scale structure and fine grain: JPEG sizes like photos'."""
    w, h = size
    image = _noise(rng, "RGB", (4, 3)).resize(size, Image.Resampling.BICUBIC)
    mid = _noise(rng, "RGB", (w // 16, h // 16)).resize(size, Image.Resampling.BICUBIC)
    image = Image.blend(image, mid, 0.35)
    grain = _noise(rng, "L", (w // 2, h // 2)).resize(size, Image.Resampling.BILINEAR)
    return Image.blend(image, grain.convert("RGB"), detail)


def _graphic(rng: random.Random, size: tuple[int, int], alpha: bool) -> Image.Image:
    """Flat shapes, lines and a little text: what PNGs on the web mostly are."""
    mode = "RGBA" if alpha else "RGB"
    image = Image.new(mode, size, _colour(rng, alpha))
    draw = ImageDraw.Draw(image)
    w, h = size
    for _ in range(rng.randint(3, 25)):
        x0, x1 = sorted((rng.randrange(w), rng.randrange(w)))
        y0, y1 = sorted((rng.randrange(h), rng.randrange(h)))
        xy = (x0, y0, x1, y1)
        shape = rng.choice((draw.rectangle, draw.ellipse, draw.rounded_rectangle))
        shape(xy, fill=_colour(rng, alpha), outline=_colour(rng, False))
    for _ in range(rng.randint(0, 6)):
        draw.text((rng.randrange(w), rng.randrange(h)), "crawler bench", fill=_colour(rng, False))
    if rng.random() < 0.5:  # a photo inset, as in a screenshot
        inset = _photo(rng, (max(8, w // 2), max(8, h // 2)), 0.1).convert(mode)
        where = (rng.randrange(w - inset.width + 1), rng.randrange(h - inset.height + 1))
        image.paste(inset, where)
    return image


def _colour(rng: random.Random, alpha: bool) -> tuple[int, ...]:
    rgb = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    return (*rgb, rng.randrange(64, 256)) if alpha else rgb


def _gif(rng: random.Random, spec: Spec, out: io.BytesIO) -> None:
    base = _photo(rng, (spec.width, spec.height), spec.detail / 2)
    frames = [
        base.rotate(12 * i).convert("P", palette=Image.Palette.ADAPTIVE, colors=128)
        for i in range(spec.frames)
    ]
    if len(frames) == 1:
        frames[0].save(out, "GIF")
    else:
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
