"""What a URL list may be on disk besides a regular file: stdin, a pipe, a terminal.

A device that is no terminal is refused before planning (one line, exit 1):
``/dev/zero`` or ``/dev/urandom`` given as a list was planned for ever, line after
endless line, and ``/dev/null`` read as an empty list (a hostile-input trial's,
2026-12-03). A terminal is let through, as before (``/dev/stdin`` at a prompt).
"""

from __future__ import annotations

import os
import stat

from crawler.exceptions import UsageError


def refuse_device(path: str, mode: int) -> None:
    """Raise UsageError when ``path`` (its ``st_mode``: ``mode``) is a character or block
    device that is no terminal; raises OSError when it cannot be opened."""
    if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
        return
    # Non-blocking, and never this process's controlling terminal: only asked, not read.
    fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        if os.isatty(fd):
            return
    finally:
        os.close(fd)
    raise UsageError(f"URL list {path} is a device, not a file, a pipe or a terminal")
