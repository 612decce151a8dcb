"""``legacy-gateway simulate --serial``: simulated images sent down a line to Debian's receivers
(rx, rb, rz, gkermit -r), which must end up with byte-identical files."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.simulate import SimOptions, generate
from tests.support.daemon import ROOT
from tests.support.serial_harness import Receiving
from tests.support.serial_link import PtyLink, start_peer

RECEIVERS = {
    "xmodem": ["rx", "--binary", "--with-crc", "received.bin"],
    "xmodem-1k": ["rx", "--binary", "--with-crc", "received.bin"],
    "ymodem": ["rb", "--binary"],
    "zmodem": ["rz", "--binary"],
    "kermit": ["gkermit", "-r", "-i", "-P"],  # -P: names as sent, so they can be compared
}


def simulate(port: str, protocol: str, fmt: str, count: int, seed: int = 4, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "gateway", "simulate", "--format", fmt, "-n", str(count), "--seed", str(seed),
           "--serial", port, "--protocol", protocol, "--line-timeout", "1", *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("protocol", ["ymodem", "zmodem", "kermit"])
def test_batch_receivers_get_byte_identical_files(tmp_path, protocol):
    # Small objects: lrzsz's receivers wait up to 0.1 s per block on a pseudo-terminal.
    fmt = "acrnema" if protocol == "ymodem" else "genesis"
    expected = {sim.name: sim.data for sim in generate(fmt, 2, SimOptions(), 4)}
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with PtyLink(tmp_path) as link:
        receiver = start_peer(RECEIVERS[protocol], link.peer_path, inbox)
        result = simulate(link.gateway_path, protocol, fmt, 2)
        assert result.returncode == 0, result.stdout + result.stderr
        assert receiver.wait(30) == 0, receiver.stderr.read()[-300:]
    got = {p.name: p.read_bytes() for p in inbox.iterdir()}
    assert got == expected
    assert f"sent 2 file(s), {sum(map(len, expected.values()))} bytes" in result.stdout


@pytest.mark.parametrize("protocol", ["xmodem-1k"])  # 128-byte blocks: the refusal test below
def test_rx_gets_the_file_with_xmodem_padding(tmp_path, protocol):
    """XMODEM carries no length: rx stores the object and the SUB padding of its last block."""
    (sim,) = generate("acrnema", 1, SimOptions(), 4)  # 8904 bytes: not a multiple of 128
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with PtyLink(tmp_path) as link:
        receiver = start_peer(RECEIVERS[protocol], link.peer_path, inbox)
        result = simulate(link.gateway_path, protocol, "acrnema", 1)
        assert receiver.wait(30) == 0
        # rx acknowledges the EOT and then, exiting, flushes its tty output: on a pseudo-terminal
        # that ACK is often gone before the relay reads it (strace shows write(ACK), TCSBRK,
        # TCFLSH TCIOFLUSH). A real UART sends it during the drain. Only that ACK may be missing.
        assert result.returncode == 0 or "blocks were acknowledged, the end of transmission was not" in result.stderr
        on_line = link.counts["to_peer"]
    got = (inbox / "received.bin").read_bytes()
    block = 1024 if protocol == "xmodem-1k" else 128
    blocks = -(-len(sim.data) // block)
    assert got == sim.data + b"\x1a" * (blocks * block - len(sim.data))
    assert on_line >= blocks * (block + 5) + 1  # SOH/STX, number, complement, CRC-16 each; EOT


def test_sender_reports_a_refusal(tmp_path):
    """The gateway refuses the object (CAN instead of the EOT's ACK): simulate says so, exit 1."""
    with PtyLink(tmp_path) as link, Receiving(link, "xmodem", verdict=lambda c: False) as rx:
        result = simulate(link.peer_path, "xmodem", "acrnema", 1)
        rx.wait_for(1)
    assert result.returncode == 1
    assert rx.data == [next(generate("acrnema", 1, SimOptions(), 4)).data]  # trimmed by its own length
    assert "all 70 blocks were acknowledged, the end of transmission was not" in result.stderr


def test_raw_sender_objects_are_cut_apart_by_the_gateway(tmp_path):
    """Raw: simulate writes ACR-NEMA objects back to back (gap 0); the driver cuts them apart
    by their element lengths."""
    expected = [sim.data for sim in generate("acrnema", 3, SimOptions(byte_order="big"), 4)]
    with PtyLink(tmp_path) as link, Receiving(link, "raw", options={"idle_gap": 0.5}) as rx:
        result = simulate(link.peer_path, "raw", "acrnema", 3, 4, "--gap", "0", "--byte-order", "big")
        assert result.returncode == 0, result.stdout + result.stderr
        rx.wait_for(3)
    assert rx.data == expected
    assert {t.capture.origin.details["cut_by"] for t in rx.taken} == {"its format's length"}
