"""Simulated ACR-NEMA 2.0 and Siemens SPI tag streams, in any byte order.

``acrnema``: a Somatom-like CT (or, with ``extra={"modality": "MR"}``, an MR) image as an
ACR-NEMA 2.0 message: recognition code, group lengths, ACR-NEMA date/time forms, retired
gantry-relative geometry, 16-bit pixels or (``variant="packed12"``) 12-bit packed cells.
``spi``: a Magnetom-like MR image with SPI and Siemens shadow groups and Siemens' private
+L/+A/+F geometry instead of DICOM geometry. Both honour ``byte_order`` little | big |
badbig (big-endian words, 32-bit values low word first); ``extra={"group_lengths": False}``
leaves out group lengths, as "dirty" ACR-NEMA writers did.

The files are for practice runs and tests of byte-order handling; the decoders are checked
against independent readers (dicom3tools' dcdump, GDCM) reading these files, not against
this writer.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import numpy as np

from gateway.formats.tagstream.packed12 import pack12
from gateway.formats.tagstream.stream import ByteOrder
from gateway.simulate import SimFile, SimOptions, register_format

TEXT = frozenset({"AE", "AS", "CS", "DA", "DS", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UI"})

Element = tuple[int, str, Any]  # (tag, VR, value)


def byte_order(opts: SimOptions) -> ByteOrder:
    try:
        return ByteOrder(opts.byte_order or "little")
    except ValueError:
        raise ValueError(f"byte order {opts.byte_order!r}: "
                         f"use one of {', '.join(o.value for o in ByteOrder)}") from None


def u16(values, order: ByteOrder) -> bytes:
    return np.asarray(values, dtype=np.uint16).astype(order.u16).tobytes()


def u32(value: int, order: ByteOrder) -> bytes:
    if order is ByteOrder.LITTLE:
        return struct.pack("<I", value)
    if order is ByteOrder.BIG:
        return struct.pack(">I", value)
    return struct.pack(">HH", value & 0xFFFF, value >> 16)  # low word first


def encode_value(vr: str, value: Any, order: ByteOrder) -> bytes:
    if vr in TEXT:
        text = "\\".join(value) if isinstance(value, (list, tuple)) else str(value)
        raw = text.encode("latin-1")
        return raw + ((b"\0" if vr == "UI" else b" ") if len(raw) & 1 else b"")
    if vr in ("US", "SS"):
        values = value if isinstance(value, (list, tuple)) else [value]
        return u16([v & 0xFFFF for v in values], order)
    if vr in ("UL", "SL"):
        values = value if isinstance(value, (list, tuple)) else [value]
        return b"".join(u32(v & 0xFFFFFFFF, order) for v in values)
    if vr == "OW":
        return u16(value, order)
    return bytes(value) + (b"\0" if len(value) & 1 else b"")


def encode_stream(elements: list[Element], order: ByteOrder, group_lengths: bool = True) -> bytes:
    """The elements (any order) as one stream, sorted, with (gggg,0000) group lengths."""
    groups: dict[int, list[bytes]] = {}
    for tag, vr, value in sorted(elements, key=lambda e: e[0]):
        raw = encode_value(vr, value, order)
        head = u16([tag >> 16, tag & 0xFFFF], order) + u32(len(raw), order)
        groups.setdefault(tag >> 16, []).append(head + raw)
    out = bytearray()
    for group, parts in groups.items():
        body = b"".join(parts)
        if group_lengths:
            out += u16([group, 0], order) + u32(4, order) + u32(len(body), order)
        out += body
    return bytes(out)


def phantom(rng: random.Random, rows: int, cols: int, top: int = 4095) -> np.ndarray:
    """A round 'body' with an off-centre insert and noise, values within 12 bits."""
    gen = np.random.default_rng(rng.getrandbits(32))
    y, x = np.mgrid[0:rows, 0:cols]
    r = np.hypot((y - rows / 2) / (rows / 2.2), (x - cols / 2) / (cols / 2.2))
    image = np.where(r < 1, 1000, 24).astype(float)
    image += np.where(np.hypot(y - rows * 0.4, x - cols * 0.6) < rows / 8, 600, 0)
    image += gen.normal(0, 20, size=(rows, cols))
    return np.clip(image, 0, top).astype(np.uint16)


def _acr_date(year: int, month: int, day: int) -> str:
    return f"{year:04d}.{month:02d}.{day:02d}"


def _exp(x: float) -> str:
    """Siemens' DS spelling: leading zeros and an exponent (``005.200000E+01``)."""
    return f"{x:014.6E}" if x >= 0 else f"{x:.6E}".rjust(14, "0").replace("0-", "-0", 1)


