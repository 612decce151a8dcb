"""A small greyscale PNG of an instance's first frame, for the console's list of arrivals.

The console shows the operator that an image arrived and looks like an image (not noise, not a
blank): a thumbnail of at most ``SIZE`` pixels a side, windowed to the 1st-99th percentile of
its own values, is enough. PNG is written here directly (one IDAT, zlib): the format needs
only a signature, three chunks and a CRC per chunk, and no imaging library is worth a
dependency for that.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from pydicom.dataset import Dataset

from gateway.dicom.deferred import is_deferred

SIZE = 128


def thumbnail(ds: Dataset, size: int = SIZE) -> bytes | None:
    """PNG bytes, or None when the instance has no greyscale pixels we can show."""
    pixels = _first_frame(ds)
    if pixels is None:
        return None
    step = max(1, -(-max(pixels.shape) // size))  # ceil: the thumbnail fits in size x size
    small = pixels[::step, ::step].astype(np.float64)
    lo, hi = np.percentile(small, [1, 99]) if small.size else (0.0, 0.0)
    if hi <= lo:
        hi = lo + 1
    grey = np.clip((small - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        grey = 255 - grey
    return png(grey)


def _first_frame(ds: Dataset) -> np.ndarray | None:
    if "PixelData" not in ds or int(ds.get("SamplesPerPixel", 1)) != 1:
        return None
    if is_deferred(ds, "PixelData"):
        return None  # left in its file because it is large: not loaded for a preview
    try:
        array = ds.pixel_array
    except Exception:  # noqa: BLE001 - a compressed or odd instance simply has no preview
        return None
    if array.ndim == 3:
        array = array[0]
    return array if array.ndim == 2 else None


def png(grey: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG of a 2-D uint8 array."""
    height, width = grey.shape
    raw = np.zeros((height, width + 1), np.uint8)  # each row: filter type 0, then its bytes
    raw[:, 1:] = grey
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) \
        + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
