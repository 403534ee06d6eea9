"""http.client's internals the crawler reaches (CPython 3.11-3.13: Lib/http/client.py):
the answer class urllib3's connections read with (``FinalResponse``), and the framing
rules it keeps where http.client is lenient: interim answers, Content-Length, chunked
bodies (RFC 9112 sections 6 and 7). Part of ``crawler._compat``: each reach is one
function here, checked by ``tests/test_compat.py``.
"""

from __future__ import annotations

import http.client
import re
from typing import Any

MAX_INTERIM = 20  # interim (1xx) answers before a final one, at most
SHOWN = 24  # bytes of a malformed framing line quoted in its error


class TooManyInterim(http.client.HTTPException):
    """More than MAX_INTERIM interim answers before the final one."""


class InvalidContentLength(http.client.HTTPException):
    """A Content-Length that is not one non-negative decimal number (RFC 9112 6.3)."""


class MalformedChunk(http.client.HTTPException):
    """A chunked body that breaks RFC 9112 7.1's grammar: its text is the whole error."""


class RepeatedChunked(http.client.HTTPException):
    """A Transfer-Encoding that applies chunked more than once (RFC 9112 7.1)."""


class CutHead(http.client.HTTPException):
    """The connection ended before the blank line that ends an answer's head."""


def declared_length(values: list[str]) -> int | None:
    """The body length the Content-Length fields ``values`` (each line's value) declare;
    None when there are none. Raises InvalidContentLength for any value that is not
    1*DIGIT (RFC 9110 8.6), list members included, or for members that differ; copies of
    one value count once (RFC 9112 6.3, item 5). Python's ``int``, which http.client
    uses, also takes ``+5``, ``1_0``, `` 5`` and non-ASCII digits, and http.client read
    a body of 10 bytes for ``Content-Length: 1_0``, where browsers see no length."""
    members = [member.strip(" \t") for value in values for member in value.split(",")]
    if not members:
        return None
    if not all(m.isascii() and m.isdigit() for m in members) or len(set(map(int, members))) > 1:
        shown = ", ".join(values)[:40]
        raise InvalidContentLength(f"invalid Content-Length {shown!r} (RFC 9112 6.3)")
    return int(members[0])


def check_transfer_coding(values: list[str]) -> None:
    """Raise RepeatedChunked when the Transfer-Encoding fields ``values`` (each line's
    value; several lines are one list, RFC 9110 5.3) name chunked more than once: RFC
    9112 7.1, a sender must not apply it more than once. http.client reads only the
    first line, and only when it is exactly ``chunked``: ``chunked, chunked`` was read
    to the connection's close, framing and all, and judged ``not_image`` for good."""
    codings = [c.strip(" \t").lower() for value in values for c in value.split(",")]
    if codings.count("chunked") > 1:
        shown = ", ".join(values)[:40]
        raise RepeatedChunked(f"Transfer-Encoding {shown!r}: chunked more than once (RFC 9112 7.1)")


# RFC 9112 7.1 and 7.1.1: chunk = chunk-size [ chunk-ext ] CRLF, chunk-size = 1*HEXDIG,
# chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), a name a
# token and a value a token or a quoted-string (RFC 9110 5.6.2, 5.6.4); a bare LF ends a
# line too (RFC 9112 2.2).
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_EXT = rb"[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?"
CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]+)(?:" + _EXT + rb")*\r?\n")


def chunk_size(line: bytes) -> int:
    """The size a chunk's first ``line`` (as read, line end included) declares. Raises
    MalformedChunk for one that is not RFC 9112 7.1's: http.client reads it with
    Python's ``int(x, 16)``, which also takes ``+8b``, ``8_b``, ``0x8b`` and `` 8b ``,
    where Content-Length is held to its grammar (``declared_length``)."""
    match = CHUNK_LINE.fullmatch(line)
    if match is None:
        shown = line.rstrip(b"\r\n")[:SHOWN].decode("latin-1").encode("unicode_escape")
        raise MalformedChunk(
            f"malformed chunk size '{shown.decode('ascii')}' (RFC 9112 7.1: hex digits, "
            "then optional ';' extensions)"
        )
    return int(match[1], 16)


