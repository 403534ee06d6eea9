"""The content index's questions about copies (``contents.ContentIndex`` has them):
which URLs hold an image now, which of them is its first, and the images whose first
changed, for ``repoint`` to bring their rows' pointers up to date.

The ``changed`` table holds the digests whose first's line changed (``moved``), whose
first is no longer listed (``gone``), whose first's URL now has other bytes or failed,
whose URL is listed again (``back``), or whose rows, read from the manifest, point
elsewhere than the index says or name a first that never comes (``seeding``: an older
crawler's stale pointers, an edit). A first is marked only while another URL holds its
image: alone, it has no copies to repoint (a first that left alone is simply forgotten;
the next row with its bytes takes its place). So it grows with the copies whose first changed,
never with the rows (until 2026-12-01 every moved first was marked: one line inserted
on top of a 10M-URL list put 10M digests in a Python set, 1.1 GB). It is a table, not
memory, and it is kept with the index: a first that changes while the run serves
(refreshed with other bytes, or failing, after its copies' answers were noted) is
repointed by the next run (until 2026-12-01 never: the next run trusted the kept index).

``away`` holds the URLs no longer listed whose row had an image (``gone``): one listed
again with that row standing is put back among the holders (``back``; until 2026-12-01
it never was, so its pointer went on naming a departed first's line).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

BATCH = 2000  # digests, or URLs of one image, read from the index at a time


class First(NamedTuple):
    """The URL whose row had an image first, and that row's input line."""

    url: str
    source: str | None


