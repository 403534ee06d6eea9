"""Whole-file checks: a file's own structure says where it ends, and it must get there.

Decoders stop when they have the pixels they want, and Pillow tolerates a missing end
(a GIF without its trailer, a PNG without IEND) or an unread checksum, so a truncated
or damaged download can decode "fine". Each check here walks the container of one
format, using only its length fields, and raises ``Corrupt`` when the file ends before
its structure does or a checksum that guards the header or pixels is wrong. Bytes
*after* a complete image are accepted: cameras and editors append data.

Sources: PNG (ISO/IEC 15948, W3C PNG 3rd ed. sections 5.3-5.6; CRC handling as libpng:
critical chunks are checked, an ancillary chunk with a bad CRC is ignored (Pillow is
given the file without it: ``pngancillary``); libpng's rules for IHDR, PLTE and IDAT
in ``pngrules``; at most pngchunks.MAX_CHUNKS chunks), GIF89a (sections 17-27; walked
in ``framecount``, where its frames are counted), RIFF/WebP container, TIFF 6.0 (section
2; at most framecount.MAX_PAGES pages), ICO (Microsoft's ICONDIR; each image in it:
``icon``), BMP (its rows: ``bitmap``), ISO/IEC 14496-12 (ISO base media boxes, for
AVIF). JPEG is checked by libjpeg itself (``verify``), with
its warnings made errors.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import NamedTuple

from crawler.exceptions import Corrupt
from crawler.worker import bitmap, framecount, pngancillary, pngchunks, pngrules

# TIFF field types -> bytes per value (TIFF 6.0 section 2, "Types").
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_CHUNK_HEAD = struct.Struct(">I4s")  # a PNG chunk's length and type
_CRC = struct.Struct(">I")  # and its CRC, after its data
_PNG_CRITICAL = {b"IHDR", b"PLTE", b"IDAT", b"IEND"}  # PNG 5.6: all the critical chunks
_IMAGE_BOXES = {b"ftyp", b"meta", b"mdat"}  # an AVIF's top-level boxes (ISO/IEC 23000-22)


class Walked(NamedTuple):
    """What a walk of a file's container found, before any decoding."""

    canvases: list[tuple[int, int]]  # GIF: the canvas at each frame; [] for the others
    end: int  # where the image ends: what follows was appended (a GIF: past its trailer)


def check(format_name: str, body: bytes, max_pixels: int) -> Walked:
    """Raise Corrupt if ``body``, identified as ``format_name``, ends before its structure
    does or fails a checksum that guards its header or pixels.

    Returns the canvas size (width, height) at each frame where the container says it
    before any decoding (GIF: a frame may lie outside the logical screen, and Pillow
    then grows the canvas, allocating it as it seeks), and where the image ends. The
    walks that read pixel data (a PNG's split IDAT runs, a BMP's rows) do so only for a
    header within ``max_pixels``: a larger one is ``too_many_pixels`` (verify's size
    check)."""
    if format_name == "GIF":
        return Walked(*framecount.gif(body))  # its frames counted there, and bounded
    sized = _SIZED.get(format_name)
    if sized is not None:
        sized(body, max_pixels)
    elif (walker := _WALKERS.get(format_name)) is not None:
        walker(body)
    return Walked([], len(body))


