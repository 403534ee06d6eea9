"""The manifest counted as it is, after it was removed, replaced or cut short mid-run.

The run summary's ``counts`` and ``missing`` are the master's counts of the rows it
journalled. A manifest replaced (``mv``), cut short (``: >``) or removed during the run
no longer holds those rows, and until 2026-12-01 the summary still said "ok 120,
missing 0" of a file holding 100 rows (or 9), with ``manifest_bytes`` the cut file's
size, so the report vouched for it too. A run that finds its manifest so
(``ManifestWriter.still_named``) counts what the file at its path holds now against its
lists: each task's last row, the last row of each per-line input line (``duplicate``,
``invalid_url``, matched by ``source``); the lines with none are ``missing``.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from crawler.deferred import numpy
from crawler.manifest import LINE_STATUSES, journal_lines
from crawler.master.earlier import STATUS_CODES, STATUS_NAMES
from crawler.master.linerows import source_key
from crawler.master.lookup import Lookup
from crawler.master.taskstore import TaskStore
from crawler.rowread import row_fields

BATCH = 4096  # rows whose tasks are looked up together


class _Found:
    """The last status of each task, and of each per-line source, in journal order."""

    def __init__(self, store: TaskStore) -> None:
        self.lookup = Lookup(store)
        self.tasks = bytearray(len(store))  # status code of each task's last row; 0: none
        self.batch: list[tuple[str, int]] = []
        self.keys = array("q")  # per-line rows: source_key, hash of the source, status
        self.sources = array("q")
        self.codes = bytearray()

    def add(self, line: bytes) -> None:
        try:
            row = row_fields(line, ("source",))
            status, url, source = row["status"], row["url"], row["source"]
        except (ValueError, TypeError, KeyError, RecursionError):
            return  # damaged (or nested past Python's stack): no row
        code = STATUS_CODES.get(status) if isinstance(status, str) else None
        if code is None:
            return
        if status in LINE_STATUSES and isinstance(source, str):
            self.keys.append(source_key(source))
            self.sources.append(hash(source))
            self.codes.append(code)
        elif status not in LINE_STATUSES and isinstance(url, str):
            self.batch.append((url, code))
            if len(self.batch) >= BATCH:
                self.settle()

    def settle(self) -> None:
        batch, self.batch = self.batch, []
        found = self.lookup.find_many([url for url, _ in batch])
        for (_, code), task_id in zip(batch, found, strict=True):
            if task_id is not None:
                self.tasks[task_id] = code

    def counts(self, line_keys: Sequence[int]) -> Counter[str]:
        np = numpy()
        codes = np.frombuffer(bytes(self.tasks), dtype=np.uint8)
        keys = np.frombuffer(self.keys, dtype=np.int64)
        listed = np.isin(keys, np.frombuffer(array("q", line_keys), dtype=np.int64))
        sources = np.frombuffer(self.sources, dtype=np.int64)[listed][::-1]
        line_codes = np.frombuffer(bytes(self.codes), dtype=np.uint8)[listed][::-1]
        _, last = np.unique(sources, return_index=True)  # reversed: each source's last row
        found = np.bincount(codes, minlength=256) + np.bincount(line_codes[last], minlength=256)
        return Counter({STATUS_NAMES[i]: int(n) for i, n in enumerate(found) if i and n})


def recount(manifest: Path, store: TaskStore, line_keys: Sequence[int]) -> Counter[str]:
    """The statuses of the rows ``manifest`` holds now for the run's tasks (``store``) and
    its per-line input lines (``line_keys``: the ``source_key`` of each); an absent or
    unreadable manifest holds none. The lines with no row are the run's ``missing``."""
    found = _Found(store)
    try:
        for _, line in journal_lines(manifest):
            found.add(line)
    except OSError:
        return Counter()
    found.settle()
    return found.counts(line_keys)
