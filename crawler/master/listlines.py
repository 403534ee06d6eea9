"""The lines of a URL list, each held in memory up to a bound, and the entry made of one.

A list is read one physical line at a time, never more than ``MAX_LINE`` characters of
a line at once (``bounded_lines``): a longer line (a list with 200 MB and no newline) is
skipped as it is read, and only its start (``KEPT`` characters) and its length are kept
(``Overlong``), so it becomes a small ``invalid_url`` row (``overlong_entry``). Lines end
in ``\\n``, ``\\r\\n`` or ``\\r``, as ``open(..., newline="")`` reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, NamedTuple, TextIO

from crawler.urls import normalize_url

# csv.field_size_limit()'s default: no cell the csv module would refuse fits in a line;
# 16 times the URL limit, room for long captions and JSON objects.
MAX_LINE = 131_072
KEPT = 1024  # characters kept of a longer line, for its manifest row
BOM = "\ufeff"  # a byte-order mark, as text


class ListEntry(NamedTuple):
    """One non-blank, non-comment line (or CSV row) of an input list (a named tuple: made
    once per line of lists of millions)."""

    source: str  # "file:line", for the manifest
    raw: str
    url: str | None  # normalised URL, or None when the line is not a valid URL
    error: str | None = None
    line: int = 0  # 1-based line number in its list (where a CSV row starts)
    extra: dict[str, Any] | None = None  # the row's other columns or keys, if any


def make_entry(raw: str, source: str, number: int, extra: dict[str, Any] | None) -> ListEntry:
    """The entry of a URL taken from a CSV cell or a JSON value (already stripped)."""
    if not raw:
        return ListEntry(source, raw, None, "no URL", number, extra)
    try:
        return ListEntry(source, raw, normalize_url(raw), None, number, extra)
    except ValueError as exc:
        return ListEntry(source, raw, None, str(exc), number, extra)


class Overlong(str):
    """A line over the bound: its first ``KEPT`` characters; ``length`` is the whole
    line's, its ending not counted."""

    length: int

    def __new__(cls, start: str, length: int) -> Overlong:
        line = super().__new__(cls, start[:KEPT])
        line.length = length
        return line

    def error(self) -> str:
        """Why the line is no entry: one line, with its length and the bound."""
        return (
            f"line of {self.length} characters, over the {MAX_LINE}-character limit of a "
            f"list line (only its first {KEPT} kept)"
        )


def overlong_entry(line: Overlong, source: str, number: int) -> ListEntry:
    """The ``invalid_url`` entry of an over-long line: its kept start, stripped, as raw."""
    return ListEntry(source, line.strip(), None, line.error(), number)


class _Pieces:
    """``fh.readline(cap)`` with one piece read ahead; a ``\\r\\n`` that the cap cut in
    two is joined again (a piece may then be ``cap + 1`` characters)."""

    def __init__(self, fh: TextIO, cap: int) -> None:
        self._read: Callable[[], str] = partial(fh.readline, cap)
        self._next = self._read()

    def take(self) -> str:
        """The next piece: a whole line (with its ending), the first ``cap`` characters
        of a longer one, or its next ones; "" at the end."""
        piece, after = self._next, self._read()
        if after == "\n" and piece.endswith("\r"):
            piece, after = piece + after, self._read()
        self._next = after
        return piece

    def at_end(self) -> bool:
        return not self._next

    def ending_next(self) -> bool:
        """Is the next piece a line ending alone (the line before it exactly ``cap``)?"""
        return self._next in ("\n", "\r", "\r\n")


def bounded_lines(fh: TextIO, cap: int = MAX_LINE) -> Iterator[str]:
    """The physical lines of ``fh`` (opened with ``newline=""``), endings kept; a line of
    more than ``cap`` characters comes as an ``Overlong`` (its rest read and dropped), so
    no more than about ``2 * cap`` characters are ever held. A byte-order mark starting
    a line is dropped, in every format: lists joined with ``cat`` carry the second's
    there (until 2026-12-01 that line was an invalid URL, the mark unseen)."""
    pieces = _Pieces(fh, cap)
    while piece := pieces.take():
        if len(piece) < cap or piece[-1] in "\r\n" or pieces.at_end():
            yield piece.removeprefix(BOM)
            continue
        if pieces.ending_next():  # exactly ``cap`` characters: until 2026-12-01 refused
            yield (piece + pieces.take()).removeprefix(BOM)  # as "over" the limit
            continue
        length, start = len(piece), piece
        while True:
            piece = pieces.take()
            length += len(piece)
            if len(piece) < cap or piece[-1] in "\r\n":
                break
        yield Overlong(start, length - (len(piece) - len(piece.rstrip("\r\n"))))