def png(body: bytes, max_pixels: int, walked: int = 0, *, in_icon: bool = False) -> int:
    """Every chunk whole and in place, guarded ones with their CRC right, libpng's rules
    for header, palette and image data kept (``pngrules``), up to IEND, and at most
    ``pngchunks.MAX_CHUNKS`` chunks in the file: ``walked`` were counted before (the
    other PNGs of an ICO, ``in_icon``); returns the count with this PNG's."""
    pos, seen_idat, rules = 8, False, pngrules.Walk(body, max_pixels)
    announced, controls = None, 0  # APNG: acTL's num_frames, and the fcTL chunks found
    view = memoryview(body)  # CRCs read in place: no copy of each chunk
    while True:
        if walked == pngchunks.MAX_CHUNKS:  # before any more work: the walk stops here
            raise pngchunks.refuse(in_icon)
        walked += 1
        if pos + 8 > len(body):
            raise Corrupt("PNG ends before its IEND chunk (truncated)")
        length, kind = _CHUNK_HEAD.unpack_from(body, pos)
        end = pos + 12 + length
        if length > 0x7FFF_FFFF or end > len(body):
            raise Corrupt(f"PNG chunk {kind!r} runs past the end of the file (truncated)")
        guarded = kind in pngancillary.GUARDED or not kind[:1].islower()
        if guarded and zlib.crc32(view[pos + 4 : end - 4]) != _CRC.unpack_from(body, end - 4)[0]:
            raise Corrupt(f"PNG chunk {kind.decode('latin-1')!r} fails its CRC (damaged)")
        _png_order(kind, pos)
        rules.chunk(kind, pos + 8, length)
        seen_idat = seen_idat or kind == b"IDAT"
        if kind == b"acTL" and length >= 4:
            announced = int.from_bytes(view[pos + 8 : pos + 12], "big")
        controls += kind == b"fcTL"
        if kind == b"IEND":
            if not seen_idat:
                raise Corrupt("PNG has no image data (IDAT)")
            if announced is not None and announced != controls:
                # APNG 1.0: num_frames "must equal the number of fcTL chunks"; 0 is invalid.
                raise Corrupt(f"APNG announces {announced} frames in acTL, has {controls}")
            return walked
        pos = end


def _png_order(kind: bytes, pos: int) -> None:
    """libpng's errors (browsers refuse such a file; Pillow reads it): a critical chunk
    it does not know ("unknown critical chunk"), an IHDR anywhere but first ("out of
    place"). Until 2026-12-01 both were stored as ``ok``."""
    if not kind[:1].islower() and kind not in _PNG_CRITICAL:
        raise Corrupt(f"PNG has an unknown critical chunk {kind.decode('latin-1')!r}")
    if (kind == b"IHDR") != (pos == 8):
        raise Corrupt("PNG has its IHDR chunk out of place (it must come first, once)")


def for_pillow(format_name: str, body: bytes, walked: Walked) -> bytes:
    """The bytes Pillow is given to decode ``body`` (its container ``walked`` before):
    a PNG without the ancillary chunks libpng skips (``pngancillary``); the others
    up to where their image ends. Bytes after a complete image are accepted (this
    module's rule), but Pillow reads a GIF's on past its trailer: a second copy appended
    was "GIF announces 2 frames, 1 read", a stray byte an error of Python's struct
    module, ``corrupt`` both (a fresh user's, 2026-12-01)."""
    if format_name == "PNG":
        return pngancillary.for_pillow(body)
    return body if walked.end == len(body) else body[: walked.end]


def webp(body: bytes) -> None:
    declared = int.from_bytes(body[4:8], "little") + 8
    if len(body) < 12 or declared > len(body):
        raise Corrupt(f"WebP's RIFF header says {declared} bytes, the file has {len(body)}")


def tiff(body: bytes) -> None:
    """Every IFD in the chain, and the strips or tiles each one points to, in the file."""
    order = "<" if body[:2] == b"II" else ">"
    offset, seen = _u32(body, order, 4), set()
    while offset:
        if offset in seen:
            raise Corrupt("TIFF's directory chain loops (damaged)")
        if len(seen) == framecount.MAX_PAGES:  # each page is read and decoded after this
            raise framecount.refuse(f"TIFF has at least {len(seen) + 1} pages", len(seen))
        seen.add(offset)
        count = _u16(body, order, offset)
        entries = {}
        for i in range(count):
            tag, kind, n, value = _entry(body, order, offset + 2 + 12 * i)
            entries[tag] = (kind, n, value)
        _tiff_data_in_file(body, order, entries)
        offset = _u32(body, order, offset + 2 + 12 * count)


