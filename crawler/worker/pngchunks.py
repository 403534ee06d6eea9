"""How many chunks one PNG may hold: a fixed bound, counted in its container walk.

Every chunk of a PNG is handled in Python, several times: the container walk
(``structure.png``), the copy Pillow is given (``pngancillary``), the rows' count
(``pngdata``) and Pillow's own reader (PngImagePlugin: a method call, a CRC, for text a
dict entry, for an IDAT a decoder call), about 4.5 us a chunk in all (one thread,
2026-12-01; 8 us on a loaded host). Nothing bounded the count: 400,000 tiny tEXt or
empty ancillary chunks (5-6 MB) took 3.3-4.6 s of a download thread and were ``ok``,
200,000 1-byte IDATs 1.1 s, and --max-bytes (50 MiB) of 12-byte chunks, 4.4 million of
them, would take 20 to 40 s, every night (two engineers', 2026-12-01).

MAX_CHUNKS holds for all the chunks of one PNG, of every kind (IHDR to IEND: ancillary,
IDAT, APNG's acTL, fcTL and fdAT), and for all the PNGs one ICO holds together (one
budget a file, as for its text: ``pngancillary.Budget``). ``structure.png`` counts them
and stops at the first past the bound, before any other walk or Pillow reads the file
(an ICO's PNGs are walked there first, by ``icon``). The status is ``too_many_pixels``,
the frames' (``framecount``): permanent, a fixed bound, not --max-pixels.

Refused, not skipped. libpng 1.6 keeps at most ``user_chunk_cache_max`` (1000, its
PNG_USER_CHUNK_CACHE_MAX) text, sPLT and stored unknown chunks: past it each is
discarded, a benign error "no space in chunk cache" (a warning when reading:
pngrutil.c, ``png_handle_tEXt`` and its kin, ``png_handle_unknown``), and browsers show
the file. But libpng still reads every chunk past its cache and checks its CRC
(``png_crc_finish``), in C, at tens of nanoseconds. Skipping here would still take a
Python step a chunk to follow the lengths to IEND (0.22 us the bare loop: about 1 s for
50 MiB of 12-byte chunks, and more with a larger --max-bytes, so no fixed bound), and it
would keep no real file: encoders write a few ancillary chunks, tens at most, and text
past 1000 chunks is lost in every libpng reader anyway.

Why 100,000: real encoders write far fewer. IDAT chunks are cut at the writer's
buffer: 8 KiB in libpng (PNG_ZBUF_SIZE, pnglibconf.h), 32 KiB in Java's ImageIO and
Go's image/png, 64 KiB in Pillow (ImageFile.MAXBLOCK); 100,000 chunks of 8 KiB are
800 MB, 16 times the default --max-bytes. A writer that flushes every row (libpng's
``png_set_flush(png_ptr, 1)``) writes an IDAT a row: 100,000 rows. An APNG at
``framecount.MAX_FRAMES`` (10,000 frames) holds about 20,000 (an fcTL and an fdAT a
frame). The worst file still accepted, 100,000 tiny chunks, verifies in about 0.5 s,
as 10,000 frames of 1 x 1 do; one past it is refused in about 0.1 s.
"""

from __future__ import annotations

from crawler.exceptions import TooManyPixels
from crawler.worker import framecount

MAX_CHUNKS = 100_000


def refuse(in_icon: bool) -> TooManyPixels:
    """The failure for a PNG (or, ``in_icon``, the PNGs of an ICO together) that holds
    more than MAX_CHUNKS chunks."""
    said = "ICO's PNG images have" if in_icon else "PNG has"
    return framecount.refuse(f"{said} at least {MAX_CHUNKS + 1} chunks", MAX_CHUNKS)