def _same_study(rng: random.Random, index: int, extra: dict[str, Any]) -> dict[str, Any]:
    """One study per run: drawn for the first file and remembered in the run's options."""
    if index == 0 or "_study" not in extra:
        extra["_study"] = _study(rng)
    return extra["_study"]


def _study(rng: random.Random) -> dict[str, Any]:
    return {
        "date": (rng.randint(1986, 1996), rng.randint(1, 12), rng.randint(1, 28)),
        "time": (rng.randint(7, 18), rng.randint(0, 59), rng.randint(0, 59)),
        "patient": f"SIM^PATIENT{rng.randint(1, 999):03d}",
        "patient_id": f"SIM{rng.randint(100000, 999999)}",
        "sex": rng.choice(["m", "f", "M", "F"]),
    }


def write_acrnema(rng: random.Random, index: int, opts: SimOptions) -> SimFile:
    order = byte_order(opts)
    extra = opts.extra
    rows = cols = int(extra.get("size", 64))
    modality = str(extra.get("modality", "CT"))
    study = _same_study(rng, index, extra)
    pixels = phantom(rng, rows, cols)
    spacing = 0.75
    location = -20.0 + 2.0 * index
    y, m, d = study["date"]
    hh, mi, ss = study["time"]
    elements: list[Element] = [
        (0x00080010, "LO", "ACR-NEMA 2.0"),
        (0x00080020, "DA", _acr_date(y, m, d)),
        (0x00080022, "DA", _acr_date(y, m, d)),
        (0x00080030, "TM", f"{hh:02d}:{mi:02d}:{ss:02d}"),
        (0x00080032, "TM", f"{hh:02d}:{mi:02d}:{ss:02d}.{index:03d}000"),
        (0x00080040, "US", 0),
        (0x00080060, "CS", modality),
        (0x00080070, "LO", "SIEMENS" if modality == "CT" else "ACME MEDICAL"),
        (0x00081090, "LO", "SOMATOM SIM" if modality == "CT" else "SIMSCANNER"),
        (0x00100010, "PN", study["patient"]),
        (0x00100020, "LO", study["patient_id"]),
        (0x00100040, "CS", study["sex"]),
        (0x00180050, "DS", _exp(2.0)),
        (0x00185100, "CS", "SUPINE"),
        (0x00200010, "SH", "7"),
        (0x00200011, "IS", "2"),
        (0x00200013, "IS", f"{index + 1:06d}"),
        (0x00200020, "CS", ["L   ", "P"]),
        (0x00200030, "DS", [_exp(-spacing * (cols - 1) / 2), _exp(-spacing * (rows - 1) / 2), _exp(location)]),
        (0x00200035, "DS", [_exp(v) for v in (1, 0, 0, 0, 1, 0)]),
        (0x00200050, "DS", _exp(location)),
        (0x00280005, "US", 2),
        (0x00280010, "US", rows),
        (0x00280011, "US", cols),
        (0x00280030, "DS", [f"{spacing:.6f}", f"{spacing:.6f}"]),
        (0x00280040, "CS", "RECT"),
        (0x00280100, "US", 12 if opts.variant == "packed12" else 16),
        (0x00280101, "US", 12),
        (0x00280102, "US", 11),
        (0x00280103, "US", 0),
        (0x00280200, "US", 0x7FE0),
        (0x7FE00010, "OW", pack12(pixels) if opts.variant == "packed12" else pixels.reshape(-1)),
    ]
    if modality == "CT":
        elements += [(0x00281052, "DS", _exp(-1024.0)), (0x00281053, "DS", _exp(1.0))]
    if extra.get("pixel_description"):  # absent in real ACR-NEMA; some readers insist on them
        elements += [(0x00280002, "US", 1), (0x00280004, "CS", "MONOCHROME2")]
    group_lengths = bool(extra.get("group_lengths", True))
    data = encode_stream(elements + [(0x00080001, "UL", 0)], order, group_lengths)
    # Length to End (retired, UL): the bytes after this element, as ACR-NEMA messages carry.
    at = 12 if group_lengths else 0
    to_end = len(data) - at - 12
    data = encode_stream(elements + [(0x00080001, "UL", to_end)], order, group_lengths)
    return SimFile(f"acr{index + 1:04d}.acr", data)


