"""Where verified images are kept: the run's store, chosen on the master (``--store``).

A store spec travels in the run policy, so every worker of a run writes to the same
kind of place:

- ``""`` (the default): each worker's own ``--output`` folder, on its own host;
- ``file:///abs/path``: one folder every host mounts at that path (NFS and the like);
- ``s3://BUCKET/PREFIX``: S3 or S3-compatible object storage, through fsspec + s3fs
  (the ``s3`` extra; ``s3store.S3Store``). Credentials, region and endpoint come from
  the standard AWS configuration (environment, ``AWS_ENDPOINT_URL``, profiles), never
  from a flag.

Every store keeps the names ``layout.stored_name`` gives (``ab/cd/<sha256>.<ext>``) and
makes a stored image appear whole or not at all: a folder store writes a ``.part-*``
file and renames it into place; S3 makes an object visible only once its upload (one
PUT, or a completed multipart upload) has finished. A failure of any store call raises
``StoreFailure`` (status ``disk_error``) with the reason; a store that is unusable at
start-up raises ``UsageError`` (one line, before any download).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import weakref
from pathlib import Path
from urllib.parse import unquote, urlsplit

from crawler.exceptions import StoreFailure, UsageError
from crawler.layout import ensure_writable
from crawler.partfile import PART_FLAGS, write_all, write_atomically
from crawler.s3store import S3Store

PER_HOST = ""  # the spec of per-host stores (each worker's --output)
# C0, DEL and C1 controls, and the line and paragraph separators (a review's): what URL
# parsing drops or cuts at, or a log line would be split at.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
IDENTITY = ".crawler-store-id"  # in a shared folder: which folder it is (FolderStore.identity)


def normalize_spec(text: str) -> str:
    """``--store`` as given to its canonical spec: ``""``, ``file:///abs/path`` or
    ``s3://BUCKET[/PREFIX]``. A relative path is made absolute (every host must mount
    the folder at that path). Raises UsageError for anything else."""
    if not text:
        return PER_HOST
    if "://" in text and ("?" in text or "#" in text or _CONTROLS.search(text)):
        # urlsplit drops a query and a fragment, and WHATWG's rules a tab or newline:
        # until 2026-12-01 s3://b/night?run=1 stored under s3://b/night, and
        # file:///d#x into /d, silently (a fresh user's).
        raise UsageError(
            f"--store {text!r}: a store URL takes no '?', '#' or control character (a "
            "folder whose name holds them: give it as a plain path)"
        )
    parts = urlsplit(text)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise UsageError(f"--store {text}: no bucket (use s3://BUCKET/PREFIX)")
        return f"s3://{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"--store {text}: a file:// URL names no host (file:///path)")
        return Path(os.path.abspath(unquote(parts.path))).as_uri()
    if "://" in text:
        raise UsageError(f"--store {text}: not a folder, file:// or s3:// URL")
    return Path(os.path.abspath(text)).as_uri()


def same_file(a: tuple[object, object], b: tuple[object, object]) -> bool:
    """Are ``a`` and ``b`` (each a store spec and a relative path) one file: two
    ``file://`` specs naming one folder (a symlink, a bind mount) whose files there are
    one (``os.path.samefile``)? False for anything else, or when either cannot be seen
    from here."""
    paths = []
    for spec, relative in (a, b):
        if not (isinstance(spec, str) and spec.startswith("file://") and isinstance(relative, str)):
            return False
        paths.append(Path(unquote(urlsplit(spec).path)) / relative)
    try:
        return os.path.samefile(*paths)
    except (OSError, ValueError):  # gone, unreadable, or not a path: cannot be told
        return False


def _folder_id(folder: Path) -> tuple[int, int] | None:
    """(device, inode) of ``folder``; None when it is no folder (or cannot be looked at)."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


