"""Every image an ICO's directory lists must be whole, not only the one Pillow shows.

An ICO holds its images as PNG or BMP (a DIB without its file header). Pillow decodes
only the largest, and until 2026-12-01 the PNGs inside were never walked as PNGs: one
with a damaged IDAT (its CRC wrong), or a 16 x 16 one that did not decode at all, was
stored as ``ok`` (a fresh user's, 2026-12-01). Each image is now held to the rules of
its own format: a PNG, the entry's bytes (dwBytesInRes), to ``structure.png`` (CRCs,
libpng's chunk rules) and ``pngdata`` (its rows); a DIB, judged by its own header over
the bytes from its offset up to the next image's (or the file's end), to
``bitmap.icon`` (its rows and mask inside the file). Each is then decoded once: the
one Pillow shows by ``verify`` (IcoImageFile), every other one here (a PNG by
PngImagePlugin, a DIB's colour rows by DibImageFile, its header deciding the depth).
Until 2026-12-01 the shown one was decoded twice, and a DIB by ``IcoFile.frame``,
which trusts the directory's bit count (a review's).

Sizes come first: each image within ``max_pixels``, all together (every frame of an
APNG inside) within ANIMATION_PIXEL_FACTOR times that, before any row is counted or
any split IDAT run inflated or any image decoded (a directory of 65,535 entries naming
one PNG of 10,000 x 10,000 pixels had its rows counted 65,535 times). The directory
bounds the rest, before any image is read: at most MAX_IMAGES entries (65,535 distinct
1 x 1 images took 2.8 s, 40 times a normal decode of as many bytes; real icons hold 1
to 30), each place in the file read once however many entries name it, and their bytes
together at most READ_FACTOR times the file's (entries at offsets 1 byte apart, each
sized to the end of the file, were copied whole before any was checked: 2 GiB for a 2
MiB file; each is now read in place, one at a time). A review's, 2026-12-01. Its PNGs
hold at most ``pngchunks.MAX_CHUNKS`` chunks together, counted as they are sized, the
bound of one PNG (two engineers', 2026-12-01). The directory itself was checked before
(``structure.ico``: every image inside the file).
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Callable
from typing import TypeVar

from PIL import BmpImagePlugin, IcoImagePlugin, Image, ImageFile

from crawler.constants import ANIMATION_PIXEL_FACTOR
from crawler.exceptions import Corrupt, TooManyPixels
from crawler.worker import bitmap, pngancillary, pngdata, structure

MAX_IMAGES = 256  # directory entries: Windows and browsers choose one image of them
READ_FACTOR = 4  # the images' bytes, together, at most this many times the file's

_T = TypeVar("_T")
_Bytes = bytes | memoryview


def check(body: bytes, max_pixels: int) -> None:
    """Raise Corrupt if an image of the ICO ``body`` is damaged or cut, TooManyPixels if
    one is larger than ``max_pixels``, all together than the budget, or the directory
    asks for more images or bytes than the bounds above."""
    places = _places(body)
    view = memoryview(body)  # entries are read in place, never copied whole
    images = {at: _extent(view, at, places, size) for at, (_index, size) in places.items()}
    sizes, walked = [], 0  # the chunks of all its PNGs: one bound a file (pngchunks)
    for at, (index, _said) in places.items():
        size, walked = _size(images[at], index, walked)
        sizes.append(size)
    for width, height, _pixels in sorted(sizes, key=lambda size: -size[0] * size[1]):
        if width * height > max_pixels:  # the largest first: the one Pillow shows
            raise TooManyPixels(f"{width}x{height} exceeds max_pixels {max_pixels}")
    total = sum(pixels for _width, _height, pixels in sizes)
    if total > ANIMATION_PIXEL_FACTOR * max_pixels:
        raise TooManyPixels(f"{len(sizes)} ICO images of {total} pixels are too much to decode")
    # The entry Pillow shows (verify's): it picks by the directory's sizes, not offsets.
    shown = IcoImagePlugin.IcoFile(io.BytesIO(_dib_bits(body))).entry[0].offset
    text = pngancillary.Budget()  # for all the PNGs decoded here: bounded work
    for offset, (index, _said) in places.items():
        what, image = f"ICO image {index + 1}", images[offset]
        if _is_png(image):  # a split IDAT run inflated only now, within the budget above
            _named(lambda png: structure.png(png, max_pixels), image, what)
            _named(lambda png: pngdata.count_rows(png, "PNG"), image, what)
            if offset != shown:
                read = functools.partial(_png_image, bytes(image), text)
                _decode(read, what, pngdata.pillow_reason)
        else:
            _named(bitmap.icon, image, what)
            if offset != shown:
                _decode(lambda dib=image: _dib_image(dib), what, str)


def for_pillow(body: bytes) -> bytes:
    """The ICO Pillow is given: each DIB's bit count from its own header (``_dib_bits``),
    each PNG as Pillow is given a PNG (``pngancillary``: without the ancillary chunks
    libpng skips). A PNG that changes is appended after the file, its entry pointed
    there: until 2026-12-01 the PNG Pillow shows was read as it stood, and one with a
    text chunk over Pillow's limits, or an ancillary chunk whose CRC was wrong, made
    the ICO ``corrupt`` (a fresh user's, 2026-12-01)."""
    fixed, tail, end = bytearray(_dib_bits(body)), [], len(body)
    text, cleaned = pngancillary.Budget(), {}  # one budget, each place once
    for index in range(int.from_bytes(body[4:6], "little")):
        entry = 6 + 16 * index
        size, offset = struct.unpack("<II", body[entry + 8 : entry + 16])
        if (offset, size) not in cleaned and _is_png(body[offset : offset + 8]):
            png = body[offset : offset + size]
            clean = pngancillary.for_pillow(png, text)
            cleaned[offset, size] = (end, len(clean)) if len(clean) < len(png) else None
            if cleaned[offset, size]:
                tail.append(clean)
                end += len(clean)
        if moved := cleaned.get((offset, size)):
            fixed[entry + 8 : entry + 16] = struct.pack("<II", moved[1], moved[0])
    return bytes(fixed) + b"".join(tail)


def _dib_bits(body: bytes) -> bytes:
    """The ICO with each DIB's directory bit count taken from its own header.
    ``IcoFile.frame`` trusts the directory's (at 32 it reads an alpha byte a pixel), so a
    one-image icon whose directory said 32 for a 24-bit DIB was "buffer is not large
    enough" (a review's, 2026-12-01); Windows and Chromium read the header's."""
    fixed = bytearray(body)
    for index in range(int.from_bytes(body[4:6], "little")):
        entry = 6 + 16 * index
        offset = int.from_bytes(body[entry + 12 : entry + 16], "little")
        if bitmap.is_dib(body[offset : offset + 4]) and offset + 40 <= len(body):
            bits = bitmap.header(body[offset : offset + 40])[3]
            fixed[entry + 6 : entry + 8] = bits.to_bytes(2, "little")
    return bytes(fixed)


def _places(body: bytes) -> dict[int, tuple[int, int]]:
    """Each place an entry names, once: the index and size of its first entry."""
    count = int.from_bytes(body[4:6], "little")
    if count > MAX_IMAGES:
        raise TooManyPixels(
            f"ICO lists {count} images, more than the {MAX_IMAGES} an ICO may hold here"
            " (a fixed bound, not --max-pixels)"
        )
    places: dict[int, tuple[int, int]] = {}
    for index in range(count):
        size, offset = struct.unpack("<II", body[14 + 16 * index : 22 + 16 * index])
        places.setdefault(offset, (index, size))
    read = sum(size for _index, size in places.values())
    if read > READ_FACTOR * len(body):
        raise TooManyPixels(
            f"ICO images overlap: {read} bytes to read in a file of {len(body)} bytes"
        )
    return places


def _is_png(image: _Bytes) -> bool:
    return bytes(image[:8]) == pngdata.SIGNATURE


def _extent(view: memoryview, offset: int, places: dict, size: int) -> memoryview:
    """The bytes of the image at ``offset``: a PNG, its entry's (Chromium cuts it there
    too); a DIB, up to the next image's offset or the end of the file. Windows and
    Chromium read a DIB by its own header, so a dwBytesInRes short of its mask is no
    damage; but rows that run into the next image are missing ones (until 2026-12-01 a
    DIB was read to the end of the file: one cut short was ``ok`` when another image
    followed, and 256 entries could share one region of rows; a review's)."""
    if _is_png(view[offset:]):
        return view[offset : offset + size]
    return view[offset : min((at for at in places if at > offset), default=len(view))]


def _size(image: _Bytes, index: int, walked: int) -> tuple[tuple[int, int, int], int]:
    """(width, height, pixels of every frame) of ``image`` from its headers (IHDR and
    fcTL, or the DIB header): nothing is inflated before every image is sized (a review's,
    2026-12-01: 32 PNGs of a split IDAT run were each inflated first, 25 s); and the PNG
    chunks walked in the file, ``walked`` before this image (``pngchunks``)."""
    what = f"ICO image {index + 1}"
    if _is_png(image):
        # Its chunks and CRCs first (damage found there stays corrupt), but no run of
        # IDAT inflated: the walk inflates a split first run only within max_pixels (0).
        walked = _named(lambda png: structure.png(png, 0, walked, in_icon=True), image, what)
        width, height = struct.unpack(">II", image[16:24])
        frames = sum(w * h for w, h in pngdata.frame_sizes(image))
        return (width, height, max(frames, width * height)), walked
    if not bitmap.is_dib(image):
        raise Corrupt(f"{what}: neither a PNG nor a DIB header (damaged)")
    width, height = _named(bitmap.icon_size, image, what)
    return (width, height, width * height), walked


def _named(rule: Callable[[_Bytes], _T], image: _Bytes, what: str) -> _T:
    """``rule(image)``, its Corrupt text starting with ``what`` (which image)."""
    try:
        return rule(image)
    except Corrupt as failure:
        raise Corrupt(f"{what}: {failure}") from None


def _png_image(png: bytes, text: pngancillary.Budget) -> Image.Image:
    """A PNG image, as Pillow reads the one it shows (without the ancillary chunks libpng
    skips: ``pngancillary``)."""
    return Image.open(io.BytesIO(pngancillary.for_pillow(png, text)), formats=["PNG"])


def _dib_image(dib: _Bytes) -> Image.Image:
    """The colour rows of ``dib``, as ``IcoFile.frame`` sets them up (the mask's bytes
    were found by ``bitmap.icon``), its depth from its own header."""
    image = BmpImagePlugin.DibImageFile(io.BytesIO(dib))  # one image's bytes, once
    image._size = (image.size[0], image.size[1] // 2)  # the XOR rows; the AND mask follows
    codec, _box, start, args = image.tile[0]
    image.tile[0] = ImageFile._Tile(codec, (0, 0, *image.size), start, args)
    return image


def _decode(opened: Callable[[], Image.Image], what: str, words: Callable[[str], str]) -> None:
    """Open and decode one image; Pillow's failures become Corrupt naming ``what``, in
    ``words`` (a PNG's "image file is truncated": ``pngdata.pillow_reason``)."""
    try:
        with opened() as image:
            image.load()
    except (Image.DecompressionBombError, Corrupt):
        raise
    except Exception as exc:  # Pillow raises many types for damaged data
        reason = words(str(exc) or type(exc).__name__)
        raise Corrupt(f"{what}: cannot decode it: {reason}"[:500]) from None
