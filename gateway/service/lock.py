"""One ``run`` per spool and per watched folder: an exclusive ``flock`` on the directory itself.

Like the spool's forwarding lock, the lock lives as long as the process (the kernel drops the
``flock`` of a process however it ends, SIGKILL included), so a crash never leaves a stale
lock to clean up. Locking the directory's own descriptor leaves no file behind in a folder a
scanner exports into.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path

log = logging.getLogger("gateway.service.lock")


class Busy(RuntimeError):
    """Another process (or another source of this one) already holds the directory."""


class DirectoryLock:
    def __init__(self, path: str | Path, what: str):
        self.path = Path(path)
        self.what = what  # "spool", "folder": for the message
        self._fd: int | None = None

    def acquire(self) -> "DirectoryLock":
        """Take the lock or raise ``Busy``; where the file system has no ``flock`` (some network
        shares), warn and go on unlocked rather than refuse to run."""
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise Busy(f"the {self.what} {self.path} is already in use by another legacy-gateway run "
                           "(or twice in this configuration)") from None
            log.warning("event=lock_unavailable %s=%s error=%r note='a second run would not be detected'",
                        self.what, self.path, exc.strerror)
            return self
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None
