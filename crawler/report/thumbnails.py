"""Thumbnails of stored images for the report's gallery, as ``data:`` URIs.

Only a file under a name the crawler gives (``layout.stored_extension``) is opened,
without following links, only a regular file up to ``MAX_IMAGE_BYTES``, only the formats
the crawler stores, and Pillow's bomb guard stays on: the folder may hold anything.
"""

from __future__ import annotations

import base64
import io
import os
import stat
import warnings
from pathlib import Path

from PIL import Image

from crawler.formats import OPEN_FORMATS
from crawler.layout import stored_extension

MAX_IMAGE_BYTES = 64 << 20  # stored files larger than this get no thumbnail
THUMB = (160, 160)


def thumbnail(output: Path, relative: str) -> str | None:
    """A data: URI of a stored image's thumbnail; None when it cannot be shown."""
    if stored_extension(relative) is None:
        return None
    try:
        fd = os.open(output / relative, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_IMAGE_BYTES:
            return None
        data = fh.read()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _encode_thumbnail(data)
    except Exception:  # Pillow raises many types for a bad file; it just gets no thumbnail
        return None


def _encode_thumbnail(data: bytes) -> str | None:
    with Image.open(io.BytesIO(data), formats=OPEN_FORMATS) as image:
        if image.width * image.height > (Image.MAX_IMAGE_PIXELS or 178_956_970):
            return None  # the bomb guard stays on, even where it was switched off
        image.thumbnail(THUMB)
        alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if alpha else "RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG" if alpha else "JPEG", **({} if alpha else {"quality": 80}))
    kind = "png" if alpha else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
