"""Reading URL lists: the first step of a run, before the plan.

A list is plain text (one URL per line, blank lines and ``#`` comments ignored), CSV or
TSV with a header row naming the URL column, or JSON Lines (one object per line, the URL
under a key); any of them may be gzip-compressed (found by its magic bytes). The format
comes from the name (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``, before an optional
``.gz``) unless given. A folder stands for its regular, non-hidden files in name order;
``-`` is stdin. Lists are read as a stream, never whole, and no more than a bounded
start of one line is held (``listlines``); the other columns or keys of a row are kept as
its ``extra``. Each URL is normalised (``urls.normalize_url``) so that
duplicates are found by meaning, not spelling; a line that is not an http(s) URL is
reported, never raised.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import math
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, BinaryIO, TextIO

from crawler.config import STDIN, ListSpec
from crawler.exceptions import UsageError
from crawler.master.delimited import DELIMITERS, check_header, read_delimited
from crawler.master.listfiles import refuse_device
from crawler.master.listlines import (
    ListEntry,
    Overlong,
    bounded_lines,
    make_entry,
    overlong_entry,
)
from crawler.outputs import utf8_name
from crawler.urls import normalize_url

GZIP_MAGIC = b"\x1f\x8b"
# A JSON escape of a UTF-16 surrogate: json.loads leaves an unpaired one in the string,
# which then cannot be written as UTF-8.
_MISSING = object()
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_line(line: str, source: str, number: int = 0) -> ListEntry | None:
    """One list line to an entry; None for blank lines and comments."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    try:
        return ListEntry(source, text, normalize_url(text), None, number)
    except ValueError as exc:
        return ListEntry(source, text, None, str(exc), number)


def as_spec(item: ListSpec | str) -> ListSpec:
    return item if isinstance(item, ListSpec) else ListSpec(item)


def expand_lists(
    paths: Iterable[str], input_format: str = "auto", url_column: str = "url"
) -> tuple[ListSpec, ...]:
    """The lists named on the command line, a folder replaced by its files."""
    paths = list(paths)
    if paths.count(STDIN) > 1:
        raise UsageError("stdin (-) can be read only once: give - as a list once")
    specs: list[ListSpec] = []
    for path in paths:
        folder = path if path != STDIN and os.path.isdir(path) else ""
        names = _folder_files(path) if folder else [path]
        specs += [ListSpec(name, input_format, url_column, folder) for name in names]
    return tuple(specs)


def _folder_files(folder: str) -> list[str]:
    """A folder's regular files, hidden ones left out, in name order (not recursive)."""
    try:
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries if not e.name.startswith(".") and e.is_file())
    except OSError as exc:
        raise UsageError(f"cannot read URL list folder {folder}: {exc.strerror}") from None
    if not names:
        raise UsageError(f"URL list folder {folder} holds no list files")
    paths = [os.path.join(folder, name) for name in names]
    for path in paths:  # as the lists named on the command line are (``check_distinct``)
        utf8_name(path, "URL list")
    return paths


def read_list(item: ListSpec | str) -> Iterator[ListEntry]:
    """Stream the entries of one list, in order."""
    spec = as_spec(item)
    try:
        with _open_text(spec.path) as fh:
            yield from _READERS[spec.kind](fh, spec)
    except (OSError, EOFError, zlib.error) as exc:
        raise UsageError(f"cannot read URL list {spec.path}: {_why(exc)}") from None


def check_readable(items: Iterable[ListSpec | str]) -> None:
    """Fail early, with one line, when a list is missing, unreadable or a folder, or a CSV
    or TSV list has no URL column. Stdin and pipes are not opened: reading would consume
    them, and a named pipe opened and closed here would cut its writer off (EPIPE).
    A list given twice (by any name) is refused: its rows would each name their twin as
    the line they duplicate."""
    seen: dict[object, str] = {}  # (device, inode), or stdin -> the name it was given as
    for item in items:
        spec = as_spec(item)
        _once(spec.path, seen)
        if spec.path == STDIN:
            continue
        if os.path.isdir(spec.path):
            raise UsageError(f"URL list {spec.path} is a folder, not a file")
        try:
            if not os.path.isfile(spec.path):  # a pipe, say: only that it may be opened
                # stat: why not, if it cannot be (a symlink loop was "No such file ...")
                mode = os.stat(spec.path).st_mode
                if not os.access(spec.path, os.R_OK):
                    raise OSError(errno.EACCES, os.strerror(errno.EACCES))
                refuse_device(spec.path, mode)
                continue
            with _open_text(spec.path) as fh:
                if spec.kind in DELIMITERS:
                    check_header(fh, spec)
                else:
                    fh.read(1)
        except (OSError, EOFError, zlib.error) as exc:
            raise UsageError(f"cannot read URL list {spec.path}: {_why(exc)}") from None


def _once(path: str, seen: dict[object, str]) -> None:
    try:
        info = None if path == STDIN else os.stat(path)
    except OSError:
        return  # missing or unreadable: said below, with its reason
    key: object = STDIN if info is None else (info.st_dev, info.st_ino)
    if key in seen:
        also = "" if seen[key] == path else f" (also as {seen[key]})"
        raise UsageError(f"URL list {path} is given twice{also}: give each list once")
    seen[key] = path


