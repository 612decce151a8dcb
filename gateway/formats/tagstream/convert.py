"""From a parsed ACR-NEMA/SPI stream to a pydicom Dataset (acr-nema.md 6-8).

Every element is typed from our dictionary (``acrdict``) and its value made conformant
(``acrvalues``). Group lengths, length-to-end, the command groups and retired elements do not
reach the output: retired elements with a DICOM successor are mapped (geometry, location),
the others dropped (the whole source header is kept in our private block by normalisation).
Private elements keep their creators; unknown ones are kept as text or UN. The pixel data is
checked against Rows × Columns × Bits Allocated before anything is allocated, unpacked from
12-bit cells and written little endian.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom import config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from gateway.dicom import values as acrvalues
from gateway.dicom.pixels import Dimension, image_bytes, put_image_pixel
from gateway.errors import DecodeError
from gateway.formats.engine.fieldtable import put, value_of
from gateway.formats.tagstream.dictionary import Entry, private_entry, standard_entry
from gateway.formats.tagstream.packed12 import packed_length, unpack12
from gateway.formats.tagstream.stream import ByteOrder, Element, Stream, tag_str

TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UI", "UT",
                      "UC", "UR"})
SINGLE_TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})

# Retired elements read for conversion, by tag (their values are used, never written).
_IMAGE_POSITION = 0x00200030
_IMAGE_ORIENTATION = 0x00200035
_LOCATION = 0x00200050
_RECOGNITION_CODE = 0x00080010
_SPECIFIC_CHARACTER_SET = 0x00080005
_PLANES = 0x00280012
_COMPRESSION_CODE = 0x00280060
_IMAGE_LOCATION = 0x00280200
_ROWS, _COLUMNS = 0x00280010, 0x00280011
_ILLEGAL_PRIVATE_GROUPS = {0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF}
_STRIPPED = frozenset({"DA", "TM", "CS", "AS", "UI"})  # private values of these are trimmed and conformed


@dataclass
class Converted:
    """The dataset, plus what the conversion read but did not write."""

    dataset: Dataset
    retired: dict[int, Any] = field(default_factory=dict)
    pixel_offset: int = 0
    head_first: bool | None = None  # set by vendor rules that know it (Siemens rest direction)
    truncated: dict[int, str] = field(default_factory=dict)  # original of values cut to fit their VR
    # (creator, group, element low byte) -> tag of each private element (first block wins)
    private_tags: dict[tuple[str, int, int], int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def private(self, group: int, creator: str, low: int) -> Any:
        """The value of ``creator``'s element ``low`` in ``group`` (None if absent)."""
        tag = self.private_tags.get((creator, group, low))
        if tag is None or tag not in self.dataset:
            return None
        return self.dataset[tag].value


def convert(stream: Stream) -> Converted:
    out = Converted(dataset=Dataset())
    items: dict[int, DataElement] = {}  # made a Dataset at once: per-element add is slow
    reader = ValueReader(stream)
    creators: dict[tuple[int, int], str] = {}
    pixel_elements: dict[int, Element] = {}
    for elem in stream.elements:
        tag = elem.tag
        group, number = tag >> 16, tag & 0xFFFF
        if number == 0x0000 or (number == 0x0001 and group in (0x0000, 0x0008)):
            continue  # group length, length to end
        if group in (0x0000, 0x0001):
            continue  # ACR-NEMA / SPI command group: message envelope, not DICOM
        if group & 1:
            _read_private(reader, elem, creators, out, items)
        elif tag == _SPECIFIC_CHARACTER_SET:
            continue  # values are read as Latin-1; normalisation declares ISO_IR 100
        elif number == 0x0010 and 0x7F00 <= group <= 0x7FFF:
            pixel_elements[group] = elem  # (7FE0,0010) or ACR-NEMA variable pixel data
        else:
            _read_standard(reader, elem, out, items)
    out.dataset = Dataset(items)
    pixel_order = _fix_swapped_us(stream, out)
    _pixel_module(stream, out, _pixel_element(out, pixel_elements), pixel_order)
    _embedded_overlays(out)
    return out


