"""Near duplicates for the report: clusters of images whose perceptual hashes (``phash``,
64 bits) are at most ``THRESHOLD`` bits apart.

Finding every such pair without comparing all pairs is multi-index hashing (Norouzi,
Punjani and Fleet, "Fast Search in Hamming Space with Multi-Index Hashing", CVPR 2012):
the hash is cut into ``BANDS`` bands of 16 bits; two hashes at most 7 bits apart have,
by the pigeonhole principle, a band differing in at most one bit. So each band's value
is looked up (NumPy's sorted arrays, imported when first needed: ``crawler.deferred``)
as it is and with each single bit flipped, and the candidates found are checked on all
64 bits: every pair within ``THRESHOLD`` is found, none beyond it is reported.
Pairs are joined into clusters (union-find: single linkage, a chain of images each
within ``THRESHOLD`` bits of the next, so two members may be far apart; the report says so).

Bounded at any manifest size: the first ``MAX_HASHED`` images with a hash are searched
(the page says so when there are more), at most ``MAX_PAIRS`` pairs are joined, and the
``MAX_CLUSTERS`` largest clusters are shown, ``MAX_MEMBERS`` images each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crawler.deferred import load_numpy_soon, numpy

if TYPE_CHECKING:
    import numpy as np

THRESHOLD = 6  # bits: re-encodings and 10 % resizes measure 0-4, unrelated images ~32
BANDS = 4  # of 16 bits: finds every pair up to 7 bits apart (see above)
# Images searched: 8 bytes of hash and one compact record (~240 characters with a
# 60-character URL) each, kept by the master all run long (report.ledger): 50,000 hold
# about 23 MB (tracemalloc).
MAX_HASHED = 50_000
# sha256 last: an aggregate kept by an earlier version has rows of the first 8 (``_row``).
_NAMES = ("url", "path", "store", "host", "width", "height", "format", "bytes", "sha256")
_SEP = "\x1f"  # ASCII unit separator: in no URL, stored name, host id or format name
MAX_PAIRS = 1_000_000
MAX_CLUSTERS = 20
MAX_MEMBERS = 8


@dataclass
class NearDuplicates:
    """Collects rows' hashes (``add``), then ``clusters()``."""

    hashes: list[int] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)  # what a thumbnail needs, one string each
    seen: int = 0  # rows with a usable hash, searched or not
    at: dict[int, int] = field(default_factory=dict)  # hash(URL) -> index of its entry
    gone: set[int] = field(default_factory=set)  # entries of removed rows

    def add(self, row: dict[str, Any]) -> None:
        value = _hash(row.get("phash"))
        if value is None:
            return
        self.seen += 1
        if len(self.hashes) < MAX_HASHED:
            self.at[hash(row["url"])] = len(self.hashes)
            self.hashes.append(value)
            self.rows.append(_SEP.join("" if row.get(k) is None else str(row[k]) for k in _NAMES))
            if len(self.hashes) > 1:  # clusters() will need NumPy: have it by then
                load_numpy_soon()

    def remove(self, row: dict[str, Any]) -> None:
        """Take out a superseded row ``add`` took in (``report.ledger``): its entry is
        dropped when the clusters are made."""
        if _hash(row.get("phash")) is None:
            return
        self.seen -= 1
        index = self.at.pop(hash(row["url"]), None)
        if index is not None:
            self.gone.add(index)

    def forget_gone(self) -> None:
        """Drop the entries of removed rows (once, before ``clusters``)."""
        if not self.gone:
            return
        keep = [i for i in range(len(self.rows)) if i not in self.gone]
        self.hashes = [self.hashes[i] for i in keep]
        self.rows = [self.rows[i] for i in keep]
        self.index()
        self.gone = set()

    def index(self) -> None:
        """Rebuild ``at`` from ``rows`` (after a load or a clean-up)."""
        self.at = {hash(row.split(_SEP, 1)[0]): i for i, row in enumerate(self.rows)}

    def urls(self) -> list[str]:
        """The URLs of the entries kept (removed ones dropped)."""
        self.forget_gone()
        return [row.split(_SEP, 1)[0] for row in self.rows]

    def clusters(self) -> tuple[list[list[dict[str, Any]]], int, int]:
        """(the largest clusters, largest first, each a list of rows: url, path, store,
        host, width, height, format, bytes, distance to the first; how many clusters of
        2 images or more there are; how many images they hold)."""
        self.forget_gone()
        if len(self.hashes) < 2:
            return [], 0, 0
        np = numpy()
        # Equal hashes (the same picture, often the same bytes) are one node: a thousand
        # copies must not make a million pairs.
        unique, inverse = np.unique(np.array(self.hashes, dtype=np.uint64), return_inverse=True)
        parent = np.arange(len(unique))
        for i, j in near_pairs(unique):
            _union(parent, int(i), int(j))
        roots = np.array([_find(parent, i) for i in range(len(unique))])[inverse.ravel()]
        ids, counts = np.unique(roots, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        ids, counts = ids[order], counts[order]
        shown = []
        for root, count in zip(ids[:MAX_CLUSTERS], counts[:MAX_CLUSTERS], strict=True):
            if count < 2:
                break
            members = np.flatnonzero(roots == root)[:MAX_MEMBERS]
            first = self.hashes[int(members[0])]
            shown.append([self._row(int(m), first) for m in members])
        several = counts > 1
        return shown, int(several.sum()), int(counts[several].sum())

    def _row(self, index: int, first: int) -> dict[str, Any]:
        cells: list[Any] = [cell or None for cell in self.rows[index].split(_SEP)]
        cells += [None] * (len(_NAMES) - len(cells))  # kept before sha256 was: none
        for at in (4, 5, 7):  # width, height, bytes
            cells[at] = int(cells[at]) if cells[at] and cells[at].isdigit() else None
        row = dict(zip(_NAMES, cells, strict=True))
        row["distance"] = (int(self.hashes[index]) ^ first).bit_count()
        return row


def near_pairs(values: np.ndarray, threshold: int = THRESHOLD) -> np.ndarray:
    """(i, j) index pairs, i < j, of the uint64 ``values`` at most ``threshold`` bits
    apart (``threshold`` <= 7: the band search's guarantee); at most MAX_PAIRS."""
    if threshold > 2 * BANDS - 1:
        raise ValueError(f"threshold {threshold} is beyond what {BANDS} bands guarantee")
    np = numpy()
    found: list[np.ndarray] = []
    total = 0
    for band in range(BANDS):
        keys = ((values >> np.uint64(16 * band)) & np.uint64(0xFFFF)).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        for flip in [0] + [1 << bit for bit in range(16)]:
            pairs = _matches(values, keys ^ flip, ordered, order, threshold)
            found.append(pairs)
            total += len(pairs)
            if total >= MAX_PAIRS:
                break
    pairs = np.unique(np.concatenate(found), axis=0) if found else np.empty((0, 2), np.int64)
    return pairs[:MAX_PAIRS]


def _matches(
    values: np.ndarray, wanted: np.ndarray, ordered: np.ndarray, order: np.ndarray, limit: int
) -> np.ndarray:
    """Pairs (i, j), i < j, where value j's band equals ``wanted[i]`` and the whole
    hashes are within ``limit`` bits."""
    np = numpy()
    lo = np.searchsorted(ordered, wanted, "left")
    hi = np.searchsorted(ordered, wanted, "right")
    counts = hi - lo
    if not counts.any():
        return np.empty((0, 2), np.int64)
    left = np.repeat(np.arange(len(values)), counts)
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    right = order[starts + np.arange(counts.sum())]
    keep = left < right
    left, right = left[keep], right[keep]
    close = np.bitwise_count(values[left] ^ values[right]) <= limit
    return np.stack([left[close], right[close]], axis=1)


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = int(parent[i])
    return i


def _union(parent: np.ndarray, i: int, j: int) -> None:
    a, b = _find(parent, i), _find(parent, j)
    if a != b:
        parent[max(a, b)] = min(a, b)


def _hash(value: Any) -> int | None:
    """A phash given as 16 hex digits, as an int; None for anything else."""
    if not isinstance(value, str) or len(value) != 16:
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None
