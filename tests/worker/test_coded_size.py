"""``--max-bytes`` counts a body's decoded bytes, whatever its content coding.

The ``Content-Length`` of a content-coded answer is its coded size: larger than the
decoded image for noise (gzip grows it a little), smaller for a flat one. Until
2026-12-01 it was held to ``--max-bytes`` as if it were the decoded size: a 12,420-byte
PNG served gzip-coded in 12,443 bytes was ``too_large`` under ``--max-bytes 12420``,
and the same PNG served plain ``ok`` (a fresh user's). Now a coded answer is refused by
its length only past what any coding of ``--max-bytes`` can take (``codings.coded_bound``,
zlib's ``deflateBound``), and the decoded count decides; an uncoded length over the
limit is still refused before any of the body is read, and a gzip bomb still ends
``too_large`` as soon as its decoded bytes pass the limit.

Swept: codings (none, ``identity``, ``gzip``, ``x-gzip``, ``deflate``, ``gzip, gzip``)
x framings (``Content-Length``, chunked) x decoded sizes one under, at and one over the
limit, for an image gzip grows (noise, PNG) and one it shrinks (flat, BMP); each answer
served by a real HTTP server on loopback and fetched with the worker's own ``fetch``
(``test_wire_bytes.Wire``). The bound itself is checked against zlib over every level,
memory level, strategy and wrapper, with Hypothesis choosing the data.
"""

from __future__ import annotations

import gzip
import io
import time
import zlib

import pytest
from hostile import gzip_bomb
from hypothesis import given, settings
from hypothesis import strategies as st
from imageserver import make_image
from PIL import Image
from test_wire_bytes import Wire, wire

from crawler.config import Policy
from crawler.exceptions import TooLarge
from crawler.worker.codings import coded_bound
from crawler.worker.fetch import fetch

__all__ = ["wire"]  # the fixture, shared with test_wire_bytes


def bmp(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "BMP")
    return out.getvalue()


NOISE = make_image("PNG", 64, 64, seed=11)  # gzip makes it larger
FLAT = bmp(Image.new("RGB", (64, 64), (30, 90, 200)))  # gzip makes it much smaller
STRATEGIES = [
    zlib.Z_DEFAULT_STRATEGY,
    zlib.Z_FILTERED,
    zlib.Z_HUFFMAN_ONLY,
    zlib.Z_RLE,
    zlib.Z_FIXED,
]
CODERS = {
    "": lambda b: b,
    "identity": lambda b: b,
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,  # RFC 9110 8.4.1.2: the zlib format
    "gzip, gzip": lambda b: gzip.compress(gzip.compress(b)),
}


def answer(body: bytes, coding: str, framing: str) -> bytes:
    """A 200 whose body is ``body`` coded in ``coding``, framed by ``framing``."""
    coded = CODERS[coding](body)
    head = "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n"
    head += f"Content-Encoding: {coding}\r\n" if coding else ""
    if framing == "chunked":
        head += "Transfer-Encoding: chunked\r\n\r\n"
        return head.encode() + f"{len(coded):x}\r\n".encode() + coded + b"\r\n0\r\n\r\n"
    return head.encode() + f"Content-Length: {len(coded)}\r\n\r\n".encode() + coded


def fetched(wire: Wire, sent: bytes, max_bytes: int) -> bytes | TooLarge:
    """The body ``fetch`` got of ``sent`` under ``--max-bytes max_bytes``, or its TooLarge."""
    wire.answer = sent
    policy = Policy(deadline=5.0, read_timeout=2.0, retries=0, block_private=False,
                    max_bytes=max_bytes)  # fmt: skip
    try:
        return fetch(wire.session, wire.server.url("/wire/answer"), policy).body
    except TooLarge as failure:
        return failure


@pytest.mark.parametrize("image", [NOISE, FLAT], ids=["noise", "flat"])
@pytest.mark.parametrize("coding", list(CODERS))
@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("over", [-1, 0, 1])
def test_max_bytes_counts_the_decoded_body(
    wire: Wire, image: bytes, coding: str, framing: str, over: int
) -> None:
    """``over``: the decoded body's bytes past the limit (-1: one under)."""
    got = fetched(wire, answer(image, coding, framing), len(image) - over)
    if over <= 0:
        assert got == image, got
    else:
        assert isinstance(got, TooLarge), got


def test_the_reported_case_is_ok(wire: Wire) -> None:
    """The fresh user's: gzip grew the image past the limit, which the image meets."""
    sent = answer(NOISE, "gzip", "length")
    assert len(gzip.compress(NOISE)) > len(NOISE)
    assert fetched(wire, sent, len(NOISE)) == NOISE


@pytest.mark.parametrize("coding", ["", "identity", "utf-8"])
def test_an_uncoded_length_over_the_limit_is_refused_before_reading(
    wire: Wire, coding: str
) -> None:
    """The head alone is sent: reading any of the body would end ``connection_error``."""
    field = f"Content-Encoding: {coding}\r\n" if coding else ""
    head = f"HTTP/1.1 200 OK\r\n{field}Content-Length: 1001\r\n\r\n"
    got = fetched(wire, head.encode(), 1000)
    assert isinstance(got, TooLarge) and str(got) == "Content-Length 1001 exceeds max_bytes 1000"


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate", "gzip, gzip"])
def test_a_coded_length_no_coding_of_the_limit_can_take_is_refused_before_reading(
    wire: Wire, coding: str
) -> None:
    most = coded_bound(1000, [c.strip() for c in coding.split(",")])
    for length in (most + 1, 10**26):
        head = f"HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\nContent-Length: {length}\r\n\r\n"
        got = fetched(wire, head.encode(), 1000)
        said = f"Content-Length {length} exceeds max_bytes 1000 coded as {coding}"
        assert isinstance(got, TooLarge) and str(got).startswith(said), got


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_gzip_bomb_is_too_large_as_soon_as_it_passes_the_limit(wire: Wire, framing: str) -> None:
    bomb = gzip_bomb(200_000_000)
    head = "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Encoding: gzip\r\n"
    if framing == "chunked":
        sent = head + "Transfer-Encoding: chunked\r\n\r\n"
        sent_bytes = sent.encode() + f"{len(bomb):x}\r\n".encode() + bomb + b"\r\n0\r\n\r\n"
    else:
        sent_bytes = head.encode() + f"Content-Length: {len(bomb)}\r\n\r\n".encode() + bomb
    start = time.monotonic()
    got = fetched(wire, sent_bytes, 1_000_000)
    assert isinstance(got, TooLarge) and str(got) == "body exceeds max_bytes 1000000", got
    assert time.monotonic() - start < 2.0


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=70_000) | st.builds(bytes, st.integers(0, 70_000)),
    level=st.integers(0, 9),
    memory=st.integers(1, 9),
    strategy=st.sampled_from(STRATEGIES),
    wrapper=st.sampled_from([31, 15, -15]),  # gzip, zlib (deflate), raw deflate
)
def test_no_coding_of_a_body_is_longer_than_the_bound(
    data: bytes, level: int, memory: int, strategy: int, wrapper: int
) -> None:
    coder = zlib.compressobj(level, zlib.DEFLATED, wrapper, memory, strategy)
    coded = coder.compress(data) + coder.flush()
    assert len(coded) <= coded_bound(len(data), ["gzip"])
