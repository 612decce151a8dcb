"""The ``type: tape`` source: waits for a tape, reads it once, rewinds and ejects it."""

from __future__ import annotations

import io
import os
import threading

import pydicom

from drivers.tape import device as td
from drivers.tape.source import TapeDriver
from gateway.config import parse_config
from gateway.delivery.spool import Spool, encode
from gateway.dicom.normalize import SiteRules
from gateway.pipeline import Pipeline
from tests.support.daemon import Daemon, wait_until
from tests.support.helpers import ct_instance
from tests.support.tape_bytes import as_records, simh_tape
from tests.support.tape_drive import FM, StDouble


def uid(blob: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(blob), force=True).SOPInstanceUID)


class Runner:
    """What the service's SourceRunner does, in a thread: captures through a real pipeline."""

    def __init__(self, driver: TapeDriver, spool: Spool):
        self.driver, self.stop = driver, threading.Event()
        self.pipeline = Pipeline(spool, SiteRules())
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        self.driver.start()
        for capture in self.driver.captures(self.stop):
            self.pipeline.handle(capture, self.driver, ("pacs",))
        self.driver.stop()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def spooled(spool: Spool) -> list[str]:
    return [row["sop_instance_uid"] for row in spool.deliveries()]


def test_image_source_reads_each_tape_once_and_takes_the_next(tmp_path):
    first = [encode(ct_instance(i, rows=32, columns=32)) for i in range(3)]
    second = [encode(ct_instance(100 + i, rows=32, columns=32)) for i in range(2)]
    tape = tmp_path / "drop" / "tape.tap"
    tape.parent.mkdir()
    tape.write_bytes(simh_tape([as_records(b, 1024) for b in first]))
    spool = Spool(tmp_path / "spool", durable=False)
    driver = TapeDriver("loader", str(tape), state_dir=tmp_path / "state", poll_interval=0.05)
    with Runner(driver, spool):
        wait_until(lambda: len(spooled(spool)) == 3, 20, what="first tape spooled")
        stop_at = threading.Event()
        stop_at.wait(0.5)  # a few polls: the finished tape is not read again
        assert sorted(spooled(spool)) == sorted(uid(b) for b in first)
        tmp = tape.with_suffix(".new")
        tmp.write_bytes(simh_tape([as_records(b, 1024) for b in second]))
        os.replace(tmp, tape)
        wait_until(lambda: len(spooled(spool)) == 5, 20, what="second tape spooled")
    assert sorted(spooled(spool)) == sorted(uid(b) for b in first + second)
    journals = sorted((tmp_path / "state" / "tape").glob("*.jsonl"))
    assert len(journals) == 2  # one per tape, by fingerprint


class DriveDouble(TapeDriver):
    """The driver with st's semantics played by ``StDouble``; the cartridge leaves on MTOFFL."""

    def __init__(self, tape, **kw):
        super().__init__("drive", "/dev/nst-double", format="device", **kw)
        self.double = StDouble(tape)
        self.opened = 0

    def _is_drive(self) -> bool:
        return True

    def _loaded(self):
        return None if (td.MTOFFL, 1) in self.double.ops else "loaded"

    def open_reader(self):
        self.opened += 1
        self.double.pos = self.double.fileno = self.double.blkno = 0
        return self.double


def test_drive_source_rewinds_and_ejects_when_done(tmp_path):
    blobs = [encode(ct_instance(200 + i, rows=32, columns=32)) for i in range(2)]
    tape = [b"GE HEADER FILE".ljust(512, b"\0"), FM]
    for b in blobs:
        tape += as_records(b, 2048) + [FM]
    tape.append(FM)
    spool = Spool(tmp_path / "spool", durable=False)
    driver = DriveDouble(tape, state_dir=tmp_path / "state", poll_interval=0.05)
    with Runner(driver, spool):
        wait_until(lambda: (td.MTOFFL, 1) in driver.double.ops, 20, what="the tape ejected")
    assert sorted(spooled(spool)) == sorted(uid(b) for b in blobs)
    ops = [op for op, _ in driver.double.ops]
    assert ops.index(td.MTREW) < ops.index(td.MTOFFL) and ops[-1] == td.MTOFFL
    assert driver.opened == 1


def test_drive_source_without_eject_does_not_read_the_same_tape_again(tmp_path):
    blob = encode(ct_instance(300, rows=32, columns=32))
    spool = Spool(tmp_path / "spool", durable=False)
    driver = DriveDouble([*as_records(blob, 2048), FM, FM], state_dir=tmp_path / "state", poll_interval=0.02,
                         eject=False)
    with Runner(driver, spool):
        wait_until(lambda: len(spooled(spool)) == 1, 20, what="spooled")
        threading.Event().wait(0.3)
    assert driver.opened == 1 and (td.MTOFFL, 1) not in driver.double.ops


