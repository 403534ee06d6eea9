"""JPEG pictures: the stream of each picture of a JPEG or MPO file, its size, its decode.

Pictures are decoded by libjpeg-turbo through simplejpeg (TurboJPEG), with libjpeg's
corrupt-data warnings made errors (``strict``), at the smallest scale the perceptual
hash allows: every entropy-coded byte is still read.

TurboJPEG's header call refuses a picture whose chroma sampling is none of the levels
it names (4:4:4, 4:2:2, 4:2:0, grey, 4:4:0, 4:1:1; simplejpeg 1.9 also fails on 4:4:1
with a bare ``KeyError: 6``): ``cjpeg -sample 4x2``, ``3x1``, ``1x3``, ``2x4`` and mixed
per-component factors are valid JPEG (ITU-T T.81 A.1.1: any factors 1-4), libjpeg and
browsers decode them. Until 2026-12-01 they were ``corrupt``, a permanent status (a fresh
user's). Their size now comes from the frame header (``_frame_size``), and a picture
TurboJPEG cannot decode for its sampling alone is decoded by Pillow's libjpeg, which
refuses a cut stream but does not make libjpeg's corrupt-data warnings errors (the
README's Verification says so).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import simplejpeg
from PIL import Image

from crawler.exceptions import Corrupt
from crawler.worker import phash

# Start-of-frame markers (T.81 table B.1): SOF0-SOF15 but DHT (C4), JPG (C8), DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SAMPLING = "subsampling"  # in TurboJPEG's refusal: "Could not determine subsampling ..."


def streams(image: Image.Image, format_name: str, body: bytes) -> list[bytes]:
    """The JPEG stream of each picture: the whole body, or each MPO picture's bytes."""
    if format_name == "JPEG":
        return [body]
    base = _mpf_base(body)
    found = []
    for index, entry in enumerate(getattr(image, "mpinfo", {}).get(0xB002, [])):
        start = 0 if index == 0 else entry["DataOffset"] + base
        end = start + entry["Size"]
        if end > len(body):
            raise Corrupt(f"MPO picture {index + 1} runs past the end of the file (truncated)")
        found.append(body[start:end])
    if not found:
        raise Corrupt("MPO file without a picture index")
    return found


def _mpf_base(body: bytes) -> int:
    """Where MPO offsets count from: just after "MPF" and a NUL in the APP2 segment (CIPA DC-007
    section 5.2), found by walking the JPEG segments up to the first scan."""
    pos = 2
    while pos + 8 <= len(body) and body[pos] == 0xFF and body[pos + 1] != 0xDA:
        if body[pos + 1] == 0xE2 and body[pos + 4 : pos + 8] == b"MPF\x00":
            return pos + 8
        pos += 2 + int.from_bytes(body[pos + 2 : pos + 4], "big")
    raise Corrupt("MPO file without its MP index segment")


def size(data: bytes) -> tuple[int, int]:
    """(width, height) of the picture ``data``, before any decoding. Raises ValueError
    (simplejpeg's, for a damaged header) or Corrupt."""
    try:
        height, width, _colour, _sampling = simplejpeg.decode_jpeg_header(data)
    except KeyError:  # a sampling simplejpeg has no name for (4:4:1)
        return _frame_size(data)
    except ValueError as exc:
        if _SAMPLING not in str(exc):
            raise
        return _frame_size(data)
    return width, height


def _frame_size(data: bytes) -> tuple[int, int]:
    """The frame header's (width, height) (T.81 B.2.2), found by walking the marker
    segments before it."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF and pos + 9 <= len(data):
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            if width and height:
                return width, height
            break
        if marker == 0xFF:  # fill bytes before a marker (T.81 B.1.1.2)
            pos += 1
            continue
        pos += 2 + length
    raise Corrupt("JPEG without a readable frame header")


def decode(data: bytes) -> Any:
    """The grey pixels of the picture ``data`` (a numpy array), at the smallest scale
    (M/8, down to 1/8) that keeps both sides at least ``phash.DETAIL``: a 64th of a
    large picture's pixels. libjpeg's warnings (premature end, extraneous bytes) are
    errors, except for a sampling TurboJPEG refuses (this module's docstring). Raises
    what simplejpeg or Pillow raise for damaged data."""
    # simplejpeg picks a scale only from min_height/min_width: min_factor alone, which
    # was passed until 2026-11-30, decoded every JPEG at full size (~20 % more CPU, and
    # a 24 MP photo held 24 MB of grey pixels), then point-sampled it for the hash.
    side = phash.DETAIL
    try:
        return simplejpeg.decode_jpeg(
            data, colorspace="GRAY", min_height=side, min_width=side, strict=True
        )
    except ValueError as exc:
        if _SAMPLING not in str(exc):
            raise
    with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
        image.draft("L", (side, side))  # libjpeg's scaled decode, as above
        image.load()  # a cut stream: "image file is truncated"
        return np.asarray(image.convert("L"))
