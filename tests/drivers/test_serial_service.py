"""End to end: consoles send vendor files over serial lines; the daemon delivers them to Orthanc.

Real senders (lrzsz's sz and sx, sb) on pseudo-terminals, the real daemon in a subprocess,
the real pipeline and spool, a real Orthanc. The expected SOP Instance UIDs come from
converting the same files directly (``pipeline.convert``): same bytes in, same UIDs out, so a
match shows the serial path delivered every file byte for byte (XMODEM padding trimmed).
"""

from __future__ import annotations

import sqlite3
import time

import pydicom

from gateway.capture import Capture, Origin
from gateway.pipeline import convert
from tests.support.daemon import Daemon, wait_until, write_config
from tests.support.serial_harness import SENDERS
from tests.support.serial_link import PtyLink, run_peer, start_peer

FILES = {
    "mr.001": "siemens_spi_acrnema/mr.001",                              # Siemens SPI (ACR-NEMA based)
    "E07733S002I009.MR": "ge_genesis/E07733S002I009.MR",                 # GE Genesis, DPCM pixels
    "OT-MONO2-8-a7.dcm": "dicom_vendor_nopreamble/OT-MONO2-8-a7_Philips_nopreamble.dcm",  # headerless DICOM
    "heart.1": "ge_genesis/heart.1",                                     # GE Genesis, raw pixels
}


def serial_source(name: str, port: str, protocol: str) -> str:
    return "\n".join([f"  - name: {name}", "    type: serial", f"    port: {port}", f"    protocol: {protocol}",
                      "    timeout: 1s", "    retries: 2", "    reopen_interval: 200ms"])


def expected_uid(data: bytes) -> str:
    ds, _ = convert(Capture(data, Origin("test", "direct")))
    return str(ds.SOPInstanceUID)


def test_files_sent_over_serial_lines_arrive_in_orthanc(tmp_path, orthanc, samples):
    data = {name: (samples / path).read_bytes() for name, path in FILES.items()}
    for name, blob in data.items():
        (tmp_path / name).write_bytes(blob)
    (tmp_path / "notes.hs").write_bytes((samples / "interfile/stir/recon_test_pack/scatter_cylinder.hs").read_bytes())
    incoming, spool = tmp_path / "incoming", tmp_path / "spool"
    incoming.mkdir()
    for d in ("z", "x", "y"):
        (tmp_path / d).mkdir()
    zlink, xlink = PtyLink(tmp_path / "z"), PtyLink(tmp_path / "x")
    ylink = PtyLink(tmp_path / "y", cut_after=40000)
    sources = "\n".join([serial_source("ct-console", zlink.gateway_path, "zmodem"),
                         serial_source("mr-console", xlink.gateway_path, "xmodem"),
                         serial_source("old-box", ylink.gateway_path, "ymodem")])
    config = write_config(tmp_path / "gw.yaml", destinations=[{"name": "orthanc", "port": orthanc.dicom_port}],
                          incoming=incoming, spool=spool, extra_source=sources)
    daemon = Daemon(config, tmp_path).start()
    try:
        wait_until(lambda: daemon.log_text().count("event=port_open") == 3, 30, what="three ports open")
        # ZMODEM batch: three images, then an Interfile header whose data file a serial line cannot
        # bring along (refused naming 'name of data file': the batch fails there).
        z = run_peer([*SENDERS["zmodem"], "mr.001", "E07733S002I009.MR", "OT-MONO2-8-a7.dcm", "notes.hs"],
                     zlink.peer_path, tmp_path, timeout=60)
        assert z.returncode != 0, "the refused file must fail the sender"
        # XMODEM: one Genesis file; its header lengths say where the SUB padding starts.
        x = run_peer([*SENDERS["xmodem-1k"], "heart.1"], xlink.peer_path, tmp_path, timeout=60)
        assert x.returncode == 0, x.stderr[-300:]
        # YMODEM: the console is switched off after 40000 bytes.
        sender = start_peer([*SENDERS["ymodem"], "mr.001"], ylink.peer_path, tmp_path)
        wait_until(lambda: ylink.counts["to_gateway"] >= 40000, 30, what="40000 bytes on the line")
        sender.kill()
        sender.wait()
        wait_until(lambda: "event=transfer_failed source=old-box" in daemon.log_text(), 30, what="failure logged")
        expected = {expected_uid(data[n]) for n in ("mr.001", "E07733S002I009.MR", "OT-MONO2-8-a7.dcm", "heart.1")}
        wait_until(lambda: set(orthanc.sop_instance_uids()) == expected, 60, what="four instances in Orthanc")
        time.sleep(1.0)
    finally:
        assert daemon.stop() == 0
        for link in (zlink, xlink, ylink):
            link.close()
    assert len(orthanc.sop_instance_uids()) == 4
    with sqlite3.connect(spool / "spool.db") as db:
        sources = sorted(r[0] for r in db.execute("SELECT source FROM instances"))
    assert sources == ["ct-console"] * 3 + ["mr-console"]  # nothing from the line that was cut
    heart = pydicom.dcmread(__import__("io").BytesIO(orthanc.file(expected_uid(data["heart.1"]))))
    assert heart.Rows == 256 and len(heart.PixelData) == 256 * 256 * 2
    log = daemon.log_text()
    assert "event=sender_answered source=ct-console" in log and "told=cancel" in log
    failed = [line for line in log.splitlines() if "event=transfer_failed source=old-box" in line][0]
    assert f"port={ylink.gateway_path}" in failed and " bytes=" in failed
    for blob in data.values():  # patient names and IDs never in the log at INFO
        ds, _ = convert(Capture(blob, Origin("test", "direct")))
        for value in (str(ds.get("PatientName", "")), str(ds.get("PatientID", ""))):
            assert len(value) < 3 or value == "None" or value not in log, value
