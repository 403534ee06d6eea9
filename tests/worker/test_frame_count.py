"""Frame-count bombs: an image of very many tiny frames costs bounded work (a fresh
user's, 2026-12-01: a 5 MB WebP of 100,000 1 x 1 frames took 13.5 s, a 6.9 MB GIF of
300,000 took 16 s, both ``ok``; a 50 MB WebP of 1,000,000 never finished).

- Every multi-picture format verified frame by frame (GIF, WebP, APNG, TIFF pages), made
  by hand as a hostile server would, 1 x 1 frames: just past MAX_FRAMES and several
  times it is ``too_many_pixels``, naming the count and the bound, in bounded CPU
  whatever the count; exactly MAX_FRAMES stays ``ok``.
- The frame loop's own bound, for a format whose count no walk or header gave (MPO),
  and an animated AVIF's header count, with the bound lowered for the test.
- An MPO whose index names one region of the file again and again is read in place,
  not copied picture by picture (memory).
- Real animations of a few hundred frames made by Pillow stay ``ok``; end to end, bombs
  get their row and status, the real ones are stored.
(ICO has its own bound, ``icon.MAX_IMAGES``: test_icon_bounds.py.)
"""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from imageserver import ImageServer
from PIL import Image
from samples import crawl, mpo, picture
from test_png_data import chunk

from crawler.config import Policy
from crawler.exceptions import TooManyPixels
from crawler.formats import EXTENSIONS
from crawler.worker import framecount, verify

MAX_FRAMES = 10_000  # framecount.MAX_FRAMES: the README names it
MAX_PAGES = 1_000  # framecount.MAX_PAGES, a TIFF's
POLICY = Policy()  # the default limits: the pixel budget never sees 1 x 1 frames
REFUSE_CPU = 1.0  # seconds: a refusal is a walk up to the bound, or a header read


def gif(count: int) -> bytes:
    """A GIF89a of ``count`` 1 x 1 frames, each with its graphic control extension."""
    head = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + bytes(3) + b"\xff" * 3
    head += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = b"\x21\xf9\x04\x00\x0a\x00\x00\x00" + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
    return head + (frame + b"\x02\x02\x44\x01\x00") * count + b"\x3b"


def _riff(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + b"\x00" * (len(data) % 2)


def webp(count: int) -> bytes:
    """An animated WebP (RIFF: VP8X, ANIM, ``count`` ANMF) of one lossless 1 x 1 frame
    repeated."""
    one = io.BytesIO()
    Image.new("RGBA", (1, 1), (9, 9, 9, 255)).save(one, "WEBP", lossless=True)
    still = one.getvalue()
    at = still.index(b"VP8L")
    bitstream = _riff(
        b"VP8L", still[at + 8 : at + 8 + int.from_bytes(still[at + 4 : at + 8], "little")]
    )
    body = b"WEBP" + _riff(b"VP8X", b"\x12" + bytes(9)) + _riff(b"ANIM", bytes(6))
    frame = _riff(b"ANMF", bytes(12) + (10).to_bytes(3, "little") + b"\x00" + bitstream)
    body += frame * count
    return b"RIFF" + struct.pack("<I", len(body)) + body


def apng(count: int) -> bytes:
    """An APNG of ``count`` 1 x 1 grey frames (APNG 1.0: acTL, then fcTL and IDAT or fdAT
    per frame, sequence numbers in order)."""
    rows = b"\x78\x9c\x63\x60\x00\x00\x00\x02\x00\x01"  # zlib of one row: filter 0, 0x00
    control = struct.pack(">IIIIHHBB", 1, 1, 0, 0, 1, 10, 0, 0)
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))]
    parts += [chunk(b"acTL", struct.pack(">II", count, 0))]
    parts += [chunk(b"fcTL", struct.pack(">I", 0) + control), chunk(b"IDAT", rows)]
    for frame in range(1, count):
        parts.append(chunk(b"fcTL", struct.pack(">I", 2 * frame - 1) + control))
        parts.append(chunk(b"fdAT", struct.pack(">I", 2 * frame) + rows))
    return b"".join([*parts, chunk(b"IEND", b"")])


def tiff(count: int) -> bytes:
    """A little-endian TIFF of ``count`` 1 x 1 grey pages (TIFF 6.0: an IFD a page, each
    naming one uncompressed strip), chained."""
    tags = [(256, 1), (257, 1), (258, 8), (259, 1), (262, 1), (273, 8), (278, 1), (279, 1)]
    size = 2 + 12 * len(tags) + 4
    pages = []
    for page in range(count):
        following = 0 if page == count - 1 else 12 + size * (page + 1)
        entries = b"".join(
            struct.pack("<HHII", tag, 3 if tag != 273 else 4, 1, value) for tag, value in tags
        )
        pages.append(struct.pack("<H", len(tags)) + entries + struct.pack("<I", following))
    return b"II*\x00" + struct.pack("<I", 12) + b"\x80\x00\x00\x00" + b"".join(pages)


# format: (maker, its bound, what the error says of a file past it)
BOMBS: dict[str, tuple[Callable[[int], bytes], int, str]] = {
    "GIF": (gif, MAX_FRAMES, f"GIF has at least {MAX_FRAMES + 1} frames"),
    "WEBP": (webp, MAX_FRAMES, "WebP announces {count} frames"),
    "PNG": (apng, MAX_FRAMES, "APNG announces {count} frames"),
    "TIFF": (tiff, MAX_PAGES, f"TIFF has at least {MAX_PAGES + 1} pages"),
}


def verdict(body: bytes) -> tuple[str, int]:
    """(the error, or the format and frame count) verification gives ``body``."""
    verify.configure(POLICY)
    try:
        info = verify.inspect(body, POLICY)
    except TooManyPixels as failure:
        return str(failure), 0
    return info.format, info.frames


