"""``ingest-tape`` spools tape files in groups sharing one commit, and its journal stays true.

The journal may record a tape file as settled only once its instance is durable (or it was
rejected with its reason), in tape order, so that ``--resume`` after a SIGKILL or a full disk
takes every image that was staged but not committed, and the spool ends with each image once.

Real parts: SIMH images written by ``tests.support.tape_bytes``, the real command in a child
process (``tests.support.tape_ingest_child`` only watches the spool's group intake to count
commits or to stop at a chosen moment), the real spool and journal, a real SIGKILL, a real full
file system (a small tmpfs; skipped, saying so, where it cannot be mounted).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from gateway.delivery.spool import encode
from gateway.pipeline import GROUP_COUNT
from tests.commands.test_ingest_tape import config, ingest, journal_lines, sop_uid
from tests.support.daemon import ROOT, wait_until
from tests.support.helpers import ct_instance
from tests.support.tape_bytes import simh_tape

NOT_AN_IMAGE = b"neither an image nor a label, in the middle of a group" * 20


def tape_of(tmp_path: Path, count: int, odd_one: int | None = None) -> tuple[Path, list[str]]:
    """A SIMH tape of ``count`` small CT images, one per tape file (two records each), with a
    file that is no image at tape file ``odd_one``; returns it and the expected UIDs in order."""
    blobs = [encode(ct_instance(i, rows=32, columns=32)) for i in range(count)]
    files = [[b[:1024], b[1024:]] for b in blobs]
    if odd_one is not None:
        files.insert(odd_one, [NOT_AN_IMAGE])
    tape = tmp_path / "small-images.tap"
    tape.write_bytes(simh_tape(files))
    return tape, [sop_uid(b) for b in blobs]


def child(hook: str, arg: str, report: Path, *command) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.support.tape_ingest_child", hook, arg, str(report), "--",
                             "ingest-tape", *map(str, command)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def spooled(spool_dir: Path) -> list[str]:
    """UIDs with committed rows (a fresh connection, as another process sees them), with repeats."""
    db = sqlite3.connect(spool_dir / "spool.db")
    try:
        return [uid for (uid,) in db.execute("SELECT sop_instance_uid FROM instances")]
    finally:
        db.close()


def settled(tmp_path: Path) -> list[tuple[int, str, str | None]]:
    """The journal's settled tape files in the order they were written: (file, status, sop)."""
    return [(e["file"], e["status"], e.get("sop")) for e in journal_lines(tmp_path)]


def expected_journal(uids: list[str], odd_one: int, upto: int | None = None) -> list[tuple[int, str, str | None]]:
    rows: list[tuple[int, str, str | None]] = []
    images = iter(uids)
    for n in range(len(uids) + 1):
        rows.append((n, "rejected", None) if n == odd_one else (n, "done", next(images)))
    return rows if upto is None else rows[:upto]


def test_a_tape_of_300_small_images_takes_a_commit_per_group_not_per_image(tmp_path):
    tape, uids = tape_of(tmp_path, 300, odd_one=100)
    report = tmp_path / "counts.json"
    proc = child("count", "-", report, tape, "-c", config(tmp_path), "--no-progress", "--wait", "0")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err  # all read; one tape file is no image (listed)
    assert "tape file 100" in out and "not an image" in out and "stopped:" not in err
    assert "images: 300" in out  # the report, from the headers the groups kept
    counts = json.loads(report.read_text())
    assert counts["staged"] == 300
    assert counts["commits"] == -(-300 // GROUP_COUNT), counts  # 64 + 64 + 64 + 64 + 44, not 300
    # Every tape file journaled once, in tape order, the rejection among the images in its place;
    # one journal write per group (the lines of one write share their time stamp).
    assert settled(tmp_path) == expected_journal(uids, 100)
    assert len({e["time"] for e in journal_lines(tmp_path)}) <= counts["commits"]
    assert sorted(spooled(tmp_path / "spool")) == sorted(uids)


def test_sigkill_between_staging_and_commit_then_resume_spools_each_image_once(tmp_path):
    tape, uids = tape_of(tmp_path, 150, odd_one=70)
    cfg, spool_dir, report = config(tmp_path), tmp_path / "spool", tmp_path / "held"
    proc = child("hold-commit", "2", report, tape, "-c", cfg, "--no-progress", "--wait", "0")
    try:
        wait_until(lambda: report.exists() or proc.poll() is not None, 120, what="the second group staged")
        assert report.read_text() == "staged", proc.communicate()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)

    # The second group is staged (its files under tmp/) and recorded nowhere: the journal holds
    # the first group only, and not the rejection at tape file 70 either (it comes after files
    # of the killed group).
    assert settled(tmp_path) == expected_journal(uids, 70, upto=GROUP_COUNT)
    assert sorted(spooled(spool_dir)) == sorted(uids[:GROUP_COUNT])
    assert len(list((spool_dir / "tmp").iterdir())) == GROUP_COUNT

    out = ingest(tape, "-c", cfg, "--no-progress", "--resume", "--wait", "0", timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr  # read to the end; tape file 70 is no image
    assert f"resumed at tape file {GROUP_COUNT}" in out.stdout
    assert "stopped:" not in out.stderr
    assert sorted(spooled(spool_dir)) == sorted(uids)  # each image once
    files = sorted(p.name for p in (spool_dir / "files").rglob("*.dcm"))
    assert len(files) == len(uids) == len(set(files))
    assert list((spool_dir / "tmp").iterdir()) == []  # the dead writer's staged files are gone
    assert settled(tmp_path) == expected_journal(uids, 70)  # each tape file once, in order




def test_a_full_disk_in_the_middle_of_a_group_settles_none_of_it_and_resume_takes_them(tmp_path, small_fs):
    tape, uids = tape_of(tmp_path, 150, odd_one=100)
    cfg = config(tmp_path)
    cfg.write_text(cfg.read_text().replace(f"spool_dir: {tmp_path / 'spool'}", f"spool_dir: {small_fs / 'spool'}"))
    spool_dir, hog = small_fs / "spool", small_fs / "hog"
    at = GROUP_COUNT + 6  # the sixth image of the second group: five of it are staged
    proc = child("fill-at-stage", f"{at}:{hog}", tmp_path / "counts.json", tape, "-c", cfg, "--no-progress",
                 "--wait", "0")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err
    assert "stopped: IntakePaused" in err and "--resume" in err
    assert os.statvfs(small_fs).f_bavail * os.statvfs(small_fs).f_frsize < (1 << 20)  # it was full
    # None of the second group is settled: not the five staged before the disk filled.
    assert settled(tmp_path) == expected_journal(uids, 100, upto=GROUP_COUNT)
    assert sorted(spooled(spool_dir)) == sorted(uids[:GROUP_COUNT])
    assert list((spool_dir / "tmp").iterdir()) == []

    hog.unlink()  # room again
    out = ingest(tape, "-c", cfg, "--no-progress", "--resume", "--wait", "0", timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr  # read to the end; tape file 100 is no image
    assert f"resumed at tape file {GROUP_COUNT}" in out.stdout and "stopped:" not in out.stderr
    assert sorted(spooled(spool_dir)) == sorted(uids)
    assert len(list((spool_dir / "files").rglob("*.dcm"))) == len(uids)
    assert settled(tmp_path) == expected_journal(uids, 100)
