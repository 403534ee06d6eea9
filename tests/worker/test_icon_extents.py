"""Where each ICO image ends, and what is done before every image is sized (a review's,
2026-12-01).

- A DIB is its bytes up to the next image's offset: entries whose 40-byte headers share
  one region of rows (256 of them over 8 MiB decoded the same rows 256 times, ``ok``) are cut.
- Every PNG is sized from IHDR and fcTL before any split IDAT run is inflated: 8 PNGs
  whose split first run is a zlib bomb each were each inflated first (0.7 s each).
- The image Pillow shows is read by its own header's bit count, as the others are.
- More than 256 images: a fixed bound, said so, whatever --max-pixels.
Work is bounded by a generous CPU bound (the old code took over 10 x it).
"""

from __future__ import annotations

import struct
import time
import zlib

import pytest
from test_icon_bounds import dib, ico
from test_png_data import chunk
from test_png_rules import SIGNATURE, header, verdict

SIDE = 2000  # max_pixels (4 x 10^6) a PNG: four fit the budget of 4 x max_pixels


def cpu(body: bytes) -> tuple[tuple[str, str], float]:
    started = time.thread_time()
    result = verdict(body)
    return result, time.thread_time() - started


def test_dib_entries_sharing_their_rows_are_cut() -> None:
    """256 40-byte headers one after another, each entry's rows those after all of them:
    every one but the last runs into the next image."""
    side = 240  # 256 x 240 x 240 pixels: within 4 x max_pixels; 225 KiB of rows
    rows = bytes(range(256)) * (side * side * 4 // 256 + 1)
    head = struct.pack("<IiiHHIIiiII", 40, side, 2 * side, 1, 32, 0, 0, 0, 0, 0, 0)
    count, start = 256, 6 + 16 * 256
    directory = b"".join(
        struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, 40, start + 40 * i) for i in range(count)
    )
    body = struct.pack("<HHH", 0, 1, count) + directory + head * count + rows
    (status, text), spent = cpu(body)
    assert (status, text) == (
        "corrupt",
        "ICO image 1: BMP's header names more pixel rows than the file holds (damaged)",
    )
    assert spent < 1.0, spent  # the old code decoded 256 x 225 KiB of rows: ``ok``


def split_png(colour: int) -> bytes:
    """SIDE x SIDE, its rows in a first IDAT run, a tEXt, then an empty IDAT: the walk
    inflates the first run to see it holds every row."""
    rows = zlib.compress(bytes((SIDE * (3 if colour == 2 else 1) + 1) * SIDE), 9)
    return (
        SIGNATURE
        + chunk(b"IHDR", header(SIDE, SIDE, 8, colour))
        + chunk(b"IDAT", rows)
        + chunk(b"tEXt", b"k\0v")
        + chunk(b"IDAT", b"")
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("colour", [0, 2])
def test_pngs_are_sized_before_any_split_run_is_inflated(colour: int) -> None:
    """40 such PNGs are 10 x the budget: refused before one run is inflated, in less than
    one such PNG's own check (the old code inflated all 40 first: about 10 x that)."""
    png = split_png(colour)
    assert verdict(ico([png] * 4)) == ("ok", "")  # within the budget: walked whole
    (status, text), spent = cpu(ico([png + bytes(i) for i in range(40)]))
    assert status == "too_many_pixels" and text.startswith("40 ICO images of"), text
    (_control, _text), one = cpu(png)
    assert spent < 3 * one + 0.05, (spent, one)  # the old code: about 10 x one


@pytest.mark.parametrize("bits", [1, 4, 8, 24, 32])
@pytest.mark.parametrize("said", [0, 1, 8, 24, 32])
def test_the_shown_dib_is_read_by_its_own_header(bits: int, said: int) -> None:
    """A one-image icon, and the largest of two: the directory's bit count does not
    decide (at 32, Pillow read an alpha byte a pixel: "buffer is not large enough")."""
    image = dib(32, 32, bits)
    assert verdict(ico([image], bpp=[said])) == ("ok", ""), (bits, said)
    small = dib(16, 16, 24)
    body = ico([image, small], bpp=[said, 24])
    body = body[:6] + b"\x20\x20" + body[8:]  # the directory names 32 x 32 for the first
    assert verdict(body) == ("ok", ""), (bits, said)


def test_more_than_256_images_is_a_fixed_bound_said_so() -> None:
    status, text = verdict(ico([dib(1, 1, 24)] * 257))
    assert status == "too_many_pixels", text
    assert text == (
        "ICO lists 257 images, more than the 256 an ICO may hold here"
        " (a fixed bound, not --max-pixels)"
    )
