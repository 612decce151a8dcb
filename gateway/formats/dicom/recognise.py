"""DICOM passed through: which bytes are a Part-10 file or a headerless data set, and how long.

The cheap half of the pass-through formats (``gateway.formats.Format``): identification and
length walk a few elements with ``struct`` and import neither pydicom nor numpy; decoding and
dumping are ``gateway.formats.dicom.passthrough``'s.
"""

from __future__ import annotations

import struct
from typing import Iterator

from gateway.formats import Format, register
from gateway.formats.tagstream.extent import dataset_length, part10_length
from gateway.formats.tagstream.recognise import is_spi

_SOP_CLASS = 0x00080016
_RECOGNITION_CODE = 0x00080010
_SCAN_LIMIT = 16384  # the identifying group 0008 elements sit well inside this


def walk_implicit_le(data: bytes, limit: int = _SCAN_LIMIT) -> Iterator[tuple[int, int, int, int]]:
    """Yield (tag, offset, value offset, length) of leading implicit-VR LE elements.

    Stops quietly at the first implausible element: this serves identification, which must
    never raise.
    """
    pos, end, last = 0, min(len(data), limit), -1
    while pos + 8 <= end:
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        tag = (group << 16) | elem
        if tag <= last or group == 0 or group > 0x7FE0:
            return
        if length == 0xFFFFFFFF or pos + 8 + length > len(data):
            return
        yield tag, pos, pos + 8, length
        last = tag
        pos += 8 + length


def is_headerless_dicom(data: bytes) -> bool:
    """An implicit-VR LE stream from group 0008 with an SOP Class UID, no ACR-NEMA recognition
    code, and no SPI creator (SPI files may carry an SOP Class UID too: they are SPI's)."""
    tags = {t for t, *_ in walk_implicit_le(data)}
    if not tags or min(tags) >> 16 != 0x0008:
        return False
    return _SOP_CLASS in tags and _RECOGNITION_CODE not in tags and not is_spi(data)


class Part10Format(Format):
    name = "dicom"
    description = "DICOM Part-10 file (preamble and DICM)"
    priority = 10
    implementation = "gateway.formats.dicom.passthrough:Part10"

    def identify(self, data: bytes) -> bool:
        return len(data) >= 132 and data[128:132] == b"DICM"

    def length(self, data: bytes) -> int | None:
        return part10_length(data)


class HeaderlessFormat(Format):
    name = "dicom-headerless"
    description = "DICOM data set without preamble or meta header (implicit VR little endian)"
    priority = 90
    implementation = "gateway.formats.dicom.passthrough:Headerless"

    def identify(self, data: bytes) -> bool:
        return is_headerless_dicom(data)

    def length(self, data: bytes) -> int | None:
        if not is_headerless_dicom(data):
            return None
        return dataset_length(data, 0, explicit=False, little=True)


register(Part10Format())
register(HeaderlessFormat())
