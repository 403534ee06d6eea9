"""Chunked bodies held to RFC 9112 7.1, and framing errors said as what they are.

Until 2026-12-01 (a fresh user's) chunk sizes were read with Python's ``int(x, 16)``,
as http.client reads them: ``+8b``, ``8_b``, ``0x8b`` and `` 8b `` framed a chunk of
0x8b bytes, where ``Content-Length: +139`` was refused (``test_content_length``); a
chunk size that was no number at all was "body shorter than announced?:
IncompleteRead(0 bytes read)", though nothing was short; ``Transfer-Encoding: chunked,
chunked`` (chunked applied twice, which RFC 9112 7.1 forbids) was read to the close,
framing and all, and judged ``not_image`` for good; an ``HTTP/2`` status line was
"connection aborted: HTTP/2", and six stacked gzip codings "bad Content-Encoding".

Each answer is served byte for byte by a real HTTP server on loopback and fetched with
the worker's own ``fetch`` (``test_wire_bytes.Wire``). The sweep's oracle is RFC 9112's
grammar, written here on its own: chunk-size = 1*HEXDIG, then chunk-ext = *( BWS ";"
BWS token [ BWS "=" BWS ( token / quoted-string ) ] ), then CRLF (or a bare LF, 2.2).
"""

from __future__ import annotations

import functools
import gzip
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from imageserver import make_image
from test_wire_bytes import SWEEP, Wire, wire

__all__ = ["wire"]  # the fixture, shared with test_wire_bytes

PNG = make_image("PNG", 20, 12, seed=9)
HEX = b"%x" % len(PNG)
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
WS = r"[ \t]*"
TOKEN = "[" + re.escape(TCHAR) + "]+"
QUOTED = r'"(?:[\t !\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"'
EXTENSION = f"{WS};{WS}{TOKEN}(?:{WS}={WS}(?:{TOKEN}|{QUOTED}))?"


def valid_line(line: bytes) -> int | None:
    """RFC 9112 7.1: the size ``line`` (its line end included) declares as a chunk's first
    line; None when it is no such line."""
    text = line.decode("latin-1")
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    else:
        return None
    digits = len(text) - len(text.lstrip("0123456789abcdefABCDEF"))
    if digits == 0 or re.fullmatch(f"(?:{EXTENSION})*", text[digits:]) is None:
        return None
    return int(text[:digits], 16)


def answer(line: bytes) -> bytes:
    return CHUNKED + line + PNG + b"\r\n0\r\n\r\n"


PIECES = st.sampled_from(
    ["+", "-", "_", "0x", "0X", " ", "\t", ";", "=", '"', "\\", "a", "ext", "x=1", ";a",
     ";a=b", ' ; a = "q \\" t"', "\r", ",", "\x00", "\xe9", "٥"]
)  # fmt: skip
AROUND = st.lists(PIECES, max_size=4).map("".join).map(lambda s: s.encode("latin-1", "replace"))
SIZES = st.sampled_from([HEX, HEX.upper(), b"0" + HEX, b"000" + HEX])


@SWEEP
@given(before=AROUND, size=SIZES, after=AROUND, end=st.sampled_from([b"\r\n", b"\n"]))
@example(before=b"+", size=HEX, after=b"", end=b"\r\n")
@example(before=b"", size=HEX[:1] + b"_" + HEX[1:], after=b"", end=b"\r\n")
@example(before=b"0x", size=HEX, after=b"", end=b"\r\n")
@example(before=b" ", size=HEX, after=b" ", end=b"\r\n")
@example(before=b"", size=HEX, after=b' ; name = "quoted \\" value"', end=b"\r\n")
@example(before=b"", size=HEX, after=b";a=b;c", end=b"\n")
def test_a_chunk_size_frames_its_chunk_or_refuses_the_answer(
    wire: Wire, before: bytes, size: bytes, after: bytes, end: bytes
) -> None:
    line = before + size + after + end
    status, error, _ = wire.fetch(answer(line))
    size = valid_line(line)
    if size == len(PNG):
        assert status == "ok", (line, error)
        assert wire.download(answer(line)).body == PNG
    elif size is not None:  # another size (a hex digit after it): the data do not fit it
        assert status == "connection_error", (line, error)
        assert not error.startswith("malformed chunk size"), (line, error)
    else:
        assert status == "connection_error", (line, error)
        assert error.startswith("malformed chunk size '"), (line, error)
        assert error.isascii() and error.isprintable(), error