def _embedded_overlays(out: Converted) -> None:
    """Overlay planes kept in unused high bits of the pixels (acr-nema.md 7.3).

    DICOM wants overlay bits in (60xx,3000), not in the pixel cells. Moving them there is not
    done here: the overlay groups that point into the pixel data are dropped (the source
    header stays in our private block) and the pixel values are masked to Bits Stored, so no
    viewer mistakes overlay bits for signal.
    """
    ds = out.dataset
    tags = list(ds.keys())  # tags alone: iterating the dataset would build every element
    groups = sorted({tag >> 16 for tag in tags if 0x6000 <= tag >> 16 <= 0x601E and not tag >> 16 & 1})
    embedded = [g for g in groups if (g << 16 | 0x3000) not in ds]
    for group in embedded:
        for tag in [tag for tag in tags if tag >> 16 == group]:
            del ds[tag]
    if not embedded:
        return
    out.notes.append(f"{len(embedded)} overlay plane(s) inside the pixel data dropped (not converted to Overlay Data)")
    high = int(ds.HighBit)
    if ds.BitsAllocated == 16 and high < 15:
        words = np.frombuffer(ds.PixelData, "<u2")
        mask = (1 << (high + 1)) - 1
        if int(words.max()) > mask:
            put(ds, "PixelData", (words & mask).astype("<u2").tobytes())
            out.notes.append(f"pixel values masked to Bits Stored (bits above {high} held overlays)")


class ValueReader:
    """Reads element values by VR and byte order, checking every size first."""

    def __init__(self, stream: Stream):
        self.stream = stream
        self.order = stream.order
        self.data = stream.data

    def raw(self, elem: Element) -> bytes:
        start = elem.value_offset
        return self.data[start:start + elem.length]

    def text(self, elem: Element, vr: str) -> list[str]:
        text = self.raw(elem).decode("latin-1").rstrip("\0 ")
        if vr in SINGLE_TEXT_VRS:
            return [text] if text else []
        if not text:
            return []
        if "\\" not in text:  # one value, the usual case
            return [text.strip("\0 ") if vr == "UI" else text]
        return [v.rstrip("\0 ") if vr != "UI" else v.strip("\0 ") for v in text.split("\\")]

    def binary(self, elem: Element, vr: str) -> list[int] | list[float] | None:
        """Numbers of a binary VR, decoded by the value length (short UL values allowed)."""
        raw, order = self.raw(elem), self.order
        if vr in ("UL", "SL") and len(raw) == 2:  # SPI "short" UL (acr-nema.md 4 step 7)
            vr = "US" if vr == "UL" else "SS"
        size = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "AT": 4, "FL": 4, "FD": 8}[vr]
        if len(raw) % size:
            return None
        if vr in ("US", "SS", "AT"):
            words = np.frombuffer(raw, dtype=order.u16)
            if vr == "SS":
                return words.astype(np.int16).tolist()
            if vr == "AT":
                return [(int(g) << 16) | int(e) for g, e in words.reshape(-1, 2)]
            return words.astype(np.uint16).tolist()
        if vr in ("UL", "SL"):
            values = _u32_array(order, raw)
            return (values.astype(np.int32) if vr == "SL" else values).tolist()
        big = order is not ByteOrder.LITTLE
        if vr == "FL":
            data = _to_big32(order, raw) if big else raw
            return np.frombuffer(data, dtype=">f4" if big else "<f4").astype(float).tolist()
        return np.frombuffer(raw, dtype=">f8" if big else "<f8").astype(float).tolist()

    def words(self, elem: Element) -> bytes:
        """OW data as little-endian bytes."""
        raw = self.raw(elem)[: elem.length & ~1]
        if self.order is ByteOrder.LITTLE:
            return raw
        return np.frombuffer(raw, dtype=">u2").astype("<u2").tobytes()


def _concrete_vr(vr: str, tag: int) -> str:
    """One VR where the dictionary allows several ("US or SS", "OB or OW")."""
    if " or " not in vr:
        return vr
    choices = vr.split(" or ")
    return "OW" if "OW" in choices and "US" not in choices else choices[0]


