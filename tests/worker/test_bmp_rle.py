"""RLE BMPs decode to Pillow's own pixels, in work bounded by their bytes (a review's,
2026-12-01: Pillow's Python decoder padded an end of line a byte at a time and built an
RLE4 run a pixel at a time, so an 8000 x 8000 RLE8 BMP of 32 KiB took 27 s).

- The same bytes as Pillow's BmpRleDecoder on a sweep of RLE8 and RLE4 command streams
  (runs, ends of line, deltas, absolute runs of odd lengths, early ends of bitmap, cut
  files, odd widths, rows at an odd offset), drawn by Hypothesis.
- Crafted files (one pixel then end of line a row; RLE4 runs of 255 pixels) decode
  within a generous CPU bound.
"""

from __future__ import annotations

import io
import struct
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import BmpImagePlugin, Image
from test_png_rules import verdict

from crawler.worker import bmprle, verify  # noqa


def rle_bmp(width: int, height: int, bits: int, data: bytes, gap: int = 0) -> bytes:
    """A BMP of RLE8 (bits 8) or RLE4 (bits 4) ``data``, a grey-free palette, ``gap``
    bytes between the palette and the rows (bfOffBits then odd for gap 1)."""
    colours = 1 << bits
    info = struct.pack(
        "<IiiHHIIiiII", 40, width, height, 1, bits, 1 if bits == 8 else 2, len(data), 0, 0, 0, 0
    )
    palette = b"".join(bytes((i, 255 - i, i // 2, 0)) for i in range(colours))
    start = 14 + 40 + len(palette) + gap
    head = b"BM" + struct.pack("<IHHI", start + len(data), 0, 0, start)
    return head + info + palette + bytes(gap) + data


def decoded(body: bytes, decoder: type) -> bytes | str:
    """The pixels ``decoder`` gives for ``body``, or its failure's text (Pillow's
    registry put back after)."""
    registered = Image.DECODERS["bmp_rle"]
    Image.register_decoder("bmp_rle", decoder)
    try:
        with Image.open(io.BytesIO(body), formats=["BMP"]) as image:
            image.load()
            return image.tobytes()
    except Exception as exc:  # a cut file: the same failure from both
        return f"{type(exc).__name__}: {exc}"
    finally:
        Image.register_decoder("bmp_rle", registered)


RUN = st.tuples(st.integers(1, 255), st.integers(0, 255)).map(bytes)
END_OF_LINE = st.just(b"\x00\x00")
END_OF_BITMAP = st.just(b"\x00\x01")
DELTA = st.tuples(st.integers(0, 40), st.integers(0, 4)).map(lambda d: b"\x00\x02" + bytes(d))
ABSOLUTE = st.integers(3, 40).flatmap(
    lambda n: st.binary(min_size=n, max_size=n).map(lambda b: b"\x00" + bytes((n,)) + b)
)
COMMANDS = st.lists(st.one_of(RUN, END_OF_LINE, END_OF_BITMAP, DELTA, ABSOLUTE), max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 37),
    height=st.integers(1, 9),
    bits=st.sampled_from([4, 8]),
    commands=COMMANDS,
    gap=st.integers(0, 1),
    cut=st.integers(0, 5),
)
@example(width=7, height=3, bits=4, commands=[b"\x00\x05\x12\x34\x50"], gap=1, cut=0)
@example(width=5, height=2, bits=8, commands=[b"\x00\x02\x09\x09", b"\x03\x07"], gap=0, cut=0)
def test_the_same_pixels_as_pillows_decoder(
    width: int, height: int, bits: int, commands: list[bytes], gap: int, cut: int
) -> None:
    data = b"".join(commands)
    body = rle_bmp(width, height, bits, data[: len(data) - cut] if cut else data, gap)
    ours = decoded(body, bmprle.RleDecoder)
    assert ours == decoded(body, BmpImagePlugin.BmpRleDecoder)


def crafted(side: int) -> list[bytes]:
    """RLE8: one pixel then end of line a row; RLE4: runs of 255 pixels a row."""
    rle8 = b"\x01\x07\x00\x00" * side + b"\x00\x01"
    rle4 = (b"\xff\x12" * (side // 255 + 1) + b"\x00\x00") * side + b"\x00\x01"
    return [rle_bmp(side, side, 8, rle8), rle_bmp(side, side, 4, rle4)]


def cpu(body: bytes) -> tuple[tuple[str, str], float]:
    started = time.thread_time()
    result = verdict(body)
    return result, time.thread_time() - started


@pytest.mark.parametrize("kind", [0, 1], ids=["rle8-end-of-line", "rle4-runs"])
def test_a_crafted_rle_bmp_decodes_in_bounded_work(kind: int, monkeypatch) -> None:
    """6000 x 6000: Pillow's decoder took 2-3 s of CPU (ours about 0.1 s, a plain BMP of
    the same pixels about as much). Bound: 1 s, with the decoder ``verify`` registers."""
    assert Image.DECODERS["bmp_rle"] is bmprle.RleDecoder  # verify's import registered it
    body = crafted(6000)[kind]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000 * 6000)  # verify.configure's is lower
    started = time.thread_time()
    with Image.open(io.BytesIO(body), formats=["BMP"]) as image:
        image.load()
        assert image.size == (6000, 6000)
    assert time.thread_time() - started < 1.0


@pytest.mark.parametrize("kind", [0, 1], ids=["rle8-end-of-line", "rle4-runs"])
def test_a_crafted_rle_bmp_is_checked_in_bounded_work(kind: int) -> None:
    """At max_pixels (2000 x 2000), through verify."""
    body = crafted(2000)[kind]
    result, spent = cpu(body)
    assert result == ("ok", "") and spent < 1.0, (result, spent)
