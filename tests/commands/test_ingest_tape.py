"""``legacy-gateway ingest-tape`` end to end: hand-built tape images into a real Orthanc.

The images carry real sample files (read back independently with pydicom for the expected
UIDs), synthetic DICOM instances, ANSI labels, a leading non-image file as GE tapes have, and
damage (a record written with errors, a corrupt length word, a truncated end).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pydicom

from gateway.delivery.spool import encode
from tests.support.daemon import ROOT, wait_until
from tests.support.helpers import ct_instance
from tests.support.tape_bytes import (
    SIMH_MARK,
    ansi_label,
    as_records,
    aws_tape,
    simh_record,
    simh_tape,
)

SAMPLE_FILES = ["dicom_vendor/DICOM_KNEE_GE_SignaHDxt.dcm", "dicom_vendor_nopreamble/prostate_Marconi_nopreamble.img",
                "dicom_vendor/MR-SIEMENS-DICOM-WithOverlays.dcm"]
PATIENT_SECRETS = ("Test^Forward", "FWD0001")  # the synthetic instances' patient


def config(tmp_path: Path, orthanc=None) -> Path:
    lines = ["gateway:", f"  spool_dir: {tmp_path / 'spool'}", f"  state_dir: {tmp_path / 'state'}",
             "  log_level: INFO", "destinations:"]
    port = orthanc.dicom_port if orthanc else 1
    lines += ["  - name: orthanc", "    host: 127.0.0.1", f"    port: {port}", "    called_ae: ORTHANC",
              "    retry: {initial_delay: 200ms, max_delay: 1s}", "archive:", "  enabled: false"]
    path = tmp_path / "gw.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def ingest(*args, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gateway", "ingest-tape", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT, **kw)


def start_ingest(*args, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "gateway", "ingest-tape", *map(str, args)], env=env, cwd=ROOT,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def journal_lines(tmp_path: Path) -> list[dict]:
    files = [p for p in (tmp_path / "state" / "tape").glob("*.jsonl") if p.stem.count(".") == 0]
    assert len(files) == 1, files
    out = []
    for line in files[0].read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return [e for e in out if "file" in e]


def sample_blobs(samples: Path) -> list[bytes]:
    return [(samples / name).read_bytes() for name in SAMPLE_FILES]


def sop_uid(blob: bytes) -> str:
    import io
    return str(pydicom.dcmread(io.BytesIO(blob), force=True).SOPInstanceUID)


# -- dry run ---------------------------------------------------------------------------------


def test_dry_run_reports_studies_series_and_every_failure_with_its_position(tmp_path, samples):
    blobs = sample_blobs(samples)
    head = [ansi_label("VOL1", volume_serial="GE0042"), ansi_label("HDR1", file_id="IMAGES", sequence="0001")]
    files = [head, [b"GE SIGNA TAPE HEADER".ljust(2048, b"\0")]] + [as_records(b) for b in blobs]
    files.append(as_records(b"neither an image nor a label" * 40))
    img = simh_tape(files)
    tape = tmp_path / "study.tap"
    tape.write_bytes(img)
    out = ingest(tape, "--dry-run", "-c", tmp_path / "absent.yaml", "--no-progress")
    assert out.returncode == 1, out.stderr  # one tape file is no image
    text = out.stdout
    for blob in blobs:
        ds = pydicom.dcmread(__import__("io").BytesIO(blob), force=True)
        assert str(ds.StudyInstanceUID) in text and str(ds.SeriesInstanceUID) in text
    assert "images: 3" in text and "label group" in text and "GE0042" in text
    # The last data file: its position on the tape, counted independently from the layout.
    offset = sum(len(simh_record(r)) for f in files[:-1] for r in f) + 4 * (len(files) - 1)
    assert f"tape file {len(files) - 1}, byte offset {offset}" in text and "not an image" in text
    # The header file before the first image is noted, not counted as a failure.
    assert "tape file 1" in text and "GE tapes start with a header file" in text
    assert not (tmp_path / "state").exists()  # a dry run keeps no journal


# -- into Orthanc ------------------------------------------------------------------------------


def test_aws_tape_into_orthanc_then_again_sends_nothing_twice(tmp_path, orthanc, samples):
    blobs = sample_blobs(samples) + [encode(ct_instance(i, rows=64, columns=64)) for i in range(5)]
    expected = {sop_uid(b) for b in blobs}
    tape = tmp_path / "box1.aws"
    tape.write_bytes(aws_tape([as_records(b, 32768) for b in blobs]))
    cfg = config(tmp_path, orthanc)
    first = ingest(tape, "-c", cfg, "--to", "orthanc", "--no-progress", "--extract", tmp_path / "raw")
    assert first.returncode == 0, first.stdout + first.stderr
    assert sorted(orthanc.sop_instance_uids()) == sorted(expected)
    entries = journal_lines(tmp_path)
    assert [(e["file"], e["status"]) for e in entries] == [(i, "done") for i in range(len(blobs))]
    assert {e["sop"] for e in entries} == expected
    # The extract holds every tape file byte for byte, with its checksum in the manifest.
    manifest = [json.loads(x) for x in (tmp_path / "raw" / "manifest.jsonl").read_text().splitlines()]
    for blob, entry in zip(blobs, manifest):
        assert (tmp_path / "raw" / entry["name"]).read_bytes() == blob
        assert entry["sha256"] == hashlib.sha256(blob).hexdigest()
    for secret in PATIENT_SECRETS:
        assert secret not in first.stdout + first.stderr
    # The same tape again: a new journal, the old one kept, nothing delivered a second time.
    second = ingest(tape, "-c", cfg, "--no-progress")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "read before" in second.stdout
    assert sorted(orthanc.sop_instance_uids()) == sorted(expected)
    import sqlite3
    with sqlite3.connect(tmp_path / "spool" / "spool.db") as db:
        rows = db.execute("SELECT sop_instance_uid, attempts, state FROM deliveries").fetchall()
    assert len(rows) == len(expected) and all(a == 1 and s == "delivered" for _, a, s in rows)
    assert len(list((tmp_path / "state" / "tape").glob("*.jsonl"))) == 2


def damaged_tape(blobs: list[bytes]) -> tuple[bytes, dict]:
    """SIMH: file 0 good, file 1 with a record written with errors, file 2 good, file 3 with a
    corrupt length word, file 4 good, then the image is cut inside file 5."""
    parts, facts = [], {}
    pos = 0

    def add(b: bytes):
        nonlocal pos
        parts.append(b)
        pos += len(b)

    for n, blob in enumerate(blobs[:5]):
        recs = as_records(blob)
        facts[n] = pos
        for k, r in enumerate(recs):
            if n == 1 and k == 1:
                facts["flagged"] = pos
                add(simh_record(r, bad=True))
            elif n == 3 and k == 1:
                facts["corrupt"] = pos
                rec = bytearray(simh_record(r))
                rec[0:4] = (len(r) + 2).to_bytes(4, "little")
                add(bytes(rec))
            else:
                add(simh_record(r))
        add(SIMH_MARK)
    facts[5] = pos
    last = b"".join(simh_record(r) for r in as_records(blobs[5]))
    add(last[: len(last) // 2])
    return b"".join(parts), facts


def test_damage_is_reported_by_position_and_policy_decides(tmp_path, orthanc):
    blobs = [encode(ct_instance(i, rows=128, columns=128)) for i in range(6)]  # 32 KiB each: 5 records
    img, facts = damaged_tape(blobs)
    tape = tmp_path / "damaged.tap"
    tape.write_bytes(img)
    cfg = config(tmp_path, orthanc)
    out = ingest(tape, "-c", cfg, "--no-progress")
    assert out.returncode == 1
    good = {sop_uid(blobs[i]) for i in (0, 2, 4)}
    assert set(orthanc.sop_instance_uids()) == good  # damaged images are never sent
    text = out.stdout
    assert f"tape file 1, byte offset {facts[1]}" in text and "read with errors" in text
    assert f"tape file 3, byte offset {facts[3]}" in text and "corrupt length word" in text
    assert f"byte offset {facts['corrupt']}" in text
    assert f"tape file 5, byte offset {facts[5]}" in text and "truncated image" in text
    status = {e["file"]: e["status"] for e in journal_lines(tmp_path)}
    assert status == {0: "done", 1: "damaged", 2: "done", 3: "damaged", 4: "done", 5: "damaged"}

    # Policy stop: the read ends at the first bad record; the journal says how far it got, and a
    # resume goes on after the damaged file.
    stop_dir = tmp_path / "stop"
    stop_dir.mkdir()
    cfg2 = config(stop_dir, orthanc)
    out = ingest(tape, "-c", cfg2, "--no-progress", "--on-error", "stop")
    assert out.returncode == 1 and "policy stop" in out.stdout
    assert {e["file"]: e["status"] for e in journal_lines(stop_dir)} == {0: "done", 1: "damaged"}
    out = ingest(tape, "-c", cfg2, "--no-progress", "--on-error", "stop", "--resume")
    assert out.returncode == 1 and "resumed at tape file 2" in out.stdout
    assert {e["file"]: e["status"] for e in journal_lines(stop_dir)} == {0: "done", 1: "damaged", 2: "done",
                                                                         3: "damaged"}


def test_sigkill_mid_tape_then_resume_sends_the_rest_and_nothing_twice(tmp_path, orthanc):
    blobs = [encode(ct_instance(i, rows=32, columns=32)) for i in range(120)]
    expected = {sop_uid(b) for b in blobs}
    tape = tmp_path / "long.tap"
    tape.write_bytes(simh_tape([[b[:1024], b[1024:]] for b in blobs]))
    cfg = config(tmp_path, orthanc)
    proc = start_ingest(tape, "-c", cfg, "--no-progress", log=tmp_path / "first.log")
    journal_dir = tmp_path / "state" / "tape"

    def settled() -> int:
        files = list(journal_dir.glob("*.jsonl")) if journal_dir.exists() else []
        return sum(line.count('"status"') for line in (f.read_text() for f in files))

    wait_until(lambda: settled() >= 5 or proc.poll() is not None, 60, 0.005, "the first tape files settled")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    at_kill = len(journal_lines(tmp_path))
    assert 0 < at_kill < len(blobs), "the ingest finished before it could be killed mid-tape"
    out = ingest(tape, "-c", cfg, "--no-progress", "--resume")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"resumed at tape file {at_kill}" in out.stdout or f"resumed at tape file {at_kill + 1}" in out.stdout
    uids = orthanc.sop_instance_uids()
    assert sorted(uids) == sorted(expected) and len(uids) == len(set(uids))
    entries = journal_lines(tmp_path)
    assert sorted({e["file"] for e in entries}) == list(range(len(blobs)))
    assert {e["sop"] for e in entries} == expected


def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path):
    blobs = [encode(ct_instance(i, rows=32, columns=32)) for i in range(150)]
    tape = tmp_path / "long.tap"
    tape.write_bytes(simh_tape([[b] for b in blobs]))
    cfg = config(tmp_path)  # a PACS that is not there: everything stays spooled, which is fine here
    log = tmp_path / "first.log"
    proc = start_ingest(tape, "-c", cfg, "--no-progress", "--wait", "1", log=log)
    journal_dir = tmp_path / "state" / "tape"
    wait_until(lambda: journal_dir.exists() and any(journal_dir.glob("*.jsonl")) and
               len(journal_lines(tmp_path)) >= 3, 60, 0.005, "first tape files settled")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 130
    entries = journal_lines(tmp_path)
    assert 0 < len(entries) < len(blobs)
    assert [e["file"] for e in entries] == list(range(len(entries)))  # consistent: in order, no gaps
    assert "--resume" in log.read_text()
    out = ingest(tape, "-c", cfg, "--no-progress", "--resume", "--wait", "1")
    assert out.returncode == 3, out.stdout + out.stderr  # all read; delivery still pending (no PACS)
    assert [e["file"] for e in journal_lines(tmp_path)] == list(range(len(blobs)))


def test_progress_bar_and_log_lines_never_share_a_line(tmp_path):
    """On a terminal the bar is drawn; every log line must stand on its own line above it, never
    start in the middle of a half-drawn bar."""
    import fcntl
    import pty
    import re
    import struct
    import termios

    tape = tmp_path / "t.tap"
    simulate = [sys.executable, "-m", "gateway", "simulate", "-f", "genesis", "-n", "6", "--tape", str(tape)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    made = subprocess.run(simulate, capture_output=True, text=True, cwd=ROOT, env=env)
    assert made.returncode == 0, made.stderr
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))  # a terminal 200 wide
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "ingest-tape", str(tape), "--dry-run"], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    out = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        out += chunk
    proc.wait(60)
    os.close(controller)
    text = out.decode(errors="replace")
    assert "event=tape_file" in text and re.search(r"\d+%\|", text), text[-2000:]  # both a bar and log lines
    for piece in re.split(r"[\r\n]", text):
        assert not ("level=" in piece and re.search(r"\d+%\|", piece)), piece
        assert piece.count("level=") <= 1, piece