def _read_standard(reader: ValueReader, elem: Element, out: Converted, items: dict[int, DataElement]) -> None:
    entry = standard_entry(elem.tag)
    if entry is None:
        out.notes.append(f"{tag_str(elem.tag)} at offset {elem.offset} is in no dictionary: dropped")
        return
    vr = _concrete_vr(entry.vr, elem.tag)
    value = _decode(reader, elem, vr, out)
    if value is _INVALID:
        out.notes.append(f"{tag_str(elem.tag)} {entry.name} at offset {elem.offset} has no valid {vr} value: dropped")
        return
    if entry.retired:
        out.retired[elem.tag] = value
        return
    values, vr = _conform_standard(elem, vr, value, out)
    if values is _INVALID:
        return
    _put(items, element(elem.tag, vr, values))


_INVALID = object()


def _put(items: dict[int, DataElement], elem: DataElement) -> None:
    items[elem.tag] = elem  # keyed by pydicom's BaseTag, as a Dataset's own dict is


def element(tag: int, vr: str, value: Any) -> DataElement:
    """A data element from a value already made valid here: pydicom neither re-validates
    nor re-converts it (that work, per element, would cost more than decoding the file).
    Person names still become PersonName objects, which pydicom's writer needs."""
    return DataElement(BaseTag(tag), vr, value, already_converted=vr != "PN", validation_mode=config.IGNORE)


def _decode(reader: ValueReader, elem: Element, vr: str, out: Converted) -> Any:
    if vr in TEXT_VRS:
        return reader.text(elem, vr)
    if vr in ("US", "SS", "UL", "SL", "AT", "FL", "FD"):
        values = reader.binary(elem, vr)
        return _INVALID if values is None else values
    if vr == "OW":
        return reader.words(elem)
    if vr in ("OB", "UN"):
        return reader.raw(elem)
    return _INVALID  # SQ and other DICOM-only types cannot occur in an ACR-NEMA stream


def _conform_standard(elem: Element, vr: str, value: Any, out: Converted) -> tuple[Any, str]:
    """Values of a standard element in valid DICOM form; truncation and drops are noted."""
    if vr not in TEXT_VRS:
        return _unwrap(value), vr
    fixed: list[str] = []
    for v in value:
        if vr in ("LO", "SH", "ST", "LT", "PN", "AE"):
            v = v.strip() if vr in ("LO", "SH", "PN", "AE") else v.rstrip()
            if acrvalues.forbidden_controls(vr).search(v):
                out.notes.append(f"{tag_str(elem.tag)} control characters {vr} does not allow: made spaces")
                v = acrvalues.forbidden_controls(vr).sub(" ", v)
            if len(v) > acrvalues.MAX_LENGTH[vr]:
                out.notes.append(f"{tag_str(elem.tag)} value longer than {vr} allows: truncated")
                out.truncated[elem.tag] = v
                v = v[: acrvalues.MAX_LENGTH[vr]].rstrip()
            fixed.append(v)
            continue
        if not v.strip():
            fixed.append("")
            continue
        c = acrvalues.conform(vr, v)
        if c is None:
            out.notes.append(f"{tag_str(elem.tag)} at offset {elem.offset}: a value is not valid {vr}: element dropped")
            return _INVALID, vr
        fixed.append(c)
    return _unwrap(fixed), vr


def _unwrap(values: Any) -> Any:
    if isinstance(values, list):
        if not values:
            return None
        return values[0] if len(values) == 1 else values
    return values


def _read_private(
    reader: ValueReader, elem: Element, creators: dict[tuple[int, int], str], out: Converted,
    items: dict[int, DataElement],
) -> None:
    group, number = elem.tag >> 16, elem.tag & 0xFFFF
    if group in _ILLEGAL_PRIVATE_GROUPS:
        out.notes.append(f"{tag_str(elem.tag)}: group {group:04X} cannot hold private data in DICOM: dropped")
        return
    if 0x0010 <= number <= 0x00FF:
        creator = reader.raw(elem).decode("latin-1").rstrip("\0 ")
        creators[(group, number)] = creator
        _put(items, element(elem.tag, "LO", creator[:64]))
        return
    creator = creators.get((group, number >> 8))
    if creator is None:
        out.notes.append(f"{tag_str(elem.tag)} at offset {elem.offset} has no private creator: dropped")
        return
    entry = private_entry(creator, group, number & 0xFF)
    vr, value = _private_value(reader, elem, entry)
    _put(items, element(elem.tag, vr, value))
    out.private_tags.setdefault((creator, group, number & 0xFF), elem.tag)


