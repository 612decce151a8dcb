"""The serial driver receiving from real senders (lrzsz's sx/sb/sz, gkermit) over pseudo-terminals.

Each sender is the Debian program an old console's modern stand-in would run; the bytes each
capture carries are compared with the real sample files that were sent.
"""

from __future__ import annotations

import logging
import subprocess
import time

import pytest

from tests.support.serial_harness import RECEIVER_OF, SENDERS, Receiving, sample_files
from tests.support.serial_link import Faults, PtyLink, run_peer, start_peer

SUB = 0x1A


@pytest.fixture
def files(samples):
    return sample_files(samples)


def put(tmp_path, files, *names):
    for name in names:
        (tmp_path / name).write_bytes(files[name])
    return list(names)


def assert_padded(received: bytes, original: bytes, block: int) -> None:
    """XMODEM without a length check: the original, then SUB padding to the block boundary."""
    assert received[:len(original)] == original
    pad = received[len(original):]
    assert len(pad) < block and pad == bytes([SUB]) * len(pad)
    assert len(received) % 128 == 0


# -- XMODEM ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sender,check", [("xmodem", "auto"), ("xmodem-1k", "auto"), ("xmodem", "checksum"),
                                          ("xmodem-1k", "crc")])
def test_xmodem_from_sx_trims_padding_only_where_the_format_measures_the_object(tmp_path, files, sender, check):
    names = put(tmp_path, files, "mr.001", "heart.1", "scatter_cylinder.hs", "init.v")
    with PtyLink(tmp_path) as link, Receiving(link, "xmodem", options={"xmodem_check": check}) as rx:
        for name in names:  # XMODEM has no batch: one sx per file
            result = run_peer([*SENDERS[sender], name], link.peer_path, tmp_path)
            assert result.returncode == 0, result.stderr[-300:]
        rx.wait_for(4)
    spi, genesis, interfile, raw = (t.capture for t in rx.taken)
    # SPI: its element lengths say where it ends; Genesis: its header and pixel lengths;
    # an Interfile header: its END OF INTERFILE line.
    assert spi.data == files["mr.001"] and genesis.data == files["heart.1"]
    assert interfile.data == files["scatter_cylinder.hs"]
    for capture in (spi, genesis, interfile):
        assert "padding trimmed" in capture.origin.details["padding"]
    # No format measures raw data (an Interfile data file): delivered as received, padding and all.
    assert_padded(raw.data, files["init.v"], 1024 if sender == "xmodem-1k" else 128)
    assert "no format measured" in raw.origin.details["padding"]
    expected_check = "checksum" if check == "checksum" else "crc"
    assert {t.capture.origin.details["check"] for t in rx.taken} == {expected_check}


def test_xmodem_holds_the_final_ack_until_the_pipeline_answers(tmp_path, files):
    put(tmp_path, files, "mr.001")
    with PtyLink(tmp_path) as link:
        sender = start_peer([*SENDERS["xmodem-1k"], "mr.001"], link.peer_path, tmp_path)
        with Receiving(link, "xmodem", sender=sender, delay=1.5) as rx:
            rx.wait_for(1)
            time.sleep(1.0)
            assert sender.poll() is None, "the sender finished before the pipeline answered"
            assert sender.wait(10) == 0
    assert rx.taken[0].sender_running is True
    assert rx.data == [files["mr.001"]]


def test_xmodem_refused_object_cancels_the_sender(tmp_path, files, caplog):
    put(tmp_path, files, "mr.001")
    caplog.set_level(logging.INFO, logger="drivers.serial")
    with PtyLink(tmp_path) as link, Receiving(link, "xmodem", verdict=lambda c: False) as rx:
        result = run_peer([*SENDERS["xmodem"], "mr.001"], link.peer_path, tmp_path)
        rx.wait_for(1)
    assert result.returncode != 0
    assert b"No ACK on EOT" in result.stderr
    assert "accepted=False told=CAN" in caplog.text


# -- YMODEM, ZMODEM, Kermit through rz and gkermit ------------------------------------------------------


BATCH = ["ymodem", "zmodem", "kermit"]


