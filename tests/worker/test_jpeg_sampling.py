"""JPEG pictures of every chroma sampling: verified strictly, or refused for what they are.

ITU-T T.81 (A.1.1, B.2.2) allows sampling factors 1-4 per component, at most 10 blocks
in an MCU; cjpeg writes them (``-sample 4x2``) and libjpeg and browsers decode them.
TurboJPEG, under simplejpeg, decodes the samplings it names (4:4:4, 4:2:2, 4:2:0, 4:4:0,
4:1:1, 4:4:1) and refuses the others, and no other decoder here makes libjpeg's
corrupt-data warnings errors: those are ``unsupported_format``, saying so. Until
2026-12-01 they were ``corrupt`` with TurboJPEG's words, and 4:4:1 (which simplejpeg
decodes, but whose header call fails with a bare ``KeyError: 6``) too (a fresh user's);
decoded by Pillow for a few hours that day, they let one changed header byte of an
ordinary JPEG through as ``ok`` (a review's). Pillow's encoder writes three samplings
only, so the pictures here come from a small encoder of our own: a grey picture whose
every 8x8 block is DC 0 and end-of-block (one-code Huffman tables), a valid baseline
JPEG of any size and any factors.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import simplejpeg
from imageserver import ImageServer
from PIL import Image
from samples import SWEEP_POLICY, crawl, status_of

from crawler.worker import verify

POLICY = SWEEP_POLICY
# (luma factors, chroma factors) sweeping what T.81 allows: every luma factor pair with
# 1x1 chroma, and mixed chroma; each MCU at most 10 blocks (B.2.3).
SAMPLINGS = [((h, v), (1, 1), (1, 1)) for h in range(1, 5) for v in range(1, 5) if h * v <= 8] + [
    ((2, 2), (2, 1), (1, 2)),
    ((2, 1), (1, 2), (1, 1)),
    ((1, 1), (1, 1), (1, 1)),
]


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def flat_jpeg(width: int, height: int, factors: tuple[tuple[int, int], ...]) -> bytes:
    """A baseline JPEG of three components with these (h, v) sampling factors: every
    block DC 0 (code '0', category 0) then EOB (code '0'), so two bits a block."""
    hmax, vmax = max(h for h, _ in factors), max(v for _, v in factors)
    mcus = -(-width // (8 * hmax)) * -(-height // (8 * vmax))
    blocks = mcus * sum(h * v for h, v in factors)
    bits = 2 * blocks
    data = bytearray(bits // 8)
    if bits % 8:  # the last byte padded with 1-bits (T.81 F.1.2.3)
        data.append((1 << (8 - bits % 8)) - 1)
    sof = bytes([8]) + height.to_bytes(2, "big") + width.to_bytes(2, "big") + bytes([3])
    for index, (h, v) in enumerate(factors, start=1):
        sof += bytes([index, h << 4 | v, 0])
    one_code = bytes([1] + [0] * 15)  # one code of length 1
    huffman = bytes([0x00]) + one_code + b"\x00" + bytes([0x10]) + one_code + b"\x00"
    scan = bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0])
    return b"".join([
        b"\xff\xd8", segment(0xDB, bytes([0]) + bytes([1] * 64)), segment(0xC0, sof),
        segment(0xC4, huffman), segment(0xDA, scan), bytes(data), b"\xff\xd9",
    ])  # fmt: skip


def test_the_encoder_writes_what_libjpeg_decodes_strictly() -> None:
    """The control: a 4:2:0 picture of this encoder passes simplejpeg's strict decode."""
    body = flat_jpeg(37, 23, ((2, 2), (1, 1), (1, 1)))
    assert simplejpeg.decode_jpeg(body, colorspace="GRAY", strict=True).shape[:2] == (23, 37)


# The samplings TurboJPEG names, as (luma factors) over 1x1 chroma.
NAMED = {(1, 1), (2, 1), (2, 2), (1, 2), (4, 1), (1, 4)}


def expected(factors: tuple[tuple[int, int], ...]) -> str:
    named = factors[1:] == ((1, 1), (1, 1)) and factors[0] in NAMED
    return "ok" if named else "unsupported_format"


@pytest.mark.parametrize("factors", SAMPLINGS, ids=str)
@pytest.mark.parametrize("size", [(8, 8), (37, 23), (130, 67)], ids=str)
def test_every_sampling_is_checked_or_refused_and_no_cut_is_ok(
    factors: tuple[tuple[int, int], ...], size: tuple[int, int]
) -> None:
    body = flat_jpeg(*size, factors)
    want = expected(factors)
    assert status_of(body) == want, factors
    if want == "ok":
        info = verify.inspect(body, POLICY)
        assert (info.format, info.width, info.height, info.frames) == ("JPEG", *size, 1)
        assert info.phash is not None
    cuts = {status_of(body[:cut]) for cut in range(3, len(body) - 1)}
    assert cuts <= {"corrupt", want} - {"ok"}, (factors, size, cuts)


@pytest.mark.parametrize("subsampling", [0, 2], ids=["4:4:4", "4:2:0"])
def test_a_changed_sampling_byte_is_never_ok(subsampling: int) -> None:
    """Every bit of every component's sampling byte of an ordinary JPEG flipped in turn:
    ``corrupt`` or ``unsupported_format``, never ``ok`` (a review's, 2026-12-01)."""
    out = io.BytesIO()
    Image.linear_gradient("L").resize((96, 64)).convert("RGB").save(
        out, "JPEG", quality=90, subsampling=subsampling
    )
    body = out.getvalue()
    sof = body.index(b"\xff\xc0")
    seen = set()
    for component in range(3):
        at = sof + 11 + 3 * component  # Ci, then Hi|Vi
        for bit in range(8):
            damaged = bytearray(body)
            damaged[at] ^= 1 << bit
            seen.add(status := status_of(bytes(damaged)))
            assert status != "ok", (component, bit)
    assert seen <= {"corrupt", "unsupported_format"}


def test_samplings_end_to_end(tmp_path: Path, image_server: ImageServer) -> None:
    """Through a real master and worker: 4:4:1 stored byte for byte; 4x2 refused as
    unsupported, saying its factors; a cut 4:4:1 corrupt."""
    named, other = (
        flat_jpeg(130, 67, ((1, 4), (1, 1), (1, 1))),
        flat_jpeg(130, 67, ((4, 2), (1, 1), (1, 1))),
    )
    urls = {
        image_server.add("/sampling/441.jpg", named): ("ok", None),
        image_server.add("/sampling/4x2.jpg", other): ("unsupported_format", "4x2, 1x1, 1x1"),
        image_server.add("/sampling/cut.jpg", named[:-9]): ("corrupt", None),
    }
    out, rows = crawl(tmp_path, list(urls))
    for row in rows.values():
        status, words = urls[row["url"]]
        assert row["status"] == status, row
        assert words is None or words in row["error"], row
        if status == "ok":
            assert (out / row["path"]).read_bytes() == named
