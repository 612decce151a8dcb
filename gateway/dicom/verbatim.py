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

import codecs
import re
import struct
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from pydicom import config as pydicom_config
from pydicom.charset import default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.hooks import hooks, raw_element_value, raw_element_vr
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pydicom.values import convert_numbers, multi_string

from gateway.dicom.tags import shared_tag
from gateway.dicom.unknown import is_unknown

_UNDEFINED = 0xFFFFFFFF
_CHARSET = 0x00080005
_CHARSET_TAG = shared_tag(_CHARSET)
_TRANSFER_SYNTAX = shared_tag(0x00020010)
_PIXEL_DATA = 0x7FE00010
# Character sets whose decoding maps every byte to one character and back (latin-1 and its
# ASCII subset; pydicom reads text without a Specific Character Set as latin-1 too).
_LOSSLESS_CHARSETS = {"", "ISO_IR 6", "ISO_IR 100"}

Snapshot = dict[int, Any]  # tag -> a raw element, or (VR, frozen value)


@dataclass(frozen=True)
class Original:
    """A data set's bytes as they came (after any File Meta), where each top-level element
    lies in them (tag -> start, end), and the transfer syntax they are in."""

    data: memoryview
    spans: dict[int, tuple[int, int]]
    syntax: UID


def parse_values(ds: Dataset, nested: bool = False) -> bool:
    """Parse now every value of ``ds`` (nested ones too) that could fail or warn, so bad values
    surface in the decoder, and return whether each element was encoded as pydicom would
    write it again: an even or undefined length, (explicit VR) the VR pydicom keeps, and inside
    sequences no group length (pydicom leaves those out; at the top level normalisation drops
    them). A top-level element that is ``plain`` stays raw: converting it would say nothing new,
    and most are never read (a CT's 40 conversions were a quarter of its pass-through). So does
    one that is no standard attribute (``unknown``): normalisation removes it, keeping its bytes
    as they came, so a value it could not convert is no reason to refuse the instance."""
    same = True
    texts = not nested and lossless(ds)
    kept = {}
    for tag, raw in list(ds.items()):  # unconverted
        if not nested and type(raw) is RawDataElement and plain(raw, texts):
            kept[tag] = raw
            continue
        if not nested and type(raw) is RawDataElement and is_unknown(tag):
            continue
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
    if not nested:
        ds.__dict__[_PLAIN_KEPT] = kept
    return same


_PLAIN_KEPT = "_verbatim_plain"  # beside a decoded data set: tag -> the plain raw element left there


def is_plain(ds: Dataset, tag: int, raw: RawDataElement) -> bool:
    """``plain(raw)`` for an element of ``ds``, answered from ``parse_values`` where it looked."""
    kept = ds.__dict__.get(_PLAIN_KEPT)
    if kept is not None and kept.get(tag) is raw:
        return True
    return plain(raw, lossless(ds))


def parse_all(ds: Dataset) -> None:
    """Convert the elements ``parse_values`` left raw (silently: they are ``plain``), for a
    data set pydicom will encode again: its writer copies a raw element's bytes as they are.
    Elements that are no standard attribute stay raw: normalisation removes them."""
    for tag in ds.keys():
        if isinstance(ds.get_item(tag), RawDataElement) and not is_unknown(tag):
            ds[tag]
    _forget(ds)


def _forget(ds: Dataset) -> None:
    """Drop the notes kept beside ``ds`` (``parse_values``, ``read``): a FileDataset compares
    its attributes too, and nothing needs them once ``part10`` is done."""
    ds.__dict__.pop(_PLAIN_KEPT, None)
    ds.__dict__.pop(_READ, None)


