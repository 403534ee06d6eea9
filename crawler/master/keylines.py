"""List lines that hold a shared key: never written where others can read them.

An invalid line's text goes into its ``invalid_url`` row, and from there into the
manifest, the CSV export, the kept aggregate and the report, all readable by other
users (mode 0644), while a key file is 0600. A folder given as a list is read file by
file, so a key file in it (``crawler.key`` kept beside the lists, an earlier run's
``downloads/`` with its ``authkey``), or the printed worker command saved in a note,
would put a key in all of them (a fresh user's, 2026-12-03). So, in an invalid entry's
text, its error and the string values of its extras (``hidden``; before the list check
sees it, whose warnings quote a header line):

- the run's own key (wherever it came from: file, environment, generated) is replaced
  by ``[the shared key]``;
- a word of ``HEX_RUN`` or more hexadecimal digits, digits and letters mixed (the form
  of every key the crawler makes, and of the README's ``secrets.token_hex(32)``: 64 of
  them, all digits or all letters once in 10^13) is replaced by ``[N hex digits]``. A
  word: not inside a path or a name (after ``/ . _ -`` or a letter, or before ``/ .``
  or a letter): a content hash in a near-URL (``cdn.example/<md5>.jpg``, no scheme) is
  no key, and stays, as a run of one kind alone (``aaaa…``, a long number) does.

The rest of the line stays, for finding it. Valid URLs are left as they are: a URL is
the user's to publish. The master warns once per list file that held such a line.
``hide_hex`` does the second for a message that quotes a list (a CSV header's cells).
"""

from __future__ import annotations

import re
from typing import Any

from crawler.console import log
from crawler.master.listlines import ListEntry

HEX_RUN = 32  # hexadecimal digits in a row that are taken for a key (128 bits)
_HEX = re.compile(rf"(?<![\w./-])[0-9A-Fa-f]{{{HEX_RUN},}}(?![\w./])")
OWN_KEY = "[the shared key]"


class KeyLines:
    """Hides keys in the invalid entries of the lists of one run."""

    def __init__(self, key: bytes = b"") -> None:
        """``key``: the run's shared key (b"": only hex runs are hidden)."""
        self._key = key.decode("utf-8", "replace").strip() if key else ""
        self._warned: set[str] = set()  # list files already warned about

    def hidden(self, entry: ListEntry) -> ListEntry:
        """``entry`` as its row may show it: keys in its text, error and extras replaced."""
        raw, error = self._hide(entry.raw), self._hide(entry.error)
        extra = self._hide_in(entry.extra)
        if raw == entry.raw and error == entry.error and extra == entry.extra:
            return entry
        self._warn(entry.source)
        return entry._replace(raw=raw, error=error, extra=extra)

    def _hide(self, text: str | None) -> str | None:
        if not text:
            return text
        if self._key and self._key in text:
            text = text.replace(self._key, OWN_KEY)
        return hide_hex(text)

    def _hide_in(self, value: Any) -> Any:
        """``value`` (a JSON value: an entry's extras) with every string in it hidden."""
        if isinstance(value, str):
            return self._hide(value)
        if isinstance(value, dict):
            return {self._hide(k): self._hide_in(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._hide_in(v) for v in value]
        return value

    def _warn(self, source: str) -> None:
        path = source.rpartition(":")[0] or source
        if path in self._warned:
            return
        self._warned.add(path)
        log.warning(
            "URL list %s: line %s holds what looks like a key (a long run of hexadecimal "
            "digits, or the run's shared key); its row shows it hidden. Is it a key file? "
            "Keep keys out of the lists and their folders",
            path,
            source.rpartition(":")[2],
        )


def hide_hex(text: str) -> str:
    """``text`` with each hexadecimal word that looks like a key as ``[N hex digits]``."""
    return _HEX.sub(_hidden_run, text) if len(text) >= HEX_RUN else text


def _hidden_run(match: re.Match[str]) -> str:
    run = match.group()
    if run.isdigit() or not any(ch.isdigit() for ch in run):
        return run
    return f"[{len(run)} hex digits]"
