"""Derived images for ``--resize PX``: made from the stored bytes, which never change.

Modes (those of img2dataset, whose users ask for them):

- ``keep_ratio``: the longer side becomes PX, the aspect ratio kept, the shorter side
  at least 1 px (until 2026-12-01 an elongated image, 1x1000 at 256, failed: Pillow's
  ``ImageOps.contain`` rounds it to 0; ``border`` padded what that left, nothing);
- ``center_crop``: the shorter side becomes PX, then the middle PX x PX is cut out;
- ``border``: the whole image fits in PX x PX, the rest filled white (black-free
  letterbox, as on a white page); transparent white for an image with transparency,
  like its own clear areas.

The EXIF orientation is applied first (the derived image looks as the original is shown).
A derived image is JPEG (quality 95), or PNG when the original has transparency. Only
the first frame of an animation is used.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps

MODES = ("keep_ratio", "center_crop", "border")
JPEG_QUALITY = 95


def derive(body: bytes, side: int, mode: str) -> tuple[bytes, str, int, int]:
    """(bytes, extension, width, height) of the derived image. Raises ValueError for a
    mode not in MODES or a side below 1, and whatever Pillow raises for bytes it cannot
    decode (the caller turns that into a row status)."""
    if mode not in MODES or side < 1:
        raise ValueError(f"cannot resize to {side} px with mode {mode!r}")
    with Image.open(io.BytesIO(body)) as original:
        image = ImageOps.exif_transpose(original)
        alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if alpha else "RGB")
    if mode == "keep_ratio":
        image = image.resize(fitted(image.width, image.height, side), Image.Resampling.LANCZOS)
    elif mode == "center_crop":
        image = ImageOps.fit(image, (side, side), Image.Resampling.LANCZOS)
    else:  # not ImageOps.pad: it shrinks through ImageOps.contain (a strip became nothing)
        fill = (255, 255, 255, 0) if alpha else (255, 255, 255)
        inner = image.resize(fitted(image.width, image.height, side), Image.Resampling.LANCZOS)
        image = Image.new(image.mode, (side, side), fill)
        image.paste(inner, ((side - inner.width) // 2, (side - inner.height) // 2))
    out = io.BytesIO()
    if alpha:
        image.save(out, "PNG")
        return out.getvalue(), "png", image.width, image.height
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue(), "jpg", image.width, image.height


def fitted(width: int, height: int, side: int) -> tuple[int, int]:
    """``keep_ratio``'s size (and ``border``'s picture inside its square): the longer
    side ``side``, the shorter in proportion and at least 1 px."""
    longer = max(width, height)
    return max(1, round(width * side / longer)), max(1, round(height * side / longer))
