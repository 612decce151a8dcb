"""Changes recorded in the Original Attributes Sequence (PS3.3 C.12.1.1.9), read back from the file."""

from __future__ import annotations

import io
import subprocess

from pydicom import dcmread

from gateway.delivery.spool import encode
from gateway.dicom.provenance import COERCE, CORRECT, MODIFYING_SYSTEM, Changes, changes
from tests.support.helpers import ct_instance


def test_previous_values_kept_per_reason_and_listed_from_the_file(tmp_path):
    ds = ct_instance(1)
    ds.StudyDate = "1996.03.12"
    recorder = Changes()
    recorder.set(ds, "StudyDate", "19960312")
    recorder.set(ds, "StudyDate", "19960313")  # a second change keeps the first previous value
    recorder.set(ds, "InstitutionName", "Radiology")
    recorder.set(ds, "PatientID", "MRN42", COERCE)
    recorder.write(ds, "export:a.dcm")
    assert not recorder
    back = dcmread(io.BytesIO(encode(ds)))
    items = back.OriginalAttributesSequence
    assert [i.ReasonForTheAttributeModification for i in items] == [CORRECT, COERCE]
    assert all(i.ModifyingSystem == MODIFYING_SYSTEM and i.SourceOfPreviousValues == "export:a.dcm" for i in items)
    assert items[0].ModifiedAttributesSequence[0].StudyDate == "1996.03.12"
    assert "InstitutionName" in items[0].ModifiedAttributesSequence[0]  # absent before: recorded empty
    assert sorted(changes(back)) == [(COERCE, "PatientID", "FWD0001", "MRN42"),
                                     (CORRECT, "InstitutionName", "(absent)", "Radiology"),
                                     (CORRECT, "StudyDate", "1996.03.12", "19960313")]
    path = tmp_path / "x.dcm"
    path.write_bytes(encode(back))
    dump = subprocess.run(["dcmdump", str(path)], capture_output=True, text=True).stdout
    assert "(0400,0561)" in dump and "CORRECT" in dump and "COERCE" in dump


def test_nothing_written_without_changes():
    ds = ct_instance(2)
    Changes().write(ds)
    assert "OriginalAttributesSequence" not in ds and changes(ds) == []
