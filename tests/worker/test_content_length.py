"""Content-Length fields of any text: one valid length frames the body, anything else
refuses the answer (RFC 9112 6.3, item 5: "the message framing is invalid ... the user
agent MUST close the connection to the server and discard the received response").

Until 2026-12-01 the crawler read them as Python's ``int`` does, as http.client does:
``Content-Length: 1_0`` framed a body of 10 bytes (a PNG cut there, where a browser
sees no length and reads the whole image), ``+837`` and ``0x10`` were taken, and
``abc``, ``-1`` or an empty value meant "read until the connection closes".

Each answer is served byte for byte by a real HTTP server on loopback and fetched with
the worker's own ``fetch`` (``test_wire_bytes.Wire``); the oracle is RFC 9110's grammar
(``Content-Length = 1*DIGIT``, a list of copies of one value allowed), written here as a
regular expression, independent of the code under test.
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st
from imageserver import make_image
from test_wire_bytes import SWEEP, Wire, wire

from crawler._compat import InvalidContentLength, declared_length

__all__ = ["wire"]  # the fixture, shared with test_wire_bytes

PNG = make_image("PNG", 20, 12, seed=3)
MEMBER = re.compile(r"[ \t]*([0-9]+)[ \t]*", re.ASCII)
# Characters Content-Length values are made of here: digits and what looks like them.
TEXT = st.text(alphabet="0123456789 ,+-_xXabe.\t٥²", max_size=12)


def valid_length(values: list[str]) -> int | None:
    """RFC 9110 8.6 and RFC 9112 6.3 item 5: each member 1*DIGIT, all the same; None if not."""
    members = [MEMBER.fullmatch(member) for value in values for member in value.split(",")]
    if not members or not all(members):
        return None
    lengths = {int(m.group(1)) for m in members if m}
    return lengths.pop() if len(lengths) == 1 else None


def answer(values: list[str]) -> bytes:
    fields = b"".join(b"Content-Length: " + v.encode() + b"\r\n" for v in values)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n"
    return head + fields + b"\r\n" + PNG


LENGTH = str(len(PNG))
VALUES = st.one_of(
    st.lists(TEXT, min_size=1, max_size=3),
    st.lists(st.sampled_from([LENGTH, f" {LENGTH}", f"{LENGTH} , {LENGTH}"]), min_size=1),
    st.lists(st.integers(0, 2 * len(PNG)).map(str), min_size=1, max_size=2),
)


@SWEEP
@given(VALUES)
@example(["1_0"])
@example(["+" + LENGTH])
@example(["0x10"])
@example([""])
@example(["-1"])
@example([f"{LENGTH},{len(PNG) + 5}"])
@example([LENGTH, str(len(PNG) + 7)])
@example([LENGTH, LENGTH])
@example(["٥"])
def test_a_content_length_frames_the_body_or_refuses_the_answer(
    wire: Wire, values: list[str]
) -> None:
    status, error, _ = wire.fetch(answer(values))
    length = valid_length([v.strip(" \t") for v in values])
    if length is None:
        assert status == "connection_error", error
        assert error.startswith("connection aborted: invalid Content-Length "), error
    elif length <= len(PNG):
        assert status == "ok", error  # the body that length frames: the last test
    else:
        assert status == "connection_error" and "shorter than announced" in error, error


@given(st.lists(TEXT, max_size=3))
def test_declared_length_is_the_grammars(values: list[str]) -> None:
    expected = valid_length(values)
    try:
        declared = declared_length(values)
    except InvalidContentLength:
        assert values and expected is None, values
    else:
        assert declared == expected, values


def test_the_body_is_cut_where_a_valid_length_says(wire: Wire) -> None:
    for length in (0, 8, len(PNG) - 1, len(PNG)):
        assert wire.download(answer([str(length)])).body == PNG[:length]
