"""ACR-NEMA packed 12-bit pixels: four pixels in three 16-bit words (acr-nema.md §7.2).

The rule works on 16-bit words already in host order, filling pixels from the least
significant bit upward (dicom3tools ``frompack.h``); for a little-endian stream it is the
byte rule p0 = b0 + 256·(b1 & 0x0F), p1 = (b1 >> 4) + 16·b2 that GDCM uses. A big-endian
stream therefore has its words swapped first, never the bytes unpacked directly.
"""

from __future__ import annotations

import numpy as np


def packed_length(pixels: int) -> int:
    """Bytes a packed element needs for ``pixels`` pixels: ceil(12·n / 8), padded to even."""
    size = (pixels * 12 + 7) // 8
    return size + (size & 1)


def unpack12(words: np.ndarray, pixels: int) -> np.ndarray:
    """The first ``pixels`` 12-bit values held in ``words`` (uint16, host order).

    The caller has checked that ``words`` holds at least ``packed_length(pixels)`` bytes, so
    nothing here is sized by an unchecked header field.
    """
    groups = -(-pixels // 4)  # whole groups of 4 pixels (3 words)
    need = groups * 3
    if words.size >= need:
        w = words[:need].reshape(groups, 3)
    else:  # the last group is cut short: its missing words read as 0
        w = np.zeros(need, dtype=np.uint16)
        w[:words.size] = words
        w = w.reshape(groups, 3)
    w0, w1, w2 = w[:, 0], w[:, 1], w[:, 2]
    out = np.empty((groups, 4), dtype=np.uint16)  # every value fits 16 bits: no wider type
    np.bitwise_and(w0, 0x0FFF, out=out[:, 0])
    out[:, 1] = (w0 >> 12) | ((w1 & 0x00FF) << 4)
    out[:, 2] = (w1 >> 8) | ((w2 & 0x000F) << 8)
    np.right_shift(w2, 4, out=out[:, 3])
    return out.reshape(-1)[:pixels]


def pack12(pixels: np.ndarray) -> np.ndarray:
    """The 16-bit words (host order) that hold ``pixels`` packed; the inverse of ``unpack12``.

    Used by the simulator to write packed files; values are masked to 12 bits.
    """
    count = pixels.size
    groups = -(-count // 4)
    p = np.zeros(groups * 4, dtype=np.uint32)
    p[:count] = np.asarray(pixels, dtype=np.uint32).reshape(-1) & 0x0FFF
    p = p.reshape(groups, 4)
    w = np.empty((groups, 3), dtype=np.uint16)
    w[:, 0] = (p[:, 0] | ((p[:, 1] & 0x000F) << 12)) & 0xFFFF
    w[:, 1] = ((p[:, 1] >> 4) | ((p[:, 2] & 0x00FF) << 8)) & 0xFFFF
    w[:, 2] = ((p[:, 2] >> 8) | (p[:, 3] << 4)) & 0xFFFF
    words = w.reshape(-1)
    return words[: packed_length(count) // 2]
