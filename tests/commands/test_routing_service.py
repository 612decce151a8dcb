"""A migration run of the real service: routes by modality to two real receivers, Patient IDs
mapped from a CSV file, every coercion kept in the Original Attributes Sequence."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import pydicom

from gateway.delivery.spool import encode
from gateway.dicom.provenance import COERCE
from tests.support.daemon import ROOT, Daemon, wait_until, write_config
from tests.support.helpers import ct_instance
from tests.support.peers import dciodvfy_errors
from tests.support.tape_bytes import as_records, aws_tape

ROUTES = """\
routes:
  - match: {modality: CT}
    to: [storescp]
  - match: {modality: MR}
    to: [orthanc, storescp]
coerce:
  institution_name: General Hospital
  patient_ids: {file: ids.csv, from_column: legacy_id, to_column: mrn, unmapped: reject}
"""


def test_ct_to_one_mr_to_both_with_patient_ids_mapped(tmp_path, orthanc, storescp, samples):
    incoming, spool = tmp_path / "incoming", tmp_path / "spool"
    incoming.mkdir()
    config = write_config(tmp_path / "gw.yaml", incoming=incoming, spool=spool,
                          destinations=[{"name": "orthanc", "port": orthanc.dicom_port},
                                        {"name": "storescp", "port": storescp.port, "aet": storescp.aet}])
    config.write_text(config.read_text() + ROUTES)
    mr_file = samples / "dicom_vendor" / "MR-SIEMENS-DICOM-WithOverlays.dcm"
    mr = pydicom.dcmread(mr_file)
    legacy = {"ct1": "LEG-0001", "ct2": "LEG-0002", "mr": str(mr.PatientID)}
    mrn = {"ct1": "MRN1001", "ct2": "MRN1002", "mr": "MRN2002"}
    (tmp_path / "ids.csv").write_text("legacy_id,mrn,note\n" + "".join(f"{legacy[k]},{mrn[k]},{k}\n" for k in legacy)
                                      + "LEG-0404,MRN4040,not in this batch\n")
    cts = {}
    for name, index in (("ct1", 1), ("ct2", 2), ("ct3", 3)):
        ds = ct_instance(index)
        ds.PatientID = legacy.get(name, "LEG-0003")  # ct3's ID is not in the map: rejected
        ds.InstitutionName = "Legacy Imaging"
        # what the CT IOD asks for beyond the forwarding tests' minimal slice (dciodvfy checks it)
        ds.Manufacturer, ds.PatientPosition, ds.Laterality, ds.AcquisitionNumber = "Legacy", "HFS", "", 1
        cts[name] = ds
    daemon = Daemon(config, tmp_path)  # its working directory holds ids.csv
    daemon.start()
    try:
        shutil.copy(mr_file, incoming / "mr.dcm")
        for name, ds in cts.items():
            (incoming / f"{name}.dcm").write_bytes(encode(ds))
        wait_until(lambda: len(storescp.received()) == 3, 60, what="three instances at storescp")
        wait_until(lambda: (incoming / "quarantine" / "ct3.dcm.reason.txt").exists(), 10, what="ct3 quarantined")
        wait_until(lambda: not list((spool / "files").rglob("*.dcm")), 30, what="spool emptied")
    finally:
        assert daemon.stop() == 0

    # Routing: the MR only in Orthanc; CT and MR at storescp.
    assert orthanc.sop_instance_uids() == [str(mr.SOPInstanceUID)]
    at_storescp = {str(d.SOPInstanceUID): d for d in map(pydicom.dcmread, storescp.received())}
    assert sorted(at_storescp) == sorted(str(d.SOPInstanceUID) for d in (mr, cts["ct1"], cts["ct2"]))

    # What Orthanc stored: the mapped ID, the previous values kept with reason COERCE, valid.
    stored = tmp_path / "orthanc-mr.dcm"
    stored.write_bytes(orthanc.file(str(mr.SOPInstanceUID)))
    in_orthanc = pydicom.dcmread(stored)
    assert in_orthanc.PatientID == mrn["mr"] and in_orthanc.InstitutionName == "General Hospital"
    (item,) = [i for i in in_orthanc.OriginalAttributesSequence if i.ReasonForTheAttributeModification == COERCE]
    before = item.ModifiedAttributesSequence[0]
    assert before.PatientID == legacy["mr"] and before.InstitutionName == mr.InstitutionName
    assert item.SourceOfPreviousValues == "export:mr.dcm"
    (patient,) = orthanc.get("/patients")
    assert orthanc.get(f"/patients/{patient}")["MainDicomTags"]["PatientID"] == mrn["mr"]
    assert dciodvfy_errors(stored) == []

    for name in ("ct1", "ct2"):
        got = at_storescp[str(cts[name].SOPInstanceUID)]
        assert got.PatientID == mrn[name]
        assert _coerced(got).PatientID == legacy[name]
        assert got.PixelData == cts[name].PixelData
    for path in storescp.received():
        assert dciodvfy_errors(path) == [], path

    # An ID the map lacks is refused without being named; no ID, old or new, reaches the log.
    reason = (incoming / "quarantine" / "ct3.dcm.reason.txt").read_text()
    assert "Patient ID not in ids.csv" in reason and "LEG-0003" not in reason
    log = daemon.log_text()
    assert "event=spooled" in log and "event=rejected" in log
    for secret in [*legacy.values(), *mrn.values(), "LEG-0003"]:
        assert secret not in log, secret
    assert sorted(p.name for p in (incoming / "done").iterdir()) == ["ct1.dcm", "ct2.dcm", "mr.dcm"]


def test_a_tape_migration_maps_patient_ids_too(tmp_path, orthanc):
    """ingest-tape applies the coercions (its --to chooses the destinations, so no routes)."""
    cts = []
    for index, legacy in enumerate(("TAPE-17", "TAPE-18")):
        ds = ct_instance(index)
        ds.PatientID = legacy
        cts.append(ds)
    tape = tmp_path / "box.aws"
    tape.write_bytes(aws_tape([as_records(encode(ds), 32768) for ds in cts]))
    (tmp_path / "ids.csv").write_text("legacy,mrn\nTAPE-17,MRN17\nTAPE-18,MRN18\n")
    config = tmp_path / "gw.yaml"
    config.write_text(f"""\