def test_the_bound_is_the_one_the_readme_names() -> None:
    assert (framecount.MAX_FRAMES, framecount.MAX_PAGES) == (MAX_FRAMES, MAX_PAGES)


@pytest.mark.parametrize("past", [1, 2, 20_000])
@pytest.mark.parametrize("fmt", sorted(BOMBS))
def test_past_the_bound_is_refused_in_bounded_work(fmt: str, past: int) -> None:
    make, bound, said = BOMBS[fmt]
    body = make(bound + past)
    started = time.process_time()
    error, _ = verdict(body)
    assert time.process_time() - started < REFUSE_CPU, (fmt, past)
    assert error == (
        f"{said.format(count=bound + past)}, more than the {bound} one image may have here"
        " (a fixed bound, not --max-pixels)"
    )


@pytest.mark.parametrize("fmt", sorted(BOMBS))
def test_exactly_the_bound_is_ok(fmt: str) -> None:
    make, bound, _ = BOMBS[fmt]
    assert verdict(make(bound)) == (fmt, bound)


@pytest.mark.parametrize("fmt", sorted(BOMBS))
def test_a_few_tiny_frames_are_ok(fmt: str) -> None:
    """The hand-made files are valid images: only their count is refused."""
    assert verdict(BOMBS[fmt][0](3)) == (fmt, 3)


def test_the_frame_loop_holds_the_bound_for_any_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """MPO's pictures are counted by no walk and no header check (its index, in one APP2
    segment, holds at most about 4,000): the frame loop refuses the first past it."""
    body = mpo()
    assert verdict(body) == ("MPO", 2)
    monkeypatch.setattr(framecount, "MAX_FRAMES", 1)
    assert verdict(body)[0].startswith("MPO announces 2 frames, more than the 1 one image")
    monkeypatch.setattr(framecount, "_ANNOUNCED", {})  # the loop alone
    assert verdict(body)[0].startswith("MPO has more than 1 frames, more than the 1 ")


@pytest.mark.skipif("AVIF" not in EXTENSIONS, reason="this Pillow decodes no AVIF")
def test_an_animated_avif_is_held_to_the_bound_its_header_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An AVIF image sequence's count comes from libavif when Pillow opens it (a real
    one of 10,001 frames would take minutes to encode: the bound is lowered instead)."""
    pictures = [picture(16, 16, seed) for seed in range(3)]
    out = io.BytesIO()
    pictures[0].save(out, "AVIF", save_all=True, append_images=pictures[1:], duration=40)
    assert verdict(out.getvalue()) == ("AVIF", 3)
    monkeypatch.setattr(framecount, "MAX_FRAMES", 2)
    assert verdict(out.getvalue())[0].startswith("AVIF announces 3 frames, more than the 2 ")


def mpo_naming_one_region(count: int, tail: int) -> bytes:
    """A Pillow-made MPO of ``count`` 8 x 8 pictures and ``tail`` bytes appended, its
    index rewritten so that every picture after the first names the second picture and
    all that follows it, to the end of the file."""
    pictures = [Image.new("RGB", (8, 8), (i % 256, 0, 0)) for i in range(count)]
    out = io.BytesIO()
    pictures[0].save(out, "MPO", save_all=True, append_images=pictures[1:])
    body = bytearray(out.getvalue() + bytes(tail))
    with Image.open(io.BytesIO(body)) as image:
        second = image.mpinfo[0xB002][1]
    base = body.index(b"MPF\x00") + 4  # offsets count from here (CIPA DC-007 5.2)
    order = "<" if body[base : base + 2] == b"II" else ">"
    entry = body.index(struct.pack(order + "II", second["Size"], second["DataOffset"]))
    rest = struct.pack(order + "II", len(body) - base - second["DataOffset"], second["DataOffset"])
    for index in range(count - 1):  # MP entries: attribute, size, offset, 2 links
        body[entry + 16 * index : entry + 16 * index + 8] = rest
    return bytes(body)


def test_an_mpo_index_naming_one_region_many_times_is_read_in_place() -> None:
    body = mpo_naming_one_region(200, 200_000)
    tracemalloc.start()
    try:
        assert verdict(body) == ("MPO", 200)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * len(body), peak  # copies were 200 x 200 KB


def animation(fmt: str, count: int) -> bytes:
    """A real animation by Pillow: ``count`` distinct 48 x 32 frames."""
    frames = [
        picture(48, 32, seed).convert("P" if fmt == "GIF" else "RGB") for seed in range(count)
    ]
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=40, loop=0)
    return out.getvalue()


REAL = {"GIF": 400, "WEBP": 300, "PNG": 300, "TIFF": 200}


@pytest.mark.parametrize("fmt", sorted(REAL))
def test_real_animations_of_hundreds_of_frames_are_ok(fmt: str) -> None:
    assert verdict(animation(fmt, REAL[fmt])) == (fmt, REAL[fmt])


def test_end_to_end_bombs_are_refused_and_real_animations_stored(
    tmp_path: Path, image_server: ImageServer
) -> None:
    bombs = {
        image_server.add(f"/bomb.{fmt}", make(bound + 20_000)): fmt
        for fmt, (make, bound, _) in BOMBS.items()
    }
    body = animation("GIF", REAL["GIF"])
    real = image_server.add("/real.gif", body)
    out, rows = crawl(tmp_path, [*bombs, real])
    for url in bombs:
        row = rows[url]
        assert (row["status"], row["path"]) == ("too_many_pixels", None), row
        assert "one image may have here (a fixed bound" in row["error"]
        assert "\n" not in row["error"]
    assert (rows[real]["status"], rows[real]["format"]) == ("ok", "GIF")
    assert (out / rows[real]["path"]).read_bytes() == body
