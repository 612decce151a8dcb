#!/usr/bin/env python3
"""Serial protocols on a 10 MB transfer over a pseudo-terminal pair (a benchmark, not a test).

For each protocol a real sender (lrzsz's sx and sz, gkermit) sends one 10 MB file to the
gateway's serial driver, which runs in its own process so that its CPU time (and that of its
rz/gkermit children) can be read from getrusage. A relay between the two pseudo-terminals
counts every byte in both directions. Printed per protocol:

- efficiency: payload bytes / bytes on the line (both directions: blocks, headers, CRCs,
  escapes, ACKs and replies all occupy the line); targets: XMODEM-1K and ZMODEM >= 0.95;
- CPU seconds per MB on the gateway side, and its ratio to the reference measured in the same
  run: the same bytes on a raw line (no protocol, cut by the idle gap);
- wall time (on a pseudo-terminal, not a UART: stop-and-wait protocols pay per block for the
  round trip through two processes, not for a baud rate).

The payload is made of real sample images (shared/samples) repeated up to the size, since
images are what these lines carry (their byte values decide ZMODEM's and Kermit's escaping);
``--random`` uses random bytes instead (the worst case for escaping).

Usage: python bench/serial.py [--size-mb 10] [--protocols xmodem-1k,zmodem,...] [--random]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This file is named serial.py: its own folder must not shadow pyserial's "serial" package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from tests.support.serial_link import PtyLink  # noqa: E402

SENDERS = {
    "raw": None,
    "xmodem": ["sx", "--binary"],
    "xmodem-1k": ["sx", "--binary", "--1k"],
    "ymodem": ["sb", "--binary", "--1k"],
    "zmodem": ["sz", "--binary"],
    "kermit": ["gkermit", "-i", "-s"],
}
RECEIVER = {"raw": "raw", "xmodem": "xmodem", "xmodem-1k": "xmodem", "ymodem": "ymodem", "zmodem": "zmodem",
            "kermit": "kermit"}
TARGETS = {"xmodem-1k": 0.95, "zmodem": 0.95}
SAMPLES = ["ge_genesis/heart.1", "siemens_spi_acrnema/mr.001", "acr_nema/CT-MONO2-12-lomb-an2.acr",
           "dicom_vendor_nopreamble/OT-MONO2-8-a7_Philips_nopreamble.dcm", "ge_genesis/E07733S002I009.MR"]


def payload(size: int, random_bytes: bool) -> bytes:
    if random_bytes:
        return os.urandom(size)
    shared = next(p / "shared" / "samples" for p in ROOT.parents if (p / "shared" / "samples").is_dir())
    blobs = [(shared / s).read_bytes() for s in SAMPLES]
    out = bytearray()
    while len(out) < size:  # whole files only, so a raw line can cut every one out
        for blob in blobs:
            out += blob
            if len(out) >= size:
                break
    return bytes(out)


# -- the gateway side (a child process) ---------------------------------------------------------


def receive(port: str, protocol: str) -> None:
    """Run the serial driver until told "stop" on stdin; print what it received and its CPU."""
    from drivers.serial.source import SerialDriver
    from gateway import formats

    options = {"port": port, "protocol": protocol, "timeout": 5.0, "retries": 10, "idle_gap": 1.0,
               "max_object_mb": 256}
    driver = SerialDriver.from_options("bench", options, formats.object_length)
    stop = threading.Event()
    got = {"captures": 0, "bytes": 0}

    def run():
        for capture in driver.captures(stop):
            got["captures"] += 1
            got["bytes"] += capture.size
            driver.ack(capture, "2.25.1")

    formats.load_decoders()  # import every decoder now: start-up is not transfer cost
    thread = threading.Thread(target=run, daemon=True)
    before = resource.getrusage(resource.RUSAGE_SELF)
    thread.start()
    print("ready", flush=True)
    sys.stdin.readline()
    stop.set()
    thread.join(30)
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    got["cpu"] = (own.ru_utime - before.ru_utime) + (own.ru_stime - before.ru_stime) + kids.ru_utime + kids.ru_stime
    print(json.dumps(got), flush=True)


# -- the bench ----------------------------------------------------------------------------------


def measure(protocol: str, data: bytes, workdir: Path) -> dict:
    link = PtyLink(workdir)
    gateway = subprocess.Popen([sys.executable, __file__, "--receive", link.gateway_path, RECEIVER[protocol]],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert gateway.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    start = time.monotonic()
    with open(link.peer_path, "r+b", buffering=0) as tty:
        if SENDERS[protocol] is None:
            proc = subprocess.run(["cat", str(workdir / "payload.bin")], stdout=tty, timeout=3600)
        else:
            proc = subprocess.run([*SENDERS[protocol], "payload.bin"], stdin=tty, stdout=tty,
                                  stderr=subprocess.DEVNULL, cwd=workdir, timeout=3600)
    sent = time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # raw: the object ends at the idle gap; others: at once
        time.sleep(0.2)
        if protocol != "raw" or time.monotonic() - sent > 2.0:
            break
    gateway.stdin.write("stop\n")
    gateway.stdin.flush()
    result = json.loads(gateway.stdout.readline())
    gateway.wait(30)
    link.close()
    on_line = link.counts["to_gateway"] + link.counts["to_peer"]
    return {
        "protocol": protocol, "sender_rc": proc.returncode, "received": result["bytes"],
        "captures": result["captures"], "on_line": on_line, "efficiency": len(data) / on_line,
        "cpu_per_mb": result["cpu"] / (len(data) / 1e6), "wall": sent - start,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=10)
    parser.add_argument("--protocols", default="xmodem,xmodem-1k,ymodem,zmodem,kermit")
    parser.add_argument("--random", action="store_true", help="random bytes instead of sample images")
    parser.add_argument("--receive", nargs=2, metavar=("PORT", "PROTOCOL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        receive(*args.receive)
        return 0
    data = payload(int(args.size_mb * 1e6), args.random)
    rows, failed = [], False
    with tempfile.TemporaryDirectory(prefix="lgw-bench-serial-") as tmp:
        (Path(tmp) / "payload.bin").write_bytes(data)
        for protocol in ["raw", *args.protocols.split(",")]:
            work = Path(tmp) / protocol
            work.mkdir()
            os.link(Path(tmp) / "payload.bin", work / "payload.bin")
            row = measure(protocol, data, work)
            rows.append(row)
            print(f"  {protocol}: done in {row['wall']:.1f}s", file=sys.stderr, flush=True)
    reference = rows[0]["cpu_per_mb"]
    kind = "random bytes" if args.random else "sample images"
    print(f"payload: {len(data)} bytes of {kind}; reference: raw line, {reference:.4f} CPU s/MB")
    print(f"{'protocol':<10} {'efficiency':>10} {'target':>7} {'CPU s/MB':>9} {'x raw':>7} {'wall s':>7}  received")
    for row in rows:
        target = TARGETS.get(row["protocol"])
        ok = row["received"] >= len(data) and (row["sender_rc"] == 0)
        if target and row["efficiency"] < target:
            ok = False
        failed |= not ok
        print(f"{row['protocol']:<10} {row['efficiency']:>10.4f} {(f'{target:.2f}' if target else '-'):>7} "
              f"{row['cpu_per_mb']:>9.4f} {row['cpu_per_mb'] / reference:>7.2f} {row['wall']:>7.1f}  "
              f"{row['received']} bytes in {row['captures']} capture(s){'' if ok else '  <-- FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
