"""How large an image any decoder accepts: one limit for every format.

Apart from ``pixels`` (which enforces it with a DecodeError naming the field) because the
formats' identification asks ``plausible`` too, and imports neither pydicom nor numpy.
"""

from __future__ import annotations

# Rows and Columns are US (PS3.3 C.7.6.3.1): at most 65535 each. The largest image any
# supported format describes is 1024 x 1024 (Signa 4.x, Somatom, Vision; Genesis in practice
# 512), so 8192 x 8192 pixels (128 MiB at 16 bits) bounds every real image with a wide margin
# while a damaged header can never make a decoder allocate gigabytes.
MAX_DIMENSION = 65535
MAX_PIXELS = 8192 * 8192


def plausible(rows: int, columns: int, frames: int = 1) -> bool:
    """Whether a size passes ``image_bytes`` (for identification, where nothing is raised)."""
    return all(isinstance(n, int) and 0 < n <= MAX_DIMENSION for n in (rows, columns, frames)) \
        and rows * columns * frames <= MAX_PIXELS
