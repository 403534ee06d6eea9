"""libpng's rules for IHDR, PLTE and IDAT, swept over every field value, colour type and
bit depth, chunk count and place (a fresh user's, 2026-12-01: four PNGs with every CRC
right that libpng refuses, two of them blank in Chromium, were stored as ``ok``; three
others were called "image file is truncated" though nothing was cut).

What libpng refuses with an error is ``corrupt``, with a text naming the rule; what it
only warns about or calls a benign error (a PLTE in a greyscale image, a truecolour
PLTE of a wrong length, after IDAT or a second one, a palette longer than the bit depth reaches, an
IDAT run after every row) stays ``ok``. The files are written here, chunk by chunk.
"""

from __future__ import annotations

import io
import random
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from test_png_chunks import chunks, inserted
from test_png_data import COLOURS, chunk, scanlines
from test_verify_sweeps import BODIES, POLICY, with_png_crcs

from crawler.exceptions import VerifyFailure
from crawler.worker import verify

SIGNATURE = b"\x89PNG\r\n\x1a\n"
PALETTE = chunk(b"PLTE", bytes(range(256)) * 3)
# Well-formed data of the chunks put between IDAT runs (Pillow refuses malformed ones).
ANCILLARY = {b"tEXt": b"k\0v", b"zTXt": b"k\0\0" + zlib.compress(b"v"), b"pHYs": bytes(9)}
TRUNCATED = "image file is truncated"  # Pillow's text: only for a file really cut short


def verdict(body: bytes) -> tuple[str, str]:
    """(status, error text) of ``body`` under POLICY."""
    verify.configure(POLICY)
    try:
        verify.inspect(body, POLICY)
    except VerifyFailure as failure:
        return failure.status, str(failure)
    return "ok", ""


def header(width: int = 12, height: int = 9, depth: int = 8, colour: int = 2, *rest: int) -> bytes:
    """IHDR's 13 bytes; ``rest``: compression, filter and interlace methods (0 each)."""
    tail = bytes([*rest, 0, 0, 0][:3])
    return width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([depth, colour]) + tail


