"""Checking that downloaded bytes are one whole raster image, with Pillow and libjpeg.

The rules (the README's Verification table):

1. Identity from the bytes (``formats.identify``), never from the URL or Content-Type.
   A supported format's signature makes every later failure ``corrupt``; a known image
   format we do not store is ``unsupported_format``; anything else is ``not_image``.
2. Whole file: the container must reach its end (``structure``), and JPEG data is
   decoded by libjpeg with its corrupt-data warnings as errors (simplejpeg,
   ``strict=True``), scaled down (up to 1/8) to what the hash needs: every
   entropy-coded byte is still read; only the inverse DCT works on less. A PNG
   frame's data must hold all its rows (``pngdata``: libpng's rule, not Pillow's).
   Every image an ICO lists is checked and decoded, not only the largest (``icon``).
3. Every frame, every limit: each frame's size, and the canvas as it grows, is checked
   against ``max_pixels`` before that frame is decoded, and the animation's total; at
   most ``framecount.MAX_FRAMES`` frames, counted before they are decoded, and a PNG of
   at most ``pngchunks.MAX_CHUNKS`` chunks, counted in its container walk.
   Pillow's own bomb guard maps to ``too_many_pixels``.
4. No exception escapes: every call into Pillow or libjpeg is inside ``inspect``.
5. Metadata limits are not validity: a PNG's ancillary chunk libpng skips (text or an
   ICC profile over its limits, a damaged one) is dropped from Pillow's copy
   (``pngancillary``), never a reason for ``corrupt``.
6. ``width``/``height`` are the displayed size (EXIF orientation applied); the
   min-size filters use it; the stored bytes never change.
"""

from __future__ import annotations

import io
import os
import queue
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

