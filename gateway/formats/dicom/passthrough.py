"""DICOM pass-through: Part-10 files, and headerless implicit-VR little-endian streams.

Headerless streams (no preamble, no meta group) are what some vendors' DICOM export wrote;
they are DICOM once a meta header is added. ACR-NEMA and SPI streams look alike at the byte
level; they are told apart by content: a headerless DICOM stream carries an SOP Class UID and
no ACR-NEMA recognition code, and the SPI decoder (higher priority) claims SPI creators first.
"""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import RawDataElement, convert_raw_data_element, empty_value_for_VR
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.filereader import (
    ENCODED_VR,
    _read_file_meta_info,
    data_element_generator,
    read_preamble,
)
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from gateway.dicom import verbatim
from gateway.dicom.deferred import DEFER_SIZE, is_deferred
from gateway.dicom.tags import shared_tag
from gateway.dicom.unknown import is_unknown
from gateway.errors import DecodeError
from gateway.formats import Decoded, DumpRow
from gateway.formats.dicom.recognise import HeaderlessFormat, Part10Format

_ROWS = 0x00280010
_PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)  # Float, Double Float and (plain) Pixel Data
_SKIP_SIZE = 4096  # the completeness walk steps over longer values (pixel data) instead of copying them


class Part10(Part10Format):
    def decode(self, data: bytes) -> Decoded:
        if not self.identify(data):
            raise DecodeError("no DICM prefix: not a Part-10 file", field="DICM prefix", offset=128)
        ds, kept = _read(data, headerless=False)
        return Decoded(dataset=ds, format=self.name, verbatim=kept)

    def dump(self, data: bytes) -> list[DumpRow]:
        return _dump(data, _read(data, headerless=False)[0], headerless=False)


class Headerless(HeaderlessFormat):
    def decode(self, data: bytes) -> Decoded:
        ds, kept = _read(data, headerless=True)
        return Decoded(dataset=ds, format=self.name, verbatim=kept)

    def dump(self, data: bytes) -> list[DumpRow]:
        return _dump(data, _read(data, headerless=True)[0], headerless=True)


def _read(data: bytes, headerless: bool) -> tuple[pydicom.Dataset, verbatim.Original | None]:
    """The data set, and its bytes when they can stand for its unchanged elements (``verbatim``)."""
    try:
        read = None if headerless else _read_plain(data)
        if read is not None:
            ds, start, spans = read
        else:
            ds = pydicom.dcmread(io.BytesIO(data), force=headerless)
            found = _contiguous(data, headerless, ds)
            start, spans = found or _check_complete(io.BytesIO(data), len(data), headerless, ds, defer=_SKIP_SIZE)
        as_written = verbatim.parse_values(ds)  # parsed now where a value could be bad, so it surfaces here
    except InvalidDicomError as exc:
        raise DecodeError(f"not a DICOM file: {exc}") from None
    except _DAMAGED as exc:
        raise _damaged(exc, data, headerless) from None
    if headerless:
        # Kept as it came (implicit VR little endian): pass-through never re-encodes.
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    found = ds.file_meta.get(shared_tag(_TRANSFER_SYNTAX))  # by tag: no keyword lookup
    named = "" if found is None else found.value
    # One of the two plain syntaxes is a valid UID already: made one again, it is checked again.
    plain = isinstance(named, pydicom.uid.UID) and named in _PLAIN_SYNTAXES
    syntax = named if plain else pydicom.uid.UID(named)
    if not verbatim.reusable(ds, syntax, as_written) or spans.keys() != set(map(int, ds.keys())):
        verbatim.parse_all(ds)  # encoded again: every element from its value
        return ds, None
    return ds, verbatim.Original(memoryview(data)[start:], spans, syntax)


# What pydicom raises for damaged input, beside InvalidDicomError: a value of the wrong size
# (BytesLengthException), an ambiguous VR it cannot resolve (AttributeError), a value its
# type refuses (TypeError), a tag or a position it cannot read (OSError, KeyError).
_DAMAGED = (EOFError, struct.error, ValueError, OSError, NotImplementedError, BytesLengthException,
            TypeError, AttributeError, KeyError)
