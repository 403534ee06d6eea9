"""A URL's stored copy: whether this run may reuse it, or revalidate it, instead of a
download (``--refresh-after``, ``--verify-stored``), and the result fields an image's
verification gives.
"""

from __future__ import annotations

import hashlib
from typing import Any

from crawler.config import Policy
from crawler.exceptions import TooManyPixels, TooSmall, VerifyFailure
from crawler.layout import content_name, stored_extension, stored_name
from crawler.protocol import StoredCopy, Task
from crawler.stores import FolderStore, S3Store
from crawler.worker import verify
from crawler.worker.failures import host_trouble


def image_fields(info: verify.ImageInfo) -> dict[str, Any]:
    """The result fields verification gives an image."""
    return {"width": info.width, "height": info.height, "orientation": info.orientation,
            "format": info.format, "phash": info.phash}  # fmt: skip


NOT_USABLE: tuple[None, dict[str, Any]] = (None, {})
# What a full check of a stored copy says of it when a limit of this run refuses it
# (a raised --min-width, a lowered --max-pixels): nothing wrong with the copy, which
# stands as any trusted row does (limits are not applied to stored images again).
POLICY_REFUSALS = (TooSmall, TooManyPixels)


def usable_stored_copy(
    task: Task, store: FolderStore | S3Store, policy: Policy, host: str | None = None
) -> tuple[StoredCopy | None, dict[str, Any]]:
    """The task's stored copy, if this run's store really holds that image for that URL
    (the name ``layout.stored_name`` gives it, the size the manifest recorded and, with
    ``--verify-stored=hash`` or ``full``, the sha256), and the image fields a ``full``
    check found: the bytes verified again by this version's rules (``verify.inspect``),
    its verdict then the copy's (a broken one is not usable: the URL is downloaded and
    judged anew; one only a limit refuses, ``POLICY_REFUSALS``, stands unchanged).
    A file found elsewhere than the manifest says the copy is (``host``: this worker's
    --host-id) is hashed in any case: the same name and size, it may be another copy
    (a store switched, then switched back, found an older, damaged copy, reused it
    under the recorded sha256: a fresh user's, 2026-12-01).
    Raises StoreFailure when the store fails, the VerifyFailure of a shortage of this
    host's (``failures.host_trouble``: not the copy's fault)."""
    stored = revalidation(task)
    if stored is None or store.size(stored.path) != stored.bytes:
        return NOT_USABLE
    level = stored.verify
    if level not in ("hash", "full") and not _where_recorded(stored, store, host):
        level = "hash" if stored.sha256 is not None else level
    if level not in ("hash", "full"):
        return stored, {}
    body = store.read(stored.path)
    digest = hashlib.sha256(body).hexdigest()
    if stored.sha256 is not None and digest != stored.sha256:
        return NOT_USABLE
    if level == "hash":
        return stored, {}
    try:
        info = verify.inspect(body, policy)
    except POLICY_REFUSALS:
        return stored, {}
    except VerifyFailure as exc:
        if host_trouble(exc) is not None:
            raise
        return NOT_USABLE
    if info.extension != stored_extension(stored.path):  # stored as another format
        return NOT_USABLE
    return stored, image_fields(info) | {"sha256": digest, "verified": True}


def _where_recorded(stored: StoredCopy, store: FolderStore | S3Store, host: str | None) -> bool:
    """Is ``store`` where the manifest says the copy is: the same shared store, or this
    host's own store when the row names this host?"""
    if store.spec:
        return stored.store == store.spec
    return stored.store is None and stored.host is not None and stored.host == host


def elsewhere(task: Task, store: FolderStore | S3Store) -> StoredCopy | None:
    """A copy due for revalidation on another host's own store: a 304 keeps it there,
    so any worker may ask. (A copy missing from a shared store is downloaded again, and
    one to verify in full is checked where it is: a 304 must not keep it unchecked.)"""
    stored = revalidation(task)
    if stored is None or not stored.refresh or store.spec or stored.verify == "full":
        return None
    return stored


def revalidation(task: Task) -> StoredCopy | None:
    """The task's stored copy when its name is one this crawler would have given this
    URL's image: enough to revalidate it, since a 304 needs no file (the image stays
    where it is) and any other answer is downloaded and stored anew."""
    stored = task.stored
    if stored is None:
        return None
    extension = stored_extension(stored.path)
    if extension is None:
        return None
    by_content = stored.sha256 is not None and stored.path == content_name(stored.sha256, extension)
    return stored if by_content or stored.path == stored_name(task.url, extension) else None


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """Headers that let a server answer 304 for an image we already hold."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers
