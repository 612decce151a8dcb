"""GE Genesis pixel encodings: line-mapped packing and the DPCM byte code, vectorised.

Compression codes (ge-genesis.md 7.2): 0 and 1 plain raster, 2 packed (each row stores only
a span described by the line map), 3 DPCM over the whole raster, 4 DPCM over the spans only.
All samples are 16-bit; the result is always a full rows x cols int16 raster, pixels outside
a packed span are 0 (as dicom3tools and SIVIC do).

The DPCM code (7.4) is a stream of 1-, 2- and 3-byte codes: ``0xxxxxxx`` a 7-bit signed
delta, ``10xxxxxx yyyyyyyy`` a 14-bit signed delta, ``11xxxxxx hi lo`` a new absolute value;
one predictor runs over the whole image modulo 65536. Decoding it byte by byte in Python
costs ~13 ms per 256² image, so it is vectorised in two steps:

1. *Where do codes start?* Byte i is certainly a code start when byte i-1 is < 0x80 (a
   one-byte code, or the end of a longer one) and byte i-2 is < 0xC0 (so no three-byte code
   starting at i-2 can cover i). Those sync points split the stream into short segments;
   all segments are walked in parallel, one code per step (a handful of NumPy steps on real
   data). A stream without sync points (noise, or hostile input) would need many steps, so
   after ``_WALK_STEPS`` steps the remainder is solved by a parallel prefix scan of the
   3-state "continuation bytes pending" automaton (O(n log n), still loop-free per byte).
2. *Values.* Each code gives a delta (7- or 14-bit, sign-extended) or an absolute value.
   With C = the running sum of deltas (wrapping uint16), the pixel after the last absolute
   code k is abs_k + C_i - C_k: one running sum with a correction at each absolute code,
   where C_k comes from the sums of the segments between absolute codes.

Every failure (stream too short, code cut off by the end of the data, line map outside the
raster) raises ``DecodeError`` naming the field and byte offset. Nothing is allocated from
an unchecked header value: callers check rows x cols against limits first, and the stream is
never read beyond the data.
"""

from __future__ import annotations

import numpy as np

from gateway.errors import DecodeError

__all__ = ["raster", "packed", "dpcm", "dpcm_packed", "read_line_map", "code_starts"]

_CODE_LEN = np.ones(256, dtype=np.intp)
_CODE_LEN[0x80:0xC0] = 2
_CODE_LEN[0xC0:] = 3
_CODE_LEN8 = _CODE_LEN.astype(np.uint8)
_CODE_LEN_LIST = _CODE_LEN.tolist()
_WALK_STEPS = 48
_FEW_CURSORS = 32


def raster(data: memoryview | bytes, offset: int, rows: int, cols: int) -> np.ndarray:
    """Codes 0 and 1: rows x cols big-endian int16 at ``offset``."""
    need = rows * cols * 2
    if offset < 0 or offset + need > len(data):
        raise DecodeError(
            f"pixel data needs {need} bytes at {offset}, the data has {max(0, len(data) - offset)}",
            field="pixel data", offset=offset,
        )
    return np.frombuffer(data, dtype=">i2", count=rows * cols, offset=offset).astype(np.int16).reshape(rows, cols)


