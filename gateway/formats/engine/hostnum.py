"""Numbers as the old scanner hosts wrote them, converted exactly (or RNE) to Python/NumPy.

Pre-DICOM headers hold numbers in their host's native form: Data General (Signa 3.x/4.x,
GE 9800) wrote big-endian integers and hexadecimal floats, DEC VAX (Somatom, Imatron) wrote
little-endian integers and middle-endian F/D/G floats, Sun SPARC (Vision, Genesis) wrote
big-endian IEEE. Bit layouts, conversion rules and test vectors: shared/formats/host-floats.md.

Every conversion returns IEEE binary64. It is exact where the notes say it is (DG single,
VAX F, VAX G with exponent >= 3) and rounded to nearest, ties to even, where the source has
more significant bits than binary64 (DG double, VAX D) or lands in the subnormal range
(VAX G with exponent 1 or 2). We never narrow to binary32.

Defined behaviour at the edges (host-floats.md 1.1 and 2.2):
  * DG: a zero fraction is +0.0 whatever the sign and exponent (never -0.0); unnormalised
    fractions are valid and decoded by the same formula.
  * VAX dirty zero (exponent 0, sign 0, any fraction): +0.0, as the VAX hardware treats it.
  * VAX reserved operand (exponent 0, sign 1): it has no value. Scalar readers raise
    ``ReservedOperand``; array readers give NaN (``vax_reserved`` says where), so one bad
    element never hides the others.

Each type is a ``NumberType`` (name, size, scalar reader, array reader, encoder) in ``NUMBER_TYPES``;
the field-table engine (gateway.formats.engine.fieldtable) uses these names as field types.
"""

from __future__ import annotations

import math
import numbers
import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np

__all__ = [
    "ReservedOperand",
    "NumberType",
    "NUMBER_TYPES",
    "dg_single",
    "dg_double",
    "vax_f",
    "vax_d",
    "vax_g",
    "dg_single_array",
    "dg_double_array",
    "vax_f_array",
    "vax_d_array",
    "vax_g_array",
    "vax_reserved",
    "encode_dg_single",
    "encode_dg_double",
    "encode_vax_f",
    "encode_vax_d",
    "encode_vax_g",
    "reserved_operand",
    "read_number",
    "read_numbers",
]


class ReservedOperand(ValueError):
    """A VAX reserved operand (sign 1, exponent 0): the VAX faults on it; it has no value."""


_U24 = (1 << 24) - 1
_U56 = (1 << 56) - 1


# --------------------------------------------------------------------------- scalars


def dg_single(b: bytes | bytearray | memoryview) -> float:
    """Data General / IBM hex float, 4 bytes big-endian: (-1)^S * F/2^24 * 16^(E-64). Exact."""
    w = int.from_bytes(bytes(b[:4]), "big")
    frac = w & _U24
    if frac == 0:
        return 0.0
    value = math.ldexp(frac, 4 * (((w >> 24) & 0x7F) - 64) - 24)
    return -value if w >> 31 else value


def dg_double(b: bytes | bytearray | memoryview) -> float:
    """Data General hex double, 8 bytes big-endian, 56-bit fraction rounded RNE to binary64."""
    w = int.from_bytes(bytes(b[:8]), "big")
    frac = w & _U56
    if frac == 0:
        return 0.0
    # float(int) rounds to nearest even; the power-of-two scale is exact (never subnormal).
    value = math.ldexp(float(frac), 4 * (((w >> 56) & 0x7F) - 64) - 56)
    return -value if w >> 63 else value


def _vax_logical(b: bytes | bytearray | memoryview, size: int) -> int:
    """The VAX bit string (sign first): swap the two bytes of every 16-bit word, read big-endian."""
    raw = bytes(b[:size])
    if len(raw) != size:
        raise ValueError(f"need {size} bytes, got {len(raw)}")
    swapped = bytearray(size)
    swapped[0::2] = raw[1::2]
    swapped[1::2] = raw[0::2]
    return int.from_bytes(swapped, "big")


def _vax_scalar(b: bytes | bytearray | memoryview, size: int, exp_bits: int) -> float:
    bits = size * 8
    frac_bits = bits - 1 - exp_bits
    w = _vax_logical(b, size)
    sign = w >> (bits - 1)
    e = (w >> frac_bits) & ((1 << exp_bits) - 1)
    f = w & ((1 << frac_bits) - 1)
    if e == 0:
        if sign:
            raise ReservedOperand("VAX reserved operand (sign 1, exponent 0)")
        return 0.0  # true zero or dirty zero
    bias = 1 << (exp_bits - 1)  # 128 or 1024, in the 0.1f convention
    mantissa = (1 << frac_bits) | f  # the hidden bit made explicit
    shift = e - bias - frac_bits - 1
    if mantissa.bit_length() <= 53 and e >= 3:
        value = math.ldexp(mantissa, shift)  # exact: fits binary64, normal range
    else:
        # D (56 bits) or G in the subnormal range: one correctly rounded (RNE) conversion.
        value = float(Fraction(mantissa) * Fraction(2) ** shift)
    return -value if sign else value