@pytest.mark.parametrize("protocol", BATCH)
def test_batch_sender_files_arrive_whole_with_their_names(tmp_path, files, protocol):
    names = put(tmp_path, files, "E07733S002I009.MR", "mr.001", "scatter_cylinder.hs")
    with PtyLink(tmp_path) as link, Receiving(link, protocol) as rx:
        result = run_peer([*SENDERS[protocol], *names], link.peer_path, tmp_path)
        assert result.returncode == 0, result.stderr[-300:]
        rx.wait_for(3)
    assert rx.data == [files[n] for n in names]  # exact sizes: no padding, nothing trimmed
    got = [t.capture.origin.details["file"] for t in rx.taken]
    assert [g.lower() for g in got] == [n.lower() for n in names]  # gkermit lower-cases names


@pytest.mark.parametrize("protocol", BATCH)
def test_batch_sender_hears_success_only_after_the_pipeline_answers(tmp_path, files, protocol):
    put(tmp_path, files, "mr.001")
    with PtyLink(tmp_path) as link:
        sender = start_peer([*SENDERS[protocol], "mr.001"], link.peer_path, tmp_path)
        with Receiving(link, protocol, sender=sender, delay=1.5) as rx:
            rx.wait_for(1)
            time.sleep(1.0)
            assert sender.poll() is None, "the sender finished before the pipeline answered"
            assert sender.wait(15) == 0
    assert rx.taken[0].sender_running is True
    assert rx.data == [files["mr.001"]]


@pytest.mark.parametrize("protocol", BATCH)
def test_batch_refused_file_makes_the_sender_fail(tmp_path, files, protocol, caplog):
    names = put(tmp_path, files, "mr.001", "heart.1")
    caplog.set_level(logging.INFO, logger="drivers.serial")
    with PtyLink(tmp_path) as link, Receiving(link, protocol, verdict=lambda c: False) as rx:
        result = run_peer([*SENDERS[protocol], *names], link.peer_path, tmp_path, timeout=60)
        rx.wait_for(1)
        time.sleep(0.5)
    assert result.returncode != 0, result.stderr[-300:]
    assert len(rx.taken) == 1  # the batch stops at the refused file
    assert "accepted=False told=cancel" in caplog.text


# -- line trouble ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sender", ["xmodem-1k", "ymodem", "zmodem", "kermit"])
def test_corruption_and_drops_are_retransmitted_and_exact_bytes_arrive(tmp_path, files, sender):
    """Bytes flipped and a span dropped on the way in, a reply damaged on the way out; the
    protocols must retransmit and still deliver exact bytes.

    One dropped span, not two: with two, gkermit cannot finish even against itself (sender and
    receiver both gkermit over this relay, no gateway involved), so that would test gkermit.
    """
    put(tmp_path, files, "mr.001")
    to_gw = Faults(corrupt=4, drop=1, skip=3000, within=100000, seed=11)
    to_peer = Faults(corrupt=1, drop=0, skip=0, within=40, seed=5)  # an ACK (or reply) damaged early on
    with PtyLink(tmp_path, to_gateway=to_gw, to_peer=to_peer) as link, \
            Receiving(link, RECEIVER_OF[sender], options={"timeout": 1.0, "retries": 10}) as rx:
        result = run_peer([*SENDERS[sender], "mr.001"], link.peer_path, tmp_path, timeout=90)
        assert result.returncode == 0, result.stderr[-400:]
        rx.wait_for(1)
    assert len(to_gw.done) == 5 and len(to_peer.done) == 1, (to_gw.done, to_peer.done)
    assert rx.data == [files["mr.001"]]


@pytest.mark.parametrize("sender", ["xmodem-1k", "ymodem", "zmodem", "kermit"])
def test_sender_disconnecting_mid_transfer_leaves_nothing(tmp_path, files, sender, caplog):
    put(tmp_path, files, "mr.001")
    caplog.set_level(logging.INFO, logger="drivers.serial")
    with PtyLink(tmp_path, cut_after=60000) as link, \
            Receiving(link, RECEIVER_OF[sender], options={"timeout": 0.5, "retries": 2}) as rx:
        proc = start_peer([*SENDERS[sender], "mr.001"], link.peer_path, tmp_path)
        deadline = time.monotonic() + 10
        while link.counts["to_gateway"] < 60000 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill()  # the console is switched off mid-transfer
        proc.wait()
        deadline = time.monotonic() + 20
        while "event=transfer_failed" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
    assert rx.taken == []
    failed = [r.getMessage() for r in caplog.records if "event=transfer_failed" in r.getMessage()]
    assert failed, caplog.text
    assert f"port={link.gateway_path}" in failed[0]
    nbytes = int(failed[0].split(" bytes=")[1].split()[0])
    assert 0 < nbytes <= 60000


