"""A tape drive played in software: ``StDouble`` follows st(4)'s documented semantics over a
scripted tape, under the real ``TapeDevice`` reader code.

What a socket pair cannot play (ENOMEM for a short buffer, EIO for a bad block, the block
counter of MTIOCGET, backspacing and ejecting) is played here, for the device reader's tests
and for the tape source's.
"""

from __future__ import annotations

import errno
import os

from drivers.tape import device as td
from drivers.tape.device import DriveStatus, TapeDevice

FM = None  # a filemark in a scripted tape


class StDouble(TapeDevice):
    """st(4) as documented, over a scripted tape: the same reader code on top.

    A block larger than the read request fails with ENOMEM and is passed; a bad block fails
    with EIO ``bad[i]`` times and is passed each time; MTBSR/MTFSR step one block back/forward;
    MTIOCGET gives the file number and the block number counted from the last filemark.
    """

    def __init__(self, tape: list[bytes | None], bad: dict[int, int] | None = None, **kw):
        self.tape, self.bad = tape, dict(bad or {})
        self.pos, self.fileno, self.blkno = 0, 0, 0
        self.ops: list[tuple[int, int]] = []
        self.reads: list[int] = []
        r, w = os.pipe()
        os.close(w)
        super().__init__("st-double", fd=r, **kw)

    def status(self):
        return DriveStatus(self.fileno, self.blkno, 0, True, False, self.pos == 0, False, False,
                           self.pos >= len(self.tape), False)

    def op(self, operation: int, count: int = 1) -> bool:
        self.ops.append((operation, count))
        for _ in range(count):
            if operation == td.MTBSR:
                assert self.tape[self.pos - 1] is not FM, "backspaced over a filemark"
                self.pos, self.blkno = self.pos - 1, self.blkno - 1
            elif operation == td.MTFSR:
                self.pos, self.blkno = self.pos + 1, self.blkno + 1
            elif operation == td.MTREW:
                self.pos = self.fileno = self.blkno = 0
            elif operation == td.MTFSF:
                while self.tape[self.pos] is not FM:
                    self.pos += 1
                self.pos, self.fileno, self.blkno = self.pos + 1, self.fileno + 1, 0
        return True

    def _sysread(self, n: int) -> bytes:
        self.reads.append(n)
        if self.pos >= len(self.tape):
            raise OSError(errno.EIO, "Input/output error")
        item = self.tape[self.pos]
        if item is FM:
            self.pos, self.fileno, self.blkno = self.pos + 1, self.fileno + 1, 0
            return b""
        self.pos, self.blkno = self.pos + 1, self.blkno + 1
        if self.bad.get(self.pos - 1, 0) > 0:
            self.bad[self.pos - 1] -= 1
            raise OSError(errno.EIO, "Input/output error")
        if len(item) > n:
            raise OSError(errno.ENOMEM, "Cannot allocate memory")
        return item
