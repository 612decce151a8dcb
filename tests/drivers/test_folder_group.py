"""The folder source spools what is ready at once as groups (one commit each), acknowledges each
file only after its group's commit, and a SIGKILL inside a group's commit loses nothing.

Real parts: the real ``FolderDriver`` with its inotify observer, the service's ``SourceRunner``,
the real spool; the crash is a real SIGKILL of a child process that runs them.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pydicom

from drivers.folder import FolderDriver
from gateway.capture import Capture
from gateway.config import Source
from gateway.delivery.spool import Spool, encode
from gateway.dicom.normalize import SiteRules
from gateway.pipeline import Pipeline
from gateway.service.daemon import GROUP_COUNT, SourceRunner
from tests.support.helpers import ct_instance

ROOT = Path(__file__).resolve().parents[2]


def _drop(folder: Path, count: int, first: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(first, first + count):
        (folder / f"ct{index:04d}.dcm").write_bytes(encode(ct_instance(index)))


def _spooled(spool_dir: Path) -> dict[str, str]:
    """instance UID: file, as committed (a fresh connection, as another process sees it)."""
    db = sqlite3.connect(spool_dir / "spool.db")
    try:
        return dict(db.execute("""SELECT i.sop_instance_uid, i.path FROM instances i
                                  WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.sop_instance_uid=i.sop_instance_uid)
                                  AND i.path IS NOT NULL"""))
    finally:
        db.close()


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class CheckedFolder(FolderDriver):
    """The real folder driver, which checks at each ack that the instance is durable already
    (its rows committed, its file in place) before it lets the file go to done/."""

    def __init__(self, *args, spool_dir: Path, **kw):
        super().__init__(*args, **kw)
        self.spool_dir = spool_dir
        self.problems: list[str] = []
        self.acked = 0

    def ack(self, capture: Capture, sop_instance_uid: str) -> None:
        path = _spooled(self.spool_dir).get(sop_instance_uid)
        if path is None or not (self.spool_dir / path).is_file():
            self.problems.append(f"{capture.origin.location} acknowledged before it was durable")
        self.acked += 1
        super().ack(capture, sop_instance_uid)


def test_200_files_dropped_at_once_are_spooled_in_few_commits_each_acked_after_its_own(tmp_path):
    incoming, spool_dir = tmp_path / "in", tmp_path / "spool"
    _drop(incoming, 200)
    spool = Spool(spool_dir)
    commits: list[str] = []
    spool._db.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    source = Source("export", "folder", {"path": str(incoming)}, ("pacs",))
    runner = SourceRunner(source, Pipeline(spool, SiteRules()))
    runner.driver = driver = CheckedFolder("export", incoming, settle_time=0.3, poll_interval=0.05,
                                           spool_dir=spool_dir)
    runner.start_driver()
    runner.start()
    try:
        assert _wait(lambda: driver.acked == 200, 60), f"{driver.acked} of 200 acknowledged"
    finally:
        runner.stop()
        runner.join(30)
        runner.release()
    assert driver.problems == []
    assert len(list((incoming / "done").glob("*.dcm"))) == 200 and not list(incoming.glob("*.dcm"))
    assert len(_spooled(spool_dir)) == 200 and spool.pending() == 200
    # 200 files ready at one look: groups of at most GROUP_COUNT (more commits only if the
    # observer saw them settle at different looks), never one commit per file.
    assert -(-200 // GROUP_COUNT) <= len(commits) < 200 // 4, len(commits)
    spool.close()


_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path

    import gateway.delivery.spool as spool_module
    from gateway.config import Source
    from gateway.dicom.normalize import SiteRules
    from gateway.pipeline import Pipeline
    from gateway.service.daemon import SourceRunner

    incoming, spool_dir, marker, kill_at = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    commits = [0]
    real_commit, real_flush = spool_module.Spool._commit, spool_module.Spool._flush

    def counted_commit(self, entries):
        commits[0] += 1
        return real_commit(self, entries)

    def flush_then_wait(self, folder):
        # Group ``kill_at``: its files durable and renamed into place, their folder's entries
        # flushed (an fsync of it, or syncfs), its rows not committed yet. Say so, and wait.
        real_flush(self, folder)
        if commits[0] == kill_at:
            marker.write_text("in the commit")
            time.sleep(600)

    spool_module.Spool._commit = counted_commit
    spool_module.Spool._flush = flush_then_wait
    spool = spool_module.Spool(spool_dir)
    source = Source("export", "folder", {"path": incoming, "settle_time": 0.3, "poll_interval": 0.05}, ("pacs",))
    runner = SourceRunner(source, Pipeline(spool, SiteRules()))
    runner.start_driver()
    runner.start()
    while list(Path(incoming).glob("*.dcm")):
        time.sleep(0.05)
    runner.stop()
    runner.join(30)
    runner.release()
    spool.close()
    marker.write_text("all taken")
""")


def _run_child(incoming: Path, spool_dir: Path, marker: Path, kill_at: int) -> subprocess.Popen:
    marker.unlink(missing_ok=True)
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(incoming), str(spool_dir), str(marker), str(kill_at)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_sigkill_inside_a_group_commit_leaves_no_ack_without_its_instance_and_no_file_for_good(tmp_path):
    incoming, spool_dir, marker = tmp_path / "in", tmp_path / "spool", tmp_path / "marker"
    _drop(incoming, 100)
    child = _run_child(incoming, spool_dir, marker, kill_at=2)
    try:
        assert _wait(lambda: marker.exists(), 120), "the child never reached its second group's commit"
        assert marker.read_text() == "in the commit"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)

    done = sorted((incoming / "done").glob("*.dcm"))
    waiting = sorted(incoming.glob("*.dcm"))
    assert done and waiting and len(done) + len(waiting) == 100  # the first group acked, the second not
    spooled = _spooled(spool_dir)
    for path in done:  # every acknowledged file: its rows committed and its spool file in place
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        assert uid in spooled and (spool_dir / spooled[uid]).is_file(), path.name
    for path in waiting:  # the killed group: recorded nowhere, still in the export folder
        assert str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID) not in spooled
    on_disk = {p.relative_to(spool_dir).as_posix() for p in (spool_dir / "files").rglob("*.dcm")}
    orphans = on_disk - set(spooled.values())
    assert orphans, "the kill came after the rename, so the killed group's files were in place"

    # recover() sweeps what nothing references once it is older than the orphan age.
    old = time.time() - 2 * 3600
    for rel in orphans:
        os.utime(spool_dir / rel, (old, old))
    spool = Spool(spool_dir)
    spool.recover()
    assert {p.relative_to(spool_dir).as_posix() for p in (spool_dir / "files").rglob("*.dcm")} == set(spooled.values())
    assert list((spool_dir / "tmp").iterdir()) == []
    spool.close()

    # Started again, it takes the rest: every file once, nothing lost.
    child = _run_child(incoming, spool_dir, marker, kill_at=0)
    try:
        assert _wait(lambda: marker.exists(), 120)
    finally:
        child.kill()
        child.wait(10)
    assert marker.read_text() == "all taken"
    assert len(list((incoming / "done").glob("*.dcm"))) == 100
    assert len(_spooled(spool_dir)) == 100