_TAG_TEXT = re.compile(r"\(([0-9A-Fa-f]{4}),\s*([0-9A-Fa-f]{4})\)")
_POSITION_TEXT = re.compile(r"file position (?:0x)?([0-9A-Fa-f]+)")


def _damaged(exc: Exception, data: bytes | None, headerless: bool) -> DecodeError:
    """pydicom's complaint about damaged input as one line naming the element, and the byte
    offset of its value where it can be known: from the message, or (where the data set
    reads, but one value does not) by asking each element in turn."""
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    match = _TAG_TEXT.search(text)
    tag = int(match.group(1) + match.group(2), 16) if match else None
    position = _POSITION_TEXT.search(text)
    offset = int(position.group(1), 16) if position else None
    if tag is None and data is not None:
        tag, offset = _failing_element(data, headerless, offset)
    elif offset is None and data is not None:
        offset = _value_offset(data, headerless, tag)
    name = None if tag is None else keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return DecodeError(f"damaged DICOM data set: {text}", field=name, offset=offset)


def _failing_element(data: bytes, headerless: bool, offset: int | None) -> tuple[int | None, int | None]:
    """The meta header's Transfer Syntax UID where it names none, else the first top-level
    element whose value does not read; and its value's offset."""
    bad, at = (False, None) if headerless else _bad_syntax(data)
    if bad:
        return _TRANSFER_SYNTAX, at
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=headerless)
    except Exception:  # noqa: BLE001 - the data set itself does not read: no element to name
        return None, offset
    for tag in ds.keys():
        try:
            elem = ds[tag]
            if elem.VR == "SQ":
                for item in elem.value:
                    for _ in item.iterall():
                        pass
        except Exception:  # noqa: BLE001 - this is the element the complaint was about
            raw = ds.get_item(tag)
            return tag, getattr(raw, "value_tell", offset)
    return None, offset


def _value_offset(data: bytes, headerless: bool, tag: int) -> int | None:
    """Where the value of top-level element ``tag`` begins, if the data set reads that far."""
    try:
        elem = pydicom.dcmread(io.BytesIO(data), force=headerless).get_item(tag)
    except Exception:  # noqa: BLE001 - it does not: the element is named without a place
        return None
    return getattr(elem, "value_tell", None)


_TRANSFER_SYNTAX = 0x00020010


def _bad_syntax(data: bytes) -> tuple[bool, int | None]:
    """Whether a Part-10 file's meta header names something other than a transfer syntax (and
    the offset of that value): pydicom then cannot read the data set at all."""
    try:
        fp = io.BytesIO(data)
        read_preamble(fp, False)
        meta = _read_file_meta_info(fp)
        elem = meta.get_item(_TRANSFER_SYNTAX)
        if elem is None:
            return False, None
        return not pydicom.uid.UID(meta.TransferSyntaxUID).is_transfer_syntax, getattr(elem, "value_tell", None)
    except Exception:  # noqa: BLE001 - no readable meta header: nothing to say about it
        return False, None


def decode_file(path: Path, defer_size: int = DEFER_SIZE) -> Decoded:
    """A Part-10 file decoded with its values over ``defer_size`` bytes (pixel data) left in
    the file (``gateway.dicom.deferred``), for objects too large to hold in memory; checked
    as ``Part10.decode`` checks bytes, except that deferred values are not parsed."""
    with open(path, "rb") as fp:
        if not Part10().identify(fp.read(132)):
            raise DecodeError("no DICM prefix: not a Part-10 file", field="DICM prefix", offset=128)
    try:
        ds = pydicom.dcmread(path, defer_size=defer_size)
        if pydicom.uid.UID(ds.file_meta.get("TransferSyntaxUID", "")).is_deflated:
            ds = pydicom.dcmread(path)  # inflated in memory: nothing of it can stay in the file
        with open(path, "rb") as fp:
            _check_complete(fp, path.stat().st_size, False, ds, defer=defer_size)
        _parse_values(ds)
    except InvalidDicomError as exc:
        raise DecodeError(f"not a DICOM file: {exc}") from None
    except _DAMAGED as exc:
        raise _damaged(exc, None, False) from None
    return Decoded(dataset=ds, format=Part10.name)


