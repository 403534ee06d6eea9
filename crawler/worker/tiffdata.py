"""TIFF image data whose damage libtiff does not report to Pillow.

Pillow decodes a compressed TIFF through libtiff, which turns most damaged data into an
error that Pillow raises ("decoder error -2": LZW, Deflate and the rest). Not all of it:
the CCITT fax decoders (compression 2, 3 and 4) print "Bad code word" on stderr and go
on at the next row, and the JPEG codec (6 and 7) passes libjpeg's corrupt-data
warnings on as warnings. Until 2026-12-01 such files were stored as ``ok``, a fax with
2,254 of its 7,680 pixels wrong (a fresh user's). Here, before any pixel is decoded:

- a page compressed with JPEG (7) has each strip or tile decoded by the strict JPEG
  decoder as well (``jpeg.decode``; a strip is an abbreviated stream that takes its
  tables from the page's JPEGTables: TIFF Technical Note 2, 2.2), so a damaged one is
  ``corrupt`` with libjpeg's own words;
- a page compressed with Deflate (8, 32946) has each strip or tile inflated to its end
  here: libtiff stops inflating once it has the rows it wants and never reads the
  stream's Adler-32 (RFC 1950), so a changed byte that still inflates gave wrong pixels
  and ``ok`` (a third of the bytes changed in a sweep);
- a page whose data cannot be checked (CCITT, old-style JPEG: TIFF 6.0 sections 10, 11
  and 22) makes the file ``unsupported_format``, saying so.

LZW, PackBits and uncompressed data carry no check at all: a changed byte there is found
only where libtiff cannot decode it, as in GIF's LZW and BMP's rows.
"""

from __future__ import annotations

import zlib
from typing import Any

from PIL import Image

from crawler.constants import ANIMATION_PIXEL_FACTOR
from crawler.exceptions import Corrupt, UnsupportedFormat
from crawler.worker import jpeg

UNCHECKED = {
    2: "CCITT modified Huffman",
    3: "CCITT Group 3",
    4: "CCITT Group 4",
    6: "old-style JPEG",
}
JPEG = 7
DEFLATE = {8, 32946}  # Adobe's and the older code (TIFF Technical Note 2 / libtiff)
PIECE = 1 << 20  # bytes inflated at a time: a bomb of a strip is never held whole
# TIFF 6.0 tags: Compression; StripOffsets, StripByteCounts; TileOffsets, TileByteCounts;
# JPEGTables (Technical Note 2).
COMPRESSION, JPEG_TABLES = 259, 347
WIDTH, LENGTH, BITS, SAMPLES = 256, 257, 258, 277
ROWS_PER_STRIP, PLANAR, TILE_SIZE = 278, 284, (322, 323)
STRIPS, TILES = (273, 279), (324, 325)  # (offsets, byte counts)
SOI = b"\xff\xd8"


def check(image: Image.Image, body: bytes, max_pixels: int) -> None:
    """Raise UnsupportedFormat for a page compressed in a way whose damage cannot be
    found, Corrupt for a JPEG strip or tile that libjpeg reads with a warning or a
    Deflate one whose stream is damaged or cut. ``image`` is Pillow's TIFF, of ``body``
    (its structure checked before: every strip and tile lies in the file); it is left
    at its first page. Pages past ANIMATION_PIXEL_FACTOR x ``max_pixels`` in all, or one
    over ``max_pixels``, are left to the size checks, which refuse them: a review's,
    2026-12-01, 100 pages naming one Deflate bomb inflated 5 GB first."""
    budget, seen = ANIMATION_PIXEL_FACTOR * max_pixels, set()
    try:
        for page in range(getattr(image, "n_frames", 1)):
            image.seek(page)
            budget -= image.width * image.height
            if budget < 0 or image.width * image.height > max_pixels:
                return
            _check_page(image.tag_v2, body, page + 1, seen)
    finally:
        image.seek(0)