class FolderStore:
    """A folder: a worker's own ``--output`` (``spec`` ``""``) or a shared mount."""

    def __init__(self, root: Path, spec: str = PER_HOST) -> None:
        self.root = root
        self.spec = spec
        self.where = str(root)
        # The root must exist once it did: a shared one always, an own --output from the
        # start if it was there (a review's), else from its first image.
        self._rooted = bool(spec) or root.is_dir()
        # An own --output stays the folder it was (device, inode; held open: its inode is
        # not reused); a shared one has IDENTITY (automounts change device numbers).
        self._root_id: tuple[int, int] | None = None
        if self._rooted and not spec:
            self._hold_root()

    def put(self, relative: str, body: bytes) -> None:
        """Store ``body`` under ``relative``, atomically; raises StoreFailure."""
        if self._root_id is not None:
            # Each put (one stat): a disk mounted over it may hold the shards already.
            self._root_failure(relative)
        try:
            write_atomically(self.root, relative, body, self._make)
        except StoreFailure:
            if self._rooted:  # the root went during the write (its rename failed): say so
                self._root_failure(relative)
            raise
        if not self._rooted:
            self._rooted = True
            if not self.spec:
                self._hold_root()

    def _root_failure(self, relative: str) -> None:
        """Raise StoreFailure saying why when the root is gone or another folder now."""
        try:
            self._check_root()
        except OSError as exc:
            raise StoreFailure(f"cannot write {self.root / relative}: {exc.strerror}") from None

    def _hold_root(self) -> None:
        """Keep the root open for the store's life and note its (device, inode)."""
        try:  # O_PATH: no read permission needed (a write-only drop folder)
            fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return  # gone already: _make says so
        weakref.finalize(self, os.close, fd)
        st = os.fstat(fd)
        self._root_id = (st.st_dev, st.st_ino)

    def _make(self, folder: Path) -> None:
        """Make a missing folder of the store; the root itself only for a worker's own
        ``--output`` before its first image. A root gone since (removed, renamed, its
        share unmounted: a shared one's ``IDENTITY`` gone) is this host's store failing,
        not a folder to make: until 2026-12-01 it was made again, on the local disk, and
        rows named images no store held (a fresh user's); so is an own ``--output`` that
        is another folder now (``_check_root``; until 2026-12-03 written to). Below a
        root, levels are made one by one, never the root: removed between the check and
        the mkdir, it was made again (a CI run's race). Raises OSError."""
        if not self._rooted:
            folder.mkdir(parents=True, exist_ok=True)
            return
        self._check_root()
        if self.spec and not (self.root / IDENTITY).is_file():
            raise FileNotFoundError(
                errno.ENOENT, f"{IDENTITY} is gone from {self.where} (is the share mounted?)"
            )
        below = folder.relative_to(self.root).parts
        try:
            for depth in range(1, len(below) + 1):
                with contextlib.suppress(FileExistsError):
                    os.mkdir(self.root.joinpath(*below[:depth]))
        except FileNotFoundError:
            self._check_root()  # the root went meanwhile: said so
            raise

    def _check_root(self) -> None:
        """Raise FileNotFoundError when the root is gone, or (an own ``--output``) is
        another folder than the one the store began with: made again, or a disk unmounted
        under it or mounted over it (until 2026-12-03 the images went on into that one,
        and the rows before named files it did not hold: a fresh user's)."""
        here = _folder_id(self.root)
        if here is None:
            raise FileNotFoundError(errno.ENOENT, f"the store {self.where} is gone")
        if self._root_id is not None and here != self._root_id:
            raise FileNotFoundError(
                errno.ENOENT,
                f"{self.where} is not the folder this worker began storing in (made again, "
                "or a disk unmounted or mounted there)",
            )

    def size(self, relative: str) -> int | None:
        """Bytes of the stored image, or None when there is none; raises StoreFailure."""
        try:
            return (self.root / relative).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StoreFailure(f"cannot read {self.root / relative}: {exc.strerror}") from None

    def read(self, relative: str) -> bytes:
        """The stored bytes; raises StoreFailure (also when absent)."""
        try:
            return (self.root / relative).read_bytes()
        except OSError as exc:
            raise StoreFailure(f"cannot read {self.root / relative}: {exc.strerror}") from None

    def check(self) -> None:
        """Raise UsageError (one line) unless the folder can be written. A shared folder
        must exist already: creating it would fill the local disk of a host where the
        share is not mounted."""
        if self.spec and not self.root.is_dir():
            raise UsageError(f"store {self.where} is not a folder here (is the share mounted?)")
        ensure_writable(self.root, "store")

    def identity(self, *, create: bool) -> str:
        """The folder's identity: a random token kept in ``IDENTITY`` inside it, made
        (``create``: the master's check) if missing; "" when it is missing and not made.
        A host where the share is not mounted finds the empty mount point instead, with
        no token or another: until 2026-12-01 its worker stored there, on the local disk,
        rows named the share, and the images were hidden once it was mounted again.
        Raises UsageError (one line) when it cannot be read or made."""
        path = self.root / IDENTITY
        try:
            if create and not path.exists():
                # O_EXCL, not a link: shares without hard links (SMB, FUSE) take it too;
                # never replaced: two masters on one share keep one token. It is whole
                # before any worker reads it: workers come once the master serves.
                with contextlib.suppress(FileExistsError):
                    fd = os.open(path, PART_FLAGS, 0o644)
                    try:
                        write_all(fd, secrets.token_hex(16).encode("ascii"))
                        # Readable by all whatever the umask: no secret, and every
                        # worker's user reads it (under umask 077 it was 0600, and
                        # workers running as another user could not join: a fresh
                        # user's). After the token: a share refusing chmod must not
                        # leave it empty (a review's).
                        with contextlib.suppress(OSError):
                            os.fchmod(fd, 0o644)
                    finally:
                        os.close(fd)
            return path.read_text(encoding="ascii").strip() if path.exists() else ""
        except PermissionError:
            raise UsageError(
                f"store {self.where}: cannot read {IDENTITY}: permission denied (this "
                f"user must be able to read it: chmod a+r {path})"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"store {self.where}: cannot read {IDENTITY}: {exc}") from None


def open_store(spec: str, output: Path) -> FolderStore | S3Store:
    """The store a spec names; ``output`` is the per-host folder used when it is ``""``.
    Raises UsageError for an S3 spec without the s3 extra installed."""
    if spec.startswith("s3://"):
        return S3Store(spec)
    if spec.startswith("file://"):
        return FolderStore(Path(unquote(urlsplit(spec).path)), spec)
    return FolderStore(output)
