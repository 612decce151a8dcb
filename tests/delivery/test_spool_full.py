"""A full disk never wedges delivery: intake pauses at the floor (sources are not
acknowledged), delivery still records outcomes and frees space, intake resumes by itself.

On a real small file system: a 16 MB tmpfs mounted by the fixture (the tests run as root
here). Where mounting is not permitted they are skipped, saying so.
"""

from __future__ import annotations

import logging
import os
import subprocess

import pytest
from prometheus_client import generate_latest

from gateway.capture import Capture, Origin
from gateway.console.snapshot import intake
from gateway.delivery.metrics import Metrics
from gateway.delivery.space import MB, Floor
from gateway.delivery.spool import Spool, Staging, encode
from gateway.dicom.normalize import SiteRules
from gateway.errors import IntakePaused
from gateway.pipeline import Pipeline
from tests.support.disk import fill
from tests.support.forwarding import destination, forwarding, wait_until
from tests.support.instances import ct_instance
from tests.support.peers import StoreSCP


class Sink:
    """A driver's verdicts, as a source would hear them."""

    def __init__(self):
        self.acked: list[str] = []
        self.rejected: list[str] = []

    def ack(self, capture: Capture, sop_instance_uid: str) -> None:
        self.acked.append(capture.origin.location)

    def reject(self, capture: Capture, reason: str) -> None:
        self.rejected.append(capture.origin.location)


def _capture(index: int) -> Capture:
    """A 512 x 512 CT slice (~0.5 MB) as a DICOM file arriving at a source."""
    return Capture(encode(ct_instance(index, size=512)), Origin("export", f"slice{index}.dcm"))


def test_full_disk_pauses_intake_while_delivery_frees_space_then_intake_resumes(small_fs, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    spool = Spool(small_fs / "spool", floor=Floor(mb=4, percent=50))  # 4 MB of 16
    sink = Sink()
    pipeline = Pipeline(spool, SiteRules())
    accepted = 0
    paused_at = None
    for index in range(100):
        try:
            pipeline.handle(_capture(index), sink, ("pacs",))
        except IntakePaused as exc:
            paused_at = index
            assert "floor" in exc.reason
            break
        accepted += 1
    assert paused_at is not None and accepted >= 10
    assert len(sink.acked) == accepted and not sink.rejected  # the paused capture: no verdict at all
    assert spool.space.room().free >= 4 * MB - 600_000  # stopped at the floor, not at the wall
    assert spool.intake_paused

    # Something else takes the rest of the disk, down to the last byte.
    fill(small_fs / "hog")
    assert os.statvfs(small_fs).f_bavail < 2
    with pytest.raises(IntakePaused):
        pipeline.handle(_capture(paused_at), sink, ("pacs",))
    assert list((small_fs / "spool" / "tmp").iterdir()) == []  # no partial file left behind
    assert len(sink.acked) == accepted
    # status and the metrics say so, and why
    state = intake(spool)
    assert state["paused"] and state["reason"].startswith("0.0 MB free on the spool's file system, floor 4.0 MB")
    metrics = Metrics()
    metrics.spool = spool
    scraped = generate_latest(metrics.registry).decode()
    assert "legacy_gateway_intake_paused 1.0" in scraped
    assert "legacy_gateway_spool_floor_bytes 4.194304e+06" in scraped

    # Delivery to a real storescp still records its outcomes and frees the spool files.
    pacs = StoreSCP(tmp_path / "storescp").start()
    try:
        with forwarding(spool, [destination("pacs", pacs.port, called_ae="STORESCP")]):
            assert wait_until(lambda: spool.pending("pacs") == 0, 60), spool.status()
            assert wait_until(lambda: spool.files_on_disk() == [], 10)
    finally:
        pacs.stop()
    assert len(pacs.received()) == accepted
    assert spool.space.room().free > 4 * MB

    # Intake resumes by itself: the capture refused twice is taken now.
    pipeline.handle(_capture(paused_at), sink, ("pacs",))
    assert len(sink.acked) == accepted + 1
    assert spool.intake_paused is None
    assert not intake(spool)["paused"]
    assert "legacy_gateway_intake_paused 0.0" in generate_latest(metrics.registry).decode()

    events = [r.getMessage() for r in caplog.records]
    assert sum("event=intake_paused" in m for m in events) == 1  # said once, not per capture
    assert any("event=intake_resumed" in m for m in events)
    assert any("event=reserve_released" in m for m in events)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]
    spool.close()


