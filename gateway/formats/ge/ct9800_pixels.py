"""GE CT 9800 pixel data: the line map and the 9800 byte code, vectorised.

Facts: shared/formats/ge-9800.md 4 (single source: dicom3tools). A row either is stored in
full or, with the line map, only its centred span: half-length ``h`` per row, columns
``cols // 2 - h`` up to ``+ 2h``; the rest of the row is 0. The stored pixels of the whole
image are one stream of codes, with one predictor P that starts at 0 and runs across rows:

* ``1xxxxxxx``: a one-byte delta; with bit 6 set the byte is a signed -64..-1, else the low six
  bits are 0..63. P += delta.
* ``0xxxxxxx yyyyyyyy``: P = the 15-bit absolute value.

Each pixel is P & 0x0FFF. (Genesis DPCM gives the top bit the opposite meaning.)

Where codes start, without walking the stream: a byte with the top bit set always ends a code
(a one-byte code, or the second byte of an absolute one), so the byte after it starts one; in
a run of bytes below 0x80 that follows such a byte, codes start at every second byte. So byte
i starts a code exactly when the number of bytes below 0x80 between the last byte >= 0x80
before i and i is even. The predictor is then one running sum restarted at each absolute code
(uint16 arithmetic: 4096 divides 65536, so the 12 bits kept are exact).
"""

from __future__ import annotations

import numpy as np

from gateway.errors import DecodeError

__all__ = ["spans", "decode_stream", "stream_length", "scatter"]


def spans(half: np.ndarray, cols: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """(first column, width) of each row's stored span from the map's half-lengths, checked:
    a span must lie within the row (``offset``: where the map starts, for the error)."""
    half = half.astype(np.intp)
    left = cols // 2 - half
    width = 2 * half
    bad = np.flatnonzero((half < 0) | (left < 0) | (left + width > cols))
    if bad.size:
        r = int(bad[0])
        raise DecodeError(f"image map row {r}: half-length {int(half[r])} does not fit {cols} columns",
                          field="half_lengths", offset=offset + 2 * r)
    return left, width


def _starts(stream: np.ndarray) -> np.ndarray:
    """Indices of the bytes of ``stream`` that begin a code (see the module docstring)."""
    n = stream.size
    index = np.arange(n, dtype=np.intp)
    last_high = np.maximum.accumulate(np.where(stream >= 0x80, index, -1))
    before = np.empty(n, dtype=np.intp)
    before[0] = -1
    before[1:] = last_high[:-1]
    return np.flatnonzero(((index - before - 1) & 1) == 0)


def _first_codes(data: memoryview | bytes, offset: int, count: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(stream, starts of its first ``count`` codes); the stream ends at ``limit`` at most."""
    if offset < 0 or offset > limit:
        raise DecodeError("pixel data starts outside the file", field="pixel data", offset=offset)
    end = min(limit, offset + 2 * count)  # a code is at most 2 bytes
    stream = np.frombuffer(data, dtype=np.uint8, count=end - offset, offset=offset)
    if stream.size == 0:
        raise DecodeError(f"pixel data ends before the first of {count} pixels", field="pixel data", offset=offset)
    starts = _starts(stream)
    if starts.size < count:
        raise DecodeError(f"pixel data ends after {starts.size} of {count} pixels", field="pixel data",
                          offset=offset + stream.size)
    starts = starts[:count]
    last = int(starts[-1])
    if stream[last] < 0x80 and last + 1 >= stream.size:
        raise DecodeError("pixel data ends inside its last code", field="pixel data", offset=offset + last)
    return stream, starts


def decode_stream(data: memoryview | bytes, offset: int, count: int, limit: int) -> np.ndarray:
    """The ``count`` 12-bit pixel values coded from ``offset`` (uint16), never reading past
    ``limit``; DecodeError naming "pixel data" and the byte where the stream ran out."""
    if count == 0:
        return np.zeros(0, dtype=np.uint16)
    stream, starts = _first_codes(data, offset, count, limit)
    b0 = stream.take(starts)
    absolute = b0 < 0x80
    # One-byte deltas: bit 6 set -> the byte as int8 (-64..-1), else the low six bits.
    delta = np.where(b0 & 0x40, b0.astype(np.uint16) | 0xFF00, b0 & 0x3F).astype(np.uint16)
    at = np.flatnonzero(absolute)
    delta[at] = 0
    running = np.cumsum(delta, dtype=np.uint16)
    if at.size:
        value = (b0[at].astype(np.uint16) << 8) | stream.take(starts[at] + 1)
        # After absolute code k: P = value_k + running - running_k.
        restart = np.zeros(count, dtype=np.uint16)
        restart[at] = value - running[at]
        # The last absolute code at or before each pixel; 0 before the first, where
        # ``restart[0]`` is 0 unless pixel 0 is itself absolute.
        last = np.maximum.accumulate(np.where(absolute, np.arange(count), 0))
        running += restart.take(last)
    return running & np.uint16(0x0FFF)


def stream_length(data: memoryview | bytes, offset: int, count: int) -> int | None:
    """Bytes the codes of ``count`` pixels take from ``offset``, or None if the data ends first."""
    if count <= 0:
        return 0 if count == 0 else None
    try:
        stream, starts = _first_codes(data, offset, count, len(data))
    except DecodeError:
        return None
    last = int(starts[-1])
    return last + (1 if stream[last] >= 0x80 else 2)


def scatter(values: np.ndarray, left: np.ndarray, width: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The full rows x cols raster: each row's span from ``values`` in order, 0 elsewhere."""
    out = np.zeros(rows * cols, dtype=np.uint16)
    total = int(width.sum())
    if total:
        first = np.cumsum(width) - width
        index = np.repeat(np.arange(rows) * cols + left - first, width) + np.arange(total)
        out[index] = values
    return out.reshape(rows, cols)