def read_line_map(data: memoryview | bytes, offset: int, length: int, rows: int,
                  cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The line map (7.3): per row, Uint16 ``left`` then Uint16 ``width``; checked against cols."""
    if length != 4 * rows:
        raise DecodeError(f"line map length {length} is not 4 x {rows} rows", field="l_unpack", offset=offset)
    if offset < 0 or offset + length > len(data):
        raise DecodeError("line map lies outside the data", field="p_unpack", offset=offset)
    pairs = np.frombuffer(data, dtype=">u2", count=2 * rows, offset=offset).astype(np.intp).reshape(rows, 2)
    left, width = pairs[:, 0], pairs[:, 1]
    bad = np.flatnonzero(left + width > cols)
    if bad.size:
        r = int(bad[0])
        raise DecodeError(
            f"line map row {r}: left {int(left[r])} + width {int(width[r])} exceeds {cols} columns",
            field="line map", offset=offset + 4 * r,
        )
    return left, width


def _scatter(values: np.ndarray, left: np.ndarray, width: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Place the stored span pixels of each row; everything outside the spans is 0."""
    out = np.zeros(rows * cols, dtype=np.int16)
    total = int(width.sum())
    if total:
        first = np.cumsum(width) - width  # index in ``values`` of each row's first pixel
        within = np.arange(total) - np.repeat(first, width)
        index = np.repeat(np.arange(rows) * cols + left, width) + within
        out[index] = values
    return out.reshape(rows, cols)


def packed(data: memoryview | bytes, offset: int, left: np.ndarray, width: np.ndarray, rows: int,
           cols: int) -> np.ndarray:
    """Code 2: the spans' pixels, big-endian int16, one row after the other."""
    total = int(width.sum())
    if offset < 0 or offset + 2 * total > len(data):
        raise DecodeError(
            f"packed pixel data needs {2 * total} bytes at {offset}, the data has {max(0, len(data) - offset)}",
            field="pixel data", offset=offset,
        )
    values = np.frombuffer(data, dtype=">i2", count=total, offset=offset).astype(np.int16)
    return _scatter(values, left, width, rows, cols)


def dpcm(data: memoryview | bytes, offset: int, rows: int, cols: int) -> np.ndarray:
    """Code 3: the DPCM stream at ``offset`` decoded to a rows x cols raster."""
    return _dpcm_values(data, offset, rows * cols).reshape(rows, cols)


def dpcm_packed(data: memoryview | bytes, offset: int, left: np.ndarray, width: np.ndarray, rows: int,
                cols: int) -> np.ndarray:
    """Code 4: one DPCM stream over the spans of the line map (predictor carried across rows)."""
    return _scatter(_dpcm_values(data, offset, int(width.sum())), left, width, rows, cols)


def _dpcm_values(data: memoryview | bytes, offset: int, count: int) -> np.ndarray:
    if offset < 0 or offset > len(data):
        raise DecodeError("DPCM stream starts outside the data", field="pixel data", offset=offset)
    if count == 0:
        return np.zeros(0, dtype=np.int16)
    # A code is at most 3 bytes: more than 3 x count bytes are never needed.
    end = min(len(data), offset + 3 * count)
    stream = np.frombuffer(data, dtype=np.uint8, count=end - offset, offset=offset)
    starts = np.flatnonzero(code_starts(stream))
    if starts.size < count:
        raise DecodeError(
            f"DPCM stream ends after {starts.size} of {count} pixels",
            field="pixel data", offset=offset + len(stream),
        )
    starts = starts[:count]
    last = int(starts[-1])
    if last + int(_CODE_LEN[stream[last]]) > stream.size:
        raise DecodeError("DPCM stream ends inside its last code", field="pixel data", offset=offset + last)
    return _values(stream, starts)


def dpcm_length(data: memoryview | bytes, offset: int, count: int) -> int | None:
    """Bytes the DPCM codes of ``count`` pixels occupy from ``offset``, or None if the data
    ends first. No header field gives the size of a DPCM image; serial lines need it."""
    if count <= 0 or offset < 0 or offset >= len(data):
        return None
    end = min(len(data), offset + 3 * count)
    stream = np.frombuffer(data, dtype=np.uint8, count=end - offset, offset=offset)
    starts = np.flatnonzero(code_starts(stream))
    if starts.size < count:
        return None
    last = int(starts[count - 1])
    size = last + int(_CODE_LEN[stream[last]])
    return size if size <= stream.size else None


def code_starts(stream: np.ndarray) -> np.ndarray:
    """Boolean mask of the bytes of ``stream`` (uint8) that begin a code, from byte 0 on."""
    n = stream.size
    if n == 0:
        return np.zeros(0, dtype=bool)
    one_byte = stream < 0x80
    start = np.empty(n + 3, dtype=bool)  # three sentinels past the end: every walk stops there
    start[0] = True
    if n > 1:
        start[1] = one_byte[0]
    np.logical_and(one_byte[1:-1], stream[:-2] < 0xC0, out=start[2:n])
    start[n:] = True
    # Cursors start at the sync points holding a multi-byte code; each walks code by code
    # until it lands on a position already known to start a code (a sync point, or one
    # another walk marked): every true start lies on the one path from byte 0, so a walk
    # from a true start meets the next sync point exactly. The last few cursors walk in
    # plain Python: for a handful, NumPy's per-call cost is most of a step.
    cursor = np.flatnonzero(start[:n] & ~one_byte)
    for _ in range(_WALK_STEPS):
        if cursor.size <= _FEW_CURSORS:
            if _walk_few(stream, start, cursor.tolist(), n):
                return start[:n]
            break
        cursor = cursor + _CODE_LEN8.take(stream.take(cursor))
        cursor = cursor[~start.take(cursor)]
        start[cursor] = True
    return _scan_starts(stream)


def _walk_few(stream: np.ndarray, start: np.ndarray, cursors: list[int], n: int) -> bool:
    """Walk each cursor to a known start; False if one needs more than ``_WALK_STEPS``."""
    for c in cursors:
        for _ in range(_WALK_STEPS):
            c += _CODE_LEN_LIST[stream[c]]
            if c >= n or start[c]:
                break
            start[c] = True
        else:
            return False
    return True


def _scan_starts(stream: np.ndarray) -> np.ndarray:
    """Code starts by a parallel prefix scan over the 3-state automaton (the fallback).

    The state before byte i is the number of continuation bytes still pending (0, 1 or 2);
    byte i maps state 0 to its code length - 1, state 1 to 0 and state 2 to 1. Composing
    these maps is associative, so a Hillis-Steele scan gives the state before every byte in
    log2(n) vector steps. ``maps[i, s]`` is the state after byte i when the state before
    the covered bytes was s.
    """
    n = stream.size
    maps = np.empty((n, 3), dtype=np.uint8)
    maps[:, 0] = _CODE_LEN.take(stream) - 1
    maps[:, 1] = 0
    maps[:, 2] = 1
    flat = maps.reshape(-1)
    row_base = (np.arange(n, dtype=np.intp) * 3)[:, None]
    step = 1
    while step < n:
        # new[i, s] = maps[i, maps[i - step, s]]: the earlier part first, then the later one.
        earlier = maps[:-step]
        composed = flat.take(row_base[step:] + earlier)
        maps[step:] = composed
        step *= 2
    start = np.empty(n, dtype=bool)
    start[0] = True
    start[1:] = maps[:-1, 0] == 0  # state before byte i, starting from state 0 at byte 0
    return start


def _values(stream: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Pixel values from the code starts (wrapping uint16 arithmetic, returned as int16)."""
    b0 = stream.take(starts)
    # Right for one-byte codes (the 7-bit delta, sign-extended); longer codes are patched below.
    delta = ((b0.astype(np.int16) ^ 0x40) - np.int16(0x40)).view(np.uint16)
    longer = np.flatnonzero(b0 >= 0x80)
    first = b0[longer]
    second = stream.take(starts.take(longer) + 1)  # the last code is known to be complete
    absolute = first >= 0xC0
    two = longer[~absolute]
    word = (first[~absolute].astype(np.uint16) << 8) | second[~absolute]
    delta[two] = ((word << 2).view(np.int16) >> 2).view(np.uint16)  # sign-extend 14 bits
    at = longer[absolute]
    if at.size:
        value = (second[absolute].astype(np.uint16) << 8) | stream.take(starts.take(at) + 2)
        delta[at] = 0
        # The running sum just before each absolute code, from the sums of the segments
        # between them (reduceat: one pass, no full running sum). A segment of a repeated
        # index sums to delta[at] = 0, as it should.
        segments = np.add.reduceat(delta, np.concatenate(([0], at)), dtype=np.uint16)
        correction = value - np.cumsum(segments, dtype=np.uint16)[:-1]
        step = correction.copy()
        step[1:] -= correction[:-1]
        delta[at] = step
    return np.cumsum(delta, dtype=np.uint16).view(np.int16)
