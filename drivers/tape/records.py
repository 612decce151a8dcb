"""Tape record streams: the records and filemarks of a tape, from a drive or a tape image.

A tape is a sequence of *records* (blocks, each read whole) separated into *tape files* by
filemarks; two filemarks in a row (or the end of an image, or an end-of-medium marker) end the
recorded data. Every medium here (a Linux SCSI drive, SIMH ``.tap``, AWSTAPE, raw ``dd``
images) is read as the same stream of ``TapeEvent``: RECORD, FILEMARK, BAD (a record that
could not be read, or a stretch of image that makes no sense) and END. Each event says where
it is: tape file number, record number within the file and, in an image, the byte offset,
so every error can name its place on the tape.

Readers stream: memory stays bounded by the largest record, whatever the size of the tape. A
reader never allocates by an unchecked length word: it first checks it against what is left
of the image and against ``ErrorPolicy.max_record``.

What happens on a bad record is the ``ErrorPolicy``: a drive retries the read N times (it
backspaces one block first), then the reader reports BAD and either goes on (``skip``; an image
reader re-synchronises on the next valid record) or stops (``stop``: END follows the BAD).
The consumer decides what a damaged tape file means (``drivers.tape.files``). Nothing here
knows a vendor format.
"""

from __future__ import annotations

import hashlib
import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Iterable, Iterator

log = logging.getLogger("drivers.tape")

RECORD = "record"
RECORDS = "records"
FILEMARK = "filemark"
BAD = "bad"
END = "end"

# How much of the start of a tape identifies it (for the resume journal).
FINGERPRINT_BYTES = 1 << 20

IMAGE_KINDS = ("simh", "aws", "raw")
KINDS = ("device", *IMAGE_KINDS)


class TapeEvent(tuple):
    """One thing read from the tape: ``(kind, data, file, record, offset, error)``.

    ``data`` is the record's bytes (a ``bytes`` or read-only ``memoryview``; for BAD, what
    could be read of it, possibly empty). ``file`` and ``record`` are 0-based; ``record`` of
    a FILEMARK is the number of records the file held. ``offset`` is the byte offset of the
    record's header in an image, or None on a drive (which counts files and records only).
    ``error`` says why for BAD and, on END, why reading stopped early (None at a normal end).

    RECORDS is a run of consecutive good records of one tape file, all of one size but the
    last, which may be shorter (a file written in fixed blocks ends with a short one):
    ``data`` is then a ``RecordRun`` (a sequence of the records) and ``record``/``offset``
    are those of the first. Readers use it where the medium shows many records at once (an
    image), so that a tape of small records costs one event per run, not one per record.
    ``records()`` turns a stream back into one event per record for consumers that want that.

    A tuple, because a tape holds millions of records: hot loops create it with
    ``tuple.__new__(TapeEvent, (...))``.
    """

    __slots__ = ()

    def __new__(cls, kind: str, data, file: int, record: int, offset: int | None, error: str | None = None):
        return tuple.__new__(cls, (kind, data, file, record, offset, error))

    kind = property(itemgetter(0))
    data = property(itemgetter(1))
    file = property(itemgetter(2))
    record = property(itemgetter(3))
    offset = property(itemgetter(4))
    error = property(itemgetter(5))

    def where(self, unit: str = "byte offset") -> str:
        return position_text(self.file, self.record, self.offset, unit)

    def __repr__(self) -> str:
        size = "" if self.data is None else f" {len(self.data)} bytes"
        why = f" ({self.error})" if self.error else ""
        return f"<{self.kind}{size} at {self.where()}{why}>"


_tuple_new = tuple.__new__


class RecordRun:
    """``count`` records every ``stride`` bytes of ``buf`` from ``first``: ``size`` bytes each,
    but the last has ``last`` bytes (at most ``size``; by default ``size`` too).

    A view: nothing is copied until a record (a ``memoryview``) or ``tobytes()`` is asked for.
    """

    __slots__ = ("buf", "first", "size", "stride", "count", "header", "last")

    def __init__(self, buf: memoryview, first: int, size: int, stride: int, count: int, header: int = 0,
                 last: int | None = None):
        self.buf, self.first, self.size, self.stride, self.count = buf, first, size, stride, count
        self.header = header  # bytes before each record in the stride (for offsets)
        self.last = size if last is None else last

    def __len__(self) -> int:
        return self.count

    @property
    def nbytes(self) -> int:
        return self.size * (self.count - 1) + self.last

    def __getitem__(self, m: int) -> memoryview:
        if not 0 <= m < self.count:
            raise IndexError(m)
        a = self.first + m * self.stride
        return self.buf[a:a + (self.size if m < self.count - 1 else self.last)]

    def __iter__(self) -> Iterator[memoryview]:
        buf, size, final = self.buf, self.size, self.first + (self.count - 1) * self.stride
        for a in range(self.first, final, self.stride):
            yield buf[a:a + size]
        yield buf[final:final + self.last]

    def tobytes(self) -> bytes:
        if self.stride == self.size:
            return bytes(self.buf[self.first:self.first + self.nbytes])
        return b"".join(self)


def records(events: Iterable[TapeEvent]) -> Iterator[TapeEvent]:
    """The same stream with every RECORDS run split into single RECORD events."""
    for ev in events:
        if ev[0] != RECORDS:
            yield ev
            continue
        run, file, first, offset = ev[1], ev[2], ev[3], ev[4]
        for m, data in enumerate(run):
            yield TapeEvent(RECORD, data, file, first + m, None if offset is None else offset + m * run.stride)


def position_text(file: int | None, record: int | None, offset: int | None, unit: str = "byte offset") -> str:
    """'tape file 3, record 12, byte offset 40960': how every message names a place."""
    parts = []
    if file is not None:
        parts.append(f"tape file {file}")
    if record is not None:
        parts.append(f"record {record}")
    if offset is not None:
        parts.append(f"{unit} {offset}")
    return ", ".join(parts) or "unknown position"


