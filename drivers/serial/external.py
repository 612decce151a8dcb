"""YMODEM, ZMODEM and Kermit through Debian's receivers, run as managed child processes.

``rz --ymodem``, ``rz --zmodem`` and ``gkermit -r`` do the protocol; this module attaches
them to the port and turns their files into captures. Each child runs in a private directory
with its stdin and stdout relayed to and from the port (so any pyserial URL works, and so we
see every byte). The relay is what lets us keep the protocol's promise:

1. A receiver closes a file only when it has it whole (sizes and CRCs checked), and then
   writes its reply to the sender (ZMODEM's ZRINIT, YMODEM's ACK of the EOT, Kermit's ACK of
   the Z packet). inotify tells us of the close before we can read that reply.
2. We hold the reply, read the file, delete it, and yield it as a capture.
3. Accepted (the instance is durable in the spool): the held reply goes to the sender.
   Refused: it never does; the child is stopped, rz sends its CAN cancel sequence, and for
   Kermit we send an error (E) packet in its place, so the sender reports failure.

A file closed without a positive reply (the receiver gave up or cancelled), files left when a
child exits, and transfers that stall for ``timeout * retries`` seconds are partial: logged
with their byte counts and deleted, never captured. A child that exits is started again.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from drivers.serial.inotify import CloseWatch
from drivers.serial.line import Line, LineLost, Stopped
from drivers.serial.session import Session

log = logging.getLogger("drivers.serial")

ACK, CAN = 0x06, 0x18
CANCEL = bytes([CAN, CAN])  # two CANs in a row end an X/Y/ZMODEM session (one is ZMODEM's ZDLE)
ZRINIT_HEX = b"**\x18B01"  # a ZMODEM hex header of type ZRINIT: "ready for the next file"
MIN_RUN = 2.0  # a child that exits sooner than this is restarted only after a pause


def _kermit_reply_type(reply: bytes) -> str | None:
    """Type letter of the first Kermit packet in ``reply`` (MARK, LEN, SEQ, TYPE, ...)."""
    start = reply.find(b"\x01")
    if start < 0 or start + 3 >= len(reply):
        return None
    return chr(reply[start + 3])


def _zmodem_ok(reply: bytes) -> bool:
    return ZRINIT_HEX in reply and CANCEL not in reply


def _ymodem_ok(reply: bytes) -> bool:
    return ACK in reply and CANCEL not in reply


def _kermit_ok(reply: bytes) -> bool:
    return _kermit_reply_type(reply) == "Y"


# -- Kermit error packets -------------------------------------------------------------------------


def _tochar(x: int) -> int:
    return x + 32


def _kermit_crc(data: bytes) -> int:
    """CRC-16/KERMIT (CCITT polynomial, bit-reversed, initial value 0), as Kermit block check 3."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def _kermit_check(body: bytes, kind: int) -> bytes:
    s = sum(body)
    if kind == 1:
        return bytes([_tochar((s + ((s & 0o300) >> 6)) & 0o77)])
    if kind == 2:
        return bytes([_tochar((s >> 6) & 0o77), _tochar(s & 0o77)])
    crc = _kermit_crc(body)
    return bytes([_tochar((crc >> 12) & 0o17), _tochar((crc >> 6) & 0o77), _tochar(crc & 0o77)])


def kermit_error_packet(held_reply: bytes, message: str) -> bytes | None:
    """An E packet in place of the held ACK: same sequence number and block-check type.

    The ACK of a Z packet has no data, so its length field gives the negotiated check type.
    Returns None if the held reply is not a Kermit packet we can read.
    """
    start = held_reply.find(b"\x01")
    if start < 0 or start + 4 > len(held_reply):
        return None
    length = held_reply[start + 1] - 32
    kind = length - 2
    if kind not in (1, 2, 3):
        return None
    seq = held_reply[start + 2]
    text = message.encode("ascii", "replace")[:60].replace(b"#", b"?")  # '#' is Kermit's control prefix
    body_wo_len = bytes([seq]) + b"E" + text
    body = bytes([_tochar(len(body_wo_len) + kind)]) + body_wo_len
    return b"\x01" + body + _kermit_check(body, kind) + b"\r"


