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
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from gateway import __version__
from gateway.formats.engine.fieldtable import element as _element
from gateway.formats.engine.fieldtable import tag_and_vr

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
        before[keyword] = copy.deepcopy(ds[keyword]) if keyword in ds else None
        if nonconforming and keyword in ds:
            self._nonconforming.setdefault(reason, {})[keyword] = _text_bytes(ds[keyword].value)
            before[keyword] = None  # listed empty in the Modified Attributes Sequence

    def __bool__(self) -> bool:
        return any(self._before.values())

    def write(self, ds: Dataset, source: str = "", when: dt.datetime | None = None) -> None:
        stamp = (when or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%d%H%M%S.%f%z")
        for reason, before in self._before.items():
            odd = self._nonconforming.get(reason, {})
            plain = {k: v for k, v in before.items() if k not in odd}
            # One item for the values that conformed; one per value that did not, as an item's
            # Nonconforming Modified Attributes Sequence holds a single item.
            groups = ([(plain, None)] if plain else []) + [({k: None}, (k, raw)) for k, raw in sorted(odd.items())]
            for listed, nonconforming in groups:
                modified = Dataset()
                for keyword, previous in sorted(listed.items()):
                    if previous is None:
                        _put(modified, keyword, None)  # absent (or nonconforming) before: listed empty
                    else:
                        modified.add(previous)
                item = Dataset()
                _put(item, "ModifiedAttributesSequence", [modified])
                if nonconforming:
                    _put(item, "NonconformingModifiedAttributesSequence", [_nonconforming_item(*nonconforming)])
                _put(item, "AttributeModificationDateTime", stamp)
                _put(item, "ModifyingSystem", MODIFYING_SYSTEM)
                _put(item, "SourceOfPreviousValues", source[:64])
                _put(item, "ReasonForTheAttributeModification", reason)
                ds.setdefault("OriginalAttributesSequence", []).value.append(item)
        self._before.clear()
        self._nonconforming.clear()


def _put(ds: Dataset, keyword: str, value: Any) -> None:
    """``setattr(ds, keyword, value)`` for a new element, as ``fieldtable.element`` builds it:
    these values are valid as they are (nothing for pydicom to convert or to check), and a
    record is written for every repaired instance."""
    tag, vr = tag_and_vr(keyword)
    ds[tag] = _element(tag, vr, value)


def _text_bytes(value: Any) -> bytes:
    """A text value as it was encoded (values joined by backslash, even length)."""
    parts = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    raw = "\\".join("" if v is None else str(v) for v in parts).encode("latin-1", "replace")
    return raw + b" " if len(raw) % 2 else raw


def _nonconforming_item(keyword: str, raw: bytes) -> Dataset:
    item = Dataset()
    _put(item, "SelectorAttribute", tag_for_keyword(keyword))
    _put(item, "SelectorValueNumber", 0)  # all values
    _put(item, "NonconformingDataElementValue", raw)
    return item


def changes(ds: Dataset) -> list[tuple[str, str, str, str]]:
    """What this gateway changed, from the instance itself: (reason, keyword, before, now)."""
    out = []
    for item in ds.get("OriginalAttributesSequence", []):
        if str(item.get("ModifyingSystem", "")).split(" ")[0] != MODIFYING_SYSTEM.split(" ")[0]:
            continue
        odd = {int(i.SelectorAttribute): bytes(i.NonconformingDataElementValue)
               for i in item.get("NonconformingModifiedAttributesSequence", [])}
        for modified in item.get("ModifiedAttributesSequence", []):
            for element in modified:
                now = _text(ds[element.tag].value, "(empty)") if element.tag in ds else "(removed)"
                before = (odd[element.tag].decode("latin-1").rstrip(" ") if element.tag in odd
                          else _text(element.value))
                out.append((str(item.get("ReasonForTheAttributeModification", "")), element.keyword, before, now))
    return out


def _text(value: Any, empty: str = "(absent)") -> str:
    """A previous value recorded empty was absent (PS3.3 C.12.1.1.9.2); a current one is empty."""
    if value is None or value == "":
        return empty
    return str(value)
