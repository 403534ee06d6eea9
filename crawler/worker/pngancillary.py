"""The copy of a PNG Pillow is given: without the ancillary chunks libpng skips.

libpng skips an ancillary chunk it cannot use, with a warning or a benign error (a
warning when reading: ``png_create_read_struct`` sets PNG_FLAG_BENIGN_ERRORS_WARN), and
draws the image; browsers never draw text. Pillow refuses the whole file for several
of them, and until 2026-12-01 each was stored as ``corrupt``, for good (a fresh
user's, 2026-12-01: an 8 x 8 PNG of 102 KB whose zTXt inflates to 100 MiB, shown by
Chromium, was "Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK").
Sources: libpng 1.6 pngrutil.c (``png_crc_finish``, ``png_handle_chunk``,
``png_handle_tEXt``, ``png_handle_zTXt``, ``png_handle_iTXt``, ``png_handle_iCCP``,
``png_decompress_chunk`` and its limit ``png_chunk_max``), Pillow's PngImagePlugin.

Dropped here, wherever they lie (before, between or after the IDAT and fdAT chunks):

- an ancillary chunk whose CRC is wrong (PNG_CRC_DEFAULT: warn and discard);
- tEXt, zTXt, iTXt whose text is TEXT_CHUNK_LIMIT bytes or more (libpng's
  ``png_chunk_max``, 8,000,000: "length exceeds libpng limit", or the inflate stops:
  benign; Pillow: MAX_TEXT_CHUNK), a zTXt of an unknown compression method or damaged
  zlib data (benign), and any text past TEXT_MEMORY_LIMIT for the whole file (Pillow:
  "Too much memory used in text chunks", MAX_TEXT_MEMORY);
- an iCCP without a compression method 0 after its name, or whose profile inflates to
  TEXT_CHUNK_LIMIT or more (benign "too short", "too long"; Pillow raised for both);
- a tRNS, gAMA, cHRM, sRGB or pHYs shorter than its fields (benign "invalid"; Pillow:
  "Truncated ... chunk").

Bounded work: a compressed chunk is inflated a piece at a time and only counted (never
held), and all the inflating of one file, counted or kept, stops at TEXT_MEMORY_LIMIT:
past it, every later compressed chunk is dropped unread. The container was walked
before (``structure.png``): only the bytes given to Pillow change, never the stored ones.
"""

from __future__ import annotations

import struct
import zlib

from PIL import PngImagePlugin

from crawler.worker.pngdata import count_inflated

# libpng 1.6's PNG_USER_CHUNK_MALLOC_MAX (pnglibconf.h), ``png_chunk_max``: the most a
# chunk, or its inflated text or profile, may hold. Until 2026-12-01 Pillow was given
# 64 MiB a chunk; text is metadata, and a thread inflated up to 128 MiB of it.
TEXT_CHUNK_LIMIT = 8_000_000
TEXT_MEMORY_LIMIT = 2 * TEXT_CHUNK_LIMIT  # all of a file's text (Pillow's MAX_TEXT_MEMORY)
# Chunks whose CRC is always checked (``structure.png``), never dropped: the critical
# ones, and APNG's frame chunks, ancillary by name but carrying frame geometry and pixels.
GUARDED = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"acTL", b"fcTL", b"fdAT"})
TEXT = frozenset({b"tEXt", b"zTXt", b"iTXt", b"iCCP"})
# Pillow's "Truncated ... chunk" (ValueError): the fields it reads, in bytes.
SHORTEST = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"pHYs": 9}
TRNS_SHORTEST = {0: 2, 2: 6}  # colour type -> a tRNS's bytes (greyscale, truecolour)
_HEAD, _CRC = struct.Struct(">I4s"), struct.Struct(">I")  # a chunk's length and type; CRC


def configure() -> None:
    """Pillow's PNG text limits, process-wide, as this module keeps them."""
    PngImagePlugin.MAX_TEXT_CHUNK = TEXT_CHUNK_LIMIT
    PngImagePlugin.MAX_TEXT_MEMORY = TEXT_MEMORY_LIMIT


