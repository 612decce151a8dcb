"""Every change the gateway makes to an instance that already was DICOM, recorded in the instance.

PS3.3 C.12.1.1.9: an attribute changed after the instance was created keeps its previous value
in an item of the Original Attributes Sequence (0400,0561), with when, by which system, from
which source and why (Reason for the Attribute Modification: ``CORRECT`` for a repair of a
value that was wrong, ``COERCE`` for a value replaced to fit the receiving site, such as a
mapped Patient ID). One item per reason; an attribute that was absent is recorded empty, so a
PACS administrator can see what was added as well as what was replaced (``convert --explain``
and ``dump`` list them with ``changes``).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from pydicom.dataset import Dataset

from gateway import __version__

CORRECT = "CORRECT"
COERCE = "COERCE"
MODIFYING_SYSTEM = f"legacy-gateway {__version__}"


class Changes:
    """Changes to one dataset, collected while they are made and written once at the end.

    ``changes.set(ds, "StudyDate", "19960312")`` records the previous value (or its absence)
    the first time a keyword changes, then sets the new value; ``changes.write(ds, source)``
    appends one Original Attributes Sequence item per reason.
    """

    def __init__(self) -> None:
        self._before: dict[str, dict[str, Any]] = {}  # reason -> keyword -> previous element or None

    def set(self, ds: Dataset, keyword: str, value: Any, reason: str = CORRECT) -> None:
        self.note(ds, keyword, reason)
        setattr(ds, keyword, value)

    def delete(self, ds: Dataset, keyword: str, reason: str = CORRECT) -> None:
        if keyword in ds:
            self.note(ds, keyword, reason)
            delattr(ds, keyword)

    def note(self, ds: Dataset, keyword: str, reason: str = CORRECT) -> None:
        """Remember ``keyword``'s value before a change made elsewhere (first change wins)."""
        before = self._before.setdefault(reason, {})
        if keyword not in before:
            before[keyword] = copy.deepcopy(ds[keyword]) if keyword in ds else None

    def __bool__(self) -> bool:
        return any(self._before.values())

    def write(self, ds: Dataset, source: str = "", when: dt.datetime | None = None) -> None:
        stamp = (when or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%d%H%M%S.%f%z")
        for reason, before in self._before.items():
            if not before:
                continue
            modified = Dataset()
            for keyword, element in sorted(before.items()):
                if element is None:
                    setattr(modified, keyword, None)  # absent before: recorded empty
                else:
                    modified.add(element)
            item = Dataset()
            item.ModifiedAttributesSequence = [modified]
            item.AttributeModificationDateTime = stamp
            item.ModifyingSystem = MODIFYING_SYSTEM
            item.SourceOfPreviousValues = source[:64]
            item.ReasonForTheAttributeModification = reason
            ds.setdefault("OriginalAttributesSequence", []).value.append(item)
        self._before.clear()


def changes(ds: Dataset) -> list[tuple[str, str, str, str]]:
    """What this gateway changed, from the instance itself: (reason, keyword, before, now)."""
    out = []
    for item in ds.get("OriginalAttributesSequence", []):
        if str(item.get("ModifyingSystem", "")).split(" ")[0] != MODIFYING_SYSTEM.split(" ")[0]:
            continue
        for modified in item.get("ModifiedAttributesSequence", []):
            for element in modified:
                now = _text(ds[element.tag].value, "(empty)") if element.tag in ds else "(removed)"
                out.append((str(item.get("ReasonForTheAttributeModification", "")), element.keyword,
                            _text(element.value), now))
    return out


def _text(value: Any, empty: str = "(absent)") -> str:
    """A previous value recorded empty was absent (PS3.3 C.12.1.1.9.2); a current one is empty."""
    if value is None or value == "":
        return empty
    return str(value)
