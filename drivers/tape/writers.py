"""Writing SIMH and AWSTAPE images (for ``simulate --tape`` and practice runs).

Byte layouts as in ``drivers.tape.images``. Tests never check the readers against these
writers alone: they also build images byte by byte from the format descriptions.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from drivers.tape.images import AWS_ENDREC, AWS_MAX_CHUNK, AWS_NEWREC, AWS_TAPEMARK, SIMH_BAD_FLAG, SIMH_EOM


class SimhWriter:
    """``record``, ``mark`` and ``end`` append to a SIMH image (odd records padded unless ``unpadded``)."""

    def __init__(self, f: BinaryIO, unpadded: bool = False):
        self.f = f
        self.unpadded = unpadded
        self.after_mark = False

    def record(self, data: bytes, bad: bool = False) -> None:
        if not 0 < len(data) <= 0x0FFFFFFF:
            raise ValueError(f"a SIMH record holds 1 to 268435455 bytes, not {len(data)}")
        word = struct.pack("<I", len(data) | (SIMH_BAD_FLAG if bad else 0))
        pad = b"\0" if len(data) & 1 and not self.unpadded else b""
        self.f.write(word + data + pad + word)
        self.after_mark = False

    def mark(self) -> None:
        self.f.write(b"\0\0\0\0")
        self.after_mark = True

    def end(self, eom: bool = True) -> None:
        """Close the recorded data with a second tape mark, then end of medium if asked."""
        if not self.after_mark:
            self.mark()
        self.mark()
        if eom:
            self.f.write(struct.pack("<I", SIMH_EOM))


class AwsWriter:
    """The same for AWSTAPE; records longer than 65535 bytes are split over chunks."""

    def __init__(self, f: BinaryIO, chunk: int = AWS_MAX_CHUNK):
        if not 0 < chunk <= AWS_MAX_CHUNK:
            raise ValueError(f"an AWS chunk holds 1 to {AWS_MAX_CHUNK} bytes")
        self.f = f
        self.chunk = chunk
        self.prev = 0
        self.after_mark = False

    def _chunk(self, data: bytes, flags: int) -> None:
        self.f.write(struct.pack("<HHBB", len(data), self.prev, flags, 0) + data)
        self.prev = len(data)
        self.after_mark = flags == AWS_TAPEMARK

    def record(self, data: bytes, bad: bool = False) -> None:
        if bad:
            raise ValueError("AWSTAPE cannot mark a record as bad")
        if not data:
            raise ValueError("an AWS record cannot be empty")
        pieces = [data[i:i + self.chunk] for i in range(0, len(data), self.chunk)]
        for n, piece in enumerate(pieces):
            flags = (AWS_NEWREC if n == 0 else 0) | (AWS_ENDREC if n == len(pieces) - 1 else 0)
            self._chunk(piece, flags)

    def mark(self) -> None:
        self._chunk(b"", AWS_TAPEMARK)

    def end(self, eom: bool = True) -> None:
        """Close the recorded data with a second tape mark (AWS has no end-of-medium marker)."""
        if not self.after_mark:
            self.mark()
        self.mark()


def write_file(writer: SimhWriter | AwsWriter, data: bytes, record_size: int) -> int:
    """One tape file: ``data`` cut into records of ``record_size`` (the last may be short), then a mark."""
    count = 0
    for i in range(0, len(data), record_size):
        writer.record(data[i:i + record_size])
        count += 1
    writer.mark()
    return count
