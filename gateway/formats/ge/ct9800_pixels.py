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
before i and i is even; so the second byte of every absolute code is the byte after its first.
The predictor is then the running sum of the one-byte deltas plus, from each absolute code to
the next, the constant that makes it land on that code's value.
"""

from __future__ import annotations

import functools

import numpy as np

from gateway.errors import DecodeError

__all__ = ["decode_stream", "predictor", "scatter", "spans", "stream_length"]


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
    """The delta of each one-byte code as int8 (garbage at absolute codes, replaced later).

    A one-byte code is a 7-bit two's complement number in its low bits: ``(b ^ 0x40) + 0x40``
    (modulo 256) moves those into a signed byte (0x80..0xBF to 0..63, 0xC0..0xFF to -64..-1).
    Two byte operations instead of a 256-entry table: indexing by 200 000 bytes costs more.
    """
    shifted = first ^ np.uint8(0x40)
    shifted += np.uint8(0x40)
    return shifted.view(np.int8)


def _absolute_starts(stream: np.ndarray) -> np.ndarray:
    """Positions of the absolute codes' first bytes; each one's second byte follows it.

    Only the bytes below 0x80 (a few percent of a real stream) are looked at one by one: in
    each run of them, the bytes at even offsets begin absolute codes and those at odd offsets
    end them (a run of odd length ends with a first byte, whose second is the byte after it:
    see the module docstring)."""
    low = np.flatnonzero(stream < 0x80)
    if low.size == 0:
        return low
    new_run = np.empty(low.size, dtype=bool)
    new_run[0] = True
    np.not_equal(low[1:] - low[:-1], 1, out=new_run[1:])
    j = np.arange(low.size)
    first = np.maximum.accumulate(np.where(new_run, j, 0))
    return low[((j - first) & 1) == 0]


def _codes(data: memoryview | bytes, offset: int, count: int,
           limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the bytes of the first ``count`` codes, where in them the absolute codes begin, and
    those codes' numbers), checked: the stream ends at ``limit`` at most and must hold all
    ``count`` codes whole."""
    if offset < 0 or offset > limit:
        raise DecodeError("pixel data starts outside the file", field="pixel data", offset=offset)
    n = min(limit, offset + 2 * count) - offset  # a code is at most 2 bytes
    stream = np.frombuffer(data, dtype=np.uint8, count=n, offset=offset)
    absolute = _absolute_starts(stream)
    seconds = absolute.size - int(absolute.size > 0 and absolute[-1] + 1 >= n)  # inside the stream
    if n - seconds < count:
        raise DecodeError(f"pixel data ends after {n - seconds} of {count} pixels", field="pixel data",
                          offset=offset + n)
    # Code k begins at byte k plus one for each absolute code before it; absolute code i is
    # code number absolute[i] - i.
    at = absolute - np.arange(absolute.size)  # code numbers of the absolute codes
    last = count - 1 + int(np.searchsorted(at, count - 1))
    used = int(np.searchsorted(at, count - 1, side="right"))
    if used and absolute[used - 1] + 1 >= n:
        raise DecodeError("pixel data ends inside its last code", field="pixel data",
                          offset=offset + int(absolute[used - 1]))
    return stream[:last + (1 if stream[last] >= 0x80 else 2)], absolute[:used], at[:used]


def decode_stream(data: memoryview | bytes, offset: int, count: int, limit: int) -> np.ndarray:
    """The ``count`` 12-bit pixel values coded from ``offset`` (uint16), never reading past
    ``limit``; DecodeError naming "pixel data" and the byte where the stream ran out."""
    pixels = predictor(data, offset, count, limit).astype(np.uint16)
    pixels &= np.uint16(0x0FFF)
    return pixels


def predictor(data: memoryview | bytes, offset: int, count: int, limit: int) -> np.ndarray:
    """The predictor at each of the ``count`` pixels coded from ``offset`` modulo 2^32 (int32),
    checked as ``decode_stream``; a pixel is its low 12 bits."""
    if count == 0:
        return np.zeros(0, dtype=np.int32)
    stream, absolute, at = _codes(data, offset, count, limit)
    if absolute.size == 0:
        total = np.cumsum(_deltas(stream), dtype=np.int32)
    else:
        keep = np.ones(stream.size, dtype=bool)
        keep[absolute + 1] = False
        small = _deltas(stream[keep])
        small[at] = 0
        # The running sum of the one-byte deltas, then from each absolute code on, the
        # constant that makes it land on the code's value (np.repeat of one number per
        # absolute code: cheaper than np.add.reduceat's sums between them, ~40 ns each).
        total = np.cumsum(small, dtype=np.int32)  # int32: it wraps modulo 2^32, a multiple of 4096
        value = (stream.take(absolute).astype(np.int32) << 8) | stream.take(absolute + 1)
        value -= total.take(at)
        lengths = np.empty(at.size, dtype=np.intp)
        np.subtract(at[1:], at[:-1], out=lengths[:-1])
        lengths[-1] = count - at[-1]
        total[at[0]:] += np.repeat(value, lengths)
    return total


def stream_length(data: memoryview | bytes, offset: int, count: int) -> int | None:
    """Bytes the codes of ``count`` pixels take from ``offset``, or None if the data ends first."""
    if count <= 0:
        return 0 if count == 0 else None
    try:
        return _codes(data, offset, count, len(data))[0].size
    except DecodeError:
        return None


def scatter(values: np.ndarray, left: np.ndarray, width: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The full rows x cols raster of 12-bit pixels (uint16): each row's span from the low 12
    bits of ``values`` (``predictor``'s sums, or pixels) in order, 0 elsewhere. The sums are
    cast and cut to 12 bits in the raster itself: no array of the pixels on the way, one
    image-sized temporary less per image."""
    out = np.zeros((rows, cols), dtype=np.uint16)
    out[_inside(left.tobytes(), width.tobytes(), cols)] = values  # row-major: the stored order; modulo 2^16
    out &= np.uint16(0x0FFF)
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