# What a plain raw element may hold, by VR: text whose pydicom conversion neither warns nor
# fails (its validators accept every value) and which ``repair.conform_values`` would keep as
# it is (``values.is_valid``), or numbers of the right size. Stricter than either rule: what
# is not plain is converted as before. Per value (split at backslashes), after the trailing
# spaces and NULs pydicom strips; each value's length is checked on the unstripped bytes.
_TEXT = rb"[\x20-\x5b\x5d-\x7e]"  # printable ASCII but backslash
_PLAIN_TEXT = {
    "CS": (rb"[A-Z0-9 _]*", 16),
    "DA": (rb"(?:\d{8})?", 8),
    "TM": (rb"(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?", 14),
    "UI": (rb"(?:(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*)?", 64),
    "DS": (rb"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+))?", 16),
    "IS": (rb"(?:[+-]?\d{1,9})?", 12),
    "SH": (_TEXT + b"*", 16),
    "LO": (_TEXT + b"*", 64),
    "PN": (rb"[\x20-\x3c\x3e-\x5b\x5d-\x7e]*", 64),  # one component group: no "="
}
_PLAIN_RE = {vr: re.compile(rb"%s(?:\\%s)*" % (one, one)) for vr, (one, _) in _PLAIN_TEXT.items()}
_PLAIN_LENGTH = {vr: limit for vr, (_, limit) in _PLAIN_TEXT.items()}
_NUMBER_SIZE = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "OB": 1, "OW": 1}


def plain(raw: RawDataElement, texts: bool) -> bool:
    """Whether converting ``raw`` (a top-level element) can neither fail nor warn nor depend
    on the rest of the data set, and gives a value normalisation would keep as it is: a
    public element of a VR the file or the dictionary names unambiguously, of even length,
    holding numbers of its size or (``texts``: a character set read as latin-1) ASCII text
    valid for its VR (``_PLAIN_TEXT``). Such an element may stay raw until someone reads it."""
    value = raw.value
    length = raw.length
    if value is None or length == _UNDEFINED or length % 2 or raw.tag & 0x10000 or int(raw.tag) == _CHARSET:
        return False
    vr = raw.VR or _vr(raw)
    if vr is None:
        return False
    size = _NUMBER_SIZE.get(vr)
    if size is not None:
        return len(value) % size == 0
    if not texts or vr not in _PLAIN_RE:
        return False
    key = (vr, value)
    known = _PLAIN_SEEN.get(key)
    if known is None:
        known = _PLAIN_SEEN[key] = _plain_text(vr, value)
        if len(_PLAIN_SEEN) > _PLAIN_SEEN_MAX:
            _PLAIN_SEEN.clear()
    return known


# Texts ``plain`` judged, by (VR, bytes): the images of a series repeat most of their values.
_PLAIN_SEEN: dict[tuple[str, bytes], bool] = {}
_PLAIN_SEEN_MAX = 4096


def _plain_text(vr: str, value: bytes) -> bool:
    """Whether ``value`` is ASCII text valid for ``vr`` (``_PLAIN_TEXT``), each value of it
    within the VR's length."""
    limit = _PLAIN_LENGTH[vr]
    if len(value) > limit and max(map(len, value.split(b"\\"))) > limit:
        return False
    return _PLAIN_RE[vr].fullmatch(value.rstrip(b" \0")) is not None


def _vr(raw: RawDataElement) -> str | None:
    """The element's VR: as the file gave it (explicit VR), else the dictionary's; None if unknown."""
    if raw.VR is not None:
        return raw.VR
    try:
        return dictionary_VR(raw.tag)
    except KeyError:
        return None


def filled(raw: RawDataElement) -> bool | None:
    """Whether the value of ``raw`` is not empty (None, "" or []) once converted, where its
    bytes say so (a public element of a known VR with a character other than padding, or
    numbers); None when only the conversion can tell."""
    value = raw.value
    if not value or raw.tag & 0x10000 or raw.length == _UNDEFINED:
        return None
    vr = _vr(raw)
    if vr is None:
        return None
    if vr in _NUMBER_SIZE:
        return len(value) % _NUMBER_SIZE[vr] == 0 or None
    return True if vr in _PLAIN_TEXT and value.strip(b" \0") else None


def lossless(ds: Dataset) -> bool:
    """Whether ``ds`` names no character set or one read as latin-1 (its ASCII text is ASCII)."""
    return _charset_lossless(ds)


def _charset_lossless(ds: Dataset) -> bool:
    found = ds.get(_CHARSET_TAG)  # by tag: the keyword is looked up anew on every use
    charset = "" if found is None else found.value
    return isinstance(charset, str) and charset.strip() in _LOSSLESS_CHARSETS


