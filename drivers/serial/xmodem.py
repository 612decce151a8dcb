"""XMODEM receiving (checksum, CRC-16, 128- and 1024-byte blocks) through the ``xmodem`` package.

The package does the protocol; this module adapts it to a daemon on a line:

- Polling. An XMODEM sender is silent until the receiver asks (``C`` for CRC, NAK for the
  checksum variant), so an idle receiver asks every few seconds, forever, and starts the
  package only once a block arrives. With ``xmodem_check: auto`` it asks ``C`` three times, then
  NAK once, so a checksum-only sender is served too, and a CRC sender gets CRC.
- Holding the last ACK. The package acknowledges the EOT at once; our ``putc`` holds that one
  ACK back. The object goes to the pipeline first; the sender hears ACK only once the instance
  is durable, and CAN (to the EOT and each repetition of it) if it was refused.
- Padding. XMODEM pads the last block with SUB (0x1A) and does not carry the file length. The
  padding is trimmed only where the object's own format, asked through the gateway's length
  check (``Session.measure_length``), says the object ends before it and everything after that
  end is SUB, shorter than a block. A file may end in genuine 0x1A bytes, so no format, no trim.
"""

from __future__ import annotations

import binascii
import io
import itertools
import logging
from typing import Iterator

from xmodem import XMODEM

from drivers.serial.line import Line, LineLost, Stopped
from drivers.serial.session import Session

log = logging.getLogger("drivers.serial")

SOH, STX, EOT, ACK, NAK, CAN = b"\x01", b"\x02", b"\x04", b"\x06", b"\x15", b"\x18"
CRC_POKE = b"C"
SUB = 0x1A
POLL = 3.0  # XMODEM-CRC: a receiver repeats its "C" every 3 seconds


def trim_padding(data: bytes, length: int | None, block: int) -> tuple[bytes, str]:
    """Cut the SUB padding of the last block where the format's length says it is padding.

    ``length`` is the object's length by its own format (see ``drivers.serial.session``).
    Returns the bytes to deliver and a note for the capture's details.
    """
    if length is None:
        return data, "no format measured the object; delivered as received"
    if length > len(data):
        return data, f"the format expects at least {length} bytes; delivered as received"
    tail = data[length:]
    if not tail:
        return data, "no padding"
    if len(tail) < block and tail.count(SUB) == len(tail):
        return data[:length], f"{len(tail)} bytes of padding trimmed"
    return data, f"the format ends the object at {length}, but {len(tail)} bytes follow that are not padding"


def fast_crc(modem: XMODEM) -> XMODEM:
    """XMODEM's CRC-16 is CRC-CCITT with a zero start (``binascii.crc_hqx``); the package
    computes it byte by byte in Python, which was most of the receiver's CPU time."""
    modem.calc_crc = lambda data, crc=0: binascii.crc_hqx(bytes(data), crc)
    return modem


class _QuietLog:
    """The package logs every retransmission as an error; for us that is line noise (DEBUG),
    and the outcome of the transfer is logged once, by us."""

    def __getattr__(self, name):
        return lambda msg, *args, **kw: log.debug("xmodem: " + msg, *args)


