"""The pictures a report shows, made ahead on a few threads.

A page shows up to ``ledger.SAMPLE`` gallery images and ``similar.MAX_CLUSTERS`` x
``similar.MAX_MEMBERS`` near duplicates: 184 thumbnails, each a stored file read,
decoded and shrunk (~1.4 ms apiece, ~0.35 s one after the other). Both sets are known
as soon as the last row is journalled (the master keeps the aggregate as it goes), and
Pillow releases the GIL while it decodes, shrinks and encodes; so ``Pictures`` starts
making them on ``THREADS`` threads at once, and the master starts it while it still
waits for its workers to hear that the run is over (``closing.start_pictures``). The page
takes each thumbnail when it renders, waiting only for what is not made yet.

Rows with the same content (``sha256``) share one thumbnail: the copies of one image
under many URLs, common on the web, fill whole near-duplicate clusters (20 clusters of 8
copies: 160 thumbnails to make, 0.15 s at the end of a run, instead of 20). A row whose
copy made none (its file is on another host) still gets its own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from crawler.report.model import ReportData
from crawler.report.thumbnails import StoreReader

THREADS = min(4, os.cpu_count() or 1)  # more would only queue for the cores
Cluster = list[dict[str, Any]]
_DIGEST = re.compile(r"[0-9a-f]{64}")  # a row's sha256, as the worker reports it


class Pictures:
    """The near-duplicate clusters of ``rep`` and the thumbnails its page shows."""

    def __init__(self, rep: ReportData, output: Path | None) -> None:
        """``output``: this host's folder of stored images (None: only shared stores')."""
        clusters, self.cluster_count, self.cluster_images = rep.near.clusters()
        self.clusters: list[Cluster] = clusters
        self._reader = StoreReader(output)
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="thumbnail")
        self._made: dict[tuple[Any, Any], Future[str | None]] = {}
        self._maker: dict[tuple[Any, Any], tuple[Any, Any]] = {}  # key -> whose file made it
        # The gallery's first candidates (the page asks for more only if some fail).
        self._start(rep.candidates[: rep.sample])
        self._start(row for cluster in clusters for row in cluster)

    def _start(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            key = _key(row)
            if key is not None and key not in self._made:
                self._made[key] = self._pool.submit(self._reader.thumbnail, row)
                self._maker[key] = _file(row)

    def thumbnail(self, row: dict[str, Any]) -> str | None:
        """A data: URI of the row's image (made ahead if it was asked for); None when it
        cannot be read or shown."""
        key = _key(row)
        if key is None:
            return None
        made = self._made.get(key)
        if made is None:
            return self._reader.thumbnail(row)
        try:
            uri = made.result()
        except Exception:  # a store's own failure: that image gets no thumbnail
            uri = None
        if uri is None and self._maker[key] != _file(row):  # a copy elsewhere, maybe here
            return self._reader.thumbnail(row)
        return uri

    def close(self) -> None:
        """Stop making what is not started yet (the page is written, or not wanted)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _key(row: dict[str, Any]) -> tuple[Any, Any] | None:
    """What a thumbnail is made once for: the row's content, else its file; None: no
    stored file."""
    if not isinstance(row.get("path"), str):
        return None
    digest = row.get("sha256")
    if isinstance(digest, str) and _DIGEST.fullmatch(digest):
        return ("sha256", digest)  # no file's: a path is never 64 hex digits alone
    return _file(row)


def _file(row: dict[str, Any]) -> tuple[Any, Any]:
    return (row.get("store") or None, row.get("path"))
