"""The daemon end to end: files dropped into a watched folder arrive in a real Orthanc."""

from __future__ import annotations

import io
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pydicom

from gateway.delivery.spool import encode
from tests.support.daemon import ROOT, Daemon, wait_until, write_config
from tests.support.helpers import ct_instance


def setup(tmp_path, orthanc, **kw):
    incoming, spool = tmp_path / "incoming", tmp_path / "spool"
    incoming.mkdir()
    config = write_config(tmp_path / "gw.yaml", destinations=[{"name": "orthanc", "port": orthanc.dicom_port}],
                          incoming=incoming, spool=spool, **kw)
    return incoming, spool, Daemon(config, tmp_path)


def slow_write(path, data: bytes, chunks: int = 6, pause: float = 0.5) -> None:
    step = len(data) // chunks + 1
    with open(path, "wb") as f:
        for i in range(0, len(data), step):
            f.write(data[i:i + step])
            f.flush()
            time.sleep(pause)


# Real files of every supported kind, dropped as a console or copy job would.
VENDOR_SAMPLES = ("dicom_vendor", "dicom_vendor_nopreamble", "ge_genesis", "siemens_spi_acrnema", "acr_nema")


def test_dropped_files_arrive_in_orthanc_and_bad_ones_are_quarantined(tmp_path, orthanc, samples):
    incoming, spool, daemon = setup(tmp_path, orthanc)
    daemon.start()
    try:
        names = []
        for sub in VENDOR_SAMPLES:
            for src in sorted((samples / sub).iterdir()):
                shutil.copy(src, incoming / src.name)
                names.append(src.name)
        (incoming / "garbage.bin").write_bytes(b"this is not an image" * 50)
        (incoming / "heart-cut.1").write_bytes((samples / "ge_genesis" / "heart.1").read_bytes()[:50000])
        slow = ct_instance(99, rows=64, columns=64)
        slow_write(incoming / "slow.dcm", encode(slow))
        good = len(names) + 1
        wait_until(lambda: len(orthanc.get("/instances")) == good, 60, what="every good file in Orthanc")
        wait_until(lambda: len(list((incoming / "quarantine").glob("*.reason.txt"))) == 2, 10, what="quarantine")
    finally:
        assert daemon.stop() == 0
    assert sorted(p.name for p in (incoming / "done").iterdir()) == sorted(names + ["slow.dcm"])
    quarantine = incoming / "quarantine"
    assert "unknown format" in (quarantine / "garbage.bin.reason.txt").read_text()
    assert "pixel" in (quarantine / "heart-cut.1.reason.txt").read_text().lower()
    # What Orthanc holds is exactly what the spool recorded for the files in done/.
    db = sqlite3.connect(spool / "spool.db")
    spooled = dict(db.execute("SELECT origin, sop_instance_uid FROM instances").fetchall())
    db.close()
    assert sorted(spooled) == sorted(f"export:{n}" for n in names + ["slow.dcm"])
    assert sorted(orthanc.sop_instance_uids()) == sorted(spooled.values())
    # The slowly written file arrived whole.
    assert pydicom.dcmread(io.BytesIO(orthanc.file(str(slow.SOPInstanceUID)))).PixelData == slow.PixelData
    # Every spool file is gone once Orthanc has it.
    wait_until(lambda: not list((spool / "files").rglob("*.dcm")), 10, what="spool emptied")
    log = daemon.log_text()
    assert "event=spooled" in log and "event=delivered" in log
    # Patient names, IDs and birth dates never reach the log at INFO.
    secrets = set()
    for ident in orthanc.get("/instances"):
        tags = orthanc.get(f"/instances/{ident}/simplified-tags")
        secrets |= {tags.get(k, "") for k in ("PatientName", "PatientID", "PatientBirthDate")}
    secrets = {v for v in secrets if len(v.strip()) > 3}
    assert "Test^Forward" in secrets  # the synthetic slow file's name is among them
    for secret in secrets:
        assert secret not in log, f"patient data {secret!r} in the log"


