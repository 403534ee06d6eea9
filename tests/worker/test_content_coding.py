"""A body in a content coding the worker cannot decode is said so, not judged as an image.

requests asks only for the codings urllib3 decodes (gzip, deflate; br and zstd only with
their optional modules, which the crawler does not install); a server may send another
all the same. urllib3 then hands over the coded bytes, and the row said ``not_image``
with no word of the coding. Codings outside IANA's registry (``utf-8``, ``binary``: a
misconfigured server's raw image) are passed through, as browsers pass them.

Each answer is served byte for byte by a real HTTP server on loopback and fetched with
the worker's own ``fetch`` (``test_wire_bytes.Wire``).
"""

from __future__ import annotations

import gzip
import importlib.util
import zlib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from imageserver import make_image
from test_wire_bytes import POLICY, Wire, wire

from crawler.exceptions import ConnectionFailure
from crawler.worker.fetch import fetch_text

__all__ = ["wire"]  # the fixture, shared with test_wire_bytes

PNG = make_image("PNG", 20, 12, seed=5)
BROTLI = any(importlib.util.find_spec(m) for m in ("brotli", "brotlicffi"))


def answer(coding: str) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Encoding: {coding}\r\n"
    return head.encode() + f"Content-Length: {len(PNG)}\r\n\r\n".encode() + PNG


@pytest.mark.parametrize("coding", ["br", "BR", "zstd", "compress", "gzip, br", "aes128gcm"])
def test_a_coding_the_worker_cannot_decode_is_said(wire: Wire, coding: str) -> None:
    if "br" in coding.lower() and BROTLI:
        pytest.skip("brotli is installed: urllib3 decodes br")
    status, error, _ = wire.fetch(answer(coding))
    name = coding.lower().split(", ")[-1]
    assert status == "connection_error", error
    assert error.startswith(f"body could not be decoded (Content-Encoding {name},"), error


@pytest.mark.parametrize("coding", ["identity", "utf-8", "binary", "none", ""])
def test_a_coding_outside_the_registry_is_passed_through(wire: Wire, coding: str) -> None:
    assert wire.download(answer(coding)).body == PNG


def chunked(body: bytes, codings: str) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: {codings}\r\n\r\n"
    return head.encode() + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"


@pytest.mark.parametrize("coding", ["gzip", "deflate", "compress", "x-foo", "identity"])
def test_a_transfer_coding_besides_chunked_is_said(wire: Wire, coding: str) -> None:
    """RFC 9112 7: a server must not send a transfer coding the request's TE did not
    name; http.client removes chunked alone. The body was judged in its coding
    ("not_image", permanent, not a word of the coding) until 2026-12-01 (a fresh user's
    ``Transfer-Encoding: gzip, chunked``)."""
    status, error, _ = wire.fetch(chunked(gzip.compress(PNG), f"{coding}, chunked"))
    assert status == "connection_error", error
    assert error.startswith(f"body could not be decoded (Transfer-Encoding {coding},"), error


@pytest.mark.parametrize("codings", ["chunked", "Chunked"])
def test_chunked_alone_is_read(wire: Wire, codings: str) -> None:
    assert wire.download(chunked(PNG, codings)).body == PNG


@pytest.mark.parametrize("coding", ["identity", "Identity"])
def test_transfer_encoding_identity_alone_is_read(wire: Wire, coding: str) -> None:
    """Obsolete but harmless: a body framed by its Content-Length (a review's)."""
    head = f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: {coding}\r\n"
    answer = head.encode() + f"Content-Length: {len(PNG)}\r\n\r\n".encode() + PNG
    assert wire.download(answer).body == PNG


# ----------------------------------------------- a coded body the connection's close cut
CODERS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,  # RFC 9110 8.4.1.2: the zlib format
    "raw-deflate": lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS),  # sent anyway
}


def close_delimited(body: bytes, coding: str) -> bytes:
    """An HTTP/1.0 answer whose body only the connection's close ends (RFC 9112 6.3)."""
    name = coding.replace("raw-", "")
    head = f"HTTP/1.0 200 OK\r\nContent-Type: image/png\r\nContent-Encoding: {name}\r\n\r\n"
    return head.encode() + body


