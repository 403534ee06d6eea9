"""Chunk-count bombs: a PNG of very many tiny chunks costs bounded work (two engineers',
2026-12-01: 400,000 tiny tEXt or empty ancillary chunks, 5-6 MB, took 3.3-4.6 s and were
``ok``; 200,000 1-byte IDATs 1.1 s; --max-bytes of 12-byte chunks would take tens of
seconds).

- Every kind of chunk a flood can be made of, by hand with right CRCs as a hostile
  server would send it (tEXt, an unknown ancillary chunk, 1-byte IDATs, an APNG frame's
  1-byte fdATs), and the PNGs of an ICO together: just below and at the bound ``ok``,
  just past it and far past it ``too_many_pixels``, naming the count and the bound.
- The bound is structural: the walk stops at the first chunk past it, so a flood of
  --max-bytes with damage after the bound is still refused, not read to its end, in
  bounded CPU whatever its size.
- PNGs cut as real encoders cut their data (libpng's 8 KiB IDATs, an IDAT a row as
  ``png_set_flush(png_ptr, 1)`` writes) stay ``ok``; end to end, a flood gets its row
  and status, a real PNG is stored.
"""

from __future__ import annotations

import io
import random
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from imageserver import ImageServer
from PIL import Image
from samples import crawl, picture, status_of
from test_png_data import chunk, icon

from crawler.config import Policy
from crawler.exceptions import TooManyPixels
from crawler.worker import pngchunks, verify

MAX_CHUNKS = 100_000  # pngchunks.MAX_CHUNKS: the README names it
POLICY = Policy()  # the default limits: no pixel limit sees these 1 x 1 images
REFUSE_CPU = 1.0  # seconds: a refusal is a walk up to the bound
SIGNATURE = b"\x89PNG\r\n\x1a\n"
IHDR = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))  # 1 x 1 grey
IEND = chunk(b"IEND", b"")
ROW = b"\x00\x7f"  # the one row: filter type 0, one sample
EMPTY_BLOCK = b"\x00\x00\x00\xff\xff"  # a stored deflate block of no bytes (a sync flush)


