"""An object read from a file system, with the companion files its format names.

Decoders are pure: a format whose object is several files (an Interfile header and its data
file) names the others through ``formats.companions``, and whoever has the files reads them.
This module is that reader for the commands (``convert``, ``send``, ``identify``) and the
benchmarks; the folder driver does the same with its own settle rules (``drivers.folder``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gateway import formats
from gateway.capture import Capture, Origin


def companion_paths(path: Path, data: bytes) -> dict[str, Path]:
    """The companion files ``data`` (read from ``path``) names, by name, as paths beside it."""
    return {name: path.parent / name for name in formats.companions(data) or []}


def read_capture(path: Path, source: str, details: dict[str, Any] | None = None) -> Capture:
    """``path`` and every companion it names that exists; a missing one is left for the decoder
    to reject by its key. A header naming itself (data in the same file) gets its own bytes.
    The registry remembers the format it found for ``data``: decoding the capture next does not
    identify it again."""
    data = path.read_bytes()
    parts: dict[str, bytes] = {}
    named = companion_paths(path, data)
    for name, companion in named.items():
        if _same(companion, path):
            parts[name] = data
        elif companion.is_file():
            parts[name] = companion.read_bytes()
    details = {**(details or {}), **({"companions": {n: str(p) for n, p in named.items()}} if named else {})}
    return Capture(data, Origin(source, str(path), details), parts)


def claimed_paths(capture: Capture) -> list[Path]:
    """The other files ``capture`` (from ``read_capture``) named: they are not objects of their own."""
    companions = capture.origin.details.get("companions")
    if not companions:  # the usual case: no path to resolve (a file system call each)
        return []
    own = Path(capture.origin.location).resolve()
    named = (Path(p).resolve() for p in companions.values())
    return [p for p in named if p != own]


def _same(a: Path, b: Path) -> bool:
    """The same file name (without asking the file system: this is on every file's path)."""
    return os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))