def test_sigkill_while_files_flow_loses_nothing(tmp_path, orthanc):
    incoming, spool, daemon = setup(tmp_path, orthanc, settle="100ms")
    instances = [ct_instance(i, rows=32, columns=32) for i in range(60)]
    uids = {str(ds.SOPInstanceUID) for ds in instances}
    rng = random.Random(7)
    daemon.start()
    for batch in range(6):
        for ds in instances[batch * 10:(batch + 1) * 10]:
            tmp = incoming / f".{ds.InstanceNumber}.part"
            tmp.write_bytes(encode(ds))
            tmp.rename(incoming / f"I{ds.InstanceNumber:04d}.dcm")
        time.sleep(rng.uniform(0.3, 1.5))
        daemon.kill()
        # Whatever reached done/ is durable in the spool: its rows exist, its file or delivery is there.
        spooled = set()
        if (spool / "spool.db").exists():  # killed before the spool was even created: nothing may be done
            db = sqlite3.connect(spool / "spool.db")
            spooled = {r[0] for r in db.execute("SELECT sop_instance_uid FROM deliveries")}
            db.close()
        for done in (incoming / "done").glob("*.dcm") if (incoming / "done").exists() else []:
            assert str(pydicom.dcmread(done).SOPInstanceUID) in spooled, f"{done.name} acknowledged but not spooled"
        daemon.start()
    try:
        wait_until(lambda: set(orthanc.sop_instance_uids()) >= uids, 90, what="every instance in Orthanc")
        wait_until(lambda: not list((spool / "files").rglob("*.dcm")), 20, what="spool emptied")
    finally:
        assert daemon.stop() == 0
    assert len(list((incoming / "done").iterdir())) == len(instances)
    assert sorted(orthanc.sop_instance_uids()) == sorted(uids)  # each once


def test_sighup_reloads_and_refuses_a_broken_configuration(tmp_path, orthanc, storescp):
    incoming, spool, daemon = setup(tmp_path, orthanc)
    config = daemon.config
    good = config.read_text()
    daemon.start()
    try:
        wait_until(lambda: "event=started" in daemon.log_text(), 20, what="start")
        config.write_text(good.replace("called_ae: ANY", "called_ae: ANY\n    colour: blue"))
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: "event=reload_refused" in daemon.log_text(), 20, what="refusal")
        assert daemon.proc.poll() is None
        # The old configuration still works.
        (incoming / "a.dcm").write_bytes(encode(ct_instance(1)))
        wait_until(lambda: len(orthanc.get("/instances")) == 1, 30, what="delivery with the old configuration")
        # A valid new configuration with a second destination takes effect.
        config.write_text(good.replace(
            "sources:",
            f"  - name: scp\n    host: 127.0.0.1\n    port: {storescp.port}\n    called_ae: STORESCP\nsources:"))
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: "event=reloaded" in daemon.log_text(), 20, what="reload")
        (incoming / "b.dcm").write_bytes(encode(ct_instance(2)))
        wait_until(lambda: len(storescp.received()) == 1 and len(orthanc.get("/instances")) == 2, 30,
                   what="delivery to both destinations")
        problem = [line for line in daemon.log_text().splitlines() if "reload_refused" in line][0]
        assert "colour: unknown key" in problem
    finally:
        assert daemon.stop() == 0


def test_systemd_notify_ready_status_and_watchdog(tmp_path, orthanc):
    incoming, spool, daemon = setup(tmp_path, orthanc)
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(20)
    daemon.env = {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000"}
    daemon.start()
    messages = []
    try:
        while not any("WATCHDOG=1" in m for m in messages) or not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
    finally:
        assert daemon.stop() == 0
    while True:
        try:
            sock.settimeout(1)
            messages.append(sock.recv(4096).decode())
        except socket.timeout:
            break
    sock.close()
    ready = next(m for m in messages if "READY=1" in m)
    assert "STATUS=" in ready
    assert any("STOPPING=1" in m for m in messages)


def test_status_command_reports_per_destination(tmp_path, orthanc):
    incoming, spool, daemon = setup(tmp_path, orthanc)
    (incoming / "a.dcm").write_bytes(encode(ct_instance(5)))
    daemon.start()
    try:
        wait_until(lambda: len(orthanc.get("/instances")) == 1, 30, what="delivery")
    finally:
        daemon.stop()
    run = subprocess.run([sys.executable, "-m", "gateway", "status", "-c", str(daemon.config)], capture_output=True,
                         text=True, cwd=ROOT)
    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("destination"))
    assert lines[header].split()[:3] == ["destination", "state", "queued"]
    assert lines[header + 1].split()[:7] == ["orthanc", "up", "0", "0", "1", "0", "0"], run.stdout
    assert "service: not running on this spool" in run.stdout  # it was stopped above
    assert run.returncode == 1  # ... which needs attention
    intake = next(line for line in lines if line.startswith("intake:"))
    assert intake.startswith("intake: open (") and "MB free on the spool's file system" in intake


