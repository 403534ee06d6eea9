"""PNG image data must hold every row its header announces (libpng's "Not enough image
data"), whatever the colour type, bit depth, size, interlacing or frame.

The PNGs here are written by the test itself (filter type 0, random samples, rows
enumerated pixel by pixel over Adam7's passes), so that the data can be cut at any byte
and compressed again into a stream that is whole: only the count of its bytes is wrong.
Until 2026-12-01 Pillow decoded such a file "fine" (the missing rows zero) and it was
stored as ``ok``.
"""

from __future__ import annotations

import io
import random
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imageserver import ImageServer
from PIL import Image
from samples import crawl
from test_verify_sweeps import status_of

from crawler.config import Policy
from crawler.exceptions import VerifyFailure
from crawler.worker import verify

# Colour type -> (samples a pixel, bit depths allowed): W3C PNG 3rd ed., table 11.1.
COLOURS = {0: (1, (1, 2, 4, 8, 16)), 2: (3, (8, 16)), 3: (1, (1, 2, 4, 8)), 4: (2, (8, 16))}
COLOURS[6] = (4, (8, 16))
PASSES = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2))
PASSES += ((1, 0, 2, 1),)  # (first row, first column, row step, column step)


def chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def scanlines(width: int, height: int, bits: int, interlace: bool, rng: random.Random) -> bytes:
    """Filtered rows (filter 0) of random samples, pass by pass, each row's pixels
    counted one by one."""
    if not interlace:
        passes = [[(y, list(range(width))) for y in range(height)]]
    else:
        passes = [
            [(y, list(range(c0, width, cs))) for y in range(r0, height, rs)]
            for r0, c0, rs, cs in PASSES
        ]
    out = bytearray()
    for rows in passes:
        for _y, columns in rows:
            if columns:
                out += b"\0" + rng.randbytes((len(columns) * bits + 7) // 8)
    return bytes(out)


def png(width: int, height: int, colour: int, depth: int, interlace: bool, data: bytes) -> bytes:
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    header += bytes([depth, colour, 0, 0, int(interlace)])
    palette = chunk(b"PLTE", bytes(range(256)) * 3) if colour == 3 else b""
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + palette
        + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")
    )  # fmt: skip


@st.composite
def pngs(draw: st.DrawFn) -> tuple[bytes, bytes, tuple]:
    """(whole PNG, its filtered rows, how it was made)."""
    colour = draw(st.sampled_from(sorted(COLOURS)))
    samples, depths = COLOURS[colour]
    depth = draw(st.sampled_from(depths))
    width, height = draw(st.integers(1, 33)), draw(st.integers(1, 33))
    interlace = draw(st.booleans())
    rng = random.Random(draw(st.integers(0, 2**32)))
    rows = scanlines(width, height, samples * depth, interlace, rng)
    if draw(st.booleans()):  # zero samples: the image looks like one whose rows are missing
        rows = bytes(len(rows))
    made = (width, height, colour, depth, interlace)
    return png(*made, rows), rows, made


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pngs(), st.data())
def test_image_data_short_of_any_row_is_corrupt(case: tuple, data: st.DataObject) -> None:
    whole, rows, made = case
    assert status_of(whole) == "ok", made
    cut = data.draw(st.integers(0, len(rows) - 1))
    assert status_of(png(*made, rows[:cut])) == "corrupt", (made, cut, len(rows))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pngs(), st.binary(min_size=1, max_size=64))
def test_image_data_longer_than_the_rows_is_accepted(case: tuple, extra: bytes) -> None:
    """libpng: "Too much image data" is a benign error; Pillow ignores the rest."""
    _whole, rows, made = case
    assert status_of(png(*made, rows + extra)) == "ok", made


def apng(default_image: bool) -> bytes:
    frames = [Image.new("RGB", (48, 40), (40 * i, 90, 200 - 40 * i)) for i in range(4)]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:],
                   default_image=default_image)  # fmt: skip
    return out.getvalue()


def with_frame_cut(body: bytes, frame: int, keep: float) -> bytes:
    """``body`` with the image data of its ``frame``-th data stream (0: IDAT) cut to
    ``keep`` of its rows' bytes and compressed again; every CRC right."""
    out, pos, seen, last = bytearray(body[:8]), 8, -1, b""
    while pos < len(body):
        length = int.from_bytes(body[pos : pos + 4], "big")
        kind, data = body[pos + 4 : pos + 8], body[pos + 8 : pos + 8 + length]
        if kind in (b"IDAT", b"fdAT") and last not in (b"IDAT", b"fdAT"):
            seen += 1
        if kind in (b"IDAT", b"fdAT") and seen == frame:
            head = data[:4] if kind == b"fdAT" else b""
            rows = zlib.decompress(data[len(head) :])
            data = head + zlib.compress(rows[: int(len(rows) * keep)])
        out += chunk(kind, data)
        last = kind
        pos += 12 + length
    return bytes(out)