def test_partial_temp_files_of_dead_writers_are_removed_at_start(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.close()
    dead = _dead_pid()
    stale = tmp_path / "spool" / "tmp" / f"1.2.3.abcdef12.dcm.{dead}.1.tmp"
    stale.write_bytes(b"partial")
    live = tmp_path / "spool" / "tmp" / f"1.2.4.abcdef12.dcm.{os.getppid()}.1.tmp"
    live.write_bytes(b"being written")
    Spool(tmp_path / "spool").close()
    assert not stale.exists()
    assert live.exists()  # a live writer's file is its own


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_group_whose_commit_meets_a_full_disk_acks_none_and_keeps_every_source(small_fs, tmp_path):
    """Staged while there was room; another writer takes the rest before the commit: the whole
    group is refused, each file stays in the export folder, and nothing is left in the spool."""
    from drivers.folder import FolderDriver

    incoming = tmp_path / "in"
    incoming.mkdir()
    for index in range(5):
        (incoming / f"slice{index}.dcm").write_bytes(_capture(index).data)
    spool = Spool(small_fs / "spool", floor=Floor(mb=4, percent=50))
    folder = FolderDriver("export", incoming, settle_time=0.1, poll_interval=0.05)
    folder.start()
    stop = __import__("threading").Event()
    looks = folder.captures(stop)
    batch = Pipeline(spool, SiteRules()).batch(folder, bare=True)

    def stage_one_look() -> None:
        while len(batch) < 5:
            capture = next(looks)
            if capture is not None:
                assert batch.add(capture, ("pacs",)) is None
            elif len(batch):
                break
    try:
        stage_one_look()
        assert len(batch) == 5
        fill(small_fs / "hog")
        waiting = batch.captures
        with pytest.raises(IntakePaused):
            batch.commit()
        assert sorted(p.name for p in incoming.glob("*.dcm")) == [f"slice{i}.dcm" for i in range(5)]
        assert not (incoming / "done").exists()  # acked none
        assert spool.files_on_disk() == [] and list((small_fs / "spool" / "tmp").iterdir()) == []
        assert spool.pending() == 0 and spool.intake_paused

        # Room again: the deferred captures are offered again and taken.
        (small_fs / "hog").unlink()
        for capture in waiting:
            folder.defer(capture)
        stage_one_look()
        assert len(batch) == 5
        done = batch.commit()
        assert len(done.results) == 5 and not done.unacked
        assert sorted(p.name for p in (incoming / "done").iterdir()) == [f"slice{i}.dcm" for i in range(5)]
        assert spool.pending() == 5 and spool.intake_paused is None
    finally:
        stop.set()
        looks.close()
        folder.stop()
        spool.close()


def test_a_worker_checks_the_floor_before_it_stages_and_leaves_the_spool_state_alone(small_fs):
    """``Staging.check`` (what a ``send`` worker asks before it writes) refuses what would
    cross the floor, as ``admit`` does, but pauses nothing and makes no reserve: those belong to
    the process that holds the spool, which checks again when it commits."""
    floor = Floor(mb=4, percent=50)
    spool = Spool(small_fs / "spool", floor=floor)
    staging = Staging(small_fs / "spool", floor=floor)
    free = spool.space.room().free
    staging.check(MB)
    with pytest.raises(IntakePaused, match="intake paused"):
        staging.check(free - 3 * MB)  # would leave less than the 4 MB floor
    assert spool.intake_paused is None and not spool.space.reserve.exists()
    with pytest.raises(IntakePaused):
        spool.space.admit(free - 3 * MB)  # the spool's own check pauses its intake
    assert spool.intake_paused is not None
    spool.close()
