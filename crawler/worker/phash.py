"""A 64-bit perceptual hash (pHash) of an image, from the pixels verification decoded.

The DCT hash of Zauner, "Implementation and Benchmarking of Perceptual Image Hash
Functions" (2010), as imagehash's ``phash`` computes it: the grey image shrunk to 32x32,
its 2-D DCT-II, the top-left 8x8 coefficients (lowest frequencies), each bit 1 where the
coefficient is above their median. Re-encoding or resizing an image moves few bits;
different images differ in about half. The DCT is two 32x32 matrix products (numpy, a
dependency of simplejpeg already): imagehash would bring scipy and PyWavelets for the same
numbers, and cost more CPU and memory per worker (README, Near duplicates).

The input is what ``verify`` decoded anyway: libjpeg's grey picture for JPEG, scaled down
(up to 1/8) to ``DETAIL`` pixels on its shorter side, Pillow's first frame for the other
formats. No second full decode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

SIDE = 32  # the image is shrunk to SIDE x SIDE before the DCT
LOW = 8  # the LOW x LOW lowest frequencies make the 64 bits
# The shorter side a picture keeps for the hash: the JPEG decode's scale stops there,
# and larger pictures are sampled down to it. Fewer pixels move the hash: at 32 (a JPEG
# at 1/8 scale for 256 px and more) the corpus's JPEGs were within 6 bits of their
# full-size hash for 98 % of them, at 128 for all; the decode costs 5 % more.
DETAIL = 4 * SIDE
# A picture of one colour has no structure: its coefficients but the DC are float32
# noise (below 0.001 at 8 bits), and compared with their median they made 64 random
# bits, so two greys of 240 and 241 were 8 bits apart and no near duplicates (a fresh
# user's, 2026-12-01). One grey level on one pixel of the 32x32 moves them by ~0.06.
FLAT = 0.01


def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix: ``m @ x`` transforms the columns of ``x``."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m.astype(np.float32)


_DCT = _dct_matrix(SIDE)[:LOW]  # only the rows of the kept frequencies


def of_decoded(pixels: np.ndarray | None, image: Image.Image) -> str | None:
    """The hash of what verification decoded: libjpeg's grey ``pixels``, else Pillow's
    loaded ``image``. None when the pixels cannot be hashed: the hash describes an image,
    it never makes one invalid."""
    try:
        return of_pixels(pixels) if pixels is not None else of_image(image)
    except Exception:  # an odd mode or size: the row just has no hash
        return None


def of_pixels(grey: np.ndarray) -> str:
    """The hash (16 hex digits) of a 2-D (or HxWx1) uint8 grey picture. Raises
    ValueError for an empty one."""
    if grey.ndim == 3:
        grey = grey[:, :, 0]
    if grey.size == 0:
        raise ValueError("no pixels to hash")
    # Every STEP-th pixel of a large picture (a view: nothing copied) still holds far
    # more detail than the 8x8 lowest frequencies kept; it saves most of the copy and
    # the shrinking.
    step = max(1, min(grey.shape) // DETAIL)
    sampled = np.ascontiguousarray(grey[::step, ::step])
    return _bits(Image.fromarray(sampled, mode="L"))


def of_image(image: Image.Image) -> str:
    """The hash (16 hex digits) of a Pillow image (its current frame, loaded)."""
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if image.mode not in ("L", "RGB", "RGBA", "LA"):
        # Palette, CMYK, 16-bit: resizing needs plain pixels.
        image = image.convert("RGBA" if alpha else "RGB")
    return _bits(image)


def _bits(image: Image.Image) -> str:
    """Shrink, flatten transparency onto white (as a browser on a white page shows
    it), DCT, compare with the median."""
    # reducing_gap: a fast integer reduce first, then bilinear; shrinking before the
    # grey conversion and the compositing keeps both at 32x32.
    small = image.resize((SIDE, SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if small.mode in ("RGBA", "LA"):
        rgba = small.convert("RGBA")
        small = Image.alpha_composite(Image.new("RGBA", rgba.size, (255,) * 4), rgba)
    pixels = np.asarray(small.convert("L"), dtype=np.float32)
    low = _DCT @ pixels @ _DCT.T  # LOW x LOW
    if np.abs(low.flat[1:]).max() < FLAT:  # one colour: only float noise beside the DC
        return f"{int(low[0, 0] > 0) << 63:016x}"
    bits = (low > median(low)).flatten()
    return f"{int(np.packbits(bits).view('>u8')[0]):016x}"


def median(values: np.ndarray) -> Any:
    """``np.median(values)``, the same value in the same dtype (an odd count's middle
    value; the mean of an even count's two middle ones), without importing ``numpy.ma``:
    np.median's first call does, ~13 ms of every worker's first image. Raises IndexError
    when empty."""
    ordered = np.sort(values, axis=None)
    middle = ordered.size // 2
    if ordered.size % 2:  # the middle one itself: added to itself, a huge one overflows
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def distance(a: str, b: str) -> int:
    """Hamming distance (0-64) between two hashes given as hex. Raises ValueError for
    a string that is not hex."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
