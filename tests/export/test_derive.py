"""``--resize``'s derived images over the class of sizes: every mode, any width and
height (elongated strips included), any PX; real Pillow, in-process.

Until 2026-12-01 ``keep_ratio`` rounded the shorter side of an elongated image to 0
(1x1000 at 256: "cannot write empty image", a bad_image row), and ``border`` shrank
such a strip to nothing before padding it (a blank square).
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from crawler.export.derive import MODES, derive

SIDES = st.integers(min_value=1, max_value=600)
LENGTHS = st.integers(min_value=1, max_value=3000)


def picture(width: int, height: int, alpha: bool) -> bytes:
    """A black picture (opaque black when ``alpha``), as PNG: the derived image must show it."""
    out = io.BytesIO()
    Image.new(
        "RGBA" if alpha else "RGB", (width, height), (0, 0, 0, 255)[: 4 if alpha else 3]
    ).save(out, "PNG")
    return out.getvalue()


def check(width: int, height: int, side: int, mode: str, alpha: bool) -> None:
    body, extension, got_w, got_h = derive(picture(width, height, alpha), side, mode)
    assert extension == ("png" if alpha else "jpg")
    with Image.open(io.BytesIO(body)) as image:
        image.load()
        assert image.size == (got_w, got_h)
        darkest = image.convert("L").getextrema()[0]
    assert darkest < 128, "the picture is not in its derived image"
    if mode == "keep_ratio":
        longer, shorter = max(width, height), min(width, height)
        assert max(got_w, got_h) == side
        assert min(got_w, got_h) == max(1, round(shorter * side / longer))
        assert width < height or got_w >= got_h  # the longer side stays the longer
    else:
        assert (got_w, got_h) == (side, side)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=60, deadline=None)
@given(width=LENGTHS, height=LENGTHS, side=SIDES, alpha=st.booleans())
def test_every_size_and_side_gives_an_image(
    mode: str, width: int, height: int, side: int, alpha: bool
) -> None:
    check(width, height, side, mode, alpha)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [(1, 1000), (1000, 1), (1, 1), (2, 3000), (3000, 7), (1, 2)])
@pytest.mark.parametrize("side", [1, 2, 255, 256, 1024])
def test_strips_and_single_pixels(mode: str, size: tuple[int, int], side: int) -> None:
    """The field case (1x1000 at 256) and its neighbours, each mode."""
    check(*size, side, mode, alpha=False)
