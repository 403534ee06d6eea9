"""Reading a row's stored image back, whole and unchanged, from wherever it is.

A row's image is in the shared store its ``store`` field names (a folder every host
mounts, or S3: ``stores.open_store``), else in a host's own folder: one ``--images``
folder, or several (one per host, copied here), looked in one after the other for the
row's bytes. Names there are the URL's, not the content's: two hosts' folders may hold
one name with other bytes (the URL's image changed between the nights each fetched it),
so a folder's file counts only when its bytes are the row's. The path is
checked to be a name the crawler gives (no ``..``, no absolute path: a manifest is a
file anyone may have edited), and the bytes against the row's sha256: an export never
ships bytes that are not the ones the manifest describes.
"""

from __future__ import annotations

import hashlib
import stat
from collections import Counter
from pathlib import Path
from typing import Any

from crawler import constants as c
from crawler.exceptions import StoreFailure
from crawler.layout import stored_extension
from crawler.stores import FolderStore, S3Store, open_store

# Per-row outcomes of an export (its summary counts them).
EXPORTED = "exported"
NO_IMAGE = "no_image"  # not a success row: not a sample (never counted as a problem)
BAD_PATH = "bad_path"  # the row's path is not a name the crawler gives
MISSING = "missing"  # no such file or object in the store (or a folder, a FIFO in its place)
CHANGED = "changed"  # the stored bytes are not the row's (sha256 differs)
STORE_ERROR = "store_error"  # the store failed, or cannot be opened here
BAD_IMAGE = "bad_image"  # a derived image (--resize) could not be made
PROBLEMS = (BAD_PATH, MISSING, CHANGED, STORE_ERROR, BAD_IMAGE)


class RowImage(Exception):
    """Why a row's image is not exported: ``status`` is one of PROBLEMS."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class ImageReader:
    """Reads rows' images; each shared store is opened once."""

    def __init__(self, images: Path | tuple[Path, ...]) -> None:
        """``images``: the hosts' folders of stored images (rows without a ``store``),
        in the order they are looked in."""
        folders = (images,) if isinstance(images, Path) else images
        # Each folder with the key it is counted under (its path), made once.
        stores = [FolderStore(folder) for folder in folders]
        self._locals = [(str(store.root), store) for store in stores]
        self._stores: dict[str, FolderStore | S3Store] = {}
        # By store (a folder of --images by its path): images the rows name, found there,
        # missing.
        self.named: Counter[str] = Counter()
        self.found: Counter[str] = Counter()
        self.missing: Counter[str] = Counter()

    def empty_stores(self) -> list[str]:
        """The stores that hold none of the images their rows name, though some were
        asked for and missing: empty or unmounted (a mount point left empty, a wrong
        ``--images``, a bucket not filled). Such an export is not whole.

        Why "none", decided per store, rather than a share ("most missing"): no failure
        empties a store by half (an unmount, a wrong path leave it holding none), while
        a user who deleted most images on purpose would, under a share, never get an
        export that replaces the earlier one; and per store, so that the rows of a
        store that answers do not hide another that is away."""
        return [spec for spec in sorted(self.named) if self.missing[spec] and not self.found[spec]]

    def read(self, row: dict[str, Any]) -> bytes:
        """The row's image bytes, checked against its sha256; raises RowImage. A row
        without a shared store takes the first ``--images`` folder whose file has its
        bytes; with none, the first folder's problem that is not ``missing`` (the file
        is there, but other bytes, or the folder failed), else ``missing``."""
        relative = row.get("path")
        if not isinstance(relative, str) or stored_extension(relative) is None:
            raise RowImage(BAD_PATH, f"not a stored image's name: {relative!r}")
        spec = row.get("store") if isinstance(row.get("store"), str) else ""
        if spec:
            return self._read(spec, self._shared(spec), relative, row.get("sha256"))
        problems: list[RowImage] = []
        for key, folder in self._locals:
            try:
                return self._read(key, folder, relative, row.get("sha256"))
            except RowImage as problem:
                problems.append(problem)
        raise next((p for p in problems if p.status != MISSING), problems[0])

    def _read(self, spec: str, store: FolderStore | S3Store, relative: str, sha256: Any) -> bytes:
        """``relative``'s bytes in ``store`` (counted under ``spec``: a shared store's,
        a local folder's path), checked against ``sha256``; raises RowImage."""
        self.named[spec] += 1
        try:
            if isinstance(store, FolderStore):
                _regular_or_absent(store, relative)
            try:
                body = store.read(relative)
            except StoreFailure as failure:
                raise RowImage(_why(store, relative), str(failure)) from None
        except RowImage as problem:
            self.missing[spec] += problem.status == MISSING
            raise
        self.found[spec] += 1
        if hashlib.sha256(body).hexdigest() != sha256:
            raise RowImage(CHANGED, f"{relative} no longer holds the bytes the manifest describes")
        return body

    def _shared(self, spec: str) -> FolderStore | S3Store:
        if spec not in self._stores:
            # An S3 store without the s3 extra here: UsageError, the export stops with
            # one line (exit 1, nothing written), as for a missing pyarrow; until
            # 2026-12-01 each of its rows was a store_error (exit 3) saying so.
            self._stores[spec] = open_store(spec, Path())
        return self._stores[spec]


def _regular_or_absent(store: FolderStore, relative: str) -> None:
    """Raise RowImage(MISSING) when a folder, a FIFO or a device stands where the image
    should: that row's problem, not the store's. Before, a folder read as a store_error
    (the export kept the earlier one's files and said the store failed), and a FIFO
    would have been read for as long as its writer wrote. Anything else (absent, a
    regular file, a failing store) is left to the read."""
    path = store.root / relative
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise RowImage(MISSING, f"{path} is {kind}, not a stored image")


def _why(store: FolderStore | S3Store, relative: str) -> str:
    """MISSING when the store says there is no such file, else STORE_ERROR (also for a
    folder store whose folder is gone: unmounted, renamed, on another host)."""
    if isinstance(store, FolderStore) and not store.root.is_dir():
        return STORE_ERROR
    try:
        return MISSING if store.size(relative) is None else STORE_ERROR
    except StoreFailure:
        return STORE_ERROR


def is_sample(row: dict[str, Any]) -> bool:
    """Does the row stand for a stored image (``ok`` or ``not_modified``)?"""
    return row.get("status") in c.SUCCESS_STATUSES and isinstance(row.get("path"), str)
