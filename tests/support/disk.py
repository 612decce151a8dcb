"""A small file system of its own for full-disk tests, another writer that fills it, and the
skip of a test that needs the spool to use ``syncfs``."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

SIZE_MB = 16


def require_syncfs(path: Path) -> None:
    """Skip the test unless a spool at ``path`` makes its groups durable with ``syncfs``
    (``gateway.delivery.flush.possible``); the fsync path is tested everywhere."""
    from gateway.delivery import flush

    if not flush.possible(path):
        pytest.skip("syncfs is used only on Linux 5.8+ with a local ext4/XFS/Btrfs/F2FS")


@contextlib.contextmanager
def tmpfs(mount: Path, size_mb: int = SIZE_MB) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` mounted on ``mount`` (made) for the block; the test is skipped
    where mounting is not allowed."""
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Take every byte that is left on ``path``'s file system, as another writer would (the
    scanner's export, a log ...)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 16, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
