"""Where a tag-encoded object (DICOM, ACR-NEMA, SPI) ends, by its own element lengths.

Serial lines deliver objects padded (XMODEM) or back to back in one byte stream (raw lines);
the decoders' ``length`` methods say where an object ends so the driver can cut it out without
knowing any format. For tag-encoded formats that is a walk over the top-level elements: each
header gives the value length, sequences and encapsulated pixel data of undefined length are
followed item by item to their delimiters.

The answer follows the registry's ``length`` contract: an offset ``<= len(data)`` where the
object ends (complete), a number ``> len(data)`` of bytes at least needed (incomplete), or
None when the bytes make no sense as such an object. The object is complete once its last
element (normally Pixel Data) is whole; elements after it count only if they are whole and
their tags keep ascending, so padding or the next object's first bytes are not taken for part of
it. Nothing is allocated: only offsets are computed, so a huge declared length costs nothing.
"""

from __future__ import annotations

import struct
from typing import Callable

PIXEL_DATA = 0x7FE00010
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_MAX_DEPTH = 12

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")


class _Need(Exception):
    """The bytes end inside the object: at least ``size`` bytes are needed."""

    def __init__(self, size: int):
        self.size = size


class _Broken(Exception):
    """The bytes are not a well-formed element stream here."""


HeaderReader = Callable[[bytes, int], "tuple[int, int, int]"]


class _Walker:
    def __init__(self, data: bytes, explicit: bool, little: bool, header: HeaderReader | None = None):
        self.data, self.explicit = data, explicit
        self.fmt = "<" if little else ">"
        self.read_header = header  # (group, element, length) for implicit streams in odd byte orders

    def header(self, pos: int, bare: bool = False) -> tuple[int, int, int, bytes | None]:
        """(tag, value offset, value length, VR) of the element at ``pos``; ``bare`` for
        items and delimiters, which never carry a VR."""
        data = self.data
        if pos + 8 > len(data):
            raise _Need(pos + 8)
        if self.read_header is not None and not self.explicit:
            group, elem, length = self.read_header(data, pos)
            return (group << 16) | elem, pos + 8, length, None
        group, elem = struct.unpack_from(self.fmt + "HH", data, pos)
        tag = (group << 16) | elem
        if bare or not self.explicit or group == 0xFFFE:
            (length,) = struct.unpack_from(self.fmt + "I", data, pos + 4)
            return tag, pos + 8, length, None
        vr = data[pos + 4:pos + 6]
        if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
            raise _Broken()
        if vr in _LONG_VRS:
            if pos + 12 > len(data):
                raise _Need(pos + 12)
            (length,) = struct.unpack_from(self.fmt + "I", data, pos + 8)
            return tag, pos + 12, length, vr
        (length,) = struct.unpack_from(self.fmt + "H", data, pos + 6)
        return tag, pos + 8, length, vr

    def element_end(self, pos: int, depth: int) -> tuple[int, int]:
        """(tag, end offset) of the whole element at ``pos``."""
        tag, value, length, vr = self.header(pos)
        if tag in (ITEM, ITEM_END, SEQUENCE_END):
            raise _Broken()
        if length != UNDEFINED:
            end = value + length
            if end > len(self.data):
                raise _Need(end)
            return tag, end
        if self.explicit and vr not in (b"SQ", b"UN", b"OB", b"OW"):
            raise _Broken()
        return tag, self.items_end(value, depth + 1)

    def items_end(self, pos: int, depth: int) -> int:
        """End of a sequence (or encapsulated pixel data) of undefined length, after its delimiter."""
        if depth > _MAX_DEPTH:
            raise _Broken()
        while True:
            tag, value, length, _ = self.header(pos, bare=True)
            if tag == SEQUENCE_END:
                return value
            if tag != ITEM:
                raise _Broken()
            if length == UNDEFINED:
                pos = self.dataset_end(value, depth + 1, nested=True)
            else:
                pos = value + length
                if pos > len(self.data):
                    raise _Need(pos)

    def dataset_end(self, pos: int, depth: int, nested: bool = False, last_tag: int = PIXEL_DATA) -> int:
        """End of a data set: a nested one ends after its item delimiter, the top-level one
        after its last element as described in the module docstring."""
        last, done = -1, False
        while True:
            if nested:
                tag, value, _, _ = self.header(pos, bare=True)
                if tag == ITEM_END:
                    return value
            if pos >= len(self.data):
                if done:
                    return pos
                raise _Need(pos + 1)
            try:
                tag, end = self.element_end(pos, depth)
            except (_Need, _Broken):
                if done:
                    return pos  # padding, or the next object: not ours
                raise
            if tag <= last:
                if done:
                    return pos
                raise _Broken()
            last, pos = tag, end
            if not nested and tag >= last_tag:
                done = True


def dataset_length(data: bytes, start: int, *, explicit: bool, little: bool, last_tag: int = PIXEL_DATA,
                   header: HeaderReader | None = None) -> int | None:
    """Length of the object whose top-level data set begins at ``start`` (see module docstring).

    ``header`` reads (group, element, length) at an offset, for implicit-VR streams in a byte
    order ``little`` cannot express (ACR-NEMA's "bad big endian")."""
    try:
        return _Walker(data, explicit, little, header).dataset_end(start, 0, last_tag=last_tag)
    except _Need as need:
        return max(need.size, len(data) + 1)
    except _Broken:
        return None


def part10_length(data: bytes) -> int | None:
    """Length of a Part-10 file (preamble, "DICM", meta group, data set) at the start of ``data``."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return None
    walker = _Walker(data, explicit=True, little=True)
    pos, syntax = 132, None
    try:
        while True:
            if pos + 4 > len(data):
                raise _Need(pos + 8)
            group = struct.unpack_from("<H", data, pos)[0]
            if group != 0x0002:
                break
            tag, value, length, _ = walker.header(pos)
            end = value + length
            if length == UNDEFINED or end > len(data):
                raise _Need(end if length != UNDEFINED else len(data) + 1)
            if tag == 0x00020010:
                syntax = data[value:end].rstrip(b"\x00 ").decode("ascii", "replace")
            pos = end
    except _Need as need:
        return max(need.size, len(data) + 1)
    except _Broken:
        return None
    if syntax is None or syntax in DEFLATED:
        return None  # no syntax, or a deflated data set: its end is not in any length field
    return dataset_length(data, pos, explicit=syntax != IMPLICIT_LE, little=syntax != EXPLICIT_BE)
