"""The shared authkey: read from a file or the environment, or generated for one run.

The key is never hard-coded and never taken from the command line itself, where other
users of the host could read it in ``ps``. It authenticates peers through
multiprocessing's HMAC challenge; it does not encrypt anything.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import tempfile
from pathlib import Path

from crawler.constants import AUTHKEY_ENV
from crawler.exceptions import UsageError
from crawler.layout import not_a_folder

MIN_KEY_LENGTH = 16


def load_authkey(path: str | None) -> bytes | None:
    """The key from ``path`` if given, else from $CRAWLER_AUTHKEY, else None (neither).
    Raises UsageError for a key file that is not a private regular file, a key under
    MIN_KEY_LENGTH bytes, and a $CRAWLER_AUTHKEY set but empty: until 2026-12-01 that
    was "no key", and a nightly master made a new one every worker then refused (a
    fresh user's)."""
    if path:
        return _read_key_file(Path(path))
    value = os.environ.get(AUTHKEY_ENV)
    if value is None:
        return None
    if not value.strip():  # a script's unset variable: CRAWLER_AUTHKEY=$KEY
        raise UsageError(
            f"${AUTHKEY_ENV} is set but empty (an unset variable in a script?): give the "
            f"key, or unset ${AUTHKEY_ENV}"
        )
    return _checked(value.strip().encode(), f"${AUTHKEY_ENV}")


def _read_key_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):  # /dev/null, a FIFO, a folder: never "chmod 600" it
            raise UsageError(f"authkey file {path} is not a regular file: give the key's file")
        data = path.read_bytes().strip()
    except OSError as exc:
        raise UsageError(f"cannot read authkey file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(
            f"authkey file {path} is open to other users (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    return _checked(data, str(path))


def _checked(key: bytes, origin: str) -> bytes:
    if len(key) < MIN_KEY_LENGTH:
        raise UsageError(f"authkey from {origin} is too short (at least {MIN_KEY_LENGTH} bytes)")
    return key


def generate_authkey(path: Path) -> tuple[bytes, bool]:
    """The key at ``path``, made there with mode 0600 unless another master made it
    first: (the key, whether this call made it). The file appears whole or not at all
    (a temporary file of its own, linked to ``path``, which fails if ``path`` is
    there): until 2026-12-01 two masters started together (cron overlap) wrote through
    one fixed temporary name, and one ran with a key other than the file's, which every
    worker started from the file was refused (a fresh user's). Raises UsageError."""
    key = secrets.token_hex(32).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:  # mkstemp: mode 0600
                fh.write(key + b"\n")
            os.link(tmp, path)  # fails if another master made it first
        finally:
            os.unlink(tmp)
    except FileExistsError:
        return load_authkey(str(path)) or b"", False
    except OSError as exc:
        # A file system with no hard links (vfat, SMB) has no private file modes either:
        # a key there would be refused on the next run (mode 0644; a review's).
        why = not_a_folder(path.parent) or exc.strerror
        if exc.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
            why = f"{why} (no hard links here: give --authkey-file on another file system)"
        raise UsageError(f"cannot write the generated authkey to {path}: {why}") from None
    return key, True
