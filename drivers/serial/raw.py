"""A raw line: no protocol, just bytes, cut into objects.

Consoles that simply dump image files down the line (a ``cat`` to the port, a terminal
server's raw TCP mode) send objects back to back. They are cut where the objects' own formats
say each ends (the gateway's length check: an ACR-NEMA or DICOM stream's element lengths, a
Genesis header's lengths, a Signa file's fixed size), and content that no format can measure
ends at an idle gap (``idle_gap`` seconds of silence). When the line goes quiet in the middle
of an object a format has claimed, what was received is a partial object: it is logged with
its byte count and dropped, never forwarded. There is nobody to answer on a raw line, so the
pipeline's verdict is only logged.
"""

from __future__ import annotations

import time
from typing import Iterator

from drivers.serial.line import Line
from drivers.serial.session import Session

PROBE = 64 * 1024  # a format recognises its object within this many leading bytes


class _Buffer:
    """Bytes received since the last cut, and what the length check last said about them."""

    def __init__(self):
        self.data = bytearray()
        self.need = 0          # do not ask again before this many bytes are in
        self.unknown = False   # no format claims the start: wait for the idle gap

    def reset(self) -> None:
        self.data.clear()
        self.need, self.unknown = 0, False


class RawReceiver:
    def __init__(self, settings):
        self.settings = settings

    def receive(self, line: Line, session: Session) -> Iterator:
        buf = _Buffer()
        last = time.monotonic()
        discarding = 0  # bytes dropped after an object grew past max_object, until the next gap
        tick = min(0.2, self.settings.idle_gap / 4)
        while not session.stop.is_set():
            data = line.read(65536, tick)
            now = time.monotonic()
            if data:
                last = now
                if discarding:
                    discarding += len(data)
                    continue
                buf.data += data
                if len(buf.data) > self.settings.max_object:
                    discarding = len(buf.data)
                    buf.reset()
                    continue
                yield from self._cut(buf, session)
                continue
            if now - last < self.settings.idle_gap:
                continue
            if discarding:
                session.failed("raw object", discarding,
                               f"larger than max_object_mb ({self.settings.max_object_mb}); dropped up to the idle gap")
                discarding = 0
            elif buf.data:
                yield from self._at_gap(buf, session)

    def _cut(self, buf: _Buffer, session: Session) -> Iterator:
        """Hand on every complete object at the front of the buffer."""
        while buf.data and not buf.unknown and len(buf.data) >= buf.need:
            n = session.measure_length(bytes(buf.data))
            if n is None:
                buf.unknown = len(buf.data) >= PROBE
                return
            if n > len(buf.data):
                buf.need = n
                return
            obj = bytes(buf.data[:n])
            del buf.data[:n]
            buf.need, buf.unknown = 0, False
            yield from self._deliver(session, obj, "its format's length")

    def _at_gap(self, buf: _Buffer, session: Session) -> Iterator:
        n = None if buf.unknown else session.measure_length(bytes(buf.data))
        data = bytes(buf.data)
        buf.reset()
        if n is None:
            yield from self._deliver(session, data, f"an idle gap of {self.settings.idle_gap:g}s")
        else:
            session.failed("raw object", len(data), f"partial: the line went idle, its format needs {n} bytes")

    def _deliver(self, session: Session, data: bytes, cut: str) -> Iterator:
        capture = session.capture(data, cut_by=cut)
        yield capture
        session.answered(capture, session.verdict(capture), "nothing (raw line)")
