"""The master's content index: which task had an image's bytes first, across runs, on
disk (master.contents)."""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_hostile_network import remount_read_only, tmpfs

from crawler.exceptions import JournalError
from crawler.master.contents import COMMIT_EVERY, TABLES, ContentIndex
from crawler.master.copies import BATCH


def digest(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


class Tasks:
    """Task numbers as URLs and list lines, as the master gives them to the index."""

    def __init__(self, index: ContentIndex) -> None:
        self.index = index

    def note(self, task: int, sha256: object) -> int | None:
        source = self.index.note(f"http://x.test/{task}", f"list.txt:{task}", sha256)
        return None if source is None else int(source.rpartition(":")[2])

    def seed(self, task: int, sha256: object) -> None:
        self.index.seed(f"http://x.test/{task}", f"list.txt:{task}", sha256)


def test_first_seen_wins_and_never_points_at_itself(tmp_path: Path) -> None:
    raw = ContentIndex(tmp_path / "c.sqlite")
    index = Tasks(raw)
    assert index.note(0, digest(1)) is None
    assert index.note(1, digest(1)) == 0
    assert index.note(2, digest(2)) is None
    assert index.note(0, digest(1)) is None  # the first again (a reuse): itself
    assert index.note(3, digest(1)) == 0
    raw.discard()
    assert list(tmp_path.iterdir()) == []  # the file goes with it


def test_earlier_runs_come_first_and_stale_firsts_are_replaced(tmp_path: Path) -> None:
    raw = ContentIndex(tmp_path / "c.sqlite")
    index = Tasks(raw)
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
    raw.close()


def test_kept_only_for_the_manifest_it_was_kept_with(tmp_path: Path) -> None:
    """A completed run keeps the index with the manifest's fingerprint; the next run uses
    it only for that manifest, and a run that opened it and did not complete leaves it
    unusable (it may hold rows the manifest never got)."""
    path = tmp_path / "c.sqlite"
    index = Tasks(ContentIndex(path))
    index.seed(1, digest(1))
    index.index.keep([10, 20, 30, 40])
    index.index.close()
    again = ContentIndex(path, [10, 20, 30, 40])
    assert again.ready and Tasks(again).note(2, digest(1)) == 1  # no seeding needed
    again.close()  # not kept: this run did not complete
    assert not ContentIndex(path, [10, 20, 30, 40]).ready
    other = ContentIndex(path, [10, 20, 30, 41])
    assert not other.ready and Tasks(other).note(3, digest(1)) is None  # emptied
    other.close()
    path.write_bytes(b"not a database at all" * 100)
    damaged = ContentIndex(path, [10, 20, 30, 40])  # removed and made anew (a warning)
    assert not damaged.ready and Tasks(damaged).note(4, digest(1)) is None
    damaged.close()


def url(task: int) -> str:
    return f"http://x.test/{task}"


@pytest.mark.parametrize("change", ["moved", "gone", "other bytes", "failed"])
def test_only_firsts_with_copies_are_marked(tmp_path: Path, change: str) -> None:
    """A first whose line moved, that left the lists, or whose URL has other bytes or
    failed marks its image ``changed`` only when another URL holds it: a line inserted on
    top of a list of distinct images marks none (until 2026-12-01 all: 10M digests in a
    Python set for a 10M-URL list). Marks are a table, kept with the index for the next
    run (a first changed while a run served: until 2026-12-01 forgotten)."""
    path = tmp_path / "c.sqlite"
    raw = ContentIndex(path)
    for n in range(60):  # distinct images, and a copy of image 7 (task 100)
        raw.seed(url(n), f"list.txt:{n}", digest(n))
    raw.seed(url(100), "list.txt:100", digest(7), "list.txt:7")
    for n in range(60):
        if change == "moved":
            raw.moved(url(n), f"list.txt:{n + 1}", digest(n))
        elif change == "gone":
            raw.gone(url(n))
        else:
            raw.note(url(n), f"list.txt:{n}", None if change == "failed" else digest(n + 1000))
    raw.keep([1, 2, 3, 4])
    raw.close()
    again = ContentIndex(path, [1, 2, 3, 4])
    assert again.ready
    assert list(again.take_changed()) == [bytes.fromhex(digest(7))]
    assert list(again.take_changed()) == []  # taken
    again.close()


def test_an_older_version_is_filled_anew_without_a_warning(tmp_path: Path, caplog) -> None:
    """Version 3's file (no ``changed`` nor ``away`` table), kept for this manifest: not
    damage, just not used (``OLDER``)."""
    path = tmp_path / "c.sqlite"
    with sqlite3.connect(path) as db:
        for sql in [sql for name, sql in TABLES.items() if name not in ("changed", "away")]:
            db.execute(sql)
        kept = '{"version": 3, "fingerprint": [1, 2, 3, 4]}'
        db.execute("INSERT INTO meta VALUES ('kept', ?)", (kept,))
    db.close()
    index = ContentIndex(path, [1, 2, 3, 4])
    assert not index.ready and "damaged" not in caplog.text
    assert Tasks(index).note(1, digest(1)) is None
    index.close()


def test_holders_come_in_batches(tmp_path: Path) -> None:
    """An image with more copies than a batch: every holder, in URL order, none twice."""
    raw = ContentIndex(tmp_path / "c.sqlite")
    urls = sorted(url(n) for n in range(2 * BATCH + 1))
    for at in urls:
        raw.seed(at, None, digest(1))
    batches = list(raw.holders(bytes.fromhex(digest(1))))
    assert [len(batch) for batch in batches] == [BATCH, BATCH, 1]
    assert [at for batch in batches for at in batch] == urls
    raw.close()


def test_urls_listed_again_cost_what_left_not_what_is_listed(tmp_path: Path) -> None:
    """``listed_again`` asks about the URLs that left the lists, a batch at a time, never
    about the listed ones (until 2026-12-01 every listed success row of a full read was
    one more look-up once any URL had left: a review's); one listed again is a copy."""
    raw = ContentIndex(tmp_path / "c.sqlite")
    index = Tasks(raw)
    for task in range(3 * BATCH):
        index.seed(task, digest(task))
    index.seed(3 * BATCH, digest(0))  # a copy of task 0's image
    gone = [f"http://x.test/{task}" for task in range(0, 3 * BATCH, 2)]
    for url in gone:
        raw.gone(url)
    asked: list[str] = []

    def find(urls: list[str]) -> list[int | None]:
        asked.extend(urls)
        return [0 if url == gone[0] else None for url in urls]  # task 0 is listed again

    raw.listed_again(find)
    assert sorted(asked) == sorted(gone)  # every URL that left, once; nothing else
    assert index.note(3 * BATCH + 1, digest(0)) == 0  # task 0 holds its image again


def test_a_place_that_cannot_hold_it_is_an_error_not_damage(tmp_path: Path) -> None:
    """Read-only or full: the file is not to blame, nothing is removed, the run stops
    (OSError when opening, JournalError during the run: one line at the master)."""
    with tmpfs(tmp_path / "disk", "64k") as disk:
        path = disk / "c.sqlite"
        index = ContentIndex(path)
        with pytest.raises(JournalError, match="database or disk is full"):
            for n in range(COMMIT_EVERY):  # written at its commit: ~5 MB in 64 KiB
                Tasks(index).seed(n, digest(n))
        index.discard()
        path.write_bytes(b"not a database at all" * 100)
        remount_read_only(disk)
        with pytest.raises(OSError, match="Read-only file system"):
            ContentIndex(path, [10, 20, 30, 40])
        assert path.read_bytes() == b"not a database at all" * 100


def test_damage_found_during_the_run_drops_the_index(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    index = Tasks(ContentIndex(path))
    index.seed(1, digest(1))
    index.index.keep([1])
    index.index.close()
    with sqlite3.connect(path) as db:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'first'").fetchone()
    db.close()
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * 4096)
        fh.write(b"\xff" * 4096)
    again = ContentIndex(path, [1])
    assert again.ready  # the page is read only when a row needs it
    assert Tasks(again).note(2, digest(1)) is None and again.broken
    assert Tasks(again).note(3, digest(1)) is None and again.first_of("x", digest(1)) is None
    again.keep([1])  # not kept: removed
    assert not path.exists()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.one_of(st.none(), st.integers(0, 6)))))
