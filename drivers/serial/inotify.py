"""The names of files closed after writing in one directory, from Linux inotify (ctypes).

watchdog reports events from its own thread, later; the serial driver needs the opposite: to
know, at the instant it reads a receiver's reply, whether that receiver closed a file before
writing it. inotify queues IN_CLOSE_WRITE inside close(), so a close that precedes a write in
the child is always visible by the time we have read what it wrote. Non-blocking reads only.
"""

from __future__ import annotations

import ctypes
import os
import struct

IN_CLOSE_WRITE = 0x00000008
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")

_libc = ctypes.CDLL(None, use_errno=True)


class CloseWatch:
    def __init__(self, directory: str):
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        if _libc.inotify_add_watch(fd, os.fsencode(directory), IN_CLOSE_WRITE) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"inotify_add_watch {directory}: {os.strerror(err)}")
        self._fd = fd

    def closed(self) -> list[str]:
        """Files closed for writing since the last call, oldest first."""
        names = []
        while True:
            try:
                buf = os.read(self._fd, 65536)
            except BlockingIOError:
                return names
            offset = 0
            while offset + _EVENT.size <= len(buf):
                _wd, mask, _cookie, length = _EVENT.unpack_from(buf, offset)
                raw = buf[offset + _EVENT.size: offset + _EVENT.size + length]
                offset += _EVENT.size + length
                if mask & IN_CLOSE_WRITE and raw:
                    names.append(os.fsdecode(raw.rstrip(b"\0")))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
