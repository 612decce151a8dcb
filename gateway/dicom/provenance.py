"""Every change the gateway makes to an instance that already was DICOM, recorded in the instance.

PS3.3 C.12.1.1.9: an attribute changed after the instance was created keeps its previous value
in an item of the Original Attributes Sequence (0400,0561), with when, by which system, from
which source and why (Reason for the Attribute Modification: ``CORRECT`` for a repair of a
value that was wrong, ``COERCE`` for a value replaced to fit the receiving site, such as a
mapped Patient ID). One item per reason (plus one per nonconforming value, below); an attribute
that was absent is recorded empty, so a PACS administrator can see what was added as well as
what was replaced (``convert --explain`` and ``dump`` list them with ``changes``).

A previous value that did not conform to its VR (a ``1998.09.22`` date, an over-long LO) would
make the record itself invalid. PS3.3 C.12.1.1.9.2 has a place for it: the attribute is listed
empty in the Modified Attributes Sequence and its original bytes go to the Nonconforming
Modified Attributes Sequence (Selector Attribute + Nonconforming Data Element Value).

An element removed because its tag is not a standard attribute (``unknown``) is kept the same
way, by its tag: its value's bytes as they were in the file, and no keyword to list.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_deferred_data_element
from pydicom.filewriter import write_data_element
from pydicom.tag import BaseTag, Tag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from gateway import __version__
from gateway.formats.engine.fieldtable import element as _element
from gateway.formats.engine.fieldtable import tag_and_vr, value_of

CORRECT = "CORRECT"
COERCE = "COERCE"
MODIFYING_SYSTEM = f"legacy-gateway {__version__}"


class Changes:
    """Changes to one dataset, collected while they are made and written once at the end.

    ``changes.set(ds, "StudyDate", "19960312")`` records the previous value (or its absence)
    the first time a keyword changes, then sets the new value; ``changes.write(ds, source)``
    appends one Original Attributes Sequence item per reason (and one per nonconforming value).
    """

    def __init__(self) -> None:
        self._before: dict[str, dict[str, Any]] = {}  # reason -> keyword -> previous element or None
        self._nonconforming: dict[str, dict[str, bytes]] = {}  # reason -> keyword -> original bytes
        self._removed: dict[str, dict[int, bytes]] = {}  # reason -> tag -> value bytes (no keyword)

    def set(self, ds: Dataset, keyword: str, value: Any, reason: str = CORRECT) -> None:
        self.note(ds, keyword, reason)
        setattr(ds, keyword, value)

    def delete(self, ds: Dataset, keyword: str, reason: str = CORRECT) -> None:
        if keyword in ds:
            self.note(ds, keyword, reason)
            delattr(ds, keyword)

    def note(self, ds: Dataset, keyword: str, reason: str = CORRECT, nonconforming: bool = False) -> None:
        """Remember ``keyword``'s value before a change made elsewhere (first change wins).
        ``nonconforming``: the value is not valid for its VR, so its bytes are kept instead."""
        before = self._before.setdefault(reason, {})
        if keyword in before:
            return
        tag = _tag(keyword)  # by tag: a keyword is looked up anew on every use
        present = tag is not None and tag in ds
        before[keyword] = copy.deepcopy(ds[tag]) if present else None
        if nonconforming and present:
            self._nonconforming.setdefault(reason, {})[keyword] = _text_bytes(ds[tag].value)
            before[keyword] = None  # listed empty in the Modified Attributes Sequence

    def remove(self, ds: Dataset, tag: int, reason: str = CORRECT) -> None:
        """Remove the element at ``tag``, which is no standard attribute (so it has no keyword),
        keeping its value's bytes for the record."""
        self._removed.setdefault(reason, {})[int(tag)] = _value_bytes(ds, tag)
        del ds[tag]

    def __bool__(self) -> bool:
        return any(self._before.values()) or any(self._removed.values())

    def write(self, ds: Dataset, source: str = "", when: dt.datetime | None = None) -> None:
        stamp = (when or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%d%H%M%S.%f%z")
        # Adding a sequence makes pydicom read the Pixel Representation (for the items' sake):
        # read here first, a raw one is converted the cheap way and remembered (``verbatim``).
        if self:
            value_of(ds, "PixelRepresentation")
        for reason in dict.fromkeys([*self._before, *self._removed]):
            before = self._before.get(reason, {})
            odd = self._nonconforming.get(reason, {})
            plain = {k: v for k, v in before.items() if k not in odd}
            # One item for the values that conformed; one per value that did not, as an item's
            # Nonconforming Modified Attributes Sequence holds a single item. A removed element
            # that is no standard attribute is not listed in the Modified Attributes Sequence:
            # its tag would be as invalid in that item as it was at the top level (PS3.5 7.1).
            # That sequence is type 1 with exactly one item, whose content C.12.1.1.9 leaves
            # open; so the item is there and empty, and the Selector Attribute (an AT value,
            # which may name any tag) says which element the bytes were.
            groups = ([(plain, None)] if plain else [])
            groups += [({k: None}, (tag_for_keyword(k), raw)) for k, raw in sorted(odd.items())]
            groups += [({}, (tag, raw)) for tag, raw in sorted(self._removed.get(reason, {}).items())]
            for listed, nonconforming in groups:
                # absent (or nonconforming) before: listed empty
                modified = _dataset([(keyword, previous) for keyword, previous in sorted(listed.items())])
                item = _dataset([("ModifiedAttributesSequence", [modified]),
                                 *([("NonconformingModifiedAttributesSequence",
                                     [_nonconforming_item(*nonconforming)])] if nonconforming else []),
                                 ("AttributeModificationDateTime", stamp),
                                 ("ModifyingSystem", MODIFYING_SYSTEM),
                                 ("SourceOfPreviousValues", source[:64]),
                                 ("ReasonForTheAttributeModification", reason)])
                ds.setdefault(_ORIGINAL_ATTRIBUTES, []).value.append(item)
        self._before.clear()
        self._nonconforming.clear()
        self._removed.clear()


_ORIGINAL_ATTRIBUTES = tag_and_vr("OriginalAttributesSequence")[0]  # by tag: no keyword lookups


def _tag(keyword: str) -> BaseTag | None:
    """The tag of a DICOM keyword; None for a name that is none (never in a data set)."""
    try:
        return tag_and_vr(keyword)[0]
    except ValueError:
        return None


_PIXEL_REPRESENTATION = tag_and_vr("PixelRepresentation")[0]


def _dataset(elements: list[tuple[str, Any]]) -> Dataset:
    """A new data set of these elements: (keyword, value) built as ``fieldtable.element``
    builds it (the values are valid as they are: nothing for pydicom to convert or check, and
    a record is written for every repaired instance), or (keyword, previous element) added as
    it is. Given to the data set whole, but sequences
    with an item holding a Pixel Representation: for elements of a new data set
    ``Dataset.__setitem__`` only costs (a third of writing the record), except that it hands
    such an item its Pixel Representation."""
    whole, sequences = {}, []
    for keyword, value in elements:
        if isinstance(value, DataElement):
            elem = value
        else:
            tag, vr = tag_and_vr(keyword)
            elem = _element(tag, vr, value)
        if elem.VR == "SQ" and any(_PIXEL_REPRESENTATION in item._dict for item in elem.value):
            sequences.append(elem)
        else:
            whole[elem.tag] = elem
    ds = Dataset(whole)
    for elem in sequences:
        ds[elem.tag] = elem
    return ds


def _text_bytes(value: Any) -> bytes:
    """A text value as it was encoded (values joined by backslash, even length)."""
    parts = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    raw = "\\".join("" if v is None else str(v) for v in parts).encode("latin-1", "replace")
    return raw + b" " if len(raw) % 2 else raw


def _value_bytes(ds: Dataset, tag: int) -> bytes:
    """The bytes of an element's value as the file held them: a raw element's own (a value
    left in its file is read as it is, not converted), else pydicom's encoding of the value in
    the data set's encoding (its header cut off)."""
    elem = ds.get_item(tag, keep_deferred=True)
    if isinstance(elem, RawDataElement):
        if elem.value is None and elem.length not in (0, 0xFFFFFFFF):
            elem = read_deferred_data_element(ds.fileobj_type, ds.filename or ds.buffer, ds.timestamp, elem)
        return bytes(elem.value or b"")
    return _encoded_value(ds, elem)




def _encoded_value(ds: Dataset, elem: DataElement) -> bytes:
    implicit, little = (True if v is None else v for v in ds.original_encoding)
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    write_data_element(fp, elem, ds.get("SpecificCharacterSet", "iso8859"))
    header = 8 if implicit or elem.VR not in EXPLICIT_VR_LENGTH_32 else 12
    return fp.getvalue()[header:]


def _nonconforming_item(tag: int, raw: bytes) -> Dataset:
    return _dataset([("SelectorAttribute", tag), ("SelectorValueNumber", 0),  # all values
                     ("NonconformingDataElementValue", raw)])


def changes(ds: Dataset) -> list[tuple[str, str, str, str]]:
    """What this gateway changed, from the instance itself: (reason, keyword, before, now)."""
    out = []
    for item in ds.get("OriginalAttributesSequence", []):
        if str(item.get("ModifyingSystem", "")).split(" ")[0] != MODIFYING_SYSTEM.split(" ")[0]:
            continue
        odd = {int(i.SelectorAttribute): bytes(i.NonconformingDataElementValue)
               for i in item.get("NonconformingModifiedAttributesSequence", [])}
        reason = str(item.get("ReasonForTheAttributeModification", ""))
        for modified in item.get("ModifiedAttributesSequence", []):
            for element in modified:
                before = (odd.pop(element.tag).decode("latin-1").rstrip(" ") if element.tag in odd
                          else _text(element.value))
                out.append((reason, element.keyword, before, _now(ds, element.tag)))
        for tag, raw in odd.items():  # not listed: an element that was no standard attribute
            out.append((reason, keyword_for_tag(tag) or str(Tag(tag)), _bytes_text(raw), _now(ds, tag)))
    return out


def _now(ds: Dataset, tag: int) -> str:
    return _text(ds[tag].value, "(empty)") if tag in ds else "(removed)"


def _bytes_text(raw: bytes, shown: int = 32) -> str:
    """Bytes kept for the record, readable: as text where they are printable ASCII (padding
    left out), else in hexadecimal (the first ``shown`` bytes, and how many there were)."""
    text = raw.rstrip(b" \0")
    if all(0x20 <= b < 0x7F for b in text):
        return text.decode("ascii") or "(empty)"
    more = f"... ({len(raw)} bytes)" if len(raw) > shown else ""
    return "0x" + raw[:shown].hex() + more


def _text(value: Any, empty: str = "(absent)") -> str:
    """A previous value recorded empty was absent (PS3.3 C.12.1.1.9.2); a current one is empty."""
    if value is None or value == "":
        return empty
    return str(value)
