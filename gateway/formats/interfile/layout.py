"""How the data file is laid out, by the header's keys, and its pixels as 16-bit DICOM values.

The layout is checked against the data file before anything is allocated: the product of the
matrix sizes times the bytes per pixel must be exactly the bytes after the data offset. Integer
pixels that fit 16 bits are kept as they are; wider integers and IEEE floats are scaled into
unsigned 16 bits with a Rescale Slope and Intercept that keep their range, so every value read
back is within one quantum (one slope) of the original.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gateway.dicom import values
from gateway.errors import DecodeError
from gateway.formats.interfile.header import DATA_FILE, Header, key_label

MAX_DIMENSIONS = 8
MAX_EDGE = 65535  # Rows and Columns are US
MAX_PIXEL_BYTES = (1 << 32) - 2  # an OW value length

_FORMATS = {  # number format -> (numpy kind, allowed bytes per pixel)
    "unsignedinteger": ("u", (1, 2, 4, 8)),
    "signedinteger": ("i", (1, 2, 4, 8)),
    "shortfloat": ("f", (4,)),
    "longfloat": ("f", (8,)),
    "float": ("f", (4, 8)),  # STIR's spelling: IEEE, the width given by bytes per pixel
}


@dataclass(frozen=True)
class Layout:
    """Matrix sizes (fastest first), the numpy dtype of one stored value, and the data offset."""

    sizes: tuple[int, ...]
    dtype: np.dtype
    offset: int
    labels: tuple[str, ...]
    keys: tuple[str, ...] = ()  # the header key of each size, for messages

    @property
    def columns(self) -> int:
        return self.sizes[0]

    @property
    def rows(self) -> int:
        return self.sizes[1] if len(self.sizes) > 1 else 1

    @property
    def frames(self) -> int:
        return math.prod(self.sizes[2:])

    @property
    def nbytes(self) -> int:
        return math.prod(self.sizes) * self.dtype.itemsize


def layout(header: Header, frames_hint: tuple[int, str] | None = None) -> Layout:
    """The layout the header states; ``DecodeError`` naming the key that is missing or wrong.

    ``frames_hint`` is the image count of headers that give only two matrix sizes (3.3 NM
    headers count images with type-specific keys)."""
    sizes = _sizes(header)
    keys = tuple(key_label("matrix size", i + 1) for i in range(len(sizes)))
    if frames_hint is not None and len(sizes) == 2:
        count, key = frames_hint
        if count <= 0:
            raise DecodeError(f"{key} := {count} is not a positive count", field=key, offset=header.offset_of(key))
        sizes, keys = sizes + (count,), keys + (key,)
    dtype = _dtype(header)
    offset = _offset(header)
    labels = tuple(header.text("matrix axis label", index=i + 1) for i in range(len(sizes)))
    result = Layout(sizes, dtype, offset, labels, keys)
    if result.rows > MAX_EDGE or result.columns > MAX_EDGE:
        raise DecodeError(f"matrix {result.columns} x {result.rows} is larger than DICOM allows",
                          field="matrix size [1]", offset=header.offset_of("matrix size", index=1))
    return result


def _sizes(header: Header) -> tuple[int, ...]:
    declared = header.integer("number of dimensions")
    if declared is not None and not 1 <= declared <= MAX_DIMENSIONS:
        raise DecodeError(f"number of dimensions := {declared} is not 1..{MAX_DIMENSIONS}",
                          field="number of dimensions", offset=header.offset_of("number of dimensions"))
    count = declared or max([i for i in range(1, MAX_DIMENSIONS + 1) if header.find("matrix size", index=i)] or [0])
    if count == 0:
        raise DecodeError("no 'matrix size [1]': the image size is unknown", field="matrix size [1]")
    sizes = []
    for i in range(1, count + 1):
        n = header.integer("matrix size", index=i)
        label = key_label("matrix size", i)
        if n is None:
            raise DecodeError(f"'{label}' is missing", field=label)
        if n <= 0:
            raise DecodeError(f"{label} := {n} is not a positive size", field=label,
                              offset=header.offset_of("matrix size", index=i))
        sizes.append(n)
    return tuple(sizes)


def _dtype(header: Header) -> np.dtype:
    fmt_text = header.text("number format") or "unsigned integer"  # the 3.3 default
    fmt = fmt_text.lower().replace(" ", "").replace("_", "")
    if fmt not in _FORMATS:
        raise DecodeError(f"number format := {fmt_text!r} is not supported (integers and IEEE floats are)",
                          field="number format", offset=header.offset_of("number format"))
    kind, widths = _FORMATS[fmt]
    width = header.integer("number of bytes per pixel")
    if width is None and len(widths) == 1 and kind == "f":
        width = widths[0]
    if width is None:
        raise DecodeError("'number of bytes per pixel' is missing", field="number of bytes per pixel")
    if width not in widths:
        raise DecodeError(f"number of bytes per pixel := {width} does not fit number format {fmt_text!r}",
                          field="number of bytes per pixel", offset=header.offset_of("number of bytes per pixel"))
    order = header.text("imagedata byte order").upper().replace(" ", "") or "BIGENDIAN"  # the 3.3 default
    if order not in ("BIGENDIAN", "LITTLEENDIAN"):
        raise DecodeError(f"imagedata byte order := {order!r} is neither BIGENDIAN nor LITTLEENDIAN",
                          field="imagedata byte order", offset=header.offset_of("imagedata byte order"))
    return np.dtype(f"{'>' if order == 'BIGENDIAN' else '<'}{kind}{width}")


def _offset(header: Header) -> int:
    """``data offset in bytes`` (STIR writes it with an index) or ``data starting block`` x 2048."""
    for names, index, scale in ((("data offset in bytes",), None, 1), (("data offset in bytes",), 1, 1),
                                (("data starting block",), None, 2048)):
        n = header.integer(*names, index=index)
        if n is not None:
            if n < 0:
                label = key_label(names[0], index)
                raise DecodeError(f"{label} := {n} is negative", field=label,
                                  offset=header.offset_of(*names, index=index))
            return n * scale
    return 0


def check_size(header: Header, lay: Layout, data_file: str, available: int) -> None:
    """The data file must hold exactly the pixels the header describes after its offset."""
    keys = " x ".join(f"{key} ({n})" for key, n in zip(lay.keys, lay.sizes))
    need = lay.nbytes
    have = available - lay.offset
    if have != need:
        where = f" after data offset {lay.offset}" if lay.offset else ""
        raise DecodeError(
            f"data file {data_file!r} ('{DATA_FILE}') has {max(have, 0)} bytes{where}, but {keys} x number of bytes "
            f"per pixel ({lay.dtype.itemsize}) = {need}", field="matrix size [1]",
            offset=header.offset_of("matrix size", index=1))
    if lay.frames * lay.rows * lay.columns * 2 > MAX_PIXEL_BYTES:
        raise DecodeError(f"{keys}: more pixels than one DICOM instance can hold", field="matrix size [1]")


@dataclass(frozen=True)
class Pixels:
    """16-bit values ready for Pixel Data, and how to read them back (slope/intercept as DS text)."""

    data: bytes
    signed: bool
    slope: str | None = None
    intercept: str | None = None
    minimum: float = 0.0
    maximum: float = 0.0


def pixels(raw: bytes, lay: Layout, data_file: str) -> Pixels:
    """The stored values as little-endian 16-bit words, rescaled where 16 bits cannot hold them."""
    values_ = np.frombuffer(raw, dtype=lay.dtype, count=math.prod(lay.sizes), offset=lay.offset)
    kind, width = lay.dtype.kind, lay.dtype.itemsize
    if kind in "ui" and width <= 2:
        target = "<i2" if kind == "i" else "<u2"
        return Pixels(values_.astype(target).tobytes(), signed=kind == "i")
    if kind in "ui":
        lo, hi = (int(values_.min()), int(values_.max())) if values_.size else (0, 0)
        if 0 <= lo and hi <= 0xFFFF:
            return Pixels(values_.astype("<u2").tobytes(), signed=False)
        if -0x8000 <= lo and hi <= 0x7FFF:
            return Pixels(values_.astype("<i2").tobytes(), signed=True)
    return _rescaled(values_, data_file)


def _rescaled(v: np.ndarray, data_file: str) -> Pixels:
    """Unsigned 16-bit values q with v ~ q * slope + intercept, |error| <= slope (one quantum)."""
    if v.size == 0:
        return Pixels(b"", signed=False, slope="1", intercept="0")
    lo, hi = float(v.min()), float(v.max())  # NaN and infinities show here: no separate pass
    if not (math.isfinite(lo) and math.isfinite(hi)):
        bad = int(np.argmin(np.isfinite(v)))
        raise DecodeError(f"data file {data_file!r} holds a NaN or infinite value at pixel {bad}", field=DATA_FILE,
                          offset=bad * v.dtype.itemsize)
    intercept_text = values.decimal_string(lo)
    intercept = float(intercept_text)
    span = hi - intercept
    slope_text = values.decimal_string(span / 65535.0) if span > 0 else "1"
    slope = float(slope_text)  # DS keeps 12 digits: the rounding moves no value by a quantum
    q = v.astype(np.float64)  # the one copy; the rest works in place
    q -= intercept
    q *= 1.0 / slope
    np.rint(q, out=q)
    np.clip(q, 0, 65535, out=q)
    return Pixels(q.astype("<u2").tobytes(), signed=False, slope=slope_text, intercept=intercept_text,
                  minimum=lo, maximum=hi)


def unsigned(px: Pixels) -> Pixels:
    """Signed 16-bit values as unsigned ones plus 32768, the shift said by Rescale Intercept -32768."""
    if not px.signed:
        return px
    shifted = (np.frombuffer(px.data, dtype="<i2").astype(np.int32) + 32768).astype("<u2")
    return Pixels(shifted.tobytes(), signed=False, slope="1", intercept="-32768")
