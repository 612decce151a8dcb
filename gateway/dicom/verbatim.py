"""DICOM passed through keeps the bytes of the elements normalisation left as they were.

Re-encoding a clean Part-10 CT with pydicom costs more than reading and normalising it
together, and for the elements that normalisation, repair and coercion did not touch it only
reproduces what the file already holds. pydicom writes a data set in its original encoding
element by element, in tag order, each on its own (``filewriter.write_dataset``); so the same
data set results from taking, in tag order, the original bytes of every unchanged top-level
element and pydicom's encoding of every new or changed one (``part10``).

That holds only where the original bytes of an element are what pydicom would write for it
again, up to the same data set. ``parse_values`` and ``reusable`` are deliberately narrow:
any encoding detail pydicom's writer would change (an odd length it pads, a VR it corrects, a
Pixel Data length form it rewrites, a character set whose decoding may not round-trip, a
deflated, big-endian or private transfer syntax, an encoding other than the File Meta's) and
any change to the character set or the Pixel Data send the instance down the ordinary path
(``part10`` returns None).
"""

from __future__ import annotations

import struct
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from pydicom.charset import default_encoding
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

_UNDEFINED = 0xFFFFFFFF
_CHARSET = 0x00080005
_PIXEL_DATA = 0x7FE00010
# Character sets whose decoding maps every byte to one character and back (latin-1 and its
# ASCII subset; pydicom reads text without a Specific Character Set as latin-1 too).
_LOSSLESS_CHARSETS = {"", "ISO_IR 6", "ISO_IR 100"}

Snapshot = dict[int, tuple[str, Any]]


@dataclass(frozen=True)
class Original:
    """A data set's bytes as they came (after any File Meta), where each top-level element
    lies in them (tag -> start, end), and the transfer syntax they are in."""

    data: memoryview
    spans: dict[int, tuple[int, int]]
    syntax: UID


def parse_values(ds: Dataset, nested: bool = False) -> bool:
    """Parse every value of ``ds`` (nested ones too) now, so bad values surface in the
    decoder, and return whether each element was encoded as pydicom would write it again:
    an even or undefined length, (explicit VR) the VR pydicom keeps, and inside sequences no
    group length (pydicom leaves those out; at the top level normalisation drops them)."""
    same = True
    for tag in ds.keys():
        raw = ds.get_item(tag)
        elem = ds[tag]
        if isinstance(raw, RawDataElement):
            if raw.length != _UNDEFINED and raw.length % 2:
                same = False  # pydicom pads it
            if raw.VR is not None and raw.VR != elem.VR:
                same = False  # pydicom replaced the VR the file wrote (UN for a known tag)
        if nested and tag.element == 0 and tag.group > 6:
            same = False
        if elem.VR == "SQ":
            for item in elem.value:
                same = parse_values(item, nested=True) and same
    return same


def reusable(ds: Dataset, syntax: UID, values_as_written: bool) -> bool:
    """Whether the element bytes of ``ds`` (read in ``syntax``) stand for what pydicom would
    write of the same elements: ``values_as_written`` from ``parse_values``, a plain little
    endian transfer syntax that pydicom found the data in, a character set that round-trips,
    and Pixel Data whose length form (undefined when encapsulated) pydicom would not change."""
    if not values_as_written or not syntax.is_transfer_syntax or syntax.is_private:
        return False
    if syntax.is_deflated or not syntax.is_little_endian:
        return False
    if ds.original_encoding != (syntax.is_implicit_VR, syntax.is_little_endian):
        return False  # pydicom found another encoding than the File Meta names (and read that)
    charset = ds.get("SpecificCharacterSet", "")
    if not isinstance(charset, str) or charset.strip() not in _LOSSLESS_CHARSETS:
        return False
    if _PIXEL_DATA in ds:
        pixels = ds.get_item(_PIXEL_DATA)
        undefined = pixels.length == _UNDEFINED if isinstance(pixels, RawDataElement) else pixels.is_undefined_length
        if undefined != syntax.is_compressed:
            return False
    return True


