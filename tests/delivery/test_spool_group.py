"""Group commit: many instances staged, then made durable by one commit (``Spool.intake``,
``Pipeline.batch``); nothing acknowledged before it, nothing of a failed group left behind."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import pydicom
import pytest

from gateway.capture import Capture, Origin
from gateway.delivery import flush
from gateway.delivery.spool import QUEUED, Spool, encode
from gateway.dicom.normalize import SiteRules
from gateway.pipeline import Pipeline
from tests.support.disk import require_syncfs
from tests.support.forwarding import delivery_rows
from tests.support.helpers import ct_instance


def _commits(spool: Spool) -> list[str]:
    """The spool connection's COMMIT statements from now on, as SQLite traces them."""
    seen: list[str] = []
    spool._db.set_trace_callback(lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None)
    return seen


def test_a_group_is_staged_unrecorded_then_recorded_in_one_commit(tmp_path):
    spool = Spool(tmp_path)
    commits = _commits(spool)
    group = spool.intake()
    datasets = [ct_instance(i) for i in range(10)]
    for ds in datasets:
        group.add_bytes(encode(ds), ds, ["a", "b"], source="test", origin="test:x")
    assert len(group) == 10 and group.nbytes > 0
    assert delivery_rows(tmp_path) == [] and spool.files_on_disk() == []  # staged only: nothing durable yet
    assert len(list((tmp_path / "tmp").iterdir())) == 10
    added = group.commit()
    assert [a.sop_instance_uid for a in added] == [str(ds.SOPInstanceUID) for ds in datasets]
    assert all(a.queued == ("a", "b") for a in added)
    assert len(commits) == 1
    assert len(delivery_rows(tmp_path)) == 20 and {r[2] for r in delivery_rows(tmp_path)} == {QUEUED}
    on_disk = {pydicom.dcmread(p).SOPInstanceUID for p in spool.files_on_disk()}
    assert on_disk == {ds.SOPInstanceUID for ds in datasets}
    assert list((tmp_path / "tmp").iterdir()) == []
    spool.close()


def test_the_same_instance_twice_in_a_group_behaves_as_in_turn(tmp_path):
    spool = Spool(tmp_path)
    group = spool.intake()
    ds = ct_instance(1)
    group.add_bytes(encode(ds), ds, ["a"])
    group.add_bytes(encode(ds), ds, ["a"])  # the same object again: nothing sent twice
    changed = ct_instance(2)
    group.add_bytes(encode(changed), changed, ["a"])
    changed.SeriesDescription = "corrected"
    group.add_bytes(encode(changed), changed, ["a"])  # changed under the same UID: the last one wins
    first, again, old, new = group.commit()
    assert first.queued == ("a",) and again.queued == ()
    assert old.queued == ("a",) and new.queued == ("a",)
    files = spool.files_on_disk()
    assert len(files) == 2  # the replaced file of the group is gone
    read = {str(f.SOPInstanceUID): f for f in map(pydicom.dcmread, files)}
    assert read[str(changed.SOPInstanceUID)].SeriesDescription == "corrected"
    assert len(delivery_rows(tmp_path)) == 2
    assert list((tmp_path / "tmp").iterdir()) == []
    spool.close()


def test_an_instance_every_destination_has_is_not_written_again(tmp_path):
    spool = Spool(tmp_path)
    ds = ct_instance(3)
    spool.add(ds, ["a"])
    (path,) = spool.files_on_disk()
    group = spool.intake()
    group.add_bytes(encode(ds), ds, ["a"])
    assert group.nbytes == 0 and list((tmp_path / "tmp").iterdir()) == []  # nothing staged
    (added,) = group.commit()
    assert added.queued == () and spool.files_on_disk() == [path]


def test_a_changed_object_in_a_group_replaces_the_old_file(tmp_path):
    spool = Spool(tmp_path)
    ds = ct_instance(4)
    spool.add(ds, ["a"])
    (old,) = spool.files_on_disk()
    (item,) = spool.claim("a", 10)
    spool.delivered(item, "0x0000")
    ds.SeriesDescription = "corrected"
    other = ct_instance(5)
    group = spool.intake()
    group.add_bytes(encode(ds), ds, ["a"])
    group.add_bytes(encode(other), other, ["a"])
    assert [a.queued for a in group.commit()] == [("a",), ("a",)]
    files = spool.files_on_disk()
    assert old not in files and len(files) == 2
    (item, _) = sorted(spool.claim("a", 10), key=lambda i: i.sop_instance_uid != str(ds.SOPInstanceUID))
    assert pydicom.dcmread(item.path).SeriesDescription == "corrected"