def _check_page(tags: Any, body: bytes, page: int, seen: set) -> None:
    """``seen``: the (offset, size) of the strips and tiles checked on earlier pages."""
    compression = tags.get(COMPRESSION, 1)
    if compression in UNCHECKED:
        raise UnsupportedFormat(
            f"TIFF with {UNCHECKED[compression]} compression (page {page}): its damage "
            "cannot be found, so the crawler does not store it"
        )
    if compression != JPEG and compression not in DEFLATE:
        return
    tables = tags.get(JPEG_TABLES)
    # Bounds, not sizes: tiles overhang the page's edges.
    pixels = [4 * tags.get(WIDTH, 0) * tags.get(LENGTH, 0) + PIECE]
    inflated = [4 * _page_bytes(tags) + PIECE]
    for index, piece in enumerate(_pieces(tags, body, seen), start=1):
        where = f"TIFF page {page}, strip or tile {index}"
        try:
            if compression == JPEG:
                _decode_jpeg(_stream(tables, piece), where, pixels)
            else:
                _inflate(piece, where, inflated)
        except (ValueError, zlib.error) as exc:  # simplejpeg's, Pillow's OSError, zlib's
            raise Corrupt(f"{where}: {exc}") from None


def _pieces(tags: Any, body: bytes, seen: set) -> list[bytes]:
    """The strips or tiles the page is made of (TIFF 6.0 sections 3 and 15: as many as
    its rows per strip, or its tile size, and its planes need), each place once in the
    file (``seen``): the entries past those are never read by libtiff, and a repeat is
    the same bytes (a review's, 2026-12-01: 6,000 entries naming one large JPEG cost
    22 s, 100 pages naming one Deflate bomb 17 s)."""
    width, length = tags.get(WIDTH, 0), tags.get(LENGTH, 0)
    planes = tags.get(SAMPLES, 1) if tags.get(PLANAR, 1) == 2 else 1
    if TILES[0] in tags:
        across, down = tags.get(TILE_SIZE[0], 0), tags.get(TILE_SIZE[1], 0)
        if not (across and down):
            raise Corrupt("TIFF tiles without a tile size (damaged)")
        needed = -(-width // across) * -(-length // down) * planes
        offsets, counts = TILES
    else:
        rows = min(tags.get(ROWS_PER_STRIP, length) or length, length) or 1
        needed = -(-length // rows) * planes
        offsets, counts = STRIPS
    spans = zip(_many(tags.get(offsets, ())), _many(tags.get(counts, ())), strict=False)
    fresh = [span for span in dict.fromkeys(list(spans)[:needed]) if span not in seen]
    seen.update(fresh)
    return [body[start : start + size] for start, size in fresh]


def _many(value: Any) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def _decode_jpeg(stream: bytes, where: str, budget: list[int]) -> None:
    """The strict JPEG decode of one strip or tile, its frame's pixels spent from
    ``budget[0]`` before it is decoded."""
    width, height = jpeg.size(stream)
    budget[0] -= width * height
    if budget[0] < 0:
        raise Corrupt(f"{where}: its JPEG frames hold more than the page (damaged)")
    jpeg.decode(stream)


def _page_bytes(tags: Any) -> int:
    bits = tags.get(BITS, (1,))
    per_sample = -(-max(bits if isinstance(bits, tuple) else (bits,)) // 8)
    return tags.get(WIDTH, 0) * tags.get(LENGTH, 0) * tags.get(SAMPLES, 1) * per_sample


def _inflate(piece: bytes, where: str, budget: list[int]) -> None:
    """Inflate one zlib stream to its end (its Adler-32 checked), holding a piece at a
    time; ``budget[0]``, the bytes the page may still inflate to, is spent."""
    stream, data = zlib.decompressobj(), piece
    while data and not stream.eof:
        budget[0] -= len(stream.decompress(data, PIECE))
        if budget[0] < 0:
            raise Corrupt(f"{where}: inflates to more than its pixels (damaged)")
        data = stream.unconsumed_tail
    if not stream.eof:
        raise Corrupt(f"{where}: its zlib stream does not end inside it (damaged or cut)")


def _stream(tables: Any, piece: bytes) -> bytes:
    """A whole JPEG stream: ``piece`` with the page's tables (SOI, DQT/DHT, EOI) before
    its own segments, when it has tables of its own to take."""
    framed = isinstance(tables, bytes) and tables[:2] == SOI and tables[-2:] == b"\xff\xd9"
    return tables[:-2] + piece[2:] if framed and piece[:2] == SOI else piece
