"""Siemens/Philips SPI files: ACR-NEMA-style streams with SPI shadow groups, to DICOM.

SPI has no magic number (siemens-spi.md 4): a stream is SPI when an odd group names an SPI
or Siemens/Philips SPI-era private creator, or the SPI command group carries its recognition
code. Such files may already hold an SOP Class UID (the Magnetom Vision sample does), which is
why this decoder runs before the headerless-DICOM pass-through: the pass-through would keep
ACR-NEMA dates, retired elements and lower-case codes that are not valid DICOM.
"""

from __future__ import annotations

from gateway.formats.tagstream.dictionary import SIEMENS_SPI_CREATORS, SPI_CREATORS
from gateway.formats.tagstream.stream import Element, Stream
from gateway.formats import Decoded, DumpRow, register
from gateway.formats.tagstream.acr_nema import decode_stream, dump_stream, leading, stream_length
from gateway.errors import DecodeError
from gateway.formats.tagstream.convert import Converted

_SPI_RECOGNITION = 0x00010010
_OTHER_SPI_CREATORS = ("PHILIPS MR/PART", "SPI-P")
_CREATOR_GROUPS_END = 0x0029  # SPI creators sit in the shadow groups 0009-0029


def spi_creators(stream: Stream) -> list[str]:
    """SPI-era private creators (and the SPI command group's recognition code) in ``stream``."""
    return [text for elem in stream.elements if (text := _spi_creator(stream.data, elem))]


def _spi_creator(data: bytes, elem: Element) -> str:
    """The text of ``elem`` if it is an SPI-era creator or SPI recognition code, else ""."""
    group, number = elem.tag >> 16, elem.tag & 0xFFFF
    is_creator = group & 1 and 0x10 <= number <= 0xFF and elem.length <= 64
    if is_creator or elem.tag == _SPI_RECOGNITION:
        text = data[elem.value_offset:elem.value_offset + elem.length].decode("latin-1").strip("\0 ")
        if text in SIEMENS_SPI_CREATORS or text.upper().startswith("SPI") or text.startswith(_OTHER_SPI_CREATORS):
            return text
    return ""


def _refuse_compression(conv: Converted) -> None:
    """SPI (0029,xx60) names a compression algorithm: none of them is documented to us."""
    for creator in SPI_CREATORS:
        algorithm = str(conv.private(0x0029, creator, 0x60) or "").strip().upper()
        if algorithm not in ("", "NONE"):
            raise DecodeError(f"SPI compressed pixel data ({algorithm}) is not supported", field="CompressionAlgorithm")


class SiemensSpi:
    name = "siemens-spi"
    description = "Siemens/Philips SPI tag stream (Somatom, Magnetom; ACR-NEMA based)"
    priority = 40

    def identify(self, data: bytes) -> bool:
        # ``leading`` refuses non-ACR-NEMA starts at once; the walk stops at the first SPI
        # creator, or after the shadow groups (cheaper than searching the bytes for hints).
        stream = leading(data, last_group=_CREATOR_GROUPS_END, until=lambda elem: bool(_spi_creator(data, elem)))
        return stream is not None and bool(spi_creators(stream))

    def length(self, data: bytes) -> int | None:
        if not self.identify(data):
            return None
        return stream_length(data, leading(data))

    def decode(self, data: bytes) -> Decoded:
        return decode_stream(data, self.name, check=_refuse_compression)

    def dump(self, data: bytes) -> list[DumpRow]:
        return dump_stream(data)


register(SiemensSpi())