@pytest.mark.parametrize("default_image", [False, True])
@pytest.mark.parametrize("frame", [0, 1, 3])
def test_an_apng_frame_short_of_rows_is_corrupt(default_image: bool, frame: int) -> None:
    """Every frame, also a default image the animation never shows (Pillow does not
    decode it) and frames drawn over earlier ones."""
    body = apng(default_image)
    assert status_of(body) == "ok"
    assert status_of(with_frame_cut(body, frame, 1.0)) == "ok"
    assert status_of(with_frame_cut(body, frame, 0.5)) == "corrupt"


def test_a_short_png_is_not_stored(tmp_path: Path, image_server: ImageServer) -> None:
    """Through a real master and worker: the short file is a corrupt row, nothing stored."""
    rng = random.Random(7)
    rows = scanlines(64, 48, 24, False, rng)
    whole, short = png(64, 48, 2, 8, False, rows), png(64, 48, 2, 8, False, rows[: len(rows) // 2])
    whole_url = image_server.add("/whole.png", whole)
    short_url = image_server.add("/short.png", short)
    out, rows_by_url = crawl(tmp_path, [whole_url, short_url])
    assert rows_by_url[whole_url]["status"] == "ok"
    assert (out / rows_by_url[whole_url]["path"]).read_bytes() == whole
    assert (rows_by_url[short_url]["status"], rows_by_url[short_url]["path"]) == ("corrupt", None)
    assert "not enough image data" in rows_by_url[short_url]["error"]
    assert sorted(p.name for p in out.rglob("*.png")) == [Path(rows_by_url[whole_url]["path"]).name]


def icon(images: list[bytes]) -> bytes:
    """An ICO whose entries are these PNGs."""
    head = b"\0\0\1\0" + len(images).to_bytes(2, "little")
    offset, entries = 6 + 16 * len(images), b""
    for data in images:
        entries += bytes([0, 0, 0, 0]) + (1).to_bytes(2, "little") + (32).to_bytes(2, "little")
        entries += len(data).to_bytes(4, "little") + offset.to_bytes(4, "little")
        offset += len(data)
    return head + entries + b"".join(images)


@pytest.mark.parametrize("short", [0, 1, 2])
def test_an_icon_image_short_of_rows_is_corrupt(short: int) -> None:
    """An ICO stores its images as BMP or PNG; each PNG is held to the same rule, also
    those Pillow does not decode (it shows the largest)."""
    rng = random.Random(short)
    made = [(side, side, 6, 8, False) for side in (16, 32, 48)]
    rows = [scanlines(side, side, 32, False, rng) for side, *_ in made]
    whole = [png(*m, r) for m, r in zip(made, rows, strict=True)]
    assert status_of(icon(whole)) == "ok"
    cut = list(whole)
    cut[short] = png(*made[short], rows[short][: len(rows[short]) * 3 // 4])
    assert status_of(icon(cut)) == "corrupt"


def test_an_icons_pngs_are_counted_once_a_place_and_within_the_pixel_budget() -> None:
    """A directory may name one PNG many times (each place is read once), and its PNGs
    together may hold ANIMATION_PIXEL_FACTOR x max_pixels (Pillow decodes only the
    largest; a review's ICO had one 100-megapixel PNG's rows counted 81 times, 18 s)."""
    policy = Policy(max_pixels=10_000)
    rng = random.Random(3)
    one = png(64, 64, 0, 8, False, scanlines(64, 64, 8, False, rng))  # 4,096 pixels
    head = b"\0\0\1\0" + (20).to_bytes(2, "little")
    same = bytes([0, 0, 0, 0]) + (1).to_bytes(2, "little") + (8).to_bytes(2, "little")
    same += len(one).to_bytes(4, "little") + (6 + 16 * 20).to_bytes(4, "little")
    verify.configure(policy)  # process-wide (Pillow's bomb guard): set back below
    try:
        verify.inspect(head + same * 20 + one, policy)  # one place, 20 entries: 4,096 pixels
        try:
            verify.inspect(icon([one] * 20), policy)  # 20 places: 81,920 > 4 x 10,000
        except VerifyFailure as failure:
            assert failure.status == "too_many_pixels", failure
        else:
            raise AssertionError("20 distinct 64 x 64 PNGs passed a budget of 40,000 pixels")
    finally:
        verify.configure(Policy())
