"""CSV and TSV lists: a header row, then one entry per row; a stray quote costs one line.

Rows are read by the ``csv`` module (strict quoting) from bounded physical lines
(``listlines.bounded_lines``), so a quoted cell may hold delimiters, doubled quotes and
newlines. A quoted cell that runs past the end of its line is checked, line by line,
because one stray quote (a caption ``"Untitled``, common in scraped lists) would
otherwise swallow every following row into one cell. The quote is judged left open, and
the row's first line alone becomes an ``invalid_url`` entry saying so, when the cell

- runs into a line that reads as a row of its own: its cells before the URL column are
  well formed and its URL cell is an http(s) URL (a quote before that cell could close
  the open one, as the last line of a multi-line caption does, so such a line is not);
- closes inside a cell: text follows the quote that closed it (strict CSV);
- runs on past ``MAX_SPAN`` lines or ``MAX_LINE`` characters, or to the end of the list.

Reading then goes on at the row's next physical line, so each later line is read again
as a row of its own, under its own line number. A quote closed on the row's own line with
text after it (``"Title" 2019``) is read leniently, as the ``csv`` module always did.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Iterator
from typing import Any, TextIO

from crawler.config import ListSpec
from crawler.exceptions import UsageError
from crawler.master.keylines import hide_hex
from crawler.master.listlines import (
    MAX_LINE,
    ListEntry,
    Overlong,
    bounded_lines,
    make_entry,
    overlong_entry,
)

DELIMITERS = {"csv": ",", "tsv": "\t"}
MAX_SPAN = 100  # physical lines one row may span (a multi-line quoted caption)

# A record: its first physical line's number and text, then its cells or why it has none.
Record = tuple[int, str, list[str] | None, str | None]


class _Unclosed(Exception):
    """Raised through the csv reader: the row being read has a quote left open."""


class Records:
    """The records of one CSV or TSV list (``records``), a stray quote found and read past.

    It is also the csv reader's iterator of lines: the record's first line, then the
    lines its open quoted cell runs into, each checked first (raising ``_Unclosed``)."""

    def __init__(self, fh: TextIO, delimiter: str) -> None:
        self._lines = enumerate(bounded_lines(fh), start=1)
        self._back: deque[tuple[int, str]] = deque()  # lines to read again, in order
        self._row: list[tuple[int, str]] = []  # the physical lines of the record read
        self._size = 0  # their characters
        self._first: str | None = None  # the record's first line, not yet given to csv
        self._delimiter = delimiter
        self._own_row: re.Pattern[str] | None = None  # known with the URL column
        self._reader = csv.reader(self, delimiter=delimiter, strict=True)

    def set_url_column(self, column: int) -> None:
        """From now on, a line whose cell ``column`` is an http(s) URL ends an open quote."""
        self._own_row = own_row_pattern(self._delimiter, column)

    def records(self) -> Iterator[Record]:
        """Each non-blank record, in order: ``(line, text, cells, None)``, or ``(line,
        text, None, why)`` for an over-long line or a row whose quote is left open."""
        while (taken := self._take()) is not None:
            number, text = taken
            if isinstance(text, Overlong):
                yield number, text, None, text.error()
            elif text.strip():
                yield self._read(number, text)

    def _take(self) -> tuple[int, str] | None:
        return self._back.popleft() if self._back else next(self._lines, None)

    def _read(self, number: int, text: str) -> Record:
        self._row, self._size, self._first = [(number, text)], len(text), text
        try:
            return number, text, next(self._reader), None
        except _Unclosed as exc:
            why = str(exc)
        except csv.Error:
            if len(self._row) == 1:  # closed on its own line, text after it: as csv reads it
                return _lenient(number, text, self._delimiter)
            why = _unclosed(number, f"closes inside a cell on line {self._row[-1][0]}")
        self._back.extendleft(reversed(self._row[1:]))
        return number, text, None, why

    def __iter__(self) -> Records:
        return self

    def __next__(self) -> str:
        """The csv reader's next line (see the class)."""
        if self._first is not None:
            text, self._first = self._first, None
            return text
        start = self._row[0][0]
        taken = self._take()
        if taken is None:
            raise _Unclosed(_unclosed(start, "runs on to the end of the list"))
        self._row.append(taken)
        number, text = taken
        self._size += len(text)
        if isinstance(text, Overlong) or self._size > MAX_LINE:
            raise _Unclosed(_unclosed(start, f"runs on past {MAX_LINE} characters"))
        if len(self._row) > MAX_SPAN:
            raise _Unclosed(_unclosed(start, f"runs on past {MAX_SPAN} lines"))
        if self._own_row is not None and self._own_row.match(text):
            raise _Unclosed(_unclosed(start, f"runs on into line {number}, a row of its own"))
        return text


