"""Serial-line driver: images sent by old consoles over RS-232 with the protocols of their day.

The port is a device path (``/dev/ttyS0``, ``/dev/ttyUSB0``) or any pyserial URL
(``rfc2217://terminal-server:7001``, ``socket://host:port``), opened with the configured baud
rate, data bits, parity, stop bits and flow control. One protocol runs on it:

- ``xmodem``: checksum, CRC and 1K blocks, through the ``xmodem`` package;
- ``ymodem`` and ``zmodem``: Debian's lrzsz ``rz``, ``kermit``: ``gkermit``, each a managed
  child process whose every received file becomes a capture;
- ``raw``: a plain byte stream, cut into objects by the formats' own lengths or, for content no
  format can measure, by an idle gap.

Where the protocol lets the receiver withhold the last word (the ACK of XMODEM's EOT, the reply
that follows each file in YMODEM, ZMODEM and Kermit), the sender hears success only once the
pipeline has acknowledged the capture, i.e. the instance is durable in the spool; otherwise it
is cancelled (CAN, or the receiver's own abort). Partial or corrupted transfers never become
captures; they are logged with the port and the byte count.

The driver survives the port going away (an unplugged USB adapter, a terminal server restart):
the loss is logged, the port is reopened every ``reopen_interval`` and its return is logged.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import threading
import time
from dataclasses import dataclass, fields
from typing import Any, Iterator

from drivers.driver import Driver
from drivers.serial.line import PARITIES, STOPBITS, Line, LineLost, PortSettings, Stopped
from drivers.serial.session import Measure, Session, Verdict
from gateway.capture import Capture

log = logging.getLogger("drivers.serial")

PROTOCOLS = ("xmodem", "ymodem", "zmodem", "kermit", "raw")
RECEIVERS = {
    "xmodem": "drivers.serial.xmodem:XmodemReceiver",
    "ymodem": "drivers.serial.external:ExternalReceiver",
    "zmodem": "drivers.serial.external:ExternalReceiver",
    "kermit": "drivers.serial.external:ExternalReceiver",
    "raw": "drivers.serial.raw:RawReceiver",
}
# Protocols that send every byte value unescaped: XON/XOFF flow control would swallow 0x11/0x13.
_NOT_XONXOFF_SAFE = ("xmodem", "ymodem", "raw")


@dataclass(frozen=True)
class SerialSettings:
    """Every option of a ``type: serial`` source (see etc/legacy-gateway.yaml)."""

    port: str
    protocol: str = "xmodem"
    baud: int = 9600
    bytesize: int = 8
    parity: str = "none"
    stopbits: str = "1"
    rtscts: bool = False
    xonxoff: bool = False
    timeout: float = 10.0          # silence before a protocol retries (XMODEM's classic 10 s)
    retries: int = 10              # retries before a transfer is given up
    idle_gap: float = 2.0          # raw: silence that ends an object no format can measure
    max_object_mb: int = 64        # larger objects are refused (raw buffers, received files)
    reopen_interval: float = 5.0   # how often a lost port is tried again
    xmodem_check: str = "auto"     # auto (CRC, falling back to checksum), crc, checksum
    work_dir: str | None = None    # where rz/gkermit write files while receiving (private temp dir)

    @property
    def line(self) -> PortSettings:
        return PortSettings(self.port, self.baud, self.bytesize, self.parity, str(self.stopbits),
                            self.rtscts, self.xonxoff, write_timeout=max(5.0, self.stall_limit))

    @property
    def max_object(self) -> int:
        return self.max_object_mb * 1024 * 1024

    @property
    def stall_limit(self) -> float:
        """Silence in the middle of a transfer after which the sender is taken to be gone."""
        return self.timeout * self.retries

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "SerialSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown serial option(s): {', '.join(unknown)}")
        clean = {k: v for k, v in options.items() if v is not None}
        if "stopbits" in clean:
            clean["stopbits"] = str(clean["stopbits"])
        settings = cls(**clean)
        problems = option_problems(settings)
        if problems:
            raise ValueError("; ".join(problems))
        return settings


def option_problems(settings: SerialSettings | dict[str, Any]) -> list[str]:
    """Combinations of options that cannot work on a real line (each problem self-contained)."""
    s = settings if isinstance(settings, dict) else settings.__dict__
    problems = []
    protocol = s.get("protocol") or "xmodem"
    if protocol not in PROTOCOLS:
        problems.append(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
    if not s.get("port"):
        problems.append("port is required (a device such as /dev/ttyUSB0, or a pyserial URL)")
    if str(s.get("parity") or "none") not in PARITIES:
        problems.append(f"parity must be one of {', '.join(PARITIES)}")
    if str(s.get("stopbits") or "1") not in STOPBITS:
        problems.append(f"stopbits must be one of {', '.join(STOPBITS)}")
    bytesize = s.get("bytesize") or 8
    if bytesize not in (5, 6, 7, 8):
        problems.append(f"bytesize must be 5, 6, 7 or 8, not {bytesize}")
    elif bytesize < 8 and protocol != "kermit":
        problems.append(f"bytesize {bytesize}: images are binary; only kermit (8th-bit prefixing) "
                        f"can carry them over a line of fewer than 8 data bits")
    if s.get("xonxoff") and protocol in _NOT_XONXOFF_SAFE:
        problems.append(f"xonxoff: {protocol} sends bytes 0x11/0x13 unescaped, which XON/XOFF flow "
                        f"control would swallow; use rtscts (or zmodem/kermit, which escape them)")
    if s.get("xonxoff") and s.get("rtscts"):
        problems.append("rtscts and xonxoff: choose one kind of flow control")
    check = s.get("xmodem_check") or "auto"
    if check not in ("auto", "crc", "checksum"):
        problems.append(f"xmodem_check must be auto, crc or checksum, not {check!r}")
    for key in ("timeout", "idle_gap", "reopen_interval"):
        if key in s and s[key] is not None and s[key] <= 0:
            problems.append(f"{key} must be positive")
    for key in ("baud", "retries", "max_object_mb"):
        if key in s and s[key] is not None and s[key] < 1:
            problems.append(f"{key} must be at least 1")
    return problems


def _receiver(settings: SerialSettings):
    module, _, cls = RECEIVERS[settings.protocol].partition(":")
    return getattr(importlib.import_module(module), cls)(settings)


class SerialDriver(Driver):
    """A ``type: serial`` source: one port, one protocol, captures out, verdicts back."""

    wants_object_length = True  # gateway.service.sources hands us the decoder registry's length check

    def __init__(self, name: str, settings: SerialSettings, object_length: Measure | None = None):
        self.name = name
        self.settings = settings
        self.object_length = object_length
        self.receiver = _receiver(settings)
        self._verdicts: dict[int, Verdict] = {}
        self._transfers = itertools.count(1)
        self._unavailable: str | None = None  # why the port cannot be opened, while it cannot

    @classmethod
    def from_options(cls, name: str, options: dict, object_length: Measure | None = None) -> "SerialDriver":
        return cls(name, SerialSettings.from_options(options), object_length)

    def start(self) -> None:
        log.info("event=source_started source=%s port=%s protocol=%s line=%s", self.name,
                 self.settings.port, self.settings.protocol, self.settings.line.label)

    def degraded(self) -> str | None:
        """An unplugged adapter is not a failure to start: the port is tried again until it is
        back, and meanwhile the service says why nothing can arrive."""
        return self._unavailable

    def stop(self) -> None:
        """Nothing to do: closing the captures() generator ends children and closes the port."""

    # -- captures -------------------------------------------------------------------------------

    def captures(self, stop: threading.Event) -> Iterator[Capture]:
        """Received objects, one at a time, until ``stop`` is set."""
        down_since: float | None = None
        reported = False
        while not stop.is_set():
            line = Line(self.settings.line, stop)
            try:
                line.open()
            except LineLost as exc:
                self._unavailable = f"port {self.settings.port} unavailable: {exc}"
                if not reported:
                    log.warning("event=port_unavailable source=%s port=%s error=%r retry_every=%.1fs",
                                self.name, self.settings.port, str(exc), self.settings.reopen_interval)
                    reported = True
                down_since = down_since or time.monotonic()
                stop.wait(self.settings.reopen_interval)
                continue
            if down_since is not None:
                log.info("event=port_back source=%s port=%s down_for=%.1fs", self.name, self.settings.port,
                         time.monotonic() - down_since)
            else:
                log.info("event=port_open source=%s port=%s line=%s", self.name, self.settings.port,
                         self.settings.line.label)
            down_since, reported, self._unavailable = None, False, None
            session = Session(self.name, self.settings.protocol, line, stop, self.object_length, self._verdicts,
                              self._transfers)  # transfer numbers go on across reopenings
            try:
                yield from self.receiver.receive(line, session)
            except LineLost as exc:
                log.warning("event=port_lost source=%s port=%s error=%r", self.name, self.settings.port, str(exc))
                down_since = time.monotonic()
            except Stopped:
                pass
            finally:
                line.close()
            if down_since is not None:
                stop.wait(min(self.settings.reopen_interval, 1.0))

    # -- verdicts (CaptureSink) -------------------------------------------------------------------

    def ack(self, capture: Capture, sop_instance_uid: str) -> None:
        self._verdicts[id(capture)] = Verdict(True, sop_instance_uid=sop_instance_uid)

    def reject(self, capture: Capture, reason: str) -> None:
        self._verdicts[id(capture)] = Verdict(False, reason)

    def defer(self, capture: Capture) -> None:
        """The spool failed: the sender must not hear success; it will be asked to send again."""
        self._verdicts[id(capture)] = Verdict(False, "not durable: the spool failed; the sender should retry")
