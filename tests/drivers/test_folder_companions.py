"""A header and its data file in a real watched folder: taken once, together, in either order.

The driver is the real ``FolderDriver`` with real watchdog observers, given the formats'
``companions`` as the service gives it; each capture goes through the real conversion, and
is acked (both files to done/) or rejected (both to quarantine/) by its outcome.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from drivers.folder import FolderDriver
from gateway import formats
from gateway.errors import DecodeError
from gateway.pipeline import convert
from tests.support.driver_thread import DriverThread

RECON = "interfile/stir/examples/recon_demo"


class Converting(DriverThread):
    """Runs a driver in a thread; each capture is converted, then acked or rejected."""

    wait = 15.0

    def handle(self, capture) -> None:
        self.taken.append(capture)
        try:
            ds, _ = convert(capture)
        except DecodeError as exc:
            self.driver.reject(capture, str(exc))
        else:
            self.driver.ack(capture, str(ds.SOPInstanceUID))


def driver(path: Path, observer: str = "inotify", orphan_time: float = 30.0) -> FolderDriver:
    return FolderDriver("export", path, observer=observer, poll_interval=0.2, settle_time=0.5,
                        orphan_time=orphan_time, companions=formats.companions)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("observer", ["inotify", "polling"])
@pytest.mark.parametrize("first", ["header", "data"])
def test_a_pair_dropped_in_either_order_is_taken_once_and_moves_together(samples, tmp_path, observer, first):
    src = samples / RECON
    order = ["init.hv", "init.v"] if first == "header" else ["init.v", "init.hv"]
    with Converting(driver(tmp_path, observer)) as run:
        time.sleep(0.3)
        (tmp_path / order[0]).write_bytes((src / order[0]).read_bytes())
        time.sleep(1.5)  # the first file settles alone: it must wait, not be taken or quarantined
        assert run.taken == [] and not (tmp_path / "quarantine").exists()
        (tmp_path / order[1]).write_bytes((src / order[1]).read_bytes())
        run.wait_for(1)
        time.sleep(1.5)  # nothing more comes: the data file is not taken a second time
    assert len(run.taken) == 1
    capture, = run.taken
    assert capture.origin.location == "init.hv" and capture.parts == {"init.v": (src / "init.v").read_bytes()}
    assert names(tmp_path / "done") == ["init.hv", "init.v"]
    assert not (tmp_path / "quarantine").exists() and names(tmp_path) == ["done"]


def test_a_pair_present_at_start_is_taken_once(samples, tmp_path):
    for name in ("smalllong.hs", "smalllong.s"):
        (tmp_path / name).write_bytes((samples / RECON / name).read_bytes())
    with Converting(driver(tmp_path)) as run:
        run.wait_for(1)
        time.sleep(1.0)
    assert len(run.taken) == 1 and names(tmp_path / "done") == ["smalllong.hs", "smalllong.s"]


def test_a_data_file_alone_waits_then_is_quarantined_as_an_orphan(samples, tmp_path):
    (tmp_path / "init.v").write_bytes((samples / RECON / "init.v").read_bytes())
    with Converting(driver(tmp_path, orphan_time=3.0)) as run:
        time.sleep(2.0)
        assert run.taken == [] and (tmp_path / "init.v").exists()  # still waiting for a header
        run.wait_for(1)
    assert names(tmp_path / "quarantine") == ["init.v", "init.v.reason.txt"]
    reason = (tmp_path / "quarantine" / "init.v.reason.txt").read_text()
    assert "unknown format" in reason and "orphan: no header named it" in reason


def test_a_header_whose_data_never_comes_is_rejected_naming_the_key(samples, tmp_path):
    (tmp_path / "init.hv").write_bytes((samples / RECON / "init.hv").read_bytes())
    with Converting(driver(tmp_path, orphan_time=2.0)) as run:
        time.sleep(1.0)
        assert run.taken == []
        run.wait_for(1)
    reason = (tmp_path / "quarantine" / "init.hv.reason.txt").read_text()
    assert "name of data file" in reason


def test_a_pair_with_a_short_data_file_goes_to_quarantine_together(samples, tmp_path):
    (tmp_path / "init.hv").write_bytes((samples / RECON / "init.hv").read_bytes())
    (tmp_path / "init.v").write_bytes((samples / RECON / "init.v").read_bytes()[:1000])
    with Converting(driver(tmp_path)) as run:
        run.wait_for(1)
    assert names(tmp_path / "quarantine") == ["init.hv", "init.hv.reason.txt", "init.v", "init.v.reason.txt"]
    assert "companion of init.hv" in (tmp_path / "quarantine" / "init.v.reason.txt").read_text()
    reason = (tmp_path / "quarantine" / "init.hv.reason.txt").read_text()
    assert "matrix size [1]" in reason and "with: init.v" in reason


def test_single_file_formats_are_not_delayed(samples, tmp_path):
    (tmp_path / "heart.1").write_bytes((samples / "ge_genesis" / "heart.1").read_bytes())
    start = time.monotonic()
    with Converting(driver(tmp_path, orphan_time=30.0)) as run:
        run.wait_for(1, timeout=10)
    assert time.monotonic() - start < 10 and names(tmp_path / "done") == ["heart.1"]