# -- the receivers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Program:
    command: Callable[[object], list[str]]
    positive: Callable[[bytes], bool]


def _rz_tenths(seconds: float) -> str:
    return str(min(1000, max(10, round(seconds * 10))))  # rz takes 1 to 100 seconds


def _rz(mode: str) -> Callable[[object], list[str]]:
    return lambda s: ["rz", f"--{mode}", "--binary", "--rename", "--restricted", "--quiet",
                      "--timeout", _rz_tenths(s.timeout)]


def _gkermit(s) -> list[str]:
    # -S: no streaming. Streaming skips the ACK of each packet and gives up at the first error;
    # that suits error-corrected links, not a bare RS-232 line.
    cmd = ["gkermit", "-r", "-i", "-q", "-S", "-b", str(max(1, round(s.timeout)))]
    if s.parity != "none":
        cmd += ["-p", s.parity[0]]
    if s.xonxoff:
        cmd += ["-x"]
    return cmd


PROGRAMS = {
    "ymodem": Program(_rz("ymodem"), _ymodem_ok),
    "zmodem": Program(_rz("zmodem"), _zmodem_ok),
    "kermit": Program(_gkermit, _kermit_ok),
}


class Pump(threading.Thread):
    """Port to child: everything the sender says goes to the receiver's stdin."""

    def __init__(self, line: Line, fd: int):
        super().__init__(name="serial-pump", daemon=True)
        self.line, self.fd = line, fd
        self.halt = threading.Event()
        self.error: BaseException | None = None
        self.total = 0
        self.last = time.monotonic()

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                data = self.line.read(65536, 0.2)
                if not data:
                    continue
                self.total += len(data)
                self.last = time.monotonic()
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view):]
        except (LineLost, Stopped) as exc:
            self.error = exc
        except OSError:
            pass  # the child has gone; the main loop sees it exit


