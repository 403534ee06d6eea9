"""JPEG pictures: the stream of each picture of a JPEG or MPO file, its size, its decode.

Pictures are decoded by libjpeg-turbo through simplejpeg (TurboJPEG), with libjpeg's
corrupt-data warnings made errors (``strict``), at the smallest scale the perceptual
hash allows: every entropy-coded byte is still read.

TurboJPEG's header call refuses a picture whose chroma sampling is none of the levels
it names (4:4:4, 4:2:2, 4:2:0, grey, 4:4:0, 4:1:1, 4:4:1): ``cjpeg -sample 4x2``, ``3x1``,
``1x3``, ``2x4`` and mixed per-component factors are valid JPEG (ITU-T T.81 A.1.1: any
factors 1-4), which libjpeg and browsers decode, but no decoder here reads them with
libjpeg's warnings as errors (Pillow's libjpeg only warns of damaged data). Such a
picture is ``unsupported_format``, saying so: the rule for a variant whose damage cannot
be found (as a CCITT TIFF's). Until 2026-12-01 it was ``corrupt`` with TurboJPEG's words;
for a few hours that day it was decoded by Pillow instead, and a review found that one
changed sampling byte in the header of an ordinary JPEG then made it ``ok``: a damaged
header yields exactly such samplings. simplejpeg 1.9 names no 4:4:1 in its header call
(a bare ``KeyError: 6``) but decodes it strictly: its size comes from the frame header.
"""

from __future__ import annotations

from typing import Any

import simplejpeg
from PIL import Image

from crawler.exceptions import Corrupt, UnsupportedFormat
from crawler.worker import phash

# Start-of-frame markers (T.81 table B.1): SOF0-SOF15 but DHT (C4), JPG (C8), DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SAMPLING = "subsampling"  # in TurboJPEG's refusal: "Could not determine subsampling ..."
# The luma factors (H, V) of the samplings TurboJPEG names, chroma 1x1: 4:4:4, 4:2:2,
# 4:2:0, 4:4:0, 4:1:1, 4:4:1.
_NAMED_LUMA = frozenset({(1, 1), (2, 1), (2, 2), (1, 2), (4, 1), (1, 4)})
_Bytes = bytes | memoryview  # a picture's stream: an MPO's is read in place


def streams(image: Image.Image, format_name: str, body: bytes) -> list[_Bytes]:
    """The JPEG stream of each picture: the whole body, or each MPO picture's bytes, in
    place. Until 2026-12-01 each was a copy, all made before the first was decoded: an
    index of 400 entries each naming the rest of a 780 KB file held 97 MiB, and the
    index holds up to about 4,000 (one APP2 segment), in a file up to --max-bytes."""
    if format_name == "JPEG":
        return [body]
    base = _mpf_base(body)
    view = memoryview(body)
    found: list[_Bytes] = []
    for index, entry in enumerate(getattr(image, "mpinfo", {}).get(0xB002, [])):
        start = 0 if index == 0 else entry["DataOffset"] + base
        end = start + entry["Size"]
        if end > len(body):
            raise Corrupt(f"MPO picture {index + 1} runs past the end of the file (truncated)")
        found.append(view[start:end])
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


def size(data: _Bytes) -> tuple[int, int]:
    """(width, height) of the picture ``data``, before any decoding. Raises ValueError
    (simplejpeg's, for a damaged header), Corrupt, or UnsupportedFormat for a sampling
    no strict decoder here reads (this module's docstring)."""
    try:
        height, width, _colour, _sampling = simplejpeg.decode_jpeg_header(data)
    except KeyError:  # a sampling simplejpeg has no name for (4:4:1): decoded strictly
        return _frame_size(data)
    except ValueError as exc:
        factors = _factors(data) if _SAMPLING in str(exc) else None
        if not factors or _named(factors):  # a header cut or damaged, not a sampling
            raise
        shown = ", ".join(f"{h}x{v}" for h, v in factors)
        raise UnsupportedFormat(
            f"JPEG with a chroma sampling of {shown}: no decoder here checks it whole"
        ) from None
    return width, height


def _frame_size(data: _Bytes) -> tuple[int, int]:
    """The frame header's (width, height) (T.81 B.2.2). Raises Corrupt."""
    frame = _frame_header(data)
    height, width = int.from_bytes(frame[1:3], "big"), int.from_bytes(frame[3:5], "big")
    if not (width and height):
        raise Corrupt("JPEG without a readable frame header")
    return width, height


def _factors(data: _Bytes) -> list[tuple[int, int]] | None:
    """The whole frame header's sampling factors (H, V) per component; None when the
    header is cut or holds no component."""
    try:
        frame = _frame_header(data)
    except Corrupt:
        return None
    count = frame[5]
    if not count or len(frame) < 6 + 3 * count:
        return None
    return [(f >> 4, f & 15) for f in frame[7 : 6 + 3 * count : 3]]


def _named(factors: list[tuple[int, int]]) -> bool:
    """A sampling TurboJPEG names: one component, or every chroma component 1x1 and the
    luma one of 4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1, 4:4:1."""
    return len(factors) == 1 or (
        all(f == (1, 1) for f in factors[1:]) and factors[0] in _NAMED_LUMA
    )


def _frame_header(data: _Bytes) -> _Bytes:
    """The frame header's parameters (T.81 B.2.2: P, Y, X, Nf, then Ci Hi|Vi Tqi per
    component), found by walking the marker segments before it. Raises Corrupt."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xFF:  # fill bytes before a marker (T.81 B.1.1.2)
            pos += 1
        elif marker in _SOF and length >= 8 and pos + 2 + length <= len(data):
            return data[pos + 4 : pos + 2 + length]
        else:
            pos += 2 + length
    raise Corrupt("JPEG without a readable frame header")


def decode(data: _Bytes) -> Any:
    """The grey pixels of the picture ``data`` (a numpy array), at the smallest scale
    (M/8, down to 1/8) that keeps both sides at least ``phash.DETAIL``: a 64th of a
    large picture's pixels. libjpeg's warnings (premature end, extraneous bytes) are
    errors. Raises what simplejpeg raises for damaged data (ValueError)."""
    # simplejpeg picks a scale only from min_height/min_width: min_factor alone, which
    # was passed until 2026-11-30, decoded every JPEG at full size (~20 % more CPU, and
    # a 24 MP photo held 24 MB of grey pixels), then point-sampled it for the hash.
    side = phash.DETAIL
    return simplejpeg.decode_jpeg(
        data, colorspace="GRAY", min_height=side, min_width=side, strict=True
    )
