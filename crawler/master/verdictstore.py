"""The robots.txt verdicts the master keeps, by id (``verdicts.RobotsBoard``): small ones
in memory, the larger ones in a temporary file beside the manifest.

A verdict carries its origin's robots.txt (base64; RFC 9309 2.5: at least 500 KiB are
read), and the master keeps one per origin for up to 24 hours (RFC 9309 2.4), for the
workers that have not seen it. Kept in memory, as until 2026-12-02, a run over a list of
many origins grew by every origin's robots.txt: about 1.8 KB an origin for a 1 KB
robots.txt, 14 KB once its rules were parsed (200,000 URLs of 100,000 such origins: a
master of 1.6 GB), and a million origins would take gigabytes. So a verdict whose body
has ``SPOOL_FROM`` characters or more is appended to a spool (one line of JSON) and only
its place is kept (offset, length); the file is a deleted temporary file, which the
system frees when the master ends, however it ends (a verdict forgotten leaves its bytes
there until then). The spool shares its disk with the manifest and, often, the images:
it is written only while that disk keeps ``FREE_RESERVE`` bytes free after the write (a
review filled a 3 MiB output disk with nine 378 KB robots.txt, and the images and the
manifest were refused). Past that, or when a write fails, verdicts are kept in memory
(the latter with one warning): the run goes on. A verdict that cannot be read back
gives none: the worker then fetches robots.txt itself.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from crawler.console import log

SPOOL_FROM = 256  # characters of base64 body: smaller verdicts (a 404, a refusal) stay
FREE_RESERVE = 1 << 30  # bytes the spool's disk keeps free (statvfs, f_bavail)
Place = tuple[int, int]  # (offset, length) in the spool


class VerdictStore:
    """Verdicts by id. Not thread-safe on its own (the ``LeaseBoard``'s lock)."""

    def __init__(self, directory: Path | None = None) -> None:
        """``directory``: where the spool goes (None: the system's temporary folder), made
        at the first verdict that needs it."""
        self._directory = directory
        self._file: IO[bytes] | None = None
        self._end = 0  # the spool's size
        self._kept: dict[int, dict[str, Any] | Place] = {}
        self._warned = False

    def __contains__(self, verdict_id: object) -> bool:
        return verdict_id in self._kept

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def spooled(self) -> int:
        """Bytes written to the spool."""
        return self._end

    def add(self, verdict_id: int, verdict: dict[str, Any]) -> None:
        """Keep ``verdict`` (a checked one: ``robotstxt.check_verdict``) as ``verdict_id``."""
        body = verdict.get("body")
        if isinstance(body, str) and len(body) >= SPOOL_FROM and not self._warned:
            try:
                data = json.dumps(verdict).encode()
                if self._room_for(len(data)):
                    self._kept[verdict_id] = self._spool(data)
                    return
                self._stop(f"under {FREE_RESERVE >> 20} MiB free")
            except OSError as exc:
                self._stop(exc.strerror or str(exc))
        self._kept[verdict_id] = verdict

    def get(self, verdict_id: int) -> dict[str, Any] | None:
        """The verdict, or None: not kept, or its spool unreadable (an I/O error)."""
        kept = self._kept.get(verdict_id)
        if not isinstance(kept, tuple):
            return kept
        offset, length = kept
        if self._file is None:  # closed
            return None
        try:
            data = os.pread(self._file.fileno(), length, offset)
            verdict = json.loads(data)
        except (OSError, ValueError):
            return None
        return verdict if len(data) == length and isinstance(verdict, dict) else None

    def drop(self, verdict_id: int) -> None:
        """Forget a verdict (its bytes in the spool stay until the run ends)."""
        self._kept.pop(verdict_id, None)

    def close(self) -> None:
        """Free the spool: the verdicts in it are given no more, new ones stay in memory."""
        self._warned = True  # no spool again
        if self._file is not None:
            self._file.close()
            self._file = None

    def _stop(self, why: str) -> None:
        """Spool no more: say so, once."""
        self._warned = True
        log.warning("cannot spool robots.txt verdicts in %s (%s): kept in memory for the "
                    "rest of the run", self._directory or "the temporary folder", why)  # fmt: skip

    def _room_for(self, size: int) -> bool:
        """Would the spool's disk keep ``FREE_RESERVE`` bytes free after ``size`` more?
        Raises OSError (the folder gone, unreadable)."""
        if self._file is not None:
            found = os.fstatvfs(self._file.fileno())
        else:
            found = os.statvfs(self._directory or tempfile.gettempdir())
        return found.f_bavail * found.f_frsize - size >= FREE_RESERVE

    def _spool(self, data: bytes) -> Place:
        """Append ``data``; returns its place. Raises OSError."""
        if self._file is None:
            folder = None if self._directory is None else str(self._directory)
            self._file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 (close())
        offset, view = self._end, memoryview(data)
        while view:  # a short write (a disk filling up) writes the rest, or raises
            view = view[os.pwrite(self._file.fileno(), view, self._end) :]
            self._end = offset + len(data) - len(view)
        return offset, len(data)
