"""End to end: modalities send with C-STORE to the gateway's DICOM source, which delivers onward.

Real peers only: DCMTK's ``storescu``/``echoscu`` send to the real daemon (a subprocess), the
real pipeline and spool make each instance durable, DCMTK's ``storescp`` is the destination.
The rule under test is the one every driver keeps: the sender hears Success only once the
instance is in the spool, and a failure status for anything that is not.
"""

from __future__ import annotations

import sqlite3
import struct
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from tests.support.daemon import Daemon, wait_until, write_config
from tests.support.instances import ct_instance
from tests.support.peers import dcmtk, free_port

GATEWAY_AE = "LEGACYGW"


def dicom_source(port: int, allowed: str = "[{ae: CT1, host: 127.0.0.1}, {ae: MR1}, {ae: FAR, host: 10.9.9.9}]",
                 extra: str = "") -> str:
    lines = ["  - name: modality", "    type: dicom", f"    ae_title: {GATEWAY_AE}", f"    port: {port}",
             f"    allowed: {allowed}"]
    return "\n".join(lines + ([extra] if extra else []))


def start_gateway(tmp_path: Path, destination_port: int, scp_port: int, extra: str = "") -> Daemon:
    incoming = tmp_path / "incoming"
    incoming.mkdir(exist_ok=True)
    config = write_config(tmp_path / "gw.yaml", destinations=[{"name": "pacs", "port": destination_port,
                                                              "aet": "STORESCP"}],
                          incoming=incoming, spool=tmp_path / "spool", extra_source=dicom_source(scp_port, extra=extra))
    daemon = Daemon(config, tmp_path).start()
    wait_until(lambda: "event=source_started source=modality" in daemon.log_text(), 30, what="the SCP listening")
    return daemon


def storescu(*args: str, calling: str = "CT1", called: str = GATEWAY_AE, port: int,
             timeout: float = 120, verbosity: str = "-v") -> subprocess.CompletedProcess:
    return subprocess.run([dcmtk("storescu"), verbosity, "-aet", calling, "-aec", called, "127.0.0.1", str(port), *args],
                          capture_output=True, text=True, timeout=timeout)


def write_instance(path: Path, index: int, **kw) -> str:
    ds = ct_instance(index, **kw)
    ds.save_as(path, enforce_file_format=True)
    return str(ds.SOPInstanceUID)


