"""Every image of an ICO whole, and a BMP's rows inside its file (a fresh user's,
2026-12-01: an ICO whose 64 x 64 PNG had one IDAT byte changed, or whose 16 x 16 PNG
did not decode at all, was stored as ``ok``; so was a BMP missing its last row's
padding).

Sweeps: a changed byte at many offsets, and cuts, in each image of multi-entry ICOs
whose images are PNG or BMP (24-bit with its mask, 32-bit, 8-bit); every width's BMP
cut by 1 to 4 bytes; the intact files stay ``ok``.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from imageserver import ImageServer
from PIL import Image
from samples import crawl, picture
from test_png_rules import verdict
from test_verify_sweeps import with_png_crcs

SIZES = [(16, 16), (32, 32), (48, 48)]


def ico(mode: str, bitmap: bool) -> bytes:
    out = io.BytesIO()
    source = picture(48, 48, seed=5, mode=mode)
    source.save(out, "ICO", sizes=SIZES, bitmap_format="bmp" if bitmap else "png")
    return out.getvalue()


ICONS = {
    "png": ico("RGBA", bitmap=False),
    "bmp-32": ico("RGBA", bitmap=True),
    "bmp-24": ico("RGB", bitmap=True),
    "bmp-8": ico("P", bitmap=True),
}


def places(body: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each image, in directory order."""
    count = int.from_bytes(body[4:6], "little")
    return [struct.unpack("<II", body[14 + 16 * i : 22 + 16 * i])[::-1] for i in range(count)]


def with_image(body: bytes, index: int, image: bytes) -> bytes:
    """``body`` with image ``index`` replaced (the directory's sizes and offsets redone)."""
    images = [body[o : o + n] for o, n in places(body)]
    images[index] = image
    out = bytearray(body[: 6 + 16 * len(images)])
    offset = len(out)
    for i, data in enumerate(images):
        out[14 + 16 * i : 22 + 16 * i] = struct.pack("<II", len(data), offset)
        offset += len(data)
    return bytes(out) + b"".join(images)


@pytest.mark.parametrize("name", ICONS)
def test_intact_icons_are_ok(name: str) -> None:
    assert verdict(ICONS[name]) == ("ok", "")
    assert len(places(ICONS[name])) == 3


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_changed_byte_in_any_png_image_is_corrupt(index: int) -> None:
    """Each PNG inside is walked as a PNG: every byte is under a CRC (or a length), so
    any change is found, in the small images as in the one Pillow shows."""
    body = ICONS["png"]
    offset, size = places(body)[index]
    for at in range(8, size, max(1, size // 150)):
        damaged = bytearray(body)
        damaged[offset + at] ^= 0x55
        status, text = verdict(bytes(damaged))
        assert status == "corrupt" and text.startswith(f"ICO image {index + 1}: "), (at, text)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_png_image_that_does_not_decode_is_corrupt(index: int) -> None:
    """Every CRC right, the zlib data damaged: only decoding the image finds it."""
    body = ICONS["png"]
    offset, size = places(body)[index]
    image = bytearray(body[offset : offset + size])
    start = image.index(b"IDAT") + 4
    rows = bytearray(zlib.decompress(bytes(image[start : start + 30_000])))
    rows[0] = 9  # filter type 9
    data = zlib.compress(bytes(rows))
    length = int.from_bytes(image[start - 8 : start - 4], "big")
    image = image[: start - 8] + len(data).to_bytes(4, "big") + b"IDAT" + data + b"\0" * 4
    image += body[offset + start + length + 4 : offset + size]
    status, text = verdict(with_image(body, index, with_png_crcs(bytes(image))))
    # The largest is the one Pillow shows: decoded once, by verify (IcoImageFile)
    named = "cannot decode ICO: " if index == 2 else f"ICO image {index + 1}: "
    assert status == "corrupt" and text.startswith(named), text


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("name", list(ICONS))
def test_an_image_cut_short_is_corrupt(name: str, index: int) -> None:
    """The directory's size and the image's bytes cut together: a PNG before IEND, a BMP
    before its rows and mask, whichever image it is. A BMP is read by its own header up
    to the next image (``test_icon_extents``): the next images' bytes are not its rows
    (until 2026-12-01 only the last one was found cut, a review's)."""
    body = ICONS[name]
    offset, size = places(body)[index]
    # A mask's padding is not required (Pillow writes its rows unpadded): up to the mask
    reach = size if name in ("png", "bmp-32") else size * 3 // 4
    # An empty DIB entry names the next image's place: that image, read once, is whole
    for keep in range(0 if name == "png" else 1, reach, max(1, size // 120)):
        status, text = verdict(with_image(body, index, body[offset : offset + keep]))
        assert status == "corrupt", (keep, size, text)
        assert "unpack" not in text and "index out of range" not in text, text


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA"])
@pytest.mark.parametrize("width", [1, 2, 3, 5, 7, 9, 23])
def test_a_bmp_missing_its_last_bytes_is_corrupt(mode: str, width: int) -> None:
    """Rows padded to 4 bytes: a file short of its last row's padding is cut."""
    out = io.BytesIO()
    picture(max(width, 2), 5, mode="RGB").resize((width, 5)).convert(mode).save(out, "BMP")
    body = out.getvalue()
    assert verdict(body) == ("ok", "")
    assert verdict(body + b"trailer") == ("ok", "")
    for cut in (1, 2, 3, 4):
        assert verdict(body[:-cut]) == ("corrupt", "BMP ends before its pixel rows (truncated)")


def test_damaged_icons_end_to_end(tmp_path: Path, image_server: ImageServer) -> None:
    """Through a real master and worker: the fresh user's ICO (one IDAT byte of its
    largest PNG changed) is a corrupt row, nothing stored; the intact one is stored."""
    body = ICONS["png"]
    offset, _size = places(body)[2]
    damaged = bytearray(body)
    damaged[body.index(b"IDAT", offset) + 40] ^= 0x55
    urls = {image_server.add("/whole.ico", body): "ok"}
    urls[image_server.add("/damaged.ico", bytes(damaged))] = "corrupt"
    out, rows = crawl(tmp_path, list(urls))
    for row in rows.values():
        assert row["status"] == urls[row["url"]], row
        if row["status"] == "ok":
            assert (out / row["path"]).read_bytes() == body
        else:
            assert row["path"] is None and row["error"].startswith("ICO image 3: PNG chunk")
    assert len(list(out.rglob("*.ico"))) == 1
    assert Image.open(io.BytesIO(body)).size == (48, 48)
