"""The master's content index: which task had an image's bytes first, across runs, on
disk (master.contents)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.master.contents import ContentIndex


def digest(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def test_first_seen_wins_and_never_points_at_itself(tmp_path: Path) -> None:
    index = ContentIndex(tmp_path)
    assert index.note(0, digest(1)) is None
    assert index.note(1, digest(1)) == 0
    assert index.note(2, digest(2)) is None
    assert index.note(0, digest(1)) is None  # the first again (a reuse): itself
    assert index.note(3, digest(1)) == 0
    index.close()
    assert list(tmp_path.iterdir()) == []  # the file goes with it


def test_earlier_runs_come_first_and_stale_firsts_are_replaced(tmp_path: Path) -> None:
    index = ContentIndex(tmp_path)
    index.seed(5, digest(7))  # an earlier run: task 5 had content 7
    index.seed(6, digest(8))
    index.seed(6, None)  # ... then task 6 failed: content 8 has no first any more
    assert index.note(1, digest(7)) == 5
    assert index.note(2, digest(8)) is None  # becomes the first of content 8
    assert index.note(3, digest(8)) == 2
    assert index.note(5, digest(9)) is None  # task 5 now has other bytes...
    assert index.note(4, digest(7)) is None  # ...so content 7's first is task 4 now
    assert index.note(9, digest(7)) == 4
    assert index.note(4, None) is None  # task 4 failed: the next copy is the first
    assert index.note(10, digest(7)) is None
    for junk in ("", "zz" * 32, 12, None, digest(1)[:40]):
        assert index.note(11, junk) is None
    index.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.one_of(st.none(), st.integers(0, 6)))))
def test_matches_a_model(tmp_path_factory, events) -> None:
    """Against a plain model: current content per task; the first of a content is the
    earliest noted task still holding it."""
    index = ContentIndex(tmp_path_factory.mktemp("c"))
    current: dict[int, int | None] = {}
    first: dict[int, int] = {}
    for task, content in events:
        current[task] = content
        got = index.note(task, None if content is None else digest(content))
        if content is None:
            assert got is None
            continue
        holder = first.get(content)
        if holder is None or current.get(holder) != content:
            first[content] = task
            assert got is None
        elif holder == task:
            assert got is None
        else:
            assert got == holder
    index.close()
