"""Whole-file rules, by sweeps over the class of inputs rather than one file each.

- Truncation: every proper prefix of a valid file of every supported format (single and
  multi-frame, progressive, interlaced, MPO, multi-page LZW TIFF, ICO, AVIF) is
  ``corrupt``, or ``not_image`` while its signature itself is cut; never ``ok``, never
  anything but a verification status.
- Mutation (Hypothesis): bit flips, deleted and duplicated spans, rewritten length
  fields: verification always ends in one of the closed statuses, within a time bound.
- A handful of prefixes end to end, through a real master and worker.
"""

from __future__ import annotations

import io
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imageserver import ImageServer
from PIL import Image
from samples import SAMPLES, SWEEP_POLICY, crawl, status_of

from crawler.exceptions import VerifyFailure
from crawler.formats import EXTENSIONS
from crawler.worker import verify

POLICY = SWEEP_POLICY
VERIFY_STATUSES = {"ok", "not_image", "unsupported_format", "corrupt", "too_many_pixels"}
BODIES = {name: make() for name, make in SAMPLES.items()}


def complete_length(name: str, body: bytes) -> int:
    """Where the image ends: Pillow's TIFF writer pads its files with zero bytes that
    nothing points to, and a cut inside that padding loses nothing."""
    return len(body.rstrip(b"\x00")) if name.startswith("tiff") else len(body)


@pytest.mark.parametrize("name", SAMPLES)
def test_every_prefix_is_rejected(name: str) -> None:
    body = BODIES[name]
    verify.configure(POLICY)
    assert status_of(body) == "ok", name
    end = complete_length(name, body)
    step = max(1, end // 600)  # every offset of small files, ~600 spread over large ones
    seen = {}
    for cut in [*range(0, end, step), end - 1]:
        seen[cut] = status_of(body[:cut])
    bad = {cut: status for cut, status in seen.items() if status not in ("corrupt", "not_image")}
    assert bad == {}, f"{name}: prefixes not rejected: {dict(list(bad.items())[:10])}"
    # not_image only while the signature itself is cut: the first bytes
    latest = max((cut for cut, status in seen.items() if status == "not_image"), default=0)
    assert latest < 20, f"{name}: {latest} bytes read as no image at all"


# What may follow a whole image: a camera's trailer, a copy of the file, another
# format's file, single bytes that open a block in some format (GIF's image ',' and
# extension '!', its trailer ';'), and a box header with a printable type (ISO BMFF).
TRAILERS = {
    "camera": b"\x00camera trailer\xff\xd9" * 20,
    "png": BODIES["png"],
    "gif": BODIES["gif-animated"],
    "box": b"\x00\x00\x10\x00free" + b"x" * 8,
    **{f"byte-{byte:02x}": bytes([byte]) for byte in b",!;\x00\xff\x21\x2c"},
}


@pytest.mark.parametrize("name", SAMPLES)
def test_trailing_bytes_after_a_whole_image_are_accepted(name: str) -> None:
    """Bytes after a complete image change nothing: the same status, frames and hash.
    Until 2026-12-01 a GIF followed by a copy of itself was "GIF announces 2 frames,
    1 read", and one followed by ',' or '!' an error of Python's struct module, both
    ``corrupt`` (a fresh user's)."""
    verify.configure(POLICY)
    whole = verify.inspect(BODIES[name], POLICY)
    for label, tail in {**TRAILERS, "itself": BODIES[name]}.items():
        try:
            info = verify.inspect(BODIES[name] + tail, POLICY)
        except VerifyFailure as failure:
            pytest.fail(f"{name} + {label}: {failure.status}: {failure}")
        assert (info.frames, info.phash) == (whole.frames, whole.phash), f"{name} + {label}"


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SAMPLES)))
    body = bytearray(BODIES[name])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "delete", "duplicate", "length"]))
        at = draw(st.integers(0, len(body) - 1))
        if kind == "flip":
            body[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "delete":
            del body[at : at + draw(st.integers(1, 64))]
        elif kind == "duplicate":
            body[at:at] = body[at : at + draw(st.integers(1, 64))]
        else:  # a length or size field rewritten: big-endian or little-endian, 2 or 4 bytes
            width = draw(st.sampled_from([2, 4]))
            value = draw(st.sampled_from([0, 1, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF]))
            order = draw(st.sampled_from(["big", "little"]))
            body[at : at + width] = (value & ((1 << 8 * width) - 1)).to_bytes(width, order)
        if not body:
            break
    return name, bytes(body)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_images_end_in_a_closed_status(case: tuple[str, bytes]) -> None:
    name, body = case
    verify.configure(POLICY)
    started = time.process_time()
    status = status_of(body)
    assert status in VERIFY_STATUSES, (name, status)
    assert time.process_time() - started < 2.0, name  # small inputs, bounded work


@pytest.mark.parametrize("name", ["jpeg-progressive", "png-interlaced", "gif-animated", "mpo"])
def test_prefixes_end_to_end(name: str, tmp_path: Path, image_server: ImageServer) -> None:
    """Three cuts of one file through a real master and worker: each row is corrupt, none
    stored; the whole file is ok and stored byte for byte."""
    body = BODIES[name]
    cuts = {len(body) // 3, len(body) // 2, len(body) - 1}
    urls = {image_server.add(f"/{name}/cut{cut}", body[:cut]): cut for cut in cuts}
    urls[image_server.add(f"/{name}/whole", body)] = len(body)
    out, rows = crawl(tmp_path, list(urls))
    for row in rows.values():
        if urls[row["url"]] == len(body):
            assert row["status"] == "ok" and row["path"].endswith(EXTENSIONS[row["format"]])
            assert (out / row["path"]).read_bytes() == body
        else:
            assert (row["status"], row["path"]) == ("corrupt", None), row


def pillow_decodes_every_frame(body: bytes) -> bool:
    """Does Pillow open ``body`` and decode each of its frames without an error?"""
    try:
        with Image.open(io.BytesIO(body)) as image:
            for frame in range(getattr(image, "n_frames", 1)):
                image.seek(frame)
                image.load()
    except Exception:  # any of Pillow's many error types: it could not decode the whole
        return False
    return True


def with_png_crcs(body: bytes) -> bytes:
    """``body`` with every PNG chunk's CRC made right again, so that damage inside a chunk
    reaches the decoder instead of failing the container check."""
    out, pos = bytearray(body[:8]), 8
    while pos + 8 <= len(body):
        length = int.from_bytes(body[pos : pos + 4], "big")
        kind_and_data = body[pos + 4 : pos + 8 + length]
        if pos + 12 + length > len(body):
            return bytes(out + body[pos:])
        out += body[pos : pos + 4] + kind_and_data + zlib.crc32(kind_and_data).to_bytes(4, "big")
        pos += 12 + length
    return bytes(out + body[pos:])


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, bytes]:
    """A sample with bytes changed (for PNG and APNG, CRCs then made right: what a broken
    encoder or a crafted file gives)."""
    name = draw(st.sampled_from(sorted(SAMPLES)))
    body = bytearray(BODIES[name])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body) - 1))
        body[at] ^= draw(st.integers(1, 255))
    png = name.startswith(("png", "apng"))
    return name, with_png_crcs(bytes(body)) if png else bytes(body)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_what_pillow_cannot_decode_in_full_is_never_ok(case: tuple[str, bytes]) -> None:
    """Verification decodes every frame: a file whose pixel data Pillow fails to decode
    is never ``ok``. Until 2026-12-01 a PNG's decode error was taken for EXIF damage
    (Pillow's ``getexif`` decodes a PNG's pixels to find an eXIf chunk after them) and
    the image stored: a broken zlib stream, an unknown filter type."""
    name, body = case
    verify.configure(POLICY)
    if status_of(body) == "ok":
        assert pillow_decodes_every_frame(body), name