def test_tape_source_options_are_validated():
    base = ("destinations:\n  - {name: p, host: h, port: 104, called_ae: PACS}\nsources:\n"
            "  - name: t\n    type: tape\n")
    cfg = parse_config(base + "    device: /dev/nst0\n    on_error: stop\n    poll_interval: 2s\n")
    assert cfg.sources[0].options["on_error"] == "stop" and cfg.sources[0].options["poll_interval"] == 2.0
    assert cfg.sources[0].options["eject"] is True
    try:
        parse_config(base + "    on_error: shrug\n    rewind: yes\n")
    except Exception as exc:  # noqa: BLE001
        text = str(exc)
    assert "sources[0].device: is required" in text
    assert "sources[0].on_error: must be one of skip, stop, not 'shrug'" in text
    assert "sources[0].rewind: unknown key" in text


def test_service_reads_a_tape_source_into_orthanc(tmp_path, orthanc):
    blobs = [encode(ct_instance(400 + i, rows=32, columns=32)) for i in range(4)]
    tape = tmp_path / "tape.aws"
    from tests.support.tape_bytes import aws_tape
    tape.write_bytes(aws_tape([as_records(b, 4096) for b in blobs]))
    config = tmp_path / "gw.yaml"
    config.write_text(
        f"gateway:\n  spool_dir: {tmp_path / 'spool'}\n  state_dir: {tmp_path / 'state'}\n"
        f"destinations:\n  - name: orthanc\n    host: 127.0.0.1\n    port: {orthanc.dicom_port}\n"
        "    called_ae: ORTHANC\nsources:\n  - name: tapes\n    type: tape\n"
        f"    device: {tape}\n    poll_interval: 100ms\narchive:\n  enabled: false\n")
    daemon = Daemon(config, tmp_path).start()
    try:
        wait_until(lambda: len(orthanc.sop_instance_uids()) == 4, 60, what="instances in Orthanc")
    finally:
        assert daemon.stop() == 0
    assert sorted(orthanc.sop_instance_uids()) == sorted(uid(b) for b in blobs)
    assert (tmp_path / "state" / "tape").is_dir()
    assert "event=tape_done" in daemon.log_text()


class CheckedTapeDriver(TapeDriver):
    """The real tape source, which checks at each ack that the instance is durable already (its
    row committed, as another process sees it, and its file in place) before the journal moves."""

    def __init__(self, *args, spool_dir, **kw):
        super().__init__(*args, **kw)
        self.spool_dir = spool_dir
        self.problems: list[str] = []
        self.acked = 0

    def ack(self, capture, sop_instance_uid: str) -> None:
        import sqlite3

        db = sqlite3.connect(self.spool_dir / "spool.db")
        try:
            row = db.execute("SELECT path FROM instances WHERE sop_instance_uid=?", (sop_instance_uid,)).fetchone()
        finally:
            db.close()
        if row is None or not (self.spool_dir / row[0]).is_file():
            self.problems.append(f"{capture.origin.location} acknowledged before it was durable")
        self.acked += 1
        super().ack(capture, sop_instance_uid)


def test_service_tape_source_spools_in_groups_and_offers_a_failed_group_again(tmp_path, caplog):
    """Under the service's SourceRunner: a commit per group, not per image; a group whose commit
    fails (the spool's files/ is a file for a while) is offered again from memory and taken,
    each image once, the journal in tape order."""
    import json
    import shutil

    from gateway.config import Source
    from gateway.pipeline import GROUP_COUNT
    from gateway.service.daemon import SourceRunner

    blobs = [encode(ct_instance(500 + i, rows=32, columns=32)) for i in range(150)]
    tape = tmp_path / "tape.tap"
    tape.write_bytes(simh_tape([as_records(b, 1024) for b in blobs]))
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir)
    commits: list[str] = []
    spool._db.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    shutil.rmtree(spool_dir / "files")
    (spool_dir / "files").write_bytes(b"")  # every group's commit fails until it is a folder again
    source = Source("loader", "tape", {"device": str(tape)}, ("pacs",))
    runner = SourceRunner(source, Pipeline(spool, SiteRules()), state_dir=tmp_path / "state")
    runner.driver = driver = CheckedTapeDriver("loader", str(tape), state_dir=tmp_path / "state",
                                               poll_interval=0.05, spool_dir=spool_dir)
    runner.start_driver()
    runner.start()
    try:
        wait_until(lambda: runner.failures >= 1, 30, 0.01, what="the first group's commit failing")
        assert driver.acked == 0 and commits == []
        (spool_dir / "files").unlink()
        (spool_dir / "files").mkdir()
        wait_until(lambda: driver.acked == len(blobs), 60, what="every image acknowledged")
    finally:
        runner.stop()
        runner.join(30)
    assert driver.problems == []
    assert f"tape file 0 records 0-3 and {GROUP_COUNT - 1} more" in caplog.text  # a whole group deferred
    assert sorted(spooled(spool)) == sorted(uid(b) for b in blobs)
    assert -(-len(blobs) // GROUP_COUNT) <= len(commits) <= -(-len(blobs) // GROUP_COUNT) + 1, len(commits)
    journal, = (tmp_path / "state" / "tape").glob("*.jsonl")
    entries = [e for e in map(json.loads, journal.read_text().splitlines()) if "file" in e]
    assert [(e["file"], e["status"], e["sop"]) for e in entries] == [
        (n, "done", uid(b)) for n, b in enumerate(blobs)]
    spool.close()
