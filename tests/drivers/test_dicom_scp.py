"""End to end: modalities send with C-STORE to the gateway's DICOM source, which delivers onward.

Real peers only: DCMTK's ``storescu``/``echoscu`` send to the real daemon (a subprocess), the
real pipeline and spool make each instance durable, DCMTK's ``storescp`` is the destination.
The rule under test is the one every driver keeps: the sender hears Success only once the
instance is in the spool, and a failure status for anything that is not.
"""

from __future__ import annotations

import io
import sqlite3
import stat
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian, JPEGLosslessSV1, SecondaryCaptureImageStorage

from drivers.dicom_scp import DicomDriver, Peer, ScpSettings
from gateway.config import Source, parse_config
from gateway.errors import ConfigError
from gateway.service.sources import make_driver
from tests.support.daemon import Daemon, wait_until, write_config
from tests.support.instances import ct_instance
from tests.support.peers import StoreSCP, dcmtk, free_port

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
    command = [dcmtk("storescu"), verbosity, "-aet", calling, "-aec", called, "127.0.0.1", str(port), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def write_instance(path: Path, index: int, **kw) -> str:
    ds = ct_instance(index, **kw)
    ds.save_as(path, enforce_file_format=True)
    return str(ds.SOPInstanceUID)


def spool_rows(spool: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(spool / "spool.db") as db:
        return db.execute("SELECT sop_instance_uid, destination, state FROM deliveries").fetchall()


def received_uids(storescp) -> set[str]:
    return {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in storescp.received()}


def test_instances_sent_with_storescu_arrive_at_the_destination(tmp_path, samples):
    """Several SOP classes and transfer syntaxes (JPEG Lossless compressed by DCMTK's dcmcjpeg),
    a real vendor file, and a C-ECHO; the destination accepts every transfer syntax (+xa)."""
    files = {"explicit.dcm": write_instance(tmp_path / "explicit.dcm", 0),
             "implicit.dcm": write_instance(tmp_path / "implicit.dcm", 1, transfer_syntax=ImplicitVRLittleEndian),
             "sc.dcm": write_instance(tmp_path / "sc.dcm", 2, sop_class=SecondaryCaptureImageStorage)}
    write_instance(tmp_path / "plain.dcm", 3)
    subprocess.run([dcmtk("dcmcjpeg"), str(tmp_path / "plain.dcm"), str(tmp_path / "jpeg.dcm")], check=True)
    files["jpeg.dcm"] = str(pydicom.dcmread(tmp_path / "jpeg.dcm").SOPInstanceUID)
    real = samples / "dicom_vendor/MR-SIEMENS-DICOM-WithOverlays.dcm"
    files[str(real)] = str(pydicom.dcmread(real).SOPInstanceUID)
    destination = StoreSCP(tmp_path / "storescp", args=("+xa",)).start()
    port = free_port()
    daemon = start_gateway(tmp_path, destination.port, port)
    try:
        echo = subprocess.run([dcmtk("echoscu"), "-aet", "MR1", "-aec", GATEWAY_AE, "127.0.0.1", str(port)],
                              capture_output=True, text=True, timeout=30)
        assert echo.returncode == 0, echo.stderr
        sent = storescu(*(str(tmp_path / name) for name in files if name != "jpeg.dcm"), port=port)
        assert sent.returncode == 0, sent.stderr
        sent = storescu("-xs", str(tmp_path / "jpeg.dcm"), port=port)  # -xs: propose JPEG Lossless SV1
        assert sent.returncode == 0, sent.stderr
        wait_until(lambda: received_uids(destination) == set(files.values()), 60, what="every instance at storescp")
    finally:
        assert daemon.stop() == 0
        destination.stop()
    assert {uid for uid, _, state in spool_rows(tmp_path / "spool") if state == "delivered"} == set(files.values())
    arrived = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in destination.received()}
    jpeg = pydicom.dcmread(arrived[files["jpeg.dcm"]])
    assert jpeg.file_meta.TransferSyntaxUID == JPEGLosslessSV1  # passed through, never re-encoded
    assert pydicom.dcmread(arrived[files[str(real)]]).PixelData == pydicom.dcmread(real).PixelData
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
        wrong_called = storescu(str(tmp_path / "ct.dcm"), called="NOTUS", port=port)  # allowed caller, wrong AE
        assert wrong_called.returncode != 0 and "Called AE Title Not Recognized" in wrong_called.stderr
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
    size_mb = 256
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
    print(f"peak RSS {peak >> 20} MB, at start {baseline >> 20} MB, object {size_mb} MB")
    received = storescp.received()[0]
    assert received.stat().st_size > size_mb << 20
    # Measured with 200 MB: 94 MB at the peak, 83 MB at start (890 MB when objects were read whole).
    why = f"peak RSS {peak >> 20} MB (at start {baseline >> 20} MB) for a {size_mb} MB object"
    assert peak - baseline < (size_mb << 20) // 10, why
    assert peak < (size_mb << 20) // 2, why


# -- the driver alone, in this process: the answers it gives without a verdict ----------------

@pytest.fixture
def scp_driver(tmp_path, monkeypatch):
    """A started DicomDriver whose verdicts the test gives (or withholds); pynetdicom's
    receiving into files and Python's temporary folder are restored afterwards."""
    import pynetdicom

    monkeypatch.setattr(pynetdicom._config, "STORE_RECV_CHUNKED_DATASET", pynetdicom._config.STORE_RECV_CHUNKED_DATASET)
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)
    drivers = []

    def make(**options) -> DicomDriver:
        base = {"ae_title": GATEWAY_AE, "port": free_port(), "allowed": [{"ae": "CT1"}],
                "state_dir": tmp_path / "state"}
        source = Source(name="modality", type="dicom", options={**base, **options}, destinations=("pacs",))
        driver = make_driver(source, tmp_path / "state")
        driver.start()
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.stop()