def write_spi(rng: random.Random, index: int, opts: SimOptions) -> SimFile:
    order = byte_order(opts)
    extra = opts.extra
    rows = cols = int(extra.get("size", 64))
    study = _same_study(rng, index, extra)
    pixels = phantom(rng, rows, cols)
    spacing = 3.125
    y, m, d = study["date"]
    hh, mi, ss = study["time"]
    # Transverse slices seen from the feet. Siemens axes are +Left, +Anterior, +Feet: the
    # DICOM column direction "posterior" is Siemens (0, -1, 0); slices step headwards (-z).
    centre = (4.0, -10.0, -30.0 - 5.0 * index)
    cms, gen, coad = "SIEMENS CM VA0  CMS", "SIEMENS MR VA0  GEN", "SIEMENS MR VA0  COAD"
    elements: list[Element] = [
        (0x00080008, "CS", ["ORIGINAL", "PRIMARY"]),
        (0x00080020, "DA", f"{y:04d}{m:02d}{d:02d}"),
        (0x00080030, "TM", f"{hh:02d}{mi:02d}{ss:02d}.000000"),
        (0x00080060, "CS", "MR"),
        (0x00080070, "LO", "SIEMENS"),
        (0x00081090, "LO", "MAGNETOM SIM"),
        (0x00090010, "LO", "SPI RELEASE 1"),
        (0x00090012, "LO", cms),
        (0x00091010, "LO", "SPI VERSION 01.00"),
        (0x00091226, "DA", _acr_date(y, m, d)),
        (0x00091227, "TM", f"{hh:02d}:{mi:02d}:{ss:02d}.000"),
        (0x00100010, "PN", study["patient"]),
        (0x00100020, "LO", study["patient_id"]),
        (0x00100040, "CS", study["sex"]),
        (0x00180020, "CS", "SE"),
        (0x00180021, "CS", "NONE"),
        (0x00180050, "DS", _exp(5.0)),
        (0x00180080, "DS", _exp(500.0)),
        (0x00180081, "DS", _exp(15.0)),
        (0x00185100, "CS", "SUPI"),
        (0x00190010, "LO", cms),
        (0x00190012, "LO", gen),
        (0x00190014, "LO", coad),
        (0x00191220, "IS", "000192"),
        (0x00191260, "DS", _exp(70.0)),
        (0x00191412, "DS", _exp(1.0)),
        (0x001914D4, "IS", f"{cols:06d}"),
        (0x001914DA, "CS", "plusY"),
        (0x00200010, "SH", "000005"),
        (0x00200011, "IS", "0"),
        (0x00200013, "IS", f"{index + 1:06d}"),
        (0x00200020, "CS", ["L", "P"]),
        (0x00210011, "LO", cms),
        (0x00210013, "LO", gen),
        (0x00211132, "CS", "HEAD"),
        (0x00211160, "DS", [_exp(v) for v in centre]),
        (0x00211161, "DS", [_exp(v) for v in (0.0, 0.0, 1.0)]),
        (0x00211163, "DS", _exp(centre[2])),
        (0x0021116A, "DS", [_exp(v) for v in (1.0, 0.0, 0.0)]),
        (0x0021116B, "DS", [_exp(v) for v in (0.0, -1.0, 0.0)]),
        (0x00211330, "IS", "000000"),
        (0x00280002, "US", 1),
        (0x00280004, "CS", "MONOCHROME2"),
        (0x00280010, "US", rows),
        (0x00280011, "US", cols),
        (0x00280030, "DS", [_exp(spacing), _exp(spacing)]),
        (0x00280100, "US", 16),
        (0x00280101, "US", 12),
        (0x00280102, "US", 11),
        (0x00280103, "US", 0),
        (0x7FE00010, "OW", pixels.reshape(-1)),
    ]
    data = encode_stream(elements, order, group_lengths=bool(extra.get("group_lengths", False)))
    return SimFile(f"spi{index + 1:04d}.spi", data)


register_format("acrnema", write_acrnema)
register_format("spi", write_spi)
