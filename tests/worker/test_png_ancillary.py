"""PNG ancillary chunks libpng skips (a warning or a benign error) never make a file
``corrupt``: until 2026-12-01 Pillow refused the file for them (a fresh user's: an 8 x 8
PNG whose zTXt inflates to 100 MiB, shown by Chromium, was "Decompressed data too large
for PngImagePlugin.MAX_TEXT_CHUNK"). Swept: chunk kinds x sizes around the limits x
places (before, between and after the image data, between APNG frames, inside an ICO),
files made by Pillow (PngInfo) and by hand (CRCs right, or wrong), in bounded work.
"""

from __future__ import annotations

import functools
import io
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imageserver import ImageServer
from PIL import Image, PngImagePlugin
from samples import crawl
from test_png_chunks import chunk, chunks, inserted, sample
from test_png_data import icon
from test_verify_sweeps import POLICY, status_of

from crawler.worker import pngancillary, verify

LIMIT = pngancillary.TEXT_CHUNK_LIMIT
MIB = 1 << 20
SIZES = (LIMIT - 1, LIMIT, LIMIT + 1)


@functools.cache
def deflated(size: int, level: int = 9) -> bytes:
    """A zlib stream of ``size`` bytes of text, made a piece at a time."""
    packer, out, left = zlib.compressobj(level), [], size
    while left:
        out.append(packer.compress(b"a" * min(left, MIB)))
        left -= min(left, MIB)
    return b"".join([*out, packer.flush()])


def ztxt(size: int, method: int = 0) -> bytes:
    return chunk(b"zTXt", b"Comment\0" + bytes([method]) + deflated(size))


def itxt(size: int, compressed: bool = True, method: int = 0) -> bytes:
    text = deflated(size) if compressed else b"a" * size
    return chunk(b"iTXt", b"XML:com.adobe.xmp\0" + bytes([compressed, method]) + b"en\0\0" + text)


def text(size: int) -> bytes:
    return chunk(b"tEXt", b"Comment\0" + b"a" * size)


def iccp(size: int, method: int = 0) -> bytes:
    return chunk(b"iCCP", b"profile\0" + bytes([method]) + deflated(size))


def apng() -> bytes:
    frames = [Image.new("RGB", (16, 12), (60 * i, 9, 9)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:])
    return out.getvalue()


def places(extra: bytes) -> dict[str, bytes]:
    """``extra`` in a PNG before and after its image data, and between APNG frames."""
    still, moving = sample("RGB"), apng()
    kinds = [part[4:8] for part in chunks(moving)]
    return {
        "before IDAT": inserted(still, 1, extra),
        "after IDAT": inserted(still, 2, extra),
        "between frames": inserted(moving, kinds.index(b"fdAT"), extra),
        "after frames": inserted(moving, len(kinds) - 1, extra),
    }


def pillow_made(kind: str, size: int) -> bytes:
    """A PNG Pillow writes with one text chunk or ICC profile of ``size`` bytes."""
    info, params = PngImagePlugin.PngInfo(), {}
    if kind == "zTXt":
        info.add_text("Comment", "a" * size, zip=True)
    elif kind in ("iTXt", "iTXt plain"):
        info.add_itxt("XML:com.adobe.xmp", "a" * size, "en", "", zip=kind == "iTXt")
    elif kind == "tEXt":
        info.add_text("Comment", "a" * size)
    else:
        params["icc_profile"] = b"a" * size
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG", pnginfo=info, **params)
    return out.getvalue()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["zTXt", "iTXt", "iTXt plain", "tEXt", "iCCP"])
def test_pillow_made_text_around_the_limit_is_ok_and_kept_only_under_it(
    kind: str, size: int
) -> None:
    body = pillow_made(kind, size)
    assert status_of(body) == "ok"
    kept = len(pngancillary.for_pillow(body)) == len(body)
    assert kept == (size < LIMIT), (kind, size)


@pytest.mark.parametrize("size", [*SIZES, 100 * MIB])
@pytest.mark.parametrize("make", [ztxt, itxt, iccp], ids=["zTXt", "iTXt", "iCCP"])
def test_compressed_chunks_over_the_limit_are_ok_wherever_they_lie(make, size: int) -> None:
    for place, body in places(make(size)).items():
        assert status_of(body) == "ok", place
        assert verify.inspect(body, POLICY).frames == (1 if "IDAT" in place else 3)


DAMAGED = {
    "zTXt method 1": ztxt(10, method=1),
    "iCCP method 1": iccp(10, method=1),
    "zTXt without NUL": chunk(b"zTXt", b"Comment"),
    "iCCP without NUL": chunk(b"iCCP", b"profile"),
    "iCCP empty": chunk(b"iCCP", b""),
    "iCCP without method": chunk(b"iCCP", b"profile\0"),
    "zTXt damaged zlib": chunk(b"zTXt", b"Comment\0\0" + deflated(100)[:-5] + b"\xff" * 5),
    "zTXt without zlib": chunk(b"zTXt", b"Comment\0\0"),
    "iTXt method 1": itxt(10, method=1),
    "iTXt not zlib": chunk(b"iTXt", b"k\0\1\0en\0\0" + b"not zlib"),
    "iTXt cut": chunk(b"iTXt", b"k\0\1"),
}


