"""Content and transfer codings of an answer: which the worker reads, and whether they ended.

urllib3 decodes gzip and deflate (br and zstd only with optional modules the crawler does
not install) as the body is read. Two things it does not say, and ``fetch`` must know:

- a coding it leaves undecoded (``unread_coding``): the bytes would be judged in their
  coding ("not_image", with no word of why); or more codings stacked than it undoes
  (``too_many_codings``): its error said "bad Content-Encoding", with no word of why;
- a gzip or deflate stream the body stopped inside of (``unfinished_coding``). A body
  whose end only the connection's close marks (HTTP/1.0, or neither Content-Length nor
  chunked: RFC 9112 6.3, last rule) cannot tell a cut from the end; its coding can. A
  deflate stream says which block is its last and a gzip member ends with a trailer
  (RFC 1951 3.2.3, RFC 1952 2.2); zlib knows when it has seen them (``eof``);
- how large a coded body of at most ``--max-bytes`` decoded bytes can be
  (``coded_bound``): its ``Content-Length`` is the coded size, not the one that counts.
"""

from __future__ import annotations

from typing import Any

from urllib3.response import (
    DeflateDecoder,
    GzipDecoder,
    GzipDecoderState,
    HTTPResponse,
    MultiDecoder,
)

# Content codings in IANA's registry (RFC 9110 18.6) that urllib3 decodes only with an
# optional module (br: brotli, zstd: zstandard) or not at all; it leaves such a body as
# it came. Codings outside the registry (``utf-8``, ``binary``: misconfigured servers)
# are passed through as browsers pass them, and verification judges the bytes.
REGISTERED_CODINGS = frozenset(
    {"br", "zstd", "compress", "x-compress", "aes128gcm", "dcb", "dcz", "exi", "pack200-gzip"}
)
UNREAD_CODINGS = REGISTERED_CODINGS - set(HTTPResponse.CONTENT_DECODERS)
GZIP_WRAPPER = 18  # bytes of a gzip member's header and trailer (RFC 1952 2.3), no options


def undecodable(headers: Any) -> str | None:
    """Why the body of an answer (its ``headers``) cannot be decoded, in words: a coding
    the worker does not read (``unread_coding``), or too many stacked
    (``too_many_codings``); None when it can be."""
    coding = unread_coding(headers)
    if coding is not None:
        return f"{coding}, which this worker does not read and did not ask for"
    return too_many_codings(headers)


def too_many_codings(headers: Any) -> str | None:
    """ "6 content codings stacked ..." when an answer's Content-Encoding lists more than
    urllib3 undoes (``MultiDecoder.max_decode_links``, 5 since urllib3 2.6: a bound on the
    work one answer can ask for), counted as urllib3 counts them (every list member, once
    any is one it decodes); None otherwise."""
    value = headers.get("Content-Encoding", "")
    codings = value.lower().split(",")
    limit = getattr(MultiDecoder, "max_decode_links", None)
    decoded = any(c.strip() in HTTPResponse.CONTENT_DECODERS for c in codings)
    if limit is None or len(codings) <= limit or not decoded:
        return None
    return f"{len(codings)} content codings stacked; this worker undoes at most {limit}"


def unread_coding(headers: Any) -> str | None:
    """A registered content coding of an answer (its ``headers``) that this worker cannot
    decode ("Content-Encoding br"), or a transfer coding besides chunked
    ("Transfer-Encoding gzip": RFC 9112 7, a server must not send one the request's TE
    did not name, and http.client removes only chunked: until 2026-12-01 a gzipped body
    was "not_image"); None when there is none."""
    codings = headers.get("Content-Encoding", "").lower().split(",")
    found = next((c.strip() for c in codings if c.strip() in UNREAD_CODINGS), None)
    if found is not None:
        return f"Content-Encoding {found}"
    transfer = headers.get("Transfer-Encoding", "").lower().split(",")
    extra = [c.strip() for c in transfer if c.strip() not in ("chunked", "")]
    if extra == ["identity"] and len(transfer) == 1:
        return None  # obsolete (RFC 7230 dropped it) and harmless alone: read as it is
    return f"Transfer-Encoding {extra[0]}" if extra else None


def decoded_codings(headers: Any) -> list[str]:
    """The content codings of an answer (its ``headers``) that urllib3 undoes as the body
    is read, in the order they were applied ("gzip", "deflate"; none: the body is read as
    it came, its ``Content-Length`` the size ``--max-bytes`` counts)."""
    codings = headers.get("Content-Encoding", "").lower().split(",")
    return [c.strip() for c in codings if c.strip() in HTTPResponse.CONTENT_DECODERS]


def coded_bound(size: int, codings: list[str]) -> int:
    """The most bytes a body of ``size`` bytes can take once coded in ``codings``, each
    in turn: zlib's ``deflateBound`` for a compressor of unknown settings (zlib 1.3
    deflate.c: the larger of its fixed-block bound, ``n + n/8 + n/256 + n/512 + 4``, and
    its stored-block one, ``n + n/32 + n/128 + n/2048 + 7``) plus a gzip wrapper, the
    larger (RFC 1952 2.3: a 10-byte header, an 8-byte trailer; zlib's, RFC 1950, is 6),
    per coding. Brotli and zstd stay within
    it too (a few bytes per block stored as it is). A ``Content-Length`` above it cannot
    frame a coded body that decodes to ``size`` bytes or fewer, bar header fields (a
    gzip file name) no server sends."""
    for _ in codings:
        fixed = size + (size >> 3) + (size >> 8) + (size >> 9) + 4
        stored = size + (size >> 5) + (size >> 7) + (size >> 11) + 7
        size = max(fixed, stored) + GZIP_WRAPPER
    return size


def unfinished_coding(raw: HTTPResponse) -> str | None:
    """The content coding ("gzip", "deflate") whose stream a body that the connection's
    close ended (neither Content-Length nor chunked) stopped inside of; None when each
    ended, or no byte came (an empty body is judged as one), or the body is in no coding
    zlib reads, or it is framed: then a short body is urllib3's error already, and a
    whole one whose stream does not end is the server's (a review found those, images
    Pillow reads whole, refused every night), read as before.

    Until 2026-12-01 such a body was taken whole: a cut image ended ``corrupt`` (for
    good, where the network had cut it) and a cut robots.txt lost the rules past the cut
    (a fresh user's HTTP/1.0 server closing mid-stream). A gzip body of several members
    counts as ended once its first is whole: gzip clients ignore what trails it.

    urllib3 keeps its decoder and each zlib object private (``_decoder``, ``_obj``,
    ``_state``); read defensively, and ``tests/worker/test_content_coding.py`` fails if
    a release renames them."""
    if raw.tell() == 0 or raw.chunked or raw.headers.get("Content-Length") is not None:
        return None  # framed: a cut is urllib3's error; an unended stream the server's own
    decoder = getattr(raw, "_decoder", None)
    for part in getattr(decoder, "_decoders", None) or [decoder]:
        if isinstance(part, GzipDecoder):
            name, whole = "gzip", getattr(part, "_state", None) != GzipDecoderState.FIRST_MEMBER
        elif isinstance(part, DeflateDecoder):
            name, whole = "deflate", False
        else:
            continue
        if not whole and not getattr(getattr(part, "_obj", None), "eof", True):
            return name
    return None