def test_matches_a_model(tmp_path_factory, events) -> None:
    """Against a plain model: current content per task; the first of a content is the
    earliest noted task still holding it."""
    raw = ContentIndex(tmp_path_factory.mktemp("c") / "c.sqlite")
    index = Tasks(raw)
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
    raw.close()


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3) | st.none()), max_size=30))
@settings(max_examples=40, deadline=None)
def test_users_are_the_urls_whose_current_row_has_the_bytes(rows: list) -> None:
    """``users`` (which superseded copies are still some row's image) agrees with the rows
    as they stand: each URL's last digest (None: a row without an image)."""
    with tempfile.TemporaryDirectory() as folder:
        raw = ContentIndex(Path(folder) / "c.sqlite")
        current: dict[str, str | None] = {}
        for task, n in rows:
            Tasks(raw).note(task, None if n is None else digest(n))
            current[f"http://x.test/{task}"] = None if n is None else digest(n)
        wanted = {digest(n) for n in range(5)}
        expected = {}
        for d in wanted:
            urls = sorted(url for url, has in current.items() if has == d)
            if urls:
                expected[d] = (urls[0], urls[-1])
        assert raw.users(wanted) == expected
        raw.broken = True  # once broken, it answers nothing rather than a guess
        assert raw.users(wanted) is None
        raw.discard()


def tables(index: ContentIndex) -> dict[str, list]:
    """Every table's rows, sorted: the index's whole state."""
    names = ("first", "current", "changed", "away")
    return {n: sorted(index._db.execute(f"SELECT * FROM {n}").fetchall()) for n in names}