def read(ds: Dataset, tag: int) -> DataElement | None:
    """``ds[tag]``, or None. A ``plain`` raw element's converted form is remembered beside the
    data set as it was when converted (its "before" for ``part10``, which then need not
    convert the raw element again to see whether it changed)."""
    elem = ds._dict.get(tag)  # ``get_item``, which costs a third of a read, where it only looks
    if type(elem) is not RawDataElement:
        return elem
    if elem.value is None:
        return ds.get_item(tag)  # deferred (or empty): ``get_item`` converts it
    if not is_plain(ds, tag, elem):
        return ds[tag]
    converted = _converted(ds, tag, elem, checked=True)
    value = converted.value  # an immutable one is frozen only if ever compared (``_unchanged``)
    frozen = None if type(value) in _IMMUTABLE else _frozen_element(converted)
    ds.__dict__.setdefault(_READ, {})[tag] = (elem, frozen, converted, value, converted.VR)
    if tag >> 16 == _PIXEL_GROUP or tag == _PIXEL_REPRESENTATION:
        ds[tag] = converted
    else:  # as ``ds[tag]`` stores what it converted: a plain element needs nothing of ``__setitem__``
        ds._dict[elem.tag] = converted
    return converted


_PIXEL_GROUP = 0x7FE0
_PIXEL_REPRESENTATION = 0x00280103


_READ = "_verbatim_read"  # beside a decoded data set: tag -> (raw element, its frozen conversion
# (None for an immutable value), the converted element, its value and VR as made)
# Values that cannot change in place: one still held by the element ``read`` made is as frozen.
_IMMUTABLE = {str, UID, int, float, bytes}


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
    if not _charset_lossless(ds):
        return False
    if _PIXEL_DATA in ds:
        pixels = ds.get_item(_PIXEL_DATA)
        undefined = pixels.length == _UNDEFINED if isinstance(pixels, RawDataElement) else pixels.is_undefined_length
        if undefined != syntax.is_compressed:
            return False
    return True


def snapshot(ds: Dataset) -> Snapshot:
    """Every top-level element of ``ds``: a raw one as itself (it is immutable: while the data
    set holds that very element, it is unchanged), any other as (VR, value), sequences item by
    item. Two frozen forms agree on a tag only if its element kept its VR and its value, down
    to the text of a number (DS "1.50" is not "1.5"). Byte values are kept by reference."""
    return {int(tag): elem if type(elem) is RawDataElement else _frozen_element(elem) for tag, elem in ds.items()}


def _frozen_element(elem: DataElement) -> tuple[str, Any]:
    return elem.VR, _frozen(elem.value)


def _unchanged(ds: Dataset, tag: int, before: Snapshot) -> bool:
    """Whether the element at ``tag`` is what ``before`` holds: the same raw element, or the
    same frozen form (a raw one that was read since is converted again to compare)."""
    was = before.get(tag)
    now = ds.get_item(shared_tag(tag))  # the data set's own key object: no BaseTag.__eq__
    if was is None or now is None:
        return was is None and now is None
    if now is was:
        return True
    if isinstance(was, RawDataElement):
        known = ds.__dict__.get(_READ, {}).get(tag)
        if known is not None and known[0] is was:
            raw, frozen, made, value, vr = known
            if frozen is None:  # immutable: as frozen now as when it was made
                if now is made and now.value is value and now.VR == vr:
                    return True  # the element ``read`` made, holding the very value it made
                frozen = vr, _frozen(value)
            was = frozen
        else:
            was = _frozen_element(_converted(ds, tag, was, checked=is_plain(ds, tag, was)))
    if isinstance(now, RawDataElement):
        now = ds[tag]
    return _frozen_element(now) == was


def converted(raw: RawDataElement) -> DataElement:
    """A ``plain`` raw element of a VR ``_fast_value`` converts (UI, CS, AE, DA, TM, US, UL),
    converted as ``ds[tag]`` would convert it; others by pydicom, in the default encoding."""
    return _converted(None, raw.tag, raw, checked=True)