def _parse_values(ds, nested: bool = False) -> None:
    """Every value but the deferred ones parsed now, so bad values surface here; and but those
    of top-level elements that are no standard attribute, which normalisation removes with
    their bytes as they came (``gateway.dicom.unknown``)."""
    for tag in ds.keys():
        if is_deferred(ds, tag) and ds.get_item(tag, keep_deferred=True).VR != "SQ":
            continue
        if not nested and is_unknown(tag) and isinstance(ds.get_item(tag, keep_deferred=True), RawDataElement):
            continue
        elem = ds[tag]
        if elem.VR == "SQ":
            for item in elem.value:
                _parse_values(item, nested=True)


def _encoding(ds) -> tuple[pydicom.uid.UID, bool, bool]:
    """The transfer syntax the File Meta names (implicit VR little endian when none) and the
    encoding (implicit VR, little endian) the completeness check reads the data set in."""
    syntax = pydicom.uid.UID(ds.file_meta.get("TransferSyntaxUID", pydicom.uid.ImplicitVRLittleEndian))
    implicit = syntax.is_implicit_VR if syntax.is_transfer_syntax else True
    little = syntax.is_little_endian if syntax.is_transfer_syntax else True
    return syntax, implicit, little


def _contiguous(data: bytes, headerless: bool, ds) -> tuple[int, dict[int, tuple[int, int]]] | None:
    """``_check_complete``'s answer for a whole data set, from the elements pydicom read,
    without reading the file again: each top-level element of defined length, whole, and its
    header where its value's position says, begins where the one before it ends, and the last
    ends at the end of the data. None when anything is otherwise (the check then walks the
    bytes, to find and name what is wrong)."""
    syntax, implicit, little = _encoding(ds)
    if not little or syntax.is_deflated or ds.original_encoding != (implicit, little):
        return None
    if not len(ds):
        return None
    spans = {}
    walked = (0, None) if headerless else _meta_walk(data)
    if walked is None:
        return None
    begin = end = walked[0]
    unpack = struct.unpack_from
    for raw in ds.values():  # as read: in file order, unconverted
        if type(raw) is not RawDataElement or raw.value is None or raw.length == 0xFFFFFFFF \
                or len(raw.value) != raw.length:
            return None
        tag, vr = raw.tag, None
        long = not implicit and raw.VR in EXPLICIT_VR_LENGTH_32
        start = raw.value_tell - (12 if long else 8)
        if start != end:
            return None
        if implicit:
            group, element, length = unpack("<HHI", data, start)
        elif long:
            group, element, vr, length = unpack("<HH2s2xI", data, start)
        else:
            group, element, vr, length = unpack("<HH2sH", data, start)
        if group != tag >> 16 or element != tag & 0xFFFF or length != raw.length \
                or not implicit and vr != raw.VR.encode():
            return None
        end = raw.value_tell + length
        spans[int(tag)] = (start - begin, end - begin)
    if end != len(data) or _ROWS in ds and not any(tag in ds for tag in _PIXEL_TAGS):
        return None
    return begin, spans


# Each VR pydicom knows, by its two bytes: one lookup instead of a check and a decode by the
# codec's name (pydicom's "iso8859", which Python looks up anew each time: a microsecond).
_VR_NAMES = {code: code.decode(default_encoding) for code in ENCODED_VR}

_PLAIN_SYNTAXES = {str(pydicom.uid.ImplicitVRLittleEndian): True, str(pydicom.uid.ExplicitVRLittleEndian): False}