# The plugin of every format stored, loaded with this module: given a format whose
# plugin is not loaded yet, Image.open loads all of Pillow's (Image.init), ~25 ms of a
# worker's first WebP, TIFF or ICO image (tests/worker/test_verify.py checks the set).
from PIL import (  # noqa: F401 (a plugin registers itself when imported)
    BmpImagePlugin,
    GifImagePlugin,
    IcoImagePlugin,
    Image,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from crawler.config import Policy
from crawler.constants import ANIMATION_PIXEL_FACTOR
from crawler.exceptions import Corrupt, NotImage, TooManyPixels, TooSmall, UnsupportedFormat
from crawler.formats import EXTENSIONS, identify
from crawler.worker import (
    bmprle,
    framecount,
    icon,
    jpeg,
    phash,
    pngancillary,
    pngdata,
    structure,
    tiffdata,
)

# RLE BMPs (and ICO DIBs) are decoded one step per command, not one per pixel: Pillow's
# own decoder took 27 s on a BMP of 32 KiB (``bmprle``).
Image.register_decoder("bmp_rle", bmprle.RleDecoder)

if "AVIF" in EXTENSIONS:  # Pillow >= 11.2 built with libavif
    from PIL import AvifImagePlugin  # noqa: F401

ORIENTATION_TAG = 0x0112
SWAPPED = frozenset({5, 6, 7, 8})  # EXIF orientations that turn the picture a quarter

# Decodes at once in this process: decoding runs without the GIL, so more than one a
# core gains nothing, while each 1080p decode holds ~8 MB: 32 download threads must not
# mean 32 decoded images in memory.
# The permits are tokens in a SimpleQueue (C): threading's semaphores are Python-level
# conditions, and each release woke a waiter through several Python calls under the GIL.
DECODERS = max(2, os.cpu_count() or 2)  # decodes at once in a process
_DECODING: queue.SimpleQueue[None] = queue.SimpleQueue()
for _permit in range(DECODERS):
    _DECODING.put(None)


def decoder_free() -> bool:
    """Could a decode start now (a permit free)? A hint: another thread may take it."""
    return not _DECODING.empty()


# We compare sizes against the policy ourselves, and classify damage ourselves: Pillow's
# warnings about what it met in a download ("Truncated File Read", "malformed MPO") are
# noise on the worker's stderr, once per bad URL.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


@dataclass(frozen=True)
class ImageInfo:
    format: str  # Pillow's name, a key of formats.EXTENSIONS
    width: int  # displayed, after EXIF orientation
    height: int
    frames: int
    orientation: int | None = None  # EXIF orientation 1-8; None when absent
    phash: str | None = None  # 64-bit perceptual hash of the first frame, 16 hex digits

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def configure(policy: Policy) -> None:
    """Set Pillow's process-wide limits from the run's policy: the bomb guard stays on
    (at ``max_pixels``), the PNG text limits are ``pngancillary``'s."""
    Image.MAX_IMAGE_PIXELS = policy.max_pixels
    pngancillary.configure()


def inspect(body: bytes, policy: Policy) -> ImageInfo:
    """Check ``body`` whole; return what it is, or raise the VerifyFailure naming the
    status (NotImage, UnsupportedFormat, Corrupt, TooManyPixels, TooSmall). Never
    raises anything else."""
    identity = identify(body[:1024])
    if identity.format is None:
        raise NotImage(f"not an image ({_sniff(body)})")
    if not identity.supported:
        raise UnsupportedFormat(f"{identity.format} is not a format the crawler stores")
    _DECODING.get()
    try:
        return _inspect(body, identity.format, policy)
    except (Corrupt, TooManyPixels, TooSmall, UnsupportedFormat):
        raise
    except Image.DecompressionBombError as exc:  # Pillow's guard, at twice its limit
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{pixels[1]} pixels" if pixels else "the image"
        raise TooManyPixels(f"{size} exceeds max_pixels {policy.max_pixels}") from None
    except UnidentifiedImageError:
        raise Corrupt(f"{identity.format} with an unreadable header") from None
    except Exception as exc:  # Pillow and libjpeg raise many types for damaged data
        reason = str(exc) or type(exc).__name__
        if reason.startswith("decoder error"):  # Pillow's codec status, a bare number
            reason = f"its image data does not decode, damaged (Pillow: {reason})"
        elif identity.format == "PNG":
            reason = pngdata.pillow_reason(reason)
        raise Corrupt(f"cannot decode {identity.format}: {reason}"[:500]) from None
    finally:
        _DECODING.put(None)


def _inspect(body: bytes, format_name: str, policy: Policy) -> ImageInfo:
    walked = structure.check(format_name, body, policy.max_pixels)
    canvases = walked.canvases
    _check_budget(canvases, policy)  # before Pillow allocates any of them
    if format_name == "ICO":  # every image, not only the one Pillow shows
        icon.check(body, policy.max_pixels)
        readable = icon.for_pillow(body)
    else:
        readable = structure.for_pillow(format_name, body, walked)
    with Image.open(io.BytesIO(readable), formats=[_plugin(format_name)]) as image:
        real = image.format or format_name
        width, height = image.size
        _check_pixels(width, height, policy)  # before _orientation, which may decode (PNG)
        framecount.check_announced(image, real)
        orientation = _orientation(image)
        if orientation in SWAPPED:
            width, height = height, width
        _check_min_size(width, height, policy)
        if real == "TIFF":  # data libtiff decodes with errors it does not return
            tiffdata.check(image, body, policy.max_pixels)
        frames, first = _decode(image, real, body, policy)
        if real == "GIF" and frames != len(canvases):  # every image descriptor decoded
            raise Corrupt(f"GIF has {len(canvases)} frames, {frames} could be read")
        if real == "PNG":  # data that ends before the rows do (libpng's rule)
            pngdata.check(body, image)
    return ImageInfo(real, width, height, frames, orientation, first)


def _plugin(format_name: str) -> str:
    return "JPEG" if format_name == "MPO" else format_name


def _check_budget(sizes: list[tuple[int, int]], policy: Policy) -> None:
    """Each frame's canvas, and their total, within the limits."""
    budget = policy.max_pixels * ANIMATION_PIXEL_FACTOR
    for count, (width, height) in enumerate(sizes, start=1):
        _check_pixels(width, height, policy)
        budget -= width * height
        if budget < 0:
            raise TooManyPixels(f"{count} frames of {width}x{height} are too much to decode")


def _decode(
    image: Image.Image, format_name: str, body: bytes, policy: Policy
) -> tuple[int, str | None]:
    """Decode every frame, checking each one's size (and the total) first; returns the
    number of frames and the first one's perceptual hash (``phash``, from these pixels)."""
    budget = policy.max_pixels * ANIMATION_PIXEL_FACTOR
    frames = 0
    first = None
    for width, height, decode in _frames(image, format_name, body):
        if frames == framecount.MAX_FRAMES:  # whatever the container walk counted
            raise framecount.refuse(f"{format_name} has more than {frames} frames", frames)
        _check_pixels(width, height, policy)
        budget -= width * height
        if budget < 0:
            raise TooManyPixels(f"{frames + 1} frames of {width}x{height} are too much to decode")
        pixels = decode()
        if not frames:
            first = phash.of_decoded(pixels, image)
        frames += 1
    return frames, first


def _frames(image: Image.Image, format_name: str, body: bytes) -> Iterator[tuple]:
    """(width, height, decode) per frame, the size known before the decode."""
    if format_name in ("JPEG", "MPO"):
        for data in jpeg.streams(image, format_name, body):
            width, height = jpeg.size(data)
            yield width, height, lambda data=data: jpeg.decode(data)
        return
    frame = 0
    while True:
        if frame:
            try:
                image.seek(frame)  # the canvas may grow here (GIF): checked before load
            except EOFError:
                # An APNG whose acTL announces a frame whose data is missing ends here
                # too: fewer frames than the file says is a damaged file, not a short one.
                # A GIF announces none (Pillow's n_frames is its own count, wrong after
                # a failed seek): its frames are counted against its blocks (_inspect).
                announced = frame if format_name == "GIF" else getattr(image, "n_frames", frame)
                if announced > frame:
                    said = f"{format_name} announces {announced} frames, {frame} read"
                    raise Corrupt(said) from None
                return
        yield image.width, image.height, lambda: image.load() and None  # pixels: in image
        frame += 1


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation (1-8), None when absent or unreadable: broken EXIF does not
    make the pixels wrong, and browsers then show the stored orientation.

    A PNG's eXIf chunk may follow its pixels, and Pillow's ``getexif`` then decodes them
    first: that decode runs here, outside the guard, so that damaged pixel data is the
    image's failure (``corrupt``), not EXIF damage. Until 2026-12-01 it was swallowed
    here, and the later ``load`` did nothing (the image counted as loaded): a PNG or
    APNG with a broken zlib stream or an unknown filter type was stored as ``ok``. The
    sizes were checked before Pillow opened it (``structure``, ``_check_budget``)."""
    if image.format == "PNG" and "exif" not in image.info:
        image.load()
    try:
        value = image.getexif().get(ORIENTATION_TAG)
    except Exception:  # EXIF is metadata: any damage there only loses the orientation
        return None
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _check_pixels(width: int, height: int, policy: Policy) -> None:
    if width * height > policy.max_pixels:
        raise TooManyPixels(f"{width}x{height} exceeds max_pixels {policy.max_pixels}")
    if width <= 0 or height <= 0:
        raise Corrupt(f"{width}x{height} is not an image size")


def _check_min_size(width: int, height: int, policy: Policy) -> None:
    if width < policy.min_width or height < policy.min_height:
        raise TooSmall(f"{width}x{height} is below {policy.min_width}x{policy.min_height}")


def _sniff(body: bytes) -> str:
    head = body[:512].lstrip().lower()
    if not body:
        return "empty body"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "looks like HTML"
    if head.startswith(b"<?xml"):
        return "looks like XML"
    if head.startswith(b"%pdf"):
        return "looks like PDF"
    if head.startswith((b"%!ps", b"\xc5\xd0\xd3\xc6")):
        return "looks like PostScript/EPS"
    return f"{len(body)} bytes"