def test_systemd_unit_verifies(tmp_path):
    unit = (ROOT / "systemd" / "legacy-gateway.service").read_text()
    # Verify with the interpreter that really runs the gateway here in place of the install path.
    unit = unit.replace("/opt/legacy-gateway/bin/legacy-gateway", f"{sys.executable} -m gateway")
    path = tmp_path / "legacy-gateway.service"
    path.write_text(unit)
    run = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    for needed in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "StateDirectory=", "ProtectSystem=strict",
                   "ReadWritePaths=", "NoNewPrivileges=yes", "DeviceAllow=", "SupplementaryGroups=tape dialout"):
        assert needed in unit
    assert "PrivateDevices=" not in unit
    assert "ReadWritePaths=/var/lib/legacy-gateway -/srv/legacy-exports" in unit  # starts without /srv


def test_systemd_unit_exposure_is_low(tmp_path):
    """``systemd-analyze security`` rated the first unit 6.3 (MEDIUM); the hardened one must stay
    well below while tape drives, serial lines and the process list remain reachable."""
    unit = str(ROOT / "systemd" / "legacy-gateway.service")
    run = subprocess.run(["systemd-analyze", "security", "--offline=yes", unit],
                         capture_output=True, text=True)
    score = float(run.stdout.rsplit("Overall exposure level for legacy-gateway.service:", 1)[1].split()[0])
    assert score <= 3.0, run.stdout[-2000:]


def test_embedded_default_delivers_into_the_builtin_archive(tmp_path, samples):
    """What ``make run`` does on a fresh machine: the shipped configuration, run from a fresh
    directory, takes a file from ./var/incoming and the built-in archive stores it."""
    from tests.support.peers import free_port

    port = free_port()
    shipped = (ROOT / "etc" / "legacy-gateway.yaml").read_text()
    assert shipped.count("port: 11112") == 2  # the destination and the archive it starts
    (tmp_path / "etc").mkdir()
    config = tmp_path / "etc" / "legacy-gateway.yaml"
    config.write_text(shipped.replace("port: 11112", f"port: {port}").replace("settle_time: 2s", "settle_time: 300ms"))
    daemon = Daemon(config, tmp_path).start()
    try:
        incoming = tmp_path / "var" / "incoming"
        wait_until(incoming.is_dir, 20, what="./var/incoming created")
        src = samples / "dicom_vendor_nopreamble" / "OT-MONO2-8-a7_Philips_nopreamble.dcm"
        shutil.copy(src, incoming / src.name)
        uid = str(pydicom.dcmread(src, force=True).SOPInstanceUID)
        stored = wait_until(lambda: list((tmp_path / "var" / "archive").rglob(f"{uid}.dcm")), 30, what="archived file")
        assert pydicom.dcmread(stored[0]).PixelData == pydicom.dcmread(src, force=True).PixelData
        assert (incoming / "done" / src.name).exists()
    finally:
        assert daemon.stop() == 0


def test_wheel_ships_the_example_configuration_unit_and_license(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    import zipfile

    (wheel,) = tmp_path.glob("legacy_gateway-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("legacy-gateway.yaml", "legacy-gateway.service", "LICENSE"):
        assert any(n.endswith(f".data/data/share/legacy-gateway/{shipped}") for n in names), names
    assert any(n.endswith("licenses/LICENSE") for n in names)