def _read_plain(data: bytes) -> tuple[FileDataset, int, dict[int, tuple[int, int]]] | None:
    """What ``dcmread`` and ``_check_complete`` make of a plain Part-10 file, in one pass over
    its data set: the same data set of raw elements, where it begins, and each element's
    span. Plain: a little endian syntax the File Meta names and the first element agrees with,
    no Command Set, and elements of defined length and known VR, each whole, up to the end.
    None for anything else, found before pydicom reads anything (so nothing it warns about is
    said twice): ``dcmread`` and the completeness walk then read it, and name what is wrong."""
    meta = _plain_meta(data)
    if meta is None:
        return None
    begin, implicit, stepped = meta
    found = _plain_elements(data, begin, implicit)
    if found is None:
        return None
    file_meta = _file_meta(data, stepped, begin)
    if file_meta is None:  # pydicom's reader, which has something to say about it
        fp = io.BytesIO(data)
        read_preamble(fp, False)
        file_meta = _read_file_meta_info(fp)
        if fp.tell() != begin:
            return None  # not where the walk over group 0002 ended: let dcmread read it all
    syntax = file_meta.get(shared_tag(_TRANSFER_SYNTAX))  # by tag: no keyword lookup
    if syntax is None or _PLAIN_SYNTAXES.get(syntax.value) is not implicit:
        return None
    elements, spans = found
    fp = io.BytesIO(data)
    fp.seek(len(data))
    return _file_dataset(fp, elements, bytes(data[:128]), file_meta, implicit), begin, spans


def _file_meta(data: bytes, stepped: list[_MetaElement], end: int) -> FileMetaDataset | None:
    """The File Meta as ``_read_file_meta_info`` reads it (raw elements, the first one
    converted; here the Transfer Syntax UID too, which is read next), from the elements
    ``_meta_walk`` stepped over up to ``end``: pydicom's reader builds a data set twice and a
    generator for six elements. Only where it would say nothing: a first element that is the
    group length, holding the length it should (pydicom logs otherwise); else None, before
    anything is converted or said."""
    elements: dict[BaseTag, RawDataElement] = {}
    for element, vr, length, at in stepped:
        tag = BaseTag(0x00020000 | element)
        value = data[at:at + length] if length else empty_value_for_VR(vr, raw=True)
        elements[tag] = RawDataElement(tag, vr, length, value, at, False, True)
    first = next(iter(elements.values()), None)
    if first is None or first.tag != _GROUP_LENGTH or first.VR != "UL" or first.length != 4 \
            or struct.unpack("<I", first.value)[0] != end - 144:
        return None
    for tag in (_GROUP_LENGTH, _TRANSFER_SYNTAX):  # read first thing: converted the cheap way
        raw = elements.get(tag)
        if raw is not None and verbatim.plain(raw, texts=True):
            elements[tag] = verbatim.converted(raw)
    meta = FileMetaDataset(elements)
    meta.set_original_encoding(False, True, default_encoding)
    return meta


_GROUP_LENGTH = 0x00020000


def _plain_meta(data: bytes) -> tuple[int, bool, list[_MetaElement]] | None:
    """Where the File Meta after ``DICM`` ends (``_meta_walk``), whether the syntax it names,
    one of ``_PLAIN_SYNTAXES``, is implicit VR, and its elements; None otherwise."""
    walked = _meta_walk(data)
    implicit = None if walked is None else _PLAIN_SYNTAXES.get(walked[1])
    return None if implicit is None else (walked[0], implicit, walked[2])


# An element of group 0002 as ``_meta_walk`` stepped over it: element number, VR, value length
# and where the value starts.
_MetaElement = tuple[int, str, int, int]