def vax_f(b: bytes | bytearray | memoryview) -> float:
    """VAX F_floating, 4 bytes as stored (PDP-11 word order). Exact in binary64."""
    return _vax_scalar(b, 4, 8)


def vax_d(b: bytes | bytearray | memoryview) -> float:
    """VAX D_floating, 8 bytes; 56 significant bits rounded RNE to binary64."""
    return _vax_scalar(b, 8, 8)


def vax_g(b: bytes | bytearray | memoryview) -> float:
    """VAX G_floating, 8 bytes; exact except in binary64's subnormal range (RNE)."""
    return _vax_scalar(b, 8, 11)


# --------------------------------------------------------------------------- encoders
# The inverse of each reader, for simulated files and tests (decoders never write host
# numbers). Each returns the bytes as stored, or raises ValueError for a value the type
# cannot hold: not finite, out of its range, or (below the smallest value) rounding to zero.
# DG single and VAX F have fewer significant bits than binary64: the nearest value is written
# (RNE). DG double, VAX D and VAX G hold every binary64 value of their normal range exactly.
# Whatever an encoder accepts, the reader gives back: ``read(encode(x)) == x`` for every value
# a reader returns, except the few that RNE carried past the type's largest value (DG double
# and VAX D with every fraction bit set, host-floats.md 1.7 #9, 2.6 #13), which are refused.


