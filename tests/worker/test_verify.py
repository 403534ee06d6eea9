"""Pillow verification on images Pillow itself generated.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import io
import re
import tracemalloc
import zlib

import pytest
from imageserver import HTML_PAGE, make_image, truncated
from PIL import Image

from crawler.config import Policy
from crawler.exceptions import Corrupt, NotImage, TooManyPixels, TooSmall, UnsupportedFormat
from crawler.worker import verify

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")


def encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "width", "height", "frames", "extension"),
    [
        ("JPEG", 64, 48, 1, "jpg"),
        ("PNG", 30, 20, 1, "png"),
        ("WEBP", 32, 24, 1, "webp"),
        ("GIF", 10, 8, 1, "gif"),
        ("GIF", 12, 9, 3, "gif"),
        ("WEBP", 12, 9, 3, "webp"),
    ],
)
def test_inspect_accepts_real_images(
    fmt: str, width: int, height: int, frames: int, extension: str
) -> None:
    body = make_image(fmt, width, height, seed=width, frames=frames)
    info = verify.inspect(body, Policy())
    assert (info.format, info.width, info.height, info.frames) == (fmt, width, height, frames)
    assert info.extension == extension


@pytest.mark.parametrize(("fmt", "extension"), [("BMP", "bmp"), ("TIFF", "tif"), ("ICO", "ico")])
def test_inspect_accepts_other_raster_formats(fmt: str, extension: str) -> None:
    body = encode(Image.new("RGB", (16, 16), (200, 30, 40)), fmt)
    info = verify.inspect(body, Policy())
    assert (info.format, info.width, info.height, info.extension) == (fmt, 16, 16, extension)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
def test_inspect_truncated_image_is_corrupt(fmt: str) -> None:
    body = truncated(make_image(fmt, 200, 150, seed=1))
    with pytest.raises(Corrupt) as caught:
        verify.inspect(body, Policy())
    assert caught.value.status == "corrupt"


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (HTML_PAGE, "HTML"),
        (b"", "empty"),
        (b"just some text, not a PNG\n", "26 bytes"),
        (b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n", "PDF"),
    ],
)
def test_inspect_non_images_are_not_image(body: bytes, hint: str) -> None:
    with pytest.raises(NotImage, match=hint) as caught:
        verify.inspect(body, Policy())
    assert caught.value.status == "not_image"


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" '
    b'height="10"><rect width="10" height="10"/></svg>'
)


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (SVG, "SVG"),
        (b"  <svg width='1' height='1'></svg>", "SVG"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(40), "HEIF"),
        (b"\xff\x0a\xfa\x7f\x01\x90" + bytes(40), "JPEG XL"),
        (b"8BPS\x00\x01" + bytes(40), "PSD"),
    ],
)
def test_inspect_known_image_formats_we_do_not_store(body: bytes, name: str) -> None:
    with pytest.raises(UnsupportedFormat, match=name) as caught:
        verify.inspect(body, Policy())
    assert caught.value.status == "unsupported_format"


def test_inspect_refuses_eps_that_pillow_could_open() -> None:
    body = encode(Image.new("RGB", (16, 16), (0, 90, 200)), "EPS")
    assert Image.open(io.BytesIO(body)).format == "EPS"  # a real EPS file, Pillow knows it
    with pytest.raises(NotImage):  # ...but its plugin would run Ghostscript: never tried
        verify.inspect(body, Policy())


def test_inspect_refuses_pdf() -> None:
    body = encode(Image.new("RGB", (16, 16), (0, 90, 200)), "PDF")
    assert body.startswith(b"%PDF")
    with pytest.raises(NotImage, match="PDF"):
        verify.inspect(body, Policy())


def test_inspect_too_many_pixels() -> None:
    body = make_image("PNG", 40, 30, seed=2)
    verify.inspect(body, Policy(max_pixels=40 * 30))  # exactly at the limit: fine
    with pytest.raises(TooManyPixels) as caught:
        verify.inspect(body, Policy(max_pixels=40 * 30 - 1))
    assert caught.value.status == "too_many_pixels"


def test_inspect_counts_all_frames_of_an_animation() -> None:
    body = make_image("GIF", 20, 10, seed=3, frames=5)
    verify.inspect(body, Policy(max_pixels=20 * 10 * 2))  # 5 frames <= 4 x (2 frames' worth)
    with pytest.raises(TooManyPixels, match="frames"):
        verify.inspect(body, Policy(max_pixels=20 * 10))


def test_inspect_with_pillow_bomb_guard_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    policy = Policy(max_pixels=100)
    verify.configure(policy)
    assert Image.MAX_IMAGE_PIXELS == 100
    with pytest.raises(TooManyPixels):  # > 2 x the limit: Pillow itself refuses to open it
        verify.inspect(make_image("PNG", 64, 64, seed=4), policy)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "ICO"])
def test_a_bomb_pillow_refuses_names_the_runs_limit(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Pillow's own error said "exceeds limit of 6000 pixels" under --max-pixels 3000 (its
    guard fires at twice its limit): the status's reason names the run's limit."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    policy = Policy(max_pixels=300)
    verify.configure(policy)
    with pytest.raises(TooManyPixels) as caught:
        verify.inspect(encode(Image.new("RGB", (48, 40), (9, 99, 199)), fmt), policy)
    assert re.fullmatch(r"(\d+ pixels|\d+x\d+) exceeds max_pixels 300", str(caught.value))


@pytest.mark.parametrize(("min_width", "min_height"), [(41, 0), (0, 31), (100, 100)])
def test_inspect_too_small(min_width: int, min_height: int) -> None:
    body = make_image("JPEG", 40, 30, seed=5)
    with pytest.raises(TooSmall) as caught:
        verify.inspect(body, Policy(min_width=min_width, min_height=min_height))
    assert caught.value.status == "too_small"
    assert verify.inspect(body, Policy(min_width=40, min_height=30)).width == 40


@pytest.mark.parametrize("size", [(4000, 3000), (1920, 1080), (700, 300), (40, 40), (300, 20)])
def test_a_jpeg_check_holds_a_64th_of_its_pixels(size: tuple[int, int]) -> None:
    """libjpeg decodes large pictures at 1/8 scale (every entropy-coded byte still
    read): a 12 MP photo must not cost 12 MB of grey pixels per decode permit. Smaller
    ones are decoded at the scale that keeps what the hash needs (phash.DETAIL)."""
    width, height = size
    picture = Image.merge("RGB", [Image.effect_noise(size, sigma) for sigma in (20, 40, 60)])
    body = encode(picture, "JPEG")
    policy = Policy(min_width=1, min_height=1)
    verify.configure(policy)  # Pillow's process-wide limits, which other tests lower
    tracemalloc.start()
    try:
        info = verify.inspect(body, policy)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (info.width, info.height, info.phash is not None) == (width, height, True)
    assert peak < width * height / 64 + 256 * 1024, peak  # + the hash, Pillow, EXIF


def _apng(frames: int) -> tuple[bytes, list[bytes]]:
    """An APNG of ``frames`` distinct frames (Pillow merges equal ones), and its chunks."""
    images = [Image.new("RGB", (40, 40), (60 * i % 256, 100, 200)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "PNG", save_all=True, append_images=images[1:], duration=100)
    body, chunks, pos = out.getvalue(), [], 8
    while pos < len(body):
        end = pos + 12 + int.from_bytes(body[pos : pos + 4], "big")
        chunks.append(body[pos:end])
        pos = end
    return body, chunks


def _apng_losses() -> list[tuple[str, bytes]]:
    """Every APNG of 2-4 frames with one frame's data, control chunk or both taken out
    (every chunk left whole, every CRC right): a fresh user's APNG without its last
    fdAT was stored as ok, because Pillow's seek to that frame ends as a short file's."""
    cases = []
    for frames in (2, 3, 4):
        body, chunks = _apng(frames)
        kinds = [chunk[4:8] for chunk in chunks]
        for index, kind in enumerate(kinds):
            if kind in (b"fdAT", b"fcTL"):
                left = chunks[:index] + chunks[index + 1 :]
                cases.append((f"{frames}-no-{kind.decode()}-{index}", b"".join([body[:8], *left])))
            if kind == b"fcTL" and index + 1 < len(kinds) and kinds[index + 1] == b"fdAT":
                left = chunks[:index] + chunks[index + 2 :]
                cases.append((f"{frames}-no-frame-{index}", b"".join([body[:8], *left])))
    return cases


@pytest.mark.parametrize(("name", "body"), _apng_losses(), ids=[n for n, _ in _apng_losses()])
def test_an_apng_missing_part_of_a_frame_is_corrupt(name: str, body: bytes) -> None:
    with pytest.raises(Corrupt):
        verify.inspect(body, Policy())


def test_a_whole_apng_has_every_frame() -> None:
    for frames in (2, 3, 4):
        assert verify.inspect(_apng(frames)[0], Policy()).frames == frames


@pytest.mark.parametrize("announced", [0, 1, 2, 4, 100])
def test_an_apng_whose_actl_count_is_not_its_frames_is_corrupt(announced: int) -> None:
    """APNG 1.0: num_frames "must equal the number of fcTL chunks", 0 being invalid. A
    count of 0 or 2 for 3 frames was stored as ok (with Pillow's warning on stderr)."""
    body, chunks = _apng(3)
    index = next(i for i, chunk in enumerate(chunks) if chunk[4:8] == b"acTL")
    data = announced.to_bytes(4, "big") + chunks[index][12:16]  # num_frames, num_plays
    crc = zlib.crc32(b"acTL" + data).to_bytes(4, "big")
    chunks[index] = chunks[index][:8] + data + crc
    with pytest.raises(Corrupt):
        verify.inspect(b"".join([body[:8], *chunks]), Policy())