class TapeError(Exception):
    """The tape cannot be read (opened, positioned) at all; says where when it knows."""

    def __init__(self, message: str, *, file: int | None = None, record: int | None = None,
                 offset: int | None = None, unit: str = "byte offset"):
        self.reason = message
        self.file, self.record, self.offset = file, record, offset
        where = position_text(file, record, offset, unit)
        super().__init__(message if where == "unknown position" else f"{message} ({where})")


@dataclass(frozen=True)
class ErrorPolicy:
    """What to do when a record cannot be read.

    ``retries``: how many times a drive re-reads a block after EIO (backspacing first).
    ``on_error``: ``skip`` reports the bad record and goes on; ``stop`` reports it and ends.
    ``max_record``: the largest record believed (a longer length word is corruption).
    ``past_eot``: read on after two filemarks (old data beyond the logical end of tape).
    """

    retries: int = 3
    on_error: str = "skip"
    max_record: int = 64 << 20
    past_eot: bool = False

    def __post_init__(self) -> None:
        if self.on_error not in ("skip", "stop"):
            raise ValueError(f"on_error must be 'skip' or 'stop', not {self.on_error!r}")
        if self.retries < 0:
            raise ValueError("retries must be at least 0")


class TapeReader(ABC):
    """A tape as a stream of ``TapeEvent``; iterate it once from the current position.

    ``seek_file(n, offset)`` positions at the start of tape file ``n`` (an image seeks to the
    byte ``offset`` the journal kept; a drive rewinds and spaces forward ``n`` filemarks).
    ``size`` is the image size in bytes (None for a drive), ``position`` the byte offset or
    block number reached, for progress bars.
    """

    kind: str = ""
    unit: str = "byte offset"

    def __init__(self, path: str | Path, policy: ErrorPolicy = ErrorPolicy()):
        self.path = str(path)
        self.policy = policy
        self.size: int | None = None
        self.position: int = 0
        self.start_file = 0
        self.start_offset = 0

    @abstractmethod
    def events(self) -> Iterator[TapeEvent]:
        """Records, filemarks and bad records up to and including one END."""

    def __iter__(self) -> Iterator[TapeEvent]:
        return self.events()

    def seek_file(self, file: int, offset: int | None = None) -> None:
        if offset is None:
            raise TapeError(f"{self.kind} image: a byte offset is needed to start at tape file {file}")
        if self.size is not None and not 0 <= offset <= self.size:
            raise TapeError(f"start offset {offset} is outside the image ({self.size} bytes)", file=file)
        self.start_file, self.start_offset = file, offset

    @abstractmethod
    def fingerprint(self) -> str:
        """A hex digest that tells this tape from another (for the resume journal)."""

    def rewind(self) -> None:
        self.seek_file(0, 0)

    def unload(self) -> None:  # noqa: B027 (optional hook: a no-op default is meant)
        """Rewind and eject (a drive); nothing for an image."""

    def close(self) -> None:  # noqa: B027 (optional hook: a no-op default is meant)
        """Release the medium; nothing to do by default."""

    def __enter__(self) -> "TapeReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ImageReader(TapeReader):
    """Common ground of tape images: a regular file read in large sequential chunks."""

    CHUNK = 1 << 20
    KEPT_BUFFERS = 3

    def __init__(self, path: str | Path, policy: ErrorPolicy = ErrorPolicy()):
        super().__init__(path, policy)
        self._f = open(self.path, "rb", buffering=0)
        self.size = os.fstat(self._f.fileno()).st_size
        self._buffers: list[bytearray] = []  # read buffers, the least recently filled first

    def _fill(self, offset: int) -> memoryview:
        """Up to ``CHUNK`` bytes of the image from ``offset``: a read-only view of a read buffer.

        Buffers are read into again once nothing refers to them: with a fresh buffer per
        read the allocator gave memory back to the system and faulted it in again, and
        an ingest (bench/tape.py) took several times the page faults and system time.
        Records are handed out as views of a buffer and a consumer may keep them
        (``drivers.tape.files`` keeps a tape file's records until the file ends, and any
        consumer holds the last event while it asks for the next): a buffer that still has
        a view cannot change size, which is the test here. When all are held a new one is
        taken. The caller drops its own views first.
        """
        buffers, chunk = self._buffers, self.CHUNK
        for k, buf in enumerate(buffers):  # the least recently filled first: the likeliest free
            try:
                buf.append(buf.pop())  # refused while a view of the buffer exists
            except BufferError:
                continue
            if len(buf) != chunk:  # CHUNK was changed: not this one
                continue
            del buffers[k]
            break
        else:
            buf = bytearray(chunk)
            if len(buffers) >= self.KEPT_BUFFERS:
                del buffers[0]  # left to whoever holds it
        buffers.append(buf)
        got = os.preadv(self._f.fileno(), [buf], offset)
        return memoryview(buf)[:got].toreadonly()

    def fingerprint(self) -> str:
        """The image's size and first MiB: the same tape copied elsewhere is the same tape."""
        h = hashlib.sha256(f"{self.kind}:{self.size}:".encode())
        h.update(os.pread(self._f.fileno(), FINGERPRINT_BYTES, 0))
        return h.hexdigest()[:32]

    def close(self) -> None:
        self._f.close()
        self._buffers = []

    def bad(self, why: str, file: int, record: int, offset: int, data=b"") -> TapeEvent:
        log.warning("event=tape_bad_record medium=%s %s reason=%r", self.path,
                    position_text(file, record, offset).replace(", ", " "), why)
        return TapeEvent(BAD, data, file, record, offset, why)