def _converted(ds: Dataset | None, tag: int, raw: RawDataElement, checked: bool) -> DataElement:
    """``raw`` (a ``plain`` element of ``ds``, or one it held) converted as ``ds[tag]`` converts
    it: for the strings, UIDs and unsigned numbers normalisation reads most, by the very
    converters pydicom's default hooks would call (``_fast_value``), without the hooks.
    ``checked``: ``plain`` said yes, so its UIDs are valid (pydicom's check would pass)."""
    value = _fast_value(raw, checked)
    if value is not _SLOW:
        return DataElement(raw.tag, raw.VR or dictionary_VR(raw.tag), value, raw.value_tell,
                           raw.length == _UNDEFINED, already_converted=True)
    charset = default_encoding if tag == _CHARSET or ds is None else ds.original_character_set or ds._character_set
    return convert_raw_data_element(raw, encoding=charset, ds=ds)


_SLOW = object()
# pydicom's default encoding by the name Python's decoder knows without a codec lookup
# (``default_encoding`` is "iso8859": looked up anew on every decode, 9x the decode itself).
_DEFAULT_CODEC = codecs.lookup(default_encoding).name


def _fast_value(raw: RawDataElement, checked: bool = False) -> Any:
    """What ``pydicom.values.convert_value`` makes of a plain ``raw`` whose VR converts
    without a character set (UI, CS, AE, DA, TM: ``default_encoding``) or is US/UL, when
    pydicom's conversion hooks are its own; else ``_SLOW``. A ``checked`` UI value is made a
    UID without pydicom's validation: ``plain`` checked it more strictly (a fifth of a read)."""
    if not raw.length or pydicom_config.data_element_callback or hooks.raw_element_kwargs \
            or hooks.raw_element_vr is not raw_element_vr or hooks.raw_element_value is not raw_element_value:
        return _SLOW
    vr = raw.VR or dictionary_VR(raw.tag)
    if vr == "UI":
        return multi_string(raw.value.decode(_DEFAULT_CODEC).rstrip("\0 "), _checked_uid if checked else UID)
    if vr in ("CS", "AE") or vr in ("DA", "TM") and not pydicom_config.datetime_conversion:
        return multi_string(raw.value.decode(_DEFAULT_CODEC))
    if vr in ("US", "UL"):  # unsigned: the hook's fix of a negative LUT descriptor never applies
        return convert_numbers(raw.value, raw.is_little_endian, "H" if vr == "US" else "L")
    return _SLOW


def _checked_uid(text: str) -> UID:
    return UID(text, validation_mode=pydicom_config.IGNORE)


def _frozen(value: Any) -> Any:
    if isinstance(value, Sequence):  # items were parsed whole (``parse_values``)
        return tuple({int(tag): _frozen_element(item[tag]) for tag in item.keys()} for item in value)
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
    try:
        return _spliced(ds, original, before)
    finally:
        _forget(ds)


def _spliced(ds: Dataset, original: Original, before: Snapshot) -> bytes | None:
    found = ds.file_meta.get(_TRANSFER_SYNTAX)  # by tag, and compared as text: a UID made of it
    meta_syntax = "" if found is None else str(found.value)  # would check it again for nothing
    if meta_syntax != original.syntax or not all(_unchanged(ds, t, before) for t in (_CHARSET, _PIXEL_DATA)):
        return None
    preamble = getattr(ds, "preamble", None)
    chunks: list[bytes | memoryview] = [preamble if preamble else b"\0" * 128, b"DICM", _file_meta(ds)]
    charset = ds.get(_CHARSET_TAG)
    encodings = default_encoding if charset is None else charset.value
    implicit = original.syntax.is_implicit_VR
    run: tuple[int, int] | None = None  # adjacent unchanged elements, taken as one slice
    for tag, now in sorted((int(tag), elem) for tag, elem in ds.items()):  # tags differ: elements never compared
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue  # a retired group length: pydicom does not write it either
        was = before.get(tag)
        same = now is was or was is not None and _unchanged(ds, tag, before)
        span = original.spans.get(tag) if same else None
        if span is not None and run is not None and run[1] == span[0]:
            run = (run[0], span[1])
            continue
        if run is not None:
            chunks.append(original.data[run[0]:run[1]])
        run = span
        if span is None:
            chunks.append(_element(ds, tag, implicit, encodings))
    if run is not None:
        chunks.append(original.data[run[0]:run[1]])
    return b"".join(chunks)


