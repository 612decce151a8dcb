"""Files and folders that hold patient data are the owner's alone, whatever the umask.

Spool files and database, tape journals and extracted tape files, ``done/`` and
``quarantine/``, archive files: created 0600 (folders 0700), or 0640/0750 owned by the group
``gateway.file_group`` names, so that a PACS administrator's group may read them. ``os.open``
and ``mkdir`` only ever remove bits from the mode they are given (the umask), never add, so
every mode is set explicitly after creation as well.

``configure``, called once from the configuration when a command starts, also sets the
process umask (077, or 027 with a group): whatever else the process writes (sources' done/ and
quarantine/ folders, tape journals and extracted files, files rz or gkermit receive) is private
too, with no part of ``drivers`` having to know about it. Those files take the process's group;
only what the gateway itself creates is given ``file_group`` (run the service with that group as
its primary group to have both). Changing the group needs a restart.
"""

from __future__ import annotations

import grp
import logging
import os
from pathlib import Path

log = logging.getLogger("gateway.private")

_gid: int | None = None


def configure(group: str | None) -> None:
    """Share with ``group`` (by name), or with nobody (None); set the umask to match."""
    global _gid
    _gid = grp.getgrnam(group).gr_gid if group else None
    os.umask(0o027 if _gid is not None else 0o077)


def file_mode() -> int:
    return 0o640 if _gid is not None else 0o600


def dir_mode() -> int:
    return 0o750 if _gid is not None else 0o700


def _own(path: str | Path | int, mode: int) -> None:
    """Set ``mode`` (and the group) on a path or an open descriptor."""
    if isinstance(path, int):
        os.fchmod(path, mode)
        if _gid is not None:
            _chown(lambda: os.fchown(path, -1, _gid))
    else:
        os.chmod(path, mode)
        if _gid is not None:
            _chown(lambda: os.chown(path, -1, _gid))


def _chown(change) -> None:
    try:
        change()
    except PermissionError as exc:  # not a member of the group: the mode still protects
        log.warning("event=file_group_not_set error=%r", str(exc))


def make_dir(path: str | Path) -> Path:
    """Create ``path`` (and missing parents) private; the folder itself is made private even
    if it existed (it is ours: the spool, a done/ or quarantine/ folder, a journal folder)."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    for folder in {path, *missing}:
        _own(folder, dir_mode())
    return path


def open_file(path: str | Path, flags: int) -> int:
    """``os.open`` with ``O_CREAT`` and the private mode, set even if the file existed."""
    fd = os.open(path, flags | os.O_CREAT, file_mode())
    try:
        _own(fd, file_mode())
    except BaseException:
        os.close(fd)
        raise
    return fd


def protect(path: str | Path) -> None:
    """Make an existing file private (files others create for us: SQLite's, rz's)."""
    try:
        _own(path, file_mode())
    except FileNotFoundError:
        pass
