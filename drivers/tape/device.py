"""A Linux SCSI tape drive (``st``, ``/dev/nst*``) as a record stream.

How ``st`` reads (st(4)): in variable-block mode one ``read()`` returns one tape block,
whatever the byte count asked for, as long as it is at least the block size; a block larger
than the request fails with ENOMEM and leaves the tape after that block. A ``read()`` at a
filemark returns 0 bytes; two in a row mark the end of recorded data. In fixed-block mode a
read returns whole blocks of the configured size. Control goes through ``ioctl``: MTIOCTOP
(rewind, space over filemarks/records, set block size, offline) and MTIOCGET (status,
current file and block number).

So the reader: asks for a generous buffer; on ENOMEM backspaces one block, doubles the buffer
(up to ``ErrorPolicy.max_record``) and reads it again; on EIO asks the drive whether it has
reached the end of data (blank tape is not a bad block), otherwise backspaces and re-reads up
to ``retries`` times, then reports the block BAD and spaces past it (``skip``) or ends
(``stop``). Where the file descriptor is not a tape (a pipe, a socket, a test double of
``st``), every ioctl is skipped: the read semantics alone still work, which is what tests use
(an ``AF_UNIX``/``SOCK_SEQPACKET`` socket pair delivers one record per read and a zero-length
read per filemark, as ``st`` does).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from drivers.tape.records import (
    BAD,
    END,
    FILEMARK,
    FINGERPRINT_BYTES,
    RECORD,
    ErrorPolicy,
    TapeError,
    TapeEvent,
    TapeReader,
    position_text,
)

log = logging.getLogger("drivers.tape")

# <linux/mtio.h>
_MTOP = struct.Struct("@hi")  # struct mtop { short mt_op; int mt_count; }
_MTGET = struct.Struct("@lllllii")  # mt_type, mt_resid, mt_dsreg, mt_gstat, mt_erreg, mt_fileno, mt_blkno


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("m") << 8) | nr


MTIOCTOP = _ioc(1, 1, _MTOP.size)  # _IOW('m', 1, struct mtop)
MTIOCGET = _ioc(2, 2, _MTGET.size)  # _IOR('m', 2, struct mtget)

MTFSF, MTBSF, MTFSR, MTBSR, MTREW, MTOFFL, MTNOP, MTSETBLK = 1, 2, 3, 4, 6, 7, 8, 20
OP_NAMES = {MTFSF: "MTFSF", MTBSF: "MTBSF", MTFSR: "MTFSR", MTBSR: "MTBSR", MTREW: "MTREW", MTOFFL: "MTOFFL",
            MTNOP: "MTNOP", MTSETBLK: "MTSETBLK"}

GMT_EOF = 0x80000000
GMT_BOT = 0x40000000
GMT_EOT = 0x20000000
GMT_EOD = 0x08000000
GMT_WR_PROT = 0x04000000
GMT_ONLINE = 0x01000000
GMT_DR_OPEN = 0x00040000
MT_ST_BLKSIZE_MASK = 0xFFFFFF

INITIAL_BUFFER = 256 << 10


@dataclass(frozen=True)
class DriveStatus:
    """What MTIOCGET says: position (-1 when the drive does not know) and state flags."""

    file: int
    block: int
    block_size: int  # 0: variable-block mode
    online: bool
    door_open: bool
    bot: bool
    eof: bool
    eot: bool
    eod: bool
    write_protected: bool

    @classmethod
    def unpack(cls, raw: bytes) -> "DriveStatus":
        _type, _resid, dsreg, gstat, _erreg, fileno, blkno = _MTGET.unpack(raw)
        g = gstat & 0xFFFFFFFF
        return cls(fileno, blkno, dsreg & MT_ST_BLKSIZE_MASK, bool(g & GMT_ONLINE), bool(g & GMT_DR_OPEN),
                   bool(g & GMT_BOT), bool(g & GMT_EOF), bool(g & GMT_EOT), bool(g & GMT_EOD), bool(g & GMT_WR_PROT))


class TapeDevice(TapeReader):
    """Records from a tape drive (or any descriptor that reads like one)."""

    kind = "device"
    unit = "block"

    def __init__(self, path: str | Path, policy: ErrorPolicy = ErrorPolicy(), block_size: int = 0,
                 fd: int | None = None, buffer_size: int = INITIAL_BUFFER):
        super().__init__(path, policy)
        self.fd = os.open(self.path, os.O_RDONLY) if fd is None else fd
        self._own_fd = fd is None
        self.block_size = block_size
        self.buffer_size = max(buffer_size, block_size or 1)
        self.is_tape = self.status() is not None
        self._replay: list[TapeEvent] = []
        self._consumed = False
        if not self.is_tape:
            log.info("event=tape_not_a_drive medium=%s note='no MTIOCGET: tape ioctls are skipped'", self.path)
        elif not self.op(MTSETBLK, block_size):
            raise TapeError(f"{self.path}: the drive refused block size {block_size} "
                            f"({'variable' if not block_size else 'fixed'}-block mode)")

    # -- ioctls ---------------------------------------------------------------------------

    def status(self) -> DriveStatus | None:
        """MTIOCGET, or None where the descriptor is not a tape."""
        try:
            raw = fcntl.ioctl(self.fd, MTIOCGET, bytes(_MTGET.size))
        except OSError as exc:
            if exc.errno in (errno.ENOTTY, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                return None
            raise TapeError(f"{self.path}: cannot read the drive status: {exc.strerror}") from None
        return DriveStatus.unpack(raw)

    def op(self, operation: int, count: int = 1) -> bool:
        """One MTIOCTOP; False (and nothing done) where the descriptor is not a tape.

        Raises ``TapeError`` when a tape drive rejects it (EIO), naming the operation.
        """
        if not getattr(self, "is_tape", True):
            log.debug("event=tape_op_skipped medium=%s op=%s count=%d", self.path, OP_NAMES.get(operation), count)
            return False
        try:
            fcntl.ioctl(self.fd, MTIOCTOP, _MTOP.pack(operation, count))
        except OSError as exc:
            if exc.errno in (errno.ENOTTY, errno.EINVAL, errno.ENOSYS) and not getattr(self, "is_tape", False):
                return False
            raise TapeError(f"{self.path}: {OP_NAMES.get(operation, operation)} {count} failed: "
                            f"{exc.strerror}") from None
        return True

    def rewind(self) -> None:
        self.op(MTREW, 1)
        self._replay, self._consumed = [], False
        self.start_file = 0

    def unload(self) -> None:
        """Rewind and take the drive offline (ejects the cartridge on most drives)."""
        self.op(MTOFFL, 1)

    def seek_file(self, file: int, offset: int | None = None) -> None:
        """Rewind and space forward ``file`` filemarks (the journal's resume point)."""
        if not self.is_tape:
            if file != self.start_file:
                raise TapeError(f"{self.path} is not a tape drive: it cannot be positioned at tape file {file}")
            return
        self.rewind()
        if file:
            self.op(MTFSF, file)
        self.start_file = file

    # -- reading --------------------------------------------------------------------------

    def _sysread(self, n: int) -> bytes:
        """One read() system call (the seam a test double of ``st`` replaces)."""
        return os.read(self.fd, n)

    def fingerprint(self) -> str:
        """A digest of the first MiB of records, read from the beginning of the tape.

        A drive is rewound first. What was read is replayed by ``events()``, so a stream that
        cannot be rewound (a pipe) loses nothing.
        """
        if self.is_tape:
            self.rewind()
        elif self._consumed:
            raise TapeError(f"{self.path}: cannot fingerprint a stream already read")
        h = hashlib.sha256(b"device:")
        seen = 0
        stream = self._live()
        for ev in stream:
            self._replay.append(ev)
            h.update(f"{ev.kind}:{0 if ev.data is None else len(ev.data)}:".encode())
            if ev.data is not None:
                h.update(ev.data)
                seen += len(ev.data)
            if ev.kind == END or seen >= FINGERPRINT_BYTES:
                break
        stream.close()
        return h.hexdigest()[:32]

    def events(self) -> Iterator[TapeEvent]:
        replay, self._replay = self._replay, []
        yield from replay
        if replay and replay[-1].kind == END:
            return
        if replay:
            last = replay[-1]
            file = last.file + (1 if last.kind == FILEMARK else 0)
            rec = 0 if last.kind == FILEMARK else last.record + 1
            marks = 1 if last.kind == FILEMARK else 0
            yield from self._live(file, rec, marks)
        else:
            yield from self._live()

    def _live(self, file: int | None = None, rec: int = 0, marks: int = 0) -> Iterator[TapeEvent]:
        self._consumed = True
        file = self.start_file if file is None else file
        policy = self.policy
        while True:
            try:
                data = self._read_block(file, rec)
            except _Bad as bad:
                yield TapeEvent(BAD, b"", file, rec, None, bad.reason)
                if policy.on_error == "stop" or bad.fatal:
                    yield TapeEvent(END, None, file, rec + 1, None, bad.reason if bad.fatal else
                                    "stopped at a bad block (policy stop)")
                    return
                rec, marks = rec + 1, 0
                continue
            except _EndOfData as end:
                yield TapeEvent(END, None, file, rec, None, end.reason)
                return
            if not data:
                marks += 1
                if marks == 2 and not policy.past_eot:
                    yield TapeEvent(END, None, file, rec, None)
                    return
                yield TapeEvent(FILEMARK, None, file, rec, None)
                file, rec = file + 1, 0
                continue
            marks = 0
            self.position += len(data)
            if self.block_size and len(data) > self.block_size:
                mv = memoryview(data)
                for j in range(0, len(data), self.block_size):
                    yield TapeEvent(RECORD, mv[j:j + self.block_size], file, rec, None)
                    rec += 1
            else:
                yield TapeEvent(RECORD, data, file, rec, None)
                rec += 1

    def _read_block(self, file: int, rec: int) -> bytes:
        """One record (or, in fixed-block mode, as many whole blocks as fit), b"" at a filemark.

        ``rec`` is the number of blocks already read in this tape file, which is where st's
        block counter (MTIOCGET ``mt_blkno``, counted from the last filemark) stands before
        the read. After an error it tells whether the drive moved past the failed block, so
        a retry never re-reads the previous block nor silently takes the next one for it.
        """
        failures = 0
        while True:
            want = self.buffer_size
            if self.block_size:
                want = max(self.block_size, want // self.block_size * self.block_size)
            try:
                return self._sysread(want)
            except OSError as exc:
                where = position_text(file, rec, None)
                if exc.errno == errno.ENOMEM and not self.block_size:
                    self._grow(rec, where)
                    continue
                if exc.errno not in (errno.EIO, errno.ENOSPC):
                    raise _Bad(f"the drive cannot be read: {exc.strerror}", fatal=True) from None
                st = self.status() if self.is_tape else None
                if st is not None and (st.eod or exc.errno == errno.ENOSPC):
                    raise _EndOfData("end of recorded data (blank tape)") from None
                moved = None if st is None or st.block < 0 else st.block - rec  # 0 before, 1 past the block
                if failures < self.policy.retries and moved in (0, 1):
                    failures += 1
                    log.warning("event=tape_read_retry medium=%s %s attempt=%d error=%r", self.path,
                                where.replace(", ", " "), failures, exc.strerror)
                    try:
                        if moved == 1:
                            self.op(MTBSR, 1)
                        continue
                    except TapeError as err:
                        log.error("event=tape_retry_impossible medium=%s error=%r", self.path, str(err))
                if moved == 0:
                    try:
                        self.op(MTFSR, 1)
                    except TapeError as err:
                        raise _Bad(f"read error ({exc.strerror}); cannot space past the bad block: {err}",
                                   fatal=True) from None
                tries = f"after {failures} retr{'y' if failures == 1 else 'ies'}" if failures else \
                    "(position unknown, not retried)" if moved is None else "(not retried)"
                reason = f"read error ({exc.strerror}) {tries}"
                log.error("event=tape_bad_block medium=%s %s reason=%r", self.path, where.replace(", ", " "), reason)
                raise _Bad(reason) from None

    def _grow(self, rec: int, where: str) -> None:
        """ENOMEM: the block is larger than the buffer and st has passed it: step back, grow."""
        if self.buffer_size >= self.policy.max_record:
            raise _Bad(f"record larger than the largest buffer allowed ({self.policy.max_record} bytes)")
        self.buffer_size = min(self.buffer_size * 2, self.policy.max_record)
        log.info("event=tape_buffer_grown medium=%s %s bytes=%d", self.path, where.replace(", ", " "), self.buffer_size)
        st = self.status() if self.is_tape else None
        if st is not None and (st.block < 0 or st.block > rec):
            self.op(MTBSR, 1)

    def close(self) -> None:
        if self._own_fd and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _Bad(Exception):
    def __init__(self, reason: str, fatal: bool = False):
        super().__init__(reason)
        self.reason, self.fatal = reason, fatal


class _EndOfData(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