def _unclosed(start: int, how: str) -> str:
    return f"unclosed quote: a quoted cell opened on line {start} {how}"


def _lenient(number: int, text: str, delimiter: str) -> Record:
    """One line read by the csv module's lenient rules (text after a closing quote kept)."""
    try:
        return number, text, next(csv.reader([text], delimiter=delimiter)), None
    except csv.Error as exc:
        return number, text, None, f"unreadable row: {exc}"


def own_row_pattern(delimiter: str, column: int) -> re.Pattern[str]:
    """Matches the start of a line that reads as a row of its own: ``column`` well-formed
    cells (quoted with doubled quotes inside, or free of quotes), then an http(s) URL,
    quoted or not, as a whole cell."""
    d = re.escape(delimiter)
    cell = rf'(?:"(?:[^"]|"")*"|[^"{d}\r\n]*){d}'
    url = rf'(?:" *https?://[^"\s]+ *"|[ ]*https?://[^"{d}\s]+[ ]*)'
    return re.compile(rf"(?:{cell}){{{column}}}{url}(?:{d}|\r|\n|\Z)", re.IGNORECASE)


def read_delimited(fh: TextIO, spec: ListSpec) -> Iterator[ListEntry]:
    """CSV or TSV: a header row, then one entry per non-blank row (an entry's line is
    where its row starts)."""
    records = Records(fh, DELIMITERS[spec.kind])
    rows = records.records()
    found = read_header(rows, spec)
    if found is None:
        return  # an empty list
    header, column = found
    records.set_url_column(column)
    for number, text, cells, why in rows:
        source = f"{spec.path}:{number}"
        if cells is None:
            if isinstance(text, Overlong):
                yield overlong_entry(text, source, number)
            else:
                yield ListEntry(source, text.strip(), None, why, number)
        elif any(cell.strip() for cell in cells):
            yield _row_entry(cells, header, column, source, number)


def read_header(rows: Iterator[Record], spec: ListSpec) -> tuple[list[str], int] | None:
    """The header row (names stripped) and the URL column's index; None for an empty list.
    Raises UsageError when it cannot be read or has no URL column."""
    for number, _text, cells, why in rows:
        if cells is None:
            raise UsageError(
                f"cannot read the header row of URL list {spec.path} (line {number}): {why}"
            )
        if any(cell.strip() for cell in cells):
            return _url_column(_column_names(cells), spec)
    return None


def _column_names(cells: list[str]) -> list[str]:
    """The header's names, stripped; a column without one is ``columnN`` (N counted from
    1), as a cell beyond the header is: two unnamed columns shared the name "", and a
    row's extras kept only the last of their cells."""
    return [name.strip() or f"column{i}" for i, name in enumerate(cells, start=1)]


def check_header(fh: TextIO, spec: ListSpec) -> None:
    """Read the header row of a CSV or TSV list, as ``read_header`` (raises UsageError)."""
    read_header(Records(fh, DELIMITERS[spec.kind]).records(), spec)


def _url_column(header: list[str], spec: ListSpec) -> tuple[list[str], int]:
    if spec.url_column not in header:
        # A key file read as CSV: its one cell is the header (``keylines``: not quoted).
        shown = ", ".join(repr(hide_hex(name)[:40]) for name in header[:10])
        more = ", ..." if len(header) > 10 else ""
        raise UsageError(
            f"URL list {spec.path} has no column {spec.url_column!r} (its header: {shown}{more}); "
            "name the URL column with --url-column"
        )
    if header.count(spec.url_column) > 1:  # the second went into extra, unsaid
        raise UsageError(
            f"URL list {spec.path} has {header.count(spec.url_column)} columns named "
            f"{spec.url_column!r}: rename all but the one with the URLs"
        )
    repeated = next((name for name in header if header.count(name) > 1), None)
    if repeated is not None:  # a row's extras kept only the last of their cells
        raise UsageError(
            f"URL list {spec.path} has {header.count(repeated)} columns named "
            f"{repeated[:40]!r}: give each its own name"
        )
    return header, header.index(spec.url_column)


def _row_entry(
    cells: list[str], header: list[str], column: int, source: str, number: int
) -> ListEntry:
    """A CSV/TSV row's entry; its other cells are the extras (a surplus cell, beyond the
    header, under ``columnN``, N counted from 1)."""
    raw = cells[column].strip() if column < len(cells) else ""
    extra: dict[str, Any] = {}
    for i, cell in enumerate(cells):
        if i >= len(header):
            if cell:  # a header naming a column "columnN" keeps it: this one is "_columnN"
                name = f"column{i + 1}"
                extra[name if name not in header else f"_{name}"] = cell
        elif i != column:
            extra[header[i]] = cell
    return make_entry(raw, source, number, extra or None)
