"""Where verified images go: hashed, sharded names, written atomically.

A stored file's name comes only from the SHA-256 of its normalised URL and the format
Pillow detected: nothing from the URL, a header or a server-supplied filename becomes
a path component. Two levels of 256 shards keep folders small. Files are written to a
temporary name in the target folder and renamed into place, so a file under its final
name is always whole, and writing the same image twice is harmless.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from crawler.exceptions import DiskFailure, UsageError


def relative_path(url: str, extension: str) -> str:
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
    return f"{digest[:2]}/{digest[2:4]}/{digest}.{extension}"


def store(root: Path, relative: str, body: bytes) -> None:
    """Write ``body`` to ``root/relative`` atomically, or raise DiskFailure."""
    target = root / relative
    tmp_name = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        os.chmod(tmp_name, 0o644)  # mkstemp's 0600 would hide the images from other users
        os.replace(tmp_name, target)
    except OSError as exc:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        raise DiskFailure(f"cannot write {target}: {exc.strerror or exc}") from None


def ensure_writable(root: Path) -> None:
    """Fail early, with one line, when the output folder cannot be created or written."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        raise UsageError(f"output folder {root} is not writable: {exc.strerror or exc}") from None
