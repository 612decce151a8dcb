"""ACR-NEMA value forms to DICOM (acr-nema.md 5); expected values follow PS3.5's DA/TM/DS/IS."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.dicom import values as acrvalues


@pytest.mark.parametrize("text,expected", [
    ("1996.12.02", "19961202"), ("19940613", "19940613"), ("1994-06-13", "19940613"), ("1994/06/13", "19940613"),
    ("1996.13.02", None), ("02.12.1996", None), ("", None),
])
def test_dates(text, expected):
    assert acrvalues.date(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("16:32:39", "163239"), ("16:38:46.783000 ", "163846.783000"), ("15:20:53.000", "152053.000"),
    ("16.38.46.783", "163846.783"),  # the brief's hh.mm.ss.frac form
    ("07:44", "074400"), ("153226.392000", "153226.392000"), ("1532", "1532"),
    ("25:00:00", None), ("16:61:00", None), ("noon", None),
])
def test_times(text, expected):
    assert acrvalues.time(text) == expected


@pytest.mark.parametrize("text,ds,is_", [
    ("002.000000E+00", "2", "2"), ("-01.024000E+03", "-1024", "-1024"), ("002.880000E+01", "28.8", "29"),
    ("000050", "50", "50"), ("-0.000000E+00", "0", "0"), ("006.726233E-44", "6.726233e-44", "0"), ("abc", None, None),
])
def test_numbers(text, ds, is_):
    assert acrvalues.ds(text) == ds
    assert acrvalues.integer_string(text) == is_
    if ds is not None:
        assert len(ds) <= 16 and acrvalues.is_valid("DS", ds)


@pytest.mark.parametrize("value,head_first,expected", [
    ("HFS", None, ("HFS", False)), ("HF S", None, ("HFS", False)), ("SUPINE", None, ("HFS", True)),
    ("SUPI", False, ("FFS", False)), ("PRON", True, ("HFP", False)), ("LEFT", True, ("HFDL", False)),
    ("SITTING", None, (None, False)),
])
def test_patient_position(value, head_first, expected):
    assert acrvalues.patient_position(value, head_first) == expected


def test_enumerations():
    assert [acrvalues.patient_sex(v) for v in ("f", "M ", "o", "X", "female")] == ["F", "M", "O", "", "F"]
    assert [acrvalues.laterality(v) for v in ("RIGHT", "l", "NO", "B")] == ["R", "L", "", ""]
    assert acrvalues.code_string("minusX") == "MINUSX" and acrvalues.code_string("A-B") is None


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["DS", "IS", "LO", "SH", "LT", "PN"]),
       st.lists(st.text(alphabet="0123456789.+-eE aZ\t\n\x01\x1b", max_size=20), min_size=1, max_size=6))
def test_all_valid_never_accepts_what_one_by_one_refuses(vr, values):
    """The one-pass check is a shortcut only: whenever it says yes, every value is empty or
    valid by ``is_valid``."""
    if acrvalues.all_valid(vr, values):
        assert all(v == "" or acrvalues.is_valid(vr, v) for v in values)


def test_all_valid_accepts_typical_siemens_numbers():
    assert acrvalues.all_valid("DS", ["1.5", "-0.25", " 3 ", "", "1e-3", ".5"])
    assert acrvalues.all_valid("IS", ["0", "-12", "+7 "])
    assert not acrvalues.all_valid("DS", ["1.5", "abc"])
    assert not acrvalues.all_valid("IS", ["1234567890"])  # beyond what the shortcut vouches for
