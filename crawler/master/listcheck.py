"""A list that is not a URL list: said early, with a guess, instead of a night of invalid_url.

The first ``SAMPLE`` lines of every list are watched; when most of them are not URLs,
the master warns once, naming what the list looks like (an HTML page saved as a list, a
CSV or TSV file or JSON Lines read as plain text) and the flag that reads it.
"""

from __future__ import annotations

from crawler.console import log
from crawler.master.lists import ListEntry

SAMPLE = 20  # lines looked at per list
MOSTLY = 0.8  # share of them invalid that makes a list "not a URL list"


class ListCheck:
    """Watches the first lines of one list."""

    def __init__(self, path: str, kind: str) -> None:
        self._path, self._kind = path, kind
        self._seen = self._invalid = 0
        self._raw: list[str] = []
        self._first: str | None = None  # the first line, when it is not a URL: a header?
        self._delimited = {",": 0, "\t": 0}  # lines holding each delimiter
        self._done = False

    def see(self, entry: ListEntry) -> None:
        if self._done:
            return
        self._seen += 1
        if entry.url is None:
            self._invalid += 1
            self._raw.append(entry.raw)
            if self._seen == 1:
                self._first = entry.raw
        for delimiter in self._delimited:
            self._delimited[delimiter] += delimiter in entry.raw
        if self._seen == SAMPLE:
            self.done()

    @property
    def empty(self) -> bool:
        """No line of the list was read (so far): empty, or only blank lines and comments."""
        return self._seen == 0

    def done(self) -> None:
        """Warn if the list had no lines to read, or most of the lines seen were not URLs
        (called at SAMPLE lines or at the end of a shorter list); warns at most once."""
        if self._done:
            return
        self._done = True
        if self.empty:
            log.warning("URL list %s holds no URLs (empty, or only blank lines and comments)",
                        self._path)  # fmt: skip
            return
        if self._seen >= 5 and self._invalid >= MOSTLY * self._seen and self._raw:
            log.warning(
                "URL list %s: %d of its first %d lines are not URLs; %s",
                self._path,
                self._invalid,
                self._seen,
                guess(self._raw, self._kind),
            )
        elif (header := self._header()) is not None:
            log.warning(
                "URL list %s: its first line is no URL and reads as a header (%r), and most "
                "lines hold its delimiter (each URL is fetched with the cells after it); %s",
                self._path,
                header[:60],
                guess([header], self._kind),
            )

    def _header(self) -> str | None:
        """A text list's first line when it is no URL and holds a delimiter most lines
        hold too (``url,caption`` over ``http://…/a.png,a cat``): a CSV or TSV read as
        text, whose URLs, commas and captions included, all 404."""
        if self._kind != "text" or self._first is None or self._seen < 2:
            return None
        for delimiter, count in self._delimited.items():
            if delimiter in self._first and count >= MOSTLY * self._seen:
                return self._first
        return None


def guess(lines: list[str], kind: str) -> str:
    """What invalid ``lines`` of a list read as ``kind`` look like, and the fix."""
    text = "\n".join(lines[:SAMPLE]).lower()
    if _binary(text):
        return "this looks like binary data (an image or an archive?), not a URL list"
    if "<html" in text or "<!doctype" in text or "<a href" in text or "<div" in text:
        return "this looks like an HTML page, not a URL list"
    if kind == "text" and any("\t" in line for line in lines):
        return "this looks like TSV: use --input-format tsv (and --url-column NAME)"
    if kind == "text" and all(line.lstrip().startswith("{") for line in lines):
        return "this looks like JSON Lines: use --input-format jsonl (and --url-column KEY)"
    if kind == "text" and sum("," in line for line in lines) >= len(lines) / 2:
        return "this looks like CSV: use --input-format csv (and --url-column NAME)"
    return "check the list and --input-format/--url-column"


def _binary(text: str) -> bool:
    """NUL bytes, or many characters no text list holds: control characters, and the
    replacement character of bytes that are not UTF-8."""
    odd = sum(1 for ch in text if ch == "\ufffd" or (ch < " " and ch not in "\t\n\r"))
    return "\x00" in text or odd > len(text) / 20