def _element(ds: Dataset, tag: int, implicit: bool, encodings) -> bytes:
    """One element as pydicom's ``write_dataset`` writes it in this encoding: by ``_encoded``
    where the element is that simple, else by pydicom."""
    elem = ds[tag]
    data = _encoded(elem, implicit)
    if data is not None:
        return data
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, True
    write_data_element(fp, elem, encodings)
    return fp.getvalue()


# What normalisation and the provenance record add: text (ASCII, so the same bytes in every
# character set ``reusable`` lets through), a US or AT number, OB bytes, and sequences of
# items holding such elements. Padding as pydicom's writers pad each VR.
_TEXT_PADDING = {"AE": b" ", "CS": b" ", "DA": b" ", "DT": b" ", "TM": b" ", "LO": b" ", "SH": b" ",
                 "LT": b" ", "ST": b" ", "UI": b"\0"}
_ASCII = re.compile(r"[\x20-\x7e]*")
_ITEM = struct.pack("<HH", 0xFFFE, 0xE000)


def _encoded(elem: DataElement, implicit: bool) -> bytes | None:
    """``elem`` as pydicom's ``write_data_element`` writes it (little endian), for the few
    simple kinds of element a normalised instance gains; None for any other (pydicom's)."""
    vr, value = elem.VR, elem.value
    if len(vr) != 2:
        return None  # ambiguous ("US or SS"): pydicom resolves or refuses it
    if vr == "SQ":
        if elem.is_undefined_length or not isinstance(value, Sequence):
            return None
        items = []
        for item in value:
            body = None if getattr(item, "is_undefined_length_sequence_item", False) else _item(item, implicit)
            if body is None:
                return None
            items.append(_ITEM + struct.pack("<I", len(body)) + body)
        data = b"".join(items)
    elif value is None or (type(value) is str and not value):
        data = b""
    elif vr in _TEXT_PADDING and isinstance(value, str) and _ASCII.fullmatch(value):
        data = str(value).encode("ascii")
        data += _TEXT_PADDING[vr] * (len(data) % 2)
    elif vr == "US" and type(value) is int and 0 <= value <= 0xFFFF:
        data = struct.pack("<H", value)
    elif vr == "AT" and type(value) is int and 0 <= value <= 0xFFFFFFFF:
        data = struct.pack("<HH", value >> 16, value & 0xFFFF)
    elif vr == "OB" and type(value) is bytes:
        data = value + b"\0" * (len(value) % 2)
    else:
        return None
    tag = struct.pack("<HH", elem.tag >> 16, elem.tag & 0xFFFF)
    if implicit:
        return tag + struct.pack("<I", len(data)) + data
    if vr in EXPLICIT_VR_LENGTH_32:
        return tag + struct.pack("<2sHI", vr.encode(), 0, len(data)) + data
    if len(data) > 0xFFFF:
        return None  # pydicom writes it as UN
    return tag + struct.pack("<2sH", vr.encode(), len(data)) + data


def _item(item: Dataset, implicit: bool) -> bytes | None:
    """A sequence item's elements as ``write_dataset`` writes them, or None."""
    chunks = []
    for tag, elem in sorted((int(tag), elem) for tag, elem in item.items()):
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue
        data = None if isinstance(elem, RawDataElement) else _encoded(elem, implicit)
        if data is None:
            return None
        chunks.append(data)
    return b"".join(chunks)


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
        if int(tag) in (0x00020000, 0x00020001) or elem.VR not in _META_PADDING or not isinstance(elem.value, str):
            fp = DicomBytesIO()
            write_file_meta_info(fp, deepcopy(meta), enforce_standard=True)  # as dcmwrite: ds's own kept
            return fp.getvalue()
        value = elem.value.encode("ascii")
        value += _META_PADDING[elem.VR] * (len(value) % 2)
        body.append(struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, elem.VR.encode(), len(value)) + value)
    version = struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\0\1"
    rest = version + b"".join(body)
    return struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(rest)) + rest
