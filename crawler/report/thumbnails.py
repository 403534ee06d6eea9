"""Thumbnails of stored images for the report's gallery, as ``data:`` URIs.

An image is read from where its row says it is: the shared store named by its
``store`` field (a folder or S3, ``stores.open_store``), else the folder of this host
(per-host stores: images other hosts hold are not here). Only a file under a name the
crawler gives (``layout.stored_extension``) is opened, without following links, only a
regular file up to ``MAX_IMAGE_BYTES``, only the formats the crawler stores, and
Pillow's bomb guard stays on: the folder may hold anything. A file whose bytes are not
the row's (``sha256``: replaced or rewritten since) gets no thumbnail: until 2026-12-01
the gallery showed another picture under the row's URL and sizes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import threading
import warnings
from pathlib import Path
from typing import Any

from PIL import Image

from crawler.console import log
from crawler.exceptions import StoreFailure, UsageError
from crawler.formats import OPEN_FORMATS
from crawler.layout import stored_extension
from crawler.stores import FolderStore, S3Store, open_store

MAX_IMAGE_BYTES = 64 << 20  # stored files larger than this get no thumbnail
# Seconds the thumbnails from an S3 store may spend waiting for answers that do not come,
# in all (``S3Store.patience``; answered calls cost none of it): past it the page goes
# without the rest. Until 2026-12-01 a store that stopped answering held a report, and
# the end of a run, for 19 minutes and more, without a word (a fresh user's): each call
# took botocore's 5 read timeouts.
PICTURES_BUDGET = 60.0
THUMB = (160, 160)


class StoreReader:
    """Thumbnails of rows wherever their images are; each shared store opened once (also
    when several threads ask at once: ``pictures``)."""

    def __init__(self, output: Path | None, budget: float = PICTURES_BUDGET) -> None:
        self.output = output  # this host's folder, for per-host rows; None: not read
        self._stores: dict[str, FolderStore | S3Store | None] = {}
        self._opening = threading.Lock()
        self._budget = budget
        self._said: set[str] = set()  # stores whose trouble was said
        self._saying = threading.Lock()

    def thumbnail(self, row: dict[str, Any]) -> str | None:
        """A data: URI of the row's image; None when it cannot be read or shown."""
        spec, relative, digest = row.get("store"), row["path"], row.get("sha256")
        if not isinstance(spec, str) or not spec:
            return None if self.output is None else thumbnail(self.output, relative, digest)
        store = self._open(spec)
        if isinstance(store, FolderStore):
            return thumbnail(store.root, relative, digest)
        if store is None or stored_extension(relative) is None:
            return None
        try:
            size = store.size(relative)
            data = store.read(relative) if size is not None and size <= MAX_IMAGE_BYTES else None
        except StoreFailure as failure:
            # Said once a store, with the first failure's reason: the page goes without
            # the images of a store that fails (a review found a refusing one silent).
            self._say(spec, str(failure), outage=isinstance(store, S3Store) and store.unreachable)
            return None
        return None if data is None else _safe_thumbnail(data, digest)

    def _open(self, spec: str) -> FolderStore | S3Store | None:
        with self._opening:
            return self._open_once(spec)

    def _open_once(self, spec: str) -> FolderStore | S3Store | None:
        if spec not in self._stores:
            try:
                store = open_store(spec, Path())
            except UsageError as exc:  # an S3 store without the s3 extra here: said once
                store = None
                self._say(spec, str(exc), outage=False)
            if isinstance(store, S3Store):
                store.patience = self._budget
            self._stores[spec] = store
        return self._stores[spec]

    def _say(self, spec: str, why: str, *, outage: bool) -> None:
        """One warning a store and kind (an image it refused, or the store not
        answering): its images get no thumbnail, and why. A refused image first no
        longer hides an outage later (a review's)."""
        kind = f"{spec} {'outage' if outage else 'image'}"
        with self._saying:
            said, _ = kind in self._said, self._said.add(kind)
        if not said:
            log.warning("report: thumbnails from %s may be missing: %s", spec, why)


def thumbnail(output: Path, relative: str, sha256: object = None) -> str | None:
    """A data: URI of a stored image's thumbnail; None when it cannot be shown, or its
    bytes are not those of ``sha256`` (a string: their hex digest; else not checked)."""
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
    return _safe_thumbnail(data, sha256)


def _safe_thumbnail(data: bytes, sha256: object) -> str | None:
    if isinstance(sha256, str) and hashlib.sha256(data).hexdigest() != sha256.lower():
        return None  # not the row's image any more
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
