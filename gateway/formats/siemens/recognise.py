"""Siemens fixed headers: which bytes are a Somatom Plus or Vision file, and how long.

The cheap half of the two formats (``gateway.formats.Format``): a few header integers read
with ``engine.peek`` (checked against the decoders' tables), no pydicom, no numpy; the
decoders are ``somatom_plus.SomatomPlus`` and ``vision_ima.VisionIma``.
"""

from __future__ import annotations

from gateway.dicom.limits import plausible
from gateway.formats import Format, register
from gateway.formats.engine.peek import Peek

SOMATOM_HEADER_SIZE = 4096
SOMATOM_FIELDS = (  # in somatom_plus.BINARY
    Peek("block_size", 4, "int16_le"),
    Peek("header_blocks", 54, "int16_le"),
    Peek("pixel_block", 76, "int16_le"),
    Peek("matrix", 1328, "int32_le"),
)

VISION_HEADER_SIZE = 6144
VISION_MAGIC = b"SIEMENS\0"
VISION_MATRIX = Peek("display_matrix", 2864, "int32_be")  # in vision_ima.HEADER


class SomatomPlusFormat(Format):
    name = "somatom-plus"
    description = "Siemens Somatom Plus fixed-format CT (4096-byte VAX header)"
    priority = 32
    implementation = "gateway.formats.siemens.somatom_plus:SomatomPlus"

    def identify(self, data: bytes) -> bool:
        if len(data) < SOMATOM_HEADER_SIZE:
            return False
        block, header_blocks, pixel_block, matrix = (f.read(data) for f in SOMATOM_FIELDS)
        return block == 512 and header_blocks == 8 and pixel_block == 9 and plausible(matrix, matrix)

    def length(self, data: bytes) -> int | None:
        """The 4096-byte header plus matrix² 16-bit pixels (registry contract)."""
        if not self.identify(data):
            return None
        return SOMATOM_HEADER_SIZE + 2 * SOMATOM_FIELDS[3].read(data) ** 2


def vision_matrix(data: bytes) -> int | None:
    """The Vision header's display matrix N (the image is N x N), when plausible."""
    n = VISION_MATRIX.read(data)
    return n if n is not None and plausible(n, n) else None


class VisionImaFormat(Format):
    name = "vision-ima"
    description = "Siemens Magnetom Vision / Numaris 3 native .IMA (6144-byte big-endian header)"
    priority = 30
    implementation = "gateway.formats.siemens.vision_ima:VisionIma"

    def identify(self, data: bytes) -> bool:
        n = vision_matrix(data)
        return data[96:104] == VISION_MAGIC and n is not None and len(data) == VISION_HEADER_SIZE + 2 * n * n

    def length(self, data: bytes) -> int | None:
        """6144 + 2·N² bytes (registry contract); ``identify`` wants the exact size, this not."""
        if len(data) < VISION_HEADER_SIZE:
            return VISION_HEADER_SIZE if data[96:104] == VISION_MAGIC else None
        n = vision_matrix(data)
        return VISION_HEADER_SIZE + 2 * n * n if data[96:104] == VISION_MAGIC and n is not None else None


register(SomatomPlusFormat())
register(VisionImaFormat())
