"""A few integer header fields read without the field-table engine, for identification.

The engine (``fieldtable``) builds DICOM values and imports pydicom; identification must not.
A format's ``recognise`` module declares the fields it needs here with the name, offset and
type its decoder's ``Table`` gives them, and ``tests/formats/test_contract.py`` checks that
they agree, so the header layout is still stated once and checked where it is repeated.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# The engine's type names (``hostnum``) of the integers identification reads, as struct formats.
_STRUCT = {
    "int16_le": "<h", "uint16_le": "<H", "int32_le": "<i", "uint32_le": "<I",
    "int16_be": ">h", "uint16_be": ">H", "int32_be": ">i", "uint32_be": ">I",
}


@dataclass(frozen=True)
class Peek:
    """One integer field of a header: ``name``, ``offset`` and ``type`` as in the decoder's table."""

    name: str
    offset: int
    type: str

    def __post_init__(self) -> None:
        if self.type not in _STRUCT:
            raise ValueError(f"{self.name}: {self.type!r} is not an integer type ({', '.join(_STRUCT)})")

    def read(self, data: bytes, base: int = 0) -> int | None:
        """The field's value in the header at ``base``, or None when ``data`` ends before it."""
        fmt = _STRUCT[self.type]
        at = base + self.offset
        if at < 0 or at + struct.calcsize(fmt) > len(data):
            return None
        return struct.unpack_from(fmt, data, at)[0]
