"""The export-folder driver on real files and real watchdog observers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from drivers.folder import FolderDriver
from tests.support.driver_thread import DriverThread


class Recorder(DriverThread):
    """Runs a driver in a thread and acks or rejects each capture by a rule."""

    noun = "files taken"

    def __init__(self, driver: FolderDriver, verdict=lambda c: True):
        super().__init__(driver)
        self.verdict = verdict

    def handle(self, capture) -> None:
        at = time.monotonic()
        if self.verdict(capture):
            self.driver.ack(capture, "1.2.3")
        else:
            self.driver.reject(capture, "unknown format")
        # Counted once its verdict is carried out: a test that waits for it then finds the file
        # moved (writing the same name again before that rewrote the file being acknowledged).
        self.taken.append((capture, at))

    def names(self) -> list[str]:
        return sorted(c.origin.location for c, _ in self.taken)


@pytest.fixture(params=["inotify", "polling"])
def observer(request):
    return request.param


def driver(path: Path, observer: str = "inotify", **kw) -> FolderDriver:
    return FolderDriver("export", path, observer=observer, poll_interval=0.2,
                        settle_time=kw.pop("settle_time", 0.5), **kw)


def test_files_present_at_start_are_taken_and_moved_to_done(tmp_path):
    (tmp_path / "a.MR").write_bytes(b"one")
    (tmp_path / "b.MR").write_bytes(b"two")
    with Recorder(driver(tmp_path)) as rec:
        rec.wait_for(2)
    assert rec.names() == ["a.MR", "b.MR"]
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["a.MR", "b.MR"]
    assert [c.data for c, _ in sorted(rec.taken, key=lambda t: t[0].origin.location)] == [b"one", b"two"]


def test_new_files_are_seen_by_either_observer(tmp_path, observer):
    with Recorder(driver(tmp_path, observer)) as rec:
        time.sleep(0.3)
        (tmp_path / "new.img").write_bytes(b"x" * 1000)
        rec.wait_for(1)
    assert rec.names() == ["new.img"]


def test_a_file_written_slowly_is_taken_only_when_complete(tmp_path, observer):
    chunks = [os.urandom(4096) for _ in range(8)]
    with Recorder(driver(tmp_path, observer, settle_time=0.6)) as rec:
        path = tmp_path / "slow.MR"
        with open(path, "wb") as f:  # open for writing throughout, with pauses longer than settle_time
            for chunk in chunks:
                f.write(chunk)
                f.flush()
                time.sleep(0.8)
                assert rec.taken == [], "taken while still being written"
        closed_at = time.monotonic()
        rec.wait_for(1)
    (capture, taken_at), = rec.taken
    assert capture.data == b"".join(chunks)
    assert taken_at >= closed_at


def test_pauses_without_an_open_writer_still_wait_for_settle_time(tmp_path):
    with Recorder(driver(tmp_path, settle_time=1.5)) as rec:
        path = tmp_path / "appended.MR"
        for _ in range(3):  # a copy tool that reopens the file for each chunk
            with open(path, "ab") as f:
                f.write(b"z" * 100)
            time.sleep(0.5)
            assert rec.taken == []
        rec.wait_for(1)
    assert rec.taken[0][0].size == 300


def test_hidden_partial_and_tmp_files_are_skipped(tmp_path):
    for name in (".hidden", "x.partial", "y.tmp", "real.MR"):
        (tmp_path / name).write_bytes(b"data")
    with Recorder(driver(tmp_path)) as rec:
        rec.wait_for(1)
        time.sleep(1.0)
    assert rec.names() == ["real.MR"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "done", "x.partial", "y.tmp"]


def test_rejected_file_goes_to_quarantine_with_its_reason(tmp_path):
    (tmp_path / "junk.bin").write_bytes(b"garbage")
    with Recorder(driver(tmp_path), verdict=lambda c: False) as rec:
        rec.wait_for(1)
    quarantined = tmp_path / "quarantine" / "junk.bin"
    assert quarantined.read_bytes() == b"garbage"
    reason = (tmp_path / "quarantine" / "junk.bin.reason.txt").read_text()
    assert "reason: unknown format" in reason and "file: junk.bin" in reason


def test_same_name_twice_does_not_overwrite_done(tmp_path):
    with Recorder(driver(tmp_path)) as rec:
        (tmp_path / "I.001").write_bytes(b"first")
        rec.wait_for(1)
        (tmp_path / "I.001").write_bytes(b"second")
        rec.wait_for(2)
    done = sorted((tmp_path / "done").iterdir())
    assert [p.read_bytes() for p in done] == [b"first", b"second"]


def test_keep_takes_each_file_once_and_delete_removes_it(tmp_path):
    keep, delete = tmp_path / "keep", tmp_path / "delete"
    keep.mkdir(), delete.mkdir()
    (keep / "a").write_bytes(b"a")
    (delete / "b").write_bytes(b"b")
    with Recorder(driver(keep, after_success="keep")) as rk, Recorder(driver(delete, after_success="delete")) as rd:
        rk.wait_for(1), rd.wait_for(1)
        time.sleep(1.5)
    assert len(rk.taken) == 1 and (keep / "a").exists()
    assert not (delete / "b").exists() and not (delete / "done").exists()


def test_recursive_watch_takes_subfolders_but_not_done_or_quarantine(tmp_path):
    (tmp_path / "exam1").mkdir()
    (tmp_path / "exam1" / "I.001").write_bytes(b"1")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "old").write_bytes(b"old")
    with Recorder(driver(tmp_path, recursive=True)) as rec:
        rec.wait_for(1)
        time.sleep(1.0)
    assert rec.names() == ["exam1/I.001"]
    assert (tmp_path / "done" / "exam1" / "I.001").exists()