LARGE = (PNG * 40_000)[:4_000_000]  # decoded in many reads, with zlib's unconsumed tails


@pytest.mark.parametrize("body", [PNG, LARGE], ids=["small", "large"])
@pytest.mark.parametrize("coding", sorted(CODERS))
def test_a_whole_coded_body_that_the_close_ends_is_read(
    wire: Wire, coding: str, body: bytes
) -> None:
    assert wire.download(close_delimited(CODERS[coding](body), coding)).body == body
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: {coding.replace('raw-', '')}\r\n"
    coded = CODERS[coding](body)
    framed = head.encode() + f"Content-Length: {len(coded)}\r\n\r\n".encode() + coded
    assert wire.download(framed).body == body


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(coding=st.sampled_from(sorted(CODERS)), where=st.floats(0, 1, exclude_max=True))
@example(coding="gzip", where=0.999)  # inside gzip's trailer: the data whole, unchecked
def test_a_coded_body_cut_by_the_close_is_a_connection_error(
    wire: Wire, coding: str, where: float
) -> None:
    """Cut anywhere (not one byte sent is an empty body, judged as such): a transient
    ``connection_error`` that says so. Until 2026-12-01 the bytes before the cut were
    judged as the image (``corrupt``, for good) and a cut robots.txt lost its rules past
    the cut (a fresh user's HTTP/1.0 server)."""
    coded = CODERS[coding](PNG)
    status, error, _ = wire.fetch(
        close_delimited(coded[: 1 + int(where * (len(coded) - 1))], coding)
    )
    assert status == "connection_error", error
    assert error.startswith("body cut short: it ends inside its"), error


@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_framed_body_whose_stream_does_not_end_is_read_as_before(
    wire: Wire, coding: str, framing: str
) -> None:
    """Whole by its framing, but the server never ended its stream (flushed, not
    finished; gzip's trailer missing): the server's doing, the same every night, and
    Pillow reads the image whole. The cut check (for close-delimited bodies) refused
    these, every night, robots.txt too (a review's)."""
    packer = zlib.compressobj(wbits=31 if coding == "gzip" else 15)
    coded = packer.compress(PNG) + packer.flush(zlib.Z_SYNC_FLUSH)  # never Z_FINISH
    head = f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Encoding: {coding}\r\n"
    if framing == "length":
        answer = head.encode() + f"Content-Length: {len(coded)}\r\n\r\n".encode() + coded
    else:
        answer = head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + chunks_of(coded)
    assert wire.download(answer).body == PNG


def chunks_of(body: bytes) -> bytes:
    return f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"


def test_a_gzip_body_of_two_members_or_trailing_bytes_is_read(wire: Wire) -> None:
    """gzip clients read every member and ignore what trails the last whole one."""
    two = gzip.compress(PNG[:100]) + gzip.compress(PNG[100:])
    assert wire.download(close_delimited(two, "gzip")).body == PNG
    trailing = gzip.compress(PNG) + gzip.compress(PNG)[:10]
    assert wire.download(close_delimited(trailing, "gzip")).body[: len(PNG)] == PNG


def test_a_robots_txt_cut_inside_its_gzip_stream_is_not_taken_whole(wire: Wire) -> None:
    """The rules before the cut are not all of them: no answer (robots.txt unavailable)."""
    rules = b"User-agent: *\nAllow: /public\n" + b"# padding\n" * 200 + b"Disallow: /private\n"
    coded = gzip.compress(rules)
    head = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n\r\n"
    wire.answer = head + coded[: len(coded) // 2]
    with pytest.raises(ConnectionFailure, match="body cut short"):
        fetch_text(wire.session, wire.server.url("/wire/answer"), POLICY, 500_000, 5)
    wire.answer = head + coded
    answer = fetch_text(wire.session, wire.server.url("/wire/answer"), POLICY, 500_000, 5)
    assert (answer.http_status, answer.body) == (200, rules)
