"""Siemens/Philips SPI files: ACR-NEMA-style streams with SPI shadow groups, to DICOM.

SPI has no magic number (siemens-spi.md 4): a stream is SPI when an odd group names an SPI
or Siemens/Philips SPI-era private creator, or the SPI command group carries its recognition
code. Such files may already hold an SOP Class UID (the Magnetom Vision sample does), which is
why this decoder runs before the headerless-DICOM pass-through: the pass-through would keep
ACR-NEMA dates, retired elements and lower-case codes that are not valid DICOM.
"""

from __future__ import annotations

from gateway.errors import DecodeError
from gateway.formats import Decoded, DumpRow
from gateway.formats.tagstream.acr_nema import decode_stream, dump_stream
from gateway.formats.tagstream.convert import Converted
from gateway.formats.tagstream.dictionary import SPI_CREATORS
from gateway.formats.tagstream.recognise import SiemensSpiFormat


def _refuse_compression(conv: Converted) -> None:
    """SPI (0029,xx60) names a compression algorithm: none of them is documented to us."""
    for creator in SPI_CREATORS:
        algorithm = str(conv.private(0x0029, creator, 0x60) or "").strip().upper()
        if algorithm not in ("", "NONE"):
            raise DecodeError(f"SPI compressed pixel data ({algorithm}) is not supported", field="CompressionAlgorithm")


class SiemensSpi(SiemensSpiFormat):
    def decode(self, data: bytes) -> Decoded:
        return decode_stream(data, self.name, check=_refuse_compression)

    def dump(self, data: bytes) -> list[DumpRow]:
        return dump_stream(data)