# -- the port going away --------------------------------------------------------------------------------


def test_unplugged_adapter_is_logged_reopened_and_works_again(tmp_path, files, caplog):
    put(tmp_path, files, "mr.001")
    caplog.set_level(logging.INFO, logger="drivers.serial")
    with PtyLink(tmp_path) as link, Receiving(link, "zmodem") as rx:
        time.sleep(0.5)
        link.unplug()
        time.sleep(1.0)
        link.replug()
        result = run_peer([*SENDERS["zmodem"], "mr.001"], link.peer_path, tmp_path)
        assert result.returncode == 0, result.stderr[-300:]
        rx.wait_for(1)
    text = caplog.text
    assert "event=port_lost" in text and "event=port_back" in text
    assert text.index("event=port_lost") < text.index("event=port_back")
    assert rx.data == [files["mr.001"]]


def test_adapter_pulled_mid_transfer_loses_the_partial_file_only(tmp_path, files, caplog):
    put(tmp_path, files, "mr.001")
    caplog.set_level(logging.INFO, logger="drivers.serial")
    with PtyLink(tmp_path, cut_after=50000) as link, Receiving(link, "ymodem") as rx:
        proc = start_peer([*SENDERS["ymodem"], "mr.001"], link.peer_path, tmp_path)
        deadline = time.monotonic() + 10
        while link.counts["to_gateway"] < 50000 and time.monotonic() < deadline:
            time.sleep(0.05)
        link.unplug()
        proc.kill()
        proc.wait()
        time.sleep(0.5)
        link.cut_after = None
        link.replug()
        result = run_peer([*SENDERS["ymodem"], "mr.001"], link.peer_path, tmp_path)
        assert result.returncode == 0, result.stderr[-300:]
        rx.wait_for(1)
    assert rx.data == [files["mr.001"]]
    assert "event=port_lost" in caplog.text and "event=transfer_failed" in caplog.text


# -- raw lines ------------------------------------------------------------------------------------------


def cat_to_line(link: PtyLink, *blobs: bytes) -> None:
    """A console dumping files down the line: plain `cat` to the tty."""
    with open(link.peer_path, "wb", buffering=0) as tty:
        subprocess.run(["cat"], input=b"".join(blobs), stdout=tty, check=True, timeout=30)


def test_raw_stream_is_cut_by_the_formats_own_lengths_and_idle_gaps(tmp_path, files, samples, caplog):
    caplog.set_level(logging.INFO, logger="drivers.serial")
    part10 = (samples / "dicom_vendor" / "MR-SIEMENS-DICOM-WithOverlays.dcm").read_bytes()
    interfile = files["scatter_cylinder.hs"]
    raw = files["init.v"]
    partial = files["OT-MONO2-8-a7.dcm"][:100000]
    with PtyLink(tmp_path) as link, Receiving(link, "raw", options={"idle_gap": 0.6}) as rx:
        cat_to_line(link, files["mr.001"], part10, files["OT-MONO2-8-a7.dcm"], interfile)  # back to back
        rx.wait_for(4)
        time.sleep(1.0)
        cat_to_line(link, raw)  # no format measures raw data (an Interfile data file): the gap ends it
        rx.wait_for(5)
        time.sleep(1.0)
        cat_to_line(link, partial)  # the line goes quiet inside a measured object
        time.sleep(1.5)
    assert rx.data == [files["mr.001"], part10, files["OT-MONO2-8-a7.dcm"], interfile, raw]
    cuts = [t.capture.origin.details["cut_by"] for t in rx.taken]
    assert cuts[:4] == ["its format's length"] * 4 and cuts[4].startswith("an idle gap")
    assert f"bytes={len(partial)} reason='partial" in caplog.text


def test_raw_without_length_check_cuts_only_at_idle_gaps(tmp_path, files):
    with PtyLink(tmp_path) as link, Receiving(link, "raw", measure=False, options={"idle_gap": 0.5}) as rx:
        cat_to_line(link, files["mr.001"], files["OT-MONO2-8-a7.dcm"])
        rx.wait_for(1)
        time.sleep(0.8)
        cat_to_line(link, files["heart.1"])
        rx.wait_for(2)
    assert rx.data == [files["mr.001"] + files["OT-MONO2-8-a7.dcm"], files["heart.1"]]