def gzipped(times: int) -> bytes:
    codings = ", ".join(["gzip"] * times).encode()
    body = functools.reduce(lambda data, _: gzip.compress(data), range(times), PNG)
    return HEAD + b"Content-Encoding: " + codings + b"\r\n\r\n" + body


BAD_SIZE = "malformed chunk size '{}' (RFC 9112 7.1: hex digits, then optional ';' extensions)"
TWICE = "connection aborted: Transfer-Encoding {!r}: chunked more than once (RFC 9112 7.1)"
CASES = {
    "http2": (
        b"HTTP/2 200 OK\r\nContent-Length: %d\r\n\r\n" % len(PNG) + PNG,
        "connection aborted: the server answered in another protocol than HTTP/1.x ('HTTP/2')",
    ),
    "http3": (
        b"HTTP/3.0 200 OK\r\n\r\n" + PNG,
        "connection aborted: the server answered in another protocol than HTTP/1.x ('HTTP/3.0')",
    ),
    "gzip_five": (gzipped(5), ""),
    "gzip_six": (
        gzipped(6),
        "body could not be decoded (6 content codings stacked; this worker undoes at most 5)",
    ),
    "gzip_eight": (
        gzipped(8),
        "body could not be decoded (8 content codings stacked; this worker undoes at most 5)",
    ),
    "size_zz": (CHUNKED + b"zz\r\n" + PNG + b"\r\n0\r\n\r\n", BAD_SIZE.format("zz")),
    "size_negative": (CHUNKED + b"-10\r\n" + PNG + b"\r\n0\r\n\r\n", BAD_SIZE.format("-10")),
    "size_empty": (CHUNKED + b"\r\n" + PNG + b"\r\n0\r\n\r\n", BAD_SIZE.format("")),
    "size_short": (
        CHUNKED + b"%x\r\n" % (len(PNG) - 10) + PNG + b"\r\n0\r\n\r\n",
        "malformed chunked body: a chunk's data does not end where its size says (RFC 9112 7.1)",
    ),
    "cut_in_a_chunk": (
        CHUNKED + HEX + b"\r\n" + PNG[:50],
        "connection broken (body shorter than announced?): IncompleteRead(0 bytes read)",
    ),
    "cut_after_a_chunk": (
        CHUNKED + HEX + b"\r\n" + PNG + b"\r\n",
        "connection broken (body shorter than announced?): IncompleteRead(0 bytes read)",
    ),
    "chunked_twice": (
        HEAD
        + b"Transfer-Encoding: chunked, chunked\r\n\r\n"
        + HEX
        + b"\r\n"
        + PNG
        + b"\r\n0\r\n\r\n",
        TWICE.format("chunked, chunked"),
    ),
    "chunked_two_lines": (
        HEAD
        + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: Chunked\r\n\r\n"
        + HEX
        + b"\r\n"
        + PNG
        + b"\r\n0\r\n\r\n",
        TWICE.format("chunked, Chunked"),
    ),
    "chunked_once": (CHUNKED + HEX + b";x=y\r\n" + PNG + b"\r\n0\r\n\r\n", ""),
}


@pytest.mark.parametrize("case", CASES)
def test_each_framing_error_says_what_happened(wire: Wire, case: str) -> None:
    sent, said = CASES[case]
    status, error, _ = wire.fetch(sent)
    if not said:
        assert status == "ok", error
        assert wire.download(sent).body == PNG
    else:
        assert (status, error) == ("connection_error", said)