@pytest.mark.parametrize("extra", DAMAGED.values(), ids=DAMAGED.keys())
def test_text_and_profiles_libpng_skips_as_damaged_are_ok(extra: bytes) -> None:
    for place, body in places(extra).items():
        assert status_of(body) == "ok", place


@pytest.mark.parametrize("mode", ["1", "L", "I;16", "RGB", "P", "LA", "RGBA"])
def test_fixed_chunks_shorter_than_their_fields_are_ok(mode: str) -> None:
    """libpng: "invalid", "too short" (benign); Pillow: "Truncated ... chunk"."""
    body = io.BytesIO()
    Image.new(mode, (8, 8)).save(body, "PNG")
    shortest = {b"tRNS": 6, **pngancillary.SHORTEST}
    for kind, fields in shortest.items():
        for length in range(fields + 1):
            for at in (1, 2):
                with_it = inserted(body.getvalue(), at, chunk(kind, b"\1" * length))
                assert status_of(with_it) == "ok", (kind, length, at)


def test_text_past_the_files_memory_limit_is_ok_and_dropped() -> None:
    """Pillow's MAX_TEXT_MEMORY ("Too much memory used in text chunks"): three chunks
    under the limit each, over it together; the third is dropped."""
    parts = [ztxt(LIMIT - 1), itxt(LIMIT - 1), text(LIMIT // 2)]
    body = inserted(sample("L"), 1, b"".join(parts))
    assert status_of(body) == "ok"
    assert len(pngancillary.for_pillow(body)) == len(body) - len(parts[2])


@pytest.mark.parametrize("count,size", [(1, 100 * MIB), (40, 50 * MIB)])
def test_a_text_bomb_is_read_in_bounded_time_and_memory(count: int, size: int) -> None:
    """The fresh user's files: one zTXt of 100 MiB, forty of 50 MiB (2 MB of PNG).
    Pillow inflated up to 64 MiB of it (then called the file corrupt)."""
    body = inserted(sample("RGB"), 1, ztxt(size) * count)
    verify.configure(POLICY)
    tracemalloc.start()
    started = time.monotonic()
    try:
        info = verify.inspect(body, POLICY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (info.width, info.height) == (24, 16)
    assert time.monotonic() - started < 5
    assert peak < len(body) + 4 * MIB, peak


@pytest.mark.parametrize("make,size", [(ztxt, 100 * MIB), (iccp, 100 * MIB), (text, 10)])
def test_a_damaged_chunk_is_skipped_by_its_crc(make, size: int) -> None:
    """A wrong CRC is libpng's first word on an ancillary chunk: it is discarded, before
    or after the image data (Pillow read the ones after it, and refused a bomb)."""
    whole = make(size)
    damaged = whole[:-4] + bytes(b ^ 0xFF for b in whole[-4:])
    for place, body in places(damaged).items():
        assert status_of(body) == "ok", place
        assert len(pngancillary.for_pillow(body)) == len(body) - len(damaged)


def test_icons_whose_pngs_hold_chunks_libpng_skips_are_ok() -> None:
    """The PNG Pillow shows (read by its ICO plugin) and the others (read here)."""
    for extra in (ztxt(100 * MIB), text(10)[:-1] + b"\0", chunk(b"gAMA", b"")):
        png = inserted(sample("RGB"), 1, extra)
        assert status_of(icon([png])) == "ok"
        assert status_of(icon([png, sample("L")])) == "ok"
        assert status_of(icon([sample("L"), png])) == "ok"


TEXT_KINDS = st.sampled_from([b"tEXt", b"zTXt", b"iTXt", b"iTXt plain", b"iCCP"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(TEXT_KINDS, st.integers(0, 1200), st.booleans()), max_size=12),
    st.integers(1, 2),
    st.integers(200, 1000),
)
def test_any_text_under_any_pillow_limits_is_ok(chunk_list, at: int, limit: int) -> None:
    """Whatever Pillow's limits stand at (its own defaults are lower than ours), text
    around them, in any mix, is read or dropped, never a reason for ``corrupt``."""
    made = {
        b"tEXt": text,
        b"zTXt": ztxt,
        b"iTXt": itxt,
        b"iTXt plain": lambda size: itxt(size, compressed=False),
        b"iCCP": iccp,
    }
    extra = b""
    for kind, size, crc_right in chunk_list:
        whole = made[kind](size)
        extra += whole if crc_right else whole[:-4] + b"\0\0\0\0"
    body = inserted(sample("RGB"), at, extra)
    PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY = limit, 3 * limit
    verify.inspect(body, POLICY)  # raises VerifyFailure if not ok


def test_the_fresh_users_file_is_stored(tmp_path: Path, image_server: ImageServer) -> None:
    """Through a real master and worker: the 8 x 8 PNG with a 100 MiB zTXt is ``ok``,
    stored as it was sent."""
    plain = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 10)).save(plain, "PNG")
    bomb = inserted(plain.getvalue(), 1, ztxt(100 * MIB))
    urls = [
        image_server.add("/ztxt100.png", bomb),
        image_server.add("/ztxt0.png", plain.getvalue()),
    ]
    out, rows = crawl(tmp_path, urls)
    assert [rows[url]["status"] for url in urls] == ["ok", "ok"], rows
    assert (out / rows[urls[0]]["path"]).read_bytes() == bomb
