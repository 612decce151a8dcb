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


# --- each thing once: values left raw, read once, encoded directly -----------------------

def _real_and_made(samples) -> dict[str, bytes]:
    """Real Part-10 and headerless samples, a clean and a repaired made-up CT, the early-DICOM
    mutations and the encodings that go the slow way: the inputs the checks below run over."""
    made = {name: (samples / "dicom_vendor" / name).read_bytes() for name in PART10}
    made.update({name: (samples / "dicom_vendor_nopreamble" / name).read_bytes() for name in HEADERLESS})
    clean = ct_instance(9, 32)
    clean.Manufacturer, clean.AcquisitionNumber, clean.PositionReferenceIndicator = "ACME", 1, ""
    made["clean"] = _part10(clean)
    repaired = ct_instance(10, 32)
    repaired.StudyDate, repaired.PatientID = "2024.01.01", "X" * 70
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        made[f"repaired {syntax}"] = _part10(repaired.copy(), syntax)
    made.update(_early_cases(samples))
    made.update({name: make() for name, make in NOT_TAKEN.items()})
    return made


def test_a_clean_instance_is_decoded_without_converting_its_values():
    from pydicom.dataelem import RawDataElement
    raw = _part10(ct_instance(11, 32))
    ds = formats.decode(raw).dataset
    converted = [tag for tag, elem in ds.items() if type(elem) is not RawDataElement]
    assert converted == []  # every value is plain: nothing to parse before someone reads it
    assert _taken(raw)


def test_plain_values_convert_silently_to_what_repair_keeps():
    """``plain`` is a promise: pydicom converts the element without a warning or an error,
    and ``conform_values`` would keep the value. Checked over hand-picked texts, each VR."""
    import warnings

    from pydicom.dataelem import RawDataElement, convert_raw_data_element
    from pydicom.tag import Tag

    from gateway.dicom import repair, verbatim
    tags = {"CS": 0x00080060, "DA": 0x00080020, "TM": 0x00080030, "UI": 0x00080018, "DS": 0x00180050,
            "IS": 0x00200013, "SH": 0x00200010, "LO": 0x00100020, "PN": 0x00100010, "US": 0x00280010}
    texts = [b"", b" ", b"\\", b"1\\", b"A", b"a", b"1.0", b"+1", b"-.5", b"1.", b".", b"-", b"01", b"1.02.3",
             b"1.2.3", b"20240101", b"2024010", b"120000", b"1200", b"120000.1234567", b"250000", b"1e5",
             b"12345678901234567", b"A B", b"A^B", b"A=B", b"1.0\\2.0", b"2147483647", b"9999999999",
             b"x" * 17, b"1" * 65, b"1\x00", b" 1", b"\x1b$B", b"\xe9", b"AB"]
    plain = 0
    for vr, tag in tags.items():
        for text in texts:
            value = text + (b"\0" if vr == "UI" else b" ") * (len(text) % 2)
            for implicit in (True, False):
                raw = RawDataElement(Tag(tag), None if implicit else vr, len(value), value, 0, implicit, True)
                if not verbatim.plain(raw, True):
                    continue
                plain += 1
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    elem = convert_raw_data_element(raw, encoding=["iso8859"])
                if vr in repair._CHECKED_VRS and elem.value not in (None, ""):
                    found = [repair._text(v) for v in (elem.value if elem.VM > 1 else [elem.value])]
                    fixed = [repair._conformed(vr, t) for t in found]
                    assert any(f is None for f in fixed) or fixed == found, (vr, value)
                filled = verbatim.filled(raw)
                assert filled is None or filled == (elem.value not in (None, "", [])), (vr, value)
    assert plain > 100


def test_values_read_without_the_hooks_are_pydicoms(samples):
    """``verbatim._converted`` gives what ``convert_raw_data_element`` gives, value and type."""
    from pydicom.dataelem import RawDataElement, convert_raw_data_element

    from gateway.dicom import verbatim
    fast = 0
    for name, data in _real_and_made(samples).items():
        ds = formats.decode(data).dataset
        for tag, raw in ds.items():
            if type(raw) is not RawDataElement:
                continue
            checked = verbatim.is_plain(ds, tag, raw)  # a plain UID is made without pydicom's check
            ours = verbatim._converted(ds, tag, raw, checked)
            theirs = convert_raw_data_element(raw, encoding=ds.original_character_set, ds=ds)
            fast += verbatim._fast_value(raw, checked) is not verbatim._SLOW
            assert (ours.VR, ours.value, type(ours.value), ours.file_tell) == \
                (theirs.VR, theirs.value, type(theirs.value), theirs.file_tell), (name, tag)
            if ours.VM > 1:
                assert [type(v) for v in ours.value] == [type(v) for v in theirs.value], (name, tag)
    assert fast > 50