def _why(exc: BaseException) -> str:
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
        return f"broken gzip data ({exc})"
    return getattr(exc, "strerror", None) or str(exc)


# --- opening: stdin or a file, gzip or not, as UTF-8 text --------------------------------
@contextmanager
def _open_text(path: str) -> Iterator[TextIO]:
    """A list as text: decompressed if it starts with the gzip magic bytes, UTF-8 with an
    optional byte-order mark, undecodable bytes replaced, lines ending in \\n, \\r\\n or \\r."""
    raw: BinaryIO = sys.stdin.buffer if path == STDIN else open(path, "rb")  # noqa: SIM115
    try:
        head = raw.read(len(GZIP_MAGIC))
        binary: IO[bytes]
        if path != STDIN and raw.seekable():
            raw.seek(0)
            binary = raw
        else:  # stdin or a pipe: put the sniffed bytes back in front
            binary = io.BufferedReader(_Prefixed(head, raw), buffer_size=1 << 16)
        if head == GZIP_MAGIC:
            binary = gzip.GzipFile(fileobj=binary, mode="rb")
        yield io.TextIOWrapper(binary, encoding=_encoding(binary), errors="replace", newline="")
    finally:
        if path != STDIN:
            raw.close()


def _encoding(binary: Any) -> str:
    """UTF-8 with an optional byte-order mark (lists saved by Notepad or Excel start with
    one), or UTF-16 when the list starts with its byte-order mark (Excel's "Unicode
    text": until 2026-12-01 every line of it was an invalid URL, with NUL characters)."""
    start = binary.peek(2)[:2]  # every stream here buffers: a file, stdin, gzip
    return "utf-16" if start in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"


class _Prefixed(io.RawIOBase):
    """A stream that cannot seek, with its first bytes (read to sniff it) put back."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head, self._rest = head, rest  # rest: a BufferedReader (stdin or a pipe)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count], self._head = self._head[:count], self._head[count:]
            return count
        data = self._rest.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# --- readers: one per format, each yielding entries -------------------------------------
def _read_text(fh: TextIO, spec: ListSpec) -> Iterator[ListEntry]:
    """Plain text: one entry per line that is not blank or a comment (an over-long line,
    not a comment by its start, is an invalid entry)."""
    for number, line in enumerate(bounded_lines(fh), start=1):
        if isinstance(line, Overlong):
            if not line.lstrip().startswith("#"):
                yield overlong_entry(line, f"{spec.path}:{number}", number)
            continue
        entry = parse_line(line, f"{spec.path}:{number}", number)
        if entry is not None:
            yield entry


def _read_jsonl(fh: TextIO, spec: ListSpec) -> Iterator[ListEntry]:
    """JSON Lines: one entry per non-blank line (see ``_json_entry``)."""
    for number, line in enumerate(bounded_lines(fh), start=1):
        if isinstance(line, Overlong):
            yield overlong_entry(line, f"{spec.path}:{number}", number)
        elif text := line.strip():
            yield _json_entry(text, spec.url_column, f"{spec.path}:{number}", number)


def _json_entry(text: str, key: str, source: str, number: int) -> ListEntry:
    """A JSON Lines line's entry: a line that is not an object with a string under ``key``
    is an invalid entry (its ``raw`` the line) saying why."""
    try:
        value = _DECODER.decode(text)
    except _RepeatedName as exc:
        return ListEntry(source, text, None, str(exc), number)
    except (ValueError, RecursionError) as exc:
        return ListEntry(source, text, None, f"not valid JSON: {exc}", number)
    if not isinstance(value, dict):
        return ListEntry(source, text, None, "not a JSON object", number)
    if _SURROGATE_ESCAPE.search(text) and not _encodable(value):
        return ListEntry(source, text, None, "holds an unpaired surrogate escape", number)
    url = value.pop(key, _MISSING)
    extra = value or None
    if not isinstance(url, str):
        why = f"no {key!r} key" if url is _MISSING else f"{key!r} is not a string"
        return ListEntry(source, text, None, why, number, extra)
    return make_entry(url.strip(), source, number, extra)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _RepeatedName(ValueError):
    """An object names a member twice."""


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object from its members, refusing a name given twice: RFC 8259 section 4 leaves
    what that means to the parser, and Python's keeps the last value, so that a second
    ``url`` replaced the first and a second caption lost the first, unsaid (~0.6 us a
    line). Raises _RepeatedName."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        name = next(name for name, _ in pairs if name in seen or seen.add(name))
        raise _RepeatedName(f"names {name[:40]!r} twice in one object")
    return value


def _finite(text: str) -> float:
    """A JSON number as a float, refusing one too large for it (``1e400``): it became
    ``Infinity``, which the manifest then held, and JSON readers refuse. Raises ValueError."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} is too large a number")
    return value


# NaN and Infinity are not JSON: a row holding one could not be written as JSON again.
_DECODER = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_finite, object_pairs_hook=_unique_names
)


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


_READERS: dict[str, Callable[[TextIO, ListSpec], Iterator[ListEntry]]] = {
    "text": _read_text,
    "csv": read_delimited,
    "tsv": read_delimited,
    "jsonl": _read_jsonl,
}
