"""Simulated Siemens fixed-header files: Somatom Plus (VAX) and Magnetom Vision ``.IMA`` (SPARC).

``somatom-plus``: 4096-byte header (binary fields, VAX F reals, text header at 3072) and
little-endian 16-bit CT pixels; ``vision-ima``: 6144-byte big-endian header with IEEE
doubles and Siemens +L+A+F geometry, then big-endian 16-bit MR pixels. Offsets are those of
the decoders' field tables (siemens-spi.md 5.2, 7.3); values are drawn from the seed.
"""

from __future__ import annotations

import random
import struct


from gateway.simulate import SimFile, SimOptions, register_format
from gateway.formats.tagstream.simulate import phantom

_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()


def vax_f_bytes(x: float) -> bytes:
    """``x`` (rounded to binary32) as VAX F_floating bytes, the inverse of hostnum.vax_f.

    A normal binary32 with biased exponent E is the VAX value with exponent E + 2 and the
    same fraction (host-floats.md 2.3); the 16-bit words are stored little endian, most
    significant word first. Zero is all-zero bytes; binary32 subnormals are not produced.
    """
    if x == 0:
        return bytes(4)
    bits = struct.unpack(">I", struct.pack(">f", x))[0]
    sign, exponent, fraction = bits >> 31, (bits >> 23) & 0xFF, bits & 0x7FFFFF
    if exponent == 0 or exponent > 253:
        raise ValueError(f"{x} has no VAX F_floating form here")
    logical = struct.pack(">I", (sign << 31) | ((exponent + 2) << 23) | fraction)
    return bytes([logical[1], logical[0], logical[3], logical[2]])


def _put_text(buf: bytearray, offset: int, size: int, text: str) -> None:
    raw = text.encode("latin-1")[:size]
    buf[offset : offset + size] = raw + b" " * (size - len(raw))


def _study(rng: random.Random, extra: dict) -> dict:
    if "_study" not in extra:
        extra["_study"] = {
            "date": (rng.randint(1988, 1996), rng.randint(1, 12), rng.randint(1, 28)),
            "time": (rng.randint(7, 18), rng.randint(0, 59), rng.randint(0, 59)),
            "patient": f"SIM^PATIENT{rng.randint(1, 999):03d}",
            "patient_id": f"SIM{rng.randint(100000, 999999)}",
        }
    return extra["_study"]


def write_somatom_plus(rng: random.Random, index: int, opts: SimOptions) -> SimFile:
    extra = opts.extra
    if index == 0:
        extra.pop("_study", None)
    study = _study(rng, extra)
    matrix = int(extra.get("size", 64))
    buf = bytearray(4096)
    y, m, d = study["date"]
    hh, mi, ss = study["time"]
    date = f"{d:02d}-{_MONTHS[m - 1]}-{y:04d}"
    le16 = lambda off, v: struct.pack_into("<h", buf, off, v)  # noqa: E731
    le32 = lambda off, v: struct.pack_into("<i", buf, off, v)  # noqa: E731
    le16(4, 512)
    le16(6, 8 + -(-matrix * matrix * 2 // 512))
    le16(54, 8)
    le16(76, 9)
    le16(78, -(-matrix * matrix * 2 // 512))
    _put_text(buf, 516, 4, "VB20")
    _put_text(buf, 520, 12, date)
    _put_text(buf, 532, 12, f"{hh:02d}:{mi:02d}:{ss:02d}")
    _put_text(buf, 664, 14, "SOMATOM PLUS")
    _put_text(buf, 1048, 20, "SIM HEAD")
    le32(1044, 360)
    le32(1072, 120)
    le32(1080, 300 + 10 * index)
    buf[1084:1088] = vax_f_bytes(1.5 + 0.5 * (index % 4))
    le32(1088, 5)
    le32(1196, 200)
    le32(1328, matrix)
    buf[1332:1336] = vax_f_bytes(1.25)
    le32(1544, -40 + 5 * index)
    le32(1548, 150)
    le32(1560, index + 1)
    _put_text(buf, 1564, 12, date)
    _put_text(buf, 1576, 12, f"{hh:02d}:{mi + index // 60 % 60:02d}:{(ss + index) % 60:02d}")
    text = 3072
    _put_text(buf, text + 30, 30, "SIMULATED HOSPITAL")
    _put_text(buf, text + 96, 24, study["patient"])
    _put_text(buf, text + 120, 13, study["patient_id"])
    _put_text(buf, text + 193, 2, "GT")
    _put_text(buf, text + 195, 10, "0.0")
    _put_text(buf, text + 253, 10, "LEFT")
    _put_text(buf, text + 263, 10, "ANTERIOR")
    pixels = phantom(rng, matrix, matrix)
    return SimFile(f"somp{index + 1:04d}.img", bytes(buf) + pixels.astype("<u2").tobytes())


def write_vision_ima(rng: random.Random, index: int, opts: SimOptions) -> SimFile:
    extra = opts.extra
    if index == 0:
        extra.pop("_study", None)
    study = _study(rng, extra)
    n = int(extra.get("size", 64))
    buf = bytearray(6144)
    be32 = lambda off, *v: struct.pack_into(f">{len(v)}i", buf, off, *v)  # noqa: E731
    be16 = lambda off, *v: struct.pack_into(f">{len(v)}h", buf, off, *v)  # noqa: E731
    f64 = lambda off, *v: struct.pack_into(f">{len(v)}d", buf, off, *v)  # noqa: E731
    y, m, d = study["date"]
    hh, mi, ss = study["time"]
    for off in (0, 12, 24):
        be32(off, y, m, d)
    for off in (36, 52, 68):
        be32(off, hh, mi, ss, 0)
    be32(92, 2)
    buf[96:104] = b"SIEMENS\0"
    _put_text(buf, 105, 26, "SIMULATED HOSPITAL")
    _put_text(buf, 281, 26, "MAGNETOM VISION SIM")
    _put_text(buf, 768, 26, study["patient"])
    _put_text(buf, 795, 12, study["patient_id"])
    be32(808, 1950, 6, 15)
    be32(820, 1)
    be32(864, 70)
    f64(1544, 5.0)
    f64(1560, 600.0)
    f64(1568, 15.0)
    be32(1584, 2)
    f64(1592, 63.6)
    be32(1824, 4)  # supine
    be32(2084, 192)
    be32(2100, n)
    f64(2112, 90.0)
    f64(2560, 1.5)
    be32(2864, n)
    be32(3200, 4)
    be32(3208, 1)
    be32(3212, index + 1)
    be32(3764, 2)  # head first
    spacing = 250.0 / n
    # Coronal slices: DICOM row to the left (1,0,0), column to the feet (0,0,-1); in Siemens
    # +L+A+F that is row (1,0,0), column (0,0,1); slices step anteriorly.
    f64(3768, 0.0, 10.0 + 4.0 * index, 20.0)
    f64(3792, 0.0, 1.0, 0.0)
    f64(3816, 10.0 + 4.0 * index)
    f64(3832, 1.0, 0.0, 0.0)
    f64(3856, 0.0, 0.0, 1.0)
    be32(3984, 0)
    be32(4004, 1)
    be16(4992, 2)
    be16(4994, n, n)
    f64(5000, spacing, spacing)
    be16(5024, 16, 12, 11, 0)
    be32(5032, 600, 600)
    be32(5040, 1200, 1200)
    pixels = phantom(rng, n, n)
    return SimFile(f"vision{index + 1:04d}.ima", bytes(buf) + pixels.astype(">u2").tobytes())


register_format("somatom-plus", write_somatom_plus)
register_format("vision-ima", write_vision_ima)
