"""Writing verified images: atomically, under the names ``layout.stored_name`` gives.

Files are written to a temporary name in the target folder and renamed into place, so a
file under its final name is always whole, and writing the same image twice is harmless.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from crawler.exceptions import StoreFailure


def store(root: Path, relative: str, body: bytes) -> None:
    """Write ``body`` to ``root/relative`` atomically, or raise StoreFailure."""
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
        raise StoreFailure(f"cannot write {target}: {exc.strerror or exc}") from None
