"""The task store: distinct URLs on disk, duplicates found, hash collisions never merge.

Fast and in-process, on real data: no network, no subprocesses.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import pytest

from crawler.master.taskstore import TaskStore

STORED_NAME = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]+)")


def test_task_store_keeps_distinct_urls_and_finds_duplicates(tmp_path: Path) -> None:
    store = TaskStore(tmp_path)
    store.sources.append("a.txt")
    urls = [f"http://h{i % 7}.example/{i}.jpg" for i in range(70_000)]  # grows the table
    for line, url in enumerate(urls, start=1):
        assert store.add(url, 0, line) == (line - 1, True)
    assert store.add(urls[12_345], 0, 99) == (12_345, False)
    assert len(store) == len(urls)
    assert store.find(urls[69_999]) == 69_999
    assert store.find("http://h0.example/missing.jpg") is None
    some = [urls[69_999], "http://h0.example/missing.jpg", *urls[500:700], urls[3]]
    assert store.find_many(some) == [69_999, None, *range(500, 700), 3]
    store.drop_index()  # rebuilt from the spool by the next look-up
    assert store.find_many(some) == [69_999, None, *range(500, 700), 3]
    store.drop_index()
    assert store.add(urls[12], 0, 1) == (12, False) and store.find(urls[40_000]) == 40_000
    assert store.url(5) == urls[5] and store[6] == urls[6]
    assert store.source(41) == "a.txt:42"
    assert store.entry(41) == (urls[41], "a.txt:42")
    assert store.urls(100, 104) == urls[100:104]
    with pytest.raises(IndexError):
        store.url(len(urls))
    store.close()


class CollidingStore(TaskStore):
    """Every URL gets the same hash tag: only the URL comparison keeps them apart."""

    @staticmethod
    def _tag(url: str) -> int:
        return 12345


def test_task_store_never_merges_urls_whose_hashes_collide(tmp_path: Path) -> None:
    store = CollidingStore(tmp_path)
    store.sources.append("a.txt")
    urls = [f"http://example.com/{i}" for i in range(300)]
    assert [store.add(u, 0, i)[1] for i, u in enumerate(urls)] == [True] * 300
    assert [store.find(u) for u in urls] == list(range(300))
    assert store.find_many([*urls[::-1], "http://example.com/other"]) == [*range(299, -1, -1), None]
    assert store.add(urls[7], 0, 1) == (7, False)
    assert store.find("http://example.com/other") is None
    store.close()


def test_crc_of_a_prefix_is_the_same_whatever_was_asked_before(tmp_path: Path) -> None:
    """The CRC continues from the last one computed (a run checks its first N tasks at the
    start and keeps all of them at the end) and equals one over the records' bytes."""
    store, fresh = TaskStore(tmp_path), TaskStore(tmp_path)
    store.sources.append("l.txt")
    fresh.sources.append("l.txt")
    for n in range(50):
        store.add(f"http://h.test/{n}.png", 0, n + 1, {"n": n} if n % 3 else None)
    for n in range(50):
        fresh.add(f"http://h.test/{n}.png", 0, n + 1, {"n": n} if n % 3 else None)
    for count in (20, 50, 10, 0, 50, 35):
        assert store.crc(count) == fresh.crc(count) == zlib.crc32(spool_bytes(fresh, count))
    store.close()
    fresh.close()


def spool_bytes(store: TaskStore, count: int) -> bytes:
    records = []
    for task_id in range(count):
        url, where = store.entry(task_id)
        extra = store.record(task_id)[2]
        line = where.rsplit(":", 1)[1]
        tail = "\t" + json.dumps(extra, separators=(",", ":")) if extra else ""
        records.append(f"{url}\t0:{line}{tail}\n")
    return "".join(records).encode()


def test_records_of_a_batch_are_each_tasks_record(tmp_path: Path) -> None:
    """``records`` (the intake's read of a batch's tasks, a few ``pread`` for all) gives
    what ``record`` gives each task asked, extras and all, and nothing else: ids close
    together and far apart, the first and the last, some not flushed yet."""
    store = TaskStore(tmp_path)
    store.sources += ["a.txt", "b.csv"]
    for i in range(3_000):
        extra = {"caption": f"c{i}", "n": i} if i % 3 == 0 else None
        store.add(f"http://h{i % 5}.example/{i}.jpg", i % 2, i + 1, extra)
    asked = [0, 1, 2, 70, 71, 400, 401, 402, 1_999, 2_998, 2_999]
    assert store.records(asked) == {i: store.record(i) for i in asked}
    store.flush()
    assert store.records([5]) == {5: store.record(5)}
    assert store.records([]) == {}
    store.close()
