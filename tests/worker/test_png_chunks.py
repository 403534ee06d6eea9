"""PNG chunks judged as libpng judges them (browsers show what it shows), by sweeps over
chunk names and places rather than one file each (found by a fresh user, 2026-12-01):

- an ancillary chunk whose CRC is wrong is ignored, wherever it is: before the first
  IDAT, Pillow refused the whole file, and it was ``corrupt``;
- a critical chunk libpng does not know, or an IHDR anywhere but first, is an error:
  both were stored as ``ok``.
"""

from __future__ import annotations

import io
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from test_verify_sweeps import POLICY, status_of

from crawler.worker import verify

KNOWN = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"acTL", b"fcTL", b"fdAT"}


def sample(mode: str) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (24, 16), 3).save(out, "PNG")
    return out.getvalue()


def chunks(body: bytes) -> list[bytes]:
    """The chunks of ``body``, whole (length, type, data, CRC), in order."""
    found, pos = [], 8
    while pos < len(body):
        end = pos + 12 + int.from_bytes(body[pos : pos + 4], "big")
        found.append(body[pos:end])
        pos = end
    return found


def chunk(kind: bytes, data: bytes, crc_right: bool = True) -> bytes:
    crc = zlib.crc32(kind + data) ^ (0 if crc_right else 0x5A5A5A5A)
    return len(data).to_bytes(4, "big") + kind + data + crc.to_bytes(4, "big")


def letters(first: str) -> st.SearchStrategy[bytes]:
    """Chunk names: ``first`` (upper or lower case letters) then three letters."""
    head = st.sampled_from(first)
    rest = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)
    return st.builds(lambda a, b: (a + b).encode(), head, rest).filter(lambda k: k not in KNOWN)


def inserted(body: bytes, at: int, extra: bytes) -> bytes:
    """``extra`` between chunk ``at`` and the next (1: right after IHDR)."""
    parts = chunks(body)
    at = max(1, min(at, len(parts) - 1))  # after IHDR, before IEND
    return body[:8] + b"".join(parts[:at]) + extra + b"".join(parts[at:])


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["L", "RGB", "RGBA", "P"]),
    letters("abcdefghijklmnopqrstuvwxyz"),
    st.binary(max_size=40),
    st.integers(1, 4),
)
def test_an_ancillary_chunk_with_a_wrong_crc_is_ignored(
    mode: str, kind: bytes, data: bytes, at: int
) -> None:
    body = inserted(sample(mode), at, chunk(kind, data, crc_right=False))
    assert status_of(body) == "ok", (kind, at)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["L", "RGB", "P"]),
    letters("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    st.binary(max_size=40),
    st.integers(1, 4),
)
def test_an_unknown_critical_chunk_is_corrupt(mode: str, kind: bytes, data: bytes, at: int) -> None:
    body = inserted(sample(mode), at, chunk(kind, data))
    assert status_of(body) == "corrupt", (kind, at)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["L", "RGB", "P"]), st.integers(1, 4))
def test_a_second_ihdr_is_corrupt(mode: str, at: int) -> None:
    body = sample(mode)
    body = inserted(body, at, chunks(body)[0])
    assert status_of(body) == "corrupt", at


@settings(max_examples=30, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=300))
def test_many_ancillary_chunks_some_damaged_are_all_read_past(crcs: list[bool]) -> None:
    """Chunks with right and wrong CRCs in any order before IDAT: the picture is the
    same as without them (the damaged ones dropped in one pass, not a copy each)."""
    body = sample("RGB")
    extra = b"".join(chunk(b"tEXt", b"k\0%d" % i, right) for i, right in enumerate(crcs))
    with_them = inserted(body, 1, extra)
    assert status_of(with_them) == "ok"
    info = verify.inspect(with_them, POLICY)
    assert info.phash == verify.inspect(body, POLICY).phash
