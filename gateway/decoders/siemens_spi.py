"""Siemens/Philips SPI files: ACR-NEMA-style streams with SPI shadow groups, to DICOM.

SPI has no magic number (siemens-spi.md §4): a stream is SPI when an odd group names an SPI
or Siemens/Philips SPI-era private creator, or the SPI command group carries its recognition
code. Such files may already hold an SOP Class UID (the Magnetom Vision sample does), which is
why this decoder runs before the headerless-DICOM pass-through: the pass-through would keep
ACR-NEMA dates, retired elements and lower-case codes that are not valid DICOM.
"""

from __future__ import annotations

from gateway.acrdict import SIEMENS_CREATORS, SPI_CREATORS
from gateway.acrnema import Stream
from gateway.decoders import Decoded, DumpRow, register
from gateway.decoders.acr_nema import decode_stream, dump_stream, leading
from gateway.errors import DecodeError
from gateway.siemens_shadow import private

_SPI_RECOGNITION = 0x00010010
_OTHER_SPI_CREATORS = ("PHILIPS MR/PART", "SPI-P")


def spi_creators(stream: Stream) -> list[str]:
    """SPI-era private creators (and the SPI command group's recognition code) in ``stream``."""
    found = []
    for elem in stream.elements:
        group, number = elem.group, elem.element
        is_creator = group & 1 and 0x10 <= number <= 0xFF and elem.length <= 64
        if is_creator or elem.tag == _SPI_RECOGNITION:
            text = stream.value(elem).decode("latin-1").strip("\0 ")
            if text in SPI_CREATORS or text in SIEMENS_CREATORS or text.upper().startswith("SPI") or text.startswith(_OTHER_SPI_CREATORS):
                found.append(text)
    return found


class SiemensSpi:
    name = "siemens-spi"
    description = "Siemens/Philips SPI tag stream (Somatom, Magnetom; ACR-NEMA based)"
    priority = 40

    def identify(self, data: bytes) -> bool:
        stream = leading(data)
        return stream is not None and bool(spi_creators(stream))

    def decode(self, data: bytes) -> Decoded:
        decoded = decode_stream(data, self.name)
        ds = decoded.dataset
        for creator in sorted(SPI_CREATORS):
            algorithm = str(private(ds, 0x0029, creator, 0x60) or "").strip().upper()
            if algorithm not in ("", "NONE"):
                raise DecodeError(f"SPI compressed pixel data ({algorithm}) is not supported", field="CompressionAlgorithm")
        return decoded

    def dump(self, data: bytes) -> list[DumpRow]:
        return dump_stream(data)


register(SiemensSpi())
