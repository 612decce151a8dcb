"""The unit a driver hands to the pipeline: the bytes of one object and where they came from.

This module is the only part of ``gateway`` that ``drivers`` may import, so it depends on
nothing else in the package.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol


@dataclass(frozen=True)
class Origin:
    """Where a capture came from, precise enough to find it again on the medium.

    ``source`` is the configured source name; ``location`` is medium-specific and human
    readable ("incoming/a.MR", "tape file 7 records 12-40", "ttyS0 transfer 3").
    ``details`` carries structured facts (tape file number, record range, serial transfer id,
    file name) for journals and logs. Never put patient data here.
    """

    source: str
    location: str
    details: dict[str, Any] = field(default_factory=dict)
    received: float = field(default_factory=time.time)

    def __str__(self) -> str:
        return f"{self.source}:{self.location}"


@dataclass(frozen=True)
class Capture:
    """The bytes of one object as the medium delimited it; no format is assumed.

    ``parts`` holds the companion files an object of several files needs (an Interfile
    header's data file), keyed by the name the object gives them, relative to it; a driver
    that reads them gets their names from the formats (``gateway.formats.companions``) and
    releases them together with ``data`` on ack or reject.

    A driver that received a large object into a file (the DICOM SCP) gives its ``path`` and
    empty ``data``: the object is read only when the pipeline needs it (``read``), not held in
    memory while it waits in a queue. The file is the driver's, and stays until its verdict.
    """

    data: bytes
    origin: Origin
    parts: Mapping[str, bytes] = field(default_factory=dict)
    path: Path | None = None

    @property
    def size(self) -> int:
        if self.path is None:
            return len(self.data)
        try:
            return self.path.stat().st_size
        except OSError:  # the driver removed its file after the verdict
            return 0

    def read(self) -> bytes:
        """The object's bytes: ``data``, or the file's content when the capture has a ``path``."""
        return self.path.read_bytes() if self.path is not None else self.data


class CaptureSink(Protocol):
    """What a driver is told about each capture it produced.

    A driver must not release its source (move a file to done/, advance a tape journal,
    answer a serial sender) before ``ack``: only then is the instance durable in the spool.
    """

    def ack(self, capture: Capture, sop_instance_uid: str) -> None: ...

    def reject(self, capture: Capture, reason: str) -> None: ...