class _HeadReader:
    """The answer's file while its head is read: notes a read that found the end of the
    connection (http.client's header parser takes it for the blank line)."""

    def __init__(self, fp: Any) -> None:
        self._fp, self.ended = fp, False

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self._fp.readline(limit)
        self.ended = self.ended or not line.endswith(b"\n")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


class FinalResponse(http.client.HTTPResponse):
    """An answer read past its interim ones. ``HTTPResponse.begin`` skips ``100 Continue``
    only, and took any other 1xx for the answer: an image behind ``103 Early Hints``
    failed as "HTTP 103" for good, and a robots.txt behind one was not read (its
    Disallow ignored). RFC 9110 section 15.2: a client must be able to parse one or more
    1xx answers before the final one, and may ignore them; ``101 Switching Protocols``
    ends HTTP on the connection, and stays the answer. Overrides ``_read_status``, which
    ``begin`` calls for each status line; skips the fields with ``_read_headers``. More
    than MAX_INTERIM, ``100`` included, raises TooManyInterim (an endless stream of them
    is otherwise bounded only by the deadline). ``begin`` also refuses an answer whose
    Content-Length is invalid (``declared_length``), as RFC 9112 6.3 asks of a client:
    its body has no known end, and a cache or proxy on the way may have framed it
    otherwise. A head the connection ends before its blank line raises CutHead:
    http.client took the end for the blank line, and a cut head was a whole, empty
    200 (a ``not_image`` for good; a robots.txt cut so allowed everything). A chunked
    body is held to RFC 9112 7.1 (``chunk_size``; each chunk's data ends with its line
    end, where http.client dropped the next two bytes, whatever they were), and so is a
    Transfer-Encoding (``check_transfer_coding``)."""

    def begin(self) -> None:
        raw = self.fp
        self.fp = head = _HeadReader(raw)
        try:
            super().begin()
        finally:
            if self.fp is head:  # (begin closes the file of an answer with no body)
                self.fp = raw
        if head.ended:  # RFC 9112 8: an incomplete message; it is no answer at all
            raise CutHead("the server closed the connection before the end of the answer's head")
        check_transfer_coding(self.headers.get_all("Transfer-Encoding") or [])
        if self.chunked or self.status < 200 or self.status in (204, 304):
            return  # no body, or one framed by Transfer-Encoding (RFC 9112 6.3, items 1-4)
        if self._method != "HEAD":  # type: ignore[attr-defined]
            declared_length(self.headers.get_all("Content-Length") or [])

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 100 <= status < 200 or status == 101:
                return version, status, reason
            self._interim = getattr(self, "_interim", 0) + 1
            if self._interim > MAX_INTERIM:
                raise TooManyInterim(f"more than {MAX_INTERIM} interim (1xx) answers")
            if status == 100:
                return version, status, reason  # begin() reads its fields and goes on
            http.client._read_headers(self.fp)  # type: ignore[attr-defined]

    def _read_next_chunk_size(self) -> int:
        line = self.fp.readline(http.client._MAXLINE + 1)  # type: ignore[attr-defined]
        if not line.endswith(b"\n") and len(line) <= http.client._MAXLINE:  # type: ignore[attr-defined]
            raise http.client.IncompleteRead(b"")  # the connection ended: a cut body
        try:
            return chunk_size(line)
        except MalformedChunk:
            self._close_conn()  # type: ignore[attr-defined]  (out of step with the server)
            raise

    def _get_chunk_left(self) -> int | None:
        if self.chunk_left == 0:  # type: ignore[has-type]  (a chunk's data read: its line end)
            end = self.fp.readline(3)
            if end in (b"", b"\r"):
                raise http.client.IncompleteRead(b"")
            if end not in (b"\r\n", b"\n"):
                self._close_conn()  # type: ignore[attr-defined]
                raise MalformedChunk(
                    "malformed chunked body: a chunk's data does not end where its size "
                    "says (RFC 9112 7.1)"
                )
            self.chunk_left = None  # so http.client reads the next size, not 2 bytes more
        return super()._get_chunk_left()  # type: ignore[misc]
