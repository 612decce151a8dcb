"""ACR-NEMA style tag streams: byte order detection and element walking (acr-nema.md 2, 4).

An ACR-NEMA "file" is a message written to disk: (group, element, 32-bit length, value)
elements without VRs, with whatever byte order the writing host used. Three orders occur:
little endian, big endian, and big-endian 16-bit words whose 32-bit values are sent low word
first ("bad big endian", dicom3tools' Swapped32Big, GDCM's 2143). The order is detected from
the first elements and confirmed by parsing the whole stream, never assumed from the source.

The walker never allocates by a length it has not checked against the data: every value
length is compared with the bytes that remain (and with its group's declared length) before
anything is sliced. Problems raise ``DecodeError`` naming the element and its byte offset.
Walking needs no numpy (identification walks streams); arrays of values are ``convert``'s.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, NamedTuple

from gateway.errors import DecodeError

UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010


_LE_HEADER = struct.Struct("<HHI")
_BE_HEADER = struct.Struct(">HHI")
_BAD_BIG_HEADER = struct.Struct(">HHHH")


class ByteOrder(str, Enum):
    """How 16- and 32-bit numbers are laid out; the value is the simulator's option name."""

    LITTLE = "little"
    BIG = "big"
    BAD_BIG = "badbig"

    @property
    def u16(self) -> str:
        """NumPy dtype of 16-bit words (tags, US values, 16-bit pixels)."""
        return "<u2" if self is ByteOrder.LITTLE else ">u2"

    def element_header(self, data: bytes, offset: int) -> tuple[int, int, int]:
        """(group, element, value length) of the element at ``offset`` (8 bytes there)."""
        if self is ByteOrder.BAD_BIG:
            group, number, low, high = _BAD_BIG_HEADER.unpack_from(data, offset)
            return group, number, (high << 16) | low
        return (_LE_HEADER if self is ByteOrder.LITTLE else _BE_HEADER).unpack_from(data, offset)

    def read_u16(self, data: bytes, offset: int) -> int:
        return struct.unpack_from("<H" if self is ByteOrder.LITTLE else ">H", data, offset)[0]

    def read_u32(self, data: bytes, offset: int) -> int:
        if self is ByteOrder.LITTLE:
            return struct.unpack_from("<I", data, offset)[0]
        if self is ByteOrder.BIG:
            return struct.unpack_from(">I", data, offset)[0]
        low, high = struct.unpack_from(">HH", data, offset)
        return (high << 16) | low


class Element(NamedTuple):
    """Where one element sits in the stream; the value is read on demand."""

    tag: int
    offset: int  # of the tag
    value_offset: int
    length: int

    @property
    def group(self) -> int:
        return self.tag >> 16

    @property
    def element(self) -> int:
        return self.tag & 0xFFFF

    @property
    def end(self) -> int:
        return self.value_offset + self.length


@dataclass
class Stream:
    """A parsed stream: its byte order, elements in file order, and what looked odd."""

    data: bytes
    order: ByteOrder
    elements: list[Element]
    notes: list[str] = field(default_factory=list)

    def find(self, tag: int) -> Element | None:
        for elem in self.elements:
            if elem.tag == tag:
                return elem
        return None

    def value(self, elem: Element) -> bytes:
        start = elem.value_offset
        return self.data[start : start + elem.length]


