"""How many frames one image may have: a fixed bound, found before the frames are decoded.

Verification decodes every frame of an animation or multi-page file (``verify``, rule 3),
and each frame costs a fixed amount besides its pixels: a seek in Pillow's Python (GIF,
APNG, TIFF), a directory read (TIFF), a demuxer call (WebP). The pixel budget (all
frames together within ANIMATION_PIXEL_FACTOR x --max-pixels) never sees 1 x 1 frames,
so until 2026-12-01 the frame count had no bound at all: a 5 MB WebP of 100,000 such
frames took 13.5 s, a 6.9 MB GIF of 300,000 took 16 s, both stored as ``ok``, and a
50 MB WebP of 1,000,000 held a download thread for more than 10 minutes. The WebP cost
grows with the square of the count: libwebp's WebPAnimDecoderGetNext finds each frame
by walking the demuxer's list of frames from the first (WebPDemuxGetFrame), so frame n
costs n steps. Nothing here can make that linear; the bound makes it small (a fresh
user's, 2026-12-01).

MAX_FRAMES holds for every multi-picture format (MAX_PAGES, lower, for TIFF), each
counted where it is cheapest and before the decoding that costs: a GIF's image
descriptors in its container walk (``gif``, which stops at the first one past the
bound), a TIFF's directories in its walk (``structure.tiff``), the count a WebP, APNG,
MPO or AVIF header gives once Pillow has opened it (libwebp's demuxer, acTL, the MP
index, libavif: ``check_announced``), and, whatever those found, ``verify``'s frame
loop, which never decodes a frame past it. ICO has its own, lower bound
(``icon.MAX_IMAGES``). The status is ``too_many_pixels``, the decompression-bomb
guard's: permanent, as the file will never pass.

10,000 frames is 5.5 minutes at 30 frames a second, 11 at 15 (most GIFs run at 10-25):
more than ten times what imgix processes (900 frames). And within the pixel budget at
the default --max-pixels, a canvas of more than 71,582 pixels (about 268 x 268) is
refused before its 10,000th frame anyway: the bound only refuses smaller animations,
of more frames than that. The worst case it leaves, 10,000 frames of 1 x 1, verifies in
about half a second.

A TIFF page costs ten times a GIF frame (Pillow reads its directory and EXIF at each
seek, and its pages are visited three times: counted, checked by ``tiffdata``,
decoded): 10,000 pages of 1 x 1 took 3.7 s, 1,000 take 0.4. Multi-page TIFFs on the
web are scanned documents of tens or hundreds of pages: 1,000 pages within --max-bytes
(50 MB) would be pages of 52 KB, the size of a fax page, and fax-coded (CCITT) TIFFs
are ``unsupported_format`` anyway.
"""

from __future__ import annotations

import struct

from PIL import Image

from crawler.exceptions import Corrupt, TooManyPixels

MAX_FRAMES = 10_000
MAX_PAGES = 1_000  # TIFF's bound: see above
# Formats whose header gives the frame count when Pillow opens them, without a seek
# (Pillow's n_frames for GIF and TIFF seeks through every frame), by the name users know.
_ANNOUNCED = {"WEBP": "WebP", "PNG": "APNG", "MPO": "MPO", "AVIF": "AVIF"}


def refuse(said: str, bound: int) -> TooManyPixels:
    """The failure for a file that ``said`` (e.g. "GIF has at least 10001 frames"), past
    ``bound`` (MAX_FRAMES, MAX_PAGES)."""
    return TooManyPixels(
        f"{said}, more than the {bound} one image may have here (a fixed bound, not --max-pixels)"
    )


def check_announced(image: Image.Image, format_name: str) -> None:
    """Refuse ``image`` (just opened) if its header announces more than MAX_FRAMES."""
    count = getattr(image, "n_frames", 1) if format_name in _ANNOUNCED else 1
    if count > MAX_FRAMES:
        raise refuse(f"{_ANNOUNCED[format_name]} announces {count} frames", MAX_FRAMES)


def gif(body: bytes) -> tuple[list[tuple[int, int]], int]:
    """GIF89a (sections 17-27): header, logical screen, global colour table, blocks,
    trailer (0x3B). Returns the canvas size at each frame (the logical screen, grown by
    any frame that lies outside it, as Pillow grows it), and where the GIF ends: past
    its trailer. Refuses the GIF at its first frame past MAX_FRAMES: a walk to the end
    of 50 MB of 1 x 1 frames took 4 s."""
    if len(body) < 13:
        raise Corrupt("GIF ends inside its header (truncated)")
    flags = body[10]
    width, height = struct.unpack("<HH", body[6:10])
    canvases = []
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while True:
        if pos >= len(body):
            raise Corrupt("GIF ends before its trailer (truncated)")
        kind = body[pos]
        if kind == 0x3B:
            return canvases, pos + 1
        if kind == 0x21:  # extension: label, then data sub-blocks
            pos = _sub_blocks(body, pos + 2)
        elif kind == 0x2C:  # image: descriptor, local colour table, LZW code size, data
            if len(canvases) == MAX_FRAMES:
                raise refuse(f"GIF has at least {MAX_FRAMES + 1} frames", MAX_FRAMES)
            if pos + 10 > len(body):
                raise Corrupt("GIF ends inside an image descriptor (truncated)")
            left, top, w, h = struct.unpack("<HHHH", body[pos + 1 : pos + 9])
            width, height = max(width, left + w), max(height, top + h)
            canvases.append((width, height))
            local = body[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            pos = _sub_blocks(body, pos + 1)
        else:
            raise Corrupt(f"GIF has an unknown block 0x{kind:02x} (damaged)")


def _sub_blocks(body: bytes, pos: int) -> int:
    """Skip data sub-blocks (size byte, data) up to the zero-size terminator."""
    while pos < len(body):
        size = body[pos]
        pos += 1 + size
        if size == 0:
            return pos
    raise Corrupt("GIF ends inside a data block (truncated)")
