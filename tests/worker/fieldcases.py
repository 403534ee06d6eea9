"""The field cases of ../shared/cases (issue 10), as bytes made here, with the rows expected.

Each case is a publicly reported image-download failure; ``CASES`` maps a case to its
files: name -> (bytes, expected status, expected format, expected (width, height)).
The bytes are generated the way the case folder's server.py makes them.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class File:
    body: bytes
    status: str
    format: str | None = None
    size: tuple[int, int] | None = None  # displayed (width, height)
    error: str | None = None  # a part of the expected error


def _enc(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _pattern(w: int, h: int, mode: str = "RGB") -> Image.Image:
    image = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    image.paste((200, 40, 90), (w // 4, h // 4, w // 2, h // 2))
    return image.convert(mode)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def case01_mpo() -> dict[str, File]:
    first, second = _pattern(640, 480), _pattern(640, 480).rotate(180)
    mpo = _enc(first, "MPO", save_all=True, append_images=[second], quality=85)
    return {
        "DSC_0001.JPG": File(mpo, "ok", "MPO", (640, 480)),
        "plain.jpg": File(_enc(first, "JPEG", quality=85), "ok", "JPEG", (640, 480)),
    }


def case02_gif_cut_in_frame_header() -> dict[str, File]:
    frames = [Image.new("RGB", (40, 40), (i * 60, 255 - i * 60, 30)) for i in range(4)]
    gif = _enc(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    second = gif.index(b"\x21\xf9\x04", gif.index(b"\x21\xf9\x04") + 1)
    return {
        "anim.gif": File(gif, "ok", "GIF", (40, 40)),
        "cut-in-gce.gif": File(gif[: second + 1], "corrupt", error="truncated"),
        "cut-in-descriptor.gif": File(gif[: second + 10], "corrupt", error="truncated"),
    }


def case05_png_large_metadata() -> dict[str, File]:
    png = _enc(Image.new("RGB", (320, 240), (200, 80, 40)), "PNG")
    events = "".join(
        f'<rdf:li stEvt:action="saved" stEvt:instanceID="xmp.iid:{i:08x}-{i * 7919 % 99991:05d}"'
        f' stEvt:when="2019-03-{1 + i % 28:02d}T10:{i % 60:02d}:00+01:00"/>\n'
        for i in range(7000)
    )
    itxt = b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + zlib.compress(events.encode(), 9)
    big = png[:33] + _chunk(b"iTXt", itxt) + png[33:]
    return {
        "photo.png": File(png, "ok", "PNG", (320, 240)),
        "photo-xmp.png": File(big, "ok", "PNG", (320, 240)),
    }


def case06_broken_headers() -> dict[str, File]:
    image = _pattern(320, 240)
    png = _enc(image, "PNG")
    zero = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )
    tif = _enc(image, "TIFF", compression="tiff_deflate")
    return {
        "whole.png": File(png, "ok", "PNG", (320, 240)),
        "zero.png": File(zero, "corrupt"),
        "cut40.png": File(png[:40], "corrupt"),
        "half.tif": File(tif[: len(tif) // 2], "corrupt"),
    }


def case10_jpeg_missing_eoi() -> dict[str, File]:
    jpg = _enc(_pattern(640, 480), "JPEG", quality=90)
    trailer = b"\x00\x00\x00\x18ftypmp42" + bytes(range(250)) * 8 + b"SEFT"
    return {
        "photo.jpg": File(jpg, "ok", "JPEG", (640, 480)),
        "no-eoi.jpg": File(jpg[:-2], "corrupt"),
        "no-eoi-trailer.jpg": File(jpg[:-2] + trailer, "corrupt"),
        "eoi-trailer.jpg": File(jpg + trailer, "ok", "JPEG", (640, 480)),
    }


def case15_format_zoo() -> dict[str, File]:
    base = _pattern(320, 240)
    frames = [_pattern(64, 48).rotate(i * 90) for i in range(4)]
    exif = Image.Exif()
    exif[0x010E] = "x" * 65000  # a ~64 KiB APP1 segment
    prog = _enc(_pattern(640, 480), "JPEG", progressive=True, quality=90)
    last_sos = prog.rindex(b"\xff\xda")
    pal = _pattern(64, 64).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    anim = {"save_all": True, "append_images": frames[1:], "duration": 100}
    return {
        "cmyk.jpg": File(_enc(base.convert("CMYK"), "JPEG"), "ok", "JPEG", (320, 240)),
        "progressive.jpg": File(prog, "ok", "JPEG", (640, 480)),
        "progressive-cut-in-last-scan.jpg": File(
            prog[: last_sos + (len(prog) - last_sos) // 2], "corrupt"
        ),
        "rgb16.png": File(_enc(base.convert("I;16"), "PNG"), "ok", "PNG", (320, 240)),
        "palette-trns.png": File(_enc(pal, "PNG", transparency=3), "ok", "PNG", (64, 64)),
        "anim.apng": File(_enc(frames[0], "PNG", **anim), "ok", "PNG", (64, 48)),
        "anim.webp": File(_enc(frames[0], "WEBP", **anim), "ok", "WEBP", (64, 48)),
        "photo.bmp": File(_enc(base, "BMP"), "ok", "BMP", (320, 240)),
        "favicon.ico": File(
            _enc(_pattern(64, 64), "ICO", sizes=[(16, 16), (32, 32), (64, 64)]),
            "ok",
            "ICO",
            (64, 64),
        ),
        "pixel.gif": File(_enc(Image.new("P", (1, 1)), "GIF"), "ok", "GIF", (1, 1)),
        "trailing-garbage.jpg": File(
            _enc(base, "JPEG") + b"\x00GARBAGE" * 64, "ok", "JPEG", (320, 240)
        ),
        "big-exif.jpg": File(_enc(base, "JPEG", exif=exif), "ok", "JPEG", (320, 240)),
        "gray-alpha.png": File(_enc(base.convert("LA"), "PNG"), "ok", "PNG", (320, 240)),
        "interlaced.gif": File(
            _enc(base.convert("P"), "GIF", interlace=True), "ok", "GIF", (320, 240)
        ),
    }


def growing_gif(side: int) -> bytes:
    """A 10x10 GIF whose second frame is ``side`` x ``side``, outside the logical screen
    (GIF89a section 20 forbids it; Pillow grows the canvas): ~145 KB for 14000."""
    big = Image.new("P", (side, side), 0)
    big.putpalette([0, 0, 0, 255, 255, 255] * 128)
    big_gif = _enc(big, "GIF")
    lzw = big_gif[big_gif.index(b"\x2c\x00\x00\x00\x00") + 10 : -1]
    small = Image.new("P", (10, 10), 1)
    small.putpalette([0, 0, 0, 255, 255, 255] * 128)
    small_gif = _enc(small, "GIF")
    gce = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, side, side, 0)
    return small_gif[:-1] + gce + descriptor + lzw + b"\x3b"


def case16_gif_canvas_grows() -> dict[str, File]:
    small = growing_gif(14000)
    head = small[: small.index(b"\x21\xf9\x04\x00\x0a")]
    bigger = growing_gif(14000).replace(
        struct.pack("<HHHHB", 0, 0, 14000, 14000, 0), struct.pack("<HHHHB", 0, 0, 20000, 20000, 0)
    )
    return {
        "small.gif": File(head + b"\x3b", "ok", "GIF", (10, 10)),
        "grows.gif": File(small, "too_many_pixels"),
        "grows-more.gif": File(bigger, "too_many_pixels"),
    }


def case18_exif_orientation() -> dict[str, File]:
    image = _pattern(480, 320)
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "portrait-exif6.jpg": File(_enc(image, "JPEG", exif=exif), "ok", "JPEG", (320, 480)),
        "portrait-upright.jpg": File(
            _enc(image.rotate(-90, expand=True), "JPEG"), "ok", "JPEG", (320, 480)
        ),
    }


def case19_avif() -> dict[str, File]:
    image = _pattern(320, 240)
    return {
        "hero.jpg": File(_enc(image, "AVIF"), "ok", "AVIF", (320, 240)),
        "control.jpg": File(_enc(image, "JPEG"), "ok", "JPEG", (320, 240)),
    }


CASES = {
    "01-mpo-camera-jpeg": case01_mpo,
    "02-gif-truncated-in-frame-header": case02_gif_cut_in_frame_header,
    "05-png-large-metadata-chunk": case05_png_large_metadata,
    "06-broken-header-reported-as-not-image": case06_broken_headers,
    "10-jpeg-missing-eoi": case10_jpeg_missing_eoi,
    "15-format-zoo": case15_format_zoo,
    "16-gif-later-frame-enlarges-canvas": case16_gif_canvas_grows,
    "18-exif-orientation-size": case18_exif_orientation,
    "19-avif-behind-jpg-url": case19_avif,
}
# Extra master flags a case runs with (its args.txt).
CASE_ARGS = {"18-exif-orientation-size": ("--min-height", "400")}