def test_a_group_that_fails_in_its_commit_records_nothing_and_leaves_no_file(tmp_path):
    spool = Spool(tmp_path)
    first, second = ct_instance(6), ct_instance(7)
    # A group's files share the folder named by its first file's digest. The second file's
    # place there is taken by a folder, so its rename fails after the first file's was done.
    folder = tmp_path / "files" / hashlib.sha256(encode(first)).hexdigest()[:2]
    obstacle = folder / f"{second.SOPInstanceUID}.{hashlib.sha256(encode(second)).hexdigest()[:8]}.dcm"
    (obstacle / "in the way").mkdir(parents=True)
    group = spool.intake()
    group.add_bytes(encode(first), first, ["a"])
    group.add_bytes(encode(second), second, ["a"])
    with pytest.raises(OSError):
        group.commit()
    assert delivery_rows(tmp_path) == []
    assert spool.files_on_disk() == [obstacle] and list((tmp_path / "tmp").iterdir()) == []  # the first file's is gone
    assert len(group) == 0
    shutil.rmtree(obstacle)
    assert spool.add(first, ["a"]).queued == ("a",)  # and the spool goes on


def _fsynced(monkeypatch) -> list[Path]:
    """What this process fsyncs from now on (SQLite's own fsyncs are not Python's)."""
    seen: list[Path] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        seen.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def test_a_group_shares_one_folder_and_fsyncs_it_once(tmp_path, monkeypatch, fsync_only):
    """One directory fsync per group, not one per file (which made the commit, not the
    conversion, the pace of ``send``); and the new folder's own entry is made durable too."""
    spool = Spool(tmp_path)
    synced = _fsynced(monkeypatch)
    group = spool.intake()
    instances = [ct_instance(i) for i in range(20, 36)]
    for ds in instances:
        group.add_bytes(encode(ds), ds, ["a"])
    group.commit()
    folders = {p.parent for p in spool.files_on_disk()}
    assert len(folders) == 1 and len(spool.files_on_disk()) == len(instances)
    (folder,) = folders
    directories = [p for p in synced if p.is_dir()]
    assert directories.count(folder) == 1 and directories.count(tmp_path / "files") == 1


def _syncfs_calls(monkeypatch, fail_at: int | None = None) -> list[tuple[int, int]]:
    """Each ``syncfs`` of a spool from now on, as (files in place under files/, delivery rows
    another connection sees) at that moment; the call numbered ``fail_at`` fails with EIO."""
    seen: list[tuple[int, int]] = []
    real = flush.FileSystemSync.__call__

    def call(self) -> None:
        spool_dir = Path(os.readlink(f"/proc/self/fd/{self._fd}"))
        seen.append((len(list((spool_dir / "files").rglob("*.dcm"))), len(delivery_rows(spool_dir))))
        if len(seen) == fail_at:
            raise OSError(5, "syncfs of the spool's file system: Input/output error")
        real(self)

    monkeypatch.setattr(flush.FileSystemSync, "__call__", call)
    return seen


def test_with_syncfs_a_group_takes_two_flushes_and_no_fsync(tmp_path, monkeypatch):
    """Where ``syncfs`` is sound, a group of 16 costs two flushes, not 17 fsyncs: one for the
    staged files' data before the renames, one after them and before the rows are committed."""
    require_syncfs(tmp_path)
    spool = Spool(tmp_path)
    fsynced, calls = _fsynced(monkeypatch), _syncfs_calls(monkeypatch)
    group = spool.intake()
    instances = [ct_instance(i) for i in range(40, 56)]
    for ds in instances:
        group.add_bytes(encode(ds), ds, ["a"])
    group.commit()
    assert calls == [(0, 0), (16, 0)]  # files still in tmp/; then all in place, no row committed yet
    assert fsynced == [] and len(delivery_rows(tmp_path)) == 16
    staged = spool.staging.write_bytes("1.2.3", b"x", sync=True)  # a worker's: the commit flushes it
    assert not staged.synced and fsynced == []
    staged.remove()
    spool.close()


