"""What kind of tag stream the bytes begin: shared by the three decoders that read tag streams.

ACR-NEMA, SPI and headerless DICOM all start as implicit-VR element streams, so each decoder's
``identify`` must know what the others claim: an SPI stream (an SPI-era private creator or the
SPI recognition code) is SPI's alone, never ACR-NEMA's or the pass-through's, whatever the
decoders' priorities. It lives apart from the decoders so that each can ask without importing
another decoder, and it holds the cheap halves of the ACR-NEMA and SPI formats
(``gateway.formats.Format``: identification and length, without pydicom or numpy); their
decoders are ``acr_nema.AcrNema`` and ``siemens_spi.SiemensSpi``.
"""

from __future__ import annotations

from typing import Callable

from gateway.formats import Format, register
from gateway.formats.tagstream.dictionary import SIEMENS_SPI_CREATORS
from gateway.formats.tagstream.extent import dataset_length
from gateway.formats.tagstream.stream import ByteOrder, Element, Stream, leading_elements

_SPI_RECOGNITION = 0x00010010
_SOP_CLASS_UID = 0x00080016
_RECOGNITION_CODES = (0x00000010, 0x00080010)
_OTHER_SPI_CREATORS = ("PHILIPS MR/PART", "SPI-P")
_CREATOR_GROUPS_END = 0x0029  # SPI creators sit in the shadow groups 0009-0029
# A stream's first group is 0000, 0001 or 0008: its first two bytes in either byte order.
_FIRST_GROUPS = {b"\x00\x00", b"\x01\x00", b"\x00\x01", b"\x08\x00", b"\x00\x08"}


def leading(data: bytes, last_group: int = 0x0008, until: Callable[[Element], bool] | None = None) -> Stream | None:
    """The leading elements (to ``last_group``, or to the first ``until`` accepts) of an
    ACR-NEMA-style stream, or None."""
    if data[:2] not in _FIRST_GROUPS:  # cheap refusal before any walk (any byte order)
        return None
    stream = leading_elements(data, last_group=last_group, until=until)
    if stream is None or len(stream.elements) < 3:
        return None
    if stream.elements[0].group not in (0x0000, 0x0001, 0x0008):
        return None
    return stream


def spi_creators(stream: Stream) -> list[str]:
    """SPI-era private creators (and the SPI command group's recognition code) in ``stream``."""
    return [text for elem in stream.elements if (text := spi_creator(stream.data, elem))]


def spi_creator(data: bytes, elem: Element) -> str:
    """The text of ``elem`` if it is an SPI-era creator or SPI recognition code, else ""."""
    group, number = elem.tag >> 16, elem.tag & 0xFFFF
    is_creator = group & 1 and 0x10 <= number <= 0xFF and elem.length <= 64
    if is_creator or elem.tag == _SPI_RECOGNITION:
        text = data[elem.value_offset:elem.value_offset + elem.length].decode("latin-1").strip("\0 ")
        if text in SIEMENS_SPI_CREATORS or text.upper().startswith("SPI") or text.startswith(_OTHER_SPI_CREATORS):
            return text
    return ""


def is_spi(data: bytes) -> bool:
    """Whether ``data`` begins an SPI stream. Never raises.

    ``leading`` refuses non-ACR-NEMA starts at once; the walk stops at the first SPI creator,
    or after the shadow groups (cheaper than searching the bytes for hints). Every element
    but the last has been refused on the way, so only the last is asked again."""
    def until(elem: Element) -> bool:  # odd groups and the recognition code only: a cheap test first
        return bool((elem.tag & 0x10000 or elem.tag == _SPI_RECOGNITION) and spi_creator(data, elem))

    stream = leading(data, last_group=_CREATOR_GROUPS_END, until=until)
    return stream is not None and until(stream.elements[-1])


def recognition_code(stream: Stream) -> str:
    """The stream's recognition code ("ACR-NEMA 2.0", "SPI Release 1"), or ""."""
    for tag in _RECOGNITION_CODES:
        elem = stream.find(tag)
        if elem is not None and elem.length <= 64:
            return stream.value(elem).decode("latin-1").strip("\0 ")
    return ""


def stream_length(data: bytes, stream: Stream) -> int | None:
    """Where an ACR-NEMA-style object ends: its elements walked in its byte order, up to and
    including Pixel Data (``extent.dataset_length``)."""
    order = stream.order
    header = order.element_header if order is ByteOrder.BAD_BIG else None
    return dataset_length(data, 0, explicit=False, little=order is ByteOrder.LITTLE, header=header)


class AcrNemaFormat(Format):
    name = "acr-nema"
    description = "ACR-NEMA 1.0/2.0 tag stream (implicit VR; little, big or bad-big endian)"
    priority = 50
    implementation = "gateway.formats.tagstream.acr_nema:AcrNema"

    def identify(self, data: bytes) -> bool:
        stream = leading(data)
        if stream is None or is_spi(data):  # an SPI stream is SPI's, recognition code or not
            return False
        code = recognition_code(stream).upper()
        if code.startswith(("ACR-NEMA", "ACRNEMA")):
            return True
        return stream.find(_SOP_CLASS_UID) is None and stream.elements[0].group in (0x0000, 0x0008)

    def length(self, data: bytes) -> int | None:
        if not self.identify(data):
            return None
        return stream_length(data, leading(data))


class SiemensSpiFormat(Format):
    name = "siemens-spi"
    description = "Siemens/Philips SPI tag stream (Somatom, Magnetom; ACR-NEMA based)"
    priority = 40
    implementation = "gateway.formats.tagstream.siemens_spi:SiemensSpi"

    def identify(self, data: bytes) -> bool:
        return is_spi(data)

    def length(self, data: bytes) -> int | None:
        if not self.identify(data):
            return None
        return stream_length(data, leading(data))


register(AcrNemaFormat())
register(SiemensSpiFormat())
