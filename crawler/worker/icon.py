"""Every image an ICO's directory lists must be whole, not only the one Pillow shows.

An ICO holds its images as PNG or BMP (a DIB without its file header). Pillow decodes
only the largest, and until 2026-12-01 the PNGs inside were never walked as PNGs: one
with a damaged IDAT (its CRC wrong), or a 16 x 16 one that did not decode at all, was
stored as ``ok`` (a fresh user's, 2026-12-01). Each image is now held to the rules of
its own format: a PNG to ``structure.png`` (CRCs, libpng's chunk rules) and
``pngdata`` (its rows), a BMP to ``bitmap.icon`` (its rows and mask inside its bytes);
then each is decoded once by Pillow (``IcoImagePlugin.IcoFile.frame``, which also
applies a BMP's mask).

Sizes come first: each image within ``max_pixels``, all together within
ANIMATION_PIXEL_FACTOR times that, before any is decoded (a directory of 65,535 entries
naming one PNG of 10,000 x 10,000 pixels had its rows counted 65,535 times): each place
in the file is read once, however many entries name it. The directory itself was
checked before (``structure.ico``: every image inside the file).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import TypeVar

from PIL import IcoImagePlugin, Image

from crawler.constants import ANIMATION_PIXEL_FACTOR
from crawler.exceptions import Corrupt, TooManyPixels
from crawler.worker import bitmap, pngdata, structure

_T = TypeVar("_T")


def check(body: bytes, max_pixels: int) -> None:
    """Raise Corrupt if an image of the ICO ``body`` is damaged or cut, TooManyPixels if
    one is larger than ``max_pixels`` or all together than the budget."""
    places = _places(body)
    sizes = [_size(image, f"ICO image {index + 1}") for index, image in places.values()]
    for width, height in sorted(sizes, key=lambda size: -size[0] * size[1]):
        if width * height > max_pixels:  # the largest first: the one Pillow shows
            raise TooManyPixels(f"{width}x{height} exceeds max_pixels {max_pixels}")
    total = sum(width * height for width, height in sizes)
    if total > ANIMATION_PIXEL_FACTOR * max_pixels:
        raise TooManyPixels(f"{len(sizes)} ICO images of {total} pixels are too much to decode")
    icons = IcoImagePlugin.IcoFile(io.BytesIO(body))
    order = {entry.offset: number for number, entry in enumerate(icons.entry)}
    for offset, (index, image) in places.items():
        what = f"ICO image {index + 1}"
        if image.startswith(pngdata.SIGNATURE):
            _named(lambda png: pngdata.count_rows(png, "PNG"), image, what)
        _decode(icons, order[offset], image, what)


def _places(body: bytes) -> dict[int, tuple[int, bytes]]:
    """Each place an entry names, once: index of its first entry, and its bytes."""
    places: dict[int, tuple[int, bytes]] = {}
    for index in range(int.from_bytes(body[4:6], "little")):
        size, offset = struct.unpack("<II", body[14 + 16 * index : 22 + 16 * index])
        if offset not in places:
            places[offset] = (index, body[offset : offset + size])
    return places


def _size(image: bytes, what: str) -> tuple[int, int]:
    """The image's size, once its container is found whole (Corrupt names ``what``)."""
    if image.startswith(pngdata.SIGNATURE):
        _named(structure.png, image, what)
        return struct.unpack(">II", image[16:24])
    return _named(bitmap.icon, image, what)


def _named(rule: Callable[[bytes], _T], image: bytes, what: str) -> _T:
    """``rule(image)``, its Corrupt text starting with ``what`` (which image)."""
    try:
        return rule(image)
    except Corrupt as failure:
        raise Corrupt(f"{what}: {failure}") from None


def _decode(icons: IcoImagePlugin.IcoFile, number: int, image: bytes, what: str) -> None:
    """Decode one image, as Pillow does the one it shows (a PNG without the ancillary
    chunks whose CRC is wrong: ``structure.png_for_pillow``)."""
    try:
        if image.startswith(pngdata.SIGNATURE):
            readable = io.BytesIO(structure.png_for_pillow(image))
            with Image.open(readable, formats=["PNG"]) as png:
                png.load()
        else:
            icons.frame(number).load()
    except (Image.DecompressionBombError, Corrupt):
        raise
    except Exception as exc:  # Pillow raises many types for damaged data
        reason = pngdata.pillow_reason(str(exc) or type(exc).__name__)
        raise Corrupt(f"{what}: cannot decode it: {reason}"[:500]) from None