def check_batches(earlier: list, events: list, cuts: list[int]) -> None:
    """``note_many`` over the ``cuts`` of ``events`` (task, content) answers as ``note``
    row by row and leaves the same tables, after ``earlier`` rows (``seed``)."""
    with tempfile.TemporaryDirectory() as folder:
        one, many = (ContentIndex(Path(folder) / f"{n}.sqlite") for n in ("one", "many"))
        for index in (one, many):
            for task, n in earlier:
                Tasks(index).seed(task, None if n is None else digest(n))
        notes = [
            (f"http://x.test/{task}", f"list.txt:{task}", None if n is None else digest(n))
            for task, n in events
        ]
        expected = [one.note(*note) for note in notes]
        got, start = [], 0
        for size in [*cuts, len(notes)]:
            got += many.note_many(notes[start : start + size])
            start += size
        assert got == expected
        assert tables(many) == tables(one)
        one.close()
        many.close()


NEW = [(1, 1), (2, 2), (3, 3)]  # three URLs new to the index, three new images


@pytest.mark.parametrize(
    ("earlier", "batch"),
    [
        ([], NEW),
        ([], [*NEW, (4, 2)]),  # an image twice in the batch: the second points at the first
        ([], [*NEW, (2, 5)]),  # a URL twice, with other bytes the second time
        ([(2, 9)], NEW),  # a URL that had other bytes in an earlier run
        ([(2, 2)], NEW),  # ... the same bytes: the first of its image still
        ([(7, 3)], NEW),  # an image another URL had first
        ([(3, 3), (7, 3)], [(1, 1), (3, None), (2, 2)]),  # the first fails: 7 takes over
        ([], [(1, None), (2, None)]),  # rows without an image, of URLs holding none
        ([(1, 4)], [(1, None), (2, 2)]),  # ... of a URL that held one
        ([(5, 5)], [(i, i) for i in range(600)]),  # over a statement's 256 rows, with a copy
        ([], [(i, i % 300) for i in range(600)]),  # 300 new, then 300 copies
    ],
)
def test_a_batch_answers_as_one_note_at_a_time(earlier: list, batch: list) -> None:
    check_batches(earlier, batch, [len(batch)])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), st.one_of(st.none(), st.integers(0, 8))), max_size=12),
    st.lists(st.tuples(st.integers(0, 80), st.one_of(st.none(), st.integers(0, 60))), max_size=60),
    st.lists(st.integers(1, 8), max_size=12),
)
def test_any_batches_answer_as_one_note_at_a_time(earlier, events, cuts) -> None:
    """Any rows, any split: new URLs and images, repeats within a batch, URLs that had
    other bytes, rows without an image."""
    check_batches(earlier, events, cuts)


def test_a_batch_of_new_images_takes_four_statements(tmp_path: Path) -> None:
    """The intake notes every row, and each statement lets the GIL go (the master's
    capacity, issue 15): 512 rows new to the index, in batches of 256, take 4 statements
    a batch (3 a row before), their answers None; a batch with a copy of an image notes
    that row alone, pointing at the first."""
    index = ContentIndex(tmp_path / "c.sqlite")
    statements: list[str] = []
    index._db.set_trace_callback(statements.append)
    notes = [(f"http://x.test/{i}", f"list.txt:{i}", digest(i)) for i in range(512)]
    assert index.note_many(notes[:256]) == [None] * 256
    assert index.note_many(notes[256:]) == [None] * 256
    assert len(statements) == 8
    statements.clear()
    # A copy among new rows is noted alone; the rows around it still go together.
    again = [(f"http://y.test/{i}", f"y:{i}", digest(1000 + i)) for i in range(200)]
    again[100] = ("http://x.test/b", "b", digest(5))
    assert index.note_many(again) == [None] * 100 + ["list.txt:5"] + [None] * 99
    assert len(statements) <= 12
    assert index.first_of("http://x.test/c", digest(511)) == "list.txt:511"
    index.close()


def test_damage_in_a_batch_costs_the_answers_after_it_only(tmp_path: Path) -> None:
    """The index found damaged at a row of a batch (a real SQLite error, raised by a
    trigger on that row's insert): the rows before keep their answers, as when noted one
    by one, and the index is dropped for the rest of the run."""
    index = ContentIndex(tmp_path / "c.sqlite")
    index.note("http://x.test/a", "l:a", digest(1))
    index._db.execute(
        "CREATE TEMP TRIGGER bad BEFORE INSERT ON current WHEN NEW.url = 'http://x.test/d' "
        "BEGIN SELECT RAISE(ABORT, 'database disk image is malformed'); END"
    )
    notes = [(f"http://x.test/{u}", f"l:{u}", digest(1)) for u in "bcde"]
    assert index.note_many(notes) == ["l:a", "l:a", None, None]
    assert index.broken