class ExternalReceiver:
    def __init__(self, settings):
        self.settings = settings
        self.protocol = settings.protocol
        self.program = PROGRAMS[settings.protocol]
        self._last_complaint = ""

    def receive(self, line: Line, session: Session) -> Iterator:
        while not session.stop.is_set():
            started = time.monotonic()
            yield from self._child(line, session)
            if time.monotonic() - started < MIN_RUN:
                session.stop.wait(self.settings.reopen_interval)

    def _child(self, line: Line, session: Session) -> Iterator:
        workdir = tempfile.mkdtemp(prefix=f"lgw-{self.protocol}-", dir=self.settings.work_dir)
        watch = CloseWatch(workdir)
        errors = tempfile.TemporaryFile()
        cmd = self.program.command(self.settings)
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, cwd=workdir,
                                    start_new_session=True, bufsize=0)
        except OSError as exc:
            log.error("event=receiver_failed source=%s port=%s program=%s error=%r", session.source, session.port,
                      cmd[0], str(exc))
            watch.close()
            shutil.rmtree(workdir, ignore_errors=True)
            errors.close()
            return
        started = time.monotonic()
        pump = Pump(line, proc.stdin.fileno())
        pump.start()
        try:
            yield from self._relay(line, session, proc, pump, watch, workdir)
        finally:
            pump.halt.set()
            ended_by_us = _end(proc)
            pump.join(2)
            watch.close()
            self._discard_leftovers(session, workdir, "the receiver ended before the file was complete")
            shutil.rmtree(workdir, ignore_errors=True)
            errors.seek(0)
            tail = errors.read()[-400:].decode("utf-8", "replace").strip()
            errors.close()
            if proc.returncode not in (0, None) and tail:
                quick = time.monotonic() - started < MIN_RUN and not ended_by_us
                if quick and tail != self._last_complaint:  # a receiver that cannot even start
                    log.error("event=receiver_failed source=%s program=%s rc=%s stderr=%r", session.source, cmd[0],
                              proc.returncode, tail)
                    self._last_complaint = tail
                else:
                    log.debug("event=receiver_exit source=%s rc=%s stderr=%r", session.source, proc.returncode, tail)
        if pump.error is not None:
            raise pump.error

    def _relay(self, line: Line, session: Session, proc: subprocess.Popen, pump: Pump, watch: CloseWatch,
               workdir: str) -> Iterator:
        out = proc.stdout.fileno()
        closed: list[str] = []
        while True:
            if pump.error is not None:
                return
            if session.stop.is_set():
                raise Stopped()
            if pump.total and time.monotonic() - pump.last > self.settings.stall_limit:
                # The receiver may go on retrying for ever (rz does): the sender is gone.
                session.failed(f"{self.protocol} transfer", pump.total,
                               f"the sender fell silent for {self.settings.stall_limit:g}s", files=len(closed))
                return
            ready, _, _ = select.select([out], [], [], 0.2)
            if not ready:
                continue
            reply = os.read(out, 65536)
            if not reply:
                return  # the child closed its output: it is exiting
            closed += [n for n in watch.closed() if n not in closed]
            if not closed:
                line.write(reply)
                continue
            name = closed.pop(0)
            path = os.path.join(workdir, name)
            log.debug("event=reply_after_close file=%s reply=%r", name, reply[:80])
            if not self.program.positive(reply):
                session.failed(name, _size(path), "the receiver did not accept the file", file=name)
                _remove(path)
                line.write(reply)
                continue
            accepted = yield from self._deliver(line, session, path, name, pump)
            if accepted:
                line.write(reply)
            else:
                pump.halt.set()  # from here on only we read the line
                pump.join(2)
                self._refuse(line, proc, reply, out)
                return

    def _deliver(self, line: Line, session: Session, path: str, name: str, pump: Pump) -> Iterator:
        size = _size(path)
        if size > self.settings.max_object:
            _remove(path)
            session.failed(name, size, f"larger than max_object_mb ({self.settings.max_object_mb})", file=name)
            return False
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            session.failed(name, size, f"cannot read the received file: {exc.strerror}", file=name)
            return False
        _remove(path)
        capture = session.capture(data, file=name, bytes_on_line=pump.total)
        yield capture
        pump.last = time.monotonic()  # the sender waited for us, it did not fall silent
        verdict = session.verdict(capture)
        session.answered(capture, verdict, "ACK" if verdict.accepted else "cancel")
        return verdict.accepted

    def _refuse(self, line: Line, proc: subprocess.Popen, held: bytes, out: int) -> None:
        """Tell the sender the file was not taken: never the held reply, a cancel instead."""
        if self.protocol == "kermit":
            packet = kermit_error_packet(held, "refused by the gateway")
            _end(proc)
            if packet:
                line.write(packet)
                _refuse_retries(line, packet, self.settings.timeout)
            return
        # rz answers SIGTERM with its cancel sequence (CANs then backspaces); pass it on.
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and relay_output(out, line):
            pass
        line.write(bytes([CAN]) * 8)  # in case rz died before it could say it
        _refuse_retries(line, bytes([CAN]) * 2, self.settings.timeout)

    def _discard_leftovers(self, session: Session, workdir: str, reason: str) -> None:
        try:
            names = sorted(os.listdir(workdir))
        except OSError:
            return
        for name in names:
            path = os.path.join(workdir, name)
            session.failed(name, _size(path), reason, file=name)
            _remove(path)


def relay_output(out: int, line: Line, wait: float = 0.2) -> bool:
    """Copy to the line what a protocol program wrote to ``out`` within ``wait`` seconds;
    False once the program has closed its output."""
    ready, _, _ = select.select([out], [], [], wait)
    if not ready:
        return True
    data = os.read(out, 65536)
    if not data:
        return False
    line.write(data)
    return True


def _refuse_retries(line: Line, answer: bytes, quiet: float, rounds: int = 20) -> None:
    """Answer whatever the sender repeats (YMODEM repeats its EOT until it gets an ACK) with the
    refusal, until it gives up and the line is quiet; only then may a new receiver start, or
    it could acknowledge a repetition and the sender would take the refused file as sent."""
    for _ in range(rounds):
        if not line.read(65536, max(1.0, quiet)):
            return
        line.write(answer)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _end(proc: subprocess.Popen) -> bool:
    """Stop the child if it still runs (True if we had to) and close our ends of its pipes."""
    running = proc.poll() is None
    if running:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except OSError:
            pass
    return running
