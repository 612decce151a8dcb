"""Files staged by another process (``Staging``, as ``send``'s workers do) and adopted into a
group (``Intake.add_staged``): recorded by the commit without a second fsync, removed when not
needed or when the group fails, and swept at the next opening when their writer died."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pydicom
import pytest

import gateway.delivery.spool as spool_module
from gateway.commands import send
from gateway.delivery.spool import QUEUED, Header, Spool, Staging, encode
from gateway.dicom.normalize import SiteRules
from tests.support.forwarding import delivery_rows
from tests.support.helpers import ct_instance


def _tmp(spool_dir: Path) -> list[Path]:
    return sorted((spool_dir / "tmp").iterdir())


def _fsyncs(monkeypatch) -> list[Path]:
    """The files and directories the spool fsyncs from now on (each still fsynced)."""
    seen: list[Path] = []
    real = spool_module._fsync

    def spy(path: Path, flags: int = 0) -> None:
        seen.append(Path(path))
        real(path, flags)
    monkeypatch.setattr(spool_module, "_fsync", spy)
    return seen


def test_a_staged_file_is_recorded_by_the_commit_without_a_second_fsync(tmp_path, monkeypatch, fsync_only):
    spool = Spool(tmp_path)
    staging = Staging(tmp_path)  # as a worker holds it: no database
    ds, other = ct_instance(20), ct_instance(21)
    staged = staging.write_bytes(str(ds.SOPInstanceUID), encode(ds), sync=True)
    assert staged.synced and staged.size == len(encode(ds)) and staged.path.parent == tmp_path / "tmp"
    assert str(os.getpid()) in staged.path.name.split(".")  # the writer's pid: swept if it dies
    fsynced = _fsyncs(monkeypatch)
    group = spool.intake()
    group.add_staged(staged, Header.of(ds), ["a"], source="send", origin="x.dcm")
    group.add_bytes(encode(other), other, ["a"])
    (other_tmp,) = [p for p in _tmp(tmp_path) if p != staged.path]
    assert delivery_rows(tmp_path) == []  # adopted, not recorded
    added = group.commit()
    assert [a.queued for a in added] == [("a",), ("a",)]
    assert staged.path not in fsynced and other_tmp in fsynced  # only the unsynced one is fsynced now
    assert {r[0] for r in delivery_rows(tmp_path)} == {str(ds.SOPInstanceUID), str(other.SOPInstanceUID)}
    assert {r[2] for r in delivery_rows(tmp_path)} == {QUEUED}
    read = {str(pydicom.dcmread(p).SOPInstanceUID) for p in spool.files_on_disk()}
    assert read == {str(ds.SOPInstanceUID), str(other.SOPInstanceUID)}
    (row,) = spool.rows("a", uids=[str(ds.SOPInstanceUID)])
    assert row["size"] == staged.size and row["origin"] == "x.dcm" and row["source"] == "send"
    assert _tmp(tmp_path) == []
    spool.close()


def test_a_staged_file_every_destination_has_is_removed(tmp_path):
    spool = Spool(tmp_path)
    ds = ct_instance(22)
    spool.add(ds, ["a"])
    (kept,) = spool.files_on_disk()
    staged = Staging(tmp_path).write_bytes(str(ds.SOPInstanceUID), encode(ds), sync=True)
    group = spool.intake()
    group.add_staged(staged, Header.of(ds), ["a"])
    (added,) = group.commit()
    assert added.queued == ()  # nothing sent twice
    assert not staged.path.exists() and _tmp(tmp_path) == []
    assert spool.files_on_disk() == [kept] and len(delivery_rows(tmp_path)) == 1
    spool.close()


def test_a_discarded_group_of_staged_files_leaves_none(tmp_path):
    spool = Spool(tmp_path)
    staging = Staging(tmp_path)
    group = spool.intake()
    for index in (23, 24):
        ds = ct_instance(index)
        group.add_staged(staging.write_bytes(str(ds.SOPInstanceUID), encode(ds)), Header.of(ds), ["a"])
    assert len(_tmp(tmp_path)) == 2
    group.discard()
    assert _tmp(tmp_path) == [] and delivery_rows(tmp_path) == [] and spool.files_on_disk() == []
    spool.close()


def test_a_group_of_staged_files_that_fails_at_commit_records_nothing_and_leaves_no_file(tmp_path):
    spool = Spool(tmp_path)
    staging = Staging(tmp_path)
    for name in (f"{i:02x}" for i in range(256)):  # no file can be put in place: files stand in the way
        (tmp_path / "files" / name).write_bytes(b"in the way")
    group = spool.intake()
    for index in (25, 26, 27):
        ds = ct_instance(index)
        group.add_staged(staging.write_bytes(str(ds.SOPInstanceUID), encode(ds), sync=True), Header.of(ds), ["a"])
    with pytest.raises(OSError):
        group.commit()
    assert delivery_rows(tmp_path) == [] and _tmp(tmp_path) == [] and spool.files_on_disk() == []
    spool.close()


def _stage_then_die(spool_dir: Path, source: Path, ready) -> None:
    """A ``send`` worker that converts and stages one file, then is killed before it can
    hand the record back."""
    send._use(send._Setup(SiteRules(), None, Staging(spool_dir)))
    prepared = send.prepare_path(source)
    assert prepared.staged is not None and prepared.staged.path.exists()
    ready.send(str(prepared.staged.path))  # a pipe: written before the kill, unlike a queue's feeder
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_after_staging_leaves_nothing_recorded_and_its_file_is_swept(tmp_path):
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir)
    source = tmp_path / "in.dcm"
    ct_instance(28).save_as(source, enforce_file_format=True)
    context = multiprocessing.get_context("fork")
    receive, ready = context.Pipe(duplex=False)
    worker = context.Process(target=_stage_then_die, args=(spool_dir, source, ready))
    worker.start()
    assert receive.poll(60)
    staged = Path(receive.recv())
    worker.join(60)
    assert worker.exitcode == -signal.SIGKILL
    assert _tmp(spool_dir) == [staged] and f".{worker.pid}." in staged.name
    assert delivery_rows(spool_dir) == [] and spool.files_on_disk() == []
    spool.close()
    Spool(spool_dir).close()  # the next opening sweeps what a dead writer left
    assert _tmp(spool_dir) == []
    assert delivery_rows(spool_dir) == []
