"""Patient data stays private: every file and folder the service creates is the owner's alone
whatever the umask it was started with, and no log line carries a patient's name, even where
pydicom would print the raw value of a malformed element."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gateway.delivery.spool import encode
from tests.support.daemon import Daemon, wait_until
from tests.support.helpers import ct_instance
from tests.support.peers import free_port

SECRET = "DOE^SECRET"  # the patient's name, 10 characters


def _config(tmp_path: Path, incoming: Path, archive_port: int) -> Path:
    path = tmp_path / "gw.yaml"
    path.write_text(f"""\
gateway:
  spool_dir: {tmp_path / 'var' / 'spool'}
  state_dir: {tmp_path / 'var' / 'state'}
  log_level: INFO
destinations:
  - name: archive
    host: 127.0.0.1
    port: {archive_port}
    called_ae: ARCHIVE
sources:
  - name: export
    type: folder
    path: {incoming}
    settle_time: 200ms
    orphan_time: 1s
    poll_interval: 200ms
archive:
  enabled: true
  port: {archive_port}
  directory: {tmp_path / 'var' / 'archive'}
""")
    return path


def _malformed_instance() -> bytes:
    """A CT slice whose Instance Number (IS) bytes hold the patient's name: pydicom warns
    "Invalid value for VR IS: ..." with the raw value when it reads it."""
    ds = ct_instance(7)
    ds.PatientName = SECRET
    ds.InstanceNumber = "1234567890"
    data = encode(ds)
    assert data.count(b"1234567890") == 1
    return data.replace(b"1234567890", SECRET.encode())


def _modes(*roots: Path) -> dict[str, int]:
    found = {}
    for root in roots:
        found[str(root)] = stat.S_IMODE(root.stat().st_mode)
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                path = Path(folder) / name
                found[str(path)] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_files_are_private_whatever_the_umask_and_logs_carry_no_patient_name(tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    daemon = Daemon(_config(tmp_path, incoming, free_port()), tmp_path)
    old = os.umask(0)  # the child inherits the most careless umask there is
    try:
        daemon.start()
    finally:
        os.umask(old)
    try:
        (incoming / "good.dcm").write_bytes(encode(ct_instance(1)))
        (incoming / "odd.dcm").write_bytes(_malformed_instance())
        (incoming / "garbage.bin").write_bytes(b"not an image at all" * 40)
        archive = tmp_path / "var" / "archive"
        wait_until(lambda: len(list(archive.rglob("*.dcm"))) == 2, 30, what="both instances archived")
        wait_until(lambda: list((incoming / "quarantine").glob("*.reason.txt")), 10, what="the garbage quarantined")
        wait_until(lambda: len(list((incoming / "done").iterdir())) == 2, 10, what="both files done")
    finally:
        assert daemon.stop() == 0
    modes = _modes(tmp_path / "var", incoming / "done", incoming / "quarantine")
    assert any(p.endswith("spool.db") for p in modes) and any(".dcm" in p for p in modes)
    loose = {path: oct(mode) for path, mode in modes.items() if mode & 0o077}
    assert loose == {}
    log = daemon.log_text()
    assert "event=library" in log and "Invalid value for VR IS" in log  # pydicom did speak ...
    assert "SECRET" not in log  # ... but not the name


def test_the_formatter_withholds_pydicom_values_everywhere_and_keeps_library_lines_on_one_line():
    import logging

    from gateway.logs import Formatter

    def line(name: str, message: str, exc: Exception | None = None) -> str:
        record = logging.LogRecord(name, logging.WARNING, __file__, 1, message, (), None)
        if exc is not None:
            try:
                raise exc
            except Exception:  # noqa: BLE001
                import sys
                record.exc_info = sys.exc_info()
        return Formatter().format(record)

    ours = line("gateway.pipeline", "event=rejected reason=\"cannot build: ValueError: Invalid value for VR PN: "
                "'DOE^SECRET'\"")
    assert "SECRET" not in ours and "event=rejected" in ours
    failed = line("gateway.service.daemon", "event=capture_failed",
                  ValueError("Invalid value for VR LO: b'SECRET\\x01ID'"))
    assert "SECRET" not in failed and "Traceback" in failed
    library = line("pynetdicom.assoc", "Association Aborted\nreason: 'DOE^SECRET'")
    assert "\n" not in library and "SECRET" not in library and "event=library" in library


def test_ingest_tape_journal_and_extracted_files_are_private_whatever_the_umask(tmp_path, storescp):
    import subprocess
    import sys

    from tests.support.daemon import ROOT
    from tests.support.tape_bytes import as_records, simh_tape

    tape = tmp_path / "box.tap"
    tape.write_bytes(simh_tape([as_records(encode(ct_instance(i))) for i in range(2)]))
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"gateway:\n  spool_dir: {tmp_path / 'var' / 'spool'}\n  state_dir: {tmp_path / 'var' / 'state'}\n"
                   f"destinations:\n  - name: pacs\n    host: 127.0.0.1\n    port: {storescp.port}\n"
                   f"    called_ae: {storescp.aet}\narchive:\n  enabled: false\n")
    done = subprocess.run([sys.executable, "-m", "gateway", "ingest-tape", str(tape), "-c", str(cfg), "--to", "pacs",
                           "--no-progress", "--extract", str(tmp_path / "var" / "raw")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=lambda: os.umask(0))
    assert done.returncode == 0, done.stdout + done.stderr
    modes = _modes(tmp_path / "var")
    assert any(p.endswith(".jsonl") and "/state/" in p for p in modes)  # the journal
    assert any("/raw/" in p for p in modes)                             # the extracted tape files
    assert {path: oct(mode) for path, mode in modes.items() if mode & 0o077} == {}