def _meta_walk(data: bytes) -> tuple[int, str | None, list[_MetaElement]] | None:
    """Where the File Meta after ``DICM`` ends, as ``_read_file_meta_info`` steps over it
    (explicit VR little endian elements of group 0002), the transfer syntax it names, and the
    elements stepped over; None where an element is not whole or its VR not one pydicom knows."""
    pos, total, syntax = 132, len(data), None
    stepped: list[_MetaElement] = []
    while total - pos >= 8 and data[pos:pos + 2] == b"\2\0":
        element, code, length = struct.unpack_from("<H2sH", data, pos + 2)
        if code not in ENCODED_VR:
            return None
        vr, at = _VR_NAMES[code], pos + 8
        if vr in EXPLICIT_VR_LENGTH_32:
            if total - pos < 12:
                return None
            length, at = struct.unpack_from("<I", data, pos + 8)[0], pos + 12
        if length == 0xFFFFFFFF or at + length > total:
            return None
        if element == 0x0010:
            syntax = bytes(data[at:at + length]).rstrip(b"\0 ").decode("latin-1")
        stepped.append((element, vr, length, at))
        pos = at + length
    return pos, syntax, stepped


def _plain_elements(data: bytes, begin: int, implicit: bool) -> tuple[dict, dict] | None:
    """The data set from ``begin`` as ``data_element_generator`` reads it (raw elements by tag,
    the last of a repeated tag kept) and each element's span from ``begin``, when every element
    is plain (see ``_read_plain``) and the last ends at the end of the data; else None."""
    total = len(data)
    if total - begin < 8 or data[begin:begin + 2] == b"\0\0":
        return None  # no data set, or a Command Set first
    found_implicit = not (0x40 < data[begin + 4] < 0x5B and 0x40 < data[begin + 5] < 0x5B)
    if found_implicit != implicit:
        return None  # pydicom warns and reads it the other way
    elements: dict[BaseTag, RawDataElement] = {}
    spans = {}
    unpack, new = struct.unpack_from, _RAW_NEW
    pos = begin
    while pos < total:
        if total - pos < 8:
            return None
        if implicit:
            group, element, length = unpack("<HHI", data, pos)
            vr, at = None, pos + 8
        else:
            group, element, code, length = unpack("<HH2sH", data, pos)
            vr, at = _VR_NAMES.get(code), pos + 8
            if vr is None:
                return None
            if vr in EXPLICIT_VR_LENGTH_32:
                if total - pos < 12:
                    return None
                length, at = unpack("<I", data, pos + 8)[0], pos + 12
        tag = group << 16 | element
        if tag == 0xFFFEE00D or length == 0xFFFFFFFF or at + length > total:
            return None
        value = data[at:at + length] if length else empty_value_for_VR(vr, raw=True)
        key = shared_tag(tag)  # one object, key and element's tag, as read_dataset keeps them
        elements[key] = new(RawDataElement, (key, vr, length, value, at, implicit, True, True, False))
        spans[tag] = (pos - begin, at + length - begin)
        pos = at + length
    if _ROWS in elements and not any(tag in elements for tag in _PIXEL_TAGS):
        return None
    return elements, spans


# Makes a RawDataElement of all its fields (is_raw and is_buffered at their defaults) as its
# NamedTuple constructor does, without that constructor's Python frame (~40 an image); by the
# constructor itself should pydicom ever change the fields.
_RAW_FIELDS = ("tag", "VR", "length", "value", "value_tell", "is_implicit_VR", "is_little_endian", "is_raw",
               "is_buffered")
_RAW_NEW = tuple.__new__ if RawDataElement._fields == _RAW_FIELDS \
    and tuple(RawDataElement._field_defaults.values()) == (True, False) else lambda cls, fields: cls(*fields)


def _file_dataset(fp: BinaryIO, elements: dict, preamble: bytes | None, file_meta, implicit: bool) -> FileDataset:
    """The data set as ``read_dataset`` and ``read_partial`` wrap the elements they read (the
    character set converted as they convert it: twice; no inner data set, which only lends
    the outer one its elements)."""
    if 0x00080005 in elements:
        convert_encodings(convert_raw_data_element(elements[BaseTag(0x00080005)]).value)
    ds = FileDataset(fp, elements, preamble, file_meta, implicit, True)
    ds.set_original_encoding(implicit, True, ds._character_set)
    return ds


