"""Coercions replace attributes and record every previous value in the Original Attributes Sequence."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread

from gateway.delivery.spool import encode
from gateway.dicom.coercion import Coercion, PatientIdMap
from gateway.dicom.provenance import COERCE, changes
from gateway.errors import DecodeError
from tests.support.helpers import ct_instance


def test_replaced_and_added_values_are_recorded_once_with_reason_coerce():
    ds = ct_instance(1)
    ds.PatientID = "LEG-7 "
    ds.InstitutionName = "Old Name"
    ds.StudyDescription = "Same"
    coercion = Coercion({"InstitutionName": "General Hospital", "IssuerOfPatientID": "GH",
                         "StudyDescription": "Same"},
                        PatientIdMap("ids.csv", {"LEG-7": "MRN0007"}))
    assert coercion.apply(ds, "export:a.dcm")
    back = dcmread(io.BytesIO(encode(ds)))
    (item,) = back.OriginalAttributesSequence
    assert item.ReasonForTheAttributeModification == COERCE and item.SourceOfPreviousValues == "export:a.dcm"
    # An unchanged value (StudyDescription) is no coercion and is not recorded.
    assert sorted(changes(back)) == [(COERCE, "InstitutionName", "Old Name", "General Hospital"),
                                     (COERCE, "IssuerOfPatientID", "(absent)", "GH"),
                                     (COERCE, "PatientID", "LEG-7", "MRN0007")]
    assert back.PatientID == "MRN0007"


def test_nothing_to_change_writes_nothing():
    ds = ct_instance(2)
    ds.InstitutionName = "General Hospital"
    assert not Coercion({"InstitutionName": "General Hospital"}, PatientIdMap("ids.csv", {"OTHER": "X"})).apply(ds, "s")
    assert "OriginalAttributesSequence" not in ds and ds.PatientID == "FWD0001"


def test_unmapped_patient_id_is_rejected_without_naming_it():
    ds = ct_instance(3)
    ds.PatientID = "LEG-SECRET-9"
    with pytest.raises(DecodeError) as info:
        Coercion({}, PatientIdMap("/site/ids.csv", {"LEG-1": "M1"}, reject_unmapped=True)).apply(ds, "s")
    assert "ids.csv" in str(info.value) and "LEG-SECRET-9" not in str(info.value)
    assert info.value.field == "PatientID"