def test_new_elements_are_encoded_as_pydicom_writes_them(samples):
    """``verbatim._encoded`` gives pydicom's bytes for every element it takes on (the
    provenance record among them), implicit and explicit; the rest it leaves to pydicom."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    from gateway.dicom import verbatim
    taken = set()
    for name, data in _real_and_made(samples).items():
        ds = prepare(Capture(data, Origin("test", name))).dataset
        for tag in ds.keys():
            elem = ds[tag]
            for implicit in (True, False):
                ours = verbatim._encoded(elem, implicit)
                if ours is None:
                    continue
                fp = DicomBytesIO()
                fp.is_implicit_VR, fp.is_little_endian = implicit, True
                write_data_element(fp, elem, ds.get("SpecificCharacterSet", "iso8859"))
                assert ours == fp.getvalue(), (name, tag, implicit)
                taken.add(elem.keyword)
    assert {"OriginalAttributesSequence", "Manufacturer", "StudyDate"} <= taken


def test_a_plain_file_is_read_in_one_pass_as_dcmread_and_the_completeness_walk_read_it(samples):
    from gateway.formats.dicom import passthrough
    read = 0
    for name, data in _real_and_made(samples).items():
        found = passthrough._read_plain(data) if data[128:132] == b"DICM" else None
        if found is None:
            continue
        read += 1
        ds, begin, spans = found
        reference = pydicom.dcmread(io.BytesIO(data))
        assert list(ds.items()) == list(reference.items()), name
        assert (ds.preamble, ds.file_meta, ds.original_encoding, ds.original_character_set) == \
            (reference.preamble, reference.file_meta, reference.original_encoding, reference.original_character_set)
        assert (begin, spans) == passthrough._check_complete(io.BytesIO(data), len(data), False, reference, defer=4096)
    assert read >= 4


@pytest.mark.parametrize("cut", [1, 7, 300])
def test_a_damaged_file_is_left_to_dcmread_and_keeps_its_error(cut):
    from gateway.errors import DecodeError
    from gateway.formats.dicom import passthrough
    data = _part10(ct_instance(12, 32))[:-cut]
    assert passthrough._read_plain(data) is None
    with pytest.raises(DecodeError, match="truncated|incomplete") as caught:
        formats.decode(data)
    assert caught.value.offset is not None


@pytest.mark.parametrize("length", [206, 205, 999])  # as written; one too few; far off
def test_the_file_meta_is_read_as_pydicom_reads_it_and_a_wrong_group_length_logged_as_it_logs(length, caplog):
    """The File Meta built from our own walk is pydicom's; a group length that does not match
    is left to pydicom's reader, whose one INFO line is neither lost nor said twice."""
    import logging

    from gateway.formats.dicom import passthrough
    data = bytearray(_part10(ct_instance(12, 32)))
    assert struct.unpack_from("<I", data, 140)[0] == 206
    struct.pack_into("<I", data, 140, length)
    with caplog.at_level(logging.INFO, logger="pydicom"):
        ds = passthrough._read_plain(bytes(data))[0]
    ours = [r.getMessage() for r in caplog.records if r.name == "pydicom"]  # not another thread's
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pydicom"):
        reference = pydicom.dcmread(io.BytesIO(bytes(data)))
    assert ours == [r.getMessage() for r in caplog.records if r.name == "pydicom"] and len(ours) == (length != 206)
    assert ds.file_meta == reference.file_meta
    first = [next(iter(meta._dict.values())) for meta in (ds.file_meta, reference.file_meta)]
    assert type(first[0]) is type(first[1])  # the group length converted, as pydicom's reader converts it


def test_the_pass_through_data_set_is_keyed_by_the_tags_normalisation_looks_up():
    """A data set's dict finds a key of the very object without BaseTag's Python-level __eq__:
    the decoder's keys are the objects ``tag_and_vr`` hands out (``gateway.dicom.tags``)."""
    from gateway.formats.dicom import passthrough
    from gateway.formats.engine.fieldtable import tag_and_vr
    ds = passthrough._read_plain(_part10(ct_instance(13, 32)))[0]
    for keyword in ("SOPInstanceUID", "Rows", "PixelData"):
        tag = tag_and_vr(keyword)[0]
        assert next(key for key in ds.keys() if key == tag) is tag, keyword
