"""Nothing can wedge the gateway (issue 11, points 1, 5, 6 and 7), tried on real processes.

A real ``run`` (``tests.support.daemon``) delivers into a real Orthanc; ``ingest-tape`` and
``convert`` run as the commands they are. Poison inputs (they decode, and pydicom refuses to
write them) are rebuilt from the real samples by ``tests.support.poison``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.delivery.spool import encode
from tests.support.daemon import ROOT, Daemon, wait_until, write_config
from tests.support.helpers import ct_instance
from tests.support.peers import free_port
from tests.support.poison import POISON
from tests.support.tape_bytes import as_records, simh_tape

GOOD_SAMPLES = ("ge_genesis/heart.1", "acr_nema/CT-MONO2-12-lomb-an2.acr")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _gateway(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=_env(), cwd=ROOT)


def _poison_names() -> list[str]:
    return [f"poison-{i}.bin" for i in range(len(POISON))]


def _drop_poison(folder: Path) -> list[str]:
    names = _poison_names()
    for name, make in zip(names, POISON.values(), strict=True):
        (folder / name).write_bytes(make())
    return names


def _setup(tmp_path: Path, orthanc, extra_source: str = "") -> tuple[Path, Path, Daemon]:
    incoming, spool = tmp_path / "incoming", tmp_path / "spool"
    incoming.mkdir(exist_ok=True)
    config = write_config(tmp_path / "gw.yaml", destinations=[{"name": "orthanc", "port": orthanc.dicom_port}],
                          incoming=incoming, spool=spool, extra_source=extra_source)
    return incoming, spool, Daemon(config, tmp_path)


# -- point 1: no poison input ------------------------------------------------------------------


def test_poison_files_are_quarantined_once_and_good_files_keep_flowing(tmp_path, orthanc, samples):
    incoming, _, daemon = _setup(tmp_path, orthanc)
    poison = _drop_poison(incoming)
    for name in GOOD_SAMPLES:
        shutil.copy(samples / name, incoming / Path(name).name)
    daemon.start()
    try:
        wait_until(lambda: len(orthanc.get("/instances")) == len(GOOD_SAMPLES), 60, what="good files in Orthanc")
        wait_until(lambda: len(list((incoming / "quarantine").glob("*.reason.txt"))) == len(poison), 20,
                   what="every poison file quarantined")
        time.sleep(1.0)  # time for a retry loop to show itself
    finally:
        assert daemon.stop() == 0
    for name in poison:
        assert not (incoming / name).exists()
        reason = (incoming / "quarantine" / f"{name}.reason.txt").read_text()
        assert "DICOM file" in reason and "\n" not in reason.split("reason: ", 1)[1].strip(), reason
    log = daemon.log_text()
    assert log.count("event=quarantined") == len(poison)
    assert "capture_failed" not in log and "capture_deferred" not in log and "Traceback" not in log


def test_a_storage_failure_defers_the_capture_with_a_growing_wait_then_it_is_delivered(tmp_path, orthanc):
    incoming, spool, daemon = _setup(tmp_path, orthanc)
    daemon.start()
    try:
        wait_until(lambda: "event=started" in daemon.log_text(), 30, what="start")
        # The spool's temporary folder replaced by a file: every write fails with an OSError.
        shutil.rmtree(spool / "tmp")
        (spool / "tmp").write_bytes(b"")
        (incoming / "a.dcm").write_bytes(encode(ct_instance(1, rows=64, columns=64)))
        wait_until(lambda: "retry_in=4s" in daemon.log_text(), 30, what="a second, longer wait")
        assert (incoming / "a.dcm").exists() and not (incoming / "quarantine").exists()
        (spool / "tmp").unlink()
        (spool / "tmp").mkdir()
        wait_until(lambda: len(orthanc.get("/instances")) == 1, 30, what="delivery once storage is back")
    finally:
        assert daemon.stop() == 0
    log = daemon.log_text()
    assert "retry_in=2s" in log and "retry_in=4s" in log
    assert not (incoming / "a.dcm").exists() and (incoming / "done" / "a.dcm").exists()


def test_ingest_tape_rejects_poison_and_reads_on(tmp_path, orthanc, samples):
    good = [(samples / name).read_bytes() for name in GOOD_SAMPLES]
    blobs = [good[0], *(make() for make in POISON.values()), good[1]]
    tape = tmp_path / "poison.tap"
    tape.write_bytes(simh_tape([as_records(b) for b in blobs]))
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("\n".join([
        "gateway:", f"  spool_dir: {tmp_path / 'spool'}", f"  state_dir: {tmp_path / 'state'}",
        "destinations:", "  - name: orthanc", "    host: 127.0.0.1", f"    port: {orthanc.dicom_port}",
        "    called_ae: ORTHANC", "archive:", "  enabled: false"]) + "\n")
    first = _gateway("ingest-tape", tape, "-c", cfg, "--no-progress")
    assert first.returncode == 1, first.stdout + first.stderr  # some tape files failed (listed)
    assert "stopped:" not in first.stderr and "Traceback" not in first.stderr
    assert len(orthanc.get("/instances")) == len(good)  # the image after the poison arrived too
    for n in range(1, 1 + len(POISON)):
        assert f"tape file {n}" in first.stdout
    assert first.stdout.count("DICOM file") == len(POISON)
    again = _gateway("ingest-tape", tape, "-c", cfg, "--no-progress", "--resume")
    assert "stopped:" not in again.stderr and again.returncode == 0, again.stdout + again.stderr


def test_convert_reports_poison_per_file_and_converts_the_rest(tmp_path, samples):
    src = tmp_path / "in"
    src.mkdir()
    poison = _drop_poison(src)
    for name in GOOD_SAMPLES:
        shutil.copy(samples / name, src / Path(name).name)
    out = _gateway("convert", src, "-o", tmp_path / "out")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"{len(GOOD_SAMPLES)} converted, {len(poison)} failed" in out.stderr
    for name in poison:
        assert f"{name}: FAILED: " in out.stderr
    assert len(list((tmp_path / "out").glob("*.dcm"))) == len(GOOD_SAMPLES)


# -- point 5: nothing half-done after a crash ------------------------------------------------


def test_start_up_sweep_gives_a_quarantined_file_without_reason_one(tmp_path, orthanc):
    incoming, _, daemon = _setup(tmp_path, orthanc)
    quarantine = incoming / "quarantine"
    quarantine.mkdir()
    (quarantine / "orphan.MR").write_bytes(b"left by a crash between the move and the reason")
    (quarantine / "gone.MR.reason.txt").write_text("reason: its file never arrived\n")
    daemon.start()
    try:
        wait_until(lambda: (quarantine / "orphan.MR.reason.txt").exists(), 30, what="the repaired reason")
    finally:
        assert daemon.stop() == 0
    assert "lost in a crash" in (quarantine / "orphan.MR.reason.txt").read_text()
    assert not (quarantine / "gone.MR.reason.txt").exists()


def test_a_second_run_on_the_same_spool_or_folder_is_refused(tmp_path, orthanc):
    incoming, spool, first = _setup(tmp_path, orthanc)
    first.start()
    try:
        wait_until(lambda: "event=started" in first.log_text(), 30, what="the first run")
        for name, other_incoming, other_spool in (("same-spool", tmp_path / "other-in", spool),
                                                  ("same-folder", incoming, tmp_path / "other-spool")):
            other_incoming.mkdir(exist_ok=True)
            cfg = write_config(tmp_path / f"{name}.yaml",
                               destinations=[{"name": "orthanc", "port": orthanc.dicom_port}],
                               incoming=other_incoming, spool=other_spool)
            second = _gateway("run", "-c", cfg, timeout=60)
            assert second.returncode != 0, (name, second.stdout, second.stderr)
            assert "already in use by another legacy-gateway run" in second.stderr, (name, second.stderr)
            assert "event=started" not in second.stdout + second.stderr
        (incoming / "a.dcm").write_bytes(encode(ct_instance(3, rows=64, columns=64)))
        wait_until(lambda: len(orthanc.get("/instances")) == 1, 30, what="the first run still working")
    finally:
        assert first.stop() == 0


# -- point 6: bounded input ------------------------------------------------------------------


def test_a_file_over_max_file_size_is_quarantined_unread(tmp_path, orthanc):
    incoming, _, daemon = _setup(tmp_path, orthanc, extra_source="    max_file_size: 100000")
    big = encode(ct_instance(4, rows=256, columns=256))  # a good instance, but 128 KiB
    assert len(big) > 100000
    (incoming / "big.dcm").write_bytes(big)
    daemon.start()
    try:
        wait_until(lambda: (incoming / "quarantine" / "big.dcm.reason.txt").exists(), 30, what="quarantine")
    finally:
        assert daemon.stop() == 0
    reason = (incoming / "quarantine" / "big.dcm.reason.txt").read_text()
    assert "larger than max_file_size (100000 bytes)" in reason and f"size: {len(big)}" in reason
    assert orthanc.get("/instances") == []


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_memory_is_given_back_after_a_large_file(tmp_path, orthanc):
    incoming, _, daemon = _setup(tmp_path, orthanc)
    daemon.start()
    try:
        wait_until(lambda: "event=started" in daemon.log_text(), 30, what="start")
        time.sleep(1.0)
        before = _rss_kb(daemon.proc.pid)
        size = 300 << 20
        with open(incoming / "huge.bin", "wb") as f:  # no format claims it: it is rejected
            chunk = b"not an image at all " * 52429
            for _ in range(size // len(chunk) + 1):
                f.write(chunk)
        wait_until(lambda: (incoming / "quarantine" / "huge.bin.reason.txt").exists(), 120, what="quarantine")
        time.sleep(1.5)
        after = _rss_kb(daemon.proc.pid)
    finally:
        assert daemon.stop() == 0
    assert "unknown format" in (incoming / "quarantine" / "huge.bin.reason.txt").read_text()
    assert after - before < 60 * 1024, f"RSS {before} kB before, {after} kB after a 300 MB file"


# -- point 7: a source that cannot start is a failure ----------------------------------------


def _notify_socket(tmp_path: Path) -> tuple[socket.socket, Path]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    return sock, path


def _messages(sock: socket.socket, seconds: float) -> list[str]:
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            out.append(sock.recv(4096).decode())
        except socket.timeout:
            break
    return out


def test_a_folder_path_that_is_a_file_fails_to_start_without_ready(tmp_path, orthanc):
    incoming = tmp_path / "incoming"
    incoming.write_text("a file, not a folder")
    config = write_config(tmp_path / "gw.yaml", destinations=[{"name": "orthanc", "port": orthanc.dicom_port}],
                          incoming=incoming, spool=tmp_path / "spool")
    sock, path = _notify_socket(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "-c", str(config)], cwd=tmp_path,
                            env={**_env(), "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the service kept running with a source that cannot start")
    messages = _messages(sock, 0.5)
    sock.close()
    assert proc.returncode == 2
    # check-config's own check refuses it before any source starts (the source's guard is the
    # same for a path that turns into a file between the check and the start)
    assert f"sources[0].path: {incoming} is a file, not a folder" in err
    assert "Traceback" not in err and "event=started" not in err
    assert not any("READY=1" in m for m in messages), messages


@pytest.mark.parametrize("kind", ["serial", "tape"])
def test_an_absent_device_runs_degraded_and_says_so_while_the_watchdog_is_fed(tmp_path, orthanc, kind):
    device = tmp_path / "absent-device"
    option = "port" if kind == "serial" else "device"
    extra = "\n".join(["  - name: gone", f"    type: {kind}", f"    {option}: {device}", "    poll_interval: 200ms"
                       if kind == "tape" else "    reopen_interval: 200ms"])
    incoming, _, daemon = _setup(tmp_path, orthanc, extra_source=extra)
    port = free_port()
    with open(daemon.config, "a") as f:
        f.write(f"metrics:\n  enabled: true\n  host: 127.0.0.1\n  port: {port}\n")
    sock, path = _notify_socket(tmp_path)
    daemon.env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}
    daemon.start()
    try:
        messages = _messages(sock, 13)  # the status line is sent every 10 s
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        (incoming / "a.dcm").write_bytes(encode(ct_instance(6, rows=64, columns=64)))
        wait_until(lambda: len(orthanc.get("/instances")) == 1, 30, what="the folder source still working")
    finally:
        assert daemon.stop() == 0
        sock.close()
    assert any("READY=1" in m for m in messages)
    status = [m for m in messages if "STATUS=" in m and "source gone degraded" in m]
    assert status and str(device) in status[-1], messages
    ready_at = next(i for i, m in enumerate(messages) if "READY=1" in m)
    assert sum("WATCHDOG=1" in m for m in messages[ready_at:]) >= 5
    assert "event=source_degraded source gone degraded" in daemon.log_text()
    assert 'legacy_gateway_source_degraded{source="gone"} 1.0' in metrics
    assert 'legacy_gateway_source_degraded{source="export"} 0.0' in metrics


@pytest.mark.parametrize("device, message", [("folder", "is a directory, not a tape drive or tape image"),
                                             ("/dev/null", "is a character device but not a tape drive")])
def test_a_tape_device_that_cannot_be_a_tape_fails_to_start(tmp_path, orthanc, device, message):
    if device == "folder":
        device = tmp_path / "a-folder"
        device.mkdir()
    extra = "\n".join(["  - name: tapes", "    type: tape", f"    device: {device}"])
    _, _, daemon = _setup(tmp_path, orthanc, extra_source=extra)
    run = _gateway("run", "-c", daemon.config, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"source 'tapes' cannot start: tape device {device} {message}" in run.stderr
    assert "event=started" not in run.stdout + run.stderr and "Traceback" not in run.stderr