def _dg_encode(value: float, frac_bits: int) -> bytes:
    """Sign, excess-64 hex exponent, ``frac_bits`` fraction; normalised where the exponent
    allows, else the unnormalised fraction at exponent 0 (host-floats.md 1.1)."""
    if not math.isfinite(value):
        raise ValueError(f"{value} has no Data General encoding")
    if value == 0:
        return bytes((frac_bits + 8) // 8)
    exp2 = math.frexp(abs(value))[1]
    exp = max(-(-exp2 // 4) + 64, 0)  # the fraction value / 16^(exp - 64) lies in [1/16, 1)
    mantissa = round(Fraction(abs(value)) * Fraction(16) ** (64 - exp) * (1 << frac_bits))  # RNE
    if mantissa == 1 << frac_bits:  # rounding carried into the next hex digit
        mantissa >>= 4
        exp += 1
    if exp > 127 or mantissa == 0:
        raise ValueError(f"{value} is outside the Data General range")
    sign = 1 if value < 0 else 0
    return ((sign << (frac_bits + 7)) | (exp << frac_bits) | mantissa).to_bytes((frac_bits + 8) // 8, "big")


def encode_dg_single(value: float) -> bytes:
    """The DG single nearest to ``value`` (RNE on the 24-bit fraction), as stored."""
    return _dg_encode(value, 24)


def encode_dg_double(value: float) -> bytes:
    """``value`` as a DG double (56-bit fraction: exact in the normal range)."""
    return _dg_encode(value, 56)


def _vax_encode(value: float, size: int, exp_bits: int) -> bytes:
    """Sign, excess-2^(exp_bits-1) exponent, hidden-bit fraction (0.1f convention), with the
    16-bit words stored little-endian, most significant first (host-floats.md 2.1)."""
    if not math.isfinite(value):
        raise ValueError(f"{value} has no VAX encoding")
    if value == 0:
        return bytes(size)
    bits = size * 8
    precision = bits - exp_bits  # significant bits, the hidden one included: 24, 56 or 53
    fraction, exp2 = math.frexp(abs(value))  # value = fraction * 2^exp2, fraction in [0.5, 1)
    exp = exp2 + (1 << (exp_bits - 1))
    mantissa = round(Fraction(fraction) * (1 << precision))  # RNE (exact for D and G)
    if mantissa == 1 << precision:
        mantissa >>= 1
        exp += 1
    if not 1 <= exp < 1 << exp_bits:
        raise ValueError(f"{value} is outside the VAX range of this type")
    sign = 1 if value < 0 else 0
    logical = (sign << (bits - 1)) | (exp << (precision - 1)) | (mantissa & ((1 << (precision - 1)) - 1))
    big = logical.to_bytes(size, "big")
    return bytes(big[i ^ 1] for i in range(size))


def encode_vax_f(value: float) -> bytes:
    """The VAX F_floating nearest to ``value`` (RNE on the 24-bit significand), as stored."""
    return _vax_encode(value, 4, 8)


def encode_vax_d(value: float) -> bytes:
    """``value`` as VAX D_floating (56-bit significand: exact in the F range)."""
    return _vax_encode(value, 8, 8)


def encode_vax_g(value: float) -> bytes:
    """``value`` as VAX G_floating (exact from 2^-1024, binary64 subnormals included)."""
    return _vax_encode(value, 8, 11)


def reserved_operand(size: int) -> bytes:
    """The VAX reserved operand (sign 1, exponent 0, fraction 0) in ``size`` bytes, as stored."""
    return b"\x00\x80" + bytes(size - 2)


# --------------------------------------------------------------------------- arrays


def _as_rows(data: bytes | bytearray | memoryview | np.ndarray, size: int) -> np.ndarray:
    """``data`` as an (n, size) uint8 array; its length must be a multiple of ``size``."""
    arr = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8).ravel()
    if arr.size % size:
        raise ValueError(f"{arr.size} bytes is not a whole number of {size}-byte values")
    return arr.reshape(-1, size)


def dg_single_array(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Vectorised ``dg_single``: every 4 bytes of ``data`` to a float64."""
    w = _as_rows(data, 4).copy().view(">u4").ravel().astype(np.uint32)
    frac = (w & _U24).astype(np.float64)
    exp = ((w >> 24) & 0x7F).astype(np.int32)
    value = np.ldexp(frac, 4 * (exp - 64) - 24)
    negative = ((w >> 31) == 1) & (frac != 0)
    return np.where(negative, -value, value)


def dg_double_array(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Vectorised ``dg_double`` (RNE of the 56-bit fraction by the uint64 -> float64 cast)."""
    w = _as_rows(data, 8).copy().view(">u8").ravel().astype(np.uint64)
    frac_int = w & np.uint64(_U56)
    frac = frac_int.astype(np.float64)  # < 2^56: the hardware conversion rounds to nearest even
    exp = ((w >> np.uint64(56)) & np.uint64(0x7F)).astype(np.int32)
    value = np.ldexp(frac, 4 * (exp - 64) - 56)
    negative = ((w >> np.uint64(63)) == 1) & (frac_int != 0)
    return np.where(negative, -value, value)


def _vax_words(data: bytes | bytearray | memoryview | np.ndarray, size: int) -> np.ndarray:
    """The logical VAX bit strings as uint64 (words are little-endian, most significant first)."""
    words = _as_rows(data, size).copy().view("<u2").astype(np.uint64)
    logical = np.zeros(words.shape[0], dtype=np.uint64)
    for i in range(size // 2):  # 2 or 4 iterations, each over the whole array
        logical = (logical << np.uint64(16)) | words[:, i]
    return logical


def _vax_array(data: bytes | bytearray | memoryview | np.ndarray, size: int, exp_bits: int,
               scalar: Callable[[bytes], float]) -> np.ndarray:
    bits = size * 8
    frac_bits = bits - 1 - exp_bits
    w = _vax_words(data, size)
    sign = (w >> np.uint64(bits - 1)) == 1
    e = ((w >> np.uint64(frac_bits)) & np.uint64((1 << exp_bits) - 1)).astype(np.int64)
    mantissa = (w & np.uint64((1 << frac_bits) - 1)) | np.uint64(1 << frac_bits)
    shift = (e - (1 << (exp_bits - 1)) - frac_bits - 1).astype(np.int32)
    # uint64 -> float64 rounds 56-bit D mantissas RNE; F and G mantissas convert exactly.
    value = np.ldexp(mantissa.astype(np.float64), shift)
    value = np.where(sign, -value, value)
    value = np.where(e == 0, np.where(sign, np.nan, 0.0), value)
    if exp_bits == 11:
        # G with exponent 1 or 2 is a binary64 subnormal: round those few exactly, one by one.
        rows = _as_rows(data, size)
        for i in np.flatnonzero((e == 1) | (e == 2)):
            value[i] = scalar(rows[i].tobytes())
    return value


def vax_f_array(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Vectorised ``vax_f``; reserved operands become NaN."""
    return _vax_array(data, 4, 8, vax_f)


def vax_d_array(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Vectorised ``vax_d``; reserved operands become NaN."""
    return _vax_array(data, 8, 8, vax_d)


def vax_g_array(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Vectorised ``vax_g``; reserved operands become NaN."""
    return _vax_array(data, 8, 11, vax_g)


def vax_reserved(data: bytes | bytearray | memoryview | np.ndarray, kind: str) -> np.ndarray:
    """Boolean mask of the reserved operands among VAX values of ``kind`` "f", "d" or "g".

    Reserved means sign 1 and a zero exponent field (bits 14-7 of the first word for F and D,
    bits 14-4 for G).
    """
    size, exp_mask = {"f": (4, 0x7F80), "d": (8, 0x7F80), "g": (8, 0x7FF0)}[kind]
    first = _as_rows(data, size)[:, :2].copy().view("<u2").ravel()
    return ((first & 0x8000) != 0) & ((first & exp_mask) == 0)


# --------------------------------------------------------------------------- the type registry


@dataclass(frozen=True)
class NumberType:
    """A host number type: its byte size, a scalar reader, a vectorised reader, an encoder.

    ``scalar`` takes exactly ``size`` bytes; ``array`` takes a multiple of ``size`` bytes and
    returns a NumPy array of the values; ``encode`` is ``scalar``'s inverse (ValueError for a
    value the type cannot hold).
    """

    name: str
    size: int
    scalar: Callable[[bytes], int | float]
    array: Callable[[bytes | np.ndarray], np.ndarray]
    encode: Callable[[int | float], bytes]
    description: str
    fmt: str | None = None  # the ``struct`` format, for the types ``struct`` reads itself


def _struct_type(name: str, fmt: str, dtype: str, description: str) -> NumberType:
    packer = struct.Struct(fmt)
    unpack = packer.unpack

    def scalar(b: bytes) -> int | float:
        return unpack(bytes(b))[0]

    def array(data: bytes | np.ndarray) -> np.ndarray:
        return np.frombuffer(data, dtype=dtype).astype(np.dtype(dtype).newbyteorder("="))

    def encode(value: int | float) -> bytes:
        """``struct`` packs it (IEEE floats rounded to nearest); out of range or not an
        integer for an integer type: ValueError."""
        if isinstance(value, bool) or (fmt[1] not in "fd" and not isinstance(value, numbers.Integral)):
            raise ValueError(f"{value!r} is not an integer ({name})")
        try:
            return packer.pack(value)
        except (struct.error, OverflowError, TypeError) as exc:
            raise ValueError(f"{value!r} does not fit {name}: {exc}") from None

    return NumberType(name, packer.size, scalar, array, encode, description, fmt)


NUMBER_TYPES: dict[str, NumberType] = {
    t.name: t
    for t in [
        _struct_type("int8", ">b", "i1", "signed 8-bit integer"),
        _struct_type("uint8", ">B", "u1", "unsigned 8-bit integer"),
        _struct_type("int16_be", ">h", ">i2", "signed 16-bit big-endian (Data General, SPARC)"),
        _struct_type("uint16_be", ">H", ">u2", "unsigned 16-bit big-endian"),
        _struct_type("int32_be", ">i", ">i4", "signed 32-bit big-endian"),
        _struct_type("uint32_be", ">I", ">u4", "unsigned 32-bit big-endian"),
        _struct_type("int16_le", "<h", "<i2", "signed 16-bit little-endian (VAX, x86)"),
        _struct_type("uint16_le", "<H", "<u2", "unsigned 16-bit little-endian"),
        _struct_type("int32_le", "<i", "<i4", "signed 32-bit little-endian"),
        _struct_type("uint32_le", "<I", "<u4", "unsigned 32-bit little-endian"),
        _struct_type("float32_be", ">f", ">f4", "IEEE binary32 big-endian (SPARC)"),
        _struct_type("float64_be", ">d", ">f8", "IEEE binary64 big-endian (SPARC)"),
        _struct_type("float32_le", "<f", "<f4", "IEEE binary32 little-endian"),
        _struct_type("float64_le", "<d", "<f8", "IEEE binary64 little-endian"),
        NumberType("dg_single", 4, dg_single, dg_single_array, encode_dg_single, "Data General hex float (4 bytes)"),
        NumberType("dg_double", 8, dg_double, dg_double_array, encode_dg_double, "Data General hex double (8 bytes)"),
        NumberType("vax_f", 4, vax_f, vax_f_array, encode_vax_f, "VAX F_floating (4 bytes)"),
        NumberType("vax_d", 8, vax_d, vax_d_array, encode_vax_d, "VAX D_floating (8 bytes)"),
        NumberType("vax_g", 8, vax_g, vax_g_array, encode_vax_g, "VAX G_floating (8 bytes)"),
    ]
}


def read_number(type_name: str, data: bytes | memoryview, offset: int = 0) -> int | float:
    """One value of ``type_name`` at ``offset``; ValueError if the bytes are not there."""
    t = NUMBER_TYPES[type_name]
    if offset < 0 or offset + t.size > len(data):
        raise ValueError(f"{type_name} at {offset} lies outside {len(data)} bytes")
    return t.scalar(bytes(data[offset:offset + t.size]))


def read_numbers(type_name: str, data: bytes | memoryview, offset: int = 0, count: int | None = None) -> np.ndarray:
    """``count`` values of ``type_name`` from ``offset`` (all that fit when ``count`` is None)."""
    t = NUMBER_TYPES[type_name]
    if count is None:
        count = max(0, (len(data) - offset) // t.size)
    end = offset + count * t.size
    if offset < 0 or count < 0 or end > len(data):
        raise ValueError(f"{count} x {type_name} at {offset} lie outside {len(data)} bytes")
    return t.array(data[offset:end])
