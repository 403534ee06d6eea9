"""libpng's rules for a PNG's header, palette and image data, applied as the chunks pass.

Every CRC can be right and the file still be one libpng refuses with an error (browsers
built on it show nothing), while Pillow reads it: until 2026-12-01 such files were
stored as ``ok`` (a fresh user's, 2026-12-01). What libpng 1.6 only warns about, or
treats as a benign error, stays accepted here too. Sources: libpng 1.6
``png_handle_IHDR``, ``png_handle_PLTE`` (pngrutil.c), ``png_check_IHDR`` and
``png_set_PLTE`` (png.c, pngset.c), ``png_read_info`` and ``png_read_IDAT_data``
(pngread.c, pngrutil.c); W3C PNG 3rd ed. 5.6 (chunk order), 11.2 (IHDR, PLTE) and
10.1 (zlib: no preset dictionary).

- IHDR: 13 bytes; width and height 1 to 2^31-1; a bit depth its colour type allows;
  compression method 0, filter method 0, interlace method 0 or 1.
- PLTE: one at most (a second is an error even in a greyscale image); in a palette
  image (colour type 3) before the first IDAT, 1 to 256 entries of 3 bytes. A palette
  with more entries than the bit depth reaches is truncated by libpng, silently: kept.
  In a truecolour image a PLTE of the wrong length, or after IDAT, is a benign error
  (an empty one is an error: png_set_PLTE's "Invalid palette"); in a greyscale image
  any PLTE is ignored: both kept.
- IDAT: consecutive while the rows still need data ("Not enough image data" when
  another chunk comes first; a later run after every row is libpng's benign "Too many
  IDATs found"). Each image data stream (IDAT's, each APNG frame's fdAT) starts with a
  zlib header naming deflate, with a right check and no preset dictionary.
"""

from __future__ import annotations

import struct

from crawler.exceptions import Corrupt
from crawler.worker import pngdata

# Colour type -> bit depths allowed (W3C PNG 3rd ed. table 11.1; png_check_IHDR).
DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
LARGEST = 0x7FFF_FFFF  # png_get_uint_31: "PNG unsigned integer out of range"
PALETTE = 3


def ihdr(data: bytes) -> None:
    """IHDR's fields, as png_handle_IHDR and png_check_IHDR judge them."""
    if len(data) != 13:
        raise Corrupt(f"PNG's IHDR chunk has {len(data)} bytes, not 13 (libpng: IHDR invalid)")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", data
    )
    for side, value in (("width", width), ("height", height)):
        if not 1 <= value <= LARGEST:
            raise Corrupt(f"PNG's IHDR names {side} {value} (libpng: invalid image {side})")
    if colour not in DEPTHS:
        raise Corrupt(f"PNG's IHDR names colour type {colour} (libpng: invalid color type)")
    if depth not in DEPTHS[colour]:
        raise Corrupt(
            f"PNG's IHDR names bit depth {depth} for colour type {colour} "
            "(libpng: invalid color type/bit depth combination)"
        )
    fields = (("compression", compression, 0), ("filter", filtering, 0))
    for name, value, largest in (*fields, ("interlace", interlace, 1)):
        if value > largest:
            raise Corrupt(f"PNG's IHDR names {name} method {value} (libpng: unknown {name} method)")


class Walk:
    """The state of one PNG's walk (``structure.png``): feed each chunk, in order."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.colour = body[25] if len(body) > 25 else 0
        self.palettes = 0
        self.last = b"IHDR"
        self.first_run: list[tuple[int, int]] = []  # (start, length) of the first IDATs
        self.runs = 0  # runs of consecutive IDAT chunks
        self.stream = b""  # the first bytes of the image data stream being read

    def chunk(self, kind: bytes, start: int, length: int) -> None:
        """Chunk ``kind`` whose data is ``length`` bytes at ``start`` of the body."""
        if kind == b"IHDR":
            ihdr(self.body[start : start + length])
        elif kind == b"PLTE":
            self._palette(length)
        elif kind == b"IDAT":
            self._idat(start, length)
        elif kind == b"fcTL":
            self.stream = b""  # each frame's fdAT chunks are a stream of their own
        elif kind == b"fdAT":
            self._header(start + 4, length - 4)
        self.last = kind

    def _palette(self, length: int) -> None:
        self.palettes += 1
        if self.palettes > 1:
            raise Corrupt("PNG has a second PLTE chunk (libpng: PLTE duplicate)")
        if not self.colour & 2 or (self.colour != PALETTE and self.runs):
            return  # greyscale: ignored; truecolour after IDAT: a benign error
        if self.colour == PALETTE:
            wrong = not length or length % 3 or length > 3 * 256
        else:  # a wrong length is benign here, an empty palette is not (png_set_PLTE)
            wrong = not length
        if wrong:
            raise Corrupt(
                f"PNG's PLTE chunk has {length} bytes, not 3 for each of 1 to 256 "
                "colours (libpng: PLTE invalid)"
            )

    def _idat(self, start: int, length: int) -> None:
        if self.colour == PALETTE and not self.palettes:
            raise Corrupt(
                "PNG has a palette (colour type 3) but no PLTE chunk before its image "
                "data (libpng: missing PLTE before IDAT)"
            )
        if self.last != b"IDAT":
            self.runs += 1
            if self.runs == 2:
                self._first_run_whole()
        if self.runs == 1:
            self.first_run.append((start, length))
            self._header(start, length)

    def _first_run_whole(self) -> None:
        """A second run of IDAT chunks: libpng reads rows from the first run only."""
        data = b"".join(self.body[s : s + n] for s, n in self.first_run)
        width, height = struct.unpack(">II", self.body[16:24])
        needed = pngdata.row_bytes(width, height, self.body)
        if pngdata.inflated_size(data, needed) < needed:
            raise Corrupt(
                f"PNG's IDAT chunks are not consecutive: a {self.last.decode('latin-1')!r} "
                "chunk splits its image data (libpng: not enough image data)"
            )

    def _header(self, start: int, length: int) -> None:
        """The zlib header (RFC 1950 2.2) of a stream: its first two bytes, which may
        lie in more than one chunk (a file of 1-byte IDATs is valid)."""
        if len(self.stream) >= 2 or length <= 0:
            return
        self.stream += self.body[start : start + min(length, 2 - len(self.stream))]
        if len(self.stream) < 2:
            return
        method, flags = self.stream
        if method & 0x0F != 8 or method >> 4 > 7 or (method << 8 | flags) % 31:
            raise Corrupt("PNG's image data does not start with a deflate zlib header (damaged)")
        if flags & 0x20:
            raise Corrupt(
                "PNG's image data asks for a preset zlib dictionary, which PNG does not "
                "allow (PNG 10.1; libpng: missing LZ dictionary)"
            )