gateway: {{spool_dir: {tmp_path / 'spool'}, state_dir: {tmp_path / 'state'}, log_level: INFO}}
destinations:
  - {{name: orthanc, host: 127.0.0.1, port: {orthanc.dicom_port}, called_ae: ORTHANC}}
  - {{name: other, host: 127.0.0.1, port: 1, called_ae: OTHER}}
routes:
  - match: {{}}
    to: [other]
coerce:
  patient_ids: {{file: {tmp_path / 'ids.csv'}, from_column: legacy, to_column: mrn}}
archive: {{enabled: false}}
""")
    run = subprocess.run([sys.executable, "-m", "gateway", "ingest-tape", str(tape), "-c", str(config), "--to",
                          "orthanc", "--no-progress"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stdout + run.stderr
    got = {}
    for ds in cts:
        stored = pydicom.dcmread(io.BytesIO(orthanc.file(str(ds.SOPInstanceUID))))
        (item,) = [i for i in stored.OriginalAttributesSequence if i.ReasonForTheAttributeModification == COERCE]
        got[item.ModifiedAttributesSequence[0].PatientID] = stored.PatientID
    assert got == {"TAPE-17": "MRN17", "TAPE-18": "MRN18"}
    for secret in ("TAPE-17", "TAPE-18", "MRN17", "MRN18"):
        assert secret not in run.stdout + run.stderr


def test_send_applies_the_coercions_too(tmp_path, storescp):
    """One-shot ``send`` spools through the same conversion, so what it delivers is coerced alike."""
    from tests.support.forwarding import write_config as service_config

    (tmp_path / "ids.csv").write_text("legacy,mrn\nSEND-1,MRN0001\n")
    config = service_config(tmp_path / "gw.yaml", tmp_path / "spool", [
        {"name": "pacs", "host": "127.0.0.1", "port": storescp.port, "called_ae": storescp.aet}],
        coerce={"institution_name": "General Hospital",
                "patient_ids": {"file": str(tmp_path / "ids.csv"), "from_column": "legacy", "to_column": "mrn"}})
    ds = ct_instance(5)
    ds.PatientID = "SEND-1"
    (tmp_path / "a.dcm").write_bytes(encode(ds))
    run = subprocess.run([sys.executable, "-m", "gateway", "send", "-c", str(config), str(tmp_path / "a.dcm"), "--to",
                          "pacs"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stdout + run.stderr
    (received,) = map(pydicom.dcmread, storescp.received())
    assert (received.PatientID, received.InstitutionName) == ("MRN0001", "General Hospital")
    assert _coerced(received).PatientID == "SEND-1"
    assert "SEND-1" not in run.stdout + run.stderr and "MRN0001" not in run.stdout + run.stderr


def _coerced(ds):
    """The previous values of the one COERCE item (repairs of DICOM passed through are CORRECT items)."""
    (item,) = [i for i in ds.OriginalAttributesSequence if i.ReasonForTheAttributeModification == COERCE]
    return item.ModifiedAttributesSequence[0]
