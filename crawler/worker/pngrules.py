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
- PLTE (libpng >= 1.6.47, "consistency" in png_handle_PLTE): in a palette image
  (colour type 3) one, before the first IDAT, of 1 to 256 entries of 3 bytes; a
  palette with more entries than the bit depth reaches is truncated, silently: kept.
  In any other image every PLTE fault (duplicate, out of place, ignored in greyscale,
  invalid length) is a benign error: kept; only the first PLTE libpng takes in, an
  empty one, is an error (png_set_PLTE's "Invalid palette"). Until 2026-12-01 a second
  PLTE was refused in every image, libpng 1.6.46's rule (a review's, 2026-12-01).
- IDAT: consecutive while the rows still need data ("Not enough image data" when
  another chunk comes first). A later run once the first holds every row is kept:
  progressive readers (browsers) have the whole image there, and libpng's sequential
  reader calls the later run a benign "Too many IDATs found"; it errors only when the
  zlib stream's own end (its Adler-32) lies past the first run
  (png_read_finish_IDAT: "Not enough image data"), which is kept here too. The
  first run is inflated only when IHDR's size is within ``max_pixels``: a larger one
  is ``too_many_pixels`` (verify's size check, after the walk), and its data may be a
  zlib bomb (a review's, 2026-12-01: 2 MiB took 4.7 s and was called ``corrupt``).
  Each image data stream (IDAT's, each APNG frame's fdAT) starts with a zlib header
  naming deflate, with a right check and no preset dictionary.
- fcTL (APNG 1.0): 26 bytes; each frame 1 pixel or more a side, inside the IHDR
  canvas ("x_offset + width <= IHDR width"). Pillow refuses other frames, but inside
  an ICO only the first frame reaches Pillow, and ``pngdata.count_rows`` inflated
  every frame to its fcTL's size (a review's, 2026-12-01: 10 s for 4 MiB).
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


def _invalid(length: int) -> str:
    return (
        f"PNG's PLTE chunk has {length} bytes, not 3 for each of 1 to 256 colours "
        "(libpng: PLTE invalid)"
    )


class Walk:
    """The state of one PNG's walk (``structure.png``): feed each chunk, in order."""

    def __init__(self, body: bytes, max_pixels: int) -> None:
        self.body = body
        self.max_pixels = max_pixels
        self.colour = body[25] if len(body) > 25 else 0
        self.palette = False  # libpng's PNG_HAVE_PLTE: a PLTE taken in
        self.colour_chunks = False  # tRNS or bKGD seen: a later PLTE is out of place
        self.last = b"IHDR"
        self.first_run: list[tuple[int, int]] = []  # (start, length) of the first IDATs
        self.runs = 0  # runs of consecutive IDAT chunks
        self.stream = b""  # the first bytes of the image data stream being read
        self.frames = 0  # fcTL chunks seen

    def chunk(self, kind: bytes, start: int, length: int) -> None:
        """Chunk ``kind`` whose data is ``length`` bytes at ``start`` of the body."""
        if kind == b"IHDR":
            ihdr(self.body[start : start + length])
        elif kind == b"PLTE":
            self._palette(length)
        elif kind == b"IDAT":
            self._idat(start, length)
        elif kind == b"fcTL":
            self._frame(start, length)
            self.stream = b""  # each frame's fdAT chunks are a stream of their own
        elif kind == b"fdAT":
            self._header(start + 4, length - 4)
        self.colour_chunks = self.colour_chunks or kind in (b"tRNS", b"bKGD")
        self.last = kind

    def _palette(self, length: int) -> None:
        """png_handle_PLTE (libpng >= 1.6.47): its faults are errors in a palette image
        only, benign elsewhere; a PLTE it takes in goes to png_set_PLTE."""
        if self.palette:
            fault = "PNG has a second PLTE chunk (libpng: PLTE duplicate)"
        elif self.runs:
            fault = "PNG has its PLTE chunk after its image data (libpng: PLTE out of place)"
        elif not self.colour & 2:
            return  # greyscale: "ignored in grayscale PNG", benign
        elif length > 3 * 256 or length % 3:
            fault = _invalid(length)
        elif self.colour != PALETTE and self.colour_chunks:
            return  # after tRNS or bKGD in a truecolour image: benign "out of place"
        elif not length:  # png_set_PLTE's "Invalid palette", in any colour type
            raise Corrupt(_invalid(length))
        else:
            self.palette = True
            return
        if self.colour == PALETTE:
            raise Corrupt(fault)

    def _idat(self, start: int, length: int) -> None:
        if self.colour == PALETTE and not self.palette:
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
        width, height = struct.unpack(">II", self.body[16:24])
        if width * height > self.max_pixels:
            return  # too_many_pixels, said after the walk: never inflate a bomb first
        data = b"".join(self.body[s : s + n] for s, n in self.first_run)
        needed = pngdata.row_bytes(width, height, self.body)
        if pngdata.inflated_size(data, needed) < needed:
            raise Corrupt(
                f"PNG's IDAT chunks are not consecutive: a {self.last.decode('latin-1')!r} "
                "chunk splits its image data (libpng: not enough image data)"
            )

    def _frame(self, start: int, length: int) -> None:
        """An APNG frame inside its canvas (APNG 1.0, fcTL), before any data is read."""
        if length != 26:
            raise Corrupt(f"APNG's fcTL chunk has {length} bytes, not 26 (damaged)")
        self.frames += 1
        width, height, left, top = struct.unpack(">IIII", self.body[start + 4 : start + 20])
        canvas = struct.unpack(">II", self.body[16:24])
        if not (width and height) or left + width > canvas[0] or top + height > canvas[1]:
            raise Corrupt(
                f"APNG frame {self.frames}'s fcTL puts {width}x{height} at {left},{top}, "
                f"outside its {canvas[0]}x{canvas[1]} canvas (APNG 1.0)"
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
