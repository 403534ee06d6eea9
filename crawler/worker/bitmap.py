"""Where a BMP's (or an icon's DIB's) pixel rows end: they must lie in the file.

Pillow reads an uncompressed BMP's rows and needs no more bytes than those, so a file
missing its last row's padding (1 to 3 bytes) decoded "fine" and was stored as ``ok``
until 2026-12-01 (a fresh user's), though its header announces more. Rows of
uncompressed pixels (BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS) are ``width x bits``
rounded up to 4 bytes each (Microsoft's BITMAPINFOHEADER: "each scan line ... padded
to a DWORD boundary"); run-length encoded ones (BI_RLE8, BI_RLE4) and JPEG or PNG in a
BMP are not counted here (Pillow's decoders judge them).

An ICO's BMP image is a DIB without the file header: its height counts the colour rows
(XOR) and the transparency mask (AND, 1 bit a pixel) together, and the rows start after
the header, the bit-field masks and the colour table (Microsoft's ICONDIR / "Icons"
documentation). Pillow writes no mask after 32-bit rows (their alpha channel is the
mask), and reads none there: only the colour rows are required then; it writes other
masks' rows unpadded (``(width + 7) // 8`` bytes), and those files are accepted. As
Windows and Chromium do, an icon's DIB is judged by its own header over the bytes from
its offset up to the next image's (``icon._extent``), not by its directory entry's
size (a writer that left the mask out of dwBytesInRes, or wrote bpp 32 there for a
24-bit DIB, made such files ``corrupt`` until 2026-12-01: a review's).

Header sizes: only the DIB headers Pillow (BmpImagePlugin) and Windows read: 12
(BITMAPCOREHEADER), 40 (BITMAPINFOHEADER), 52 and 56 (its V2 and V3 with masks), 64
(OS/2 2.x), 108 (V4), 124 (V5). Any other is a damaged file, and an ICO image that
starts with neither one nor the PNG signature is neither (a PNG whose signature had
one byte changed was read as a DIB of 370805261 x 109051904 pixels until 2026-12-01).
"Truncated" is said only where the file ends early: inside the header, or before rows
its file header's bfSize says the file holds; rows a header names past a file that is
whole by its own sizes are "damaged".

Sizes come first (``structure.check``): rows are looked for only under a header
within ``max_pixels``; a larger one is ``too_many_pixels``, as it was until the rows
check came in (a review's, 2026-12-01: 100000 x 100000 with 64 bytes of pixels).
"""

from __future__ import annotations

import struct

from crawler.exceptions import Corrupt

UNCOMPRESSED = {0, 3, 6}  # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS
MASKS = {3: 12, 6: 16}  # bytes of bit-field masks after a 40-byte header
CORE = 12  # BITMAPCOREHEADER (OS/2 1.x): 16-bit sides, 3-byte palette entries
HEADERS = (CORE, 40, 52, 56, 64, 108, 124)  # the sizes Pillow's BmpImagePlugin reads
CUT_ROWS = "BMP ends before its pixel rows (truncated)"
LONG_ROWS = "BMP's header names more pixel rows than the file holds (damaged)"


def is_dib(dib: bytes) -> bool:
    """Whether ``dib`` starts with the size field of a DIB header (HEADERS)."""
    return int.from_bytes(dib[:4], "little") in HEADERS


def header(dib: bytes) -> tuple[int, int, int, int, int, int]:
    """(header size, width, height, bits a pixel, compression, colours used) of a DIB
    header; Corrupt if its size is unknown or it is cut short. Height keeps its sign
    (negative: top-down)."""
    size = int.from_bytes(dib[:4], "little")
    if len(dib) >= 4 and size not in HEADERS:
        known = ", ".join(map(str, HEADERS))
        raise Corrupt(f"BMP's header size field says {size}, not a DIB header's ({known}): damaged")
    if len(dib) < max(size, 4):
        raise Corrupt("BMP ends inside its header (truncated)")
    if size == CORE:
        width, height, _planes, bits = struct.unpack("<HHHH", dib[4:12])
        return size, width, height, bits, 0, 0
    width, height, _planes, bits, compression = struct.unpack("<iiHHI", dib[4:20])
    used = int.from_bytes(dib[32:36], "little")
    return size, width, height, bits, compression, used


def row_bytes(width: int, bits: int) -> int:
    """Bytes of one row: ``width`` pixels of ``bits`` rounded up to 4 bytes."""
    return (abs(width) * bits + 31) // 32 * 4


def bmp(body: bytes, max_pixels: int) -> None:
    """A BMP file: its uncompressed rows, from bfOffBits on, inside the file."""
    if len(body) < 18:
        raise Corrupt("BMP ends inside its header (truncated)")
    start = int.from_bytes(body[10:14], "little")
    _size, width, height, bits, compression, _used = header(body[14:])
    if abs(width * height) > max_pixels:
        return  # too_many_pixels, said by verify's size check: sizes come first
    if compression in UNCOMPRESSED and start + abs(height) * row_bytes(width, bits) > len(body):
        whole = int.from_bytes(body[2:6], "little") <= len(body)  # bfSize: the file's size
        raise Corrupt(LONG_ROWS if whole else CUT_ROWS)


def icon_size(dib: bytes) -> tuple[int, int]:
    """An ICO's BMP image's size (width, colour rows), from its header alone."""
    _size, width, height, _bits, _compression, _used = header(dib)
    return abs(width), abs(height) // 2


def icon(dib: bytes) -> None:
    """An ICO's BMP image: its rows and mask inside ``dib``, the bytes from its offset up
    to the next image's or the end of the file (whole by its directory: ``structure.ico``)."""
    size, width, height, bits, compression, used = header(dib)
    rows = abs(height) // 2
    if compression not in UNCOMPRESSED:
        return
    colours = used or (1 << bits if bits <= 8 else 0)
    start = size + MASKS.get(compression, 0) * (size == 40) + colours * (3 if size == CORE else 4)
    need = start + rows * row_bytes(width, bits)
    if bits != 32:  # the mask's rows, at least unpadded: Pillow writes them so
        need += rows * ((abs(width) + 7) // 8)
    if need > len(dib):
        raise Corrupt(LONG_ROWS)