@pytest.mark.parametrize("fail_at", [1, 2])
def test_a_failed_syncfs_records_nothing_and_leaves_no_file(tmp_path, monkeypatch, fail_at):
    """A writeback error reported by either ``syncfs`` (before the renames, or after them)
    fails the group: no row, no file in place or staged; the next group goes in."""
    require_syncfs(tmp_path)
    spool = Spool(tmp_path)
    calls = _syncfs_calls(monkeypatch, fail_at=fail_at)
    group = spool.intake()
    for ds in (ct_instance(i) for i in range(60, 64)):
        group.add_bytes(encode(ds), ds, ["a"])
    with pytest.raises(OSError, match="Input/output error"):
        group.commit()
    assert len(calls) == fail_at
    assert delivery_rows(tmp_path) == [] and spool.files_on_disk() == []
    assert list((tmp_path / "tmp").iterdir()) == []
    assert spool.add(ct_instance(64), ["a"]).queued == ("a",)
    assert len(delivery_rows(tmp_path)) == 1 and len(spool.files_on_disk()) == 1
    spool.close()


class DurableSink:
    """A driver's verdicts; at each ack it checks, as another process would, that the instance
    is durable: its rows committed (a fresh connection) and its file in place."""

    def __init__(self, spool_dir: Path):
        self.spool_dir = spool_dir
        self.acked: list[str] = []
        self.rejected: list[str] = []
        self.problems: list[str] = []

    def ack(self, capture: Capture, sop_instance_uid: str) -> None:
        db = sqlite3.connect(self.spool_dir / "spool.db")
        try:
            row = db.execute("SELECT path FROM instances WHERE sop_instance_uid=?", (sop_instance_uid,)).fetchone()
            queued = db.execute("SELECT COUNT(*) FROM deliveries WHERE sop_instance_uid=?",
                                (sop_instance_uid,)).fetchone()[0]
        finally:
            db.close()
        if row is None or not queued:
            self.problems.append(f"{capture.origin.location}: acknowledged without its rows")
        elif not (self.spool_dir / row[0]).is_file():
            self.problems.append(f"{capture.origin.location}: acknowledged without its file")
        self.acked.append(capture.origin.location)

    def reject(self, capture: Capture, reason: str) -> None:
        self.rejected.append(capture.origin.location)


def _capture(index: int) -> Capture:
    return Capture(encode(ct_instance(index)), Origin("export", f"slice{index}.dcm"))


def test_a_batch_rejects_at_once_and_acks_each_only_after_its_commit(tmp_path):
    spool = Spool(tmp_path)
    spooled: list[tuple[tuple[str, ...], int]] = []
    pipeline = Pipeline(spool, SiteRules(), on_spooled=lambda dests, count: spooled.append((dests, count)))
    sink = DurableSink(tmp_path)
    batch = pipeline.batch(sink, bare=True)
    for capture in (_capture(10), Capture(b"not an image at all", Origin("export", "junk.bin")), _capture(11)):
        batch.add(capture, ("pacs",))
    assert sink.rejected == ["junk.bin"] and sink.acked == []  # the rejection needs no commit
    assert len(batch) == 2 and delivery_rows(tmp_path) == []
    assert [c.data for c in batch.captures] == [b"", b""]  # a bare batch holds no capture's bytes
    done = batch.commit()
    assert sink.acked == ["slice10.dcm", "slice11.dcm"] and sink.problems == []
    assert [r.accepted for _, r in done.results] == [True, True] and done.unacked == []
    assert spooled == [(("pacs",), 2)]  # delivery is woken once for the group, told how many
    assert len(delivery_rows(tmp_path)) == 2
    assert batch.commit().results == []  # the batch is empty after its commit


def test_handle_is_a_group_of_one_acked_after_its_commit(tmp_path):
    spool = Spool(tmp_path)
    commits = _commits(spool)
    sink = DurableSink(tmp_path)
    result = Pipeline(spool, SiteRules()).handle(_capture(12), sink, ("pacs",))
    assert result.accepted and result.dataset is not None
    assert sink.acked == ["slice12.dcm"] and sink.problems == [] and len(commits) == 1
