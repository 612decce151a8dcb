"""DICOM passed through keeps the bytes of its unchanged elements (``gateway.dicom.verbatim``).

The fast path must be sound: for every real DICOM sample, the mutated early-DICOM streams of
``test_early_dicom`` and made-up files with each encoding detail pydicom's writer would change,
the Part-10 bytes ``prepare`` returns must read (with pydicom) as the same File Meta and data
set as pydicom's own encoding of the same finished dataset (``encode``, the slow path), and
dciodvfy must find no more errors in them. Which inputs take the fast path is checked too, so a
fast path that is never taken cannot pass for a sound one.
"""

from __future__ import annotations

import io
import struct

import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from gateway import formats
from gateway.capture import Capture, Origin
from gateway.delivery.spool import encode
from gateway.pipeline import prepare
from tests.formats import test_early_dicom as early
from tests.support.instances import ct_instance
from tests.support.peers import dciodvfy_errors

PART10 = ["DICOM_KNEE_GE_SignaHDxt.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm"]
HEADERLESS = [early.MARCONI_CT, early.PHILIPS_SC]


def _part10(ds: pydicom.Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    buf = io.BytesIO()
    ds.save_as(buf, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True, enforce_file_format=True)
    return buf.getvalue()


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def _same_as_slow_path(raw: bytes, name: str, tmp_path) -> bytes:
    """``prepare``'s bytes, checked against pydicom's encoding of the same finished dataset."""
    instance = prepare(Capture(raw, Origin("test", name)))
    slow = encode(instance.dataset)
    fast, reference = _read(instance.data), _read(slow)
    assert fast.file_meta == reference.file_meta
    assert fast.preamble == reference.preamble
    assert fast == reference
    assert sorted(fast.keys()) == sorted(reference.keys())
    (tmp_path / "fast.dcm").write_bytes(instance.data)
    (tmp_path / "slow.dcm").write_bytes(slow)
    assert dciodvfy_errors(tmp_path / "fast.dcm") == dciodvfy_errors(tmp_path / "slow.dcm")
    return instance.data


def _taken(raw: bytes) -> bool:
    return formats.decode(raw).verbatim is not None


@pytest.mark.parametrize("name", PART10 + HEADERLESS)
def test_real_samples_give_the_slow_paths_data_set(samples, tmp_path, name):
    folder = "dicom_vendor" if name in PART10 else "dicom_vendor_nopreamble"
    raw = (samples / folder / name).read_bytes()
    out = _same_as_slow_path(raw, name, tmp_path)
    (tmp_path / "source.dcm").write_bytes(raw)  # a vendor's own mistakes stay; we add none
    assert set(dciodvfy_errors(tmp_path / "fast.dcm")) <= set(dciodvfy_errors(tmp_path / "source.dcm"))
    if _taken(raw):  # the sample's Pixel Data went through as its bytes
        pixels = formats.decode(raw).dataset.PixelData
        assert pixels in out


def _early_cases(samples) -> dict[str, bytes]:
    """test_early_dicom's mutations of the headerless samples, one habit each, plus the
    Marconi sample without its group lengths."""
    marconi, philips = early.sample(samples, early.MARCONI_CT), early.sample(samples, early.PHILIPS_SC)
    cases = {}

    def case(name: str, base: dict[int, bytes], **changes: bytes | None) -> None:
        elems = dict(base)
        for key, value in changes.items():
            tag = int(key[1:], 16)
            if value is None:
                elems.pop(tag, None)
            else:
                elems[tag] = value
        cases[name] = early.stream(elems)

    case("series=study", marconi, t0020000E=marconi[0x0020000D])
    case("dotted dates", marconi, t00080020=b"1998.09.22", t00080021=b"1998.09.22", t00080030=b"17:43:33",
         t00080032=b"17:43:33.50")
    case("cr without geometry", philips, t00080016=early.CR_IMAGE_STORAGE.encode(), t00080060=b"CR", t00080064=None)
    case("over-long LO", marconi, t00080080=b"MEMORIAL SLOAN-KETTERING CANCER CENTER, DEPARTMENT OF MEDICAL PHYSICS")
    case("retired", marconi, t00280040=b"RECT", t00200030=b"0\\0\\-839", t00080024=b"1998.09.22")
    case("missing type 1", marconi, t00280102=None, t00080060=None)
    case("invalid uid", marconi, t00080018=b"2.16.840.1.113662.02.2397298814474523980922174333949802268764")
    no_lengths = early.elements((samples / "dicom_vendor_nopreamble" / early.MARCONI_CT).read_bytes())
    cases["no group lengths"] = b"".join(struct.pack("<HHI", t >> 16, t & 0xFFFF, len(v)) + v
                                         for t, v in sorted(no_lengths.items()) if t & 0xFFFF)
    return cases


def test_mutated_early_dicom_gives_the_slow_paths_data_set(samples, tmp_path):
    cases = _early_cases(samples)
    for name, raw in cases.items():
        _same_as_slow_path(raw, name, tmp_path)
        assert dciodvfy_errors(tmp_path / "fast.dcm") == [], name
    assert all(_taken(raw) for raw in cases.values())  # implicit VR, even lengths: all spliced


def test_a_clean_instance_keeps_its_data_set_bytes(tmp_path):
    ds = ct_instance(1, 64)
    ds.Manufacturer, ds.AcquisitionNumber, ds.PositionReferenceIndicator = "ACME", 1, ""
    raw = _part10(ds)
    out = _same_as_slow_path(raw, "clean", tmp_path)
    assert _taken(raw)
    # Nothing needed repair: after our File Meta, the data set is the input's, byte for byte.
    start = 132 + 12 + struct.unpack_from("<I", raw, 140)[0]
    assert out.endswith(raw[start:])
    assert "OriginalAttributesSequence" not in _read(out)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_an_instance_needing_repairs_keeps_its_other_elements(tmp_path, syntax):
    ds = ct_instance(2, 64)  # no Manufacturer (type 2): added, and the record written
    ds.StudyDate = "2024.01.01"  # repaired
    raw = _part10(ds, syntax)
    out = _same_as_slow_path(raw, "repaired", tmp_path)
    assert _taken(raw) and ds.PixelData in out
    written = _read(out)
    assert written.StudyDate == "20240101" and "OriginalAttributesSequence" in written


def _raw_element(tag: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


def _insert(raw: bytes, element: bytes, before_tag: int) -> bytes:
    """``element`` put into an explicit VR LE Part-10 file before the first element with
    ``before_tag`` (found by its bytes)."""
    at = raw.index(struct.pack("<HH", before_tag >> 16, before_tag & 0xFFFF), 132 + 12)
    return raw[:at] + element + raw[at:]


def _with_charset(charset: str) -> bytes:
    ds = ct_instance(3, 32)
    ds.SpecificCharacterSet = charset
    ds.InstitutionName = "Hôpital"
    return _part10(ds)


def _encapsulated() -> bytes:
    ds = ct_instance(4, 32)
    ds.compress(RLELossless)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _group_length_in_an_item() -> bytes:
    """An item holding a group length, which pydicom leaves out when it writes the item."""
    ds = ct_instance(8, 32)
    code = pydicom.Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T-D1100", "SRT", "Head"
    ds.AnatomicRegionSequence = [code]
    raw = _part10(ds)
    at = raw.index(b"T-D1100") - 8  # Code Value: its tag, VR and length come first
    body = struct.unpack_from("<I", raw, at - 4)[0]  # the item's length, just before it
    length = _raw_element(0x00080000, b"UL", struct.pack("<I", body))
    patched = raw[:at - 4] + struct.pack("<I", body + len(length)) + length + raw[at:]
    sq = patched.index(struct.pack("<HH", 0x0008, 0x2218))  # the sequence's own length grows too
    if patched[sq + 4:sq + 6] == b"SQ" and struct.unpack_from("<I", patched, sq + 8)[0] != 0xFFFFFFFF:
        size = struct.unpack_from("<I", patched, sq + 8)[0] + len(length)
        patched = patched[:sq + 8] + struct.pack("<I", size) + patched[sq + 12:]
    return patched


def _deflated() -> bytes:
    return _part10(ct_instance(5, 32), DeflatedExplicitVRLittleEndian)


# Made-up inputs with an encoding detail pydicom's writer changes: not taken, and still sound.
NOT_TAKEN = {
    "odd length": lambda: _insert(_part10(ct_instance(6, 32)), _raw_element(0x00081090, b"LO", b"ODD"), 0x00100010),
    "UN for a known tag": lambda: _insert(_part10(ct_instance(7, 32)),
                                          struct.pack("<HH2sHI", 0x0008, 0x1090, b"UN", 0, 4) + b"ACME", 0x00100010),
    "utf-8": lambda: _with_charset("ISO_IR 192"),
    "group length in an item": lambda: _group_length_in_an_item(),
    "deflated": _deflated,
}


@pytest.mark.parametrize("name", list(NOT_TAKEN))
def test_what_pydicom_would_write_otherwise_goes_the_slow_way(tmp_path, name):
    raw = NOT_TAKEN[name]()
    assert not _taken(raw)
    _same_as_slow_path(raw, name, tmp_path)


@pytest.mark.parametrize("make", [lambda: _with_charset("ISO_IR 100"), _encapsulated], ids=["latin-1", "rle"])
def test_latin1_text_and_encapsulated_pixels_are_taken(tmp_path, make):
    raw = make()
    assert _taken(raw)
    _same_as_slow_path(raw, "taken", tmp_path)
