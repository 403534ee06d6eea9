"""TIFF data whose damage libtiff does not report (``crawler/worker/tiffdata.py``).

Until 2026-12-01 a Group 4 fax with a bad code word (libtiff: an error on stderr, then
it goes on) and a JPEG-compressed TIFF with garbage in its scan (libjpeg: a warning)
were stored as ``ok`` (a fresh user's). Now a JPEG strip gets the strict JPEG rule, the
same verdict as the same picture standalone, and a compression whose damage cannot be
found is ``unsupported_format``, on any page.
"""

from __future__ import annotations

import contextlib
import io
import struct
import time
import zlib

import pytest
from PIL import Image
from samples import SWEEP_POLICY, status_of

from crawler.exceptions import VerifyFailure
from crawler.worker import verify

POLICY = SWEEP_POLICY
CHECKED = ["raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits", "jpeg"]
UNCHECKED = ["group3", "group4", "tiff_ccitt"]


def picture(mode: str, size: tuple[int, int] = (64, 48)) -> Image.Image:
    image = Image.linear_gradient("L").resize(size)
    return image.convert(mode) if mode != "L" else image


def tiff(compression: str, pages: int = 1, **params: object) -> bytes:
    mode = "1" if compression in UNCHECKED else "RGB"
    images = [picture(mode) for _ in range(pages)]
    out = io.BytesIO()
    images[0].save(
        out, "TIFF", compression=compression, save_all=True, append_images=images[1:], **params
    )
    return out.getvalue()


@pytest.mark.parametrize("compression", CHECKED)
def test_a_whole_tiff_of_every_checked_compression_is_ok(compression: str) -> None:
    assert status_of(tiff(compression, pages=2)) == "ok"


@pytest.mark.parametrize("compression", UNCHECKED)
def test_a_compression_whose_damage_cannot_be_found_is_not_stored(compression: str) -> None:
    verify.configure(POLICY)
    with pytest.raises(VerifyFailure) as caught:
        verify.inspect(tiff(compression), POLICY)
    assert caught.value.status == "unsupported_format"
    assert "CCITT" in str(caught.value)


def test_an_unchecked_second_page_makes_the_file_unsupported() -> None:
    """A Group 4 page after an LZW one (two files chained: Pillow writes one compression
    for all pages)."""
    lzw = tiff("tiff_lzw")
    assert status_of(lzw) == "ok"
    both = chain(lzw, tiff("group4"))
    with Image.open(io.BytesIO(both)) as image:
        assert image.n_frames == 2
        image.seek(1)
        assert image.tag_v2[259] == 4
    assert status_of(both) == "unsupported_format"


def chain(first: bytes, second: bytes) -> bytes:
    """Two little-endian single-page TIFFs as one two-page file: the second's bytes
    appended, its offsets moved, and the first IFD's next-IFD pointer set to it."""
    with Image.open(io.BytesIO(second)) as image:
        assert image.tag_v2.get(259) == 4
    shift = len(first)
    body = bytearray(first + second)
    ifd = int.from_bytes(first[4:8], "little")
    count = int.from_bytes(first[ifd : ifd + 2], "little")
    second_ifd = int.from_bytes(second[4:8], "little")
    body[ifd + 2 + 12 * count : ifd + 6 + 12 * count] = (second_ifd + shift).to_bytes(4, "little")
    at = shift + second_ifd
    for index in range(int.from_bytes(body[at : at + 2], "little")):
        entry = at + 2 + 12 * index
        tag, kind, n = (int.from_bytes(body[entry + a : entry + b], "little") for a, b in
                        ((0, 2), (2, 4), (4, 8)))  # fmt: skip
        size = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8}.get(kind, 1) * n
        if tag in (273, 324):  # offsets of the data: every value moves
            assert kind == 4 and n == 1, "one strip, its offset in the entry"
            value = int.from_bytes(body[entry + 8 : entry + 12], "little")
            body[entry + 8 : entry + 12] = (value + shift).to_bytes(4, "little")
        elif size > 4:  # a value stored out of the entry: its offset moves
            value = int.from_bytes(body[entry + 8 : entry + 12], "little")
            body[entry + 8 : entry + 12] = (value + shift).to_bytes(4, "little")
    return bytes(body)


def jpeg_strip(body: bytes) -> tuple[int, int, bytes]:
    """Where a one-strip JPEG TIFF's strip is, and the standalone JPEG it stands for."""
    with Image.open(io.BytesIO(body)) as image:
        [start], [size] = image.tag_v2[273], image.tag_v2[279]
        tables = image.tag_v2[347]
    return start, size, tables[:-2] + body[start + 2 : start + size]