def for_pillow(body: bytes, text: Budget | None = None) -> bytes:
    """``body``, or a copy without the ancillary chunks (this module's list) libpng
    skips and Pillow would refuse the file for; ``text``: the budget of its text, one
    for all the PNGs of one file (an ICO's), else the PNG's own."""
    text = text or Budget()
    colour = body[25] if len(body) > 25 else 0
    pos, spans, view = 8, [], memoryview(body)  # CRCs read in place, not from copies
    while pos + 8 <= len(body):
        length, kind = _HEAD.unpack_from(body, pos)
        end = pos + 12 + length
        if kind == b"IEND" or end > len(body):
            break
        if kind not in GUARDED and kind[:1].islower():
            crc = _CRC.unpack_from(body, end - 4)[0]
            if zlib.crc32(view[pos + 4 : end - 4]) != crc or _skipped(
                kind, body[pos + 8 : end - 4], colour, text
            ):
                spans.append((pos, end))
        pos = end
    if not spans:
        return body
    pieces, start = [], 0
    for cut, end in spans:  # one copy in all: a copy per chunk was quadratic (a review's)
        pieces.append(body[start:cut])
        start = end
    return b"".join([*pieces, body[start:]])


def _skipped(kind: bytes, data: bytes, colour: int, text: Budget) -> bool:
    """Whether libpng skips the ancillary chunk ``kind`` (its CRC right) where Pillow
    would refuse the file for it."""
    if kind in TEXT:
        return not text.fits(kind, data)
    if kind == b"tRNS":
        return len(data) < TRNS_SHORTEST.get(colour, 0)
    return len(data) < SHORTEST.get(kind, 0)


class Budget:
    """The text (and ICC profiles) of one file, in the order Pillow reads it."""

    def __init__(self) -> None:
        # Pillow's limits as they stand (``configure``; its defaults are lower): both
        # sides then agree on every chunk, whatever set them.
        self.chunk_limit = min(TEXT_CHUNK_LIMIT, PngImagePlugin.MAX_TEXT_CHUNK)
        self.left = min(TEXT_MEMORY_LIMIT, PngImagePlugin.MAX_TEXT_MEMORY)

    def fits(self, kind: bytes, data: bytes) -> bool:
        """Whether Pillow reads the chunk without refusing the file: its text within
        the chunk limit and within what the file's text has left."""
        plain, stream = _parts(kind, data)
        if stream is None:
            size, whole = len(plain), True
        elif self.left <= 0:
            return False  # the file's inflating is spent: unread
        else:
            size, whole = _inflated(stream, min(self.chunk_limit, self.left + 1))
        fits = whole and size < self.chunk_limit and size <= self.left
        if fits or stream is not None:  # kept text is held; counted text was work
            self.left -= size
        return fits


def _parts(kind: bytes, data: bytes) -> tuple[bytes, bytes | None]:
    """(the plain text, the zlib stream) of a text chunk or iCCP, as Pillow splits it;
    a stream of None: nothing to inflate. A zTXt or iCCP without compression method 0
    after its name gets an empty stream, which no inflate reads (dropped): libpng skips
    it ("unknown compression type", "too short"), Pillow refused the file."""
    _keyword, nul, rest = data.partition(b"\0")
    if kind == b"tEXt":
        return rest, None
    if kind in (b"zTXt", b"iCCP"):
        return b"", rest[1:] if nul and rest[:1] == b"\0" else b""
    if len(rest) < 2 or rest[2:].count(b"\0") < 2:
        return b"", None  # an iTXt Pillow ignores (no language or translated keyword)
    flag, method, value = rest[0], rest[1], rest[2:].split(b"\0", 2)[2]
    if not flag:
        return value, None
    return b"", value if method == 0 else None  # another method: Pillow ignores it


def _inflated(stream: bytes, cap: int) -> tuple[int, bool]:
    """(bytes ``stream`` inflates to, counted up to ``cap``; whether it is a whole zlib
    stream). An empty or damaged stream is not whole: libpng skips such a chunk."""
    found = count_inflated(stream, cap)
    return found.size, found.ended and found.error is None
