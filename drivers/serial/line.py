"""One serial line: a device path or any pyserial URL, opened with the site's line settings.

The protocols need three kinds of read (whatever is there within a time, exactly n bytes within
a time, and "discard until the line is quiet"); this module gives them those and turns every
way a line can vanish (an unplugged USB adapter, a closed pseudo-terminal, a dropped
terminal-server connection) into one exception, ``LineLost``, so the driver can log it and
reopen. Reads wake up every ``SLICE`` seconds to notice a stop request: a daemon must be able to
shut down while a sender is silent.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import serial

PARITIES = {"none": serial.PARITY_NONE, "even": serial.PARITY_EVEN, "odd": serial.PARITY_ODD,
            "mark": serial.PARITY_MARK, "space": serial.PARITY_SPACE}
STOPBITS = {"1": serial.STOPBITS_ONE, "1.5": serial.STOPBITS_ONE_POINT_FIVE, "2": serial.STOPBITS_TWO}
SLICE = 0.1  # longest a read blocks before it looks at the stop event


class LineLost(Exception):
    """The port cannot be opened, or went away while open."""


class Stopped(Exception):
    """The driver was asked to stop while waiting on the line."""


@dataclass(frozen=True)
class PortSettings:
    """What it takes to open a port the way the peer expects (8N1 at 9600 unless told)."""

    port: str
    baud: int = 9600
    bytesize: int = 8
    parity: str = "none"
    stopbits: str = "1"
    rtscts: bool = False
    xonxoff: bool = False
    write_timeout: float = 30.0  # a write held this long (flow control, a hung adapter) loses the line

    @property
    def label(self) -> str:
        return f"{self.port} {self.baud} {self.bytesize}{self.parity[0].upper()}{self.stopbits}"


class Line:
    """An open port, with byte counters (what went over the wire, both ways)."""

    def __init__(self, settings: PortSettings, stop: threading.Event | None = None):
        self.settings = settings
        self.stop = stop or threading.Event()
        self.bytes_in = 0
        self.bytes_out = 0
        self._port: serial.SerialBase | None = None

    # -- opening and closing ------------------------------------------------------------------

    def open(self) -> "Line":
        s = self.settings
        try:
            port = serial.serial_for_url(s.port, do_not_open=True)
            port.baudrate = s.baud
            port.bytesize = s.bytesize
            port.parity = PARITIES[s.parity]
            port.stopbits = STOPBITS[s.stopbits]
            port.rtscts = s.rtscts
            port.xonxoff = s.xonxoff
            port.timeout = SLICE
            port.write_timeout = s.write_timeout
            port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LineLost(f"cannot open {s.port}: {exc}") from None
        self._port = port
        return self

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def fileno(self) -> int | None:
        try:
            return self._port.fileno() if self._port is not None else None
        except (AttributeError, NotImplementedError, serial.SerialException):
            return None

    # -- reading ------------------------------------------------------------------------------

    def _read_once(self, size: int) -> bytes:
        if self._port is None:
            raise LineLost(f"{self.settings.port} is closed")
        if self.stop.is_set():
            raise Stopped()
        try:
            data = self._port.read(size)
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            # TypeError/AttributeError: pyserial's URL handlers after the socket is gone.
            raise LineLost(f"{self.settings.port}: {exc}") from None
        self.bytes_in += len(data)
        return data

    def read(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes: returns as soon as some arrive, or b"" after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            data = self._read_once(1)
            if data:
                waiting = self._waiting()
                if waiting and size > 1:
                    data += self._read_once(min(size - 1, waiting))
                return data
            if time.monotonic() >= deadline:
                return b""

    def read_exact(self, size: int, timeout: float) -> bytes:
        """``size`` bytes, or fewer if ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        parts, got = [], 0
        while got < size:
            data = self._read_once(size - got)
            if data:
                parts.append(data)
                got += len(data)
            elif time.monotonic() >= deadline:
                break
        return b"".join(parts)

    def purge(self, quiet: float, limit: float = 30.0) -> int:
        """Discard input until the line has been silent for ``quiet`` seconds; return the count."""
        dropped, start = 0, time.monotonic()
        while time.monotonic() - start < limit:
            data = self.read(65536, quiet)
            if not data:
                break
            dropped += len(data)
        return dropped

    def _waiting(self) -> int:
        try:
            return self._port.in_waiting
        except (serial.SerialException, OSError, AttributeError, NotImplementedError):
            return 0

    # -- writing ------------------------------------------------------------------------------

    def write(self, data: bytes) -> int:
        if self._port is None:
            raise LineLost(f"{self.settings.port} is closed")
        try:
            written = self._port.write(data)  # blocks until the kernel has all of it
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            raise LineLost(f"{self.settings.port}: {exc}") from None
        written = len(data) if written is None else written
        self.bytes_out += written
        return written
