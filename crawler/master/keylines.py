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
  by ``[the shared key]``, also percent-encoded (then the text is shown decoded);
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

import json
import re
from typing import Any
from urllib.parse import unquote, unquote_plus

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
        raw, error = self._hide(entry.raw, self._key), self._hide(entry.error, self._key)
        extra = self._hide_extra(entry.extra)
        if raw is entry.raw and error is entry.error and extra is entry.extra:
            return entry
        self._warn(entry.source)
        return entry._replace(raw=raw, error=error, extra=extra)

    @staticmethod
    def _hide(text: str | None, key: str) -> str | None:
        """``text`` with ``key`` and hex words replaced; ``text`` itself when it held none."""
        if not text:
            return text
        shown = text.replace(key, OWN_KEY) if key and key in text else text
        if key and "%" in shown:  # percent-encoded in a URL's userinfo or query (until
            shown = _decoded_key(shown, key)  # 2026-12-03 shown: a hostile-input trial's)
        shown = hide_hex(shown)
        return text if shown == text else shown

    def _hide_extra(self, extra: dict[str, Any] | None) -> dict[str, Any] | None:
        """The extras with every key in their strings hidden: done on their JSON text, not
        by walking them (a JSON Lines value nested 900 deep, which json takes, went past
        Python's stack, a traceback), the key as JSON writes it. ``extra`` itself when it
        held none."""
        if not extra:
            return extra
        text = json.dumps(extra, ensure_ascii=False)
        key = json.dumps(self._key, ensure_ascii=False)[1:-1] if self._key else ""
        shown = self._hide(text, key)
        return extra if shown is text or shown is None else json.loads(shown)

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


def _decoded_key(text: str, key: str) -> str:
    """``text`` percent-decoded (RFC 3986 s. 2.1; ``+`` as a space too, as a form's query
    writes it) with ``key`` replaced, when that form holds it; else ``text``."""
    for decoded in (unquote(text), unquote_plus(text)):
        if key in decoded:
            return decoded.replace(key, OWN_KEY)
    return text


def hide_hex(text: str) -> str:
    """``text`` with each hexadecimal word that looks like a key as ``[N hex digits]``."""
    return _HEX.sub(_hidden_run, text) if len(text) >= HEX_RUN else text


def _hidden_run(match: re.Match[str]) -> str:
    run = match.group()
    if run.isdigit() or not any(ch.isdigit() for ch in run):
        return run
    return f"[{len(run)} hex digits]"