class Copies:
    """Queries on the ``first``, ``current``, ``changed`` and ``away`` tables of a
    content index."""

    _db: sqlite3.Connection
    away = True  # might a URL be in ``away``? (False: ``back`` has nothing to look up)

    def _guarded(self, action: Callable[..., Any], *args: object) -> Any:
        raise NotImplementedError  # contents.ContentIndex: None once the index broke

    def moved(self, url: str, source: str, sha256: object) -> None:
        """``url``'s row now names another input line: where it is the first of its
        image, later rows point at the new ``source``. Raises JournalError."""
        digest = digest_of(sha256)
        if digest is not None:
            self._guarded(self._relabel, url, source, digest)

    def _relabel(self, url: str, source: str | None, digest: bytes) -> None:
        found = self._db.execute(
            "UPDATE first SET source = ? WHERE digest = ? AND url = ? AND source IS NOT ?",
            (source, digest, url, source),
        )
        if found.rowcount:  # the rows pointing at it name the old line: ``repoint``
            self._mark(url, digest)

    def _mark(self, url: str, digest: bytes) -> bool:
        """The image's first ``url`` changed: its copies' pointers are to be checked, if
        it has copies (another URL holding it); returns whether it has."""
        if self._db.execute(
            "SELECT 1 FROM current WHERE digest = ? AND url != ? LIMIT 1", (digest, url)
        ).fetchone():
            self._db.execute("INSERT OR IGNORE INTO changed VALUES (?)", (digest,))
            return True
        return False

    def gone(self, url: str) -> None:
        """``url`` is in no list now: its row is history, never a first (the next listed
        copy becomes it: ``repoint``). Raises JournalError."""
        self._guarded(self._gone, url)

    def _gone(self, url: str) -> None:
        found = self._db.execute("SELECT digest FROM current WHERE url = ?", (url,)).fetchone()
        if found is not None:
            self._db.execute("DELETE FROM current WHERE url = ?", (url,))
            self._db.execute("REPLACE INTO away VALUES (?, ?)", (url, found[0]))
            self.away = True
            self._left(url, found[0])

    def left_before(self, url: str, sha256: object) -> None:
        """While the index is filled from the manifest: a row of ``url``, a URL in no list
        now, in journal order: the image it left with (``gone``'s record; none for a row
        without one). Until 2026-12-01 a rebuild recorded none, and such a URL listed
        again was never a copy nor a first (a review's). Raises JournalError."""
        self._guarded(self._left_before, url, digest_of(sha256))

    def _left_before(self, url: str, digest: bytes | None) -> None:
        if digest is None:
            self._db.execute("DELETE FROM away WHERE url = ?", (url,))
        else:
            self._db.execute("REPLACE INTO away VALUES (?, ?)", (url, digest))
            self.away = True

    def listed_again(self, find: Callable[[list[str]], list[int | None]]) -> None:
        """Each URL that had left the lists and is listed again (``find`` gives its task;
        None: not listed) holds the image it left with again: a copy of its first, or the
        first itself (``repoint`` settles which, and names its line). The cost follows
        the URLs that left, a batch at a time (until 2026-12-01 one look-up a listed row
        of every full read: a review's). Raises JournalError."""
        after = ""
        while self.away and (urls := self._guarded(self._away_after, after)):
            for url, task_id in zip(urls, find(urls), strict=True):
                if task_id is not None:
                    self._guarded(self._back, url)
            after = urls[-1]

    def _away_after(self, after: str) -> list[str]:
        found = self._db.execute(
            "SELECT url FROM away WHERE url > ? ORDER BY url LIMIT ?", (after, BATCH)
        )
        return [url for (url,) in found]

    def _back(self, url: str) -> None:
        found = self._db.execute("SELECT digest FROM away WHERE url = ?", (url,)).fetchone()
        if found is None:
            return
        digest = found[0]
        self._db.execute("DELETE FROM away WHERE url = ?", (url,))
        self._db.execute("REPLACE INTO current VALUES (?, ?)", (url, digest))
        self._db.execute("INSERT OR IGNORE INTO first VALUES (?, ?, NULL)", (digest, url))
        # Its row's pointer is the one it had when it left: checked by ``repoint``.
        self._db.execute("INSERT OR IGNORE INTO changed VALUES (?)", (digest,))

    def _left(self, url: str, digest: bytes) -> None:
        """``url`` no longer holds ``digest``: if it was its first, its copies need one;
        without copies, the image has no first until a row has its bytes again."""
        first = self._db.execute("SELECT url FROM first WHERE digest = ?", (digest,)).fetchone()
        if first is None or first[0] != url:
            return
        if not self._mark(url, digest):
            self._db.execute("DELETE FROM first WHERE digest = ?", (digest,))

    def take_changed(self) -> Iterator[bytes]:
        """The images marked ``changed``, each taken out of the table as it is given
        (a batch at a time: the table may be large, memory is not). Raises JournalError."""
        while found := self._guarded(self._take, BATCH):
            yield from found

    def _take(self, count: int) -> list[bytes]:
        found = self._db.execute("SELECT digest FROM changed LIMIT ?", (count,)).fetchall()
        self._db.executemany("DELETE FROM changed WHERE digest = ?", found)
        return [digest for (digest,) in found]

    def first_of(self, url: str, sha256: object) -> str | None:
        """The ``source`` of the first row with this image, unless that is ``url``'s own
        (what ``note`` returns, without recording anything). Raises JournalError."""
        return self._guarded(self._first_of, url, sha256)

    def _first_of(self, url: str, sha256: object) -> str | None:
        digest, query = digest_of(sha256), "SELECT url, source FROM first WHERE digest = ?"
        found = None if digest is None else self._db.execute(query, (digest,)).fetchone()
        return None if found is None or found[0] == url else (found[1] or found[0])

    def first(self, digest: bytes) -> First | None:
        """The first of an image (None: none, or the index broke). Raises JournalError."""
        found = self._guarded(lambda: self._db.execute(
            "SELECT url, source FROM first WHERE digest = ?", (digest,)).fetchone())  # fmt: skip
        return None if found is None else First(*found)

    def make_first(self, digest: bytes, first: First | None) -> None:
        """``first`` is now the image's first (None: no current row has it). Raises
        JournalError."""
        if first is None:
            self._guarded(self._db.execute, "DELETE FROM first WHERE digest = ?", (digest,))
        else:
            self._guarded(self._db.execute, "REPLACE INTO first VALUES (?, ?, ?)",
                          (digest, first.url, first.source))  # fmt: skip

    def holders(self, digest: bytes) -> Iterator[list[str]]:
        """The URLs whose current row has this image, in URL order, a batch at a time
        (one image may have a million copies); none once the index broke: a look-up in
        the index on ``current.digest``. Raises JournalError."""
        after = ""
        query = "SELECT url FROM current WHERE digest = ? AND url > ? ORDER BY url LIMIT ?"
        while found := self._guarded(
            lambda at: self._db.execute(query, (digest, at, BATCH)).fetchall(), after
        ):
            yield [url for (url,) in found]
            after = found[-1][0]

    def users(self, digests: set[str]) -> dict[str, tuple[str, str]] | None:
        """For each sha256 (hex) of ``digests`` that current rows have, or rows of URLs no
        longer listed (``away``: the manifest keeps them, and trusts them again when the
        URL comes back), the least and the greatest of their URLs (the same twice: one
        URL); None once the index broke. Looked up by digest, in SQLite (``away`` read in
        full: once a run, for ``superseded``). Until 2026-12-02 the URLs that had left
        were not counted, and a content-named file one of them still named was listed
        "safe to delete" (a review's). Raises JournalError."""
        return self._guarded(self._users, digests)

    def _users(self, digests: set[str]) -> dict[str, tuple[str, str]]:
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (digest BLOB PRIMARY KEY)")
        self._db.execute("DELETE FROM wanted")
        wanted = [(d,) for d in map(digest_of, digests) if d is not None]
        self._db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", wanted)
        found = self._db.execute(
            "SELECT digest, MIN(url), MAX(url) FROM (SELECT url, digest FROM current UNION "
            "ALL SELECT url, digest FROM away) JOIN wanted USING (digest) GROUP BY digest"
        )
        return {digest.hex(): (least, most) for digest, least, most in found}


def digest_of(sha256: object) -> bytes | None:
    """The 32 bytes of a sha256 given as 64 hex digits; None for anything else."""
    if not isinstance(sha256, str) or len(sha256) != 64:
        return None
    try:
        return bytes.fromhex(sha256)
    except ValueError:
        return None
