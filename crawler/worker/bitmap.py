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
masks' rows unpadded (``(width + 7) // 8`` bytes), and those files are accepted.
"""

from __future__ import annotations

import struct

from crawler.exceptions import Corrupt

UNCOMPRESSED = {0, 3, 6}  # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS
MASKS = {3: 12, 6: 16}  # bytes of bit-field masks after a 40-byte header
CORE = 12  # BITMAPCOREHEADER (OS/2 1.x): 16-bit sides, 3-byte palette entries


def header(dib: bytes) -> tuple[int, int, int, int, int, int]:
    """(header size, width, height, bits a pixel, compression, colours used) of a DIB
    header; Corrupt if it is cut short. Height keeps its sign (negative: top-down)."""
    size = int.from_bytes(dib[:4], "little")
    if size == CORE and len(dib) >= CORE:
        width, height, _planes, bits = struct.unpack("<HHHH", dib[4:12])
        return size, width, height, bits, 0, 0
    if size < 40 or len(dib) < 40:
        raise Corrupt("BMP ends inside its header (truncated)")
    width, height, _planes, bits, compression = struct.unpack("<iiHHI", dib[4:20])
    used = int.from_bytes(dib[32:36], "little")
    return size, width, height, bits, compression, used


def row_bytes(width: int, bits: int) -> int:
    """Bytes of one row: ``width`` pixels of ``bits`` rounded up to 4 bytes."""
    return (abs(width) * bits + 31) // 32 * 4


def bmp(body: bytes) -> None:
    """A BMP file: its uncompressed rows, from bfOffBits on, inside the file."""
    if len(body) < 18:
        raise Corrupt("BMP ends inside its header (truncated)")
    start = int.from_bytes(body[10:14], "little")
    _size, width, height, bits, compression, _used = header(body[14:])
    if compression in UNCOMPRESSED and start + abs(height) * row_bytes(width, bits) > len(body):
        raise Corrupt("BMP ends before its pixel rows (truncated)")


def icon(dib: bytes) -> tuple[int, int]:
    """An ICO's BMP image: its size (width, colour rows), once its rows and mask are
    found inside ``dib``, the bytes its directory entry gives it."""
    size, width, height, bits, compression, used = header(dib)
    rows = abs(height) // 2
    if compression not in UNCOMPRESSED:
        return abs(width), rows
    colours = used or (1 << bits if bits <= 8 else 0)
    start = size + MASKS.get(compression, 0) * (size == 40) + colours * (3 if size == CORE else 4)
    need = start + rows * row_bytes(width, bits)
    if bits != 32:  # the mask's rows, at least unpadded: Pillow writes them so
        need += rows * ((abs(width) + 7) // 8)
    if need > len(dib):
        raise Corrupt("BMP ends before its pixel rows (truncated)")
    return abs(width), rows
