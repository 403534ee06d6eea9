"""Finding the tasks of a manifest's rows: by URL, for millions of rows.

A manifest's rows mostly come in task order: a compacted journal is written in it, and
a first run's rows arrive in about the order the tasks were handed out. So the URLs of
the tasks near the last ones found are kept in a dict (a window of ``SPAN`` tasks, read
from the spool with one system call), and a row is looked up there first: one dict
look-up instead of a hash-table probe and a comparison read from the spool. Rows not
found there go to ``TaskStore.find_many``; while most rows miss, windows are moved only
now and then (``RETRY``).
"""

from __future__ import annotations

from crawler.master.taskstore import TaskStore

SPAN = 1 << 13  # tasks in a window (three kept: ~25k URLs, a few MB)
KEEP = 3  # windows kept: the one of the latest rows, the one before and the one after
GOOD = 0.5  # the share of a batch's rows found in windows that keeps them worth reading
RETRY = 16  # while they are not: batches between two tries


class Lookup:
    """``find_many`` for the rows of one journal, read in order."""

    def __init__(self, store: TaskStore) -> None:
        self._store = self.store = store
        self._windows: dict[int, dict[str, int]] = {}
        self._near: dict[str, int] = {}  # the windows' URLs, together
        self._batches = 0
        self._place(0)

    def find_many(self, urls: list[str]) -> list[int | None]:
        """The task ids of ``urls`` (None: not a task), as ``TaskStore.find_many``."""
        near = self._near
        found = [near.get(url) for url in urls]
        missed = [i for i, task_id in enumerate(found) if task_id is None]
        if missed:
            for i, task_id in zip(missed, self._store.find_many([urls[i] for i in missed]),
                                  strict=True):  # fmt: skip
                found[i] = task_id
        self._batches += 1
        worth = len(urls) - len(missed) >= GOOD * len(urls) or self._batches % RETRY == 0
        last = max((task_id for task_id in found if task_id is not None), default=None)
        if worth and last is not None:
            self._place(last // SPAN)
        return found

    def _place(self, window: int) -> None:
        """Keep the windows around ``window``, reading those not yet read."""
        wanted = {w for w in range(window - 1, window + KEEP - 1) if w >= 0}
        if wanted == set(self._windows):
            return
        count = len(self._store)
        for w in set(self._windows) - wanted:
            for url in self._windows.pop(w):
                del self._near[url]
        for w in wanted - set(self._windows):
            first, last = w * SPAN, min(count, (w + 1) * SPAN)
            urls = self._store.urls(first, last) if first < last else []
            self._windows[w] = dict(zip(urls, range(first, last), strict=True))
            self._near.update(self._windows[w])
