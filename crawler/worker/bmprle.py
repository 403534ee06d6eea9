"""A BMP's run-length encoded rows (BI_RLE8, BI_RLE4), decoded one step per command.

Pillow's own decoder (``BmpImagePlugin.BmpRleDecoder``) is Python, and two of its
commands cost one loop iteration per pixel: end of line pads the row a byte at a time,
and an RLE4 run is built a pixel at a time. A few bytes a row then cost the width in
iterations: an 8000 x 8000 RLE8 BMP of 32 KiB took 27 s, within ``max_pixels``, while
holding a decoding permit (a review's, 2026-12-01). This decoder gives the same bytes
(tests/worker/test_bmp_rle.py compares it with Pillow's on a sweep of files) with one
step per command: padding by ``bytes(n)``, runs by repetition and slicing, so its work
is bounded by the file's bytes and the image's pixels. ``verify`` registers it for
"bmp_rle" with ``Image.register_decoder``.

The commands are Microsoft's ("Bitmap Compression", BI_RLE8 and BI_RLE4): a count and
a value (a run); 0 0 (end of line), 0 1 (end of bitmap), 0 2 dx dy (delta), 0 n and n
indices (absolute, padded to 16 bits). Pillow's readings of the cases the documents
leave open are kept: a run is cut at the row's end, a row is padded with index 0, a cut
file ends the image where its bytes end.
"""

from __future__ import annotations

from PIL import ImageFile

_HIGH = bytes(value >> 4 for value in range(256))  # an RLE4 byte's first pixel
_LOW = bytes(value & 0x0F for value in range(256))  # and its second


class RleDecoder(ImageFile.PyDecoder):
    """Drop-in for Pillow's BmpRleDecoder: same args (rawmode, rle4, direction)."""

    _pulls_fd = True

    def decode(self, buffer: bytes) -> tuple[int, int]:
        assert self.fd is not None
        odd = self.fd.tell() % 2  # Pillow aligns absolute runs by the file's offsets
        pixels = _rows(self.fd.read(), odd, self.state, self.args[1])
        rawmode = "L" if self.mode in {"1", "L"} else "P"
        self.set_as_raw(bytes(pixels), rawmode, (0, self.args[-1]))
        return -1, 0


def _nibbles(packed: bytes, count: int) -> bytes:
    """The first ``count`` 4-bit pixels of ``packed``, one a byte, high nibble first."""
    pixels = bytearray(2 * len(packed))
    pixels[0::2] = packed.translate(_HIGH)
    pixels[1::2] = packed.translate(_LOW)
    return bytes(pixels[:count])


def _run(value: int, count: int, rle4: bool) -> bytes:
    """An encoded run of ``count`` pixels (RLE4: the byte's two pixels alternating)."""
    if not rle4:
        return bytes((value,)) * count
    return (bytes((value >> 4, value & 0x0F)) * ((count + 1) // 2))[:count]


def _rows(data: bytes, odd: int, state: ImageFile.PyCodecState, rle4: bool) -> bytearray:
    """The pixel indices the commands in ``data`` give, Pillow's way, bottom row first;
    ``odd``: whether ``data`` starts at an odd offset in its file."""
    xsize, ysize = state.xsize, state.ysize
    pixels = bytearray()
    need = xsize * ysize
    x = 0  # Pillow's column: not wrapped by an absolute run that crosses a row
    at = 0
    while len(pixels) < need and at + 2 <= len(data):
        count, value = data[at], data[at + 1]
        at += 2
        if count:  # a run, cut at the row's end
            count = max(0, min(count, xsize - x))
            pixels += _run(value, count, rle4)
            x += count
        elif value == 0:  # end of line
            pixels += bytes(-len(pixels) % xsize)
            x = 0
        elif value == 1:  # end of bitmap
            break
        elif value == 2:  # delta: right, then up (rows are stored bottom first)
            if at + 2 > len(data):
                break
            right, up = data[at], data[at + 1]
            at += 2
            pixels += bytes(min(need - len(pixels), right + up * xsize))
            x = len(pixels) % xsize
        else:  # absolute: ``value`` indices, padded to a 16-bit boundary
            count = min(need - len(pixels), value)
            size = (count + 1) // 2 if rle4 else count
            packed = data[at : at + size]
            at += size
            pixels += _nibbles(packed, count) if rle4 else packed
            if len(packed) < size or len(pixels) == need:
                break
            x += value
            at += (odd + at) % 2
    return pixels
