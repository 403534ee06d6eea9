"""The image formats the crawler stores, and what a body is, from its first bytes.

The one home for the format set: ``EXTENSIONS`` (Pillow format name -> extension of the
stored file), ``OPEN_FORMATS`` (the Pillow plugins ever tried) and the signatures that
identify a body. A format is in the set when the installed Pillow decodes it and
browsers show it on the web; AVIF joins when Pillow was built with it.

``identify`` reads only the signature (magic bytes), never the URL or Content-Type:

- a supported format's signature: the body *is* that image, so any later failure is
  ``corrupt``;
- a signature of an image format the crawler does not store (SVG, HEIC/HEIF, JPEG XL,
  JPEG 2000, PSD, ...): ``unsupported_format``, naming it;
- anything else (HTML, text, PDF, PostScript, empty, a signature cut short): no image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PIL import features

EXTENSIONS: dict[str, str] = {
    "JPEG": "jpg",
    "MPO": "jpg",  # multi-picture JPEG from phone cameras: stored as the JPEG it is
    "PNG": "png",  # APNG too
    "GIF": "gif",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tif",
    "ICO": "ico",
}
if features.check("avif"):  # Pillow >= 11.2 built with libavif
    EXTENSIONS["AVIF"] = "avif"
# The plugins Image.open may try; MPO is not one: the JPEG plugin opens an MPO file and
# reports it as MPO.
OPEN_FORMATS = [name for name in EXTENSIONS if name != "MPO"]

# ISO base media files (AVIF, HEIF) name their kind in the 'ftyp' box's brands.
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
_SVG = re.compile(rb"^(?:\s|<\?xml[^>]*>|<!--.*?-->|<!doctype svg[^>]*>)*<svg[\s>]", re.I | re.S)


@dataclass(frozen=True)
class Identity:
    """What the first bytes say a body is."""

    format: str | None  # Pillow's name (EXTENSIONS) or the unsupported format's name
    supported: bool  # True: a format the crawler stores


NOT_AN_IMAGE = Identity(None, False)


def identify(head: bytes) -> Identity:
    """The identity of a body from its first bytes (64 are plenty; SVG looks at up to 1 KiB)."""
    for name, test in _SUPPORTED:
        if name in EXTENSIONS and test(head):
            return Identity(name, True)
    brand = _ftyp_brands(head)
    if brand & _AVIF_BRANDS:
        return Identity("AVIF", "AVIF" in EXTENSIONS)
    if brand & _HEIF_BRANDS:
        return Identity("HEIF", False)
    for name, test in _UNSUPPORTED:
        if test(head):
            return Identity(name, False)
    return NOT_AN_IMAGE


def _ftyp_brands(head: bytes) -> set[bytes]:
    """The major and compatible brands of an ISO base media 'ftyp' box at the start."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return set()
    size = min(int.from_bytes(head[:4], "big"), len(head))
    return {head[i : i + 4] for i in range(8, max(12, size), 4) if i != 12}


_SUPPORTED = (
    ("JPEG", lambda h: h[:3] == b"\xff\xd8\xff"),
    ("PNG", lambda h: h[:8] == b"\x89PNG\r\n\x1a\n"),
    ("GIF", lambda h: h[:6] in (b"GIF87a", b"GIF89a")),
    ("WEBP", lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP"),
    # "BM" alone would take text for a bitmap: the DIB header's size must be a known one.
    ("BMP", lambda h: h[:2] == b"BM" and int.from_bytes(h[14:18], "little") in _DIB_SIZES),
    ("TIFF", lambda h: h[:4] in (b"II*\x00", b"MM\x00*")),
    ("ICO", lambda h: h[:4] == b"\x00\x00\x01\x00"),
)
_UNSUPPORTED = (
    ("SVG", lambda h: _SVG.match(h[:1024]) is not None),
    ("JPEG XL", lambda h: h[:2] == b"\xff\x0a" or h[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n"),
    ("JPEG 2000", lambda h: h[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or h[:4] == b"\xffO\xffQ"),
    ("PSD", lambda h: h[:4] == b"8BPS"),
    ("BigTIFF", lambda h: h[:4] in (b"II+\x00", b"MM\x00+")),
    ("QOI", lambda h: h[:4] == b"qoif"),
    ("CUR", lambda h: h[:4] == b"\x00\x00\x02\x00"),
)
