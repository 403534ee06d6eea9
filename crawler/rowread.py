"""Rows of a manifest read quickly: the few fields a step needs, found with byte searches
in a line laid out as ``manifest.make_row`` writes it, instead of parsing the whole row
(a third of the time or less, over millions of rows on a rerun); any other line is
parsed whole. Used where the master reads its journal (resume, recount, compaction).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from crawler.manifest import typed_row

# A row as ``make_row`` writes it (compact JSON, fields in ``FIELDS`` order, ``extra``
# last) starts with its url and status. Inside a JSON string every quote is escaped, and
# only ``extra`` nests, so before ``,"extra":`` a ``,"name":`` is always that field.
ROW_START = b'{"url":'  # how every row ``make_row`` writes begins (url is its first field)
_HEAD = re.compile(rb'\{"url":("(?:[^"\\]|\\.)*"),"status":"([a-z_]+)"')
_DECODER = json.JSONDecoder()
# A URL without escapes, and a success status: most rows of a finished manifest.
_SUCCESS_HEAD = re.compile(rb'\{"url":"([^"\\]*)","status":"(ok|not_modified)"')
_SUCCESS_NAMES = ("path", "store", "host", "source", "run_id")  # in FIELDS order
_PLACES = tuple((name, f',"{name}":'.encode()) for name in _SUCCESS_NAMES)
_EXTRA = b',"extra":'  # the last field; before it, no raw quote is inside a value


def row_fields(line: bytes, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """``url``, ``status`` and the top-level ``names`` (None when absent) of one journal
    line, read without parsing the whole row (a third of the time) when it is laid out
    as ``make_row`` writes it; any other line is parsed whole (then every field is
    there). Raises ValueError for a line that is not JSON."""
    return fields_by_status(line, lambda status: names)


def raw_extra(line: bytes) -> bytes:
    """The ``extra`` of a row as journalled (compact JSON, ``b"null"`` for none), read
    without parsing it; ``b""`` for a row laid out otherwise."""
    at = line.find(_EXTRA)
    end = line.rfind(b"}")
    return line[at + len(_EXTRA) : end] if 0 <= at < end else b""


def success_fields(line: bytes) -> dict[str, Any] | None:
    """``url``, ``status`` and the ``_SUCCESS_NAMES`` of a success row as ``make_row``
    writes it, found with a few byte searches (half the time of ``fields_by_status``);
    None for any other line, or a value that is neither null nor a string without
    escapes (read those with ``fields_by_status``)."""
    head = _SUCCESS_HEAD.match(line)
    if head is None or _glued(line):  # see fields_by_status
        return None
    fields = {"url": head[1].decode("utf-8"), "status": head[2].decode("ascii")}
    start, end = head.end(), line.find(_EXTRA)  # only extra nests: stop before it
    for name, key in _PLACES:
        at = line.find(key, start, end if end >= 0 else len(line))
        if at < 0:
            return None
        start = at + len(key)
        if line.startswith(b"null", start):
            fields[name] = None
            continue
        close = line.find(b'"', start + 1)
        value = line[start + 1 : close]
        if line[start] != 0x22 or close < 0 or b"\\" in value:  # 0x22: a quote
            return None
        fields[name] = value.decode("utf-8")
    return fields


def _glued(line: bytes) -> bool:
    """Does a second row start in ``line``? (A nested ``{"url": ...}`` in extra, common
    in scraped lists, is no row start: a row's "status" follows its "url".)"""
    at = line.find(ROW_START, 1)
    while at >= 0:
        if _HEAD.match(line, at):
            return True
        at = line.find(ROW_START, at + 1)
    return False


def fields_by_status(line: bytes, pick: Callable[[str], tuple[str, ...]]) -> dict[str, Any]:
    """``row_fields`` with the names chosen by the row's status: ``pick(status)``.

    A second row start in the line (a row cut short mid-run, then the next appended to
    it) makes json.loads read the whole line, which refuses it: the byte searches took
    such a glued line for its first row (the summary of a run whose manifest was cut
    counted a row the file no longer held, a fresh user's, 2026-12-03) or its last
    (read back later, a traceback on every rerun). A row whose extra nests a "url"
    first and a "status" next is parsed whole too: rare, and right."""
    head = _HEAD.match(line)
    if head is None or _glued(line):
        row = typed_row(json.loads(line))
        if row is None:
            raise ValueError("not a manifest row")
        return row
    status, raw = head[2].decode("ascii"), head[1]
    # Without a backslash the JSON string is its text, quoted (a tenth of json.loads).
    url = raw[1:-1].decode("utf-8") if b"\\" not in raw else json.loads(raw)
    fields = {"url": url, "status": status}
    names = pick(status)
    if names:
        text = line.decode("utf-8")
        end = text.find(',"extra":')
        text = text if end < 0 else text[:end]
        for name in names:
            key = f',"{name}":'
            at = text.find(key)
            fields[name] = None if at < 0 else _DECODER.raw_decode(text, at + len(key))[0]
    return typed_row(fields) or fields  # url and status are strings: never None