def _tiff_data_in_file(body: bytes, order: str, entries: dict) -> None:
    for offsets_tag, counts_tag in ((273, 279), (324, 325)):  # strips, tiles
        if offsets_tag in entries and counts_tag in entries:
            starts = _values(body, order, *entries[offsets_tag])
            sizes = _values(body, order, *entries[counts_tag])
            if any(s + n > len(body) for s, n in zip(starts, sizes, strict=False)):
                raise Corrupt("TIFF image data runs past the end of the file (truncated)")


def _entry(body: bytes, order: str, pos: int) -> tuple[int, int, int, int]:
    """(tag, type, count, where the value or its offset is); a value stored out of the
    entry must lie in the file too."""
    if pos + 12 > len(body):
        raise Corrupt("TIFF ends inside a directory (truncated)")
    tag, kind, n = struct.unpack(order + "HHI", body[pos : pos + 8])
    size = _TYPE_SIZES.get(kind, 1) * n
    if size > 4 and _u32(body, order, pos + 8) + size > len(body):
        raise Corrupt(f"TIFF tag {tag}'s values run past the end of the file (truncated)")
    return tag, kind, n, pos + 8


def _values(body: bytes, order: str, kind: int, n: int, at: int) -> list[int]:
    width = {3: 2, 4: 4}.get(kind)  # SHORT or LONG
    if width is None:
        raise Corrupt(f"TIFF offsets of type {kind} (damaged)")
    if width * n > 4:  # the values do not fit in the entry: it holds their offset
        at = _u32(body, order, at)
    code = "H" if width == 2 else "I"
    if at + width * n > len(body):
        raise Corrupt("TIFF ends inside an offsets table (truncated)")
    return list(struct.unpack(f"{order}{n}{code}", body[at : at + width * n]))


def _u16(body: bytes, order: str, pos: int) -> int:
    if pos + 2 > len(body):
        raise Corrupt("TIFF ends inside a directory (truncated)")
    return struct.unpack(order + "H", body[pos : pos + 2])[0]


def _u32(body: bytes, order: str, pos: int) -> int:
    if pos + 4 > len(body):
        raise Corrupt("TIFF ends inside a header or directory (truncated)")
    return struct.unpack(order + "I", body[pos : pos + 4])[0]


def ico(body: bytes) -> None:
    count = int.from_bytes(body[4:6], "little")
    if count == 0 or 6 + 16 * count > len(body):
        raise Corrupt("ICO directory is empty or cut short (truncated)")
    for i in range(count):
        size, offset = struct.unpack("<II", body[6 + 16 * i + 8 : 6 + 16 * i + 16])
        if offset + size > len(body):
            raise Corrupt(f"ICO image {i + 1} runs past the end of the file (truncated)")


def isobmff(body: bytes) -> None:
    """Top-level boxes (AVIF): each box that starts before the image's boxes (ftyp,
    meta, mdat) are all whole must end inside the file; what follows them is appended
    (until 2026-12-01 a trailer whose bytes 4-8 were printable, a camera's, was read as
    a box running past the end: ``corrupt``)."""
    pos, kinds = 0, set()
    while pos + 8 <= len(body) and not kinds >= _IMAGE_BOXES:
        size, kind = struct.unpack(">I4s", body[pos : pos + 8])
        if not all(32 <= b < 127 for b in kind):
            break  # not a box: bytes appended after the image
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if pos + 16 > len(body):
                raise Corrupt(f"box {kind!r} is cut inside its header (truncated)")
            size, header = int.from_bytes(body[pos + 8 : pos + 16], "big"), 16
        end = len(body) if size == 0 else pos + size
        if end > len(body) or end < pos + header:
            raise Corrupt(
                f"box {kind.decode('latin-1')!r} runs past the end of the file (truncated)"
            )
        kinds.add(kind)
        pos = end
    if not kinds >= _IMAGE_BOXES:
        raise Corrupt("the file ends before its image boxes (truncated)")


_SIZED: dict[str, Callable[[bytes, int], object]] = {"PNG": png, "BMP": bitmap.bmp}
_WALKERS: dict[str, Callable[[bytes], object]] = {
    "WEBP": webp,
    "TIFF": tiff,
    "ICO": ico,
    "AVIF": isobmff,
}
