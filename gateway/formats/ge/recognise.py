"""GE files: which bytes are Genesis, Signa 3.x/4.x or CT 9800, by their magic and fixed marks.

The cheap half of the three formats (``gateway.formats.Format``): identification compares a
few bytes and imports neither pydicom nor numpy. Their lengths need the header tables and, for
compressed pixels, a walk of the pixel stream: they are the decoders' (``genesis``,
``signa4x``, ``ct9800``), loaded when asked.
"""

from __future__ import annotations

from gateway.formats import Format, register

GENESIS_MAGIC = b"IMGF"

SIGNA_STUDY_BASE, SIGNA_SERIES_BASE, SIGNA_IMAGE_BASE = 3072, 4096, 5120
SIGNA_IDENTIFIERS = ((SIGNA_STUDY_BASE, b"STUDY HEADER  "), (SIGNA_SERIES_BASE, b"SERIES HEADER "),
                     (SIGNA_IMAGE_BASE, b"IMAGE HEADER  "))

CT9800_BLOCK = 512
CT9800_MAGIC = b"9800"


def find_imgf(data: bytes) -> tuple[str, int] | None:
    """(variant, offset) of the Genesis IMGF header: at 0 (disk files), after a tape record's
    prefix ("dat"), in an Advantage Windows file ("aw"), or after a "GEMS" wrapper."""
    if data[:4] == GENESIS_MAGIC:
        return "ximg", 0
    for offset, name in ((3180, "dat"), (3228, "aw"), (3240, "aw")):
        if data[offset:offset + 4] == GENESIS_MAGIC:
            return name, offset
    if data[:4] == b"GEMS":
        pos = data.find(GENESIS_MAGIC, 4, 4096)
        if pos > 0:
            return "gems", pos
    return None


def looks_like_9800(data: bytes) -> bool:
    """Magic, the two constants, and an exam pointer outside the global header (notes 2)."""
    if len(data) < 196 or data[:4] != CT9800_MAGIC or data[192:196] != b"\x00\x01\x02\x00":
        return False
    exam = int.from_bytes(data[68:70], "big", signed=True)
    return exam == 0 or exam > CT9800_BLOCK // 2


class GenesisFormat(Format):
    name = "ge-genesis"
    description = "GE Genesis (Signa 5.x MR, CT Advantage, Advantage Windows) image file"
    priority = 50
    implementation = "gateway.formats.ge.genesis:GenesisDecoder"

    def identify(self, data: bytes) -> bool:
        return find_imgf(data[:4096]) is not None


class Signa4xFormat(Format):
    name = "ge-signa4x"
    description = "GE Signa 3.x/4.x MR image file (Data General, 14336-byte header)"
    priority = 50
    implementation = "gateway.formats.ge.signa4x:Signa4xDecoder"

    def identify(self, data: bytes) -> bool:
        if len(data) < SIGNA_IMAGE_BASE + 24:
            return False
        for base, ident in SIGNA_IDENTIFIERS:
            if data[base:base + 14] != ident or data[base + 22:base + 24] != b"\x00\x02":
                return False
        return True


class CT9800Format(Format):
    name = "ge-ct9800"
    description = "GE CT 9800 image file (Data General, word pointers, byte-coded pixels)"
    priority = 50
    implementation = "gateway.formats.ge.ct9800:CT9800Decoder"

    def identify(self, data: bytes) -> bool:
        return looks_like_9800(data)


register(GenesisFormat())
register(Signa4xFormat())
register(CT9800Format())
