"""Which tape a path is, and the reader for it: a drive, or an image file recognised by its bytes.

Kept apart from ``records`` so that the readers (``device``, ``images``) build on the record
stream and this module alone knows them all.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from drivers.tape import images
from drivers.tape.device import TapeDevice
from drivers.tape.images import looks_like_aws, looks_like_simh
from drivers.tape.records import KINDS, ErrorPolicy, TapeError, TapeReader

log = logging.getLogger("drivers.tape")


def detect_kind(path: str | Path) -> str:
    """'device' for a character device or socket, else the image format found in its bytes.

    Raises ``TapeError`` when the bytes fit no image format: a raw ``dd`` image has no
    structure to recognise, so it must be named (with its block size) by the user.
    """
    st = os.stat(path)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        return "device"
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if looks_like_simh(head, st.st_size):
        return "simh"
    if looks_like_aws(head, st.st_size):
        return "aws"
    # A damaged start defeats recognition; the usual name is then the best hint left.
    hint = {".tap": "simh", ".simh": "simh", ".aws": "aws", ".awstape": "aws"}.get(Path(path).suffix.lower())
    if hint:
        log.warning("event=tape_kind_from_name medium=%s kind=%s note='the first bytes fit no format'", path, hint)
        return hint
    raise TapeError(f"{path}: not a SIMH or AWS tape image (for a raw dd image give the format 'raw' "
                    "and its block size)", offset=0)


def open_tape(path: str | Path, kind: str = "auto", *, block_size: int | None = None,
              policy: ErrorPolicy = ErrorPolicy()) -> TapeReader:
    """A reader for ``path``: a tape drive (``/dev/nst0``) or an image file.

    ``kind`` is one of ``auto``, ``device``, ``simh``, ``aws``, ``raw``. ``block_size``: the
    record size of a raw image (required), or fixed-block mode on a drive (0 or None:
    variable-block mode).
    """
    if kind == "auto":
        kind = detect_kind(path)
    if kind == "device":
        return TapeDevice(path, policy=policy, block_size=block_size or 0)
    if kind == "simh":
        return images.SimhReader(path, policy)
    if kind == "aws":
        return images.AwsReader(path, policy)
    if kind == "raw":
        if not block_size:
            raise TapeError("a raw tape image needs its block size (the record size it was read with)")
        return images.RawReader(path, block_size, policy)
    raise ValueError(f"unknown tape kind {kind!r}; known: auto, {', '.join(KINDS)}")
