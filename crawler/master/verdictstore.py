"""The robots.txt verdicts the master keeps, by id (``verdicts.RobotsBoard``): small ones
in memory, the larger ones in a temporary file beside the manifest.

A verdict carries its origin's robots.txt (base64; RFC 9309 2.5: at least 500 KiB are
read), and the master keeps one per origin for up to 24 hours (RFC 9309 2.4), for the
workers that have not seen it. Kept in memory, as until 2026-12-02, a run over a list of
many origins grew by every origin's robots.txt: about 1.8 KB an origin for a 1 KB
robots.txt, 13.5 KB once its rules were parsed; 100,000 origins took the master from 172
to 300 MB, and a million would take gigabytes. So a verdict whose body has
``SPOOL_FROM`` characters or more is appended to a spool (one line of JSON) and only its
place is kept (offset, length); the file is a deleted temporary file, which the system
frees when the master ends, however it ends. A spool that cannot be written (a full
disk) keeps the verdict in memory instead, with one warning: the run goes on. One that
cannot be read back gives no verdict: the worker then fetches robots.txt itself.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from crawler.console import log

SPOOL_FROM = 256  # characters of base64 body: smaller verdicts (a 404, a refusal) stay
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
                self._kept[verdict_id] = self._spool(json.dumps(verdict).encode())
                return
            except OSError as exc:
                self._warned = True
                log.warning("cannot spool robots.txt verdicts in %s (%s): kept in memory "
                            "for the rest of the run", self._directory or "the temporary "
                            "folder", exc.strerror or exc)  # fmt: skip
        self._kept[verdict_id] = verdict

    def get(self, verdict_id: int) -> dict[str, Any] | None:
        """The verdict, or None: not kept, or its spool unreadable (an I/O error)."""
        kept = self._kept.get(verdict_id)
        if not isinstance(kept, tuple):
            return kept
        offset, length = kept
        try:
            assert self._file is not None  # a place only comes from _spool
            data = os.pread(self._file.fileno(), length, offset)
            verdict = json.loads(data)
        except (OSError, ValueError):
            return None
        return verdict if len(data) == length and isinstance(verdict, dict) else None

    def drop(self, verdict_id: int) -> None:
        """Forget a verdict (its bytes in the spool stay until the run ends)."""
        self._kept.pop(verdict_id, None)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

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
