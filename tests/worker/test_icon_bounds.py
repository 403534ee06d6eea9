"""Hostile ICO and PNG shapes cost bounded work, and ICO entries are read as Windows and
Chromium read them (a review's of the every-ICO-image change, 2026-12-01).

- Directories: entries at distinct offsets each sized to the end of the file (memory
  was N x the body), 65,535 tiny images (40 x a normal decode); a real favicon's
  1-10 images and MAX_IMAGES distinct ones stay ``ok``.
- Bombs reached before the size checks: a zlib bomb in a split IDAT run, an APNG
  frame (fcTL) outside its canvas with an fdAT bomb, alone and inside an ICO.
- Entries: a PNG whose signature is damaged, every DIB header size, a DIB whose
  directory bit count or dwBytesInRes is wrong, one whose rows run past the file.
- The image Pillow shows is decoded once. BMP texts: "truncated" only for a file that
  ends early; a BMP bomb header is ``too_many_pixels``.
Work is bounded by memory (tracemalloc) or by a generous CPU bound (10 x a control).
"""

from __future__ import annotations

import io
import random
import struct
import time
import tracemalloc
import zlib

import pytest
from PIL import Image
from samples import picture
from test_png_data import chunk
from test_png_rules import SIGNATURE, header, verdict

MAX_IMAGES = 256  # icon.MAX_IMAGES: the README names it
LONG_ROWS = "BMP's header names more pixel rows than the file holds (damaged)"

BOMB = zlib.compress(bytes(8 << 20), 9)  # 8 MiB of rows in about 8 KiB


def ico(images: list[bytes], bpp: list[int] | None = None, sizes: list[int] | None = None) -> bytes:
    """An ICO of ``images`` one after another; ``bpp`` and ``sizes`` override the
    directory's bit counts and dwBytesInRes."""
    offset, directory = 6 + 16 * len(images), b""
    for i, image in enumerate(images):
        size = sizes[i] if sizes else len(image)
        count = bpp[i] if bpp else 32
        directory += struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, count, size, offset)
        offset += len(image)
    return struct.pack("<HHH", 0, 1, len(images)) + directory + b"".join(images)


def dib(width: int, height: int, bits: int, mask: bool = True) -> bytes:
    """A Windows-style icon DIB: 40-byte header (height doubled), palette, rows, padded
    AND mask."""
    colours = 1 << bits if bits <= 8 else 0
    head = struct.pack("<IiiHHIIiiII", 40, width, 2 * height, 1, bits, 0, 0, 0, 0, 0, 0)
    rows = (width * bits + 31) // 32 * 4 * height
    masks = (width + 31) // 32 * 4 * height if mask else 0
    return head + bytes(4 * colours) + bytes(range(256)) * (rows // 256) + bytes(rows % 256 + masks)


def tiny_png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (1, 1), seed % 256).save(out, "PNG")
    return out.getvalue()


def cpu(body: bytes) -> tuple[tuple[str, str], float]:
    started = time.thread_time()
    result = verdict(body)
    return result, time.thread_time() - started