def test_the_service_turns_on_receiving_into_files_for_the_dicom_source(scp_driver, tmp_path):
    import pynetdicom

    pynetdicom._config.STORE_RECV_CHUNKED_DATASET = False
    scp_driver()
    assert pynetdicom._config.STORE_RECV_CHUNKED_DATASET is True
    folder = tmp_path / "state" / "receiving"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and tempfile.gettempdir() == str(folder)


def test_no_turn_in_the_pipeline_in_time_answers_out_of_resources(scp_driver, tmp_path):
    write_instance(tmp_path / "ct.dcm", 0)
    driver = scp_driver(answer_timeout=0.5)  # nobody takes its captures
    started = time.monotonic()
    sent = storescu(str(tmp_path / "ct.dcm"), port=driver.settings.port)
    assert sent.returncode != 0 and "Refused: OutOfResources" in sent.stderr
    assert time.monotonic() - started < 10
    assert list((tmp_path / "state" / "receiving").iterdir()) == []


@pytest.mark.parametrize("verdict, expected", [("ack", "Success"), ("defer", "Refused: OutOfResources"),
                                               ("reject", "Error: CannotUnderstand")])
def test_the_answer_is_the_verdict(scp_driver, tmp_path, verdict, expected):
    uid = write_instance(tmp_path / "ct.dcm", 0)
    driver = scp_driver()
    seen = []

    def pipeline(stop: threading.Event):
        for capture in driver.captures(stop):
            data = capture.read()  # the Part-10 file pynetdicom wrote, there until the verdict
            seen.append((capture, pydicom.dcmread(io.BytesIO(data)), stat.S_IMODE(capture.path.stat().st_mode)))
            if verdict == "ack":
                driver.ack(capture, uid)
            elif verdict == "defer":
                driver.defer(capture)
            else:
                driver.reject(capture, "a reason")

    stop = threading.Event()
    worker = threading.Thread(target=pipeline, args=(stop,), daemon=True)
    worker.start()
    try:
        sent = storescu(str(tmp_path / "ct.dcm"), port=driver.settings.port)
    finally:
        stop.set()
        worker.join(5)
    assert f"Received Store Response ({expected})" in sent.stderr
    assert (sent.returncode == 0) is (verdict == "ack")
    ((capture, ds, mode),) = seen
    assert str(ds.SOPInstanceUID) == uid and ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert mode == 0o600
    assert capture.origin.details["calling_ae"] == "CT1" and not capture.path.exists()


def test_stopping_answers_what_waits_at_once(scp_driver, tmp_path):
    write_instance(tmp_path / "ct.dcm", 0)
    driver = scp_driver(answer_timeout=60)
    sender = subprocess.Popen([dcmtk("storescu"), "-v", "-aet", "CT1", "-aec", GATEWAY_AE, "127.0.0.1",
                               str(driver.settings.port), str(tmp_path / "ct.dcm")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_until(lambda: not driver._inbox.empty(), 30, interval=0.02, what="the C-STORE waiting for its turn")
    started = time.monotonic()
    driver.stop()
    output, _ = sender.communicate(timeout=30)
    assert time.monotonic() - started < 10
    assert "Refused: OutOfResources" in output and sender.returncode != 0


# -- configuration -----------------------------------------------------------------------------

CONFIG = """\
destinations:
  - name: pacs
    host: 127.0.0.1
    port: 104
    called_ae: PACS
sources:
  - name: modality
    type: dicom
"""


def config_problems(extra: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG + extra, "gw.yaml")
    return info.value.problems


def test_dicom_source_options_become_settings():
    config = parse_config(CONFIG + "    ae_title: GW\n    port: 11104\n    answer_timeout: 5s\n"
                                   "    allowed: [{ae: CT1, host: 10.0.0.5}, {ae: WS}]\n", "gw.yaml")
    settings = ScpSettings.from_options(config.sources[0].options)
    assert (settings.ae_title, settings.port, settings.host, settings.answer_timeout) == ("GW", 11104, "0.0.0.0", 5.0)
    assert settings.allowed == (Peer("CT1", "10.0.0.5"), Peer("WS"))
    assert settings.allowed[0].admits("CT1", "10.0.0.5") and not settings.allowed[0].admits("CT1", "10.0.0.6")
    assert settings.allowed[1].admits("WS", "192.168.1.2") and not settings.allowed[1].admits("CT1", "192.168.1.2")


@pytest.mark.parametrize("extra, needle", [
    ("    ae_title: GW\n    port: 11104\n", "allowed"),
    ("    ae_title: GW\n    port: 11104\n    allowed: []\n", "needs at least 1 entry"),
    ("    ae_title: GW\n    port: 11104\n    allowed: [{host: 10.0.0.5}]\n", "ae"),
    ("    ae_title: A_TITLE_FAR_TOO_LONG\n    port: 11104\n    allowed: [{ae: CT1}]\n", "ae_title"),
    ("    ae_title: GW\n    port: 0\n    allowed: [{ae: CT1}]\n", "port"),
    ("    ae_title: GW\n    port: 104\n    allowed: [{ae: CT1}]\n    answer_timeout: 0s\n", "answer_timeout"),
    ("    ae_title: GW\n    port: 11112\n    allowed: [{ae: CT1}]\narchive:\n  enabled: true\n",
     "sources[0].port: 11112 is also archive.port"),
])
def test_bad_dicom_source_options_are_named(extra, needle):
    found = config_problems(extra)
    assert any(needle in problem for problem in found), found
