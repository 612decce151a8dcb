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
before i and i is even. The predictor is then one running sum, with the delta at each
absolute code chosen so that the sum lands on the code's value.
"""

from __future__ import annotations

import functools

import numpy as np

from gateway.errors import DecodeError

__all__ = ["decode_stream", "scatter", "spans", "stream_length"]


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


def _deltas(first: np.ndarray) -> np.ndarray:
    """The delta of each one-byte code as int32 (garbage at absolute codes, replaced later).

    With bit 6 set the byte is the signed delta itself; with bit 6 clear it is its low six
    bits, i.e. the byte with bit 7 flipped, read as signed. Byte arithmetic instead of a
    256-entry table: indexing by 200 000 bytes costs three times as much. int32 keeps the
    running sum in NumPy's fast path (uint16 is not), and wraps modulo 2^32, a multiple of 4096.
    """
    flip = ((first & 0x40) ^ 0x40) << 1
    return (first ^ flip).view(np.int8).astype(np.int32)


def _is_start(stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of the bytes that begin a code, positions of the absolute codes' first bytes).

    Only the bytes below 0x80 (a few percent of a real stream) are looked at one by one: in
    each run of them, the bytes at odd offsets are second bytes, and so is the byte after a
    run of odd length (see the module docstring)."""
    n = stream.size
    low = np.flatnonzero(stream < 0x80)
    start = np.ones(n, dtype=bool)
    if low.size == 0:
        return start, low
    new_run = np.empty(low.size, dtype=bool)
    new_run[0] = True
    np.not_equal(low[1:] - low[:-1], 1, out=new_run[1:])
    j = np.arange(low.size)
    first = np.maximum.accumulate(np.where(new_run, j, 0))
    odd = ((j - first) & 1).astype(bool)
    start[low[odd]] = False
    # A run that ends with a first byte: its second byte is the (high) byte after it.
    ends = np.flatnonzero(np.append(new_run[1:], True) & ~odd)
    after = low[ends] + 1
    start[after[after < n]] = False
    return start, low[~odd]


def _first_codes(data: memoryview | bytes, offset: int, count: int,
                 limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(stream, first bytes of its first ``count`` codes, which of those codes are absolute,
    where in the stream those begin); the stream ends at ``limit`` at most."""
    if offset < 0 or offset > limit:
        raise DecodeError("pixel data starts outside the file", field="pixel data", offset=offset)
    end = min(limit, offset + 2 * count)  # a code is at most 2 bytes
    stream = np.frombuffer(data, dtype=np.uint8, count=end - offset, offset=offset)
    start, absolute = _is_start(stream)
    first = stream[start]
    if first.size < count:
        raise DecodeError(f"pixel data ends after {first.size} of {count} pixels", field="pixel data",
                          offset=offset + stream.size)
    first = first[:count]
    at = np.flatnonzero(first < 0x80)
    absolute = absolute[:at.size]  # those among the first ``count`` codes
    if absolute.size and absolute[-1] + 1 >= stream.size:
        raise DecodeError("pixel data ends inside its last code", field="pixel data", offset=offset + int(absolute[-1]))
    return stream, first, at, absolute


def decode_stream(data: memoryview | bytes, offset: int, count: int, limit: int) -> np.ndarray:
    """The ``count`` 12-bit pixel values coded from ``offset`` (uint16), never reading past
    ``limit``; DecodeError naming "pixel data" and the byte where the stream ran out."""
    if count == 0:
        return np.zeros(0, dtype=np.uint16)
    stream, first, at, absolute = _first_codes(data, offset, count, limit)
    delta = _deltas(first)
    if at.size:
        delta[at] = 0
        value = (stream.take(absolute).astype(np.int32) << 8) | stream.take(absolute + 1)
        # The deltas' running sum at each absolute code (0 there), then the delta that makes a
        # second running sum land on the code's value.
        target = value - np.cumsum(delta, dtype=np.int32).take(at)
        step = target.copy()
        step[1:] -= target[:-1]
        delta[at] = step
    # The low 12 bits of the true predictor (exact even where int32 wrapped).
    return np.cumsum(delta, dtype=np.int32).astype(np.uint16) & np.uint16(0x0FFF)


def stream_length(data: memoryview | bytes, offset: int, count: int) -> int | None:
    """Bytes the codes of ``count`` pixels take from ``offset``, or None if the data ends first."""
    if count <= 0:
        return 0 if count == 0 else None
    try:
        stream, _, _, _ = _first_codes(data, offset, count, len(data))
    except DecodeError:
        return None
    last = int(np.flatnonzero(_is_start(stream)[0])[count - 1])
    return last + (1 if stream[last] >= 0x80 else 2)


def scatter(values: np.ndarray, left: np.ndarray, width: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The full rows x cols raster: each row's span from ``values`` in order, 0 elsewhere."""
    out = np.zeros((rows, cols), dtype=np.uint16)
    out[_inside(left.tobytes(), width.tobytes(), cols)] = values  # row-major: the stored order
    return out


@functools.lru_cache(maxsize=8)
def _inside(left: bytes, width: bytes, cols: int) -> np.ndarray:
    """Mask of the pixels inside the spans; cached, as every image of one matrix size on a
    scanner has the same round field of view (and so the same map)."""
    first = np.frombuffer(left, dtype=np.intp)[:, None]
    column = np.arange(cols)
    mask = (column >= first) & (column < first + np.frombuffer(width, dtype=np.intp)[:, None])
    mask.flags.writeable = False
    return mask
