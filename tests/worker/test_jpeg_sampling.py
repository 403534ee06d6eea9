"""JPEG pictures of every chroma sampling are verified, whatever TurboJPEG names.

ITU-T T.81 (A.1.1, B.2.2) allows sampling factors 1-4 per component, at most 10 blocks
in an MCU; cjpeg writes them (``-sample 4x2``) and libjpeg and browsers decode them.
TurboJPEG, under simplejpeg, refuses the ones it has no name for, and until 2026-12-01
they were ``corrupt`` (a fresh user's). Pillow's encoder writes three samplings only, so
the pictures here come from a small encoder of our own: a grey picture whose every
8x8 block is DC 0 and end-of-block (one-code Huffman tables), a valid baseline JPEG of
any size and any factors.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import simplejpeg
from conftest import read_rows, run_cli
from imageserver import ImageServer

from crawler.config import Policy
from crawler.exceptions import VerifyFailure
from crawler.worker import verify

POLICY = Policy(max_pixels=4_000_000)
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


def status_of(body: bytes) -> str:
    verify.configure(POLICY)
    try:
        verify.inspect(body, POLICY)
    except VerifyFailure as failure:
        return failure.status
    return "ok"


def test_the_encoder_writes_what_libjpeg_decodes_strictly() -> None:
    """The control: a 4:2:0 picture of this encoder passes simplejpeg's strict decode."""
    body = flat_jpeg(37, 23, ((2, 2), (1, 1), (1, 1)))
    assert simplejpeg.decode_jpeg(body, colorspace="GRAY", strict=True).shape[:2] == (23, 37)


@pytest.mark.parametrize("factors", SAMPLINGS, ids=str)
@pytest.mark.parametrize("size", [(8, 8), (37, 23), (130, 67)], ids=str)
def test_every_sampling_is_ok_and_every_cut_corrupt(
    factors: tuple[tuple[int, int], ...], size: tuple[int, int]
) -> None:
    body = flat_jpeg(*size, factors)
    verify.configure(POLICY)
    info = verify.inspect(body, POLICY)
    assert (info.format, info.width, info.height, info.frames) == ("JPEG", *size, 1)
    assert info.phash is not None
    cuts = {status_of(body[:cut]) for cut in range(3, len(body) - 1)}
    assert cuts <= {"corrupt"}, (factors, size, cuts)


def test_an_unusual_sampling_end_to_end(tmp_path: Path, image_server: ImageServer) -> None:
    """Through a real master and worker: stored byte for byte; a cut copy is corrupt."""
    body = flat_jpeg(130, 67, ((4, 2), (1, 1), (1, 1)))
    whole = image_server.add("/sampling/whole.jpg", body)
    cut = image_server.add("/sampling/cut.jpg", body[: len(body) - 9])
    listing = tmp_path / "list.txt"
    listing.write_text(f"{whole}\n{cut}\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli(
        "master", str(listing), "--port", "0", "--bind", "127.0.0.1", "--output", str(out),
        "--local-workers", "1", "--no-progress", "--no-report", "--max-failure-rate", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {row["url"]: row for row in read_rows(out / "manifest.jsonl")}
    assert rows[whole]["status"] == "ok", rows[whole]
    assert (out / rows[whole]["path"]).read_bytes() == body
    assert (rows[cut]["status"], rows[cut]["path"]) == ("corrupt", None), rows[cut]