def png(
    ihdr: bytes,
    before: bytes = b"",
    idats: list[bytes] | None = None,
    mid: bytes = b"",
    after: bytes = b"",
) -> bytes:
    """A PNG of ``ihdr`` with ``before`` ahead of its IDAT chunks (``mid`` between the
    first and the rest, ``after`` behind them); the rows fit IHDR's colour type, depth
    and interlace method where those are valid."""
    if idats is None:
        colour, depth, interlace = ihdr[9], ihdr[8], ihdr[12] == 1
        samples = COLOURS.get(colour, (1, ()))[0]
        rows = scanlines(12, 9, samples * max(depth, 1), interlace, random.Random(depth))
        data = zlib.compress(rows)
        idats = [data[: len(data) // 2], data[len(data) // 2 :]]
    return (
        SIGNATURE + chunk(b"IHDR", ihdr) + before + chunk(b"IDAT", idats[0]) + mid
        + b"".join(chunk(b"IDAT", part) for part in idats[1:]) + after + chunk(b"IEND", b"")
    )  # fmt: skip


def palette_for(colour: int) -> bytes:
    return PALETTE if colour == 3 else b""


def assert_refused(body: bytes, *words: str) -> None:
    status, text = verdict(body)
    assert status == "corrupt", (status, text)
    assert all(word in text for word in words), text
    assert TRUNCATED not in text and "\n" not in text, text


@pytest.mark.parametrize("colour", range(8))
@pytest.mark.parametrize("depth", [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 32, 255])
def test_every_colour_type_and_bit_depth(colour: int, depth: int) -> None:
    """W3C PNG 3rd ed. table 11.1; png_check_IHDR: invalid color type, invalid bit depth,
    invalid color type/bit depth combination."""
    body = png(header(12, 9, depth, colour), palette_for(colour))
    if depth in COLOURS.get(colour, (0, ()))[1]:
        assert verdict(body) == ("ok", "")
    else:
        assert_refused(body, "PNG's IHDR names", "libpng")


@pytest.mark.parametrize("field", ["compression", "filter", "interlace"])
def test_every_value_of_the_method_fields(field: str) -> None:
    """Compression and filter method 0, interlace 0 or 1: every other byte value refused
    (the fresh user's compression method 1 was ``ok``)."""
    place = ["compression", "filter", "interlace"].index(field)
    allowed = {0, 1} if field == "interlace" else {0}
    for value in range(256):
        methods = [0, 0, 0]
        methods[place] = value
        body = png(header(12, 9, 8, 2, *methods))
        if value in allowed:
            assert verdict(body)[0] == "ok", value
        else:
            assert_refused(body, f"{field} method {value}", "libpng: unknown")


@pytest.mark.parametrize("side", [0, 2**31, 2**32 - 1])
@pytest.mark.parametrize("which", ["width", "height"])
def test_a_side_out_of_range(side: int, which: str) -> None:
    sizes = {"width": 12, "height": 9} | {which: side}
    assert_refused(png(header(sizes["width"], sizes["height"])), f"names {which} {side}")


@pytest.mark.parametrize("length", [0, 1, 12, 14, 25])
def test_an_ihdr_of_another_length(length: int) -> None:
    ihdr = (header() + bytes(12))[:length]
    idat = zlib.compress(scanlines(12, 9, 24, False, random.Random(0)))
    assert_refused(png(ihdr, idats=[idat]), f"IHDR chunk has {length} bytes")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([(3, 1), (3, 2), (3, 4), (3, 8), (2, 8), (6, 8), (0, 8), (4, 8)]),
       st.integers(0, 300 * 3))  # fmt: skip
def test_every_palette_length(kind: tuple[int, int], length: int) -> None:
    """A palette image: 1 to 256 entries of 3 bytes, more than the depth reaches being
    truncated by libpng (kept); a truecolour image: only an empty PLTE refused; a
    greyscale image: any PLTE ignored."""
    colour, depth = kind
    body = png(header(12, 9, depth, colour), chunk(b"PLTE", bytes(i % 256 for i in range(length))))
    if colour == 3:
        valid = length and length % 3 == 0 and length <= 768
    else:
        valid = colour in (0, 4) or length > 0
    if valid:
        assert verdict(body)[0] == "ok", (kind, length)
    else:
        assert_refused(body, f"PLTE chunk has {length} bytes", "libpng: PLTE invalid")


@pytest.mark.parametrize("colour", [0, 2, 3, 4, 6])
@pytest.mark.parametrize("count", [0, 1, 2, 3])
@pytest.mark.parametrize("place", ["before", "after", "both"])
def test_palette_counts_and_places(colour: int, count: int, place: str) -> None:
    """A palette image: one PLTE, before its first IDAT. Any other image: any number,
    anywhere (libpng >= 1.6.47: a PLTE fault outside a palette image is a benign error;
    until 2026-12-01 a second one was refused in every image, a review's)."""
    depth = 8
    plte = PALETTE * count
    before = plte if place in ("before", "both") else b""
    after = plte if place in ("after", "both") else b""
    body = png(header(12, 9, depth, colour), before, after=after)
    if colour == 3 and not before:
        assert_refused(body, "no PLTE chunk before its image data")
    elif colour == 3 and (count > 1 or after):
        assert_refused(body, "second PLTE chunk", "libpng: PLTE duplicate")
    else:
        assert verdict(body)[0] == "ok", (colour, count, place)


@pytest.mark.parametrize("colour", [0, 2, 3, 6])
@pytest.mark.parametrize("between", [b"tEXt", b"zTXt", b"pHYs", b"PLTE"])
def test_idat_chunks_split_by_another_chunk(colour: int, between: bytes) -> None:
    """The rows split across two runs of IDAT: libpng's "not enough image data", not
    Pillow's "image file is truncated". A run after every row: libpng's benign "too many
    IDATs", kept."""
    kind = png(header(12, 9, 8, colour), palette_for(colour))
    data = b"".join(part[8:-4] for part in chunks(kind) if part[4:8] == b"IDAT")
    mid = chunk(between, ANCILLARY.get(between, bytes(3 * 16)))
    split = png(header(12, 9, 8, colour), palette_for(colour), [data[:9], data[9:]], mid)
    if between == b"PLTE" and colour == 3:  # refused as a second PLTE first
        assert_refused(split, "second PLTE")
        return
    assert_refused(split, "not consecutive", between.decode(), "not enough image data")
    whole_first = png(header(12, 9, 8, colour), palette_for(colour), [data, b""], mid)
    assert verdict(whole_first)[0] == "ok"


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_a_preset_dictionary_or_another_zlib_method_is_refused(cut: int) -> None:
    """PNG 3rd ed. 10.1: deflate, no preset dictionary (FDICT); the header may straddle
    IDAT chunks. Pillow called the FDICT file "image file is truncated"."""
    data = zlib.compress(scanlines(12, 9, 24, False, random.Random(1)))
    data = zlib_header(0x78, dictionary=True) + data[2:]
    parts = [data[:cut], data[cut:]]
    assert_refused(png(header(), idats=parts), "preset zlib dictionary", "PNG 10.1")
    data = zlib_header(0x79, dictionary=False) + data[2:]  # method 9: not deflate
    assert_refused(png(header(), idats=[data]), "deflate zlib header")


def zlib_header(method: int, dictionary: bool) -> bytes:
    """CMF and FLG (RFC 1950 2.2), FLG's check bits right."""
    flags = 0x80 | (0x20 if dictionary else 0)
    flags |= (31 - (method << 8 | flags) % 31) % 31
    return bytes([method, flags])


def apng_with(change: str) -> bytes:
    """A 3-frame APNG with one of libpng's faults put in."""
    body = BODIES["apng"]
    if change == "empty PLTE":  # png_set_PLTE's "Invalid palette", in any colour type
        return inserted(body, 1, chunk(b"PLTE", b""))
    if change == "compression method":
        parts = chunks(body)
        width, height = (int.from_bytes(parts[0][at : at + 4], "big") for at in (8, 12))
        ihdr = header(width, height, 8, 2, 1)
        return SIGNATURE + chunk(b"IHDR", ihdr) + b"".join(parts[1:])
    # a frame's fdAT stream with the FDICT flag, every CRC made right again
    at = body.index(b"fdAT") + 8  # past the type and the sequence number: CMF
    return with_png_crcs(body[:at] + zlib_header(body[at], dictionary=True) + body[at + 2 :])


@pytest.mark.parametrize("change", ["empty PLTE", "compression method", "fdAT dictionary"])
def test_the_rules_hold_in_an_apng(change: str) -> None:
    assert verdict(BODIES["apng"])[0] == "ok"
    assert_refused(apng_with(change), "libpng" if change != "fdAT dictionary" else "dictionary")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["png", "png-interlaced", "png-16bit", "apng"]), st.data())
def test_damage_that_cuts_nothing_is_never_called_truncated(name: str, data: st.DataObject) -> None:
    """Bytes changed in place, every CRC made right: whatever the status, the text is
    not Pillow's "image file is truncated" (the file has all its bytes)."""
    body = bytearray(BODIES[name])
    for _ in range(data.draw(st.integers(1, 3))):
        body[data.draw(st.integers(8, len(body) - 1))] ^= data.draw(st.integers(1, 255))
    status, text = verdict(with_png_crcs(bytes(body)))
    assert TRUNCATED not in text, (name, status, text)


def test_a_pillow_written_palette_png_of_every_depth_stays_ok() -> None:
    """Pillow writes palettes of 2^depth entries or fewer: the rules keep them."""
    for colours in (2, 4, 16, 256):
        image = Image.new("P", (10, 7))
        image.putpalette(bytes(i % 256 for i in range(3 * colours)))
        out = io.BytesIO()
        image.save(out, "PNG", bits=max(1, (colours - 1).bit_length()))
        assert verdict(out.getvalue())[0] == "ok", colours
