"""Where stored images go and what they may be: the one home for names and formats.

A stored file's name comes only from the SHA-256 of its normalised URL and the format
Pillow detected: nothing from the URL, a header or a server-supplied filename becomes
a path component. Two levels of 256 shards keep folders small::

    <output>/ab/cd/abcd…(64 hex digits).jpg

Workers write these names (``worker.storage``), the master trusts a reused file only
under such a name, and the report opens only such names for its thumbnails.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from crawler.exceptions import UsageError
from crawler.formats import EXTENSIONS

_NAME = re.compile(
    r"(?P<a>[0-9a-f]{2})/(?P<b>[0-9a-f]{2})/(?P<digest>[0-9a-f]{64})\.(?P<ext>[a-z]{3,4})"
)


def stored_name(url: str, extension: str) -> str:
    """The relative path of ``url``'s image: ``ab/cd/<sha256 of the URL>.<extension>``.

    ``url`` must be normalised (``urls.normalize_url``); ``extension`` one of
    ``formats.EXTENSIONS``'.
    """
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
    return f"{digest[:2]}/{digest[2:4]}/{digest}.{extension}"


def content_name(sha256: str, extension: str) -> str:
    """The relative path of an image stored by content (``--dedup-content``):
    ``ab/cd/<sha256 of the bytes>.<extension>``, so equal bytes from any URL are one file.
    A URL name and a content name coincide only if two sha256 digests do."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"


_SHARD = re.compile(r"[0-9a-f]{2}")


def in_shards(path: Path, root: Path) -> bool:
    """``path`` lies in ``root``'s shard folders (``ab/cd/``), where stored images go: a
    file written there may be one. Paths compared as the file system resolves them."""
    try:
        relative = Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
    except ValueError:
        return False
    parts = relative.parts
    return len(parts) >= 3 and all(_SHARD.fullmatch(part) for part in parts[:2])


def named_stored(path: Path) -> bool:
    """``path`` ends as a stored image's name does (``ab/cd/<64 hex digits>.<ext>``),
    whatever folder holds it: a shared store's, another host's."""
    return _NAME.fullmatch("/".join(path.parts[-3:])) is not None


def stored_extension(relative: str) -> str | None:
    """The extension of ``relative`` if it is a name ``stored_name`` could have given
    (shards matching the digest, a known extension); None for anything else."""
    match = _NAME.fullmatch(relative)
    if match is None or match["a"] + match["b"] != match["digest"][:4]:
        return None
    return match["ext"] if match["ext"] in EXTENSIONS.values() else None


def ensure_writable(root: Path, what: str = "output folder", *, create: bool = True) -> None:
    """Fail early, with one line (UsageError naming ``what``), when the folder cannot be
    created or written. ``create=False``: a missing folder is not made, only its nearest
    existing parent checked (a master refused its manifest's lock, or a worker that
    could not reach its master, left an empty --output behind until 2026-12-01); the
    first image stored makes it."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"{what} {root} is not a directory")
    if not create and not root.exists():
        problem = not_a_folder(root)
        parent = next((p for p in root.absolute().parents if p.exists()), Path("/"))
        if problem is None and not os.access(parent, os.W_OK | os.X_OK):
            problem = f"{parent} is not writable"
        if problem is not None:
            raise UsageError(f"{what} {root} cannot be made: {problem}")
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        why = not_a_folder(root) or exc.strerror or exc
        raise UsageError(f"{what} {root} is not writable: {why}") from None


def not_a_folder(folder: Path) -> str | None:
    """'X is a file, not a folder' for the first part of ``folder`` that is there and is
    not a folder (the one way every command says so); None when there is none."""
    for part in (*reversed(folder.parents), folder):
        if part.exists() and not part.is_dir():
            return f"{part} is a file, not a folder"
    return None


def missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, innermost first."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


def remove_if_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (innermost first) while each is an empty folder."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (a key was saved there), or gone: leave the rest
            return
