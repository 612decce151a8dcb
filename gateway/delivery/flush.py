"""A group of new spool files made durable by ``syncfs(2)`` of their file system, not an fsync each.

The spool makes a group durable before anyone is told (DESIGN.md, step 5). With an fsync per
file and one for their folder, a group of 64 costs 65 flushes of the disk's write cache; each
is a wait of its own on a real disk, and on this machine's virtual one ~0.25 ms of CPU a file.
``syncfs`` writes back every dirty file, inode and directory block of the file system and then
flushes the cache once, whichever process wrote them. The spool calls it twice per group: for
its files' data before it takes its lock (the forwarder records meanwhile), and after the
renames, for their folder's entries (and a new folder's own).

Used only where that is sound, otherwise the spool fsyncs each file and folder as before:
- Linux 5.8 or later: only from then on does ``syncfs`` report a writeback error of any file
  of the file system since the descriptor was opened (the super block's error sequence), as
  ``fsync`` reports its own file's; before, it returned 0 whatever was lost.
- A local file system whose ``sync_fs`` writes and flushes everything (the ext family, XFS,
  Btrfs, F2FS). Not NFS or a FUSE mount, whose servers decide what durable means, nor an
  overlay, which only passes the call on.
- A C library that has ``syncfs`` (glibc 2.14, musl).

The price: a commit also waits for whatever else is being written to that file system (a
large copy onto the same disk makes intake slower meanwhile, never less safe). A writeback
error anywhere on it fails the group, which is then recorded nowhere; the next group goes on.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Callable

SOUND = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs"})
SINCE = (5, 8)  # syncfs reports writeback errors (commit 735e4ae5ba28)


def _kernel(release: str) -> tuple[int, int]:
    """(major, minor) of a kernel release such as ``6.1.0-18-amd64``; (0, 0) if unreadable."""
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def file_system(path: str | Path, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The type of the mounted file system holding ``path`` (by its device number), or None
    where that cannot be told."""
    try:
        device = os.stat(path).st_dev
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(device)}:{os.minor(device)}"
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 2 and fields[2] == wanted and " - " in line:
            return line.split(" - ", 1)[1].split(" ", 1)[0]
    return None


def _syncfs() -> Callable[[int], int] | None:
    """The C library's ``syncfs``, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only here: ~5 ms, and only a durable spool on Linux asks

    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):
        return None


def possible(directory: str | Path) -> bool:
    """Whether a group in ``directory`` may be made durable by one ``syncfs`` (see above)."""
    return (sys.platform.startswith("linux") and _kernel(os.uname().release) >= SINCE
            and file_system(directory) in SOUND and _syncfs() is not None)


class FileSystemSync:
    """``syncfs`` of the file system holding a directory, through a descriptor held open from
    the start: it reports every writeback error on that file system since then, and one from
    before that nobody has seen yet, whichever process wrote the file (a ``send`` worker, say)."""

    def __init__(self, directory: str | Path):
        import ctypes

        call = _syncfs()
        if call is None:
            raise OSError("syncfs is not available here")
        self._call, self._errno = call, ctypes.get_errno
        self._fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)

    def __call__(self) -> None:
        """Write back and flush everything on the file system; an ``OSError`` if anything was lost."""
        if self._call(self._fd) != 0:
            number = self._errno()
            raise OSError(number, f"syncfs of the spool's file system: {os.strerror(number)}")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
