"""PNG image data that ends before the image does.

Each PNG frame's pixels are one zlib stream of filtered rows (IDAT, or an APNG frame's
fdAT chunks). A stream can be whole (its checksum right, the container intact) and still
hold fewer rows than the header announces: a file cut at a row and compressed again, or
written by a broken encoder. libpng refuses it: "Not enough image data", an error, not a
warning (``png_read_IDAT_data``: "The stream ended before the image; this is the same as
too few IDATs"). Pillow does not: its decoder stops where the stream stops (ZipDecode.c
keeps "the image and the data should end simultaneously" as a comment, not a check) and
leaves the missing rows zero, and until 2026-12-01 such a file was stored as ``ok``.

The check inflates the stream again and counts its bytes (W3C PNG 3rd ed. 7.2 and 8:
one filter byte and ceil(width * bits per pixel / 8) bytes a row, Adam7's seven passes
for an interlaced image). That costs about 40 % of a PNG's verification, so it runs only
where short data can hide: an APNG (frames after the first are drawn over the ones
before, and the default image may not be shown at all), an interlaced image one row
high, or a decoded image whose last row of its last pass is all zero bytes (rows a
stream never reached stay zero; Pillow allocates images cleared); and every PNG an ICO
holds (``icon``: icons are small).
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

from PIL import Image

from crawler.exceptions import Corrupt

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples a pixel (PNG 7.1)
# Adam7 (PNG 8.2): first row, first column, row step, column step of each pass.
ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2))
ADAM7 += ((1, 0, 2, 1),)
SIGNATURE = b"\x89PNG\r\n\x1a\n"
PIECE = 1 << 20  # bytes inflated at a time: a bomb of a stream is never held whole
_HEAD, _SIZE = struct.Struct(">I4s"), struct.Struct(">II")  # a chunk's length, type; a size


def check(body: bytes, image: Image.Image) -> None:
    """Raise Corrupt if a frame's image data of the PNG or APNG ``body`` ends before the
    rows its header (IHDR, fcTL) announces; ``image`` is Pillow's, its frame decoded.
    The container was walked before (``structure.png``): the chunks are whole."""
    animated = body.find(b"acTL", 0, body.find(b"IDAT")) >= 0  # a false hit only costs time
    if animated or _maybe_short(image):
        count_rows(body, "APNG" if animated else "PNG")


def pillow_reason(reason: str) -> str:
    """Pillow's reason for a PNG it could not decode, in the words of this module where
    it misleads: its "image file is truncated" after the container reached IEND
    (``structure.png``) means the zlib data ran out, not the file (a damaged stream)."""
    if reason.startswith("image file is truncated"):
        return "its image data ends before the image does (libpng: not enough image data)"
    return reason


def count_rows(body: bytes, what: str) -> None:
    """Raise Corrupt, its text starting with ``what``, if a frame's data of the PNG
    ``body`` (walked by ``structure.png``) holds fewer bytes than its rows need."""
    frames = _frames(body)
    for index, (width, height, data) in enumerate(frames):
        needed = row_bytes(width, height, body)
        got = inflated_size(data, needed)
        if got < needed:
            which = f" frame {index + 1}" if len(frames) > 1 else ""
            raise Corrupt(f"{what}{which} data ends before the image does ({got} of "
                          f"{needed} bytes of rows; libpng: not enough image data)")  # fmt: skip


def _maybe_short(image: Image.Image) -> bool:
    """Whether the last row the decoder would have written is still all zero bytes."""
    width, height = image.size
    interlaced = bool(image.info.get("interlace"))
    if interlaced and height < 2:
        return True  # its last pass writes part of the only row: look at the data
    last = height - 1 if not interlaced or height % 2 == 0 else height - 2  # Adam7's pass 7
    row = image.crop((0, last, width, last + 1)).tobytes()
    return row.count(0) == len(row)


def frame_sizes(body: bytes) -> list[tuple[int, int]]:
    """(width, height) of each frame whose data ``count_rows`` would inflate."""
    return [(width, height) for width, height, _parts in _frame_parts(body)]


def _frames(body: bytes) -> list[tuple[int, int, bytes]]:
    """(width, height, zlib stream) of the default image and of each fdAT frame."""
    return [(width, height, b"".join(parts)) for width, height, parts in _frame_parts(body)]


def _frame_parts(body: bytes) -> list[tuple[int, int, list[bytes]]]:
    """(width, height, the pieces of its zlib stream) of each frame with data."""
    frames: list[tuple[int, int, list[bytes]]] = []
    size = (0, 0)  # of the frame whose data follows: IHDR's, then each fcTL's
    parts: list[bytes] = []
    pos = 8
    while pos + 8 <= len(body):
        length, kind = _HEAD.unpack_from(body, pos)
        start, end = pos + 8, pos + 8 + length  # the data: sliced only where it is read
        if kind in (b"IHDR", b"fcTL") or kind == b"IEND":
            if parts:
                frames.append((*size, parts))
                parts = []
            offset = 0 if kind == b"IHDR" else 4  # fcTL: sequence number first
            if kind != b"IEND" and length >= offset + 8:
                size = _SIZE.unpack_from(body, start + offset)
        elif kind == b"IDAT":
            parts.append(body[start:end])
        elif kind == b"fdAT":
            parts.append(body[start + 4 : end])  # sequence number first
        if kind == b"IEND":
            break
        pos += 12 + length
    return frames


def row_bytes(width: int, height: int, body: bytes) -> int:
    """Bytes of filtered rows a ``width`` x ``height`` frame needs (PNG 7.2, 8.2)."""
    depth, colour, _compression, _filter, interlace = struct.unpack(">BBBBB", body[24:29])
    bits = depth * CHANNELS.get(colour, 4)
    if not interlace:
        return height * (1 + (width * bits + 7) // 8)
    total = 0
    for row0, col0, row_step, col_step in ADAM7:
        rows = (height - row0 + row_step - 1) // row_step if height > row0 else 0
        cols = (width - col0 + col_step - 1) // col_step if width > col0 else 0
        if rows and cols:
            total += rows * (1 + (cols * bits + 7) // 8)
    return total


def inflated_size(stream: bytes, needed: int) -> int:
    """Bytes ``stream`` inflates to, counted up to ``needed`` (more is libpng's benign
    "too much image data"). Raises Corrupt for a stream zlib cannot read."""
    found = count_inflated(stream, needed)
    if found.error is not None:
        raise Corrupt(f"PNG image data is damaged ({found.error})")
    return found.size


class Inflated(NamedTuple):
    """What a zlib stream inflates to (``count_inflated``)."""

    size: int  # bytes, counted up to the cap (up to the damage, if damaged)
    ended: bool  # the stream ended (within the cap)
    error: str | None  # zlib's words for damage; None: none found


def count_inflated(stream: bytes, cap: int) -> Inflated:
    """Inflate ``stream`` ``PIECE`` at a time, never holding the output, counting up to
    ``cap`` bytes."""
    inflater = zlib.decompressobj()
    got, rest = 0, stream
    try:
        while got < cap and not inflater.eof:
            out = inflater.decompress(rest, min(PIECE, cap - got))
            if not out:  # the input is used up
                break
            got, rest = got + len(out), inflater.unconsumed_tail
    except zlib.error as exc:
        return Inflated(got, False, str(exc))
    return Inflated(got, inflater.eof, None)
