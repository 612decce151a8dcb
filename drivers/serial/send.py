"""Sending files down a serial line, as an old console would: for ``simulate --serial``.

A site checks its cabling and line settings by sending simulated images to the gateway (or to
any receiver); tests use it against lrzsz's and gkermit's receivers. XMODEM goes through the
``xmodem`` package (one file per session, as XMODEM has no batch); YMODEM, ZMODEM and Kermit
through lrzsz's ``sz`` and ``gkermit -s`` attached to the port the same way the receivers are;
``raw`` writes the bytes, with an idle gap between objects.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from xmodem import XMODEM

from drivers.serial.external import Pump, _rz_tenths, relay_output
from drivers.serial.line import Line, LineLost, PortSettings
from drivers.serial.xmodem import fast_crc

SEND_PROTOCOLS = ("xmodem", "xmodem-1k", "ymodem", "zmodem", "kermit", "raw")


class SendError(Exception):
    pass


class _QuietLog:
    def __getattr__(self, name):
        return lambda *a, **k: None


def send_files(port: PortSettings, protocol: str, files: list[tuple[str, bytes]], *, timeout: float = 10.0,
               retries: int = 10, gap: float = 2.0) -> int:
    """Send ``files`` (name, bytes); return the number of bytes that went over the line."""
    if protocol not in SEND_PROTOCOLS:
        raise SendError(f"protocol must be one of {', '.join(SEND_PROTOCOLS)}")
    line = Line(port)
    try:
        line.open()
    except LineLost as exc:
        raise SendError(str(exc)) from None
    try:
        if protocol in ("xmodem", "xmodem-1k"):
            _xmodem(line, protocol, files, timeout, retries)
        elif protocol == "raw":
            for i, (_, data) in enumerate(files):
                if i:
                    time.sleep(gap)
                line.write(data)
            _drain(line)
        else:
            _external(line, protocol, files, port, timeout)
    except LineLost as exc:
        raise SendError(f"the line went away: {exc}") from None
    finally:
        line.close()
    return line.bytes_out


def _drain(line: Line) -> None:
    port = line._port
    try:
        port.flush()
    except Exception:  # noqa: BLE001 - URL handlers without tcdrain
        pass


def _xmodem(line: Line, protocol: str, files, timeout: float, retries: int) -> None:
    def getc(size, t=None):
        # The package waits for the receiver's first C/NAK without a timeout argument: give
        # that wait XMODEM's classic 10 s per try (receivers repeat their poke that often).
        return line.read_exact(size, max(timeout, 10.0) if t is None else t) or None

    def putc(data, t=timeout):
        return line.write(data)

    block = 1024 if protocol == "xmodem-1k" else 128
    modem = fast_crc(XMODEM(getc, putc, mode="xmodem1k" if protocol == "xmodem-1k" else "xmodem"))
    modem.log = _QuietLog()
    for name, data in files:
        acked = [0]
        if modem.send(io.BytesIO(data), retry=retries, timeout=timeout, quiet=True,
                      callback=lambda total, ok, errors, acked=acked: acked.__setitem__(0, ok)):
            continue
        blocks = -(-len(data) // block)
        if acked[0] == blocks:
            # Said apart because receivers on pseudo-terminals lose exactly this ACK: lrzsz's rx
            # writes it and then flushes its output queue as it exits.
            raise SendError(f"{name}: all {blocks} blocks were acknowledged, the end of transmission was not")
        raise SendError(f"{name}: the receiver did not take it (cancelled, or too many errors after "
                        f"{acked[0]} of {blocks} blocks)")


def _external(line: Line, protocol: str, files, port: PortSettings, timeout: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix=f"lgw-send-{protocol}-"))
    try:
        names = []
        for name, data in files:
            path = workdir / Path(name).name
            path.write_bytes(data)
            names.append(path.name)
        if protocol == "kermit":
            cmd = ["gkermit", "-i", "-q", "-b", str(max(1, round(timeout)))]
            if port.parity != "none":
                cmd += ["-p", port.parity[0]]
            cmd += ["-s", *names]
        else:
            cmd = ["sz", "--binary", "--quiet", f"--{protocol}", "--timeout", _rz_tenths(timeout)]
            if protocol == "ymodem":
                cmd.append("--1k")
            cmd += names
        rc, tail = _run_attached(line, cmd, workdir)
        if rc != 0:
            raise SendError(f"{cmd[0]} exited with {rc}: {tail}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_attached(line: Line, cmd: list[str], cwd: Path) -> tuple[int, str]:
    """Run a protocol program with its stdin/stdout relayed to and from the line."""
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, cwd=cwd,
                            start_new_session=True, bufsize=0)
    pump = Pump(line, proc.stdin.fileno())
    pump.start()
    out = proc.stdout.fileno()
    try:
        while True:
            if pump.error is not None:
                raise pump.error
            if not relay_output(out, line):
                break
        rc = proc.wait(30)
        _drain(line)
    finally:
        pump.halt.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pump.join(2)
        proc.stdin.close()
        proc.stdout.close()
    errors.seek(0)
    tail = errors.read()[-300:].decode("utf-8", "replace").strip()
    errors.close()
    return rc, tail