def test_a_damaged_jpeg_strip_gets_the_jpeg_rule() -> None:
    """Every byte of the strip's scan changed in turn: the TIFF's verdict is the same
    picture's standalone verdict (the crawler's JPEG rule), and some are corrupt."""
    body = tiff("jpeg", quality=90)
    start, size, _ = jpeg_strip(body)
    scan = body.index(b"\xff\xda", start) + 2
    scan += int.from_bytes(body[scan : scan + 2], "big")
    verdicts = set()
    for at in range(scan, start + size - 2, max(1, (start + size - scan) // 150)):
        damaged = bytearray(body)
        damaged[at] ^= 0x55
        standalone = jpeg_strip(bytes(damaged))[2]
        want = status_of(standalone)
        assert status_of(bytes(damaged)) == want, at
        verdicts.add(want)
    assert "corrupt" in verdicts, verdicts


@pytest.mark.parametrize("compression", ["tiff_adobe_deflate", "tiff_deflate"])
def test_every_changed_byte_of_a_deflate_strip_is_found(compression: str) -> None:
    """libtiff stops inflating when it has its rows, before the Adler-32: a third of the
    changes below were ``ok`` until 2026-12-01. A byte of a zlib stream changed is found
    by the stream itself, wherever it is, unless it changes nothing (the padding bits
    after the last block)."""
    body = tiff(compression)
    with Image.open(io.BytesIO(body)) as image:
        [start], [size] = image.tag_v2[273], image.tag_v2[279]
    rows = zlib.decompress(body[start : start + size])
    for at in range(start, start + size):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(body)
            damaged[at] ^= flip
            with contextlib.suppress(zlib.error):
                if zlib.decompress(damaged[start : start + size]) == rows:
                    continue  # the same rows: nothing was damaged
            assert status_of(bytes(damaged)) == "corrupt", (at, flip)
    cut = chain_cut(body, start, size)
    assert status_of(cut) == "corrupt"


def chain_cut(body: bytes, start: int, size: int) -> bytes:
    """The file with its strip's last byte dropped, and its byte count told so."""
    count_at = body.index(size.to_bytes(4, "little"), 8)  # the StripByteCounts value
    shorter = bytearray(body)
    shorter[count_at : count_at + 4] = (size - 1).to_bytes(4, "little")
    return bytes(shorter[: start + size - 1] + shorter[start + size :])


def test_data_libtiff_cannot_decode_is_said_in_words() -> None:
    """Pillow's bare codec status ("decoder error -2") is said as what it means."""
    body = tiff("tiff_lzw")
    with Image.open(io.BytesIO(body)) as image:
        [start], [size] = image.tag_v2[273], image.tag_v2[279]
    texts = set()
    for at in range(start, start + size, 3):
        damaged = bytearray(body)
        damaged[at] ^= 0xFF
        verify.configure(POLICY)
        try:
            verify.inspect(bytes(damaged), POLICY)
        except VerifyFailure as failure:
            texts.add(str(failure))
    assert texts and all("damaged" in text for text in texts), texts


def jpeg_tiff(
    width: int, height: int, rows: int, strips: list[tuple[int, int]], blob: bytes
) -> bytes:
    """A little-endian one-page RGB JPEG TIFF: ``blob`` at offset 8, then the directory,
    with these (offset, size) strip entries and ``rows`` rows per strip."""
    entries = [
        (256, 4, [width]), (257, 4, [height]), (258, 3, [8, 8, 8]), (259, 3, [7]),
        (262, 3, [2]), (273, 4, [o for o, _ in strips]), (277, 3, [3]), (278, 4, [rows]),
        (279, 4, [n for _, n in strips]), (284, 3, [1]),
    ]  # fmt: skip
    at = 8 + len(blob)
    values_at = at + 2 + 12 * len(entries) + 4
    head, extra = struct.pack("<H", len(entries)), b""
    for tag, kind, values in entries:
        raw = struct.pack(f"<{len(values)}{'H' if kind == 3 else 'I'}", *values)
        if len(raw) <= 4:
            head += struct.pack("<HHI", tag, kind, len(values)) + raw.ljust(4, b"\0")
        else:
            head += struct.pack("<HHII", tag, kind, len(values), values_at + len(extra))
            extra += raw
    return b"II*\0" + struct.pack("<I", at) + blob + head + b"\0\0\0\0" + extra


def plain_jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    picture = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    picture.save(out, "JPEG", subsampling=0)  # 1x1: what libtiff wants of RGB
    return out.getvalue()


def test_only_the_strips_a_page_needs_are_read_each_once() -> None:
    """libtiff reads as many strips as the rows need: entries past those are never read
    (garbage there is no damage), and entries naming one strip name the same bytes (a
    review's, 2026-12-01: 6,000 entries naming one large JPEG took 22 s to refuse)."""
    strip = plain_jpeg(64, 16)
    spans = [(8, len(strip))] * 4
    assert status_of(jpeg_tiff(64, 64, 16, spans, strip)) == "ok"
    garbage = [(8 + len(strip) // 2, 100)] * 1000
    assert status_of(jpeg_tiff(64, 64, 16, spans + garbage, strip)) == "ok"
    large = plain_jpeg(4096, 4096)
    started = time.thread_time()
    many = jpeg_tiff(64, 64, 64, [(8, len(large))] * 6000, large)
    with pytest.raises(VerifyFailure, match="hold more than the page"):
        verify.inspect(many, POLICY)
    assert time.thread_time() - started < 2.0  # one header read, not 6,000 decodes