def test_entries_at_distinct_offsets_sized_to_the_end_are_never_copied() -> None:
    """64 entries at offsets 1 byte apart, each to the end of a 1 MiB file: the old code
    held 64 copies (64 MiB) before it checked one."""
    garbage = bytes(range(256)) * 4096
    count = 64
    head = 6 + 16 * count
    directory = b"".join(
        struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(garbage) - i, head + i)
        for i in range(count)
    )
    body = struct.pack("<HHH", 0, 1, count) + directory + garbage
    tracemalloc.start()
    try:
        status, text = verdict(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status in ("corrupt", "too_many_pixels"), text
    assert peak < 4 * len(body), peak


@pytest.mark.parametrize("kind", ["png", "bmp"])
def test_an_ico_of_65535_tiny_images_is_refused_at_its_directory(kind: str) -> None:
    """65,535 distinct 1 x 1 images: refused before any is read, within 10 x a normal
    decode of a PNG of as many bytes (the old code took about 40 x)."""
    images = [tiny_png(i) if kind == "png" else dib(1, 1, 24) for i in range(65_535)]
    body = ico(images)
    height = len(body) // 3072
    noise = Image.frombytes("RGB", (1024, height), random.Random(0).randbytes(3072 * height))
    out = io.BytesIO()
    noise.save(out, "PNG")
    control = cpu(out.getvalue())
    assert control[0][0] == "ok", control
    (status, text), spent = cpu(body)
    assert status == "too_many_pixels" and f"more than the {MAX_IMAGES}" in text, text
    assert spent < 10 * control[1] + 0.05, (spent, control[1])


@pytest.mark.parametrize("count", [1, 3, 10, MAX_IMAGES])
def test_real_icons_stay_ok(count: int) -> None:
    body = ico([tiny_png(i) for i in range(count)])
    assert verdict(body) == ("ok", "")


def split_bomb(colour: int, between: bytes) -> bytes:
    """IHDR 10^6 x 10^6, a first IDAT run that is a zlib bomb, another chunk, a second
    IDAT run (empty)."""
    ihdr = chunk(b"IHDR", header(10**6, 10**6, 8, colour))
    plte = chunk(b"PLTE", bytes(48)) if colour == 3 else b""
    idats = chunk(b"IDAT", BOMB) + chunk(between, b"k\0v" if between == b"tEXt" else bytes(9))
    return SIGNATURE + ihdr + plte + idats + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


@pytest.mark.parametrize("colour", [0, 2, 3, 6])
@pytest.mark.parametrize("between", [b"tEXt", b"pHYs"])
@pytest.mark.parametrize("inside", [False, True])
def test_a_bomb_in_a_split_idat_run_is_too_many_pixels_unread(
    colour: int, between: bytes, inside: bool
) -> None:
    """The first run was inflated up to the rows of IHDR before any size check (4.7 s
    for 2 MiB, then ``corrupt`` blaming the chunk order)."""
    body = split_bomb(colour, between)
    body = ico([body]) if inside else body
    (status, text), spent = cpu(body)
    assert status == "too_many_pixels", text
    assert spent < 0.5, spent  # inflating the bomb takes seconds


def apng(frame: tuple[int, int, int, int], data: bytes) -> bytes:
    """A 4 x 4 RGB APNG of 2 frames: the default image, then ``frame`` (width, height,
    x, y) with ``data`` as its fdAT stream."""
    rows = zlib.compress(bytes(4 * 13))
    control = struct.pack(">IIIIIHHBB", 0, 4, 4, 0, 0, 1, 10, 0, 0)
    second = struct.pack(">IIIIIHHBB", 1, *frame, 1, 10, 0, 0)
    return (
        SIGNATURE + chunk(b"IHDR", header(4, 4, 8, 2)) + chunk(b"acTL", struct.pack(">II", 2, 0))
        + chunk(b"fcTL", control) + chunk(b"IDAT", rows) + chunk(b"fcTL", second)
        + chunk(b"fdAT", struct.pack(">I", 2) + data) + chunk(b"IEND", b"")
    )  # fmt: skip


FRAMES = [(4, 4, 0, 0), (2, 2, 2, 2), (1, 4, 3, 0), (5, 4, 0, 0), (4, 5, 0, 0), (2, 2, 3, 0)]
FRAMES += [(2, 2, 0, 3), (10**6, 10**6, 0, 0), (1, 1, 2**31, 0), (0, 4, 0, 0), (4, 0, 0, 0)]


@pytest.mark.parametrize("frame", FRAMES)
@pytest.mark.parametrize("inside", [False, True])
def test_an_apng_frame_must_lie_inside_its_canvas(frame: tuple, inside: bool) -> None:
    """APNG 1.0: x_offset + width <= IHDR width, y_offset + height <= IHDR height, both
    sides 1 or more. Inside an ICO only the first frame reaches Pillow: a frame of
    10^6 x 10^6 had its fdAT bomb inflated (10 s for 4 MiB)."""
    width, height, left, top = frame
    fits = width and height and left + width <= 4 and top + height <= 4
    rows = zlib.compress(bytes((1 + 3 * width) * height)) if fits else BOMB
    body = apng(frame, rows)
    (status, text), spent = cpu(ico([body]) if inside else body)
    if fits:
        assert status == "ok", text
    else:
        assert status == "corrupt" and "outside its 4x4 canvas (APNG 1.0)" in text, text
    assert spent < 0.5, spent


@pytest.mark.parametrize("at", range(8))
def test_a_png_entry_whose_signature_is_damaged_is_neither(at: int) -> None:
    """One signature byte changed (or a text-mode transfer's \\r -> \\n) was read as a DIB
    header of 370805261 x 109051904 pixels: ``too_many_pixels``."""
    out = io.BytesIO()
    picture(48, 48, mode="RGBA").save(out, "ICO", sizes=[(16, 16), (48, 48)])
    body = out.getvalue()
    offset = max(struct.unpack("<I", body[18 + 16 * i : 22 + 16 * i])[0] for i in range(2))
    for value in {body[offset + at] ^ 0x20, 0x0A, 0x00, 0xFF} - {body[offset + at]}:
        damaged = body[: offset + at] + bytes([value]) + body[offset + at + 1 :]
        status, text = verdict(damaged)
        assert status == "corrupt", (at, value, text)
        assert text.endswith("neither a PNG nor a DIB header (damaged)"), text


@pytest.mark.parametrize("size", range(0, 130))
def test_only_known_dib_header_sizes_are_read(size: int) -> None:
    """12, 40, 52, 56, 64, 108, 124 (Pillow's BmpImagePlugin); any other is damaged."""
    image = struct.pack("<I", size) + dib(16, 16, 24)[4:] + bytes(128)
    status, text = verdict(ico([dib(32, 32, 32), image]))
    if size in (12, 40, 52, 56, 64, 108, 124):
        assert "neither" not in text, text
    else:
        assert (status, text) == (
            "corrupt",
            "ICO image 2: neither a PNG nor a DIB header (damaged)",
        )


@pytest.mark.parametrize("bits", [1, 4, 8, 24, 32])
@pytest.mark.parametrize("said", [0, 1, 8, 24, 32])
def test_a_dib_entry_is_read_by_its_own_header(bits: int, said: int) -> None:
    """The directory's bit count and dwBytesInRes do not decide (Windows and Chromium read
    the DIB from its offset): a 16 x 16 DIB, not the largest, under any bit count, or
    with dwBytesInRes short of its mask, stays ``ok``; rows past the file's end do not."""
    big, small = dib(32, 32, 32), dib(16, 16, bits)
    assert verdict(ico([big, small], bpp=[32, said])) == ("ok", "")
    short = len(small) - (4 * 16 if bits != 32 else 0) - 1
    assert verdict(ico([small, big], bpp=[said, 32], sizes=[short, len(big)])) == ("ok", "")
    status, text = verdict(ico([big, small[:-80]]))
    assert status == "corrupt" and "BMP's header names more pixel rows" in text, text


def bmp_file(width: int, height: int, cut: int = 0) -> bytes:
    out = io.BytesIO()
    picture(max(width, 2), max(height, 2)).resize((width, height)).save(out, "BMP")
    body = out.getvalue()
    return body[: len(body) - cut]


@pytest.mark.parametrize("field", [18, 22, 28])  # width, height, bits a pixel
@pytest.mark.parametrize("value", [2, 64, 1000])
def test_a_whole_bmp_with_a_changed_header_is_damaged_not_truncated(field: int, value: int) -> None:
    """bfSize says the file is whole: rows its header names past the end are damage."""
    body = bytearray(bmp_file(13, 7))
    old = int.from_bytes(body[field : field + 2], "little")
    body[field : field + 2] = value.to_bytes(2, "little")
    status, text = verdict(bytes(body))
    rows = {18: (value * 24 + 31) // 32 * 4 * 7, 22: 40 * value, 28: (13 * value + 31) // 32 * 28}
    if rows[field] > 40 * 7 and value != old:  # 13 x 7 at 24 bits: 7 rows of 40 bytes
        assert (status, text) == ("corrupt", LONG_ROWS), (status, text)
    else:
        assert status in ("ok", "corrupt") and "truncated" not in text, text
    assert verdict(bmp_file(13, 7, cut=3)) == (
        "corrupt",
        "BMP ends before its pixel rows (truncated)",
    )


@pytest.mark.parametrize("size", [0, 13, 16, 39, 41, 100, 125, 2**31])
def test_a_bmp_of_an_unknown_header_size_is_damaged(size: int) -> None:
    """formats.identify knows a BMP by its header size too: a size no DIB has (16, OS/2
    2.x's short form, is one it knows) is ``not_image``; 16 is refused by the header."""
    body = bytearray(bmp_file(13, 7))
    body[14:18] = size.to_bytes(4, "little")
    status, text = verdict(bytes(body))
    if size == 16:
        assert status == "corrupt" and text.endswith(": damaged") and "16" in text, text
    else:
        assert status == "not_image" and text.startswith("not an image"), (status, text)


@pytest.mark.parametrize("sides", [(100_000, 100_000), (4001, 1000), (-3000, 2000), (2001, -2000)])
def test_a_bmp_bomb_header_is_too_many_pixels(sides: tuple[int, int]) -> None:
    """Sizes first: a header over max_pixels with 64 bytes of pixels (``corrupt`` for the
    missing rows since the rows check came in, ``too_many_pixels`` before)."""
    body = bytearray(bmp_file(4, 4))
    body[18:26] = struct.pack("<ii", *sides)
    assert verdict(bytes(body))[0] == "too_many_pixels"