class _Wire:
    """``getc``/``putc`` for the package over a ``Line``.

    - The block-start byte read while polling is handed back first, and the package's own
      first poke is not repeated (the sender is already sending).
    - The ACK that answers the EOT is held (``held_ack``) for the pipeline's verdict.
    - A block the sender repeats because our ACK was lost or garbled on the way is ACKed again
      and dropped here. The XMODEM specification asks a receiver to do exactly that; the package
      instead NAKs the repeat for ever, so one damaged ACK would fail the whole transfer.
    """

    def __init__(self, line: Line, first: bytes, crc: int):
        self.line = line
        self.crc = crc
        self.modem: XMODEM | None = None
        self._pending = first
        self._swallow_poke = True
        self._after_eot = False
        self._header_next = False
        self.expected = 1
        self.held_ack = False
        self.block = 128
        self.blocks = 0
        self.errors = 0
        self.repeats = 0

    def getc(self, size: int, timeout: float = 1) -> bytes | None:
        if size == 1 and self._header_next:
            self._header_next = False
            data = self._block_start(timeout)
        else:
            data = b""
            if self._pending:
                data, self._pending = self._pending[:size], self._pending[size:]
            if len(data) < size:
                data += self.line.read_exact(size - len(data), timeout)
        self._after_eot = size == 1 and data == EOT
        return data or None

    def _block_start(self, timeout: float) -> bytes:
        """The next block's first byte, with its body read ahead to spot a repeated block."""
        while True:
            head = self._pending[:1] or self.line.read_exact(1, timeout)
            self._pending = self._pending[1:]
            if head not in (SOH, STX):
                return head
            size = 2 + (1024 if head == STX else 128) + (2 if self.crc else 1)
            body = self.line.read_exact(size, timeout)
            if len(body) == size and self._is_repeat(body):
                self.repeats += 1
                self.line.write(ACK)
                continue
            self._pending = body
            return head

    def _is_repeat(self, body: bytes) -> bool:
        previous = (self.expected - 1) & 0xFF
        if body[0] != previous or body[1] != 0xFF - previous:
            return False
        width = 2 if self.crc else 1
        payload, check = body[2:-width], body[-width:]
        if self.crc:
            return self.modem.calc_crc(payload) == int.from_bytes(check, "big")
        return self.modem.calc_checksum(payload) == check[0]

    def putc(self, data: bytes, timeout: float = 1) -> int:
        if self._swallow_poke:
            self._swallow_poke = False
            return len(data)
        if data == ACK and self._after_eot:
            self.held_ack = True
            return 1
        if data == ACK:
            self.expected = (self.expected + 1) & 0xFF
            self._header_next = True
        elif data == NAK:
            self._header_next = True
        return self.line.write(data)

    def progress(self, total: int, success: int, errors: int, packet_size: int = 128) -> None:
        self.block, self.blocks = packet_size, success
        self.errors += 1 if errors else 0


class XmodemReceiver:
    def __init__(self, settings):
        self.settings = settings
        self.poll = min(POLL, settings.timeout)

    def _pokes(self):
        check = self.settings.xmodem_check
        if check == "crc":
            return itertools.cycle([(CRC_POKE, 1)])
        if check == "checksum":
            return itertools.cycle([(NAK, 0)])
        return itertools.cycle([(CRC_POKE, 1)] * 3 + [(NAK, 0)])

    def receive(self, line: Line, session: Session) -> Iterator:
        pokes = self._pokes()
        while not session.stop.is_set():
            poke, crc = next(pokes)
            line.write(poke)
            first = line.read(1, self.poll)
            if not first:
                continue
            if first not in (SOH, STX):
                line.purge(0.2)  # noise, or the tail of something we did not ask for
                continue
            yield from self._transfer(line, session, first, crc)
            pokes = self._pokes()

    def _transfer(self, line: Line, session: Session, first: bytes, crc: int) -> Iterator:
        wire = _Wire(line, first, crc)
        modem = fast_crc(XMODEM(wire.getc, wire.putc))
        wire.modem = modem
        modem.log = _QuietLog()
        sink = io.BytesIO()
        s = self.settings
        try:
            size = modem.recv(sink, crc_mode=crc, retry=s.retries, timeout=s.timeout, delay=0.1, quiet=True,
                              callback=wire.progress)
        except LineLost:
            session.failed("xmodem transfer", sink.tell(), "the port went away mid-transfer", blocks=wire.blocks)
            raise
        except Stopped:
            session.failed("xmodem transfer", sink.tell(), "the gateway is stopping", blocks=wire.blocks)
            _cancel(line)
            raise
        if size is None or not wire.held_ack:
            session.failed("xmodem transfer", sink.tell(),
                           "cancelled by the sender, or too many errors (sender told with CAN)",
                           blocks=wire.blocks, retransmissions=wire.errors)
            return
        received = sink.getvalue()
        data, note = trim_padding(received, session.measure_length(received), wire.block)
        capture = session.capture(data, received=len(received), check="crc" if crc else "checksum",
                                  block=wire.block, retransmissions=wire.errors + wire.repeats, padding=note)
        yield capture
        verdict = session.verdict(capture)
        if verdict.accepted:
            line.write(ACK)
            session.answered(capture, verdict, "ACK")
        else:
            _refuse_eot(line, s.retries)
            session.answered(capture, verdict, "CAN")


def _cancel(line: Line) -> None:
    try:
        line.write(CAN * 2)
    except LineLost:
        pass


def _refuse_eot(line: Line, rounds: int) -> None:
    """Answer the EOT, and every EOT the sender repeats, with CAN until it gives up."""
    line.write(CAN * 2)
    for _ in range(rounds + 2):
        data = line.read(256, 1.5)
        if not data:
            return
        if EOT[0] in data:
            line.write(CAN * 2)
