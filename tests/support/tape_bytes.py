"""Tape images built byte by byte from the format descriptions, independent of our writers.

SIMH (Supnik, "SIMH Magtape Representation and Handling"): little-endian 32-bit length,
data padded to even length, the same length again; 0x00000000 tape mark; 0xFFFFFFFF end of
medium; 0xFFFFFFFE erase gap; bit 31 set: record read with errors.
AWSTAPE (Hercules ``AWSTAPE_BLKHDR``): 16-bit LE length of this chunk, 16-bit LE length of
the previous chunk, flags1 (0x80 new record, 0x40 tape mark, 0x20 end of record), flags2 0.
"""

from __future__ import annotations

import struct


def simh_record(data: bytes, *, bad: bool = False, pad: bool = True) -> bytes:
    word = struct.pack("<I", len(data) | (0x80000000 if bad else 0))
    return word + data + (b"\x00" if pad and len(data) % 2 else b"") + word


SIMH_MARK = b"\x00\x00\x00\x00"
SIMH_EOM = b"\xff\xff\xff\xff"
SIMH_GAP = b"\xfe\xff\xff\xff"


def aws_chunk(data: bytes, prev: int, flags: int) -> bytes:
    return struct.pack("<HHBB", len(data), prev, flags, 0) + data


def aws_tape(files: list[list[bytes]], chunk: int = 65535, end_marks: int = 2) -> bytes:
    """Files of records as AWSTAPE, each file closed by a tape mark, then one more mark."""
    out, prev = [], 0
    for records in files:
        for rec in records:
            pieces = [rec[i:i + chunk] for i in range(0, len(rec), chunk)]
            for n, piece in enumerate(pieces):
                flags = (0x80 if n == 0 else 0) | (0x20 if n == len(pieces) - 1 else 0)
                out.append(aws_chunk(piece, prev, flags))
                prev = len(piece)
        out.append(aws_chunk(b"", prev, 0x40))
        prev = 0
    for _ in range(end_marks - 1):
        out.append(aws_chunk(b"", prev, 0x40))
    return b"".join(out)


def simh_tape(files: list[list[bytes]], *, pad: bool = True, eom: bool = True) -> bytes:
    out = []
    for records in files:
        out += [simh_record(r, pad=pad) for r in records]
        out.append(SIMH_MARK)
    out.append(SIMH_MARK)
    if eom:
        out.append(SIMH_EOM)
    return b"".join(out)


def as_records(blob: bytes, size: int = 8192) -> list[bytes]:
    """A file cut into tape records of ``size`` bytes (the last one short), as a console writes it."""
    return [blob[i:i + size] for i in range(0, len(blob), size)]


def ansi_label(kind: str, **fields: str) -> bytes:
    """An 80-byte ASCII label written from the ANSI X3.27 positions, independently of our parser."""
    positions = {"volume_serial": (4, 10), "file_id": (4, 21), "sequence": (31, 35), "block_count": (54, 60)}
    chars = bytearray(kind.encode() + b" " * 76)
    for name, value in fields.items():
        a, b = positions[name]
        chars[a:b] = value.encode().ljust(b - a)[: b - a]
    return bytes(chars)