def _private_value(reader: ValueReader, elem: Element, entry: Entry | None) -> tuple[str, Any]:
    """VR and value of a private element: the dictionary's where the value fits it.

    A value that is not valid for its dictionary VR (lower-case code strings, dates in
    ACR-NEMA form) is first conformed; if it still does not fit, it is kept as text (LT) so
    nothing is lost and nothing invalid is written.
    """
    raw = reader.raw(elem)
    vr = _concrete_vr(entry.vr, elem.tag) if entry is not None else ""
    if vr in ("US", "SS", "UL", "SL", "AT", "FL", "FD"):
        values = reader.binary(elem, vr)
        if values is not None:
            return vr, _unwrap(values)
        return "UN", raw
    if vr == "OW":
        return "OW", reader.words(elem)
    if vr in ("OB", "UN", "SQ") or (not vr and not _is_text(raw)):
        return ("OB" if vr == "OB" else "UN"), raw
    if not vr:
        vr = "LT"
    values = reader.text(elem, vr)
    fitted = _fit_text(vr, values)
    if fitted is not None:
        return vr, _unwrap(fitted)
    text = "\\".join(values)
    return ("LT" if len(text) <= acrvalues.MAX_LENGTH["LT"] else "UT"), text


def _fit_text(vr: str, values: list[str]) -> list[str] | None:
    if vr not in _STRIPPED and acrvalues.all_valid(vr, values):
        return values
    fitted = []
    for v in values:
        if vr in _STRIPPED:
            v = v.strip()
        if v == "" or acrvalues.is_valid(vr, v):
            fitted.append(v)
            continue
        c = acrvalues.conform(vr, v) if vr in _STRIPPED else None
        if c is None:
            return None
        fitted.append(c)
    return fitted


def _is_text(raw: bytes) -> bool:
    return all(32 <= b < 127 or b in (0, 9, 10, 13) for b in raw)


def _fix_swapped_us(stream: Stream, out: Converted) -> ByteOrder:
    """Little-endian tags with big-endian US values (dicom3tools FIXUPSWAPPEDUS).

    Detected when Samples per Pixel or Bits Allocated reads above 255; then every single US
    value is byte-swapped, and the byte order of the pixel data (returned) is big endian.
    """
    ds = out.dataset
    if stream.order is not ByteOrder.LITTLE:
        return stream.order
    probes = [ds.get(k) for k in ("SamplesPerPixel", "BitsAllocated")]
    if not any(isinstance(v, int) and v > 255 for v in probes):
        return stream.order
    for elem in ds:
        if elem.VR == "US" and isinstance(elem.value, int):
            v = elem.value
            elem.value = ((v & 0xFF) << 8) | (v >> 8)
    out.notes.append("US values and pixel data are byte-swapped (big endian) in a little-endian stream: fixed")
    return ByteOrder.BIG


def _pixel_element(out: Converted, candidates: dict[int, Element]) -> Element:
    """(7FE0,0010), or the group Image Location (0028,0200) names (acr-nema.md 2)."""
    location = out.retired.get(_IMAGE_LOCATION)
    group = int(location[0]) if location else 0x7FE0
    if group in candidates:
        return candidates[group]
    if location:
        raise DecodeError(f"Image Location names group {group:04X}, which holds no pixel data", field="ImageLocation")
    if len(candidates) == 1:
        return next(iter(candidates.values()))
    raise DecodeError("no pixel data element", field="PixelData")


