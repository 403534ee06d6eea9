"""robots.txt kept in memory within bounds: the master's parsed rules, and a worker's.

Protego takes about 12 bytes of memory a byte of robots.txt (13.5 KB for a 1 KB one of
40 rules), up to ~38 when every rule has a wildcard, and RFC 9309 2.5 has us read up
to 500 KiB of one. A process that kept every origin's for the run grew with each origin
it met: the master until 2026-12-02 (14.3 KB an origin, ``master.verdictstore``), a
worker until 2026-12-02 too (33 KB an origin: each robots.txt it fetched, and each
verdict the master sent it, parsed and kept; 3,000 origins took a worker from 55 to 154
MB, ``bench/worker_origins.py``). ``KeptRules`` keeps the most recently used entries,
at most ``KEPT_ENTRIES`` of them and ``KEPT_BYTES`` of robots.txt behind them (about 50
MB parsed, up to ~150 MB with wildcards everywhere); one entry stays whatever its size.
Not thread-safe on its own.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, TypeVar

KEPT_ENTRIES = 4096  # entries at most
KEPT_BYTES = 4 << 20  # bytes of robots.txt behind them at most

K = TypeVar("K")
V = TypeVar("V")


def robots_bytes(verdict: dict[str, Any]) -> int:
    """Bytes of robots.txt a verdict holds (its base64 ``body``'s decoded length)."""
    return len(str(verdict.get("body") or "")) * 3 // 4


class KeptRules(Generic[K, V]):
    """The least recently used entries dropped past either bound (module docstring)."""

    def __init__(self, entries: int | None = None, max_bytes: int | None = None) -> None:
        """``entries``, ``max_bytes``: the bounds (None: ``KEPT_ENTRIES``, ``KEPT_BYTES``)."""
        self._entries = KEPT_ENTRIES if entries is None else entries
        self._max_bytes = KEPT_BYTES if max_bytes is None else max_bytes
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> tuple[V] | None:
        """``(value,)`` (the value may be None), now the most recently used; None if absent."""
        found = self._items.get(key)
        if found is None:
            return None
        self._items.move_to_end(key)
        return (found[0],)

    def put(self, key: K, value: V, size: int) -> list[K]:
        """Keep ``value`` (``size``: bytes of robots.txt behind it); the keys dropped."""
        self.pop(key)
        self._items[key] = (value, size)
        self._bytes += size
        dropped = []
        while len(self._items) > 1 and (
            len(self._items) > self._entries or self._bytes > self._max_bytes
        ):
            oldest = next(iter(self._items))
            self.pop(oldest)
            dropped.append(oldest)
        return dropped

    def pop(self, key: K) -> None:
        found = self._items.pop(key, None)
        if found is not None:
            self._bytes -= found[1]
