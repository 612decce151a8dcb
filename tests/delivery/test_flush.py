"""When the spool may make a group durable with one ``syncfs`` (``gateway.delivery.flush``):
the file system's type as the system's own ``findmnt`` tells it, and the kernel's version."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.delivery import flush
from tests.support.disk import require_syncfs


@pytest.mark.skipif(shutil.which("findmnt") is None, reason="util-linux's findmnt is the independent reader")
@pytest.mark.parametrize("where", ["tmp", "/proc", "/dev/shm", "/"])
def test_the_file_system_type_is_the_one_findmnt_reports(tmp_path, where):
    path = tmp_path if where == "tmp" else Path(where)
    expected = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(path)],
                              capture_output=True, text=True, check=True).stdout.split()
    assert flush.file_system(path) == expected[-1]  # the last of mounts stacked there is the one seen


def test_a_file_system_without_sound_syncfs_keeps_the_fsyncs(small_fs, tmp_path):
    assert flush.file_system(small_fs) == "tmpfs" and not flush.possible(small_fs)
    assert not flush.possible("/proc") and flush.file_system(tmp_path / "missing") is None


def test_a_mount_table_that_cannot_be_read_says_nothing(tmp_path):
    assert flush.file_system(tmp_path, mountinfo=str(tmp_path / "none")) is None


@pytest.mark.parametrize(("release", "version"), [
    ("6.1.0-18-amd64", (6, 1)), ("5.8.0", (5, 8)), ("5.10.0-28-cloud-amd64", (5, 10)),
    ("4.19.0-26-amd64", (4, 19)), ("6.18.44-fc-v1147", (6, 18)), ("5.7rc1", (5, 7)), ("weird", (0, 0)),
])
def test_kernel_release(release, version):
    assert flush._kernel(release) == version
    assert (flush._kernel(release) >= flush.SINCE) == (version >= (5, 8))


def test_a_sync_of_the_whole_file_system_succeeds_and_closes(tmp_path):
    require_syncfs(tmp_path)
    sync = flush.FileSystemSync(tmp_path)
    (tmp_path / "x").write_bytes(b"y")
    sync()
    sync.close()
    sync.close()  # twice is harmless