def snapshot(ds: Dataset) -> Snapshot:
    """Every top-level element of ``ds`` as (VR, value), sequences item by item: two
    snapshots agree on a tag only if its element kept its VR and its value, down to the text
    of a number (DS "1.50" is not "1.5"). Byte values are kept by reference, not copied."""
    shot = {}
    for tag in ds.keys():
        elem = ds.get_item(tag)  # parsed already (parse_values, or made by normalisation): no conversion
        if isinstance(elem, RawDataElement):
            elem = ds[tag]
        shot[int(tag)] = (elem.VR, _frozen(elem.value))
    return shot


def _frozen(value: Any) -> Any:
    if isinstance(value, Sequence):
        return tuple(snapshot(item) for item in value)
    if isinstance(value, (MultiValue, list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return type(value), str(value)


def part10(ds: Dataset, original: Original, before: Snapshot) -> bytes | None:
    """The Part-10 file pydicom's ``save_as(enforce_file_format=True)`` would write for ``ds``
    (normalised from the data set ``original`` holds, whose snapshot was ``before``), up to
    the same data set: its preamble or 128 zero bytes, ``DICM``, its File Meta, then each
    element's original bytes where it is unchanged and pydicom's encoding where not. None
    when the whole data set has to be encoded again (see the module docstring)."""
    after = snapshot(ds)
    meta_syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    if meta_syntax != original.syntax or any(after.get(t) != before.get(t) for t in (_CHARSET, _PIXEL_DATA)):
        return None
    preamble = getattr(ds, "preamble", None)
    chunks: list[bytes | memoryview] = [preamble if preamble else b"\0" * 128, b"DICM", _file_meta(ds)]
    encodings = ds.get("SpecificCharacterSet", default_encoding)
    run: tuple[int, int] | None = None  # adjacent unchanged elements, taken as one slice
    for tag in sorted(after):
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue  # a retired group length: pydicom does not write it either
        span = original.spans.get(tag) if after[tag] == before.get(tag) else None
        if span is not None and run is not None and run[1] == span[0]:
            run = (run[0], span[1])
            continue
        if run is not None:
            chunks.append(original.data[run[0]:run[1]])
        run = span
        if span is None:
            chunks.append(_element(ds, tag, original.syntax.is_implicit_VR, encodings))
    if run is not None:
        chunks.append(original.data[run[0]:run[1]])
    return b"".join(chunks)


def _element(ds: Dataset, tag: int, implicit: bool, encodings) -> bytes:
    """One element as pydicom's ``write_dataset`` writes it in this encoding."""
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, True
    write_data_element(fp, ds[tag], encodings)
    return fp.getvalue()


# The File Meta elements normalisation writes, and how each value is padded to even length.
_META_PADDING = {"UI": b"\0", "SH": b" "}


def _file_meta(ds: Dataset) -> bytes:
    """The File Meta group as ``write_file_meta_info(enforce_standard=True)`` writes it (group
    length and version first), written here when it holds only the UI and SH elements
    normalisation writes (pydicom's costs a tenth of a millisecond of checks); else by pydicom."""
    meta = ds.file_meta
    body = []
    for tag in sorted(meta.keys()):
        elem = meta[tag]
        if tag in (0x00020000, 0x00020001) or elem.VR not in _META_PADDING or not isinstance(elem.value, str):
            fp = DicomBytesIO()
            write_file_meta_info(fp, deepcopy(meta), enforce_standard=True)  # as dcmwrite: ds's own kept
            return fp.getvalue()
        value = elem.value.encode("ascii")
        value += _META_PADDING[elem.VR] * (len(value) % 2)
        body.append(struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, elem.VR.encode(), len(value)) + value)
    version = struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\0\1"
    rest = version + b"".join(body)
    return struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(rest)) + rest