def pieces(count: int) -> list[bytes]:
    """A zlib stream of ROW in ``count`` pieces, 1 byte each but the last (at most 5) or
    empty ones: empty stored blocks first to make it long enough."""
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    final = raw.compress(ROW) + raw.flush() + zlib.adler32(ROW).to_bytes(4, "big")
    blocks = max(0, -(-(count - 3 - len(final)) // len(EMPTY_BLOCK)))
    stream = b"\x78\xda" + EMPTY_BLOCK * blocks + final
    cut = min(count - 1, len(stream))
    parts = [stream[i : i + 1] for i in range(cut)] + [stream[cut:]]
    return parts + [b""] * (count - len(parts))


def repeated(kind: bytes, data: bytes) -> Callable[[int], bytes]:
    """A 1 x 1 PNG of ``count`` chunks in all, all but three of them ``kind``."""

    def make(count: int) -> bytes:
        rows = chunk(b"IDAT", zlib.compress(ROW))
        return SIGNATURE + IHDR + chunk(kind, data) * (count - 3) + rows + IEND

    return make


def idat_flood(count: int) -> bytes:
    """A 1 x 1 PNG of ``count`` chunks: its image data in 1-byte IDATs."""
    idats = b"".join(chunk(b"IDAT", piece) for piece in pieces(count - 2))
    return SIGNATURE + IHDR + idats + IEND


def fdat_flood(count: int) -> bytes:
    """A 1 x 1 APNG of two frames and ``count`` chunks: its second frame's data in
    1-byte fdATs, sequence numbers in order (APNG 1.0)."""
    control = struct.pack(">IIIIHHBB", 1, 1, 0, 0, 1, 10, 0, 0)
    parts = [IHDR, chunk(b"acTL", struct.pack(">II", 2, 0))]
    parts += [chunk(b"fcTL", struct.pack(">I", 0) + control), chunk(b"IDAT", zlib.compress(ROW))]
    parts += [chunk(b"fcTL", struct.pack(">I", 1) + control)]
    for sequence, piece in enumerate(pieces(count - len(parts) - 1), start=2):
        parts.append(chunk(b"fdAT", struct.pack(">I", sequence) + piece))
    return b"".join([SIGNATURE, *parts, IEND])


FLOODS: dict[str, Callable[[int], bytes]] = {
    "tEXt": repeated(b"tEXt", b"k\0"),
    "unknown ancillary": repeated(b"prVt", b""),
    "IDAT": idat_flood,
    "fdAT": fdat_flood,
}


def count_chunks(png: bytes) -> int:
    pos, count = 8, 0
    while pos < len(png):
        pos += 12 + int.from_bytes(png[pos : pos + 4], "big")
        count += 1
    return count


def verdict(body: bytes) -> str:
    """The error, or the format, verification gives ``body``."""
    verify.configure(POLICY)
    try:
        return verify.inspect(body, POLICY).format
    except TooManyPixels as failure:
        return str(failure)


def refusal(what: str = "PNG has") -> str:
    return (
        f"{what} at least {MAX_CHUNKS + 1} chunks, more than the {MAX_CHUNKS} one image may"
        " have here (a fixed bound, not --max-pixels)"
    )


def test_the_bound_is_the_one_the_readme_names() -> None:
    assert pngchunks.MAX_CHUNKS == MAX_CHUNKS


@pytest.mark.parametrize("kind", sorted(FLOODS))
def test_the_floods_are_valid_pngs_of_the_count_asked(kind: str) -> None:
    """Only the count is refused: a few chunks of each kind make a valid image."""
    body = FLOODS[kind](40)
    assert count_chunks(body) == 40
    assert verdict(body) == "PNG"


@pytest.mark.parametrize("below", [1, 0])
@pytest.mark.parametrize("kind", sorted(FLOODS))
def test_up_to_the_bound_is_ok(kind: str, below: int) -> None:
    body = FLOODS[kind](MAX_CHUNKS - below)
    assert count_chunks(body) == MAX_CHUNKS - below
    assert verdict(body) == "PNG"


@pytest.mark.parametrize("past", [1, 2, 300_000])
@pytest.mark.parametrize("kind", sorted(FLOODS))
def test_past_the_bound_is_refused_in_bounded_work(kind: str, past: int) -> None:
    body = FLOODS[kind](MAX_CHUNKS + past)
    assert count_chunks(body) == MAX_CHUNKS + past
    started = time.process_time()
    assert verdict(body) == refusal()
    assert time.process_time() - started < REFUSE_CPU, (kind, past)


def test_the_walk_stops_at_the_bound() -> None:
    """--max-bytes of 12-byte chunks (4.4 million), cut inside its IEND: refused for its
    count, the walk never reaching the cut, which makes a shorter flood ``corrupt``."""
    flood = repeated(b"prVt", b"")
    assert status_of(flood(40)[:-3], POLICY) == "corrupt"
    body = flood(POLICY.max_bytes // 12)[:-3]
    started = time.process_time()
    assert verdict(body) == refusal()
    assert time.process_time() - started < REFUSE_CPU


@pytest.mark.parametrize(("first", "second"), [(60_000, 40_000), (60_000, 40_001)])
def test_an_icos_pngs_share_one_bound(first: int, second: int) -> None:
    """Two PNGs of an ICO, neither past the bound alone: together they may reach it."""
    body = icon([FLOODS["unknown ancillary"](first), FLOODS["IDAT"](second)])
    if first + second <= MAX_CHUNKS:
        assert verdict(body) == "ICO"
    else:
        assert verdict(body) == refusal("ICO's PNG images have")


def test_one_png_of_an_ico_past_the_bound_is_refused() -> None:
    body = icon([FLOODS["tEXt"](MAX_CHUNKS + 50_000), FLOODS["tEXt"](10)])
    started = time.process_time()
    assert verdict(body) == refusal("ICO's PNG images have")
    assert time.process_time() - started < REFUSE_CPU


def recut(png: bytes, size: int | None) -> bytes:
    """``png`` (one frame) with its image data in IDATs of ``size`` bytes as libpng
    writes them, or (None) recompressed with a sync flush after each row, an IDAT a
    row, as a writer with ``png_set_flush(png_ptr, 1)`` writes it."""
    pos, head, data = 8, png[:8], b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        whole = png[pos : pos + 12 + length]
        data += whole[8:-4] if kind == b"IDAT" else b""
        head += whole if kind not in (b"IDAT", b"IEND") else b""
        pos += 12 + length
    if size is not None:
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
    else:
        rows, packer = zlib.decompress(data), zlib.compressobj()
        width = len(rows) // struct.unpack(">I", head[20:24])[0]
        pieces = [packer.compress(rows[i : i + width]) + packer.flush(zlib.Z_SYNC_FLUSH)
                  for i in range(0, len(rows), width)]  # fmt: skip
        pieces.append(packer.flush())
    return head + b"".join(chunk(b"IDAT", piece) for piece in pieces) + IEND


@pytest.mark.parametrize("size", [8192, 1024, None], ids=["libpng 8 KiB", "1 KiB", "a row"])
def test_pngs_cut_as_real_encoders_cut_them_are_ok(size: int | None) -> None:
    """A photo's worth of noise, 1,000 x 2,000 (6 MB of rows): hundreds to thousands of
    chunks, far below the bound."""
    noise = Image.frombytes("RGB", (1000, 2000), random.Random(5).randbytes(6_000_000))
    out = io.BytesIO()
    noise.save(out, "PNG", compress_level=1)
    body = recut(out.getvalue(), size)
    assert count_chunks(body) > {8192: 700, 1024: 5000, None: 2000}[size]
    assert verdict(body) == "PNG"


def test_end_to_end_a_flood_is_refused_and_a_real_png_stored(
    tmp_path: Path, image_server: ImageServer
) -> None:
    floods = [image_server.add(f"/{i}.png", make(MAX_CHUNKS + 1)) for i, make in
              enumerate(FLOODS.values())]  # fmt: skip
    out = io.BytesIO()
    picture(64, 48).save(out, "PNG")
    real = image_server.add("/real.png", out.getvalue())
    folder, rows = crawl(tmp_path, [*floods, real])
    for url in floods:
        row = rows[url]
        assert (row["status"], row["path"], row["error"]) == ("too_many_pixels", None, refusal())
    assert rows[real]["status"] == "ok"
    assert (folder / rows[real]["path"]).read_bytes() == out.getvalue()
