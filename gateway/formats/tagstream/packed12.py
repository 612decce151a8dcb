"""ACR-NEMA packed 12-bit pixels: four pixels in three 16-bit words (acr-nema.md 7.2).

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
    nothing here is sized by an unchecked header field (missing trailing words read as 0).

    Laid out as little-endian bytes, the words are GDCM's byte rule: every 3 bytes hold two
    pixels, the first in the low 12 bits of those 24, the second in the high 12. So each
    pair is read as one 32-bit little-endian number (rows 3 bytes apart, one spare byte at
    the end) and both pixels are moved into the two 16-bit halves of a 32-bit word at once,
    which read as 16-bit values are the pixels in order: four whole-array operations.
    """
    pairs = -(-pixels // 2)
    need = 3 * pairs
    raw = words.astype("<u2", copy=False).view(np.uint8)
    buf = np.zeros(need + 1, dtype=np.uint8)
    n = min(raw.size, need)
    buf[:n] = raw[:n]
    cells = np.ndarray((pairs,), dtype="<u4", buffer=buf, strides=(3,)).copy()
    both = (cells & 0x00000FFF) | ((cells << 4) & 0x0FFF0000)
    return both.view("<u2")[:pixels]


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