def spool_rows(spool: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(spool / "spool.db") as db:
        return db.execute("SELECT sop_instance_uid, destination, state FROM deliveries").fetchall()


def received_uids(storescp) -> set[str]:
    return {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in storescp.received()}


def test_instances_sent_with_storescu_arrive_at_the_destination(tmp_path, storescp):
    uids = {write_instance(tmp_path / "explicit.dcm", 0),
            write_instance(tmp_path / "implicit.dcm", 1, transfer_syntax=ImplicitVRLittleEndian)}
    port = free_port()
    daemon = start_gateway(tmp_path, storescp.port, port)
    try:
        echo = subprocess.run([dcmtk("echoscu"), "-aet", "MR1", "-aec", GATEWAY_AE, "127.0.0.1", str(port)],
                              capture_output=True, text=True, timeout=30)
        assert echo.returncode == 0, echo.stderr
        sent = storescu(str(tmp_path / "explicit.dcm"), str(tmp_path / "implicit.dcm"), port=port)
        assert sent.returncode == 0, sent.stderr
        wait_until(lambda: received_uids(storescp) == uids, 60, what="both instances at storescp")
    finally:
        assert daemon.stop() == 0
    assert {uid for uid, _, state in spool_rows(tmp_path / "spool") if state == "delivered"} == uids
    assert not any((tmp_path / "state" / "receiving").iterdir()), "received files are removed after the verdict"
    assert "Test^Forward" not in daemon.log_text() and "FWD0001" not in daemon.log_text()


def test_the_instance_is_in_the_spool_when_the_sender_hears_success(tmp_path):
    uid = write_instance(tmp_path / "ct.dcm", 0)
    port, nobody = free_port(), free_port()  # the destination is down: the instance must wait in the spool
    daemon = start_gateway(tmp_path, nobody, port)
    try:
        sent = storescu(str(tmp_path / "ct.dcm"), port=port)
        rows = spool_rows(tmp_path / "spool")  # read at once, before anything else can happen
        assert sent.returncode == 0, sent.stderr
        assert rows == [(uid, "pacs", "queued")]
        files = list((tmp_path / "spool" / "files").rglob("*.dcm"))
        assert len(files) == 1 and str(pydicom.dcmread(files[0]).SOPInstanceUID) == uid
    finally:
        assert daemon.stop() == 0


@pytest.mark.parametrize("calling, why", [("STRANGER", "an AE title nobody allowed"),
                                          ("FAR", "an allowed AE title from another address")])
def test_a_sender_not_allowed_is_refused_at_association(tmp_path, calling, why):
    write_instance(tmp_path / "ct.dcm", 0)
    port = free_port()
    daemon = start_gateway(tmp_path, free_port(), port)
    try:
        sent = storescu(str(tmp_path / "ct.dcm"), calling=calling, port=port)
        assert sent.returncode != 0, why
        assert "Association Rejected" in sent.stderr + sent.stdout
        assert "Calling AE Title Not Recognized" in sent.stderr + sent.stdout
        wait_until(lambda: f"event=association_refused source=modality calling_ae={calling} address=127.0.0.1"
                   in daemon.log_text(), 10, what="the refusal logged")
    finally:
        assert daemon.stop() == 0
    assert spool_rows(tmp_path / "spool") == []


def test_an_object_the_pipeline_rejects_gets_a_failure_status_and_goes_nowhere(tmp_path, storescp):
    ds = ct_instance(0)
    del ds.StudyInstanceUID  # no study UID and no vendor identity to derive one: the pipeline refuses it
    ds.save_as(tmp_path / "bad.dcm", enforce_file_format=True)
    good = write_instance(tmp_path / "good.dcm", 1)
    port = free_port()
    daemon = start_gateway(tmp_path, storescp.port, port)
    try:
        sent = storescu(str(tmp_path / "bad.dcm"), port=port, verbosity="-d")  # -d: the whole response
        assert sent.returncode != 0
        assert "DIMSE Status                  : 0xc000: Error: Cannot understand" in sent.stderr
        assert "(0000,0902) LO [no StudyInstanceUID" in sent.stderr  # the Error Comment names the reason
        assert storescu(str(tmp_path / "good.dcm"), port=port).returncode == 0
        wait_until(lambda: received_uids(storescp) == {good}, 60, what="the good instance at storescp")
    finally:
        assert daemon.stop() == 0
    assert [uid for uid, *_ in spool_rows(tmp_path / "spool")] == [good]
    assert "status=0xC000" in daemon.log_text()


def write_large(path: Path, megabytes: int) -> str:
    """A multi-frame CT of about ``megabytes`` MB, written without holding its pixels: the
    header by pydicom, then the Pixel Data element appended a megabyte at a time."""
    frames = megabytes * 2  # 512 x 512 x 16 bits: half a megabyte a frame
    ds = ct_instance(0, size=512)
    del ds.PixelData
    ds.NumberOfFrames = frames
    ds.save_as(path, enforce_file_format=True)
    length = frames * 512 * 512 * 2
    chunk = bytes(range(256)) * 4096
    with open(path, "ab") as f:
        f.write(b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", length))
        for _ in range(length // len(chunk)):
            f.write(chunk)
    return str(ds.SOPInstanceUID)


def spool_files(spool: Path) -> list[Path]:
    return sorted((spool / "files").rglob("*.dcm"))


def test_sigkill_during_a_receive_leaves_nothing_half_acknowledged(tmp_path):
    uid = write_large(tmp_path / "big.dcm", 150)
    port, nobody = free_port(), free_port()
    receiving = tmp_path / "state" / "receiving"
    daemon = start_gateway(tmp_path, nobody, port)
    sender = subprocess.Popen([dcmtk("storescu"), "-aet", "CT1", "-aec", GATEWAY_AE, "127.0.0.1", str(port),
                               str(tmp_path / "big.dcm")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: any(0 < p.stat().st_size < 100 << 20 for p in receiving.glob("*.dcm")), 60,
                   interval=0.005, what="the object half received")
        daemon.kill()
        assert sender.wait(60) != 0, "the sender must not hear success"
    finally:
        if sender.poll() is None:
            sender.kill()
    assert spool_rows(tmp_path / "spool") == [] and spool_files(tmp_path / "spool") == []
    assert list(receiving.glob("*.dcm")), "the killed process left its partial file (swept at the next start)"
    daemon.start()
    try:
        wait_until(lambda: daemon.log_text().count("event=source_started source=modality") == 2, 30,
                   what="the SCP listening again")
        assert list(receiving.glob("*.dcm")) == []
        for _ in range(2):  # sent again (twice, as a sender unsure of its first try might): stored once
            resent = storescu(str(tmp_path / "big.dcm"), port=port)
            assert resent.returncode == 0, resent.stderr
        assert spool_rows(tmp_path / "spool") == [(uid, "pacs", "queued")]
        assert len(spool_files(tmp_path / "spool")) == 1
        assert pydicom.dcmread(spool_files(tmp_path / "spool")[0], stop_before_pixels=True).SOPInstanceUID == uid
    finally:
        assert daemon.stop() == 0


def peak_rss(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def test_a_large_object_is_received_and_spooled_without_holding_it_in_memory(tmp_path, storescp):
    size_mb = 200
    uid = write_large(tmp_path / "big.dcm", size_mb)
    port = free_port()
    daemon = start_gateway(tmp_path, storescp.port, port)
    try:
        baseline = peak_rss(daemon.proc.pid)
        sent = storescu(str(tmp_path / "big.dcm"), port=port, timeout=300)
        assert sent.returncode == 0, sent.stderr
        wait_until(lambda: received_uids(storescp) == {uid}, 300, what="the large instance at storescp")
        peak = peak_rss(daemon.proc.pid)
    finally:
        assert daemon.stop() == 0
    received = storescp.received()[0]
    assert received.stat().st_size > size_mb << 20
    assert peak < (size_mb << 20) // 2, f"peak RSS {peak >> 20} MB (at start {baseline >> 20} MB) for a {size_mb} MB object"
