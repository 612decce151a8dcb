"""Room on the spool's file system: intake stops at a floor so that delivery can always go on.

Delivery needs a little room of its own: every outcome is a SQLite transaction (WAL frames,
the -shm index), and only recorded outcomes free spool files. A spool that filled its disk to
the last byte could neither record nor free, and a restart would not help. So:

- intake (``SpaceGuard.admit``) refuses a new instance once the free space would fall below
  the floor (``gateway.min_free_mb`` or ``gateway.min_free_percent`` of the file system,
  whichever is smaller), raising ``IntakePaused``: the source is not acknowledged and offers
  the capture again later; intake resumes by itself once the floor plus a tenth is free;
- a reserve file (``spool/reserve``, at most 8 MiB) is kept while there is room and deleted
  the moment free space runs short for a delivery transaction (something else filled the
  disk: the scanner's export folder, logs), so outcomes can still be recorded and files freed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import IntakePaused

log = logging.getLogger("gateway.delivery.space")

MB = 1 << 20
RESERVE_MAX = 8 * MB      # the reserve file's size, at most ...
RESERVE_SHARE = 50        # ... and at most 1/50 of the file system
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class Floor:
    """Free space intake leaves alone: ``mb`` megabytes or ``percent`` of the file system,
    whichever is smaller (a small disk keeps its percentage, a large one needs no more than
    ``mb``). Zero in either turns the floor off."""

    mb: int = 500
    percent: int = 5

    def bytes(self, total: int) -> int:
        return min(self.mb * MB, total * self.percent // 100)


@dataclass(frozen=True)
class Room:
    free: int    # bytes an unprivileged writer may still use
    total: int
    floor: int

    def describe(self) -> str:
        return f"{self.free / MB:.1f} MB free on the spool's file system, floor {self.floor / MB:.1f} MB"


def is_full(exc: BaseException) -> bool:
    """True for the errors a full file system (or quota) gives."""
    if isinstance(exc, OSError):
        return exc.errno in FULL_ERRNOS
    if isinstance(exc, sqlite3.OperationalError):
        return "full" in str(exc)  # SQLITE_FULL: "database or disk is full"
    return False


class SpaceGuard:
    """The floor, the reserve file and whether intake is paused (and why), for one spool."""

    def __init__(self, directory: Path, floor: Floor | None = None):
        self.directory = directory
        self.floor = floor or Floor()
        self.reserve = directory / "reserve"
        self.paused: str | None = None  # why intake is paused, None while it is open
        self._reserve_failed = False     # said once; tried again only once intake resumes
        self._lock = threading.Lock()

    def room(self) -> Room:
        st = os.statvfs(self.directory)
        total = st.f_blocks * st.f_frsize
        return Room(st.f_bavail * st.f_frsize, total, self.floor.bytes(total))

    def _reserve_size(self, room: Room) -> int:
        return min(RESERVE_MAX, room.total // RESERVE_SHARE)

    # -- intake ---------------------------------------------------------------------------

    def admit(self, size: int) -> None:
        """Raise ``IntakePaused`` unless ``size`` more bytes leave the floor free."""
        room = self.room()
        with self._lock:
            margin = room.floor // 10 if self.paused else 0  # resume a little above the floor
            if room.free - size >= room.floor + margin:
                if self.paused:
                    log.warning("event=intake_resumed detail=%r", room.describe())
                    self.paused = None
                    self._reserve_failed = False
                self._keep_reserve(room)
                return
            self._pause(f"{room.describe()}: intake paused until space is freed")

    def refusal(self, size: int) -> str | None:
        """Why ``size`` more bytes would cross the floor (None: they would not): ``admit``'s
        test without its effects (pausing, resuming, the reserve), for a process that writes
        into the spool but is not the one that keeps its state (a ``send`` worker)."""
        room = self.room()
        if room.free - size >= room.floor:
            return None
        return f"{room.describe()}: intake paused until space is freed"

    def full(self, exc: BaseException) -> IntakePaused:
        """Intake hit a full file system after all (another writer took the room)."""
        with self._lock:
            return self._pause(f"spool file system full ({exc}): intake paused until space is freed", raise_=False)

    def _pause(self, reason: str, raise_: bool = True) -> IntakePaused:
        if self.paused is None:
            log.warning("event=intake_paused reason=%r", reason)
        self.paused = reason
        error = IntakePaused(reason)
        if raise_:
            raise error
        return error

    # -- the reserve ----------------------------------------------------------------------

    def _keep_reserve(self, room: Room) -> None:
        """(Re)create the reserve while there is room for it above the floor."""
        size = self._reserve_size(room)
        if size <= 0 or self._reserve_failed or self.reserve.exists() or room.free - size < room.floor:
            return
        tmp = self.reserve.with_name("reserve.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, size)  # real blocks, not a sparse file
            finally:
                os.close(fd)
            os.replace(tmp, self.reserve)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            self._reserve_failed = True
            log.warning("event=reserve_not_kept error=%r", str(exc))

    def ensure_headroom(self) -> None:
        """Before a delivery transaction: if free space is short, give the reserve back, so
        SQLite has room to record outcomes (which is what frees spool files)."""
        if not self.reserve.exists():
            return
        room = self.room()
        if room.free < max(self._reserve_size(room), MB):
            self.release_reserve(room.describe())

    def release_reserve(self, why: str) -> bool:
        try:
            self.reserve.unlink()
        except FileNotFoundError:
            return False
        log.warning("event=reserve_released detail=%r", why)
        return True
