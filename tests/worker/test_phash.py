"""The perceptual hash the worker computes while verifying, on generated images: the
same picture re-encoded, resized by 10 % or stored in another format stays within the
report's threshold; different pictures do not. A sweep over many pictures."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from crawler.config import Policy
from crawler.report.similar import THRESHOLD
from crawler.worker import phash, verify

SEEDS = range(12)


def photo(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """A photo-like picture: a smooth random colour field with some pixel noise."""
    rng = random.Random(seed)
    coarse = Image.frombytes("RGB", (8, 6), rng.randbytes(8 * 6 * 3))
    noise = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    return Image.blend(coarse.resize(size, Image.Resampling.BICUBIC), noise, 0.1)


def encode(image: Image.Image, fmt: str = "JPEG", **opts: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **opts)
    return out.getvalue()


def hash_of(body: bytes) -> str:
    info = verify.inspect(body, Policy())
    assert info.phash is not None and len(info.phash) == 16
    int(info.phash, 16)
    return info.phash


def variants(seed: int) -> dict[str, bytes]:
    image = photo(seed)
    smaller = image.resize((432, 324), Image.Resampling.LANCZOS)  # 10 % smaller
    larger = image.resize((528, 396), Image.Resampling.LANCZOS)  # 10 % larger
    return {
        "q90": encode(image, quality=90),
        "q50": encode(image, quality=50),
        "q25": encode(image, quality=25),
        "smaller": encode(smaller, quality=85),
        "larger": encode(larger, quality=85),
        "png": encode(image, "PNG"),
        "webp": encode(image, "WEBP", quality=70),
        "gif": encode(image.convert("P", palette=Image.Palette.ADAPTIVE), "GIF"),
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_versions_of_one_picture_are_near(seed: int) -> None:
    hashes = {name: hash_of(body) for name, body in variants(seed).items()}
    reference = hashes["q90"]
    for name, value in hashes.items():
        assert phash.distance(reference, value) <= THRESHOLD, (name, reference, value)


def test_different_pictures_are_far() -> None:
    hashes = [hash_of(encode(photo(seed), quality=90)) for seed in range(40)]
    closest = min(phash.distance(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :])
    assert closest > THRESHOLD, closest


def test_transparent_and_odd_modes_hash() -> None:
    base = photo(3)
    rgba = base.convert("RGBA")
    rgba.putalpha(200)
    for body in (encode(rgba, "PNG"), encode(base.convert("L"), "PNG"), encode(base, "TIFF")):
        hash_of(body)
    cmyk = encode(base.convert("CMYK"), "JPEG", quality=90)
    assert phash.distance(hash_of(cmyk), hash_of(encode(base, quality=90))) <= THRESHOLD


def test_phash_matches_the_full_scale_picture() -> None:
    """The JPEG hash comes from libjpeg's 1/8-scale decode; the same picture hashed
    at full scale (Pillow) agrees within the threshold."""
    for seed in SEEDS:
        image = photo(seed, (1024, 768))
        body = encode(image, quality=90)
        assert phash.distance(hash_of(body), phash.of_image(image)) <= THRESHOLD


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=0, max_size=64))
def test_of_decoded_never_raises(data: bytes) -> None:
    """Whatever the pixels, the hash is a value or None: it never fails a download."""
    pixels = np.frombuffer(data, dtype=np.uint8).reshape(1, -1) if data else np.empty((0, 0))
    value = phash.of_decoded(pixels.astype(np.uint8), Image.new("RGB", (1, 1)))
    assert value is None or len(value) == 16


@pytest.mark.parametrize("seed", range(3))
def test_large_pictures_are_sampled_and_still_near(seed: int) -> None:
    """A camera-sized JPEG (its 1/8 decode sampled every few pixels) and its versions."""
    image = photo(seed, (2880, 2160))
    reference = hash_of(encode(image, quality=90))
    for version in (
        encode(image, quality=40),
        encode(image.resize((2592, 1944), Image.Resampling.LANCZOS), quality=85),
        encode(image.resize((720, 540), Image.Resampling.LANCZOS), "PNG"),
    ):
        assert phash.distance(reference, hash_of(version)) <= THRESHOLD
    assert phash.distance(reference, hash_of(encode(photo(seed + 50, (2880, 2160))))) > THRESHOLD


@settings(max_examples=500, deadline=None)
@example([1.7014118346046923e38], (-1,))  # found by CI: the odd count's middle, doubled, was inf
@example([3.4e38, 3.4e38], (-1,))  # an even count overflows in np.median too
@given(
    st.lists(
        st.floats(allow_nan=False, width=32),  # the DCT of pixels is never NaN
        min_size=1,
        max_size=80,
    ),
    st.sampled_from([(-1,), (8, 8)]),
)
def test_median_is_numpys_exactly(values: list[float], shape: tuple[int, ...]) -> None:
    """The bits compare with this median: one value apart from np.median's would move a
    bit, and the hashes in earlier manifests would no longer match new ones."""
    array = np.array(values, dtype=np.float32)
    if shape == (8, 8):
        array = np.resize(array, 64).reshape(8, 8)  # the shape the hash has: an even count
    with np.errstate(over="ignore"):  # two huge values overflow, in np.median too
        ours, numpys = phash.median(array), np.median(array)
    assert ours.dtype == numpys.dtype
    assert (ours == numpys) or (np.isnan(ours) and np.isnan(numpys))  # inf - inf: both NaN


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P"])
def test_pictures_of_one_colour_hash_alike(mode: str) -> None:
    """One colour has no structure to hash: every flat picture but black gets the DC bit
    alone (black none), whatever its colour, size or mode; until 2026-12-01 they got 64
    bits of float noise (greys 240 and 241: 8 bits apart). One pixel off is structure."""
    hashes = set()
    for value in (1, 17, 128, 240, 241, 255):
        for size in ((1, 1), (50, 40), (300, 200)):
            flat = Image.new("RGBA", size, (value, value // 2, 255 - value, 255))
            hashes.add(phash.of_image(flat.convert(mode)))
    assert hashes == {"8000000000000000"}, hashes
    assert phash.of_image(Image.new("L", (64, 64), 0)) == "0000000000000000"
    dot = Image.new("L", (64, 64), 128)
    dot.putpixel((20, 20), 200)
    assert phash.of_image(dot) != "8000000000000000"