def tag_str(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def looks_like_explicit_vr(data: bytes) -> bool:
    """Bytes 4-5 are two upper-case letters: an explicit-VR DICOM stream (dicom3tools' test)."""
    return len(data) >= 6 and 0x41 <= data[4] <= 0x5A and 0x41 <= data[5] <= 0x5A


def is_part10(data: bytes) -> bool:
    return len(data) >= 132 and data[128:132] == b"DICM"


def candidate_orders(data: bytes) -> list[ByteOrder]:
    """Byte orders to try, most likely first, from the first element alone (4.3 steps 2-4)."""
    orders = [ByteOrder.LITTLE, ByteOrder.BIG, ByteOrder.BAD_BIG]
    if len(data) < 8:
        return orders
    b0, b1 = data[0], data[1]
    big_first = False
    if (b0 == 0) != (b1 == 0):
        big_first = b0 == 0  # small group read big endian: (00 08) not (08 00)
    elif b0 == 0 and b1 == 0 and data[4:8] != b"\x04\x00\x00\x00":
        big_first = data[4] < data[7] or data[4:8] == b"\x00\x04\x00\x00"
    if data[2] == 0 and data[3] == 0:  # a group length element: its VL is 4
        vl = data[4:8]
        if vl == b"\x04\x00\x00\x00":
            return orders
        if vl == b"\x00\x00\x00\x04":
            return [ByteOrder.BIG, ByteOrder.BAD_BIG, ByteOrder.LITTLE]
        if vl == b"\x00\x04\x00\x00":
            return [ByteOrder.BAD_BIG, ByteOrder.BIG, ByteOrder.LITTLE]
    if big_first:
        straight = ByteOrder.BIG.read_u32(data, 4)
        swapped = ByteOrder.BAD_BIG.read_u32(data, 4)
        if swapped < straight:
            return [ByteOrder.BAD_BIG, ByteOrder.BIG, ByteOrder.LITTLE]
        return [ByteOrder.BIG, ByteOrder.BAD_BIG, ByteOrder.LITTLE]
    return orders


def parse(data: bytes, order: ByteOrder, limit: int | None = None) -> Stream:
    """Walk every element of ``data`` in ``order``; raises ``DecodeError`` where it breaks.

    Checks: ascending tags, no undefined lengths (ACR-NEMA has no sequences), every value
    inside the data and inside its group's declared length, group lengths that fit the data.
    A group that ends before its declared length is only noted: real files have stale group
    lengths (acr-nema.md 2). Once the pixel data has been read, anything unreadable after it
    is ignored with a note (trailing bytes, 7.4); so is trailing NUL padding. ``limit`` stops
    the walk early (identification) without treating the cut as an error.
    """
    size = len(data)
    stop = size if limit is None else min(size, limit)
    walk = _Walk(data, order)
    pos = 0
    while pos < stop:
        try:
            elem = walk.step(pos)
        except DecodeError as exc:
            if walk.seen_pixels:
                walk.notes.append(f"{size - pos} bytes after the pixel data ignored (offset {pos})")
                break
            if pos > 0 and not data[pos:].strip(b"\0"):
                walk.notes.append(f"{size - pos} NUL padding bytes at the end ignored (offset {pos})")
                break
            exc.elements_read = len(walk.elements)  # type: ignore[attr-defined]
            raise
        pos = elem.value_offset + elem.length
    walk.close(pos)
    if not walk.elements:
        raise DecodeError("no data elements", offset=0)
    return Stream(data=data, order=order, elements=walk.elements, notes=walk.notes)


class _Walk:
    """State of one walk: elements so far, the open group's declared end, notes."""

    def __init__(self, data: bytes, order: ByteOrder):
        self.data, self.order = data, order
        self.elements: list[Element] = []
        self.notes: list[str] = []
        self.last_tag = -1
        self.group: tuple[int, int, int] | None = None  # (group, declared end, group-length offset)
        self.seen_pixels = False
        # (group, element, length) at an offset: struct itself for the two plain orders
        self._header = {ByteOrder.LITTLE: _LE_HEADER.unpack_from,
                        ByteOrder.BIG: _BE_HEADER.unpack_from}.get(order, order.element_header)

    def step(self, pos: int) -> Element:
        """Read the element at ``pos`` and check it (every file's every element comes here,
        twice for SPI identification, so it is written flat)."""
        data = self.data
        left = len(data) - pos - 8
        if left < 0:
            raise DecodeError("truncated element header", offset=pos)
        group, number, length = self._header(data, pos)
        tag = (group << 16) | number
        if group == 0xFFFE or length == UNDEFINED_LENGTH:
            raise DecodeError("undefined length or item tag: not allowed in an ACR-NEMA stream", field=tag_str(tag),
                              offset=pos)
        if tag <= self.last_tag:
            raise DecodeError(
                f"element tags out of order after {tag_str(self.last_tag)} (damaged stream or wrong byte order)",
                field=tag_str(tag),
                offset=pos,
            )
        if length > left:
            raise DecodeError(
                f"value length {length} runs past the end of the data ({left} bytes left)",
                field=tag_str(tag),
                offset=pos,
            )
        elem = Element(tag, pos, pos + 8, length)
        state = self.group
        if state is not None and state[0] != group:
            self._close_group(pos)
            state = None
        if not number:
            self._open_group(elem)
        elif state is not None and pos + 8 + length > state[1]:
            raise DecodeError(
                f"element runs past the end of its group (the group length at offset {state[2]} "
                f"ends the group at {state[1]})",
                field=tag_str(tag),
                offset=pos,
            )
        self.elements.append(elem)
        self.last_tag = tag
        if tag == PIXEL_DATA:
            self.seen_pixels = True
        return elem

    def close(self, pos: int) -> None:
        if self.group is not None:
            self._close_group(pos)

    def _open_group(self, elem: Element) -> None:
        if elem.length != 4:
            raise DecodeError(f"group length element has length {elem.length}, not 4", field=tag_str(elem.tag),
                              offset=elem.offset)
        declared = self.order.read_u32(self.data, elem.value_offset)
        end = elem.end + declared
        if end > len(self.data):
            raise DecodeError(
                f"group length {declared} runs past the end of the data ({len(self.data) - elem.end} bytes left)",
                field=tag_str(elem.tag),
                offset=elem.offset,
            )
        self.group = (elem.group, end, elem.offset)

    def _close_group(self, actual_end: int) -> None:
        assert self.group is not None
        group, declared_end, at = self.group
        if actual_end != declared_end:
            self.notes.append(
                f"group {group:04X}: group length at offset {at} declares {declared_end - at - 12} bytes, "
                f"the group holds {actual_end - at - 12}"
            )
        self.group = None


def leading_elements(data: bytes, limit: int = 65536, last_group: int = 0xFFFF,
                     until: Callable[[Element], bool] | None = None) -> Stream | None:
    """The elements that parse before the first problem, in the order that reads furthest.

    For identification: never raises, looks at most ``limit`` bytes of headers (values are
    not read), stops after ``last_group`` or at the first element ``until`` accepts, and
    tolerates a damaged or truncated tail so that a broken ACR-NEMA file is still recognised
    (and then rejected by the decoder with the reason and offset).
    """
    if is_part10(data) or looks_like_explicit_vr(data):
        return None
    best: Stream | None = None
    for order in candidate_orders(data):
        walk = _Walk(data, order)
        pos, clean, stop = 0, True, min(len(data), limit)
        while pos < stop:
            try:
                elem = walk.step(pos)
            except DecodeError:
                clean = False
                break
            if elem.tag >> 16 > last_group or (until is not None and until(elem)):
                break
            pos = elem.value_offset + elem.length
        if walk.elements and (best is None or len(walk.elements) > len(best.elements)):
            best = Stream(data=data, order=order, elements=walk.elements, notes=walk.notes)
        if clean and walk.elements:
            break  # read to the end of what identification needs: this order is right
    return best


def read_stream(data: bytes) -> Stream:
    """Detect the byte order by parsing in each candidate order; the first clean parse wins.

    When every order fails, the error of the order that read the most elements is raised (the
    likeliest true order; ties go to the order the first element suggested): its error says
    where the stream is damaged. A wrong order can jump far on one misread length, so the
    count of elements, not the offset reached, decides.
    """
    if is_part10(data) or looks_like_explicit_vr(data):
        raise DecodeError("DICOM data (Part-10 or explicit VR), not an ACR-NEMA stream", offset=0)
    best: tuple[int, DecodeError] | None = None
    for order in candidate_orders(data):
        try:
            return parse(data, order)
        except DecodeError as exc:
            count = getattr(exc, "elements_read", 0)
            if best is None or count > best[0]:
                best = (count, exc)
    assert best is not None
    exc = best[1]
    raise DecodeError(f"not a readable ACR-NEMA stream in any byte order: {exc.reason}", field=exc.field,
                      offset=exc.offset)
