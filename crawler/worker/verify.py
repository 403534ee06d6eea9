"""Checking that downloaded bytes are a whole raster image, with Pillow.

The format is read from the bytes, never from the URL or Content-Type, and only a
fixed set of raster formats (``layout.OPEN_FORMATS``) is even tried (so no SVG, PDF or
EPS reaches a plugin that would shell out). Dimensions are checked from the header
before any pixel is decoded, then every frame is decoded in full, so a truncated file
is caught.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from crawler.config import Policy
from crawler.exceptions import Corrupt, NotImage, TooManyPixels, TooSmall
from crawler.layout import EXTENSIONS, OPEN_FORMATS

# An animation may decode to more pixels than one frame; cap the total work too.
ANIMATION_PIXEL_FACTOR = 4

# Full decodes at once in this process: decoding runs without the GIL, so more than one a
# core gains nothing, while each 1080p decode holds ~8 MB: 32 download threads must not
# mean 32 decoded images in memory.
_DECODING = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))

# We compare sizes against the policy ourselves; the warning Pillow also gives is noise.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    frames: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def configure(policy: Policy) -> None:
    """Set Pillow's process-wide bomb guard from the run's policy (kept on, never disabled)."""
    Image.MAX_IMAGE_PIXELS = policy.max_pixels


def inspect(body: bytes, policy: Policy) -> ImageInfo:
    """Decode ``body`` fully; raise a VerifyFailure naming the status if it is not acceptable."""
    if not body:
        raise NotImage("empty body")
    try:
        image = Image.open(io.BytesIO(body), formats=OPEN_FORMATS)
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(str(exc)) from None
    except UnidentifiedImageError:
        raise NotImage(f"not a supported raster image ({_sniff(body)})") from None
    except Exception as exc:  # Pillow raises many types for a mangled header
        raise Corrupt(f"unreadable image header: {exc}") from None
    with image:
        info = ImageInfo(
            image.format or "", image.width, image.height, getattr(image, "n_frames", 1)
        )
        _check_size(info, policy)
        with _DECODING:
            _decode(image, info)
    return info


def _decode(image: Image.Image, info: ImageInfo) -> None:
    try:
        if info.format in ("JPEG", "MPO"):
            # Decode at 1/8 scale: libjpeg still reads every entropy-coded byte, so a
            # truncated or corrupt stream still fails, at about half the CPU.
            image.draft(None, (max(1, info.width // 8), max(1, info.height // 8)))
        for frame in range(info.frames):
            image.seek(frame)
            image.load()
    except Exception as exc:  # OSError for truncation, others for corrupt streams
        raise Corrupt(f"cannot decode {info.format}: {exc}") from None
    return info


def _check_size(info: ImageInfo, policy: Policy) -> None:
    pixels = info.width * info.height
    if pixels > policy.max_pixels:
        raise TooManyPixels(f"{info.width}x{info.height} exceeds max_pixels {policy.max_pixels}")
    if pixels * info.frames > policy.max_pixels * ANIMATION_PIXEL_FACTOR:
        raise TooManyPixels(
            f"{info.frames} frames of {info.width}x{info.height} is too much to decode"
        )
    if info.width < policy.min_width or info.height < policy.min_height:
        raise TooSmall(
            f"{info.width}x{info.height} is below {policy.min_width}x{policy.min_height}"
        )


def _sniff(body: bytes) -> str:
    head = body[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "looks like HTML"
    if head.startswith(b"<?xml") or b"<svg" in head:
        return "looks like XML/SVG"
    if head.startswith(b"%pdf"):
        return "looks like PDF"
    return f"{len(body)} bytes"