@pytest.mark.parametrize("flaw", ["zlib", "filter"])
@pytest.mark.parametrize("animated", [False, True])
def test_a_png_whose_pixel_data_is_damaged_is_corrupt(flaw: str, animated: bool) -> None:
    """The fresh user's files: a valid container (every CRC right) whose first image
    data is a zlib stream with a byte changed, or scanlines with filter type 7."""
    frames = [Image.new("RGB", (64, 64), (i * 60, 90, 30)) for i in range(2 if animated else 1)]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=animated, append_images=frames[1:])
    body = bytearray(out.getvalue())
    start = body.index(b"IDAT") + 4
    length = int.from_bytes(body[start - 8 : start - 4], "big")
    rows = zlib.decompress(bytes(body[start : start + length]))
    if flaw == "zlib":
        data = bytearray(zlib.compress(rows))
        data[len(data) // 2] ^= 0x55
    else:
        scan = bytearray(rows)
        scan[0 :: 64 * 3 + 1] = b"\x07" * 64
        data = bytearray(zlib.compress(bytes(scan)))
    damaged_body = bytes(body[: start - 8]) + len(data).to_bytes(4, "big") + b"IDAT" + data
    damaged_body = with_png_crcs(damaged_body + b"\0\0\0\0" + bytes(body[start + length + 4 :]))
    assert not pillow_decodes_every_frame(damaged_body)
    assert status_of(damaged_body) == "corrupt"
