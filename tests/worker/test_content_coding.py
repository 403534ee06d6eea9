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

import pytest
from imageserver import make_image
from test_wire_bytes import Wire, wire

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