def _pixel_module(stream: Stream, out: Converted, pixel: Element, order: ByteOrder) -> None:
    ds = out.dataset
    _check_single_frame(out)
    compression = out.retired.get(_COMPRESSION_CODE)
    if compression and str(compression[0]).strip().upper() not in ("", "NONE"):
        raise DecodeError(f"ACR-NEMA compressed pixel data ({compression[0]!r}) is not supported",
                          field="CompressionCode")
    where = {e.tag: e.offset for e in stream.elements if e.tag in (_ROWS, _COLUMNS)}
    rows = Dimension(value_of(ds, "Rows"), "Rows", where.get(_ROWS))
    cols = Dimension(value_of(ds, "Columns"), "Columns", where.get(_COLUMNS))
    recognition = out.retired.get(_RECOGNITION_CODE) or [""]
    if str(recognition[0]).startswith("ACRNEMA_LIBIDO"):  # LIBIDO wrote them swapped (3.2)
        rows, cols = cols, rows
    if value_of(ds, "SamplesPerPixel", 1) != 1:
        raise DecodeError(f"Samples per Pixel {ds.SamplesPerPixel}: only single-sample images are supported",
                          field="SamplesPerPixel")
    image_bytes(rows, cols, 16)  # the one size check, before anything is allocated
    count = rows.value * cols.value
    allocated = _bits_allocated(ds, pixel.length, count)
    stored = value_of(ds, "BitsStored") or (12 if allocated == 12 else allocated)
    high = value_of(ds, "HighBit")
    if not isinstance(high, int) or high >= max(allocated, 16) or high < 0:
        high = stored - 1
    if stored > 16 or stored < 1 or high >= 16:
        raise DecodeError(f"Bits Stored {stored} / High Bit {high} not supported", field="BitsStored")
    pixels = _read_pixels(stream.data, pixel, count, allocated, order, out)
    put_image_pixel(ds, rows.value, cols.value, pixels, bits_allocated=16 if allocated in (12, 16) else 8,
                    bits_stored=stored, high_bit=high, signed=value_of(ds, "PixelRepresentation") == 1,
                    photometric=value_of(ds, "PhotometricInterpretation") or "MONOCHROME2")
    out.pixel_offset = pixel.offset


def _check_single_frame(out: Converted) -> None:
    planes = out.retired.get(_PLANES)
    if planes and planes[0] > 1:
        raise DecodeError(f"ACR-NEMA volume with {planes[0]} planes: only single images are supported", field="Planes")


def _bits_allocated(ds: Dataset, length: int, count: int) -> int:
    allocated = value_of(ds, "BitsAllocated")
    if not allocated:
        stored = value_of(ds, "BitsStored")
        if isinstance(stored, int) and 0 < stored <= 16:
            allocated = 8 if stored <= 8 else 16  # Somatom files may lack it (acr-nema.md 6)
        elif length >= 2 * count:
            allocated = 16
        elif length >= count:
            allocated = 8
    if allocated not in (8, 12, 16):
        raise DecodeError(f"Bits Allocated {allocated} not supported", field="BitsAllocated")
    return allocated


def _read_pixels(data: bytes, pixel: Element, count: int, allocated: int, order: ByteOrder, out: Converted) -> bytes:
    """Little-endian pixel bytes; the element must hold at least what the image needs."""
    need = packed_length(count) if allocated == 12 else count * allocated // 8
    if pixel.length < need:
        raise DecodeError(
            f"pixel data holds {pixel.length} bytes, the image needs {need}", field="PixelData", offset=pixel.offset
        )
    if pixel.length > need + (need & 1):
        out.notes.append(f"pixel data holds {pixel.length - need} bytes more than the image needs: ignored")
    raw = memoryview(data)[pixel.value_offset : pixel.value_offset + need]  # no copy yet
    if allocated == 8:
        return bytes(raw) + (b"\0" if len(raw) & 1 else b"")
    words = np.frombuffer(raw[: len(raw) & ~1], dtype=order.u16)
    if allocated == 12:
        words = unpack12(words.astype(np.uint16, copy=False), count)
    return words.astype("<u2", copy=False).tobytes()


def _u32_array(order: ByteOrder, raw: bytes) -> np.ndarray:
    """32-bit unsigned values of ``raw`` (whose length is a multiple of 4) in ``order``."""
    if order is ByteOrder.BAD_BIG:
        w = np.frombuffer(raw, dtype=">u2").astype(np.uint32).reshape(-1, 2)
        return (w[:, 1] << 16) | w[:, 0]
    return np.frombuffer(raw, dtype="<u4" if order is ByteOrder.LITTLE else ">u4").astype(np.uint32)


def _to_big32(order: ByteOrder, raw: bytes) -> bytes:
    """``raw`` 32-bit units in ``order`` as plain big-endian bytes (for FL and friends)."""
    if order is ByteOrder.BAD_BIG:
        a = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 4)
        return a[:, [2, 3, 0, 1]].tobytes()
    return raw
