"""What a protocol receiver needs from the serial driver while a port is open.

A receiver is a generator: it yields each object it received as a ``Capture`` and, when resumed,
asks ``verdict(capture)`` what the pipeline made of it, so it can answer the sender (hold the
final ACK, or cancel). The pipeline runs between the yield and the resume, in the same thread:
by the time a receiver answers, an accepted instance is already durable in the spool.

``Measure`` is the one piece of format knowledge a serial driver may use, and it comes from the
gateway side (the decoder registry), never from the driver: given bytes that begin an object, it
returns the object's length by the format's own fields: ``n <= len(data)`` means the object is
``data[:n]`` and is complete; ``n > len(data)`` means a format claims the bytes but needs at
least ``n``; ``None`` means no format can tell (unknown content, or a format without lengths).
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from drivers.serial.line import Line
from gateway.capture import Capture, Origin

log = logging.getLogger("drivers.serial")

Measure = Callable[[bytes], "int | None"]


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str = ""
    sop_instance_uid: str | None = None


@dataclass
class Session:
    """One open port: the source name, its line, the stop event and the way back to the driver."""

    source: str
    protocol: str
    line: Line
    stop: threading.Event
    measure: Measure | None
    verdicts: dict[int, Verdict]
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def port(self) -> str:
        return self.line.settings.port

    def capture(self, data: bytes, **details: Any) -> Capture:
        """A capture of one received object; ``details`` are medium facts (file name, sizes)."""
        number = next(self.counter)
        name = details.get("file")
        location = f"{self.port} transfer {number}" + (f" {name}" if name else "")
        facts = {"port": self.port, "protocol": self.protocol, "transfer": number, "size": len(data)}
        facts.update({k: v for k, v in details.items() if v is not None})
        return Capture(bytes(data), Origin(self.source, location, facts))

    def verdict(self, capture: Capture) -> Verdict:
        """What the pipeline said; no word at all (the spool failed) counts as not accepted."""
        found = self.verdicts.pop(id(capture), None)
        return found or Verdict(False, "the pipeline did not take the capture (spool unavailable)")

    def failed(self, what: str, nbytes: int, reason: str, **details: Any) -> None:
        """Log a transfer that will not become an instance, with the port and the byte count."""
        extra = "".join(f" {k}={v!r}" if isinstance(v, str) else f" {k}={v}" for k, v in details.items())
        log.warning("event=transfer_failed source=%s port=%s protocol=%s what=%r bytes=%d reason=%r%s",
                    self.source, self.port, self.protocol, what, nbytes, reason, extra)

    def answered(self, capture: Capture, verdict: Verdict, told: str) -> None:
        level = logging.INFO if verdict.accepted else logging.WARNING
        log.log(level, "event=sender_answered source=%s port=%s protocol=%s transfer=%s bytes=%d accepted=%s told=%s%s",
                self.source, self.port, self.protocol, capture.origin.details.get("transfer"), capture.size,
                verdict.accepted, told, "" if verdict.accepted else f" reason={verdict.reason!r}")

    def measure_length(self, data: bytes) -> int | None:
        """``measure`` guarded: a bug on the gateway side must not take the line down."""
        if self.measure is None:
            return None
        try:
            n = self.measure(data)
        except Exception as exc:  # noqa: BLE001 - treated as "no format can tell"
            log.error("event=measure_failed source=%s error=%r", self.source, f"{type(exc).__name__}: {exc}")
            return None
        if n is None or not isinstance(n, int) or n <= 0:
            return None
        return n