def _check_complete(fp: BinaryIO, total: int, headerless: bool, ds,
                    defer: int | None = None) -> tuple[int, dict[int, tuple[int, int]]]:
    """pydicom reads a truncated file without complaint; walk the top-level elements and
    require each to be whole and the last to end at the end of the data (``total`` bytes).
    Values longer than ``defer`` are skipped, not read: their end is checked by position.
    Returns where the data set begins and where each element lies, counted from there."""
    if not headerless:
        read_preamble(fp, False)
        _read_file_meta_info(fp)
    syntax, implicit, little = _encoding(ds)
    if syntax.is_deflated:
        return fp.tell(), {}  # a deflated stream is checked by the inflater itself
    begin = end = fp.tell()
    spans = {}
    if end == total:
        raise DecodeError("no data set: the data ends before the first element", offset=end)
    for elem in data_element_generator(fp, implicit, little, defer_size=defer):
        start = end
        end = fp.tell()
        spans[int(elem.tag)] = (start - begin, end - begin)
        # A sequence of undefined length comes parsed (a DataElement, no ``length``): its
        # items were read up to their delimiters, so it is whole or pydicom said otherwise.
        if type(elem) is RawDataElement and elem.length != 0xFFFFFFFF and elem.value is not None \
                and len(elem.value) != elem.length:
            raise DecodeError(
                f"element {elem.tag} is truncated: {len(elem.value)} of {elem.length} bytes",
                field=str(elem.tag), offset=start,
            )
        if end > total:  # a skipped value that runs past the end
            raise DecodeError(f"element {elem.tag} is truncated: {total - start} bytes of {end - start}",
                              field=str(elem.tag), offset=start)
    if end != total:
        raise DecodeError(f"{total - end} bytes of an incomplete element at the end", offset=end)
    if _ROWS in ds and not any(tag in ds for tag in _PIXEL_TAGS):
        # Cut at an element boundary before the pixels: whole elements, but not the object
        # (``extent`` says the same: an object ends with its Pixel Data).
        raise DecodeError("an image whose data ends before its Pixel Data", field="PixelData", offset=end)
    return begin, spans


def _dump(data: bytes, ds, headerless: bool) -> list[DumpRow]:
    """Every element, nested ones included, each at its offset in ``data``; a Part-10 file's
    meta group first (a headerless stream's meta group is ours, not in the data)."""
    little = ds.original_encoding[1] is not False
    rows = [] if headerless else _rows(data, ds.file_meta, True, 0)
    return rows + _rows(data, ds, little, 0)


def _rows(data: bytes, ds, little: bool, base: int) -> list[DumpRow]:
    """Rows of ``ds`` and its sequences. pydicom keeps where each value starts, counted from
    ``base``: the file's start, or for items of a sequence of defined length (parsed from
    the sequence's own bytes) the start of that sequence's value."""
    rows = []
    for elem in ds:
        value_at = base + elem.file_tell if elem.file_tell is not None else None
        rows.append(DumpRow(offset=_element_offset(data, elem.tag, value_at, little),
                            name=elem.keyword or str(elem.tag), type=elem.VR, value=elem.repval))
        if elem.VR == "SQ" and value_at is not None:
            inner = base if elem.is_undefined_length else value_at
            for item in elem.value:
                rows += _rows(data, item, little, inner)
    return rows


def _element_offset(data: bytes, tag, value_at: int | None, little: bool) -> int:
    """Where an element's header starts, 8 bytes (implicit VR, short explicit VRs) or 12
    (long explicit VRs) before its value; the tag at the start tells which."""
    if value_at is None:
        return -1
    packed = struct.pack("<HH" if little else ">HH", tag.group, tag.element)
    for header in (8, 12):
        if data[value_at - header:value_at - header + 4] == packed:
            return value_at - header
    return value_at  # not found: the value's own offset still points into the element
